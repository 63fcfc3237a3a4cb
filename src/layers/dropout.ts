import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/** `[dropout]`: darknet's dropout_layer.c (inverted dropout: survivors are scaled up). */
export interface DropoutSpec extends LayerSpec {
  type: 'dropout';
  probability: number;
  /** 1 / (1 - probability) */
  scale: number;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): DropoutSpec {
  const probability = o.float('probability', 0.5);
  if (!(probability >= 0 && probability < 1)) {
    throw o.error(`dropout probability=${probability} must be in [0, 1)`, 'probability');
  }
  const n4 = (x: number) => String(x).padStart(4);
  return {
    ...baseSpec('dropout', o, ctx, common, { outH: ctx.h, outW: ctx.w, outC: ctx.c, outputs: ctx.inputs }),
    type: 'dropout',
    probability,
    scale: 1 / (1 - probability),
    params: [],
    flops: 0,
    describe: `dropout       p = ${probability.toFixed(2)}               ${n4(ctx.inputs)}  ->  ${n4(ctx.inputs)}`,
  };
}

function create(spec: DropoutSpec, k: Kernels): Layer {
  const size = spec.batch * spec.inputs;
  // NOTE: darknet's dropout rewrites its input (the previous layer's output and delta)
  // in place; this layer owns its output and delta instead. The maths is the same.
  const uniforms = new Float32Array(size); // host copy of the last mask's draws
  const rand = k.alloc(size); // [batch, inputs], uniforms in [0, 1): dropped where < probability
  return {
    spec,
    output: k.alloc(size), // [batch, inputs]
    delta: k.alloc(size), // [batch, inputs]
    params: [],

    forward(net: NetState) {
      if (!net.train) {
        net.k.copy(this.output, net.input);
        return;
      }
      // Drawn on the host from the network's seeded generator, so runs repeat exactly.
      for (let i = 0; i < size; i++) uniforms[i] = net.random();
      net.k.upload(rand, uniforms);
      net.k.dropout(this.output, net.input, rand, spec.probability, spec.scale, false);
    },

    // The same mask as the forward pass: rand is only redrawn by the next training forward.
    backward(net: NetState) {
      if (net.delta) net.k.dropout(net.delta, this.delta, rand, spec.probability, spec.scale, true);
    },
  };
}

export const dropout: LayerDefinition<DropoutSpec> = { type: 'dropout', names: ['dropout'], parse, create };
