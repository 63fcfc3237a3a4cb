import type {
  Activation, BackendName, ChannelShape, ConvShape, CostType, FloatArray, GemmShape, KernelStats,
  Kernels, PoolShape, SgdParams, ShortcutShape, SparseKernels, Tensor,
} from './types';
import { ReferenceSparse } from './sparse/reference';
import {
  checkChannels, checkConv, checkPool, checkShortcut, expectLive, expectNotDisposed, expectSize, markFreed, sameSize,
} from './checks';

/**
 * The plain TypeScript implementation of the kernel seam: the independent check every
 * gpu.js kernel is tested against. Each op is the obvious loop nest over its doc comment
 * in types.ts; sums are kept in JavaScript numbers (float64) and rounded once on store.
 * With `float64: true` the tensors are Float64Arrays, for finite-difference checks.
 *
 * @example
 *   const k = new ReferenceKernels({ float64: true });
 *   const x = k.alloc(4);
 *   k.upload(x, [-1, 0, 1, 2]);
 *   k.activate(x, x, 'leaky');
 *   k.read(x); // Float64Array [-0.1, 0, 1, 2]
 */

/** darknet's -FLT_MAX: the value of an out-of-image maxpool tap. */
const NEG_FLT_MAX = -3.4028234663852886e38;

class ReferenceTensor implements Tensor {
  readonly size: number;

  /** `data` is emptied by free, so a kept handle holds no storage */
  constructor(public data: FloatArray) {
    this.size = data.length;
  }
}

export class ReferenceKernels implements Kernels {
  readonly backend: BackendName = 'reference';
  readonly description: string;
  private readonly float64: boolean;
  private readbacks = 0;
  private disposed = false;
  /** CSR loops over kept entries (./sparse/reference.ts). */
  readonly sparse: SparseKernels = new ReferenceSparse((op, t) => this.data(op, t));

  constructor(options: { float64?: boolean } = {}) {
    this.float64 = options.float64 ?? false;
    this.description = `reference (plain TypeScript, ${this.float64 ? 'float64' : 'float32'})`;
  }

  // ---- storage ----

  alloc(size: number): Tensor {
    expectNotDisposed('alloc', this.backend, this.disposed);
    if (!Number.isInteger(size) || size < 0) throw new Error(`alloc: size must be a non-negative integer, got ${size}`);
    return new ReferenceTensor(this.float64 ? new Float64Array(size) : new Float32Array(size));
  }

  free(t: Tensor): void {
    if (!(t instanceof ReferenceTensor)) throw new Error('free: not a reference tensor');
    markFreed(t);
    t.data = t.data instanceof Float64Array ? new Float64Array(0) : new Float32Array(0);
  }

  upload(dst: Tensor, src: ArrayLike<number>): void {
    const d = this.data('upload', dst);
    if (src.length !== d.length) throw new Error(`upload: source has ${src.length} values, tensor has ${d.length}`);
    for (let i = 0; i < d.length; i++) d[i] = src[i];
  }

  read(src: Tensor): FloatArray {
    this.readbacks++;
    return this.data('read', src).slice();
  }

  fill(dst: Tensor, value: number): void {
    this.data('fill', dst).fill(value);
  }

  copy(dst: Tensor, src: Tensor): void {
    const d = this.data('copy', dst);
    const s = this.data('copy', src);
    sameSize('copy', dst, src);
    d.set(s);
  }

  axpby(dst: Tensor, a: number, x: Tensor, b: number): void {
    const d = this.data('axpby', dst);
    const xs = this.data('axpby', x);
    sameSize('axpby', dst, x);
    for (let i = 0; i < d.length; i++) d[i] = a * xs[i] + b * d[i];
  }

