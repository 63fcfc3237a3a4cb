import {
  checkIm2col, checkSampledGradient, checkSparseConv, checkSparsePack, checkSparseProduct, checkTranspose, expectLiveSparse, markSparseFreed,
} from '../checks';
import type { ConvShape, SparseFormat, SparseKernels, SparseMatrix, Tensor } from '../types';
import { block4x1Positions, type Csr, csrPositions, csrTranspose } from './csr';

/**
 * The sparse ops on the wasm-simd backend (kernels in ../wasm/assembly/sparse.ts). A
 * matrix lives in the backend's shared memory as CSR of A (for spmm and the sampled
 * gradient) and CSR of A^T (so the transposed product is the same row kernel, with no
 * scattered writes), plus, for 'block4x1', the blocks that spmm then uses. Each array
 * carries the dense position of its values, so `refresh` is one gather.
 */

/** What the backend lends this module: checked tensors, its heap, its jobs, its exports. */
export interface WasmSparseHost {
  /** a live tensor of the backend: byte offset and size */
  tensor(op: string, t: Tensor): { ptr: number; size: number };
  /** zeroed bytes from the backend's heap (byte offset), and back */
  alloc(bytes: number): number;
  free(ptr: number): void;
  /** a view of the whole memory, current (the memory may have grown) */
  view(): ArrayBuffer | SharedArrayBuffer;
  /** runs an exported job on the pool (threads when flops is large enough) */
  job(name: SparseJob, flops: number, args: number[]): void;
  /** values[p] = dense[index[p]] for p < n */
  gatherSparse(values: number, dense: number, index: number, n: number): void;
  /** the per-thread scratch of the backend's jobs: [first byte, bytes per thread] */
  scratch(): [number, number];
  /** dst [cols x rows] = src [rows x cols] transposed */
  transpose(dst: number, src: number, rows: number, cols: number): void;
  /** dst [cols, rows, block] = src [rows, cols, block] */
  transposeBlocks(dst: number, src: number, rows: number, cols: number, block: number): void;
}

export const SPARSE_JOBS = ['spmmCsrJob', 'spmmBlock4x1Job', 'sampledGradientJob', 'im2colJob', 'sparseConvForwardJob'] as const;
export type SparseJob = (typeof SPARSE_JOBS)[number];

/** A CSR in memory: row starts, column indices, values, and each value's dense index. */
interface WasmCsr {
  rows: number;
  nnz: number;
  rowStart: number;
  colIndex: number;
  values: number;
  denseIndex: number;
}

class WasmSparseMatrix implements SparseMatrix {
  constructor(
    readonly rows: number, readonly cols: number, readonly nonZeros: number, readonly format: SparseFormat,
    readonly csr: WasmCsr, readonly transposed: WasmCsr,
    readonly blocks: WasmCsr | null, readonly owner: WasmSparse,
  ) {}
}

export class WasmSparse implements SparseKernels {
  constructor(private readonly host: WasmSparseHost) {}

  pack(weights: Tensor, rows: number, cols: number, format: SparseFormat = 'csr'): SparseMatrix {
    const w = this.host.tensor('sparse.pack', weights);
    checkSparsePack(w, rows, cols, format);
    const dense = new Float32Array(this.host.view(), w.ptr, w.size);
    const positions = csrPositions(dense, 0, rows, cols);
    const forwardIndex = new Int32Array(positions.colIndex.length);
    for (let i = 0; i < rows; i++) {
      for (let p = positions.rowStart[i]; p < positions.rowStart[i + 1]; p++) forwardIndex[p] = i * cols + positions.colIndex[p];
    }
    const csr = this.store(positions, forwardIndex);
    const t = csrTranspose(positions);
    const transposed = this.store(t.csr, t.denseIndex);
    let blocks: WasmCsr | null = null;
    if (format === 'block4x1') {
      const b = block4x1Positions(positions);
      // four values per block, rows 4g .. 4g+3; a padded slot (a pruned entry, or a row
      // past M) has index -1 and stays 0, so refresh never revives a pruned weight
      const index = new Int32Array(b.blockCol.length * 4);
      for (let g = 0; g + 1 < b.blockStart.length; g++) {
        for (let q = b.blockStart[g]; q < b.blockStart[g + 1]; q++) {
          for (let r = 0; r < 4; r++) {
            const i = 4 * g + r;
            const at = i * cols + b.blockCol[q];
            index[4 * q + r] = i < rows && dense[at] !== 0 ? at : -1;
          }
        }
      }
      blocks = this.store({ rows: b.blockStart.length - 1, cols, rowStart: b.blockStart, colIndex: b.blockCol }, index);
    }
    const A = new WasmSparseMatrix(rows, cols, positions.colIndex.length, format, csr, transposed, blocks, this);
    this.gather(A, w.ptr);
    return A;
  }

