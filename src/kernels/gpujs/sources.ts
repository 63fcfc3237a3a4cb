import type { Activation, CostType } from '../types';

/**
 * The gpu.js kernel sources of the gpu.js backend (./index.ts compiles and calls them):
 * one function per kernel, run once per output element (`this.thread.x`), plus the
 * activation and gradient bodies as source fragments. Nothing else lives here.
 *
 * NOTE: gpu.js compiles kernels from their source text (Function#toString), so every
 * function here must stay plain JavaScript after tsc: no helpers from other modules (a
 * kernel may call `idiv`, which every kernel is given), no closures, no module-level
 * constants (pass numbers in `this.constants` instead), and no coverage instrumentation
 * (jest --coverage would inject counters).
 */

/** What a kernel function sees as `this` (constants are numbers, by construction). */
export interface KThis {
  thread: { x: number };
  constants: Record<string, number>;
}
type Buf = Float32Array;

/**
 * floor(a / b) for non-negative integers held in floats, exact below 2^24: the float
 * quotient can land one off (GPU division is a reciprocal multiply), the remainder says which way.
 */
export function idiv(a: number, b: number): number {
  let q = Math.floor((a + 0.5) / b);
  const r = a - q * b;
  if (r < 0) q = q - 1;
  if (r >= b) q = q + 1;
  return q;
}

export function identityKernel(this: KThis, src: Buf): number {
  return src[this.thread.x];
}

export function fillKernel(this: KThis, value: number): number {
  return value;
}

export function axpbyKernel(this: KThis, x: Buf, y: Buf, a: number, b: number): number {
  const i = this.thread.x;
  return a * x[i] + b * y[i];
}

export function copyRowsKernel(this: KThis, dst: Buf, src: Buf): number {
  const i = this.thread.x;
  const old = dst[i];
  const t = i - this.constants.dstOffset;
  if (t < 0) return old;
  const b = idiv(t, this.constants.dstStride);
  const j = t - b * this.constants.dstStride;
  if (b >= this.constants.batch || j >= this.constants.n) return old;
  const v = src[b * this.constants.srcStride + this.constants.srcOffset + j];
  if (this.constants.accumulate > 0) return old + v;
  return v;
}

/** C[row, col] = alpha * sum_k op(A)[row, k] op(B)[k, col] (+ beta * C when useC). */
export function gemmKernel(this: KThis, A: Buf, B: Buf, C: Buf, alpha: number, beta: number): number {
  const i = this.thread.x;
  const row = idiv(i, this.constants.N);
  const col = i - row * this.constants.N;
  const aBase = row * this.constants.aRow;
  const bBase = col * this.constants.bCol;
  let sum = 0;
  for (let k = 0; k < this.constants.K; k++) {
    sum += A[aBase + k * this.constants.aK] * B[bBase + k * this.constants.bK];
  }
  if (this.constants.useC > 0) return alpha * sum + beta * C[i];
  return alpha * sum;
}

/** out[b, f, oy, ox]: one thread per output, looping over the filter's channels and taps. */
export function convForwardKernel(this: KThis, input: Buf, weights: Buf): number {
  const i = this.thread.x;
  const t1 = idiv(i, this.constants.outW);
  const ox = i - t1 * this.constants.outW;
  const t2 = idiv(t1, this.constants.outH);
  const oy = t1 - t2 * this.constants.outH;
  const b = idiv(t2, this.constants.n);
  const f = t2 - b * this.constants.n;
  const g = idiv(f, this.constants.fpg);
  const y0 = oy * this.constants.stride - this.constants.pad;
  const x0 = ox * this.constants.stride - this.constants.pad;
  let sum = 0;
  for (let ch = 0; ch < this.constants.cpg; ch++) {
    const plane = (b * this.constants.c + g * this.constants.cpg + ch) * this.constants.h;
    const wBase = (f * this.constants.cpg + ch) * this.constants.size;
    for (let ky = 0; ky < this.constants.size; ky++) {
      const iy = y0 + ky;
      if (iy >= 0 && iy < this.constants.h) {
        for (let kx = 0; kx < this.constants.size; kx++) {
          const ix = x0 + kx;
          if (ix >= 0 && ix < this.constants.w) {
            sum += input[(plane + iy) * this.constants.w + ix] * weights[(wBase + ky) * this.constants.size + kx];
          }
        }
      }
    }
  }
  return sum;
}

