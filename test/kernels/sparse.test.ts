/**
 * The sparse-weight ops (types.ts, SparseKernels) on every backend that has them, against
 * the reference's dense gemm with the masked weights (zeros kept): fc shapes (800 -> 500
 * at batch 1 and 64), conv2-like panels (50 filters x 500 taps x 64 pixels, and 8 images'
 * 512) and odd sizes,
 * at sparsities 0 to 1 with one all-zero row always. The sampled gradient must leave every
 * pruned entry exactly as it was.
 *
 * Tolerance: ELEM (1e-5) relative to 1 + sum over k of |a_k b_k|, the scale of float32
 * summation error. NOTE: relative to 1 + |result| (compare.ts) an 800-term float32 sum
 * that cancels to ~0.4 misses 1e-5 (1.6e-5 seen, sparsity 0, CSR and dense alike): the
 * error follows the terms, not the result.
 */
import { mulberry32 } from '../../src/engine/random';
import { ReferenceKernels } from '../../src/kernels/reference';
import type { Kernels, SparseFormat, SparseKernels, Tensor } from '../../src/kernels/types';
import { WasmSimdKernels } from '../../src/kernels/wasm-simd';
import { ELEM } from './compare';

/** [M, K, N]: A is M x K, the dense operands have N columns. */
const SHAPES: Record<string, [number, number, number]> = {
  'fc 800->500, batch 1': [500, 800, 1],
  'fc 800->500, batch 64': [500, 800, 64],
  'conv2 50 x 500 x 64': [50, 500, 64],
  // wide panels: wasm-simd copies 64-column bands of B to scratch (N > 64, N > M, nnz >= 4K)
  'conv2, 8 images in one panel, 50 x 500 x 512': [50, 500, 512],
  'odd 9 x 10 x 203': [9, 10, 203],
  'odd 13 x 29 x 7': [13, 29, 7],
  'odd 37 x 11 x 19': [37, 11, 19],
  'odd 6 x 3 x 35': [6, 3, 35],
};
const SPARSITIES = [0, 0.5, 0.9, 0.99, 1];

interface Backend {
  name: string;
  create: () => Promise<Kernels>;
}
/** `name` is the backend tag test/backend-reporter.js counts; `label` sets a variant apart. */
const BACKENDS: (Backend & { label: string })[] = [
  { name: 'reference', label: '', create: async () => new ReferenceKernels() },
  { name: 'wasm-simd', label: ', 1 thread', create: () => WasmSimdKernels.create({ threads: 1 }) },
  { name: 'wasm-simd', label: ', 2 threads, waitForWorkers', create: () => WasmSimdKernels.create({ threads: 2, waitForWorkers: true }) },
];

/** Values in [-1, 1), each zero with probability `sparsity`, and row 1 (when there is one) all zero. */
function prunedWeights(M: number, K: number, sparsity: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const w = new Float32Array(M * K);
  for (let i = 0; i < w.length; i++) {
    const keep = r() >= sparsity;
    const v = 2 * r() - 1;
    w[i] = keep ? v : 0;
  }
  if (M > 1) w.fill(0, K, 2 * K);
  return w;
}

