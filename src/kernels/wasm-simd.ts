import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {
  Activation, BackendName, ChannelShape, ConvShape, CostType, FloatArray, GemmShape, KernelStats,
  Kernels, PoolShape, SgdParams, ShortcutShape, SparseKernels, Tensor,
} from './types';
import { ACTIVATIONS } from './types';
import {
  checkChannels, checkConv, checkPool, checkShortcut, expectLive, expectNotDisposed, expectSize, markFreed, sameSize,
} from './checks';
import { WebAssemblyApi, type WasmMemory } from './wasm/api';
import { align, Heap, type HeapStats } from './wasm/heap';
import { CTRL_BYTES, WorkerPool } from './wasm/pool';
import { SPARSE_JOBS, WasmSparse } from './sparse/wasm-simd';

/**
 * The kernel seam on hand-written WebAssembly SIMD (AssemblyScript in ./wasm/assembly,
 * built by `npm run build:wasm` into dist/wasm/kernels.wasm). Every tensor lives in one
 * shared WebAssembly.Memory (a tensor is a byte offset and a size); gemm and the three
 * convolutions run a packed, register-blocked f32x4 gemm (4 x 8 tile), split across
 * worker threads that instantiate the same module over the same memory. The ops are
 * synchronous: the main thread does its share of a job and waits for the others.
 *
 * Memory is a best-fit allocator with a coalescing free list (./wasm/heap.ts): `free`
 * gives a tensor's block back and later allocs reuse it, so building and dropping many
 * networks does not grow the memory (which can never shrink). Workspaces (packed weights,
 * im2col columns, per-thread gemm scratch) are allocated once and grow only when a larger
 * shape asks (the smaller block is freed), so a training loop allocates nothing after its
 * first batch.
 *
 * @example
 *   const k = await WasmSimdKernels.create({ threads: 2 });
 *   const x = k.alloc(4);
 *   k.upload(x, [-1, 0, 1, 2]);
 *   k.activate(x, x, 'leaky');
 *   k.read(x); // Float32Array [-0.1, 0, 1, 2]
 *   k.free(x);    // its block is reused by the next alloc that fits
 *   k.dispose();  // terminates the worker threads
 */

export interface WasmSimdOptions {
  /** threads in all, the main one included (default: available cores, at most 4) */
  threads?: number;
  /** the shared memory's maximum, in MiB (default 2048; the module allows 4096) */
  maxMemoryMiB?: number;
  /** the compiled module (default: dist/wasm/kernels.wasm, found from this file) */
  wasmPath?: string;
  /**
   * Start each threaded job only once every worker has joined it (default false: the main
   * thread starts at once and late workers take fewer units). For tests and measurements.
   */
  waitForWorkers?: boolean;
}

/** Exported functions that run as jobs, fn(tid, counter, nt, ...), by index (see WorkerPool.run). */
const JOBS = [
  'gemmJob', 'convForwardJob', 'convBackwardDataJob', 'convBackwardFilterJob', 'packPatchesJob', 'packConvWeightsJob',
  'activateJob', 'copyJob', 'addBiasJob', 'scaleBiasJob', 'normalizeJob', 'shortcutJob', 'maxpoolJob',
  ...SPARSE_JOBS,
] as const;
const GEMM = 0;
const CONV_FORWARD = 1;
const CONV_BACKWARD_DATA = 2;
const CONV_BACKWARD_FILTER = 3;
const PACK_PATCHES = 4;
const PACK_CONV_WEIGHTS = 5;

/** Jobs with fewer flops than this run on the main thread alone (a dispatch costs ~10-50 us). */
export const PARALLEL_FLOPS = 4e6;
/**
 * Elementwise and per-channel ops (activate, copy, addBias, scaleBias, normalize, shortcut,
 * maxpool) on fewer values than this run on the main thread alone. NOTE: one thread does
 * ~5 values/ns (leaky on 256K values: 50 us), and a dispatch costs 10-50 us, so only the
 * biggest tensors of a net (ResNet-18's 112x112x64 and 56x56x64) are worth splitting.
 */
