// Sparse-weight products for pruned layers (types.ts, SparseKernels): A [M x K] sparse,
// dense operands row-major with N columns. SIMD runs over N, as XNNPACK's MRx1 f32-spmm
// over CHW activations: one kept weight is splatted and multiplies a run of B's row k.
// Pointers are byte offsets; index arrays are i32, values f32.
//
// CSR: rowStart [M + 1], colIndex [nnz], values [nnz].
// block4x1: blockStart [ceil(M / 4) + 1], blockCol [blocks], values [blocks][4] (rows
// 4g .. 4g+3 of the block's column; padded slots, pruned entries or rows past M, hold 0).
// Measured (scripts/bench-sparse.ts): on unstructured zeros CSR beats 4x1 from N = 64 up
// (4x1 computes the padded slots: at 90% zeros a kept block is ~70% padding); 4x1 wins
// at N = 1, where its four rows fill the f32x4 lanes, and on masks pruned in 4x1 blocks.

import { claim, imin, roundUp, transpose4 } from './gemm';

@inline function ld(p: usize, i: i32): i32 { return load<i32>(p + (<usize>i << 2)); }
@inline function addr(p: usize, i: i32): usize { return p + (<usize>i << 2); }

/** Stores v at c (= or +=). */
@inline function put(c: usize, v: v128, accumulate: bool): void {
  v128.store(c, accumulate ? f32x4.add(v128.load(c), v) : v);
}

/** Splits [0, extent) into about 4 units per thread, each a multiple of `tile`. */
@inline function band(extent: i32, nt: i32, tile: i32): i32 {
  return nt == 1 ? extent : roundUp((extent + 4 * nt - 1) / (4 * nt), tile);
}

/** C[i][n0 .. n1) (= or +=) CSR row i of A times B; row strides in bytes. */
function csrRow(i: i32, n0: i32, n1: i32, rowStart: usize, colIndex: usize, values: usize, b: usize, rowBytes: usize, c: usize, cRowBytes: usize, accumulate: bool): void {
  const p0 = ld(rowStart, i), p1 = ld(rowStart, i + 1);
  const crow = c + <usize>i * cRowBytes;
  let j = n0;
  for (; j + 16 <= n1; j += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const bj = b + (<usize>j << 2);
    for (let p = p0; p < p1; p++) {
      const w = v128.load32_splat(addr(values, p));
      const bp = bj + <usize>ld(colIndex, p) * rowBytes;
      a0 = f32x4.add(a0, f32x4.mul(w, v128.load(bp)));
      a1 = f32x4.add(a1, f32x4.mul(w, v128.load(bp, 16)));
      a2 = f32x4.add(a2, f32x4.mul(w, v128.load(bp, 32)));
      a3 = f32x4.add(a3, f32x4.mul(w, v128.load(bp, 48)));
    }
    const cp = crow + (<usize>j << 2);
    put(cp, a0, accumulate); put(cp + 16, a1, accumulate); put(cp + 32, a2, accumulate); put(cp + 48, a3, accumulate);
  }
  for (; j + 4 <= n1; j += 4) {
    let a0 = f32x4.splat(0);
    const bj = b + (<usize>j << 2);
    for (let p = p0; p < p1; p++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(addr(values, p)), v128.load(bj + <usize>ld(colIndex, p) * rowBytes)));
    }
    put(crow + (<usize>j << 2), a0, accumulate);
  }
  for (; j < n1; j++) {
    // NOTE: N = 1 (fc at batch 1) lands here: two partial sums hide the add latency
    let s0: f32 = 0, s1: f32 = 0;
    const bj = b + (<usize>j << 2);
    let p = p0;
    for (; p + 2 <= p1; p += 2) {
      s0 += load<f32>(addr(values, p)) * load<f32>(bj + <usize>ld(colIndex, p) * rowBytes);
      s1 += load<f32>(addr(values, p + 1)) * load<f32>(bj + <usize>ld(colIndex, p + 1) * rowBytes);
    }
    if (p < p1) s0 += load<f32>(addr(values, p)) * load<f32>(bj + <usize>ld(colIndex, p) * rowBytes);
    const at = crow + (<usize>j << 2);
    const s = s0 + s1;
    store<f32>(at, accumulate ? load<f32>(at) + s : s);
  }
}

