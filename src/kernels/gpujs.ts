import { GPU, type IKernelRunShortcut, type Texture } from 'gpu.js';
import type {
  Activation, BackendName, ChannelShape, ConvShape, CostType, FloatArray, GemmShape, KernelStats,
  Kernels, PoolShape, SgdParams, ShortcutShape, Tensor,
} from './types';
import { checkChannels, checkConv, checkPool, checkShortcut, expectSize, sameSize } from './checks';

/**
 * The kernel seam on gpu.js, in one of its modes. Every op is one or a few gpu.js
 * kernels over flat 1D outputs (`output: [size]`), one thread per output element;
 * reductions are one thread per output looping over the reduced axis.
 *
 * Storage: a Float32Array on cpu and webasm, a gpu.js Texture on headlessgl. Kernels
 * run with `pipeline: true, immutable: true`, so every call returns fresh storage; an
 * op rebinds its destination tensor to the result (deleting the old texture). That is
 * why a destination may also be an input (sgdUpdate, activate in place), and why "+="
 * ops read the old destination as an input and return old + contribution.
 *
 * Kernels are compiled once per (op, shape, constants) and cached; every loop is
 * bounded by `this.constants` (see the NOTE on loopMaxIterations in `kernel`).
 *
 * NOTE: gpu.js compiles kernels from their source text (Function#toString), so the
 * functions below must stay plain JavaScript after tsc: no helpers from other modules,
 * no closures, and no coverage instrumentation (jest --coverage would inject counters).
 *
 * @example
 *   const k = new GpuJsKernels('webasm');
 *   const x = k.alloc(4);
 *   k.upload(x, [-1, 0, 1, 2]);
 *   k.activate(x, x, 'leaky');
 *   k.read(x); // Float32Array [-0.1, 0, 1, 2]
 */

export type GpuJsMode = 'cpu' | 'webasm' | 'headlessgl' | 'webgpu';

type Storage = Float32Array | Texture;

class GpuJsTensor implements Tensor {
  constructor(readonly size: number, public data: Storage, readonly owner: GpuJsKernels) {}
}

/** What a kernel function sees as `this` (constants are numbers, by construction). */
interface KThis {
  thread: { x: number };
  constants: Record<string, number>;
}
type Buf = Float32Array;

/** How one kernel is built: its source, output length and compile-time constants. */
interface KernelSpec {
  source: Function | string;
  output: number;
  constants?: Record<string, number>;
  /** helper functions (source text) besides idiv, which every kernel gets */
  functions?: string[];
}

/** darknet's -FLT_MAX, the value of an out-of-image maxpool tap. */
const NEG_FLT_MAX = -3.4028234663852886e38;
/** Elements per thread of the loss reductions whose results are read back and summed on the host. */
const LOSS_CHUNK = 256;

const KERNEL_CLASS: Record<GpuJsMode, string> = {
  cpu: 'CPUKernel',
  webasm: 'WebAssemblyKernel',
  headlessgl: 'HeadlessGLKernel',
  webgpu: 'WebGPUKernel',
};

// ---- kernel sources (gpu.js JavaScript subset) ----

/**
 * floor(a / b) for non-negative integers held in floats, exact below 2^24: the float
 * quotient can land one off (GPU division is a reciprocal multiply), the remainder says which way.
 */
function idiv(a: number, b: number): number {
  let q = Math.floor((a + 0.5) / b);
  const r = a - q * b;
  if (r < 0) q = q - 1;
  if (r >= b) q = q + 1;
  return q;
}

function identityKernel(this: KThis, src: Buf): number {
  return src[this.thread.x];
}

function fillKernel(this: KThis, value: number): number {
  return value;
}

function axpbyKernel(this: KThis, x: Buf, y: Buf, a: number, b: number): number {
  const i = this.thread.x;
  return a * x[i] + b * y[i];
}

