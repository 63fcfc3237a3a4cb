import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[normalization]` / `[lrn]`: darknet's normalization_layer.c, local response
 * normalization across channels: out = x * norm^-beta, norm = kappa + alpha * (sum of x^2
 * over nearby channels). Runs on the host (k.read / k.upload). Host-side.
 *
 * NOTE: darknet's CPU forward starts its running window at channels [0, size/2) where the
 * window of channel 0 is [0, size/2]; every later step adds and removes the right
 * channels, so channel size/2 is missing from every window (and subtracted once it
 * leaves): norm[k] = kappa + alpha * (sum over [k - (size-1)/2, k + size/2] of x^2 - x[size/2]^2).
 * We compute exactly that, so outputs match darknet's.
 * NOTE: darknet's backward is an approximation (delta * norm^-beta, overwriting); ours is
 * the exact gradient of the forward above, added into the input delta.
 */
export interface NormalizationSpec extends LayerSpec {
  type: 'normalization';
  size: number;
  alpha: number;
  beta: number;
  kappa: number;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): NormalizationSpec {
  const alpha = o.float('alpha', 0.0001);
  const beta = o.float('beta', 0.75);
  const kappa = o.float('kappa', 1);
  const size = o.int('size', 5);
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before [normalization] must output an image (h, w, c > 0)');
  if (size < 1) throw o.error(`normalization size=${size} must be at least 1`, 'size');
  // darknet's first window reads channels [0, size/2): past the image when c < size/2
  if (Math.floor(size / 2) >= c) throw o.error(`normalization size=${size} needs more than ${Math.floor(size / 2)} channels (the input has ${c})`, 'size');
  return {
    ...baseSpec('normalization', o, ctx, common, { outH: h, outW: w, outC: c }),
    type: 'normalization',
    size, alpha, beta, kappa,
    params: [],
    flops: 0,
    describe: `Local Response Normalization Layer: ${w} x ${h} x ${c} image, ${size} size`,
  };
}

/** norms[b, k, p] as darknet's forward_normalization_layer builds them (its running sum). */
export function lrnNorms(x: ArrayLike<number>, s: NormalizationSpec): Float64Array {
  const { batch, c, size, alpha, kappa } = s;
  const spatial = s.h * s.w;
  const norms = new Float64Array(batch * c * spatial);
  for (let b = 0; b < batch; b++) {
    const base = b * c * spatial;
    const sq = (ch: number, p: number) => x[base + ch * spatial + p] ** 2;
    for (let p = 0; p < spatial; p++) {
      let n = kappa;
      for (let k = 0; k < Math.floor(size / 2); k++) n += alpha * sq(k, p);
      norms[base + p] = n;
      for (let k = 1; k < c; k++) {
        const prev = k - Math.floor((size - 1) / 2) - 1;
        const next = k + Math.floor(size / 2);
        if (prev >= 0) n -= alpha * sq(prev, p);
        if (next < c) n += alpha * sq(next, p);
        norms[base + k * spatial + p] = n;
      }
    }
  }
  return norms;
}

function create(spec: NormalizationSpec, k: Kernels): Layer {
  const { batch, c, size, alpha, beta } = spec;
  const spatial = spec.h * spec.w;
  let norms: Float64Array<ArrayBufferLike> = new Float64Array(0);
  return {
    spec,
    output: k.alloc(batch * spec.outputs),
    delta: k.alloc(batch * spec.outputs),
    params: [],

    forward(net: NetState) {
      const x = net.k.read(net.input);
      norms = lrnNorms(x, spec);
      net.k.upload(this.output, Array.from(x, (v, i) => v * norms[i] ** -beta));
    },

    backward(net: NetState) {
      if (!net.delta) return;
      const x = net.k.read(net.input);
      const delta = net.k.read(this.delta);
      const inputDelta = net.k.read(net.delta);
      const before = Math.floor((size - 1) / 2); // window of k: [k - before, k + after]
      const after = Math.floor(size / 2);
      const missing = Math.floor(size / 2);
      const g = new Float64Array(c);
      for (let b = 0; b < batch; b++) {
        for (let p = 0; p < spatial; p++) {
          const at = (ch: number) => b * c * spatial + ch * spatial + p;
          // g[k] = d(out_k)/d(norm_k) * delta_k; d(norm_k)/d(x_j) = 2 alpha x_j M[k][j]
          let total = 0;
          for (let k = 0; k < c; k++) {
            const i = at(k);
            g[k] = delta[i] * x[i] * -beta * norms[i] ** (-beta - 1);
            total += g[k];
            inputDelta[i] += delta[i] * norms[i] ** -beta;
          }
          for (let j = 0; j < c; j++) {
            // channel j is in the window of k for k in [j - after, j + before]
            let sum = 0;
            for (let k = Math.max(0, j - after); k <= Math.min(c - 1, j + before); k++) sum += g[k];
            if (j === missing) sum -= total;
            inputDelta[at(j)] += 2 * alpha * x[at(j)] * sum;
          }
        }
      }
      net.k.upload(net.delta, inputDelta);
    },
  };
}

export const normalization: LayerDefinition<NormalizationSpec> = {
  type: 'normalization', names: ['normalization', 'lrn'], parse, create,
};
