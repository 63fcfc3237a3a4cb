import type { ChannelShape, ConvShape, PoolShape, ShortcutShape, SparseFormat, SparseMatrix, Tensor } from './types';

/**
 * The argument checks of the kernel seam, shared by every backend, so that a call whose
 * tensors do not fit its shape, or were freed, fails the same way, with the same message,
 * on each. A backend first makes sure the tensors are its own, then checks them here.
 */

// ---- lifetimes ----

/** Every tensor given to `free`, on any backend (weak: a dropped handle is collected). */
const freed = new WeakSet<Tensor>();

/** Refuses a tensor that was freed. Every op checks each tensor it is given. */
export function expectLive(op: string, t: Tensor): void {
  if (freed.has(t)) throw new Error(`${op}: this tensor (${t.size} values) was freed; alloc another`);
}

/** Records `t` as freed, refusing a second free; the backend then gives back its storage. */
export function markFreed(t: Tensor): void {
  if (freed.has(t)) throw new Error(`free: this tensor (${t.size} values) was freed already (a double free)`);
  freed.add(t);
}

/** Refuses any op but `free` and `dispose` on a disposed backend. */
export function expectNotDisposed(op: string, backend: string, disposed: boolean): void {
  if (disposed) throw new Error(`${op}: the ${backend} backend was disposed; create another`);
}

// ---- sizes and shapes ----