  refresh(A: SparseMatrix, weights: Tensor): void {
    const a = this.matrix('sparse.refresh', A);
    const w = this.host.tensor('sparse.refresh', weights);
    checkSparsePack(w, a.rows, a.cols, a.format);
    this.gather(a, w.ptr);
  }

  free(A: SparseMatrix): void {
    if (!(A instanceof WasmSparseMatrix) || A.owner !== this) throw new Error('sparse.free: not a sparse matrix of this wasm-simd backend');
    markSparseFreed(A);
    for (const c of [A.csr, A.transposed, A.blocks]) {
      if (c) for (const ptr of [c.rowStart, c.colIndex, c.values, c.denseIndex]) this.host.free(ptr);
    }
  }

  spmm(C: Tensor, A: SparseMatrix, B: Tensor, s: { N: number; accumulate: boolean }): void {
    const op = 'sparse.spmm';
    const a = this.matrix(op, A);
    const c = this.host.tensor(op, C);
    const b = this.host.tensor(op, B);
    checkSparseProduct(op, a, c, b, s.N, false);
    if (s.N === 0 || a.rows === 0) return;
    const flops = 2 * a.nonZeros * s.N;
    const accumulate = s.accumulate ? 1 : 0;
    if (a.blocks) {
      const m = a.blocks;
      this.host.job('spmmBlock4x1Job', flops, [m.rowStart, m.colIndex, m.values, a.rows, s.N, b.ptr, c.ptr, accumulate]);
    } else {
      const m = a.csr;
      this.host.job('spmmCsrJob', flops, [m.rowStart, m.colIndex, m.values, a.rows, s.N, a.cols, b.ptr, c.ptr, accumulate, ...this.host.scratch()]);
    }
  }

  spmmTransposed(C: Tensor, A: SparseMatrix, B: Tensor, s: { N: number; accumulate: boolean }): void {
    const op = 'sparse.spmmTransposed';
    const a = this.matrix(op, A);
    const c = this.host.tensor(op, C);
    const b = this.host.tensor(op, B);
    checkSparseProduct(op, a, c, b, s.N, true);
    if (s.N === 0 || a.cols === 0) return;
    const m = a.transposed;
    this.host.job('spmmCsrJob', 2 * a.nonZeros * s.N,
      [m.rowStart, m.colIndex, m.values, a.cols, s.N, a.rows, b.ptr, c.ptr, s.accumulate ? 1 : 0, ...this.host.scratch()]);
  }

  sampledGradient(weightUpdates: Tensor, A: SparseMatrix, delta: Tensor, input: Tensor, s: { N: number }): void {
    const op = 'sparse.sampledGradient';
    const a = this.matrix(op, A);
    const dw = this.host.tensor(op, weightUpdates);
    const d = this.host.tensor(op, delta);
    const x = this.host.tensor(op, input);
    checkSampledGradient(a, dw, d, x, s.N);
    if (s.N === 0 || a.nonZeros === 0) return;
    this.host.job('sampledGradientJob', 2 * a.nonZeros * s.N,
      [a.csr.rowStart, a.csr.colIndex, a.rows, a.cols, s.N, dw.ptr, d.ptr, x.ptr]);
  }

  transpose(dst: Tensor, src: Tensor, s: { rows: number; cols: number; block?: number }): void {
    const d = this.host.tensor('sparse.transpose', dst);
    const x = this.host.tensor('sparse.transpose', src);
    const block = s.block ?? 1;
    checkTranspose(dst, src, s.rows, s.cols, block);
    if (block === 1) this.host.transpose(d.ptr, x.ptr, s.rows, s.cols);
    else this.host.transposeBlocks(d.ptr, x.ptr, s.rows, s.cols, block);
  }

  im2col(cols: Tensor, input: Tensor, s: ConvShape): void {
    this.panels('sparse.im2col', cols, input, s, false);
  }

  col2im(inputDelta: Tensor, cols: Tensor, s: ConvShape): void {
    this.panels('sparse.col2im', cols, inputDelta, s, true);
  }