  copyRows(dst: Tensor, src: Tensor, r: {
    batch: number; n: number; srcStride: number; srcOffset: number;
    dstStride: number; dstOffset: number; accumulate: boolean;
  }): void {
    const d = this.data('copyRows', dst);
    const s = this.data('copyRows', src);
    if (r.batch > 0 && r.n > 0) {
      const lastSrc = (r.batch - 1) * r.srcStride + r.srcOffset + r.n;
      const lastDst = (r.batch - 1) * r.dstStride + r.dstOffset + r.n;
      if (r.srcOffset < 0 || lastSrc > s.length) throw new Error(`copyRows: rows reach index ${lastSrc} of a source of ${s.length}`);
      if (r.dstOffset < 0 || lastDst > d.length) throw new Error(`copyRows: rows reach index ${lastDst} of a destination of ${d.length}`);
    }
    for (let b = 0; b < r.batch; b++) {
      for (let i = 0; i < r.n; i++) {
        const di = b * r.dstStride + r.dstOffset + i;
        const v = s[b * r.srcStride + r.srcOffset + i];
        d[di] = r.accumulate ? d[di] + v : v;
      }
    }
  }

  // ---- gemm ----

  gemm(C: Tensor, A: Tensor, B: Tensor, s: GemmShape): void {
    const c = this.data('gemm', C);
    const a = this.data('gemm', A);
    const b = this.data('gemm', B);
    if (C === A || C === B) throw new Error('gemm: C may not alias A or B');
    const { M, N, K } = s;
    expectSize('gemm', 'A', A, M * K);
    expectSize('gemm', 'B', B, K * N);
    expectSize('gemm', 'C', C, M * N);
    // op(A)[i][k] and op(B)[k][j] in their stored layouts
    const aRow = s.transA ? 1 : K;
    const aCol = s.transA ? M : 1;
    const bRow = s.transB ? 1 : N;
    const bCol = s.transB ? K : 1;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += a[i * aRow + k * aCol] * b[k * bRow + j * bCol];
        // NOTE: beta * C literally (darknet scales C first): beta = 0 keeps a NaN in C.
        c[i * N + j] = s.alpha * sum + s.beta * c[i * N + j];
      }
    }
  }

  // ---- convolution ----

  convForward(out: Tensor, input: Tensor, weights: Tensor, s: ConvShape): void {
    const o = this.data('convForward', out);
    const x = this.data('convForward', input);
    const wt = this.data('convForward', weights);
    checkConv('convForward', s, { out, input, weights });
    const { batch, c, h, w, n, size, stride, pad, outH, outW } = s;
    const cg = c / s.groups; // input channels per group
    const ng = n / s.groups; // filters per group
    for (let b = 0; b < batch; b++) {
      for (let f = 0; f < n; f++) {
        const c0 = Math.floor(f / ng) * cg;
        for (let oy = 0; oy < outH; oy++) {
          const iy0 = oy * stride - pad;
          const [kyLo, kyHi] = validTaps(iy0, size, h);
          for (let ox = 0; ox < outW; ox++) {
            const ix0 = ox * stride - pad;
            const [kxLo, kxHi] = validTaps(ix0, size, w);
            let sum = 0;
            for (let cc = 0; cc < cg; cc++) {
              const xPlane = ((b * c + c0 + cc) * h) * w;
              const wPlane = (f * cg + cc) * size * size;
              for (let ky = kyLo; ky < kyHi; ky++) {
                const xRow = xPlane + (iy0 + ky) * w + ix0;
                const wRow = wPlane + ky * size;
                for (let kx = kxLo; kx < kxHi; kx++) sum += x[xRow + kx] * wt[wRow + kx];
              }
            }
            o[((b * n + f) * outH + oy) * outW + ox] = sum;
          }
        }
      }
    }
  }

  convBackwardFilter(weightUpdates: Tensor, delta: Tensor, input: Tensor, s: ConvShape): void {
    const dw = this.data('convBackwardFilter', weightUpdates);
    const d = this.data('convBackwardFilter', delta);
    const x = this.data('convBackwardFilter', input);
    checkConv('convBackwardFilter', s, { out: delta, input, weights: weightUpdates });
    const { batch, c, h, w, n, size, stride, pad, outH, outW } = s;
    const cg = c / s.groups;
    const ng = n / s.groups;
    for (let f = 0; f < n; f++) {
      const c0 = Math.floor(f / ng) * cg;
      for (let cc = 0; cc < cg; cc++) {
        for (let ky = 0; ky < size; ky++) {
          const [oyLo, oyHi] = validOutputs(ky, pad, stride, h, outH);
          for (let kx = 0; kx < size; kx++) {
            const [oxLo, oxHi] = validOutputs(kx, pad, stride, w, outW);
            // d(out[b, f, oy, ox]) / d(weights[f, cc, ky, kx]) = input[b, c0 + cc, iy, ix]
            let sum = 0;
            for (let b = 0; b < batch; b++) {
              for (let oy = oyLo; oy < oyHi; oy++) {
                const iy = oy * stride - pad + ky;
                const dRow = ((b * n + f) * outH + oy) * outW;
                const xRow = ((b * c + c0 + cc) * h + iy) * w - pad + kx;
                for (let ox = oxLo; ox < oxHi; ox++) sum += d[dRow + ox] * x[xRow + ox * stride];
              }
            }
            dw[((f * cg + cc) * size + ky) * size + kx] += sum;
          }
        }
      }
    }
  }

  convBackwardData(inputDelta: Tensor, delta: Tensor, weights: Tensor, s: ConvShape): void {
    const dx = this.data('convBackwardData', inputDelta);
    const d = this.data('convBackwardData', delta);
    const wt = this.data('convBackwardData', weights);
    checkConv('convBackwardData', s, { out: delta, input: inputDelta, weights });
    const { batch, c, h, w, n, size, stride, pad, outH, outW } = s;
    const cg = c / s.groups;
    const ng = n / s.groups;
    for (let b = 0; b < batch; b++) {
      for (let ch = 0; ch < c; ch++) {
        const g = Math.floor(ch / cg);
        const cc = ch - g * cg;
        for (let iy = 0; iy < h; iy++) {
          for (let ix = 0; ix < w; ix++) {
            // every (output, tap) that read input[b, ch, iy, ix]: oy * stride - pad + ky = iy
            let sum = 0;
            for (let ky = 0; ky < size; ky++) {
              const ty = iy + pad - ky;
              if (ty < 0 || ty % stride !== 0 || ty / stride >= outH) continue;
              const oy = ty / stride;
              for (let kx = 0; kx < size; kx++) {
                const tx = ix + pad - kx;
                if (tx < 0 || tx % stride !== 0 || tx / stride >= outW) continue;
                const ox = tx / stride;
                for (let f = g * ng; f < (g + 1) * ng; f++) {
                  sum += d[((b * n + f) * outH + oy) * outW + ox] * wt[((f * cg + cc) * size + ky) * size + kx];
                }
              }
            }
            dx[((b * c + ch) * h + iy) * w + ix] += sum;
          }
        }
      }
    }
  }

  // ---- per-channel ops ----

  addBias(x: Tensor, biases: Tensor, s: ChannelShape): void {
    const xs = this.data('addBias', x);
    const bs = this.data('addBias', biases);
    checkChannels('addBias', s, x, biases);
    forEachChannel(s, (f, i) => { xs[i] += bs[f]; });
  }

  scaleBias(x: Tensor, scales: Tensor, s: ChannelShape): void {
    const xs = this.data('scaleBias', x);
    const sc = this.data('scaleBias', scales);
    checkChannels('scaleBias', s, x, scales);
    forEachChannel(s, (f, i) => { xs[i] *= sc[f]; });
  }

  backwardBias(biasUpdates: Tensor, delta: Tensor, s: ChannelShape): void {
    const bu = this.data('backwardBias', biasUpdates);
    const d = this.data('backwardBias', delta);
    checkChannels('backwardBias', s, delta, biasUpdates);
    const sums = new Float64Array(s.channels);
    forEachChannel(s, (f, i) => { sums[f] += d[i]; });
    for (let f = 0; f < s.channels; f++) bu[f] += sums[f];
  }

  backwardScale(scaleUpdates: Tensor, xNorm: Tensor, delta: Tensor, s: ChannelShape): void {
    const su = this.data('backwardScale', scaleUpdates);
    const xn = this.data('backwardScale', xNorm);
    const d = this.data('backwardScale', delta);
    checkChannels('backwardScale', s, delta, scaleUpdates);
    sameSize('backwardScale', xNorm, delta);
    const sums = new Float64Array(s.channels);
    forEachChannel(s, (f, i) => { sums[f] += d[i] * xn[i]; });
    for (let f = 0; f < s.channels; f++) su[f] += sums[f];
  }

  // ---- activations ----

  activate(dst: Tensor, src: Tensor, act: Activation): void {
    const d = this.data('activate', dst);
    const x = this.data('activate', src);
    sameSize('activate', dst, src);
    const fn = ACTIVATE[act];
    if (!fn) throw new Error(`activate: unknown activation "${act}"`);
    for (let i = 0; i < d.length; i++) d[i] = fn(x[i]);
  }

  gradient(delta: Tensor, output: Tensor, act: Activation): void {
    const d = this.data('gradient', delta);
    const y = this.data('gradient', output);
    sameSize('gradient', delta, output);
    const fn = GRADIENT[act];
    if (!fn) throw new Error(`gradient: unknown activation "${act}"`);
    for (let i = 0; i < d.length; i++) d[i] *= fn(y[i]);
  }

  // ---- pooling ----

  maxpoolForward(out: Tensor, input: Tensor, s: PoolShape): void {
    const o = this.data('maxpoolForward', out);
    const x = this.data('maxpoolForward', input);
    checkPool('maxpoolForward', s, out, input);
    forEachPoolOutput(s, x, (oi, _tap, max) => { o[oi] = max; });
  }

  maxpoolBackward(inputDelta: Tensor, delta: Tensor, input: Tensor, s: PoolShape): void {
    const dx = this.data('maxpoolBackward', inputDelta);
    const d = this.data('maxpoolBackward', delta);
    const x = this.data('maxpoolBackward', input);
    checkPool('maxpoolBackward', s, delta, input);
    sameSize('maxpoolBackward', inputDelta, input);
    // NOTE: a window wholly in the padding has no tap (darknet indexes -1 there); skip it.
    forEachPoolOutput(s, x, (oi, tap) => { if (tap >= 0) dx[tap] += d[oi]; });
  }

  avgpoolForward(out: Tensor, input: Tensor, s: ChannelShape): void {
    const o = this.data('avgpoolForward', out);
    const x = this.data('avgpoolForward', input);
    checkChannels('avgpoolForward', s, input);
    expectSize('avgpoolForward', 'out', out, s.batch * s.channels);
    for (let bf = 0; bf < s.batch * s.channels; bf++) {
      let sum = 0;
      for (let i = 0; i < s.spatial; i++) sum += x[bf * s.spatial + i];
      o[bf] = sum / s.spatial;
    }
  }

  avgpoolBackward(inputDelta: Tensor, delta: Tensor, s: ChannelShape): void {
    const dx = this.data('avgpoolBackward', inputDelta);
    const d = this.data('avgpoolBackward', delta);
    checkChannels('avgpoolBackward', s, inputDelta);
    expectSize('avgpoolBackward', 'delta', delta, s.batch * s.channels);
    for (let bf = 0; bf < s.batch * s.channels; bf++) {
      for (let i = 0; i < s.spatial; i++) dx[bf * s.spatial + i] += d[bf] / s.spatial;
    }
  }

  // ---- losses ----

  softmax(out: Tensor, input: Tensor, s: { batch: number; inputs: number; groups: number; temperature: number }): void {
    const o = this.data('softmax', out);
    const x = this.data('softmax', input);
    expectSize('softmax', 'input', input, s.batch * s.inputs);
    sameSize('softmax', out, input);
    if (!(s.groups >= 1) || s.inputs % s.groups !== 0) {
      throw new Error(`softmax: inputs (${s.inputs}) must be a multiple of groups (${s.groups})`);
    }
    const len = s.inputs / s.groups;
    const t = s.temperature;
    for (let start = 0; start < x.length; start += len) {
      let largest = -Infinity;
      for (let i = start; i < start + len; i++) if (x[i] > largest) largest = x[i];
      const e = new Float64Array(len);
      let sum = 0;
      for (let i = 0; i < len; i++) {
        e[i] = Math.exp(x[start + i] / t - largest / t);
        sum += e[i];
      }
      for (let i = 0; i < len; i++) o[start + i] = e[i] / sum;
    }
  }

  softmaxCrossEntropy(delta: Tensor, output: Tensor, truth: Tensor): number {
    const d = this.data('softmaxCrossEntropy', delta);
    const p = this.data('softmaxCrossEntropy', output);
    const t = this.data('softmaxCrossEntropy', truth);
    sameSize('softmaxCrossEntropy', delta, output);
    sameSize('softmaxCrossEntropy', truth, output);
    this.readbacks++;
    let loss = 0;
    for (let i = 0; i < p.length; i++) {
      if (t[i] !== 0) loss += -Math.log(p[i]);
      d[i] = t[i] - p[i];
    }
    return loss;
  }

  cost(delta: Tensor, pred: Tensor, truth: Tensor, type: CostType): number {
    const dl = this.data('cost', delta);
    const p = this.data('cost', pred);
    const t = this.data('cost', truth);
    sameSize('cost', delta, pred);
    sameSize('cost', truth, pred);
    if (type !== 'sse' && type !== 'L1' && type !== 'smooth') throw new Error(`cost: unknown cost type "${type}"`);
    this.readbacks++;
    let error = 0;
    for (let i = 0; i < p.length; i++) {
      const d = t[i] - p[i];
      const sign = d > 0 ? 1 : -1;
      if (type === 'sse' || (type === 'smooth' && Math.abs(d) < 1)) {
        dl[i] = d;
        error += d * d;
      } else if (type === 'L1') {
        dl[i] = sign;
        error += Math.abs(d);
      } else {
        dl[i] = sign; // NOTE: darknet's smooth_l1_cpu has the opposite sign here (see types.ts)
        error += 2 * Math.abs(d) - 1;
      }
    }
    return error;
  }

  // ---- batch norm ----

  batchnormStats(mean: Tensor, variance: Tensor, x: Tensor, s: ChannelShape): void {
    const m = this.data('batchnormStats', mean);
    const v = this.data('batchnormStats', variance);
    const xs = this.data('batchnormStats', x);
    checkChannels('batchnormStats', s, x, mean);
    sameSize('batchnormStats', variance, mean);
    const count = s.batch * s.spatial;
    const sums = new Float64Array(s.channels);
    forEachChannel(s, (f, i) => { sums[f] += xs[i]; });
    const means = sums.map((sum) => sum / count);
    const squares = new Float64Array(s.channels);
    forEachChannel(s, (f, i) => { squares[f] += (xs[i] - means[f]) ** 2; });
    for (let f = 0; f < s.channels; f++) {
      m[f] = means[f];
      v[f] = squares[f] / count; // biased, as types.ts asks (darknet's variance_cpu divides by count - 1)
    }
  }

  normalize(out: Tensor, x: Tensor, mean: Tensor, variance: Tensor, eps: number, s: ChannelShape): void {
    const o = this.data('normalize', out);
    const xs = this.data('normalize', x);
    const m = this.data('normalize', mean);
    const v = this.data('normalize', variance);
    checkChannels('normalize', s, x, mean);
    sameSize('normalize', variance, mean);
    sameSize('normalize', out, x);
    forEachChannel(s, (f, i) => { o[i] = (xs[i] - m[f]) / Math.sqrt(v[f] + eps); });
  }

  batchnormBackward(out: Tensor, dxhat: Tensor, xNorm: Tensor, variance: Tensor, eps: number, s: ChannelShape): void {
    if (out === dxhat) throw new Error('batchnormBackward: out may not alias dxhat');
    const o = this.data('batchnormBackward', out);
    const g = this.data('batchnormBackward', dxhat);
    const xn = this.data('batchnormBackward', xNorm);
    const v = this.data('batchnormBackward', variance);
    checkChannels('batchnormBackward', s, dxhat, variance);
    sameSize('batchnormBackward', xNorm, dxhat);
    sameSize('batchnormBackward', out, dxhat);
    const count = s.batch * s.spatial;
    const meanG = new Float64Array(s.channels); // mean(dxhat)
    const meanGX = new Float64Array(s.channels); // mean(dxhat * xNorm)
    forEachChannel(s, (f, i) => {
      meanG[f] += g[i] / count;
      meanGX[f] += (g[i] * xn[i]) / count;
    });
    forEachChannel(s, (f, i) => {
      o[i] = (g[i] - meanG[f] - xn[i] * meanGX[f]) / Math.sqrt(v[f] + eps);
    });
  }

  // ---- the rest ----

  dropout(dst: Tensor, src: Tensor, rand: Tensor, prob: number, scale: number, accumulate: boolean): void {
    const d = this.data('dropout', dst);
    const x = this.data('dropout', src);
    const r = this.data('dropout', rand);
    sameSize('dropout', dst, src);
    sameSize('dropout', rand, src);
    for (let i = 0; i < d.length; i++) {
      const v = r[i] < prob ? 0 : x[i] * scale;
      d[i] = accumulate ? d[i] + v : v;
    }
  }

  shortcut(out: Tensor, add: Tensor, s1: number, s2: number, s: ShortcutShape): void {
    const o = this.data('shortcut', out);
    const a = this.data('shortcut', add);
    const { stride: st, sample: sa } = checkShortcut(s, out, add);
    const minW = Math.min(s.w1, s.w2);
    const minH = Math.min(s.h1, s.h2);
    const minC = Math.min(s.c1, s.c2);
    for (let b = 0; b < s.batch; b++) {
      for (let k = 0; k < minC; k++) {
        for (let j = 0; j < minH; j++) {
          for (let i = 0; i < minW; i++) {
            const oi = ((b * s.c2 + k) * s.h2 + j * sa) * s.w2 + i * sa;
            const ai = ((b * s.c1 + k) * s.h1 + j * st) * s.w1 + i * st;
            o[oi] = s1 * o[oi] + s2 * a[ai];
          }
        }
      }
    }
  }

  sgdUpdate(weights: Tensor, updates: Tensor, mask: Tensor | null, p: SgdParams): void {
    const w = this.data('sgdUpdate', weights);
    const u = this.data('sgdUpdate', updates);
    const m = mask === null ? null : this.data('sgdUpdate', mask);
    sameSize('sgdUpdate', updates, weights);
    if (mask) sameSize('sgdUpdate', mask, weights);
    for (let i = 0; i < w.length; i++) {
      u[i] += -p.decay * p.batch * w[i];
      w[i] += (p.rate / p.batch) * u[i];
      u[i] *= p.momentum;
      // NOTE: a select, not a multiply: momentum would revive a pruned weight, and
      // NaN * 0 is NaN, -x * 0 is -0.
      if (m && m[i] === 0) {
        w[i] = 0;
        u[i] = 0;
      }
    }
  }

  stats(): KernelStats {
    return { compiled: 0, readbacks: this.readbacks };
  }

  dispose(): void {
    // nothing to release (tensors are garbage-collected arrays); refused from now on, as on every backend
    this.disposed = true;
  }


  /** The storage of a live tensor made by this backend, with its precision. */
  private data(op: string, t: Tensor): FloatArray {
    if (!(t instanceof ReferenceTensor)) throw new Error(`${op}: not a reference tensor`);
    expectNotDisposed(op, this.backend, this.disposed);
    expectLive(op, t);
    if ((t.data instanceof Float64Array) !== this.float64) {
      throw new Error(`${op}: tensor precision differs from this backend's (${this.description})`);
    }
    return t.data;
  }
}

