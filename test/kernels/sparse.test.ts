/**
 * The sparse-weight ops (types.ts, SparseKernels) on every backend that has them, against
 * the reference's dense gemm with the masked weights (zeros kept): fc shapes (800 -> 500
 * at batch 1 and 64), conv2-like panels (50 filters x 500 taps x 64 pixels, and 8 images'
 * 512) and odd sizes,
 * at sparsities 0 to 1 with one all-zero row always. The sampled gradient must leave every
 * pruned entry exactly as it was. Sparse convolutions (im2col panels of the whole batch,
 * spmm, a block transpose; backward through sampledGradient, spmmTransposed and col2im)
 * against the reference's dense convForward / convBackwardData / convBackwardFilter on the
 * same masked weights: LeNet-5's conv2 and odd strides, paddings and sizes.
 *
 * Tolerance: ELEM (1e-5) relative to 1 + sum over k of |a_k b_k|, the scale of float32
 * summation error. NOTE: relative to 1 + |result| (compare.ts) an 800-term float32 sum
 * that cancels to ~0.4 misses 1e-5 (1.6e-5 seen, sparsity 0, CSR and dense alike): the
 * error follows the terms, not the result.
 */
import { mulberry32 } from '../../src/engine/random';
import { ReferenceKernels } from '../../src/kernels/reference';
import type { ConvShape, Kernels, SparseFormat, SparseKernels, Tensor } from '../../src/kernels/types';
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

/** Convolutions with groups = 1 (the sparse path's): LeNet-5's conv2 and odd geometries. */
function convShape(batch: number, c: number, h: number, w: number, n: number, size: number, stride: number, pad: number): ConvShape {
  const outH = Math.trunc((h + 2 * pad - size) / stride) + 1;
  const outW = Math.trunc((w + 2 * pad - size) / stride) + 1;
  return { batch, c, h, w, n, groups: 1, size, stride, pad, outH, outW };
}
const CONV_SHAPES: Record<string, ConvShape> = {
  'LeNet-5 conv2 20->50, 5x5 on 12x12, batch 2': convShape(2, 20, 12, 12, 50, 5, 1, 0),
  'odd: stride 2, pad 1, 3x3, batch 3': convShape(3, 3, 7, 9, 5, 3, 2, 1),
  'odd: stride 1, pad 2, 3x3 on 5x6 (taps outside on every side)': convShape(2, 2, 5, 6, 3, 3, 1, 2),
  'odd: stride 3, 4x4, pad 1, one image': convShape(1, 4, 10, 11, 6, 4, 3, 1),
};

/** The im2col panels [c * size * size, batch, outH * outW], straight from the definition (types.ts). */
function im2colByDefinition(x: Float32Array, s: ConvShape): Float32Array {
  const spatial = s.outH * s.outW;
  const out = new Float32Array(s.c * s.size * s.size * s.batch * spatial);
  let i = 0;
  for (let ch = 0; ch < s.c; ch++) {
    for (let ky = 0; ky < s.size; ky++) {
      for (let kx = 0; kx < s.size; kx++) {
        for (let b = 0; b < s.batch; b++) {
          for (let oy = 0; oy < s.outH; oy++) {
            for (let ox = 0; ox < s.outW; ox++) {
              const y = oy * s.stride - s.pad + ky;
              const xx = ox * s.stride - s.pad + kx;
              out[i++] = y >= 0 && y < s.h && xx >= 0 && xx < s.w ? x[((b * s.c + ch) * s.h + y) * s.w + xx] : 0;
            }
          }
        }
      }
    }
  }
  return out;
}