/** Throws unless |got - want| <= tol * (1 + scale) everywhere (scale: sum of |terms| of each result). */
function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const error = Math.abs(got[i] - want[i]) / (1 + scale[i]);
    if (!(error <= ELEM)) throw new Error(`${what}: error ${error.toExponential(2)} > ${ELEM} at [${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

const abs = (v: Float32Array): Float32Array => v.map(Math.abs);

function values(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

const truth = new ReferenceKernels();
afterAll(() => truth.dispose());

/** The reference's dense gemm, op(A)[m x k] x op(B)[k x n], on host arrays. */
function denseGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean): Float64Array {
  const [ta, tb, tc] = [truth.alloc(a.length), truth.alloc(b.length), truth.alloc(m * n)];
  truth.upload(ta, a);
  truth.upload(tb, b);
  truth.gemm(tc, ta, tb, { M: m, N: n, K: k, transA, transB, alpha: 1, beta: 0 });
  const out = Float64Array.from(truth.read(tc));
  for (const t of [ta, tb, tc]) truth.free(t);
  return out;
}

for (const backend of BACKENDS) {
  describe(`[${backend.name}] sparse ops${backend.label}`, () => {
    let k: Kernels;
    let sp: SparseKernels;
    beforeAll(async () => {
      k = await backend.create();
      sp = k.sparse!;
    });
    afterAll(() => k?.dispose());

    function tensor(v: Float32Array): Tensor {
      const t = k.alloc(v.length);
      k.upload(t, v);
      return t;
    }

    for (const [shapeName, [M, K, N]] of Object.entries(SHAPES)) {
      for (const sparsity of SPARSITIES) {
        test(`${shapeName}, sparsity ${sparsity}: spmm (both formats), spmmTransposed, sampledGradient`, () => {
          const seed = M * 7919 + K * 31 + N + Math.round(sparsity * 1000);
          const w = prunedWeights(M, K, sparsity, seed);
          const weights = tensor(w);
          const x = values(K * N, seed + 1); // [K x N]
          const d = values(M * N, seed + 2); // [M x N]
          const input = tensor(x);
          const delta = tensor(d);
          const nonZeros = w.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);

          // spmm, = and +=, in each format
          const forward = denseGemm(w, x, M, N, K, false, false);
          const forwardScale = denseGemm(abs(w), abs(x), M, N, K, false, false);
          const init = values(M * N, seed + 3);
          for (const format of ['csr', 'block4x1'] as SparseFormat[]) {
            const A = sp.pack(weights, M, K, format);
            expect([A.rows, A.cols, A.nonZeros, A.format]).toEqual([M, K, nonZeros, format]);
            const out = tensor(init);
            sp.spmm(out, A, input, { N, accumulate: false });
            expectWithin(k.read(out), forward, forwardScale, `spmm ${format} =`);
            k.upload(out, init);
            sp.spmm(out, A, input, { N, accumulate: true });
            expectWithin(k.read(out), forward.map((v, i) => v + init[i]), forwardScale, `spmm ${format} +=`);
            k.free(out);
            sp.free(A);
          }

          const A = sp.pack(weights, M, K);
          // backward-data: [K x N] = A^T delta
          const backward = denseGemm(w, d, K, N, M, true, false);
          const backwardScale = denseGemm(abs(w), abs(d), K, N, M, true, false);
          const initT = values(K * N, seed + 4);
          const outT = tensor(initT);
          sp.spmmTransposed(outT, A, delta, { N, accumulate: false });
          expectWithin(k.read(outT), backward, backwardScale, 'spmmTransposed =');
          k.upload(outT, initT);
          sp.spmmTransposed(outT, A, delta, { N, accumulate: true });
          expectWithin(k.read(outT), backward.map((v, i) => v + initT[i]), backwardScale, 'spmmTransposed +=');

          // backward-filter at kept entries: += delta input^T there, pruned entries untouched
          const grad = denseGemm(d, x, M, K, N, false, true);
          const gradScale = denseGemm(abs(d), abs(x), M, K, N, false, true);
          const initW = values(M * K, seed + 5);
          const dw = tensor(initW);
          sp.sampledGradient(dw, A, delta, input, { N });
          const got = k.read(dw);
          expectWithin(got, grad.map((v, i) => initW[i] + (w[i] !== 0 ? v : 0)), gradScale, 'sampledGradient');
          const revived = got.findIndex((v, i) => w[i] === 0 && !Object.is(v, initW[i]));
          expect(revived).toBe(-1);

          // refresh re-reads kept values after an update, positions unchanged
          const w2 = w.map((v) => (v !== 0 ? v * -2 : 0));
          k.upload(weights, w2);
          sp.refresh(A, weights);
          const out = k.alloc(M * N);
          sp.spmm(out, A, input, { N, accumulate: false });
          expectWithin(k.read(out), forward.map((v) => -2 * v), forwardScale.map((v) => 2 * v), 'spmm after refresh');

          sp.free(A);
          for (const t of [weights, input, delta, outT, dw, out]) k.free(t);
        });
      }
    }

    test('transpose: fc activations [batch x inputs] to [inputs x batch] and odd sizes, exactly', () => {
      for (const [rows, cols] of [[64, 800], [7, 13], [5, 4], [1, 9], [3, 1], [0, 3]]) {
        const v = values(rows * cols, rows * 100 + cols);
        const src = tensor(v);
        const dst = k.alloc(rows * cols);
        sp.transpose(dst, src, { rows, cols });
        const got = k.read(dst);
        const want = new Float32Array(rows * cols);
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) want[j * rows + i] = v[i * cols + j];
        expect(Array.from(got)).toEqual(Array.from(want));
        k.free(src);
        k.free(dst);
      }
      const t = k.alloc(6);
      expect(() => sp.transpose(t, t, { rows: 2, cols: 3 })).toThrow('sparse.transpose: dst may not be src');
      expect(() => sp.transpose(k.alloc(6), t, { rows: 2, cols: 4 })).toThrow('sparse.transpose: src has 6 values, the shape needs 8');
    });

    test('pruned zeros made non-zero later are not revived by refresh (positions are the mask)', () => {
      const w = new Float32Array([1, 0, 0, 2]);
      const weights = tensor(w);
      const A = sp.pack(weights, 2, 2, 'block4x1');
      k.upload(weights, [3, 5, 5, 4]);
      sp.refresh(A, weights);
      const x = tensor(new Float32Array([1, 1]));
      const out = k.alloc(2);
      sp.spmm(out, A, x, { N: 1, accumulate: false });
      expect(Array.from(k.read(out))).toEqual([3, 4]);
      sp.free(A);
      for (const t of [weights, x, out]) k.free(t);
    });

    test('checks: sizes, aliasing, formats, frees', () => {
      const weights = k.alloc(12);
      k.upload(weights, [1, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5]);
      expect(() => sp.pack(weights, 3, 5)).toThrow('sparse.pack: weights has 12 values, the shape needs 15');
      expect(() => sp.pack(weights, 3, 4, 'bcsr' as SparseFormat)).toThrow('unknown format "bcsr"');
      const A = sp.pack(weights, 3, 4);
      expect(A.nonZeros).toBe(5);
      const b = k.alloc(8);
      const c = k.alloc(6);
      expect(() => sp.spmm(c, A, b, { N: 3, accumulate: false })).toThrow('sparse.spmm: B has 8 values, the shape needs 12');
      expect(() => sp.spmm(b, A, b, { N: 2, accumulate: false })).toThrow('sparse.spmm: C may not alias B');
      expect(() => sp.spmmTransposed(c, A, b, { N: 2, accumulate: false })).toThrow('sparse.spmmTransposed: B has 8 values, the shape needs 6');
      expect(() => sp.sampledGradient(c, A, c, b, { N: 2 })).toThrow('sparse.sampledGradient: weightUpdates has 6 values, the shape needs 12');
      sp.free(A);
      expect(() => sp.spmm(c, A, b, { N: 2, accumulate: false })).toThrow('sparse.spmm: this sparse matrix (3 x 4) was freed');
      expect(() => sp.free(A)).toThrow('double free');
      for (const t of [weights, b, c]) k.free(t);
    });
  });
}