// ---- activations (darknet's activations.h; gradients take the activation's OUTPUT) ----

// NOTE: darknet writes elu/selu as (x >= 0)*x + (x < 0)*(exp(x) - 1) and tanh as
// (exp(2x) - 1)/(exp(2x) + 1); both turn NaN once exp overflows (0 * inf, inf / inf).
// These are the same functions without the overflow.
const ACTIVATE: Record<Activation, (x: number) => number> = {
  logistic: (x) => 1 / (1 + Math.exp(-x)),
  loggy: (x) => 2 / (1 + Math.exp(-x)) - 1,
  relu: (x) => x * (x > 0 ? 1 : 0),
  elu: (x) => (x >= 0 ? x : Math.exp(x) - 1),
  selu: (x) => (x >= 0 ? 1.0507 * x : 1.0507 * 1.6732 * (Math.exp(x) - 1)),
  relie: (x) => (x > 0 ? x : 0.01 * x),
  plse: (x) => (x < -4 ? 0.01 * (x + 4) : x > 4 ? 0.01 * (x - 4) + 1 : 0.125 * x + 0.5),
  hardtan: (x) => (x < -1 ? -1 : x > 1 ? 1 : x),
  lhtan: (x) => (x < 0 ? 0.001 * x : x > 1 ? 0.001 * (x - 1) + 1 : x),
  linear: (x) => x,
  ramp: (x) => x * (x > 0 ? 1 : 0) + 0.1 * x,
  leaky: (x) => (x > 0 ? x : 0.1 * x),
  tanh: (x) => Math.tanh(x),
  stair: (x) => {
    const n = Math.floor(x);
    return n % 2 === 0 ? Math.floor(x / 2) : x - n + Math.floor(x / 2);
  },
  mish: (x) => x * Math.tanh(softplus(x)),
};