/** weightUpdates[f, ch, ky, kx] += sum over batch and output pixels: one thread per weight. */
export function convBackwardFilterKernel(this: KThis, old: Buf, delta: Buf, input: Buf): number {
  const i = this.thread.x;
  const t1 = idiv(i, this.constants.size);
  const kx = i - t1 * this.constants.size;
  const t2 = idiv(t1, this.constants.size);
  const ky = t1 - t2 * this.constants.size;
  const f = idiv(t2, this.constants.cpg);
  const ch = t2 - f * this.constants.cpg;
  const inC = idiv(f, this.constants.fpg) * this.constants.cpg + ch;
  let sum = 0;
  for (let b = 0; b < this.constants.batch; b++) {
    const dPlane = (b * this.constants.n + f) * this.constants.outH;
    const iPlane = (b * this.constants.c + inC) * this.constants.h;
    for (let oy = 0; oy < this.constants.outH; oy++) {
      const iy = oy * this.constants.stride - this.constants.pad + ky;
      if (iy >= 0 && iy < this.constants.h) {
        for (let ox = 0; ox < this.constants.outW; ox++) {
          const ix = ox * this.constants.stride - this.constants.pad + kx;
          if (ix >= 0 && ix < this.constants.w) {
            sum += delta[(dPlane + oy) * this.constants.outW + ox] * input[(iPlane + iy) * this.constants.w + ix];
          }
        }
      }
    }
  }
  return old[i] + sum;
}

/**
 * inputDelta[b, ch, y, x] += sum over the filters and taps that read this pixel. The
 * outputs whose window covers row y are oy = ceil((y + pad - size + 1) / stride) ... on,
 * at most `taps` = ceil(size / stride) of them (same for columns): enumerate exactly those,
 * so the inner loops neither divide nor skip taps that cannot touch the pixel.
 */
export function convBackwardDataKernel(this: KThis, old: Buf, delta: Buf, weights: Buf): number {
  const i = this.thread.x;
  const t1 = idiv(i, this.constants.w);
  const x = i - t1 * this.constants.w;
  const t2 = idiv(t1, this.constants.h);
  const y = t1 - t2 * this.constants.h;
  const b = idiv(t2, this.constants.c);
  const ch = t2 - b * this.constants.c;
  const g = idiv(ch, this.constants.cpg);
  const cl = ch - g * this.constants.cpg;
  // ceil(t / stride) for t >= -size, kept non-negative for idiv by a shift of `size` strides
  const shift = this.constants.size * this.constants.stride + this.constants.stride - 1;
  const oy0 = idiv(y + this.constants.pad - this.constants.size + 1 + shift, this.constants.stride) - this.constants.size;
  const ox0 = idiv(x + this.constants.pad - this.constants.size + 1 + shift, this.constants.stride) - this.constants.size;
  let sum = 0;
  for (let fl = 0; fl < this.constants.fpg; fl++) {
    const f = g * this.constants.fpg + fl;
    const dPlane = (b * this.constants.n + f) * this.constants.outH;
    const wBase = (f * this.constants.cpg + cl) * this.constants.size;
    for (let jy = 0; jy < this.constants.taps; jy++) {
      const oy = oy0 + jy;
      const ky = y + this.constants.pad - oy * this.constants.stride;
      if (oy >= 0 && oy < this.constants.outH && ky >= 0) {
        for (let jx = 0; jx < this.constants.taps; jx++) {
          const ox = ox0 + jx;
          const kx = x + this.constants.pad - ox * this.constants.stride;
          if (ox >= 0 && ox < this.constants.outW && kx >= 0) {
            sum += delta[(dPlane + oy) * this.constants.outW + ox] * weights[(wBase + ky) * this.constants.size + kx];
          }
        }
      }
    }
  }
  return old[i] + sum;
}

export function addBiasKernel(this: KThis, x: Buf, biases: Buf): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  return x[i] + biases[t - idiv(t, this.constants.channels) * this.constants.channels];
}

export function scaleBiasKernel(this: KThis, x: Buf, scales: Buf): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  return x[i] * scales[t - idiv(t, this.constants.channels) * this.constants.channels];
}

