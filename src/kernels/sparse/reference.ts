import {
  checkIm2col, checkSampledGradient, checkSparseConv, checkSparsePack, checkSparseProduct, checkTranspose, expectLiveSparse, markSparseFreed,
} from '../checks';
import type { ConvShape, FloatArray, SparseFormat, SparseKernels, SparseMatrix, Tensor } from '../types';
import { type Csr, csrPositions, gatherValues } from './csr';

/**
 * The plain TypeScript sparse ops: CSR loops, one entry at a time, in the backend's
 * precision. Both formats store the same kept entries here (a block format is a wasm-simd
 * layout, not different maths).
 */
class ReferenceSparseMatrix implements SparseMatrix {
  readonly nonZeros: number;
  constructor(readonly rows: number, readonly cols: number, readonly format: SparseFormat,
    readonly csr: Csr, public values: FloatArray, readonly owner: ReferenceSparse) {
    this.nonZeros = csr.colIndex.length;
  }
}

export class ReferenceSparse implements SparseKernels {
  /** `data`: the backend's checked look-up of a live tensor's storage. */
  constructor(private readonly data: (op: string, t: Tensor) => FloatArray) {}

  pack(weights: Tensor, rows: number, cols: number, format: SparseFormat = 'csr'): SparseMatrix {
    const w = this.data('sparse.pack', weights);
    checkSparsePack(weights, rows, cols, format);
    const csr = csrPositions(w, 0, rows, cols);
    const values = new (w.constructor as Float32ArrayConstructor)(csr.colIndex.length);
    gatherValues(values, csr, w, 0);
    return new ReferenceSparseMatrix(rows, cols, format, csr, values, this);
  }

  refresh(A: SparseMatrix, weights: Tensor): void {
    const a = this.matrix('sparse.refresh', A);
    const w = this.data('sparse.refresh', weights);
    checkSparsePack(weights, a.rows, a.cols, a.format);
    gatherValues(a.values, a.csr, w, 0);
  }

  free(A: SparseMatrix): void {
    if (!(A instanceof ReferenceSparseMatrix) || A.owner !== this) throw new Error('sparse.free: not a sparse matrix of this reference backend');
    markSparseFreed(A);
    A.values = new Float32Array(0);
  }

