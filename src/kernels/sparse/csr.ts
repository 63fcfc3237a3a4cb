import type { FloatArray } from '../types';

/**
 * Compressed sparse rows of a dense row-major matrix, host side: the one place that
 * decides which entries a SparseMatrix keeps (those != 0; a NaN is kept). Both backends
 * build their storage from it.
 */
export interface Csr {
  rows: number;
  cols: number;
  /** [rows + 1]: row i's entries are rowStart[i] .. rowStart[i + 1] - 1 */
  rowStart: Int32Array;
  /** [nonZeros] column of each entry, increasing within a row */
  colIndex: Int32Array;
}

/** The positions of the non-zeros of dense [rows x cols] (values are read separately). */
export function csrPositions(dense: ArrayLike<number>, offset: number, rows: number, cols: number): Csr {
  const rowStart = new Int32Array(rows + 1);
  let nnz = 0;
  for (let i = 0; i < rows; i++) {
    const base = offset + i * cols;
    for (let k = 0; k < cols; k++) if (dense[base + k] !== 0) nnz++;
    rowStart[i + 1] = nnz;
  }
  const colIndex = new Int32Array(nnz);
  let p = 0;
  for (let i = 0; i < rows; i++) {
    const base = offset + i * cols;
    for (let k = 0; k < cols; k++) if (dense[base + k] !== 0) colIndex[p++] = k;
  }
  return { rows, cols, rowStart, colIndex };
}

/** The transpose's positions (a [cols x rows] CSR), and for each of its entries the dense index i * cols + k. */
export function csrTranspose(a: Csr): { csr: Csr; denseIndex: Int32Array } {
  const nnz = a.colIndex.length;
  const rowStart = new Int32Array(a.cols + 1);
  for (let p = 0; p < nnz; p++) rowStart[a.colIndex[p] + 1]++;
  for (let k = 0; k < a.cols; k++) rowStart[k + 1] += rowStart[k];
  const next = rowStart.slice(0, a.cols);
  const colIndex = new Int32Array(nnz);
  const denseIndex = new Int32Array(nnz);
  for (let i = 0; i < a.rows; i++) {
    for (let p = a.rowStart[i]; p < a.rowStart[i + 1]; p++) {
      const k = a.colIndex[p];
      const q = next[k]++;
      colIndex[q] = i;
      denseIndex[q] = i * a.cols + k;
    }
  }
  return { csr: { rows: a.cols, cols: a.rows, rowStart, colIndex }, denseIndex };
}

/**
 * 4x1 blocks: row group g (rows 4g .. 4g+3) keeps column k when any of its rows has a
 * non-zero there. blockStart [groups + 1], blockCol [blocks].
 */
export function block4x1Positions(a: Csr): { blockStart: Int32Array; blockCol: Int32Array } {
  const groups = Math.ceil(a.rows / 4);
  const blockStart = new Int32Array(groups + 1);
  const cols: number[] = [];
  const seen = new Int32Array(a.cols).fill(-1);
  for (let g = 0; g < groups; g++) {
    const group: number[] = [];
    for (let i = 4 * g; i < Math.min(4 * g + 4, a.rows); i++) {
      for (let p = a.rowStart[i]; p < a.rowStart[i + 1]; p++) {
        const k = a.colIndex[p];
        if (seen[k] !== g) {
          seen[k] = g;
          group.push(k);
        }
      }
    }
    group.sort((x, y) => x - y);
    for (const k of group) cols.push(k);
    blockStart[g + 1] = cols.length;
  }
  return { blockStart, blockCol: Int32Array.from(cols) };
}

/** values[p] = dense[offset + row(p) * cols + colIndex[p]]. */
export function gatherValues(values: FloatArray, a: Csr, dense: ArrayLike<number>, offset: number): void {
  for (let i = 0; i < a.rows; i++) {
    const base = offset + i * a.cols;
    for (let p = a.rowStart[i]; p < a.rowStart[i + 1]; p++) values[p] = dense[base + a.colIndex[p]];
  }
}