/**
 * C [M x N] (= or +=) CSR A x B [K x N], as a job: units are bands of rows, or of columns
 * when N > M (conv panels: few filters, many pixels). A column band of a wide B whose
 * rows A reuses (nnz >= 4 K) is first copied to the thread's scratch: B's rows are N
 * floats apart, and at N = 4096 (16 KB, a power of two) they collide in the caches.
 */
export function spmmCsrJob(
  tid: i32, counter: usize, nt: i32, rowStart: usize, colIndex: usize, values: usize,
  M: i32, N: i32, K: i32, b: usize, c: usize, accumulate: bool, scratch: usize, scratchStride: usize,
): i32 {
  const byColumns = N > M;
  const extent = byColumns ? N : M;
  // NOTE: column bands of at most 64 keep the B panel a band reads (K x 64 floats, 128 KB
  // at K = 500) in L2 while every row of A passes over it
  const size = byColumns ? imin(band(extent, nt, 16), 64) : band(extent, nt, 1);
  const units = (extent + size - 1) / size;
  const rowBytes = <usize>N << 2;
  const pack = byColumns && N > 64 && ld(rowStart, M) >= 4 * K && <usize>K * <usize>size * 4 <= scratchStride;
  const s = scratch + <usize>tid * scratchStride;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const lo = u * size, hi = imin(extent, lo + size);
    if (pack) {
      const w = hi - lo;
      const bandBytes = <usize>w << 2;
      for (let k = 0; k < K; k++) memory.copy(s + <usize>k * bandBytes, b + <usize>k * rowBytes + (<usize>lo << 2), bandBytes);
      for (let i = 0; i < M; i++) csrRow(i, 0, w, rowStart, colIndex, values, s, bandBytes, c + (<usize>lo << 2), rowBytes, accumulate);
    } else if (byColumns) {
      for (let i = 0; i < M; i++) csrRow(i, lo, hi, rowStart, colIndex, values, b, rowBytes, c, rowBytes, accumulate);
    } else {
      for (let i = lo; i < hi; i++) csrRow(i, 0, N, rowStart, colIndex, values, b, rowBytes, c, rowBytes, accumulate);
    }
  }
  return done;
}

/** Stores the rows of a 4-row group that exist (rows = 1 .. 4) at c, c + rowBytes, ... */
@inline function put4(c: usize, rowBytes: usize, rows: i32, v0: v128, v1: v128, v2: v128, v3: v128, accumulate: bool): void {
  put(c, v0, accumulate);
  if (rows > 1) put(c + rowBytes, v1, accumulate);
  if (rows > 2) put(c + 2 * rowBytes, v2, accumulate);
  if (rows > 3) put(c + 3 * rowBytes, v3, accumulate);
}