/** out[f] = old[f] + sum over b, i of x[b, f, i] (* y[b, f, i] when useY). */
export function channelSumKernel(this: KThis, old: Buf, x: Buf, y: Buf): number {
  const f = this.thread.x;
  let sum = 0;
  for (let b = 0; b < this.constants.batch; b++) {
    const base = (b * this.constants.channels + f) * this.constants.spatial;
    for (let s = 0; s < this.constants.spatial; s++) {
      if (this.constants.useY > 0) {
        sum += x[base + s] * y[base + s];
      } else {
        sum += x[base + s];
      }
    }
  }
  if (this.constants.useOld > 0) return old[f] + sum;
  return sum * this.constants.scale;
}

/** variance[f] = mean over b, i of (x - mean[f])^2, biased. */
export function varianceKernel(this: KThis, x: Buf, mean: Buf): number {
  const f = this.thread.x;
  const m = mean[f];
  let sum = 0;
  for (let b = 0; b < this.constants.batch; b++) {
    const base = (b * this.constants.channels + f) * this.constants.spatial;
    for (let s = 0; s < this.constants.spatial; s++) {
      const d = x[base + s] - m;
      sum += d * d;
    }
  }
  return sum * this.constants.scale;
}

export function normalizeKernel(this: KThis, x: Buf, mean: Buf, variance: Buf, eps: number): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  const f = t - idiv(t, this.constants.channels) * this.constants.channels;
  return (x[i] - mean[f]) / Math.sqrt(variance[f] + eps);
}

export function batchnormBackwardKernel(this: KThis, dxhat: Buf, xNorm: Buf, meanG: Buf, meanGX: Buf, variance: Buf, eps: number): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  const f = t - idiv(t, this.constants.channels) * this.constants.channels;
  return (dxhat[i] - meanG[f] - xNorm[i] * meanGX[f]) / Math.sqrt(variance[f] + eps);
}

export function maxpoolForwardKernel(this: KThis, input: Buf): number {
  const i = this.thread.x;
  const t1 = idiv(i, this.constants.outW);
  const ox = i - t1 * this.constants.outW;
  const plane = idiv(t1, this.constants.outH);
  const oy = t1 - plane * this.constants.outH;
  const y0 = oy * this.constants.stride - this.constants.offset;
  const x0 = ox * this.constants.stride - this.constants.offset;
  let max = this.constants.negMax;
  for (let ky = 0; ky < this.constants.size; ky++) {
    const iy = y0 + ky;
    for (let kx = 0; kx < this.constants.size; kx++) {
      const ix = x0 + kx;
      if (iy >= 0 && iy < this.constants.h && ix >= 0 && ix < this.constants.w) {
        const v = input[(plane * this.constants.h + iy) * this.constants.w + ix];
        if (v > max) max = v;
      }
    }
  }
  return max;
}

/**
 * inputDelta[tap] += delta of every output whose max was this tap: for each window that
 * contains this pixel, rescan the window and compare its winning tap with ours.
 */
export function maxpoolBackwardKernel(this: KThis, old: Buf, delta: Buf, input: Buf): number {
  const i = this.thread.x;
  const t1 = idiv(i, this.constants.w);
  const x = i - t1 * this.constants.w;
  const plane = idiv(t1, this.constants.h);
  const y = t1 - plane * this.constants.h;
  let sum = 0;
  for (let ky = 0; ky < this.constants.size; ky++) {
    const ty = y + this.constants.offset - ky;
    const oy = idiv(Math.max(ty, 0), this.constants.stride);
    if (ty >= 0 && oy * this.constants.stride === ty && oy < this.constants.outH) {
      for (let kx = 0; kx < this.constants.size; kx++) {
        const tx = x + this.constants.offset - kx;
        const ox = idiv(Math.max(tx, 0), this.constants.stride);
        if (tx >= 0 && ox * this.constants.stride === tx && ox < this.constants.outW) {
          // rescan window (oy, ox); the first strictly greater tap wins, as in darknet
          let max = this.constants.negMax;
          let best = -1;
          for (let wy = 0; wy < this.constants.size; wy++) {
            const iy = oy * this.constants.stride - this.constants.offset + wy;
            for (let wx = 0; wx < this.constants.size; wx++) {
              const ix = ox * this.constants.stride - this.constants.offset + wx;
              if (iy >= 0 && iy < this.constants.h && ix >= 0 && ix < this.constants.w) {
                const v = input[(plane * this.constants.h + iy) * this.constants.w + ix];
                if (v > max) {
                  max = v;
                  best = wy * this.constants.size + wx;
                }
              }
            }
          }
          if (best === ky * this.constants.size + kx) {
            sum += delta[(plane * this.constants.outH + oy) * this.constants.outW + ox];
          }
        }
      }
    }
  }
  return old[i] + sum;
}

