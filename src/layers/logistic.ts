import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[logistic]`: darknet's logistic_layer.c, independent sigmoids with a binary
 * cross-entropy loss: out = 1 / (1 + e^-x); with a truth t, delta = t - out (minus the
 * loss gradient with respect to x) and cost = sum of -t log(out) - (1 - t) log(1 - out).
 * The sigmoid is a kernel; the loss runs on the host (one read of output and truth).
 */
export interface LogisticSpec extends LayerSpec {
  type: 'logistic';
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): LogisticSpec {
  return {
    // darknet keeps the input's image shape (parse_logistic copies h, w, c)
    ...baseSpec('logistic', o, ctx, common, { outH: ctx.h, outW: ctx.w, outC: ctx.c, outputs: ctx.inputs }),
    type: 'logistic',
    params: [],
    flops: 0,
    describe: `logistic x entropy                             ${String(ctx.inputs).padStart(4)}`,
  };
}

/** darknet's logistic_x_ent_cpu: writes delta, returns the summed loss. */
export function logisticCrossEntropy(delta: Float64Array, p: ArrayLike<number>, t: ArrayLike<number>): number {
  let cost = 0;
  for (let i = 0; i < delta.length; i++) {
    cost += -t[i] * Math.log(p[i]) - (1 - t[i]) * Math.log(1 - p[i]);
    delta[i] = t[i] - p[i];
  }
  return cost;
}

function create(spec: LogisticSpec, k: Kernels): Layer {
  return {
    spec,
    output: k.alloc(spec.batch * spec.outputs),
    delta: k.alloc(spec.batch * spec.outputs),
    params: [],
    cost: 0,

    forward(net: NetState) {
      net.k.activate(this.output, net.input, 'logistic');
      if (!net.truth) {
        this.cost = 0;
        return;
      }
      const delta = new Float64Array(this.delta.size);
      this.cost = logisticCrossEntropy(delta, net.k.read(this.output), net.k.read(net.truth));
      net.k.upload(this.delta, delta);
    },

    backward(net: NetState) {
      if (net.delta) net.k.axpby(net.delta, 1, this.delta, 1);
    },
  };
}

export const logistic: LayerDefinition<LogisticSpec> = { type: 'logistic', names: ['logistic'], parse, create };