export function sameSize(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: tensor sizes differ (${a.size} and ${b.size})`);
}

export function expectSize(op: string, name: string, t: Tensor, size: number): void {
  if (t.size !== size) throw new Error(`${op}: ${name} has ${t.size} values, the shape needs ${size}`);
}

/**
 * groups divide c and n, outH x outW follow from the rest (C division, as darknet), and the
 * tensors have the sizes the shape needs. `strict` (wasm-simd, whose loops address memory
 * directly) also refuses a negative pad and an empty output.
 */
export function checkConv(
  op: string, s: ConvShape, t: { out: Tensor; input: Tensor; weights: Tensor }, strict = false,
): void {
  if (!(s.groups >= 1) || s.c % s.groups !== 0 || s.n % s.groups !== 0) {
    throw new Error(`${op}: c (${s.c}) and n (${s.n}) must be multiples of groups (${s.groups})`);
  }
  if (!(s.stride >= 1) || !(s.size >= 1) || (strict && !(s.pad >= 0))) {
    throw new Error(`${op}: size and stride must be at least 1${strict ? ', pad at least 0' : ''}`);
  }
  const outH = Math.trunc((s.h + 2 * s.pad - s.size) / s.stride) + 1;
  const outW = Math.trunc((s.w + 2 * s.pad - s.size) / s.stride) + 1;
  if (s.outH !== outH || s.outW !== outW || (strict && (outH < 1 || outW < 1))) {
    throw new Error(`${op}: outH x outW is ${s.outH} x ${s.outW}, the shape gives ${outH} x ${outW}`);
  }
  expectSize(op, 'input', t.input, s.batch * s.c * s.h * s.w);
  expectSize(op, 'weights', t.weights, s.n * (s.c / s.groups) * s.size * s.size);
  expectSize(op, 'output', t.out, s.batch * s.n * s.outH * s.outW);
}

/** `x` is `[batch, channels, spatial]`; `perChannel`, when given, is `[channels]`. */
export function checkChannels(op: string, s: ChannelShape, x: Tensor, perChannel?: Tensor): void {
  expectSize(op, 'x', x, s.batch * s.channels * s.spatial);
  if (perChannel) expectSize(op, 'per-channel tensor', perChannel, s.channels);
}

/** outH x outW follow from the rest (darknet's maxpool formula); the tensors fit the shape. */
export function checkPool(op: string, s: PoolShape, out: Tensor, input: Tensor): void {
  if (!(s.stride >= 1) || !(s.size >= 1)) throw new Error(`${op}: size and stride must be at least 1`);
  const outH = Math.trunc((s.h + s.padding - s.size) / s.stride) + 1;
  const outW = Math.trunc((s.w + s.padding - s.size) / s.stride) + 1;
  if (s.outH !== outH || s.outW !== outW) {
    throw new Error(`${op}: outH x outW is ${s.outH} x ${s.outW}, the shape gives ${outH} x ${outW}`);
  }
  expectSize(op, 'input', input, s.batch * s.c * s.h * s.w);
  expectSize(op, 'output', out, s.batch * s.c * s.outH * s.outW);
}

/**
 * The tensors fit the shape, and width and height scale alike: returns darknet's stride
 * (add is larger) and sample (out is larger), each at least 1.
 */
export function checkShortcut(s: ShortcutShape, out: Tensor, add: Tensor): { stride: number; sample: number } {
  expectSize('shortcut', 'add', add, s.batch * s.c1 * s.h1 * s.w1);
  expectSize('shortcut', 'out', out, s.batch * s.c2 * s.h2 * s.w2);
  // darknet: one of the two is a positive integer ratio, the other clamps to 1
  const stride = Math.trunc(s.w1 / s.w2);
  const sample = Math.trunc(s.w2 / s.w1);
  if (stride !== Math.trunc(s.h1 / s.h2) || sample !== Math.trunc(s.h2 / s.h1)) {
    throw new Error(`shortcut: width ratio ${s.w1}/${s.w2} and height ratio ${s.h1}/${s.h2} differ`);
  }
  return { stride: Math.max(stride, 1), sample: Math.max(sample, 1) };
}

// ---- sparse weights ----

/** Every SparseMatrix given to `sparse.free`, on any backend. */
const freedSparse = new WeakSet<SparseMatrix>();

/** Refuses a sparse matrix that was freed. */
export function expectLiveSparse(op: string, A: SparseMatrix): void {
  if (freedSparse.has(A)) throw new Error(`${op}: this sparse matrix (${A.rows} x ${A.cols}) was freed; pack another`);
}

/** Records A as freed, refusing a second free. */
export function markSparseFreed(A: SparseMatrix): void {
  if (freedSparse.has(A)) throw new Error(`sparse.free: this sparse matrix (${A.rows} x ${A.cols}) was freed already (a double free)`);
  freedSparse.add(A);
}

/** rows and cols are non-negative integers, the format is known, weights hold rows x cols. */
export function checkSparsePack(weights: Tensor, rows: number, cols: number, format: SparseFormat): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new Error(`sparse.pack: rows and cols must be non-negative integers, got ${rows} x ${cols}`);
  }
  if (format !== 'csr' && format !== 'block4x1') throw new Error(`sparse.pack: unknown format "${format}"`);
  expectSize('sparse.pack', 'weights', weights, rows * cols);
}

/**
 * A sparse product's dense operands fit A [M x K] and N: `out` has outRows x N values,
 * `B` has inRows x N (spmm: K then M; spmmTransposed: M then K). N is a non-negative integer.
 */
export function checkSparseProduct(op: string, A: SparseMatrix, out: Tensor, B: Tensor, N: number, transposed: boolean): void {
  if (!Number.isInteger(N) || N < 0) throw new Error(`${op}: N must be a non-negative integer, got ${N}`);
  if (out === B) throw new Error(`${op}: C may not alias B`);
  const [outRows, inRows] = transposed ? [A.cols, A.rows] : [A.rows, A.cols];
  expectSize(op, 'B', B, inRows * N);
  expectSize(op, 'C', out, outRows * N);
}

/** weightUpdates is [M x K], delta [M x N], input [K x N]. */
export function checkSampledGradient(A: SparseMatrix, weightUpdates: Tensor, delta: Tensor, input: Tensor, N: number): void {
  const op = 'sparse.sampledGradient';
  if (!Number.isInteger(N) || N < 0) throw new Error(`${op}: N must be a non-negative integer, got ${N}`);
  expectSize(op, 'weightUpdates', weightUpdates, A.rows * A.cols);
  expectSize(op, 'delta', delta, A.rows * N);
  expectSize(op, 'input', input, A.cols * N);
}

/** src has rows x cols x block values, dst the same, and they are different tensors. */
export function checkTranspose(dst: Tensor, src: Tensor, rows: number, cols: number, block = 1): void {
  const op = 'sparse.transpose';
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new Error(`${op}: rows and cols must be non-negative integers, got ${rows} x ${cols}`);
  }
  if (!Number.isInteger(block) || block < 1) throw new Error(`${op}: block must be a positive integer, got ${block}`);
  if (dst === src) throw new Error(`${op}: dst may not be src`);
  expectSize(op, 'src', src, rows * cols * block);
  expectSize(op, 'dst', dst, rows * cols * block);
}

/**
 * im2col / col2im: the convolution's geometry holds (as checkConv), groups is 1, `image`
 * is [batch, c, h, w] and `cols` [c * size * size, batch, outH * outW].
 */
export function checkIm2col(op: string, s: ConvShape, image: Tensor, cols: Tensor): void {
  if (s.groups !== 1) throw new Error(`${op}: groups must be 1, got ${s.groups}`);
  const K = s.c * s.size * s.size;
  const weights = { size: s.n * K };
  const out = { size: s.batch * s.n * s.outH * s.outW };
  checkConv(op, s, { out, input: image, weights }, true);
  expectSize(op, 'cols', cols, K * s.batch * s.outH * s.outW);
}

/** sparse.convForward: A is [n x c * size * size] and the tensors fit the convolution (groups 1). */
export function checkSparseConv(op: string, A: SparseMatrix, out: Tensor, input: Tensor, s: ConvShape): void {
  const K = s.c * s.size * s.size;
  if (A.rows !== s.n || A.cols !== K) throw new Error(`${op}: A is ${A.rows} x ${A.cols}, the convolution's weights are ${s.n} x ${K}`);
  checkIm2col(op, s, input, { size: K * s.batch * s.outH * s.outW });
  expectSize(op, 'out', out, s.batch * s.n * s.outH * s.outW);
}