/** C rows 4g .. 4g+3, columns [n0, n1), (= or +=) block row g of A times B. */
function blockGroup(g: i32, n0: i32, n1: i32, M: i32, blockStart: usize, blockCol: usize, values: usize, N: i32, b: usize, c: usize, accumulate: bool): void {
  const q0 = ld(blockStart, g), q1 = ld(blockStart, g + 1);
  const rowBytes = <usize>N << 2;
  const rows = imin(4, M - 4 * g);
  const cg = c + <usize>(4 * g) * rowBytes;
  let j = n0;
  for (; j + 8 <= n1; j += 8) {
    let r00 = f32x4.splat(0), r01 = f32x4.splat(0), r10 = f32x4.splat(0), r11 = f32x4.splat(0);
    let r20 = f32x4.splat(0), r21 = f32x4.splat(0), r30 = f32x4.splat(0), r31 = f32x4.splat(0);
    const bj = b + (<usize>j << 2);
    for (let q = q0; q < q1; q++) {
      const bp = bj + <usize>ld(blockCol, q) * rowBytes;
      const b0 = v128.load(bp), b1 = v128.load(bp, 16);
      const wv = v128.load(values + (<usize>q << 4));
      const w0 = v128.shuffle<f32>(wv, wv, 0, 0, 0, 0);
      r00 = f32x4.add(r00, f32x4.mul(w0, b0)); r01 = f32x4.add(r01, f32x4.mul(w0, b1));
      const w1 = v128.shuffle<f32>(wv, wv, 1, 1, 1, 1);
      r10 = f32x4.add(r10, f32x4.mul(w1, b0)); r11 = f32x4.add(r11, f32x4.mul(w1, b1));
      const w2 = v128.shuffle<f32>(wv, wv, 2, 2, 2, 2);
      r20 = f32x4.add(r20, f32x4.mul(w2, b0)); r21 = f32x4.add(r21, f32x4.mul(w2, b1));
      const w3 = v128.shuffle<f32>(wv, wv, 3, 3, 3, 3);
      r30 = f32x4.add(r30, f32x4.mul(w3, b0)); r31 = f32x4.add(r31, f32x4.mul(w3, b1));
    }
    const cp = cg + (<usize>j << 2);
    put4(cp, rowBytes, rows, r00, r10, r20, r30, accumulate);
    put4(cp + 16, rowBytes, rows, r01, r11, r21, r31, accumulate);
  }
  for (; j + 4 <= n1; j += 4) {
    let r0 = f32x4.splat(0), r1 = f32x4.splat(0), r2 = f32x4.splat(0), r3 = f32x4.splat(0);
    const bj = b + (<usize>j << 2);
    for (let q = q0; q < q1; q++) {
      const b0 = v128.load(bj + <usize>ld(blockCol, q) * rowBytes);
      const wv = v128.load(values + (<usize>q << 4));
      r0 = f32x4.add(r0, f32x4.mul(v128.shuffle<f32>(wv, wv, 0, 0, 0, 0), b0));
      r1 = f32x4.add(r1, f32x4.mul(v128.shuffle<f32>(wv, wv, 1, 1, 1, 1), b0));
      r2 = f32x4.add(r2, f32x4.mul(v128.shuffle<f32>(wv, wv, 2, 2, 2, 2), b0));
      r3 = f32x4.add(r3, f32x4.mul(v128.shuffle<f32>(wv, wv, 3, 3, 3, 3), b0));
    }
    put4(cg + (<usize>j << 2), rowBytes, rows, r0, r1, r2, r3, accumulate);
  }
  for (; j < n1; j++) {
    // the four rows of one column are one f32x4: lanes are rows here
    let acc = f32x4.splat(0);
    const bj = b + (<usize>j << 2);
    for (let q = q0; q < q1; q++) {
      acc = f32x4.add(acc, f32x4.mul(v128.load(values + (<usize>q << 4)), v128.load32_splat(bj + <usize>ld(blockCol, q) * rowBytes)));
    }
    const at = cg + (<usize>j << 2);
    for (let r = 0; r < rows; r++) {
      const v = f32x4.extract_lane(acc, 0);
      const p = at + <usize>r * rowBytes;
      store<f32>(p, accumulate ? load<f32>(p) + v : v);
      acc = v128.shuffle<f32>(acc, acc, 1, 2, 3, 0);
    }
  }
}

/** C [M x N] (= or +=) block4x1 A x B [K x N], as a job over bands of row groups or of columns. */
export function spmmBlock4x1Job(
  tid: i32, counter: usize, nt: i32, blockStart: usize, blockCol: usize, values: usize,
  M: i32, N: i32, b: usize, c: usize, accumulate: bool,
): i32 {
  const groups = (M + 3) >> 2;
  const byColumns = N > M;
  const extent = byColumns ? N : groups;
  const size = byColumns ? imin(band(extent, nt, 8), 64) : band(extent, nt, 1);
  const units = (extent + size - 1) / size;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const lo = u * size, hi = imin(extent, lo + size);
    if (byColumns) {
      for (let g = 0; g < groups; g++) blockGroup(g, lo, hi, M, blockStart, blockCol, values, N, b, c, accumulate);
    } else {
      for (let g = lo; g < hi; g++) blockGroup(g, 0, N, M, blockStart, blockCol, values, N, b, c, accumulate);
    }
  }
  return done;
}

/**
 * Backward-filter at the kept entries, as a job over bands of rows: for each kept (i, k),
 * dw[i * K + k] += dot(delta row i, input row k), both N long.
 */