  spmm(C: Tensor, A: SparseMatrix, B: Tensor, s: { N: number; accumulate: boolean }): void {
    const a = this.matrix('sparse.spmm', A);
    const c = this.data('sparse.spmm', C);
    const b = this.data('sparse.spmm', B);
    checkSparseProduct('sparse.spmm', a, C, B, s.N, false);
    const { N } = s;
    const { rowStart, colIndex } = a.csr;
    for (let i = 0; i < a.rows; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let p = rowStart[i]; p < rowStart[i + 1]; p++) sum += a.values[p] * b[colIndex[p] * N + j];
        c[i * N + j] = s.accumulate ? c[i * N + j] + sum : sum;
      }
    }
  }

  spmmTransposed(C: Tensor, A: SparseMatrix, B: Tensor, s: { N: number; accumulate: boolean }): void {
    const a = this.matrix('sparse.spmmTransposed', A);
    const c = this.data('sparse.spmmTransposed', C);
    const b = this.data('sparse.spmmTransposed', B);
    checkSparseProduct('sparse.spmmTransposed', a, C, B, s.N, true);
    const { N } = s;
    const { rowStart, colIndex } = a.csr;
    const sum = new Float64Array(a.cols * N);
    for (let i = 0; i < a.rows; i++) {
      for (let p = rowStart[i]; p < rowStart[i + 1]; p++) {
        const v = a.values[p];
        const k = colIndex[p];
        for (let j = 0; j < N; j++) sum[k * N + j] += v * b[i * N + j];
      }
    }
    for (let q = 0; q < sum.length; q++) c[q] = s.accumulate ? c[q] + sum[q] : sum[q];
  }

  sampledGradient(weightUpdates: Tensor, A: SparseMatrix, delta: Tensor, input: Tensor, s: { N: number }): void {
    const op = 'sparse.sampledGradient';
    const a = this.matrix(op, A);
    const dw = this.data(op, weightUpdates);
    const d = this.data(op, delta);
    const x = this.data(op, input);
    checkSampledGradient(a, weightUpdates, delta, input, s.N);
    const { N } = s;
    const { rowStart, colIndex } = a.csr;
    for (let i = 0; i < a.rows; i++) {
      for (let p = rowStart[i]; p < rowStart[i + 1]; p++) {
        const k = colIndex[p];
        let sum = 0;
        for (let j = 0; j < N; j++) sum += d[i * N + j] * x[k * N + j];
        dw[i * a.cols + k] += sum;
      }
    }
  }

  transpose(dst: Tensor, src: Tensor, s: { rows: number; cols: number; block?: number }): void {
    const d = this.data('sparse.transpose', dst);
    const x = this.data('sparse.transpose', src);
    const block = s.block ?? 1;
    checkTranspose(dst, src, s.rows, s.cols, block);
    for (let i = 0; i < s.rows; i++) {
      for (let j = 0; j < s.cols; j++) {
        for (let e = 0; e < block; e++) d[(j * s.rows + i) * block + e] = x[(i * s.cols + j) * block + e];
      }
    }
  }

  im2col(cols: Tensor, input: Tensor, s: ConvShape): void {
    const c = this.data('sparse.im2col', cols);
    const x = this.data('sparse.im2col', input);
    checkIm2col('sparse.im2col', s, input, cols);
    forEachTap(s, (k, tap) => { c[k] = tap < 0 ? 0 : x[tap]; });
  }

  convForward(out: Tensor, A: SparseMatrix, input: Tensor, s: ConvShape): void {
    const a = this.matrix('sparse.convForward', A);
    const o = this.data('sparse.convForward', out);
    const x = this.data('sparse.convForward', input);
    checkSparseConv('sparse.convForward', a, out, input, s);
    const spatial = s.outH * s.outW;
    const N = s.batch * spatial;
    const cols = new Float64Array(a.cols * N);
    forEachTap(s, (k, tap) => { cols[k] = tap < 0 ? 0 : x[tap]; });
    const { rowStart, colIndex } = a.csr;
    for (let i = 0; i < a.rows; i++) {
      for (let b = 0; b < s.batch; b++) {
        for (let p = 0; p < spatial; p++) {
          let sum = 0;
          for (let q = rowStart[i]; q < rowStart[i + 1]; q++) sum += a.values[q] * cols[colIndex[q] * N + b * spatial + p];
          o[(b * s.n + i) * spatial + p] = sum;
        }
      }
    }
  }

  col2im(inputDelta: Tensor, cols: Tensor, s: ConvShape): void {
    const dx = this.data('sparse.col2im', inputDelta);
    const c = this.data('sparse.col2im', cols);
    checkIm2col('sparse.col2im', s, inputDelta, cols);
    forEachTap(s, (k, tap) => { if (tap >= 0) dx[tap] += c[k]; });
  }

  private matrix(op: string, A: SparseMatrix): ReferenceSparseMatrix {
    if (!(A instanceof ReferenceSparseMatrix) || A.owner !== this) throw new Error(`${op}: not a sparse matrix of this reference backend`);
    expectLiveSparse(op, A);
    return A;
  }
}

/**
 * Calls fn(panel index, input index or -1 outside the image) for every entry of the
 * im2col panels [c * size * size, batch, outH * outW] (types.ts, SparseKernels.im2col).
 */
function forEachTap(s: ConvShape, fn: (k: number, tap: number) => void): void {
  const spatial = s.outH * s.outW;
  const N = s.batch * spatial;
  for (let ch = 0; ch < s.c; ch++) {
    for (let ky = 0; ky < s.size; ky++) {
      for (let kx = 0; kx < s.size; kx++) {
        const row = ((ch * s.size + ky) * s.size + kx) * N;
        for (let b = 0; b < s.batch; b++) {
          const plane = (b * s.c + ch) * s.h * s.w;
          for (let oy = 0; oy < s.outH; oy++) {
            const y = oy * s.stride - s.pad + ky;
            for (let ox = 0; ox < s.outW; ox++) {
              const x = ox * s.stride - s.pad + kx;
              const inside = y >= 0 && y < s.h && x >= 0 && x < s.w;
              fn(row + b * spatial + oy * s.outW + ox, inside ? plane + y * s.w + x : -1);
            }
          }
        }
      }
    }
  }
}