/** AlexeyAB's darknet's softplus_activate with MISH_THRESHOLD 20. */
function softplus(x: number): number {
  return x > 20 ? x : x < -20 ? Math.exp(x) : Math.log1p(Math.exp(x));
}

const GRADIENT: Record<Activation, (y: number) => number> = {
  logistic: (y) => (1 - y) * y,
  loggy: (y) => {
    const s = (y + 1) / 2;
    return 2 * (1 - s) * s;
  },
  relu: (y) => (y > 0 ? 1 : 0),
  elu: (y) => (y >= 0 ? 1 : y + 1),
  selu: (y) => (y >= 0 ? 1.0507 : y + 1.0507 * 1.6732),
  relie: (y) => (y > 0 ? 1 : 0.01),
  plse: (y) => (y < 0 || y > 1 ? 0.01 : 0.125),
  hardtan: (y) => (y > -1 && y < 1 ? 1 : 0),
  lhtan: (y) => (y > 0 && y < 1 ? 1 : 0.001),
  linear: () => 1,
  ramp: (y) => (y > 0 ? 1 : 0) + 0.1,
  leaky: (y) => (y > 0 ? 1 : 0.1),
  tanh: (y) => 1 - y * y,
  stair: (y) => (Math.floor(y) === y ? 0 : 1),
  // from the INPUT x (GRADIENT_FROM_INPUT), darknet's gradient_array_mish
  mish: (x) => {
    const sp = softplus(x);
    const t = Math.tanh(sp);
    return x * (1 - t * t) * -Math.expm1(-sp) + t;
  },
};