export function sampledGradientJob(
  tid: i32, counter: usize, nt: i32, rowStart: usize, colIndex: usize,
  M: i32, K: i32, N: i32, dw: usize, delta: usize, input: usize,
): i32 {
  const size = band(M, nt, 1);
  const units = (M + size - 1) / size;
  const rowBytes = <usize>N << 2;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const hi = imin(M, (u + 1) * size);
    for (let i = u * size; i < hi; i++) {
      const d = delta + <usize>i * rowBytes;
      const dwRow = dw + <usize>i * <usize>K * 4;
      // NOTE: the row's end is read once: the stores below may alias it, as far as the compiler knows
      const p1 = ld(rowStart, i + 1);
      let p = ld(rowStart, i);
      // four kept entries at a time share each load of the delta row and one reduction
      if (N >= 8) for (; p + 4 <= p1; p += 4) dot4(dwRow, colIndex, p, d, input, rowBytes, N);
      for (; p < p1; p++) {
        const k = ld(colIndex, p);
        const x = input + <usize>k * rowBytes;
        let s: f32 = 0;
        if (N < 8) {
          // batch 1 (N = 1) and other thin panels: a vector sum would cost more than it saves
          for (let j = 0; j < N; j++) s += load<f32>(d + (<usize>j << 2)) * load<f32>(x + (<usize>j << 2));
          const at = addr(dwRow, k);
          store<f32>(at, load<f32>(at) + s);
          continue;
        }
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let j = 0;
        for (; j + 8 <= N; j += 8) {
          const o = <usize>j << 2;
          a0 = f32x4.add(a0, f32x4.mul(v128.load(d + o), v128.load(x + o)));
          a1 = f32x4.add(a1, f32x4.mul(v128.load(d + o, 16), v128.load(x + o, 16)));
        }
        for (; j + 4 <= N; j += 4) a0 = f32x4.add(a0, f32x4.mul(v128.load(d + (<usize>j << 2)), v128.load(x + (<usize>j << 2))));
        a0 = f32x4.add(a0, a1);
        s = f32x4.extract_lane(a0, 0) + f32x4.extract_lane(a0, 1) + f32x4.extract_lane(a0, 2) + f32x4.extract_lane(a0, 3);
        for (; j < N; j++) s += load<f32>(d + (<usize>j << 2)) * load<f32>(x + (<usize>j << 2));
        const at = addr(dwRow, k);
        store<f32>(at, load<f32>(at) + s);
      }
    }
  }
  return done;
}