function copyRowsKernel(this: KThis, dst: Buf, src: Buf): number {
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
function gemmKernel(this: KThis, A: Buf, B: Buf, C: Buf, alpha: number, beta: number): number {
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
function convForwardKernel(this: KThis, input: Buf, weights: Buf): number {
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
function convBackwardFilterKernel(this: KThis, old: Buf, delta: Buf, input: Buf): number {
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
function convBackwardDataKernel(this: KThis, old: Buf, delta: Buf, weights: Buf): number {
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

function addBiasKernel(this: KThis, x: Buf, biases: Buf): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  return x[i] + biases[t - idiv(t, this.constants.channels) * this.constants.channels];
}

function scaleBiasKernel(this: KThis, x: Buf, scales: Buf): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  return x[i] * scales[t - idiv(t, this.constants.channels) * this.constants.channels];
}

/** out[f] = old[f] + sum over b, i of x[b, f, i] (* y[b, f, i] when useY). */
function channelSumKernel(this: KThis, old: Buf, x: Buf, y: Buf): number {
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
function varianceKernel(this: KThis, x: Buf, mean: Buf): number {
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

function normalizeKernel(this: KThis, x: Buf, mean: Buf, variance: Buf, eps: number): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  const f = t - idiv(t, this.constants.channels) * this.constants.channels;
  return (x[i] - mean[f]) / Math.sqrt(variance[f] + eps);
}

function batchnormBackwardKernel(this: KThis, dxhat: Buf, xNorm: Buf, meanG: Buf, meanGX: Buf, variance: Buf, eps: number): number {
  const i = this.thread.x;
  const t = idiv(i, this.constants.spatial);
  const f = t - idiv(t, this.constants.channels) * this.constants.channels;
  return (dxhat[i] - meanG[f] - xNorm[i] * meanGX[f]) / Math.sqrt(variance[f] + eps);
}

function maxpoolForwardKernel(this: KThis, input: Buf): number {
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
function maxpoolBackwardKernel(this: KThis, old: Buf, delta: Buf, input: Buf): number {
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

function avgpoolBackwardKernel(this: KThis, old: Buf, delta: Buf): number {
  const i = this.thread.x;
  return old[i] + delta[idiv(i, this.constants.spatial)] / this.constants.spatial;
}

/** darknet's softmax over runs of `len` values: exp(x / T - max / T) / sum. */
function softmaxKernel(this: KThis, input: Buf, temperature: number): number {
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

function softmaxDeltaKernel(this: KThis, output: Buf, truth: Buf): number {
  const i = this.thread.x;
  return truth[i] - output[i];
}

/** One partial sum of -log(p) where truth != 0 per chunk of LOSS_CHUNK values. */
function crossEntropySumKernel(this: KThis, output: Buf, truth: Buf): number {
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
function costDeltaKernel(this: KThis, pred: Buf, truth: Buf): number {
  const i = this.thread.x;
  const d = truth[i] - pred[i];
  let sign = -1;
  if (d > 0) sign = 1;
  if (this.constants.type === 0) return d;
  if (this.constants.type === 2 && Math.abs(d) < 1) return d;
  return sign;
}

function costSumKernel(this: KThis, pred: Buf, truth: Buf): number {
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

function dropoutKernel(this: KThis, old: Buf, src: Buf, rand: Buf, prob: number, scale: number): number {
  const i = this.thread.x;
  let v = src[i] * scale;
  if (rand[i] < prob) v = 0;
  if (this.constants.accumulate > 0) return old[i] + v;
  return v;
}

/** darknet's shortcut_cpu as a gather over `out`: positions it does not sample keep their value. */
function shortcutKernel(this: KThis, out: Buf, add: Buf, s1: number, s2: number): number {
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
function sgdWeightsKernel(this: KThis, weights: Buf, updates: Buf, mask: Buf, decayB: number, rateOverB: number): number {
  const i = this.thread.x;
  const w = weights[i];
  const u = updates[i] + decayB * w;
  if (this.constants.masked > 0) {
    if (mask[i] === 0) return 0;
  }
  return w + rateOverB * u;
}

/** darknet's SGD, the updates half: (updates - decay * B * w) * momentum, from the same old inputs. */
function sgdUpdatesKernel(this: KThis, weights: Buf, updates: Buf, mask: Buf, decayB: number, momentum: number): number {
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
const ACTIVATE: Record<Activation, string> = {
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
};

/** d(act)/dx from the activation's OUTPUT y, darknet's *_gradient. */
const GRADIENT: Record<Activation, string> = {
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
};

const COST_TYPE: Record<CostType, number> = { sse: 0, L1: 1, smooth: 2 };

// ---- the backend ----

export class GpuJsKernels implements Kernels {
  readonly backend: BackendName;
  private readonly gpu: GPU;
  private readonly onDevice: boolean;
  private readonly cache = new Map<string, IKernelRunShortcut>();
  private readonly fallbacks = new Map<string, string>();
  private compiled = 0;
  private readbacks = 0;
  private kernelClass = '';

  /**
   * @param mode the gpu.js mode to run in; it must start (see backend.ts, which probes it).
   * NOTE: gpu.js's webgpu kernels always return Promises, which this synchronous seam
   * cannot chain; backend.ts reports webgpu as not startable for that reason.
   */
  constructor(readonly mode: GpuJsMode) {
    this.gpu = new GPU({ mode });
    this.onDevice = mode === 'headlessgl' || mode === 'webgpu';
    // Run one tiny kernel now so `backend` names the class gpu.js really picked
    // (mode 'gpu' and failed backends fall back silently).
    this.release(this.run('fill|1', () => ({ source: fillKernel, output: 1 }), [0]));
    this.kernelClass = this.classOf(this.cache.get('fill|1') ?? null) ?? KERNEL_CLASS[mode];
    this.backend = classToBackend(this.kernelClass) ?? mode;
  }

  get description(): string {
    let text = `${this.backend} (gpu.js ${this.kernelClass})`;
    if (this.fallbacks.size > 0) {
      const [op, reason] = this.fallbacks.entries().next().value as [string, string];
      text += `; ${this.fallbacks.size} kernel(s) fell back to CPUKernel, e.g. ${op}: ${reason}`;
    }
    return text;
  }

  // ---- storage ----

  alloc(size: number): Tensor {
    if (!Number.isInteger(size) || size < 0) throw new Error(`alloc: size must be a non-negative integer, got ${size}`);
    if (!this.onDevice || size === 0) return new GpuJsTensor(size, new Float32Array(size), this);
    return new GpuJsTensor(size, this.run(`fill|${size}`, () => ({ source: fillKernel, output: size }), [0]), this);
  }

  upload(dst: Tensor, src: ArrayLike<number>): void {
    const d = this.tensor('upload', dst);
    if (src.length !== d.size) throw new Error(`upload: source has ${src.length} values, tensor has ${d.size}`);
    const values = src instanceof Float32Array ? src : Float32Array.from(src);
    if (!this.onDevice || d.size === 0) {
      (d.data as Float32Array).set(values);
      return;
    }
    this.bind(d, this.run(`copy|${d.size}`, () => ({ source: identityKernel, output: d.size }), [values]));
  }

  read(src: Tensor): FloatArray {
    const s = this.tensor('read', src);
    this.readbacks++;
    return this.toHost(s.data);
  }

  fill(dst: Tensor, value: number): void {
    const d = this.tensor('fill', dst);
    if (!this.onDevice || d.size === 0) {
      (d.data as Float32Array).fill(value);
      return;
    }
    this.bind(d, this.run(`fill|${d.size}`, () => ({ source: fillKernel, output: d.size }), [value]));
  }

  copy(dst: Tensor, src: Tensor): void {
    const [d, s] = this.tensors('copy', dst, src);
    sameSize('copy', d, s);
    if (d === s || d.size === 0) return;
    this.bind(d, this.run(`copy|${d.size}`, () => ({ source: identityKernel, output: d.size }), [s.data]));
  }

  axpby(dst: Tensor, a: number, x: Tensor, b: number): void {
    const [d, xs] = this.tensors('axpby', dst, x);
    sameSize('axpby', d, xs);
    if (d.size === 0) return;
    this.bind(d, this.run(`axpby|${d.size}`, () => ({ source: axpbyKernel, output: d.size }), [xs.data, d.data, a, b]));
  }

  copyRows(dst: Tensor, src: Tensor, r: {
    batch: number; n: number; srcStride: number; srcOffset: number;
    dstStride: number; dstOffset: number; accumulate: boolean;
  }): void {
    const [d, s] = this.tensors('copyRows', dst, src);
    if (r.batch <= 0 || r.n <= 0) return;
    const lastSrc = (r.batch - 1) * r.srcStride + r.srcOffset + r.n;
    const lastDst = (r.batch - 1) * r.dstStride + r.dstOffset + r.n;
    if (r.srcOffset < 0 || lastSrc > s.size) throw new Error(`copyRows: rows reach index ${lastSrc} of a source of ${s.size}`);
    if (r.dstOffset < 0 || lastDst > d.size) throw new Error(`copyRows: rows reach index ${lastDst} of a destination of ${d.size}`);
    if (r.n > r.dstStride && r.batch > 1) throw new Error(`copyRows: rows of ${r.n} overlap at a destination stride of ${r.dstStride}`);
    const constants = {
      batch: r.batch, n: r.n, srcStride: r.srcStride, srcOffset: r.srcOffset,
      dstStride: Math.max(r.dstStride, 1), dstOffset: r.dstOffset, accumulate: r.accumulate ? 1 : 0,
    };
    const key = `copyRows|${d.size}|${s.size}|${Object.values(constants).join(',')}`;
    this.bind(d, this.run(key, () => ({ source: copyRowsKernel, output: d.size, constants }), [d.data, s.data]));
  }

  // ---- gemm ----

  gemm(C: Tensor, A: Tensor, B: Tensor, s: GemmShape): void {
    const [c, a, b] = this.tensors('gemm', C, A, B);
    if (C === A || C === B) throw new Error('gemm: C may not alias A or B');
    const { M, N, K } = s;
    expectSize('gemm', 'A', a, M * K);
    expectSize('gemm', 'B', b, K * N);
    expectSize('gemm', 'C', c, M * N);
    if (c.size === 0) return;
    // op(A)[row, k] = A[row * aRow + k * aK]; op(B)[k, col] = B[k * bK + col * bCol]
    const constants = {
      N, K,
      aRow: s.transA ? 1 : K, aK: s.transA ? M : 1,
      bK: s.transB ? 1 : N, bCol: s.transB ? K : 1,
      useC: s.beta !== 0 ? 1 : 0,
    };
    const key = `gemm|${M}|${N}|${K}|${s.transA}|${s.transB}|${constants.useC}`;
    this.bind(c, this.run(key, () => ({ source: gemmKernel, output: M * N, constants }), [a.data, b.data, c.data, s.alpha, s.beta]));
  }

  // ---- convolution ----

  convForward(out: Tensor, input: Tensor, weights: Tensor, s: ConvShape): void {
    const [o, x, w] = this.tensors('convForward', out, input, weights);
    checkConv('convForward', s, { out: o, input: x, weights: w });
    if (o.size === 0) return;
    const constants = convConstants(s);
    this.bind(o, this.run(`convForward|${convKey(s)}`, () => ({ source: convForwardKernel, output: o.size, constants }), [x.data, w.data]));
  }

  convBackwardFilter(weightUpdates: Tensor, delta: Tensor, input: Tensor, s: ConvShape): void {
    const [u, d, x] = this.tensors('convBackwardFilter', weightUpdates, delta, input);
    checkConv('convBackwardFilter', s, { out: d, input: x, weights: u });
    if (u.size === 0) return;
    const constants = convConstants(s);
    this.bind(u, this.run(`convBackwardFilter|${convKey(s)}`,
      () => ({ source: convBackwardFilterKernel, output: u.size, constants }), [u.data, d.data, x.data]));
  }

  convBackwardData(inputDelta: Tensor, delta: Tensor, weights: Tensor, s: ConvShape): void {
    const [dx, d, w] = this.tensors('convBackwardData', inputDelta, delta, weights);
    checkConv('convBackwardData', s, { out: d, input: dx, weights: w });
    if (dx.size === 0) return;
    const constants = convConstants(s);
    this.bind(dx, this.run(`convBackwardData|${convKey(s)}`,
      () => ({ source: convBackwardDataKernel, output: dx.size, constants }), [dx.data, d.data, w.data]));
  }

  // ---- per-channel ops ----

  addBias(x: Tensor, biases: Tensor, s: ChannelShape): void {
    const [xs, b] = this.tensors('addBias', x, biases);
    checkChannels('addBias', s, xs, b);
    if (xs.size === 0) return;
    this.bind(xs, this.run(`addBias|${channelKey(s)}`,
      () => ({ source: addBiasKernel, output: xs.size, constants: channelConstants(s) }), [xs.data, b.data]));
  }

  scaleBias(x: Tensor, scales: Tensor, s: ChannelShape): void {
    const [xs, sc] = this.tensors('scaleBias', x, scales);
    checkChannels('scaleBias', s, xs, sc);
    if (xs.size === 0) return;
    this.bind(xs, this.run(`scaleBias|${channelKey(s)}`,
      () => ({ source: scaleBiasKernel, output: xs.size, constants: channelConstants(s) }), [xs.data, sc.data]));
  }

  backwardBias(biasUpdates: Tensor, delta: Tensor, s: ChannelShape): void {
    const [u, d] = this.tensors('backwardBias', biasUpdates, delta);
    checkChannels('backwardBias', s, d, u);
    if (u.size === 0) return;
    this.bind(u, this.channelSum('sum+', s, u.data, d.data, d.data, false, true));
  }

  backwardScale(scaleUpdates: Tensor, xNorm: Tensor, delta: Tensor, s: ChannelShape): void {
    const [u, xn, d] = this.tensors('backwardScale', scaleUpdates, xNorm, delta);
    checkChannels('backwardScale', s, d, u);
    sameSize('backwardScale', xn, d);
    if (u.size === 0) return;
    this.bind(u, this.channelSum('dot+', s, u.data, d.data, xn.data, true, true));
  }

  // ---- activations ----

  activate(dst: Tensor, src: Tensor, act: Activation): void {
    const [d, x] = this.tensors('activate', dst, src);
    sameSize('activate', d, x);
    const body = ACTIVATE[act];
    if (!body) throw new Error(`activate: unknown activation "${act}"`);
    if (d.size === 0) return;
    this.bind(d, this.run(`activate|${act}|${d.size}`, () => ({
      source: `function (src) { const x = src[this.thread.x]; ${body} }`, output: d.size,
    }), [x.data]));
  }

  gradient(delta: Tensor, output: Tensor, act: Activation): void {
    const [d, y] = this.tensors('gradient', delta, output);
    sameSize('gradient', d, y);
    const body = GRADIENT[act];
    if (!body) throw new Error(`gradient: unknown activation "${act}"`);
    if (d.size === 0) return;
    // the derivative as a helper function, so its early returns stay inside it
    const name = `grad_${act}`;
    this.bind(d, this.run(`gradient|${act}|${d.size}`, () => ({
      source: `function (delta, out) { const i = this.thread.x; return delta[i] * ${name}(out[i]); }`,
      output: d.size,
      functions: [`function ${name}(y) { ${body} }`],
    }), [d.data, y.data]));
  }

  // ---- pooling ----

  maxpoolForward(out: Tensor, input: Tensor, s: PoolShape): void {
    const [o, x] = this.tensors('maxpoolForward', out, input);
    checkPool('maxpoolForward', s, o, x);
    if (o.size === 0) return;
    this.bind(o, this.run(`maxpoolForward|${poolKey(s)}`,
      () => ({ source: maxpoolForwardKernel, output: o.size, constants: poolConstants(s) }), [x.data]));
  }

  maxpoolBackward(inputDelta: Tensor, delta: Tensor, input: Tensor, s: PoolShape): void {
    const [dx, d, x] = this.tensors('maxpoolBackward', inputDelta, delta, input);
    checkPool('maxpoolBackward', s, d, x);
    sameSize('maxpoolBackward', dx, x);
    if (dx.size === 0) return;
    this.bind(dx, this.run(`maxpoolBackward|${poolKey(s)}`,
      () => ({ source: maxpoolBackwardKernel, output: dx.size, constants: poolConstants(s) }), [dx.data, d.data, x.data]));
  }

  avgpoolForward(out: Tensor, input: Tensor, s: ChannelShape): void {
    const [o, x] = this.tensors('avgpoolForward', out, input);
    checkChannels('avgpoolForward', s, x);
    expectSize('avgpoolForward', 'output', o, s.batch * s.channels);
    if (o.size === 0) return;
    // the mean over each [b, f] row: a channel sum with one "channel" per row
    const rows = { batch: 1, channels: s.batch * s.channels, spatial: s.spatial };
    this.bind(o, this.channelSum('mean', rows, x.data, x.data, x.data, false, false));
  }

  avgpoolBackward(inputDelta: Tensor, delta: Tensor, s: ChannelShape): void {
    const [dx, d] = this.tensors('avgpoolBackward', inputDelta, delta);
    checkChannels('avgpoolBackward', s, dx);
    expectSize('avgpoolBackward', 'delta', d, s.batch * s.channels);
    if (dx.size === 0) return;
    this.bind(dx, this.run(`avgpoolBackward|${channelKey(s)}`,
      () => ({ source: avgpoolBackwardKernel, output: dx.size, constants: { spatial: s.spatial } }), [dx.data, d.data]));
  }

  // ---- softmax and losses ----

  softmax(out: Tensor, input: Tensor, s: { batch: number; inputs: number; groups: number; temperature: number }): void {
    const [o, x] = this.tensors('softmax', out, input);
    expectSize('softmax', 'input', x, s.batch * s.inputs);
    sameSize('softmax', o, x);
    if (!(s.groups >= 1) || s.inputs % s.groups !== 0) throw new Error(`softmax: inputs (${s.inputs}) must be a multiple of groups (${s.groups})`);
    if (o.size === 0) return;
    const constants = { len: s.inputs / s.groups, negMax: NEG_FLT_MAX };
    this.bind(o, this.run(`softmax|${o.size}|${constants.len}`,
      () => ({ source: softmaxKernel, output: o.size, constants }), [x.data, s.temperature]));
  }

  softmaxCrossEntropy(delta: Tensor, output: Tensor, truth: Tensor): number {
    const [d, p, t] = this.tensors('softmaxCrossEntropy', delta, output, truth);
    sameSize('softmaxCrossEntropy', d, p);
    sameSize('softmaxCrossEntropy', t, p);
    const n = p.size;
    if (n === 0) return 0;
    // the partial sums read the old inputs before delta (which may be one of them) is rebound
    const sums = this.run(`xentSum|${n}`, () => lossSpec(crossEntropySumKernel, n, {}), [p.data, t.data]);
    this.bind(d, this.run(`xentDelta|${n}`, () => ({ source: softmaxDeltaKernel, output: n }), [p.data, t.data]));
    return this.sumOnHost(sums);
  }

  cost(delta: Tensor, pred: Tensor, truth: Tensor, type: CostType): number {
    const [d, p, t] = this.tensors('cost', delta, pred, truth);
    sameSize('cost', d, p);
    sameSize('cost', t, p);
    const code = COST_TYPE[type];
    if (code === undefined) throw new Error(`cost: unknown cost type "${type}"`);
    const n = p.size;
    if (n === 0) return 0;
    const sums = this.run(`costSum|${type}|${n}`, () => lossSpec(costSumKernel, n, { type: code }), [p.data, t.data]);
    this.bind(d, this.run(`costDelta|${type}|${n}`,
      () => ({ source: costDeltaKernel, output: n, constants: { type: code } }), [p.data, t.data]));
    return this.sumOnHost(sums);
  }

  // ---- batch norm ----

  batchnormStats(mean: Tensor, variance: Tensor, x: Tensor, s: ChannelShape): void {
    const [m, v, xs] = this.tensors('batchnormStats', mean, variance, x);
    checkChannels('batchnormStats', s, xs, m);
    sameSize('batchnormStats', v, m);
    if (m.size === 0) return;
    const newMean = this.channelSum('mean', s, xs.data, xs.data, xs.data, false, false);
    const newVariance = this.run(`variance|${channelKey(s)}`, () => ({
      source: varianceKernel, output: s.channels,
      constants: { ...channelConstants(s), scale: 1 / (s.batch * s.spatial) },
    }), [xs.data, newMean]);
    this.bind(m, newMean);
    this.bind(v, newVariance);
  }

  normalize(out: Tensor, x: Tensor, mean: Tensor, variance: Tensor, eps: number, s: ChannelShape): void {
    const [o, xs, m, v] = this.tensors('normalize', out, x, mean, variance);
    checkChannels('normalize', s, xs, m);
    sameSize('normalize', v, m);
    sameSize('normalize', o, xs);
    if (o.size === 0) return;
    this.bind(o, this.run(`normalize|${channelKey(s)}`,
      () => ({ source: normalizeKernel, output: o.size, constants: channelConstants(s) }), [xs.data, m.data, v.data, eps]));
  }

  batchnormBackward(out: Tensor, dxhat: Tensor, xNorm: Tensor, variance: Tensor, eps: number, s: ChannelShape): void {
    if (out === dxhat) throw new Error('batchnormBackward: out may not alias dxhat');
    const [o, g, xn, v] = this.tensors('batchnormBackward', out, dxhat, xNorm, variance);
    checkChannels('batchnormBackward', s, g, v);
    sameSize('batchnormBackward', xn, g);
    sameSize('batchnormBackward', o, g);
    if (o.size === 0) return;
    const meanG = this.channelSum('mean', s, g.data, g.data, g.data, false, false); // mean(dxhat)  [channels]
    const meanGX = this.channelSum('dotMean', s, g.data, g.data, xn.data, true, false); // mean(dxhat * xNorm)  [channels]
    this.bind(o, this.run(`batchnormBackward|${channelKey(s)}`,
      () => ({ source: batchnormBackwardKernel, output: o.size, constants: channelConstants(s) }),
      [g.data, xn.data, meanG, meanGX, v.data, eps]));
    this.release(meanG);
    this.release(meanGX);
  }

  // ---- the rest ----

  dropout(dst: Tensor, src: Tensor, rand: Tensor, prob: number, scale: number, accumulate: boolean): void {
    const [d, x, r] = this.tensors('dropout', dst, src, rand);
    sameSize('dropout', d, x);
    sameSize('dropout', r, x);
    if (d.size === 0) return;
    const constants = { accumulate: accumulate ? 1 : 0 };
    this.bind(d, this.run(`dropout|${d.size}|${constants.accumulate}`,
      () => ({ source: dropoutKernel, output: d.size, constants }), [d.data, x.data, r.data, prob, scale]));
  }

  shortcut(out: Tensor, add: Tensor, s1: number, s2: number, s: ShortcutShape): void {
    const [o, a] = this.tensors('shortcut', out, add);
    const { stride, sample } = checkShortcut(s, o, a);
    if (o.size === 0) return;
    const constants = {
      w1: s.w1, h1: s.h1, c1: s.c1, w2: s.w2, h2: s.h2, c2: s.c2, stride, sample,
      minW: Math.min(s.w1, s.w2), minH: Math.min(s.h1, s.h2), minC: Math.min(s.c1, s.c2),
    };
    this.bind(o, this.run(`shortcut|${s.batch}|${Object.values(constants).join(',')}`,
      () => ({ source: shortcutKernel, output: o.size, constants }), [o.data, a.data, s1, s2]));
  }

  sgdUpdate(weights: Tensor, updates: Tensor, mask: Tensor | null, p: SgdParams): void {
    const [w, u] = this.tensors('sgdUpdate', weights, updates);
    const m = mask === null ? null : this.tensor('sgdUpdate', mask);
    sameSize('sgdUpdate', u, w);
    if (m) sameSize('sgdUpdate', m, w);
    if (w.size === 0) return;
    const constants = { masked: m ? 1 : 0 };
    const key = `${w.size}|${constants.masked}`;
    const maskData = m ? m.data : w.data; // unread when unmasked
    const decayB = -p.decay * p.batch;
    // two kernels over the same OLD inputs, then both rebinds
    const newWeights = this.run(`sgdWeights|${key}`, () => ({ source: sgdWeightsKernel, output: w.size, constants }),
      [w.data, u.data, maskData, decayB, p.rate / p.batch]);
    const newUpdates = this.run(`sgdUpdates|${key}`, () => ({ source: sgdUpdatesKernel, output: w.size, constants }),
      [w.data, u.data, maskData, decayB, p.momentum]);
    this.bind(w, newWeights);
    this.bind(u, newUpdates);
  }

  stats(): KernelStats {
    return { compiled: this.compiled, readbacks: this.readbacks };
  }

  /** Blocks until queued GPU work is done (for timing; cpu and webasm are synchronous already). */
  finish(): void {
    if (!this.onDevice) return;
    const kernel = this.cache.values().next().value as IKernelRunShortcut | undefined;
    const context = (kernel?.kernel as unknown as { context?: { finish?: () => void } } | undefined)?.context;
    context?.finish?.();
  }

  destroy(): void {
    this.cache.clear();
    this.gpu.destroy();
  }

  // ---- plumbing ----

  /**
   * Runs the cached kernel for `key`, compiling it from `make()` on first use.
   * NOTE: gpu.js caps every loop at loopMaxIterations (default 1000) and SILENTLY stops
   * a loop bounded by a kernel argument there. Our loops are bounded by constants (not
   * capped), and loopMaxIterations is raised past the largest constant as a second guard.
   */
  private run(key: string, make: () => KernelSpec, args: unknown[]): Storage {
    let kernel = this.cache.get(key);
    if (!kernel) {
      const spec = make();
      const constants = spec.constants ?? {};
      const largest = Math.max(1000, ...Object.values(constants).map((v) => Math.abs(v) < 1e9 ? Math.ceil(Math.abs(v)) + 1 : 0));
      kernel = this.gpu.createKernel(spec.source as never, {
        output: [spec.output],
        constants,
        pipeline: true,
        immutable: true,
        precision: 'single',
        tactic: 'precision',
        loopMaxIterations: largest,
        dynamicOutput: false,
        dynamicArguments: false,
        functions: [idiv, ...(spec.functions ?? [])],
      } as never) as IKernelRunShortcut;
      this.cache.set(key, kernel);
      this.compiled++;
      const result = (kernel as unknown as (...a: unknown[]) => Storage)(...args);
      const reason = kernel.kernel?.fallbackReason ?? null;
      const cls = this.classOf(kernel);
      if (reason || (cls && cls !== this.kernelClass && this.kernelClass !== '')) {
        this.fallbacks.set(key.split('|')[0], reason ?? `ran as ${cls}`);
      }
      return result;
    }
    return (kernel as unknown as (...a: unknown[]) => Storage)(...args);
  }

  /** out[f] = (old[f] +) sum over batch, spatial of x (* y) for channel f, or that sum / count (mean). */
  private channelSum(kind: string, s: ChannelShape, old: Storage, x: Storage, y: Storage, useY: boolean, useOld: boolean): Storage {
    const constants = {
      ...channelConstants(s), useY: useY ? 1 : 0, useOld: useOld ? 1 : 0,
      scale: useOld ? 1 : 1 / (s.batch * s.spatial),
    };
    return this.run(`channelSum|${kind}|${channelKey(s)}`, () => ({ source: channelSumKernel, output: s.channels, constants }), [old, x, y]);
  }

  /** Reads back partial sums and adds them in float64 (counted as one readback). */
  private sumOnHost(partials: Storage): number {
    this.readbacks++;
    const values = this.toHost(partials);
    this.release(partials);
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[i];
    return sum;
  }

  private toHost(data: Storage): Float32Array {
    if (data instanceof Float32Array) return data.slice();
    return (data as Texture).toArray() as Float32Array;
  }

  /** Points a tensor at new storage, freeing the old texture. */
  private bind(t: GpuJsTensor, data: Storage): void {
    const old = t.data;
    t.data = data;
    if (old !== data) this.release(old);
  }

  private release(data: Storage | Tensor): void {
    const storage = data instanceof GpuJsTensor ? data.data : data;
    if (!(storage instanceof Float32Array) && storage && typeof (storage as Texture).delete === 'function') {
      (storage as Texture).delete();
    }
  }

  private classOf(kernel: IKernelRunShortcut | null): string | null {
    const k = kernel?.kernel as unknown as { constructor?: { name?: string } } | undefined;
    return k?.constructor?.name ?? null;
  }

  private tensor(op: string, t: Tensor): GpuJsTensor {
    if (!(t instanceof GpuJsTensor) || t.owner !== this) throw new Error(`${op}: not a tensor of this ${this.mode} backend`);
    return t;
  }

  private tensors(op: string, ...ts: Tensor[]): GpuJsTensor[] {
    return ts.map((t) => this.tensor(op, t));
  }
}

// ---- helpers ----

function classToBackend(cls: string): BackendName | null {
  for (const [mode, name] of Object.entries(KERNEL_CLASS)) if (name === cls) return mode as BackendName;
  return null;
}

function lossSpec(source: KernelSpec['source'], n: number, extra: Record<string, number>): KernelSpec {
  return { source, output: Math.ceil(n / LOSS_CHUNK), constants: { chunk: LOSS_CHUNK, n, ...extra } };
}

function convConstants(s: ConvShape): Record<string, number> {
  return {
    batch: s.batch, c: s.c, h: s.h, w: s.w, n: s.n, size: s.size, stride: s.stride, pad: s.pad,
    outH: s.outH, outW: s.outW, cpg: s.c / s.groups, fpg: s.n / s.groups,
    taps: Math.ceil(s.size / s.stride),
  };
}

function convKey(s: ConvShape): string {
  return [s.batch, s.c, s.h, s.w, s.n, s.groups, s.size, s.stride, s.pad].join(',');
}

function channelConstants(s: ChannelShape): Record<string, number> {
  return { batch: s.batch, channels: s.channels, spatial: s.spatial };
}

function channelKey(s: ChannelShape): string {
  return `${s.batch},${s.channels},${s.spatial}`;
}

function poolConstants(s: PoolShape): Record<string, number> {
  return {
    h: s.h, w: s.w, size: s.size, stride: s.stride, offset: Math.floor(s.padding / 2),
    outH: s.outH, outW: s.outW, negMax: NEG_FLT_MAX,
  };
}

function poolKey(s: PoolShape): string {
  return [s.batch, s.c, s.h, s.w, s.size, s.stride, s.padding].join(',');
}