// ---- helpers ----

/** Kernel taps k in [lo, hi) for which start + k lies in [0, extent). */
function validTaps(start: number, size: number, extent: number): [number, number] {
  return [Math.max(0, -start), Math.min(size, extent - start)];
}

/** Outputs o in [lo, hi) whose tap k reads a row inside the image: 0 <= o * stride - pad + k < extent. */
function validOutputs(k: number, pad: number, stride: number, extent: number, outExtent: number): [number, number] {
  const lo = Math.max(0, Math.ceil((pad - k) / stride));
  const hi = Math.min(outExtent, Math.floor((extent - 1 + pad - k) / stride) + 1);
  return [lo, Math.max(lo, hi)];
}

/** Calls fn(channel, flat index) for every element of a `[batch, channels, spatial]` tensor. */
function forEachChannel(s: ChannelShape, fn: (f: number, i: number) => void): void {
  for (let b = 0; b < s.batch; b++) {
    for (let f = 0; f < s.channels; f++) {
      const base = (b * s.channels + f) * s.spatial;
      for (let i = 0; i < s.spatial; i++) fn(f, base + i);
    }
  }
}

/**
 * darknet's maxpool window scan: calls fn(output index, input index of the max or -1, max)
 * for every output. Out-of-image taps are -FLT_MAX; a later tap must be strictly greater.
 */
function forEachPoolOutput(s: PoolShape, x: FloatArray, fn: (oi: number, tap: number, max: number) => void): void {
  const offset = -Math.floor(s.padding / 2);
  for (let b = 0; b < s.batch; b++) {
    for (let k = 0; k < s.c; k++) {
      const plane = (b * s.c + k) * s.h * s.w;
      for (let i = 0; i < s.outH; i++) {
        for (let j = 0; j < s.outW; j++) {
          let max = NEG_FLT_MAX;
          let tap = -1;
          for (let n = 0; n < s.size; n++) {
            for (let m = 0; m < s.size; m++) {
              const y = offset + i * s.stride + n;
              const xx = offset + j * s.stride + m;
              if (y < 0 || y >= s.h || xx < 0 || xx >= s.w) continue;
              const index = plane + y * s.w + xx;
              if (x[index] > max) {
                max = x[index];
                tap = index;
              }
            }
          }
          fn(((b * s.c + k) * s.outH + i) * s.outW + j, tap, max);
        }
      }
    }
  }
}
