// The SIMD gemm core shared by gemm and the convolutions (AssemblyScript, compiled to
// WebAssembly with `asc --enable simd`). Goto/BLIS structure: the caller packs a block of
// op(A) into MR-row panels and a block of op(B) into NR-column panels, and `macroKernel`
// walks the panels with a 4 x 8 register tile of f32x4 accumulators.
//
// Pointers are byte offsets into the one shared memory; sizes and indices count floats.
// Packed layouts (kc = the K block):
//   A panel: kc x MR floats, [k][r], so one k is MR consecutive row values (splatted)
//   B panel: kc x NR floats, [k][j], so one k is two contiguous f32x4 loads
// The last panel of a block is padded to a whole MR or NR (zeros, or for some conv packers
// repeats of the last column): the micro-kernel never branches, and macroKernel writes
// back only the valid part of an edge tile.

/** Rows of the register tile: 4 x 8 measured fastest on V8 (37 GFLOP/s in L1; 6x8, 4x12, 8x8 spill). */
export const MR: i32 = 4;
/** Columns of the register tile (two f32x4). */
export const NR: i32 = 8;
/** K block: an 8 KB B panel plus a 4 KB A panel stay in L1. */
export const KC: i32 = 256;
/** M block: a 128 KB packed A block stays in L2. */
export const MC: i32 = 128;
/** N block: bounds the packed B block (1 MB). */
export const NC: i32 = 1024;

/** Floats of per-thread scratch the drivers need: packed A, packed B, an edge tile, indices. */
export const SCRATCH_FLOATS: i32 = MC * KC + KC * NC + MR * NR + 64;

@inline export function packAPtr(scratch: usize): usize { return scratch; }
@inline export function packBPtr(scratch: usize): usize { return scratch + <usize>(MC * KC) * 4; }
@inline export function tilePtr(scratch: usize): usize { return scratch + <usize>(MC * KC + KC * NC) * 4; }
@inline export function indexPtr(scratch: usize): usize { return tilePtr(scratch) + <usize>(MR * NR) * 4; }

@inline export function imin(a: i32, b: i32): i32 { return a < b ? a : b; }
@inline export function roundUp(x: i32, m: i32): i32 { return (x + m - 1) / m * m; }

/**
 * c[4 x 8] (= or +=) a-panel x b-panel over kc. ldc is in bytes.
 * NOTE: one k per iteration; unrolling by 2 or 4 measured slower under V8 (register pressure).
 */
@inline
function micro(kc: i32, a: usize, b: usize, c: usize, ldc: usize, accumulate: bool): void {
  let c00 = f32x4.splat(0); let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0); let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0); let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0); let c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    const a0 = v128.load32_splat(a);
    c00 = f32x4.add(c00, f32x4.mul(a0, b0)); c01 = f32x4.add(c01, f32x4.mul(a0, b1));
    const a1 = v128.load32_splat(a, 4);
    c10 = f32x4.add(c10, f32x4.mul(a1, b0)); c11 = f32x4.add(c11, f32x4.mul(a1, b1));
    const a2 = v128.load32_splat(a, 8);
    c20 = f32x4.add(c20, f32x4.mul(a2, b0)); c21 = f32x4.add(c21, f32x4.mul(a2, b1));
    const a3 = v128.load32_splat(a, 12);
    c30 = f32x4.add(c30, f32x4.mul(a3, b0)); c31 = f32x4.add(c31, f32x4.mul(a3, b1));
    a += 16;
    b += 32;
  }
  const r1 = c + ldc;
  const r2 = r1 + ldc;
  const r3 = r2 + ldc;
  if (accumulate) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(r1)); c11 = f32x4.add(c11, v128.load(r1, 16));
    c20 = f32x4.add(c20, v128.load(r2)); c21 = f32x4.add(c21, v128.load(r2, 16));
    c30 = f32x4.add(c30, v128.load(r3)); c31 = f32x4.add(c31, v128.load(r3, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
}

/**
 * C[mc x nc] (= or +=) packed A block [mc x kc] x packed B block [kc x nc].
 * Edge tiles go through `tile` (MR x NR floats) and only their valid part is written.
 */
export function macroKernel(ap: usize, bp: usize, c: usize, ldc: usize, mc: i32, nc: i32, kc: i32, accumulate: bool, tile: usize): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const cols = imin(NR, nc - jp);
    const b = bp + <usize>(jp * kc) * 4;
    for (let ip = 0; ip < mc; ip += MR) {
      const rows = imin(MR, mc - ip);
      const a = ap + <usize>(ip * kc) * 4;
      const cp = c + <usize>ip * ldc + <usize>jp * 4;
      if (rows == MR && cols == NR) {
        micro(kc, a, b, cp, ldc, accumulate);
      } else {
        micro(kc, a, b, tile, NR * 4, false);
        for (let r = 0; r < rows; r++) {
          const row = cp + <usize>r * ldc;
          for (let j = 0; j < cols; j++) {
            const v = load<f32>(tile + <usize>(r * NR + j) * 4);
            const at = row + <usize>j * 4;
            store<f32>(at, accumulate ? load<f32>(at) + v : v);
          }
        }
      }
    }
  }
}