export const PARALLEL_VALUES = 262144;
/** Weights of a convolution count as this many flops each in choosing its threads. */
const WEIGHT_FLOPS = 16;
const PAGE = 65536;
const COST_TYPES: Record<CostType, number> = { sse: 0, L1: 1, smooth: 2 };

type Fn = (...args: number[]) => number;

/** The module's exports as the host calls them (pointers are byte offsets). */
interface Exports {
  heapBase(): number;
  scratchFloats(): number;
  patchColumns(): number;
  [name: string]: Fn;
}

class WasmTensor implements Tensor {
  constructor(readonly size: number, readonly ptr: number, readonly owner: WasmSimdKernels) {}
}

export class WasmSimdKernels implements Kernels {
  readonly backend: BackendName = 'wasm-simd';
  readonly description: string;
  readonly threads: number;
  /** a view of the whole memory, renewed when it grows */
  private f32: Float32Array;
  private readonly heap: Heap;
  private readonly scratch: number;
  private readonly scratchStride: number;
  private readonly workspaces = new Map<string, { ptr: number; floats: number }>();
  private readbacks = 0;
  private disposed = false;
  /** CSR (and 4x1-block) products over pruned weights (./sparse/wasm-simd.ts). */
  readonly sparse: SparseKernels;

  private constructor(
    private readonly memory: WasmMemory,
    private readonly ex: Exports,
    private readonly pool: WorkerPool,
    heapBase: number,
  ) {
    this.threads = pool.threads;
    this.description = `wasm-simd (AssemblyScript f32x4, 4x8 gemm tile, ${this.threads} thread${this.threads > 1 ? 's' : ''})`;
    this.f32 = new Float32Array(memory.buffer);
    this.heap = new Heap(memory, heapBase);
    this.scratchStride = align(ex.scratchFloats() * 4);
    this.scratch = this.allocBytes(this.scratchStride * this.threads);
    this.sparse = new WasmSparse({
      tensor: (op, t) => this.t(op, t),
      alloc: (bytes) => {
        expectNotDisposed('sparse.pack', this.backend, this.disposed);
        return this.allocBytes(bytes);
      },
      // after dispose the memory went with the backend, as for tensors
      free: (ptr) => { if (!this.disposed) this.heap.free(ptr); },
      view: () => this.memory.buffer,
      job: (name, flops, args) => this.job(JOBS.indexOf(name), flops, args),
      gatherSparse: (values, dense, index, n) => { this.ex.gatherSparse(values, dense, index, n); },
      transpose: (dst, src, rows, cols) => { this.ex.transposeMatrix(dst, src, rows, cols); },
      transposeBlocks: (dst, src, rows, cols, block) => { this.ex.transposeBlocks(dst, src, rows, cols, block); },
      scratch: () => [this.scratch, this.scratchStride],
    });
  }