export function avgpoolBackwardKernel(this: KThis, old: Buf, delta: Buf): number {
  const i = this.thread.x;
  return old[i] + delta[idiv(i, this.constants.spatial)] / this.constants.spatial;
}

/** darknet's softmax over runs of `len` values: exp(x / T - max / T) / sum. */
export function softmaxKernel(this: KThis, input: Buf, temperature: number): number {
  const i = this.thread.x;
  const start = idiv(i, this.constants.len) * this.constants.len;
  let largest = this.constants.negMax;
  for (let j = 0; j < this.constants.len; j++) {
    const v = input[start + j];
    if (v > largest) largest = v;
  }
  let sum = 0;
  for (let j = 0; j < this.constants.len; j++) {
    sum += Math.exp(input[start + j] / temperature - largest / temperature);
  }
  return Math.exp(input[i] / temperature - largest / temperature) / sum;
}

export function softmaxDeltaKernel(this: KThis, output: Buf, truth: Buf): number {
  const i = this.thread.x;
  return truth[i] - output[i];
}

/** One partial sum of -log(p) where truth != 0 per chunk of LOSS_CHUNK values. */
export function crossEntropySumKernel(this: KThis, output: Buf, truth: Buf): number {
  const start = this.thread.x * this.constants.chunk;
  let sum = 0;
  for (let j = 0; j < this.constants.chunk; j++) {
    const i = start + j;
    if (i < this.constants.n) {
      if (truth[i] !== 0) sum += -Math.log(output[i]);
    }
  }
  return sum;
}

/** cost delta, by type (0 sse, 1 L1, 2 smooth). */
export function costDeltaKernel(this: KThis, pred: Buf, truth: Buf): number {
  const i = this.thread.x;
  const d = truth[i] - pred[i];
  let sign = -1;
  if (d > 0) sign = 1;
  if (this.constants.type === 0) return d;
  if (this.constants.type === 2 && Math.abs(d) < 1) return d;
  return sign;
}

export function costSumKernel(this: KThis, pred: Buf, truth: Buf): number {
  const start = this.thread.x * this.constants.chunk;
  let sum = 0;
  for (let j = 0; j < this.constants.chunk; j++) {
    const i = start + j;
    if (i < this.constants.n) {
      const d = truth[i] - pred[i];
      const a = Math.abs(d);
      if (this.constants.type === 0) {
        sum += d * d;
      } else if (this.constants.type === 1) {
        sum += a;
      } else if (a < 1) {
        sum += d * d;
      } else {
        sum += 2 * a - 1;
      }
    }
  }
  return sum;
}

export function dropoutKernel(this: KThis, old: Buf, src: Buf, rand: Buf, prob: number, scale: number): number {
  const i = this.thread.x;
  let v = src[i] * scale;
  if (rand[i] < prob) v = 0;
  if (this.constants.accumulate > 0) return old[i] + v;
  return v;
}

/** darknet's shortcut_cpu as a gather over `out`: positions it does not sample keep their value. */
export function shortcutKernel(this: KThis, out: Buf, add: Buf, s1: number, s2: number): number {
  const o = this.thread.x;
  const t1 = idiv(o, this.constants.w2);
  const x = o - t1 * this.constants.w2;
  const t2 = idiv(t1, this.constants.h2);
  const y = t1 - t2 * this.constants.h2;
  const b = idiv(t2, this.constants.c2);
  const k = t2 - b * this.constants.c2;
  const i = idiv(x, this.constants.sample);
  const j = idiv(y, this.constants.sample);
  const old = out[o];
  if (k < this.constants.minC && i * this.constants.sample === x && j * this.constants.sample === y &&
      i < this.constants.minW && j < this.constants.minH) {
    const a = i * this.constants.stride + this.constants.w1 * (j * this.constants.stride + this.constants.h1 * (k + this.constants.c1 * b));
    return s1 * old + s2 * add[a];
  }
  return old;
}

/**
 * darknet's SGD, the weights half: u = updates - decay * B * w; w + rate / B * u.
 * NOTE: a select, not a multiply, for masked weights: x * 0 keeps NaN and -0.
 */
export function sgdWeightsKernel(this: KThis, weights: Buf, updates: Buf, mask: Buf, decayB: number, rateOverB: number): number {
  const i = this.thread.x;
  const w = weights[i];
  const u = updates[i] + decayB * w;
  if (this.constants.masked > 0) {
    if (mask[i] === 0) return 0;
  }
  return w + rateOverB * u;
}