/**
 * Packs op(A)[i0 .. i0+mc)[k0 .. k0+kc) * alpha into MR-row panels at dst, zero-padding
 * the last panel. op(A)[i][k] = transA ? A[k * lda + i] : A[i * lda + k].
 */
export function packA(dst: usize, a: usize, lda: i32, transA: bool, i0: i32, mc: i32, k0: i32, kc: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  for (let ip = 0; ip < mc; ip += MR) {
    const rows = imin(MR, mc - ip);
    const d = dst + <usize>(ip * kc) * 4;
    if (transA) {
      // a row of stored A holds MR consecutive op(A) rows at one k
      let src = a + (<usize>k0 * lda + <usize>(i0 + ip)) * 4;
      if (rows == MR) {
        for (let k = 0; k < kc; k++) {
          v128.store(d + <usize>k * 16, f32x4.mul(v128.load(src), va));
          src += <usize>lda * 4;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < MR; r++) {
            store<f32>(d + <usize>(k * MR + r) * 4, r < rows ? load<f32>(src + <usize>r * 4) * alpha : 0);
          }
          src += <usize>lda * 4;
        }
      }
    } else {
      if (rows == MR && (kc & 3) == 0) {
        // four rows, four k at a time: a 4 x 4 transpose in registers
        const s0 = a + (<usize>(i0 + ip) * lda + <usize>k0) * 4;
        const s1 = s0 + <usize>lda * 4;
        const s2 = s1 + <usize>lda * 4;
        const s3 = s2 + <usize>lda * 4;
        for (let k = 0; k < kc; k += 4) {
          const off = <usize>k * 4;
          transpose4Store(d + <usize>k * 16, v128.load(s0 + off), v128.load(s1 + off), v128.load(s2 + off), v128.load(s3 + off), va);
        }
      } else {
        for (let r = 0; r < MR; r++) {
          if (r < rows) {
            const src = a + (<usize>(i0 + ip + r) * lda + <usize>k0) * 4;
            for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * MR + r) * 4, load<f32>(src + <usize>k * 4) * alpha);
          } else {
            for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * MR + r) * 4, 0);
          }
        }
      }
    }
  }
}

/** Stores the 4 x 4 transpose of rows r0..r3 as four f32x4 at d, d + stride, ... (bytes). */
@inline
export function transpose4(d: usize, stride: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
  const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(d, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(d + stride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(d + 2 * stride, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(d + 3 * stride, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/** Stores the 4 x 4 transpose of rows r0..r3 (times scale) as four f32x4 at d. */
@inline
export function transpose4Store(d: usize, r0: v128, r1: v128, r2: v128, r3: v128, scale: v128): void {
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
  const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(d, f32x4.mul(f32x4.shuffle(t0, t2, 0, 1, 4, 5), scale));
  v128.store(d, f32x4.mul(f32x4.shuffle(t0, t2, 2, 3, 6, 7), scale), 16);
  v128.store(d, f32x4.mul(f32x4.shuffle(t1, t3, 0, 1, 4, 5), scale), 32);
  v128.store(d, f32x4.mul(f32x4.shuffle(t1, t3, 2, 3, 6, 7), scale), 48);
}

/**
 * Packs op(B)[k0 .. k0+kc)[j0 .. j0+nc) into NR-column panels at dst, zero-padding the
 * last panel. op(B)[k][j] = transB ? B[j * ldb + k] : B[k * ldb + j].
 */
export function packB(dst: usize, b: usize, ldb: i32, transB: bool, k0: i32, kc: i32, j0: i32, nc: i32): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const cols = imin(NR, nc - jp);
    const d = dst + <usize>(jp * kc) * 4;
    if (!transB) {
      let src = b + (<usize>k0 * ldb + <usize>(j0 + jp)) * 4;
      if (cols == NR) {
        for (let k = 0; k < kc; k++) {
          v128.store(d + <usize>k * 32, v128.load(src));
          v128.store(d + <usize>k * 32, v128.load(src, 16), 16);
          src += <usize>ldb * 4;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let j = 0; j < NR; j++) store<f32>(d + <usize>(k * NR + j) * 4, j < cols ? load<f32>(src + <usize>j * 4) : 0);
          src += <usize>ldb * 4;
        }
      }
    } else if (cols == NR && (kc & 3) == 0) {
      // eight stored rows, four k at a time: two 4 x 4 transposes per k quad
      const s0 = b + (<usize>(j0 + jp) * ldb + <usize>k0) * 4;
      const row = <usize>ldb * 4;
      for (let k = 0; k < kc; k += 4) {
        const off = s0 + <usize>k * 4;
        const lo = v128.load(off); const lo1 = v128.load(off + row);
        const lo2 = v128.load(off + 2 * row); const lo3 = v128.load(off + 3 * row);
        const hi = v128.load(off + 4 * row); const hi1 = v128.load(off + 5 * row);
        const hi2 = v128.load(off + 6 * row); const hi3 = v128.load(off + 7 * row);
        transpose4x8Store(d + <usize>k * 32, lo, lo1, lo2, lo3, hi, hi1, hi2, hi3);
      }
    } else {
      for (let j = 0; j < NR; j++) {
        if (j < cols) {
          const src = b + (<usize>(j0 + jp + j) * ldb + <usize>k0) * 4;
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * NR + j) * 4, load<f32>(src + <usize>k * 4));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * NR + j) * 4, 0);
        }
      }
    }
  }
}