/** The reference's dense convolution ops (float64) on host arrays, with the scales of their sums. */
function denseConv(w: Float32Array, x: Float32Array, d: Float32Array, s: ConvShape) {
  const k = new ReferenceKernels({ float64: true });
  const run = (wv: Float32Array, xv: Float32Array, dv: Float32Array) => {
    const [tw, tx, td] = [wv, xv, dv].map((v) => {
      const t = k.alloc(v.length);
      k.upload(t, v);
      return t;
    });
    const out = k.alloc(d.length);
    const dw = k.alloc(w.length);
    const dx = k.alloc(x.length);
    k.convForward(out, tx, tw, s);
    k.convBackwardFilter(dw, td, tx, s);
    k.convBackwardData(dx, td, tw, s);
    return { out: k.read(out), dw: k.read(dw), dx: k.read(dx) };
  };
  const exact = run(w, x, d);
  const scale = run(abs(w), abs(x), abs(d));
  k.dispose();
  return { ...exact, outScale: scale.out, dwScale: scale.dw, dxScale: scale.dx };
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

    test('transpose with block: [rows, cols, block] to [cols, rows, block], exactly', () => {
      for (const [rows, cols, block] of [[50, 3, 64], [2, 5, 7], [1, 4, 3], [3, 1, 2]]) {
        const v = values(rows * cols * block, rows * 100 + cols + block);
        const src = tensor(v);
        const dst = k.alloc(v.length);
        sp.transpose(dst, src, { rows, cols, block });
        const want = new Float32Array(v.length);
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < cols; j++) for (let e = 0; e < block; e++) want[(j * rows + i) * block + e] = v[(i * cols + j) * block + e];
        }
        expect(Array.from(k.read(dst))).toEqual(Array.from(want));
        k.free(src);
        k.free(dst);
      }
      const t = k.alloc(12);
      expect(() => sp.transpose(k.alloc(12), t, { rows: 2, cols: 3, block: 0 })).toThrow('sparse.transpose: block must be a positive integer, got 0');
      expect(() => sp.transpose(k.alloc(12), t, { rows: 2, cols: 3, block: 3 })).toThrow('sparse.transpose: src has 12 values, the shape needs 18');
    });

    for (const [convName, s] of Object.entries(CONV_SHAPES)) {
      test(`conv ${convName}: im2col exactly as its definition, col2im its adjoint`, () => {
        const K = s.c * s.size * s.size;
        const N = s.batch * s.outH * s.outW;
        const xv = values(s.batch * s.c * s.h * s.w, 11 + s.c);
        const x = tensor(xv);
        const cols = tensor(values(K * N, 12)); // overwritten everywhere
        sp.im2col(cols, x, s);
        expect(Array.from(k.read(cols))).toEqual(Array.from(im2colByDefinition(xv, s)));
        // <im2col(x), C> = <x, col2im(C)>, and col2im adds into what is there
        const cv = values(K * N, 13);
        const init = values(xv.length, 14);
        const dx = tensor(init);
        const c = tensor(cv);
        sp.col2im(dx, c, s);
        const got = k.read(dx);
        const panel = im2colByDefinition(xv, s);
        let lhs = 0;
        let rhs = 0;
        let scale = 0;
        for (let i = 0; i < panel.length; i++) {
          lhs += panel[i] * cv[i];
          scale += Math.abs(panel[i] * cv[i]);
        }
        for (let i = 0; i < xv.length; i++) rhs += xv[i] * (got[i] - init[i]);
        expect(Math.abs(lhs - rhs)).toBeLessThan(ELEM * (1 + scale));
        for (const t of [x, cols, dx, c]) k.free(t);
      });

      for (const sparsity of [0, 0.88, 1]) {
        test(`conv ${convName}, sparsity ${sparsity}: forward, backward-data and backward-filter equal the reference's dense convolution`, () => {
          const K = s.c * s.size * s.size;
          const spatial = s.outH * s.outW;
          const N = s.batch * spatial;
          const seed = s.c * 131 + s.n * 17 + Math.round(sparsity * 100);
          const w = prunedWeights(s.n, K, sparsity, seed);
          const xv = values(s.batch * s.c * s.h * s.w, seed + 1);
          const dv = values(s.batch * s.n * spatial, seed + 2);
          const want = denseConv(w, xv, dv, s);

          const weights = tensor(w);
          const x = tensor(xv);
          const delta = tensor(dv);
          const A = sp.pack(weights, s.n, K);
          const cols = k.alloc(K * N);
          const outT = k.alloc(s.n * N);
          const out = k.alloc(s.batch * s.n * spatial);
          // forward: out = transpose(W x im2col(x))
          sp.im2col(cols, x, s);
          sp.spmm(outT, A, cols, { N, accumulate: false });
          sp.transpose(out, outT, { rows: s.n, cols: s.batch, block: spatial });
          expectWithin(k.read(out), want.out, want.outScale, 'sparse conv forward');
          // the fused forward (per image, its panel in scratch on wasm-simd): the same sums
          const fused = tensor(values(out.size, seed + 5));
          sp.convForward(fused, A, x, s);
          expectWithin(k.read(fused), want.out, want.outScale, 'sparse.convForward');
          k.free(fused);
          // backward-filter at the kept weights only
          const initW = values(w.length, seed + 3);
          const dw = tensor(initW);
          sp.transpose(outT, delta, { rows: s.batch, cols: s.n, block: spatial });
          sp.sampledGradient(dw, A, outT, cols, { N });
          const gotW = k.read(dw);
          expectWithin(gotW, want.dw.map((v, i) => initW[i] + (w[i] !== 0 ? v : 0)), want.dwScale, 'sparse conv backward-filter');
          expect(gotW.findIndex((v, i) => w[i] === 0 && !Object.is(v, initW[i]))).toBe(-1);
          // backward-data: dx += col2im(W^T delta)
          const initX = values(xv.length, seed + 4);
          const dx = tensor(initX);
          sp.spmmTransposed(cols, A, outT, { N, accumulate: false });
          sp.col2im(dx, cols, s);
          expectWithin(k.read(dx), want.dx.map((v, i) => v + initX[i]), want.dxScale, 'sparse conv backward-data');
          sp.free(A);
          for (const t of [weights, x, delta, cols, outT, out, dw, dx]) k.free(t);
        });
      }
    }

    test('im2col and col2im on a panel large enough to run threaded (conv2 at batch 34, 1.1M floats), as the reference', () => {
      const s = convShape(34, 20, 12, 12, 50, 5, 1, 0);
      const xv = values(s.batch * s.c * s.h * s.w, 21);
      const x = tensor(xv);
      const cols = k.alloc(s.c * 25 * s.batch * 64);
      sp.im2col(cols, x, s);
      const panel = k.read(cols);
      const byDefinition = im2colByDefinition(xv, s);
      expect(panel.findIndex((v, i) => v !== byDefinition[i])).toBe(-1);
      const cv = values(cols.size, 22);
      const init = values(xv.length, 23);
      const [tc, tdx] = [truth.alloc(cv.length), truth.alloc(init.length)];
      truth.upload(tc, cv);
      truth.upload(tdx, init);
      truth.sparse!.col2im(tdx, tc, s);
      const dx = tensor(init);
      k.upload(cols, cv);
      sp.col2im(dx, cols, s);
      const want = truth.read(tdx);
      const got = k.read(dx);
      expect(got.findIndex((v, i) => !(Math.abs(v - want[i]) <= ELEM * 30))).toBe(-1);
      for (const t of [x, cols, dx]) k.free(t);
      truth.free(tc);
      truth.free(tdx);
    });

    test('sparse.convForward with an image panel larger than a thread\'s scratch (360 x 32x32) equals the dense convolution', () => {
      const s = convShape(2, 40, 32, 32, 3, 3, 1, 1);
      const K = s.c * 9;
      const w = prunedWeights(s.n, K, 0.7, 31);
      const xv = values(s.batch * s.c * s.h * s.w, 32);
      const want = denseConv(w, xv, new Float32Array(s.batch * s.n * s.outH * s.outW), s);
      const [weights, x] = [tensor(w), tensor(xv)];
      const out = k.alloc(want.out.length);
      const A = sp.pack(weights, s.n, K);
      sp.convForward(out, A, x, s);
      expectWithin(k.read(out), want.out, want.outScale, 'sparse.convForward, large panel');
      expect(() => sp.convForward(out, A, x, { ...s, n: 4 })).toThrow('sparse.convForward: A is 3 x 360, the convolution\'s weights are 4 x 360');
      sp.free(A);
      for (const t of [weights, x, out]) k.free(t);
    });

    test('im2col and col2im checks: groups, shapes, sizes', () => {
      const s = CONV_SHAPES['odd: stride 2, pad 1, 3x3, batch 3'];
      const x = k.alloc(s.batch * s.c * s.h * s.w);
      const cols = k.alloc(s.c * s.size * s.size * s.batch * s.outH * s.outW);
      expect(() => sp.im2col(cols, x, { ...s, groups: 2, n: 4 })).toThrow('sparse.im2col: groups must be 1, got 2');
      expect(() => sp.im2col(cols, x, { ...s, outH: s.outH + 1 })).toThrow(/sparse.im2col: outH x outW is/);
      expect(() => sp.col2im(x, k.alloc(3), s)).toThrow(/sparse.col2im: cols has 3 values, the shape needs \d+/);
      for (const t of [x, cols]) k.free(t);
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
