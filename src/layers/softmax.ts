import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/** `[softmax]`: darknet's softmax_layer.c, with its cross-entropy loss. */
export interface SoftmaxSpec extends LayerSpec {
  type: 'softmax';
  /** independent softmaxes over consecutive runs of inputs / groups values */
  groups: number;
  temperature: number;
  /** darknet's `noloss`: compute no loss or delta even with a truth */
  noloss: boolean;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): SoftmaxSpec {
  const groups = o.int('groups', 1);
  const temperature = o.float('temperature', 1);
  const noloss = o.flag('noloss');
  if (o.raw('tree') !== undefined) throw o.error('[softmax] tree= (hierarchical softmax) is not supported', 'tree');
  if (groups < 1 || ctx.inputs % groups !== 0) {
    throw o.error(`softmax groups=${groups} must divide its ${ctx.inputs} inputs`, 'groups');
  }
  if (!(temperature > 0)) throw o.error(`softmax temperature=${temperature} must be positive`, 'temperature');
  return {
    // NOTE: darknet leaves a softmax's out_w/out_h/out_c at 0: what follows sees a flat
    // vector (so a [maxpool] after it is an error, as in darknet).
    ...baseSpec('softmax', o, ctx, common, { outH: 0, outW: 0, outC: 0, outputs: ctx.inputs }),
    type: 'softmax',
    groups,
    temperature,
    noloss,
    params: [],
    flops: 0,
    describe: `softmax                                        ${String(ctx.inputs).padStart(4)}`,
  };
}

function create(spec: SoftmaxSpec, k: Kernels): Layer {
  const shape = { batch: spec.batch, inputs: spec.inputs, groups: spec.groups, temperature: spec.temperature };
  return {
    spec,
    output: k.alloc(spec.batch * spec.outputs), // [batch, inputs]
    delta: k.alloc(spec.batch * spec.outputs), // [batch, inputs]
    params: [],
    // a loss layer from the start, so the network's mean cost counts it (darknet's calc_network_cost)
    cost: 0,

    forward(net: NetState) {
      net.k.softmax(this.output, net.input, shape);
      // NOTE: delta = truth - output is minus the gradient of the cross entropy only at
      // temperature 1; darknet uses it at every temperature, and so do we.
      if (net.truth && !spec.noloss) this.cost = net.k.softmaxCrossEntropy(this.delta, this.output, net.truth);
      else this.cost = 0;
    },

    backward(net: NetState) {
      if (net.delta) net.k.axpby(net.delta, 1, this.delta, 1);
    },
  };
}

export const softmax: LayerDefinition<SoftmaxSpec> = { type: 'softmax', names: ['softmax', 'soft'], parse, create };