/**
 * Eight rows of four k (rows a0..a3 are columns 0..3, b0..b3 columns 4..7) stored as
 * four k rows of eight columns at d (32 bytes per k).
 */
@inline
export function transpose4x8Store(d: usize, a0: v128, a1: v128, a2: v128, a3: v128, b0: v128, b1: v128, b2: v128, b3: v128): void {
  transpose4(d, 32, a0, a1, a2, a3);
  transpose4(d + 16, 32, b0, b1, b2, b3);
}

/** C[rows x cols] *= beta, literally (darknet scales C first: beta 0 keeps a NaN). */
export function scaleMatrix(c: usize, ldc: i32, rows: i32, cols: i32, beta: f32): void {
  const vb = f32x4.splat(beta);
  for (let i = 0; i < rows; i++) {
    const row = c + <usize>i * <usize>ldc * 4;
    let j = 0;
    for (; j + 4 <= cols; j += 4) v128.store(row + <usize>j * 4, f32x4.mul(v128.load(row + <usize>j * 4), vb));
    for (; j < cols; j++) store<f32>(row + <usize>j * 4, load<f32>(row + <usize>j * 4) * beta);
  }
}

/**
 * Claims the next work unit of the running job: units are handed out first come, first
 * served, so a thread the OS runs late takes fewer of them instead of stalling the rest.
 */
@inline export function claim(counter: usize): i32 {
  return atomic.add<i32>(counter, 1);
}

/**
 * C = alpha * op(A) op(B) + beta * C (row-major, leading dimensions in floats), as a job:
 * each thread claims units (a band of columns, or of rows when M > N) until none are left.
 * With nt threads there are about 4 * nt units, so a late thread costs little.
 * Every job returns how many units this thread did.
 */
export function gemmJob(
  tid: i32, counter: usize, nt: i32, transA: bool, transB: bool, M: i32, N: i32, K: i32, alpha: f32, beta: f32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, scratch: usize, scratchStride: usize,
): i32 {
  const byColumns = N >= M;
  const extent = byColumns ? N : M;
  const tileSize = byColumns ? NR : MR;
  const band = nt == 1 ? extent : roundUp((extent + 4 * nt - 1) / (4 * nt), tileSize);
  const units = (extent + band - 1) / band;
  const s = scratch + <usize>tid * scratchStride;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const lo = u * band, hi = imin(extent, lo + band);
    if (byColumns) gemmBlock(transA, transB, 0, M, lo, hi, K, alpha, beta, a, lda, b, ldb, c, ldc, s);
    else gemmBlock(transA, transB, lo, hi, 0, N, K, alpha, beta, a, lda, b, ldb, c, ldc, s);
  }
  return done;
}

/** C[m0 .. m1)[n0 .. n1) of gemmJob, on one thread's scratch. */
function gemmBlock(
  transA: bool, transB: bool, m0: i32, m1: i32, n0: i32, n1: i32, K: i32, alpha: f32, beta: f32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, s: usize,
): void {
  if (m1 <= m0 || n1 <= n0) return;
  if (beta != 1) scaleMatrix(c + (<usize>m0 * ldc + <usize>n0) * 4, ldc, m1 - m0, n1 - n0, beta);
  const ap = packAPtr(s);
  const bp = packBPtr(s);
  const tile = tilePtr(s);
  for (let nc0 = n0; nc0 < n1; nc0 += NC) {
    const nc = imin(NC, n1 - nc0);
    for (let kc0 = 0; kc0 < K; kc0 += KC) {
      const kc = imin(KC, K - kc0);
      packB(bp, b, ldb, transB, kc0, kc, nc0, nc);
      for (let mc0 = m0; mc0 < m1; mc0 += MC) {
        const mc = imin(MC, m1 - mc0);
        packA(ap, a, lda, transA, mc0, mc, kc0, kc, alpha);
        macroKernel(ap, bp, c + (<usize>mc0 * ldc + <usize>nc0) * 4, <usize>ldc * 4, mc, nc, kc, true, tile);
      }
    }
  }
}