  convForward(out: Tensor, A: SparseMatrix, input: Tensor, s: ConvShape): void {
    const op = 'sparse.convForward';
    const a = this.matrix(op, A);
    const o = this.host.tensor(op, out);
    const x = this.host.tensor(op, input);
    checkSparseConv(op, a, out, input, s);
    const spatial = s.outH * s.outW;
    if (o.size === 0) return;
    const [scratch, scratchStride] = this.host.scratch();
    if (a.cols * spatial * 4 <= scratchStride) {
      // one image's panel fits a thread's scratch: fused, a unit per image
      const m = a.csr;
      this.host.job('sparseConvForwardJob', 2 * a.nonZeros * spatial * s.batch + 8 * a.cols * spatial * s.batch,
        [m.rowStart, m.colIndex, m.values, o.ptr, x.ptr,
          s.batch, s.c, s.h, s.w, s.n, s.size, s.stride, s.pad, s.outH, s.outW, scratch, scratchStride]);
      return;
    }
    // a larger panel: the batch's, through memory
    const N = s.batch * spatial;
    const bytes = (n: number) => n * 4;
    const cols = this.host.alloc(bytes(a.cols * N));
    const outT = this.host.alloc(bytes(a.rows * N));
    try {
      this.host.job('im2colJob', 4 * a.cols * N, [cols, x.ptr, 0, s.batch, s.c, s.h, s.w, s.size, s.stride, s.pad, s.outH, s.outW]);
      const m = a.csr;
      this.host.job('spmmCsrJob', 2 * a.nonZeros * N, [m.rowStart, m.colIndex, m.values, a.rows, N, a.cols, cols, outT, 0, scratch, scratchStride]);
      this.host.transposeBlocks(o.ptr, outT, a.rows, s.batch, spatial);
    } finally {
      this.host.free(cols);
      this.host.free(outT);
    }
  }

  /** im2col, or col2im with `backward`, as one job over (image, channel) planes. */
  private panels(op: string, cols: Tensor, image: Tensor, s: ConvShape, backward: boolean): void {
    const c = this.host.tensor(op, cols);
    const x = this.host.tensor(op, image);
    checkIm2col(op, s, image, cols);
    if (c.size === 0) return;
    // memory-bound: threads from ~1M panel floats up (the job threshold counts flops)
    this.host.job('im2colJob', 4 * c.size, [c.ptr, x.ptr, backward ? 1 : 0,
      s.batch, s.c, s.h, s.w, s.size, s.stride, s.pad, s.outH, s.outW]);
  }

  // ---- internals ----

  private matrix(op: string, A: SparseMatrix): WasmSparseMatrix {
    if (!(A instanceof WasmSparseMatrix) || A.owner !== this) throw new Error(`${op}: not a sparse matrix of this wasm-simd backend`);
    expectLiveSparse(op, A);
    return A;
  }

  /** Copies positions into the heap (values left to `gather`). */
  private store(c: Csr, denseIndex: Int32Array): WasmCsr {
    const nnz = denseIndex.length;
    const w: WasmCsr = {
      rows: c.rows, nnz,
      rowStart: this.host.alloc(4 * (c.rows + 1)),
      colIndex: this.host.alloc(4 * c.colIndex.length),
      values: this.host.alloc(4 * nnz),
      denseIndex: this.host.alloc(4 * nnz),
    };
    const buf = this.host.view();
    new Int32Array(buf, w.rowStart, c.rows + 1).set(c.rowStart);
    new Int32Array(buf, w.colIndex, c.colIndex.length).set(c.colIndex);
    new Int32Array(buf, w.denseIndex, nnz).set(denseIndex);
    return w;
  }

  /** Every stored value of A from dense weights at `dense` (a padded block slot, index -1, stays 0). */
  private gather(A: WasmSparseMatrix, dense: number): void {
    for (const c of [A.csr, A.transposed]) this.host.gatherSparse(c.values, dense, c.denseIndex, c.nnz);
    if (A.blocks) {
      const buf = this.host.view();
      const index = new Int32Array(buf, A.blocks.denseIndex, A.blocks.nnz);
      const values = new Float32Array(buf, A.blocks.values, A.blocks.nnz);
      const w = new Float32Array(buf, dense, A.rows * A.cols);
      for (let q = 0; q < index.length; q++) values[q] = index[q] < 0 ? 0 : w[index[q]];
    }
  }
}