/** dwRow[k_r] += dot(d, input row k_r) for the four entries p .. p+3 (k_r = colIndex[p + r]), rows N long. */
@inline function dot4(dwRow: usize, colIndex: usize, p: i32, d: usize, input: usize, rowBytes: usize, N: i32): void {
  const k0 = ld(colIndex, p), k1 = ld(colIndex, p + 1), k2 = ld(colIndex, p + 2), k3 = ld(colIndex, p + 3);
  const x0 = input + <usize>k0 * rowBytes, x1 = input + <usize>k1 * rowBytes;
  const x2 = input + <usize>k2 * rowBytes, x3 = input + <usize>k3 * rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= N; j += 4) {
    const o = <usize>j << 2;
    const dv = v128.load(d + o);
    a0 = f32x4.add(a0, f32x4.mul(dv, v128.load(x0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(dv, v128.load(x1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(dv, v128.load(x2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(dv, v128.load(x3 + o)));
  }
  // lane r of sums = the horizontal sum of a_r
  const t0 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const t1 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  const sums = f32x4.add(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  let s0 = f32x4.extract_lane(sums, 0), s1 = f32x4.extract_lane(sums, 1);
  let s2 = f32x4.extract_lane(sums, 2), s3 = f32x4.extract_lane(sums, 3);
  for (; j < N; j++) {
    const o = <usize>j << 2;
    const dj = load<f32>(d + o);
    s0 += dj * load<f32>(x0 + o); s1 += dj * load<f32>(x1 + o);
    s2 += dj * load<f32>(x2 + o); s3 += dj * load<f32>(x3 + o);
  }
  store<f32>(addr(dwRow, k0), load<f32>(addr(dwRow, k0)) + s0);
  store<f32>(addr(dwRow, k1), load<f32>(addr(dwRow, k1)) + s1);
  store<f32>(addr(dwRow, k2), load<f32>(addr(dwRow, k2)) + s2);
  store<f32>(addr(dwRow, k3), load<f32>(addr(dwRow, k3)) + s3);
}

/** values[p] = dense[index[p]]: re-reads kept values after an update (index: dense positions). */
export function gatherSparse(values: usize, dense: usize, index: usize, n: i32): void {
  for (let p = 0; p < n; p++) store<f32>(addr(values, p), load<f32>(addr(dense, ld(index, p))));
}

/**
 * dst [cols x rows] = src [rows x cols] transposed, in 4 x 4 tiles (a register transpose)
 * with scalar edges.
 */
export function transposeMatrix(dst: usize, src: usize, rows: i32, cols: i32): void {
  const srcRow = <usize>cols << 2, dstRow = <usize>rows << 2;
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const s0 = src + <usize>i * srcRow;
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      transpose4(dst + <usize>j * dstRow + (<usize>i << 2), dstRow,
        v128.load(s0 + o), v128.load(s0 + srcRow + o), v128.load(s0 + 2 * srcRow + o), v128.load(s0 + 3 * srcRow + o));
    }
    for (; j < cols; j++) {
      for (let r = 0; r < 4; r++) store<f32>(addr(dst, j * rows + i + r), load<f32>(addr(src, (i + r) * cols + j)));
    }
  }
  for (; i < rows; i++) {
    for (let j = 0; j < cols; j++) store<f32>(addr(dst, j * rows + i), load<f32>(addr(src, i * cols + j)));
  }
}

/** dst [cols, rows, block] = src [rows, cols, block]: runs of `block` floats moved whole. */
export function transposeBlocks(dst: usize, src: usize, rows: i32, cols: i32, block: i32): void {
  const bytes = <usize>block << 2;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const d = dst + <usize>(j * rows + i) * bytes, s = src + <usize>(i * cols + j) * bytes;
      let e = 0;
      for (; e + 4 <= block; e += 4) v128.store(d + (<usize>e << 2), v128.load(s + (<usize>e << 2)));
      for (; e < block; e++) store<f32>(d + (<usize>e << 2), load<f32>(s + (<usize>e << 2)));
    }
  }
}

// ---- im2col panels for sparse convolutions (types.ts, SparseKernels.im2col) ----

/** ceil(a / s), s > 0 */
@inline function ceilDiv(a: i32, s: i32): i32 { return a > 0 ? (a + s - 1) / s : -(-a / s); }
/** floor(a / s), s > 0 */
@inline function floorDiv(a: i32, s: i32): i32 { return a >= 0 ? a / s : -((-a + s - 1) / s); }

/**
 * cols [c * size * size, batch, outH * outW] = im2col of every image, or with `backward`
 * dx [batch, c, h, w] += col2im(cols), as a job; a unit is one (image, channel) plane,
 * so col2im's units write disjoint planes. Taps outside the image read 0 (im2col) or
 * are dropped (col2im).
 */
/**
 * Sparse convolution forward, fused per image: a unit is one image, whose im2col panel
 * [K x outH*outW] goes to this thread's scratch (it stays in cache), then out[b] [n x
 * outH*outW] = CSR A [n x K] x that panel, written straight in the output's layout. The
 * same sums as im2col + spmm + block transpose over the whole batch, without the batch's
 * panel (K times the input) passing through memory. The host checks the panel fits.
 */
export function sparseConvForwardJob(
  tid: i32, counter: usize, nt: i32, rowStart: usize, colIndex: usize, values: usize, out: usize, x: usize,
  batch: i32, c: i32, h: i32, w: i32, n: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32,
  scratch: usize, scratchStride: usize,
): i32 {
  const S = outH * outW;
  const rowBytes = <usize>S << 2;
  const panel = scratch + <usize>tid * scratchStride;
  let done = 0;
  for (let b = claim(counter); b < batch; b = claim(counter), done++) {
    for (let ch = 0; ch < c; ch++) {
      const plane = x + (<usize>((b * c + ch) * h * w) << 2);
      im2colPlane(panel, rowBytes, plane, ch, h, w, size, stride, pad, outH, outW);
    }
    const ob = out + <usize>b * <usize>n * rowBytes;
    for (let i = 0; i < n; i++) csrRow(i, 0, S, rowStart, colIndex, values, panel, rowBytes, ob, rowBytes, false);
  }
  return done;
}

/**
 * The im2col rows of one input plane (channel ch of one image): row k = (ch, ky, kx) at
 * panel + k * rowBytes, outH * outW floats, 0 outside the image.
 */
function im2colPlane(panel0: usize, rowBytes: usize, plane: usize, ch: i32, h: i32, w: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32): void {
  for (let ky = 0; ky < size; ky++) {
    const oyLo = imin(outH, imax(0, ceilDiv(pad - ky, stride)));
    const oyHi = imax(oyLo, imin(outH, floorDiv(h - 1 + pad - ky, stride) + 1));
    for (let kx = 0; kx < size; kx++) {
      const oxLo = imin(outW, imax(0, ceilDiv(pad - kx, stride)));
      const oxHi = imax(oxLo, imin(outW, floorDiv(w - 1 + pad - kx, stride) + 1));
      const run = oxHi - oxLo;
      const panel = panel0 + <usize>((ch * size + ky) * size + kx) * rowBytes;
      zeros(panel, oyLo * outW);
      zeros(panel + (<usize>(oyHi * outW) << 2), (outH - oyHi) * outW);
      for (let oy = oyLo; oy < oyHi; oy++) {
        const d = panel + (<usize>(oy * outW) << 2);
        const src = plane + (<usize>((oy * stride - pad + ky) * w + oxLo * stride - pad + kx) << 2);
        const dOut = d + (<usize>oxLo << 2);
        zeros(d, oxLo);
        zeros(d + (<usize>oxHi << 2), outW - oxHi);
        if (stride == 1) {
          // NOTE: not memory.copy: on a shared memory V8 makes it a runtime call, far slower
          // than these loads and stores for rows of a few floats
          let j = 0;
          for (; j + 4 <= run; j += 4) v128.store(dOut + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
          for (; j < run; j++) store<f32>(dOut + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
        } else {
          for (let j = 0; j < run; j++) store<f32>(dOut + (<usize>j << 2), load<f32>(src + (<usize>(j * stride) << 2)));
        }
      }
    }
  }
}

export function im2colJob(
  tid: i32, counter: usize, nt: i32, cols: usize, x: usize, backward: bool,
  batch: i32, c: i32, h: i32, w: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32,
): i32 {
  const S = outH * outW;
  const rowBytes = <usize>(batch * S) << 2;
  const units = batch * c;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const b = u / c, ch = u % c;
    const plane = x + (<usize>(u * h * w) << 2);
    const panel0 = cols + (<usize>(b * S) << 2);
    if (!backward) {
      im2colPlane(panel0, rowBytes, plane, ch, h, w, size, stride, pad, outH, outW);
      continue;
    }
    for (let ky = 0; ky < size; ky++) {
      const oyLo = imin(outH, imax(0, ceilDiv(pad - ky, stride)));
      const oyHi = imax(oyLo, imin(outH, floorDiv(h - 1 + pad - ky, stride) + 1));
      for (let kx = 0; kx < size; kx++) {
        const oxLo = imin(outW, imax(0, ceilDiv(pad - kx, stride)));
        const oxHi = imax(oxLo, imin(outW, floorDiv(w - 1 + pad - kx, stride) + 1));
        const run = oxHi - oxLo;
        const panel = panel0 + <usize>((ch * size + ky) * size + kx) * rowBytes;
        for (let oy = oyLo; oy < oyHi; oy++) {
          // dx row += panel row, at the taps inside the image
          const src = plane + (<usize>((oy * stride - pad + ky) * w + oxLo * stride - pad + kx) << 2);
          const dOut = panel + (<usize>(oy * outW + oxLo) << 2);
          if (stride == 1) {
            let j = 0;
            for (; j + 4 <= run; j += 4) {
              const o = <usize>j << 2;
              v128.store(src + o, f32x4.add(v128.load(src + o), v128.load(dOut + o)));
            }
            for (; j < run; j++) {
              const o = <usize>j << 2;
              store<f32>(src + o, load<f32>(src + o) + load<f32>(dOut + o));
            }
          } else {
            for (let j = 0; j < run; j++) {
              const at = src + (<usize>(j * stride) << 2);
              store<f32>(at, load<f32>(at) + load<f32>(dOut + (<usize>j << 2)));
            }
          }
        }
      }
    }
  }
  return done;
}

@inline function imax(a: i32, b: i32): i32 { return a > b ? a : b; }

/** n floats of 0 at p (n <= 0: none). */
@inline function zeros(p: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(p + (<usize>j << 2), f32x4.splat(0));
  for (; j < n; j++) store<f32>(p + (<usize>j << 2), 0);
}
