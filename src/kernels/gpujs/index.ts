import { GPU, type IKernelRunShortcut, type Texture } from 'gpu.js';
import type {
  Activation, BackendName, ChannelShape, ConvShape, CostType, FloatArray, GemmShape, KernelStats,
  Kernels, PoolShape, SgdParams, ShortcutShape, Tensor,
} from '../types';
import {
  checkChannels, checkConv, checkPool, checkShortcut, expectLive, expectNotDisposed, expectSize, markFreed, sameSize,
} from '../checks';
import {
  ACTIVATE, addBiasKernel, avgpoolBackwardKernel, axpbyKernel, batchnormBackwardKernel, channelSumKernel,
  convBackwardDataKernel, convBackwardFilterKernel, convForwardKernel, copyRowsKernel, COST_TYPE, costDeltaKernel,
  costSumKernel, crossEntropySumKernel, dropoutKernel, fillKernel, gemmKernel, GRADIENT, identityKernel, idiv,
  maxpoolBackwardKernel, maxpoolForwardKernel, normalizeKernel, scaleBiasKernel, sgdUpdatesKernel, sgdWeightsKernel,
  shortcutKernel, softmaxDeltaKernel, softmaxKernel, varianceKernel,
} from './sources';

/**
 * The kernel seam on gpu.js, in one of its modes. Every op is one or a few gpu.js
 * kernels over flat 1D outputs (`output: [size]`), one thread per output element;
 * reductions are one thread per output looping over the reduced axis.
 *
 * Storage: a Float32Array on cpu and webasm, a gpu.js Texture on headlessgl. Kernels
 * run with `pipeline: true, immutable: true`, so every call returns fresh storage; an
 * op rebinds its destination tensor to the result (deleting the old texture). That is
 * why a destination may also be an input (sgdUpdate, activate in place), and why "+="
 * ops read the old destination as an input and return old + contribution. `free`
 * deletes a tensor's texture; `dispose` has gpu.js destroy every kernel, which deletes
 * every texture they made, and the GL context.
 *
 * Kernels are compiled once per (op, shape, constants) and cached; every loop is
 * bounded by `this.constants` (see the NOTE on loopMaxIterations in `kernel`).
 *
 * The kernel functions themselves are in ./sources.ts, apart from this class: gpu.js
 * compiles them from their source text, so they must stay closure-free (see its NOTE).
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
  private disposed = false;
  /** gpu.js's teardown, started by dispose */
  private teardown: Promise<void> | null = null;

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
    expectNotDisposed('alloc', this.backend, this.disposed);
    if (!Number.isInteger(size) || size < 0) throw new Error(`alloc: size must be a non-negative integer, got ${size}`);
    if (!this.onDevice || size === 0) return new GpuJsTensor(size, new Float32Array(size), this);
    return new GpuJsTensor(size, this.run(`fill|${size}`, () => ({ source: fillKernel, output: size }), [0]), this);
  }

  free(t: Tensor): void {
    if (!(t instanceof GpuJsTensor) || t.owner !== this) throw new Error(`free: not a tensor of this ${this.mode} backend`);
    markFreed(t);
    // after dispose the textures go with gpu.js's kernels and the GL context
    if (!this.disposed) this.release(t.data);
    t.data = new Float32Array(0);
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

  /**
   * Refuses further use at once; gpu.js destroys the kernels, their textures and the GL
   * context on the next turn of the event loop (`released()` resolves then).
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cache.clear();
    this.teardown = this.gpu.destroy();
    // NOTE: nobody may await it; its failure is kept for released(), not left unhandled
    this.teardown.catch(() => undefined);
  }


  /** Resolves once gpu.js has released what `dispose` gave back (at once if not disposed). */
  released(): Promise<void> {
    return this.teardown ?? Promise.resolve();
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

  /** A live tensor made by this backend. */
  private tensor(op: string, t: Tensor): GpuJsTensor {
    if (!(t instanceof GpuJsTensor) || t.owner !== this) throw new Error(`${op}: not a tensor of this ${this.mode} backend`);
    expectNotDisposed(op, this.backend, this.disposed);
    expectLive(op, t);
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
