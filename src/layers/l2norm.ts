import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[l2norm]`: darknet's l2norm_layer.c: at every pixel, the channel vector divided by
 * its L2 norm. Runs on the host (k.read / k.upload). Host-side.
 * NOTE: darknet's CPU backward passes the delta through unchanged (its GPU one adds a
 * stale term); ours is the exact gradient (delta - y (y . delta)) / norm.
 */
export interface L2normSpec extends LayerSpec {
  type: 'l2norm';
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): L2normSpec {
  // darknet normalises over out_c channels; after a flat layer out_c is 0 and its
  // l2norm does nothing at all, which is surely not what a cfg means
  if (!(ctx.h && ctx.w && ctx.c)) throw o.error('the layer before [l2norm] must output an image (darknet normalises nothing after a flat layer)');
  return {
    ...baseSpec('l2norm', o, ctx, common, { outH: ctx.h, outW: ctx.w, outC: ctx.c }),
    type: 'l2norm',
    params: [],
    flops: 0,
    describe: `l2norm                                         ${String(ctx.inputs).padStart(4)}`,
  };
}

function create(spec: L2normSpec, k: Kernels): Layer {
  const { batch, c } = spec;
  const spatial = spec.h * spec.w;
  let norms = new Float64Array(0); // [batch, spatial]
  const at = (b: number, f: number, i: number) => (b * c + f) * spatial + i;
  return {
    spec,
    output: k.alloc(batch * spec.outputs),
    delta: k.alloc(batch * spec.outputs),
    params: [],

    forward(net: NetState) {
      const x = net.k.read(net.input);
      const out = new Float64Array(x.length);
      norms = new Float64Array(batch * spatial);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < spatial; i++) {
          let sum = 0;
          for (let f = 0; f < c; f++) sum += x[at(b, f, i)] ** 2;
          const n = Math.sqrt(sum);
          norms[b * spatial + i] = n;
          for (let f = 0; f < c; f++) out[at(b, f, i)] = x[at(b, f, i)] / n;
        }
      }
      net.k.upload(this.output, out);
    },

    backward(net: NetState) {
      if (!net.delta) return;
      const y = net.k.read(this.output);
      const delta = net.k.read(this.delta);
      const inputDelta = net.k.read(net.delta);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < spatial; i++) {
          let dot = 0;
          for (let f = 0; f < c; f++) dot += y[at(b, f, i)] * delta[at(b, f, i)];
          const n = norms[b * spatial + i];
          for (let f = 0; f < c; f++) inputDelta[at(b, f, i)] += (delta[at(b, f, i)] - y[at(b, f, i)] * dot) / n;
        }
      }
      net.k.upload(net.delta, inputDelta);
    },
  };
}

export const l2norm: LayerDefinition<L2normSpec> = { type: 'l2norm', names: ['l2norm'], parse, create };