  /** Compiles the module, starts the threads, and resolves when every thread is ready. */
  static async create(options: WasmSimdOptions = {}): Promise<WasmSimdKernels> {
    const threads = options.threads ?? Math.min(os.availableParallelism(), 4);
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`wasm-simd: threads must be a positive integer, got ${threads}`);
    const maxMiB = options.maxMemoryMiB ?? 2048;
    if (!(maxMiB >= 64 && maxMiB <= 4096)) throw new Error(`wasm-simd: maxMemoryMiB must be 64 to 4096, got ${maxMiB}`);
    const maxPages = Math.floor(maxMiB * (2 ** 20 / PAGE));
    const wasmPath = options.wasmPath ?? locateWasm();
    const module = await WebAssemblyApi.compile(fs.readFileSync(wasmPath));
    // NOTE: shared even with one thread, so the module (built with --sharedMemory) links either way
    const memory = new WebAssemblyApi.Memory({ initial: 256, maximum: maxPages, shared: true });
    const instance = await WebAssemblyApi.instantiate(module, { env: { memory } });
    const ex = instance.exports as unknown as Exports;
    const ctrl = align(ex.heapBase());
    const pool = await WorkerPool.start(module, memory, ctrl, threads, [...JOBS], instance.exports);
    pool.waitForWorkers = options.waitForWorkers ?? false;
    return new WasmSimdKernels(memory, ex, pool, align(ctrl + CTRL_BYTES));
  }

  // ---- storage ----

  alloc(size: number): Tensor {
    expectNotDisposed('alloc', this.backend, this.disposed);
    if (!Number.isInteger(size) || size < 0) throw new Error(`alloc: size must be a non-negative integer, got ${size}`);
    return new WasmTensor(size, this.allocBytes(size * 4), this);
  }

  free(t: Tensor): void {
    if (!(t instanceof WasmTensor) || t.owner !== this) throw new Error('free: not a tensor of this wasm-simd backend');
    markFreed(t);
    // after dispose the memory went with the backend; nothing is left to give back
    if (!this.disposed) this.heap.free(t.ptr);
  }

  upload(dst: Tensor, src: ArrayLike<number>): void {
    const d = this.t('upload', dst);
    if (src.length !== d.size) throw new Error(`upload: source has ${src.length} values, tensor has ${d.size}`);
    this.f32.set(src, d.ptr >>> 2);
  }

  read(src: Tensor): FloatArray {
    const s = this.t('read', src);
    this.readbacks++;
    return this.f32.slice(s.ptr >>> 2, (s.ptr >>> 2) + s.size);
  }

  fill(dst: Tensor, value: number): void {
    const d = this.t('fill', dst);
    this.ex.fill(d.ptr, d.size, value);
  }

  copy(dst: Tensor, src: Tensor): void {
    const d = this.t('copy', dst);
    const s = this.t('copy', src);
    sameSize('copy', d, s);
    if (this.split('copyJob', d.size, d.size / 4, [d.ptr, s.ptr, d.size])) return;
    this.f32.copyWithin(d.ptr >>> 2, s.ptr >>> 2, (s.ptr >>> 2) + s.size);
  }

  axpby(dst: Tensor, a: number, x: Tensor, b: number): void {
    const d = this.t('axpby', dst);
    const xs = this.t('axpby', x);
    sameSize('axpby', d, xs);
    this.ex.axpby(d.ptr, a, xs.ptr, b, d.size);
  }

  copyRows(dst: Tensor, src: Tensor, r: {
    batch: number; n: number; srcStride: number; srcOffset: number;
    dstStride: number; dstOffset: number; accumulate: boolean;
  }): void {
    const d = this.t('copyRows', dst);
    const s = this.t('copyRows', src);
    if (r.batch <= 0 || r.n <= 0) return;
    const lastSrc = (r.batch - 1) * r.srcStride + r.srcOffset + r.n;
    const lastDst = (r.batch - 1) * r.dstStride + r.dstOffset + r.n;
    if (r.srcOffset < 0 || r.srcStride < 0 || lastSrc > s.size) throw new Error(`copyRows: rows reach index ${lastSrc} of a source of ${s.size}`);
    if (r.dstOffset < 0 || r.dstStride < 0 || lastDst > d.size) throw new Error(`copyRows: rows reach index ${lastDst} of a destination of ${d.size}`);
    this.ex.copyRows(d.ptr, s.ptr, r.batch, r.n, r.srcStride, r.srcOffset, r.dstStride, r.dstOffset, r.accumulate ? 1 : 0);
  }

  // ---- gemm ----

  gemm(C: Tensor, A: Tensor, B: Tensor, s: GemmShape): void {
    const c = this.t('gemm', C);
    const a = this.t('gemm', A);
    const b = this.t('gemm', B);
    if (C === A || C === B) throw new Error('gemm: C may not alias A or B');
    const { M, N, K } = s;
    expectSize('gemm', 'A', a, M * K);
    expectSize('gemm', 'B', b, K * N);
    expectSize('gemm', 'C', c, M * N);
    if (M === 0 || N === 0) return;
    const lda = s.transA ? M : K;
    const ldb = s.transB ? K : N;
    this.job(GEMM, 2 * M * N * K, [
      s.transA ? 1 : 0, s.transB ? 1 : 0, M, N, K, s.alpha, s.beta,
      a.ptr, lda, b.ptr, ldb, c.ptr, N, this.scratch, this.scratchStride,
    ]);
  }

  // ---- convolution ----

  convForward(out: Tensor, input: Tensor, weights: Tensor, s: ConvShape): void {
    const o = this.t('convForward', out);
    const x = this.t('convForward', input);
    const w = this.t('convForward', weights);
    checkConv('convForward', s, { out: o, input: x, weights: w }, true);
    const K = (s.c / s.groups) * s.size * s.size;
    // A layer with few flops but many weights (a 1x1 classifier at batch 1: 4 MB read for
    // 2 MFLOP) is memory-bound: two threads read their halves of the weights side by side.
    const nt = this.jobThreads(Math.max(convFlops(s), s.n * K * WEIGHT_FLOPS));
    const N = s.outH * s.outW;
    const packedFloats = s.groups * roundUp(s.n / s.groups, 4) * K;
    let packed = 0;
    let patches = 0;
    // Few images per thread: the threads split each image (see convForwardJob), after
    // packing together what every part would otherwise pack again.
    if (s.batch >= 4 * nt) {
      packed = this.workspace('packedWeights', packedFloats);
      this.ex.packConvWeights(packed, w.ptr, s.n, s.groups, K);
    } else if (nt > 1 && s.n / s.groups <= N) {
      // a few images split by positions: the threads pack the weights once, together,
      // rather than each part packing all of them again
      packed = this.workspace('packedWeights', packedFloats);
      this.pool.run(PACK_CONV_WEIGHTS, [nt, packed, w.ptr, s.n, s.groups, K]);
    } else if (nt > 1 && s.batch === 1 && s.groups === 1 && N <= this.ex.patchColumns()) {
      // one image split by filters (more filters than positions): the threads pack its
      // patches once, together, and each packs only its own filters' weights as it goes
      patches = this.workspace('patches', K * roundUp(N, 8));
      this.pool.run(PACK_PATCHES, [nt, patches, x.ptr, s.c, s.h, s.w, s.size, s.stride, s.pad, s.outH, s.outW, this.scratch, this.scratchStride]);
    }
    this.pool.run(CONV_FORWARD, [nt, o.ptr, x.ptr, packed, w.ptr, ...convArgs(s), this.scratch, this.scratchStride, patches], nt === 1);
  }

  convBackwardFilter(weightUpdates: Tensor, delta: Tensor, input: Tensor, s: ConvShape): void {
    const dw = this.t('convBackwardFilter', weightUpdates);
    const d = this.t('convBackwardFilter', delta);
    const x = this.t('convBackwardFilter', input);
    checkConv('convBackwardFilter', s, { out: d, input: x, weights: dw }, true);
    const nt = this.jobThreads(convFlops(s));
    // threads past the first sum their images into private copies, added in afterwards
    const privStride = align(dw.size * 4);
    const priv = nt > 1 ? this.workspace('filterPrivate', (privStride / 4) * (nt - 1)) : 0;
    if (nt > 1) this.ex.fill(priv, (privStride / 4) * (nt - 1), 0);
    this.job(CONV_BACKWARD_FILTER, convFlops(s), [dw.ptr, d.ptr, x.ptr, ...convArgs(s), this.scratch, this.scratchStride, priv, privStride]);
    for (let t = 1; t < nt; t++) this.ex.addInto(dw.ptr, priv + (t - 1) * privStride, dw.size);
  }

  convBackwardData(inputDelta: Tensor, delta: Tensor, weights: Tensor, s: ConvShape): void {
    const dx = this.t('convBackwardData', inputDelta);
    const d = this.t('convBackwardData', delta);
    const w = this.t('convBackwardData', weights);
    checkConv('convBackwardData', s, { out: d, input: dx, weights: w }, true);
    const K = (s.c / s.groups) * s.size * s.size;
    const packed = this.workspace('packedWeightsT', s.groups * roundUp(K, 4) * (s.n / s.groups));
    this.ex.packConvWeightsT(packed, w.ptr, s.n, s.groups, K);
    const colStride = align(K * s.outH * s.outW * 4);
    const col = this.workspace('columns', (colStride / 4) * this.threads);
    this.job(CONV_BACKWARD_DATA, convFlops(s), [dx.ptr, d.ptr, packed, ...convArgs(s), this.scratch, this.scratchStride, col, colStride]);
  }

  // ---- per-channel ops ----

  addBias(x: Tensor, biases: Tensor, s: ChannelShape): void {
    const xs = this.t('addBias', x);
    const b = this.t('addBias', biases);
    checkChannels('addBias', s, xs, b);
    if (this.split('addBiasJob', xs.size, s.batch * s.channels, [xs.ptr, b.ptr, s.batch, s.channels, s.spatial])) return;
    this.ex.addBias(xs.ptr, b.ptr, s.batch, s.channels, s.spatial);
  }

  scaleBias(x: Tensor, scales: Tensor, s: ChannelShape): void {
    const xs = this.t('scaleBias', x);
    const sc = this.t('scaleBias', scales);
    checkChannels('scaleBias', s, xs, sc);
    if (this.split('scaleBiasJob', xs.size, s.batch * s.channels, [xs.ptr, sc.ptr, s.batch, s.channels, s.spatial])) return;
    this.ex.scaleBias(xs.ptr, sc.ptr, s.batch, s.channels, s.spatial);
  }

  backwardBias(biasUpdates: Tensor, delta: Tensor, s: ChannelShape): void {
    const bu = this.t('backwardBias', biasUpdates);
    const d = this.t('backwardBias', delta);
    checkChannels('backwardBias', s, d, bu);
    this.ex.backwardBias(bu.ptr, d.ptr, s.batch, s.channels, s.spatial);
  }

  backwardScale(scaleUpdates: Tensor, xNorm: Tensor, delta: Tensor, s: ChannelShape): void {
    const su = this.t('backwardScale', scaleUpdates);
    const xn = this.t('backwardScale', xNorm);
    const d = this.t('backwardScale', delta);
    checkChannels('backwardScale', s, d, su);
    sameSize('backwardScale', xn, d);
    this.ex.backwardScale(su.ptr, xn.ptr, d.ptr, s.batch, s.channels, s.spatial);
  }

  // ---- activations ----

  activate(dst: Tensor, src: Tensor, act: Activation): void {
    const d = this.t('activate', dst);
    const x = this.t('activate', src);
    sameSize('activate', d, x);
    const id = activationId('activate', act);
    if (act === 'linear' && d === x) return; // in place, nothing changes
    if (this.split('activateJob', d.size, d.size / 4, [d.ptr, x.ptr, d.size, id])) return;
    this.ex.activate(d.ptr, x.ptr, d.size, id);
  }

  gradient(delta: Tensor, output: Tensor, act: Activation): void {
    const d = this.t('gradient', delta);
    const y = this.t('gradient', output);
    sameSize('gradient', d, y);
    this.ex.gradient(d.ptr, y.ptr, d.size, activationId('gradient', act));
  }

  // ---- pooling ----

  maxpoolForward(out: Tensor, input: Tensor, s: PoolShape): void {
    const o = this.t('maxpoolForward', out);
    const x = this.t('maxpoolForward', input);
    checkPool('maxpoolForward', s, o, x);
    const args = [o.ptr, x.ptr, s.batch, s.c, s.h, s.w, s.size, s.stride, s.padding, s.outH, s.outW, 0, 0];
    if (this.split('maxpoolJob', x.size, s.batch * s.c, args)) return;
    this.ex.maxpool(...args);
  }

  maxpoolBackward(inputDelta: Tensor, delta: Tensor, input: Tensor, s: PoolShape): void {
    const dx = this.t('maxpoolBackward', inputDelta);
    const d = this.t('maxpoolBackward', delta);
    const x = this.t('maxpoolBackward', input);
    checkPool('maxpoolBackward', s, d, x);
    sameSize('maxpoolBackward', dx, x);
    const args = [d.ptr, x.ptr, s.batch, s.c, s.h, s.w, s.size, s.stride, s.padding, s.outH, s.outW, dx.ptr, 1];
    if (this.split('maxpoolJob', x.size, s.batch * s.c, args)) return;
    this.ex.maxpool(...args);
  }

  avgpoolForward(out: Tensor, input: Tensor, s: ChannelShape): void {
    const o = this.t('avgpoolForward', out);
    const x = this.t('avgpoolForward', input);
    checkChannels('avgpoolForward', s, x);
    expectSize('avgpoolForward', 'out', o, s.batch * s.channels);
    this.ex.avgpoolForward(o.ptr, x.ptr, s.batch * s.channels, s.spatial);
  }

  avgpoolBackward(inputDelta: Tensor, delta: Tensor, s: ChannelShape): void {
    const dx = this.t('avgpoolBackward', inputDelta);
    const d = this.t('avgpoolBackward', delta);
    checkChannels('avgpoolBackward', s, dx);
    expectSize('avgpoolBackward', 'delta', d, s.batch * s.channels);
    this.ex.avgpoolBackward(dx.ptr, d.ptr, s.batch * s.channels, s.spatial);
  }

  // ---- losses ----

  softmax(out: Tensor, input: Tensor, s: { batch: number; inputs: number; groups: number; temperature: number }): void {
    const o = this.t('softmax', out);
    const x = this.t('softmax', input);
    expectSize('softmax', 'input', x, s.batch * s.inputs);
    sameSize('softmax', o, x);
    if (!(s.groups >= 1) || s.inputs % s.groups !== 0) {
      throw new Error(`softmax: inputs (${s.inputs}) must be a multiple of groups (${s.groups})`);
    }
    const len = s.inputs / s.groups;
    if (len === 0) return;
    const scratch = this.workspace('softmax', 2 * len); // len float64s
    this.ex.softmax(o.ptr, x.ptr, x.size, len, s.temperature, scratch);
  }

  softmaxCrossEntropy(delta: Tensor, output: Tensor, truth: Tensor): number {
    const d = this.t('softmaxCrossEntropy', delta);
    const p = this.t('softmaxCrossEntropy', output);
    const t = this.t('softmaxCrossEntropy', truth);
    sameSize('softmaxCrossEntropy', d, p);
    sameSize('softmaxCrossEntropy', t, p);
    this.readbacks++;
    return this.ex.softmaxCrossEntropy(d.ptr, p.ptr, t.ptr, p.size);
  }

  cost(delta: Tensor, pred: Tensor, truth: Tensor, type: CostType): number {
    const dl = this.t('cost', delta);
    const p = this.t('cost', pred);
    const t = this.t('cost', truth);
    sameSize('cost', dl, p);
    sameSize('cost', t, p);
    const id = COST_TYPES[type];
    if (id === undefined) throw new Error(`cost: unknown cost type "${type}"`);
    this.readbacks++;
    return this.ex.cost(dl.ptr, p.ptr, t.ptr, p.size, id);
  }

  // ---- batch norm ----

  batchnormStats(mean: Tensor, variance: Tensor, x: Tensor, s: ChannelShape): void {
    const m = this.t('batchnormStats', mean);
    const v = this.t('batchnormStats', variance);
    const xs = this.t('batchnormStats', x);
    checkChannels('batchnormStats', s, xs, m);
    sameSize('batchnormStats', v, m);
    this.ex.batchnormStats(m.ptr, v.ptr, xs.ptr, s.batch, s.channels, s.spatial);
  }

  normalize(out: Tensor, x: Tensor, mean: Tensor, variance: Tensor, eps: number, s: ChannelShape): void {
    const o = this.t('normalize', out);
    const xs = this.t('normalize', x);
    const m = this.t('normalize', mean);
    const v = this.t('normalize', variance);
    checkChannels('normalize', s, xs, m);
    sameSize('normalize', v, m);
    sameSize('normalize', o, xs);
    if (this.split('normalizeJob', xs.size, s.batch * s.channels, [o.ptr, xs.ptr, m.ptr, v.ptr, eps, s.batch, s.channels, s.spatial])) return;
    this.ex.normalize(o.ptr, xs.ptr, m.ptr, v.ptr, eps, s.batch, s.channels, s.spatial);
  }

  batchnormBackward(out: Tensor, dxhat: Tensor, xNorm: Tensor, variance: Tensor, eps: number, s: ChannelShape): void {
    if (out === dxhat) throw new Error('batchnormBackward: out may not alias dxhat');
    const o = this.t('batchnormBackward', out);
    const g = this.t('batchnormBackward', dxhat);
    const xn = this.t('batchnormBackward', xNorm);
    const v = this.t('batchnormBackward', variance);
    checkChannels('batchnormBackward', s, g, v);
    sameSize('batchnormBackward', xn, g);
    sameSize('batchnormBackward', o, g);
    this.ex.batchnormBackward(o.ptr, g.ptr, xn.ptr, v.ptr, eps, s.batch, s.channels, s.spatial);
  }

  // ---- the rest ----

  dropout(dst: Tensor, src: Tensor, rand: Tensor, prob: number, scale: number, accumulate: boolean): void {
    const d = this.t('dropout', dst);
    const x = this.t('dropout', src);
    const r = this.t('dropout', rand);
    sameSize('dropout', d, x);
    sameSize('dropout', r, x);
    this.ex.dropout(d.ptr, x.ptr, r.ptr, d.size, prob, scale, accumulate ? 1 : 0);
  }

  shortcut(out: Tensor, add: Tensor, s1: number, s2: number, s: ShortcutShape): void {
    const o = this.t('shortcut', out);
    const a = this.t('shortcut', add);
    const { stride, sample } = checkShortcut(s, o, a);
    const args = [o.ptr, a.ptr, s1, s2, s.batch, s.w1, s.h1, s.c1, s.w2, s.h2, s.c2, stride, sample];
    if (this.split('shortcutJob', o.size, s.batch * Math.min(s.c1, s.c2), args)) return;
    this.ex.shortcut(...args);
  }

  sgdUpdate(weights: Tensor, updates: Tensor, mask: Tensor | null, p: SgdParams): void {
    const w = this.t('sgdUpdate', weights);
    const u = this.t('sgdUpdate', updates);
    const m = mask === null ? null : this.t('sgdUpdate', mask);
    sameSize('sgdUpdate', u, w);
    if (m) sameSize('sgdUpdate', m, w);
    this.ex.sgdUpdate(w.ptr, u.ptr, m ? m.ptr : 0, w.size, p.rate / p.batch, p.momentum, -p.decay * p.batch, m ? 1 : 0);
  }

  stats(): KernelStats {
    // one module, compiled once by create()
    return { compiled: 1, readbacks: this.readbacks };
  }

  /** Threaded jobs dispatched, and the work units worker threads (not the main one) did. */
  threadStats(): { jobs: number; workerUnits: number } {
    return this.pool.stats();
  }

  /** The memory's size and how the allocator uses it (see ./wasm/heap.ts), in bytes. */
  memoryStats(): HeapStats {
    return this.heap.stats();
  }

  /** Worker threads not yet exited: threads - 1 while running, 0 soon after dispose. */
  liveWorkers(): number {
    return this.pool.liveWorkers();
  }

  /**
   * Terminates the worker threads and refuses further use. NOTE: JavaScript cannot free a
   * WebAssembly.Memory; it goes with the last reference to this backend and its tensors.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.dispose();
    this.workspaces.clear();
  }


  // ---- internals ----

  /** A live tensor made by this backend. */
  private t(op: string, tensor: Tensor): WasmTensor {
    if (!(tensor instanceof WasmTensor) || tensor.owner !== this) throw new Error(`${op}: not a tensor of this wasm-simd backend`);
    expectNotDisposed(op, this.backend, this.disposed);
    expectLive(op, tensor);
    return tensor;
  }

  /** Threads that may take part in a job of this many flops. */
  private jobThreads(flops: number): number {
    return flops >= PARALLEL_FLOPS ? this.threads : 1;
  }

  /** Runs a job on the pool, or on the main thread alone when it is small; args follow nt. */
  private job(fn: number, flops: number, args: number[]): void {
    const nt = this.jobThreads(flops);
    this.pool.run(fn, [nt, ...args], nt === 1);
  }

  /**
   * Runs an elementwise or per-channel op as a job split into `parts` (planes, or runs of
   * 4 values) when it touches at least PARALLEL_VALUES values and there are threads to
   * share it; false when the caller should run it serially. args follow nt, units last.
   */
  private split(name: (typeof JOBS)[number], values: number, parts: number, args: number[]): boolean {
    if (this.threads === 1 || values < PARALLEL_VALUES || parts < 2) return false;
    // about 4 units per thread, so that a thread slowed by the machine takes fewer
    const units = Math.min(Math.floor(parts), 4 * this.threads);
    this.pool.run(JOBS.indexOf(name), [this.threads, ...args, units]);
    return true;
  }

  /** A workspace of at least `floats` floats for one purpose, reused by every later call. */
  private workspace(purpose: string, floats: number): number {
    const cached = this.workspaces.get(purpose);
    if (cached && cached.floats >= floats) return cached.ptr;
    if (cached) this.heap.free(cached.ptr);
    const ws = { ptr: this.allocBytes(floats * 4), floats };
    this.workspaces.set(purpose, ws);
    return ws.ptr;
  }

  /** `bytes` zero bytes from the heap, which grows the memory as needed. */
  private allocBytes(bytes: number): number {
    const ptr = this.heap.alloc(bytes);
    // NOTE: a grown shared memory has a new, longer buffer; views of the old one stop short
    if (this.f32.byteLength < this.memory.buffer.byteLength) this.f32 = new Float32Array(this.memory.buffer);
    return ptr;
  }
}

// ---- helpers ----

/** dist/wasm/kernels.wasm, from src/kernels (ts-jest) or dist/src/kernels (tsc output). */
export function locateWasm(): string {
  const candidates = [
    path.resolve(__dirname, '../../dist/wasm/kernels.wasm'),
    path.resolve(__dirname, '../../wasm/kernels.wasm'),
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`wasm-simd: no compiled module at ${candidates.join(' or ')}; run \`npm run build:wasm\``);
  return found;
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

function activationId(op: string, act: Activation): number {
  const id = ACTIVATIONS.indexOf(act);
  if (id < 0) throw new Error(`${op}: unknown activation "${act}"`);
  return id;
}

function convFlops(s: ConvShape): number {
  return 2 * s.batch * s.n * s.outH * s.outW * (s.c / s.groups) * s.size * s.size;
}

function convArgs(s: ConvShape): number[] {
  return [s.batch, s.c, s.h, s.w, s.n, s.groups, s.size, s.stride, s.pad, s.outH, s.outW];
}

