import type { CostType, Kernels, Tensor } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';
import { SECRET_NUM } from './softmax';

/** `[cost]`: darknet's cost_layer.c, a loss on the previous layer's output. */
export interface CostSpec extends LayerSpec {
  type: 'cost';
  costType: CostType;
  /**
   * darknet's `masked`: sse, except where the truth is SECRET_NUM (-1234, "no label"),
   * which gives no error and no delta.
   */
  masked: boolean;
  /** multiplies the delta passed back (not the reported cost), as in darknet */
  scale: number;
}

/** darknet's get_cost_type names, and the ones this engine implements. */
const DARKNET_COST_TYPES = ['seg', 'sse', 'masked', 'smooth', 'L1', 'wgan'] as const;
const SUPPORTED: readonly string[] = ['sse', 'masked', 'L1', 'smooth'];

function parse(o: Options, ctx: ParseContext, common: CommonSpec): CostSpec {
  // NOTE: darknet falls back to sse on an unknown name (with a message); a typo that
  // silently changes the loss is worse than an error.
  const name: string = o.choice('type', 'sse', DARKNET_COST_TYPES);
  if (!SUPPORTED.includes(name)) {
    throw o.error(`cost type '${name}' is not supported (supported: ${SUPPORTED.join(', ')})`, 'type');
  }
  const scale = o.float('scale', 1);
  // darknet's GPU cost also reads these (hard-example ratio, delta threshold, seg's
  // no-object scale); they change the loss, so anything but their no-op value is refused
  const unsupported: Array<[string, number]> = [['ratio', 0], ['thresh', 0], ['noobj', 1]];
  for (const [key, neutral] of unsupported) {
    const v = o.float(key, neutral);
    if (v !== neutral) throw o.error(`cost ${key}=${v} is not supported (darknet applies it on its GPU only); only ${key}=${neutral}`, key);
  }
  return {
    // NOTE: darknet leaves a cost layer's out_w/out_h/out_c at 0, as for softmax.
    ...baseSpec('cost', o, ctx, common, { outH: 0, outW: 0, outC: 0, outputs: ctx.inputs }),
    type: 'cost',
    costType: name === 'masked' ? 'sse' : (name as CostType),
    masked: name === 'masked',
    scale,
    params: [],
    flops: 0,
    describe: `cost                                           ${String(ctx.inputs).padStart(4)}`,
  };
}

function create(spec: CostSpec, k: Kernels): Layer {
  // masked: the prediction with SECRET_NUM wherever the truth has it, so those entries'
  // difference is 0 (darknet writes SECRET_NUM into its input instead). Host-side.
  const maskedInput: Tensor | null = spec.masked ? k.alloc(spec.batch * spec.inputs) : null;
  return {
    spec,
    // NOTE: darknet writes the per-value errors into a cost layer's output and has
    // get_network_output skip cost layers; we pass the input through instead, so the
    // network's output is the prediction without a special case.
    output: k.alloc(spec.batch * spec.outputs), // [batch, inputs]
    delta: k.alloc(spec.batch * spec.outputs), // [batch, inputs], truth - prediction for sse
    params: [],
    cost: 0,

    forward(net: NetState) {
      net.k.copy(this.output, net.input);
      if (!net.truth) {
        this.cost = 0;
        return;
      }
      let pred = net.input;
      if (maskedInput) {
        const x = net.k.read(net.input);
        const t = net.k.read(net.truth);
        for (let i = 0; i < x.length; i++) if (t[i] === SECRET_NUM) x[i] = SECRET_NUM;
        net.k.upload(maskedInput, x);
        pred = maskedInput;
      }
      this.cost = net.k.cost(this.delta, pred, net.truth, spec.costType);
    },

    backward(net: NetState) {
      if (net.delta) net.k.axpby(net.delta, spec.scale, this.delta, 1);
    },
  };
}

export const cost: LayerDefinition<CostSpec> = { type: 'cost', names: ['cost'], parse, create };