/** darknet's SGD, the updates half: (updates - decay * B * w) * momentum, from the same old inputs. */
export function sgdUpdatesKernel(this: KThis, weights: Buf, updates: Buf, mask: Buf, decayB: number, momentum: number): number {
  const i = this.thread.x;
  const u = updates[i] + decayB * weights[i];
  if (this.constants.masked > 0) {
    if (mask[i] === 0) return 0;
  }
  return u * momentum;
}

// Activations (darknet's activations.h) as gpu.js source fragments over `x`. Written as
// selects, not darknet's `x * (x > 0)`, which gpu.js cannot type; elu, selu and tanh
// avoid exp overflow (darknet's forms turn NaN there), as the reference does.
export const ACTIVATE: Record<Activation, string> = {
  logistic: 'return 1 / (1 + Math.exp(-x));',
  loggy: 'return 2 / (1 + Math.exp(-x)) - 1;',
  relu: 'if (x > 0) return x; return 0;',
  elu: 'if (x >= 0) return x; return Math.exp(x) - 1;',
  selu: 'if (x >= 0) return 1.0507 * x; return 1.0507 * 1.6732 * (Math.exp(x) - 1);',
  relie: 'if (x > 0) return x; return 0.01 * x;',
  plse: 'if (x < -4) return 0.01 * (x + 4); if (x > 4) return 0.01 * (x - 4) + 1; return 0.125 * x + 0.5;',
  hardtan: 'if (x < -1) return -1; if (x > 1) return 1; return x;',
  lhtan: 'if (x < 0) return 0.001 * x; if (x > 1) return 0.001 * (x - 1) + 1; return x;',
  linear: 'return x;',
  ramp: 'if (x > 0) return 1.1 * x; return 0.1 * x;',
  leaky: 'if (x > 0) return x; return 0.1 * x;',
  tanh: 'const e = Math.exp(-2 * Math.abs(x)); const t = (1 - e) / (1 + e); if (x < 0) return -t; return t;',
  stair: 'const n = Math.floor(x); const h = Math.floor(x / 2); if (n - 2 * Math.floor(n / 2) === 0) return h; return (x - n) + h;',
  // softplus (threshold 20) is >= 0, so tanh needs no sign case
  mish: 'let sp = x; if (x < -20) { sp = Math.exp(x); } else if (x <= 20) { sp = Math.log(1 + Math.exp(x)); } ' +
    'const e = Math.exp(-2 * sp); return x * ((1 - e) / (1 + e));',
};

/** d(act)/dx from the activation's OUTPUT y, darknet's *_gradient (mish: from its input). */
export const GRADIENT: Record<Activation, string> = {
  logistic: 'return (1 - y) * y;',
  loggy: 'const s = (y + 1) / 2; return 2 * (1 - s) * s;',
  relu: 'if (y > 0) return 1; return 0;',
  elu: 'if (y >= 0) return 1; return y + 1;',
  selu: 'if (y >= 0) return 1.0507; return y + 1.0507 * 1.6732;',
  relie: 'if (y > 0) return 1; return 0.01;',
  plse: 'if (y < 0 || y > 1) return 0.01; return 0.125;',
  hardtan: 'if (y > -1 && y < 1) return 1; return 0;',
  lhtan: 'if (y > 0 && y < 1) return 1; return 0.001;',
  linear: 'return 1;',
  ramp: 'if (y > 0) return 1.1; return 0.1;',
  leaky: 'if (y > 0) return 1; return 0.1;',
  tanh: 'return 1 - y * y;',
  stair: 'if (Math.floor(y) === y) return 0; return 1;',
  // y is the activation's INPUT for mish (types.ts GRADIENT_FROM_INPUT)
  mish: 'let sp = y; if (y < -20) { sp = Math.exp(y); } else if (y <= 20) { sp = Math.log(1 + Math.exp(y)); } ' +
    'const e = Math.exp(-2 * sp); const t = (1 - e) / (1 + e); return y * (1 - t * t) * (1 - Math.exp(-sp)) + t;',
};

/** The cost type codes that costDeltaKernel and costSumKernel branch on (`this.constants.type`). */
export const COST_TYPE: Record<CostType, number> = { sse: 0, L1: 1, smooth: 2 };
