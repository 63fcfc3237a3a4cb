import type { CostType, Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/** `[cost]`: darknet's cost_layer.c, a loss on the previous layer's output. */
export interface CostSpec extends LayerSpec {
  type: 'cost';
  costType: CostType;
  /** multiplies the delta passed back (not the reported cost), as in darknet */
  scale: number;
}

/** darknet's get_cost_type names, and the ones this engine implements. */
const DARKNET_COST_TYPES = ['seg', 'sse', 'masked', 'smooth', 'L1', 'wgan'] as const;
const SUPPORTED: readonly CostType[] = ['sse', 'L1', 'smooth'];

function parse(o: Options, ctx: ParseContext, common: CommonSpec): CostSpec {
  // NOTE: darknet falls back to sse on an unknown name (with a message); a typo that
  // silently changes the loss is worse than an error.
  const name: string = o.choice('type', 'sse', DARKNET_COST_TYPES);
  if (!(SUPPORTED as readonly string[]).includes(name)) {
    throw o.error(`cost type '${name}' is not supported (supported: ${SUPPORTED.join(', ')})`, 'type');
  }
  const scale = o.float('scale', 1);
  return {
    // NOTE: darknet leaves a cost layer's out_w/out_h/out_c at 0, as for softmax.
    ...baseSpec('cost', o, ctx, common, { outH: 0, outW: 0, outC: 0, outputs: ctx.inputs }),
    type: 'cost',
    costType: name as CostType,
    scale,
    params: [],
    flops: 0,
    describe: `cost                                           ${String(ctx.inputs).padStart(4)}`,
  };
}

function create(spec: CostSpec, k: Kernels): Layer {
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
      this.cost = net.truth ? net.k.cost(this.delta, net.input, net.truth, spec.costType) : 0;
    },

    backward(net: NetState) {
      if (net.delta) net.k.axpby(net.delta, spec.scale, this.delta, 1);
    },
  };
}

export const cost: LayerDefinition<CostSpec> = { type: 'cost', names: ['cost'], parse, create };
