// Convolutions as gemm on the SIMD core, darknet's im2col formulation without a separate
// im2col buffer where it can be avoided: the image patches are written straight into
// packed B panels.
//
// Shapes as in types.ts ConvShape: input [batch, c, h, w], weights [n, c/groups, size,
// size], output [batch, n, outH, outW]. Per group: cg = c / groups input channels,
// ng = n / groups filters, K = cg * size * size patch length, N = outH * outW positions.
// NOTE: columns of a packed B panel past the matrix edge are computed but never written
// back (macroKernel's edge tiles), so the packers fill them with whatever is cheapest
// (repeats of the last valid column), not zeros.
// Pointers are byte offsets. The job functions take (tid, counter, nt) first and claim
// work units from `counter` until none are left (see gemmJob).

import {
  MR, NR, KC, MC, NC, imin, roundUp, claim, macroKernel, packA, packB, packAPtr, packBPtr, tilePtr, indexPtr,
  transpose4, transpose4x8Store,
} from './gemm';

// The geometry every conv job shares, set from the job's arguments by `geometry`.
// NOTE: module globals, not an object: wasm globals are per instance (per thread), while
// anything allocated in the shared memory would be one object for every thread.
let gBatch: i32 = 0, gC: i32 = 0, gH: i32 = 0, gW: i32 = 0, gN: i32 = 0, gGroups: i32 = 0;
let gSize: i32 = 0, gStride: i32 = 0, gPad: i32 = 0, gOutH: i32 = 0, gOutW: i32 = 0;
/** input channels per group, filters per group, patch taps, output positions */
let gCg: i32 = 0, gNg: i32 = 0, gK: i32 = 0, gPositions: i32 = 0;

@inline
function geometry(batch: i32, c: i32, h: i32, w: i32, n: i32, groups: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32): void {
  gBatch = batch; gC = c; gH = h; gW = w; gN = n; gGroups = groups;
  gSize = size; gStride = stride; gPad = pad; gOutH = outH; gOutW = outW;
  gCg = c / groups; gNg = n / groups; gK = gCg * size * size; gPositions = outH * outW;
}

/**
 * Packs the im2col patch matrix of one image and group, rows k0 .. k0+kc (patch taps
 * (cc, ky, kx)), columns j0 .. j0+nc (output positions), into NR-column panels.
 * x points at the group's first input plane of the image. Out-of-image taps read 0.
 */
function packIm2col(dst: usize, x: usize, k0: i32, kc: i32, j0: i32, nc: i32, idx: usize): void {
  const h = gH, w = gW, size = gSize, stride = gStride, pad = gPad, outW = gOutW;
  const plane = <usize>(h * w) * 4;
  for (let jp = 0; jp < nc; jp += NR) {
    const cols = imin(NR, nc - jp);
    const d0 = dst + <usize>(jp * kc) * 4;
    // the panel's output positions: top-left input tap of each (the last repeated past cols)
    const p0 = j0 + jp;
    let oy = p0 / outW, ox = p0 % outW;
    for (let j = 0; j < NR; j++) {
      store<i32>(idx + <usize>j * 8, oy * stride - pad);
      store<i32>(idx + <usize>j * 8 + 4, ox * stride - pad);
      if (j + 1 < cols && ++ox == outW) { ox = 0; oy++; }
    }
    const iy0 = load<i32>(idx);
    const ix0 = load<i32>(idx + 4);
    // one output row, stride 1: each tap row is 8 contiguous input floats
    const oneRow = stride == 1 && load<i32>(idx + 7 * 8) == iy0;
    let cc = k0 / (size * size);
    let ky = (k0 / size) % size;
    let kx = k0 % size;
    if (oneRow && iy0 >= 0 && iy0 + size <= h && ix0 >= 0 && ix0 + size - 1 + NR <= w) {
      // every tap of the panel is inside: eight contiguous floats each, no checks
      let src = x + <usize>cc * plane + <usize>((iy0 + ky) * w + ix0 + kx) * 4;
      const rowSkip = <usize>(w - size) * 4;
      const planeSkip = <usize>((h - size) * w) * 4;
      for (let k = 0; k < kc; k++) {
        const d = d0 + <usize>k * 32;
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
        src += 4;
        if (++kx == size) {
          kx = 0;
          src += rowSkip;
          if (++ky == size) { ky = 0; src += planeSkip; }
        }
      }
      continue;
    }
    for (let k = 0; k < kc; k++) {
      const d = d0 + <usize>k * 32;
      const xp = x + <usize>cc * plane;
      const iy = iy0 + ky;
      const ix = ix0 + kx;
      if (oneRow && iy >= 0 && iy < h && ix >= 0 && ix + NR <= w) {
        const src = xp + <usize>(iy * w + ix) * 4;
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
      } else {
        for (let j = 0; j < NR; j++) {
          const y = load<i32>(idx + <usize>j * 8) + ky;
          const xx = load<i32>(idx + <usize>j * 8 + 4) + kx;
          const inside = j < cols && y >= 0 && y < h && xx >= 0 && xx < w;
          store<f32>(d + <usize>j * 4, inside ? load<f32>(xp + <usize>(y * w + xx) * 4) : 0);
        }
      }
      if (++kx == size) {
        kx = 0;
        if (++ky == size) { ky = 0; cc++; }
      }
    }
  }
}

/**
 * out = conv(input, weights) as a job. wp holds the weights packed by `packConvWeights`
 * (groups x roundUp(ng, MR) x K floats), or is 0: then each thread packs the blocks of
 * `weights` it needs into its scratch as it goes (no serial packing before the job).
 * A unit is an (image, part): whole images when batch >= 4 x nt; else each image split
 * `parts` ways, so that a batch-1 image spreads over the threads: over its filters where
 * there are more filters than positions (the deep layers), over its positions otherwise.
 * Split by positions, each part packs the weights again unless wp is given (the host
 * packs them first with packConvWeightsJob). Split by filters, each part packs the
 * image's patches again unless `patches` is not 0: then it holds them packed by
 * packPatchesJob (batch 1, one group, N <= NC) and the parts read them.
 */
export function convForwardJob(
  tid: i32, counter: usize, nt: i32, out: usize, x: usize, wp: usize, weights: usize,
  batch: i32, c: i32, h: i32, w: i32, n: i32, groups: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32,
  scratch: usize, scratchStride: usize, patches: usize,
): i32 {
  geometry(batch, c, h, w, n, groups, size, stride, pad, outH, outW);
  const cg = gCg, ng = gNg, K = gK, N = gPositions;
  const ngPad = roundUp(ng, MR);
  const nPad = roundUp(N, NR);
  const s = scratch + <usize>tid * scratchStride;
  const ap = packAPtr(s), bp = packBPtr(s), tile = tilePtr(s), idx = indexPtr(s);
  const byFilters = ng > N;
  const panels = byFilters ? (ng + MR - 1) / MR : (N + NR - 1) / NR;
  const tileSize = byFilters ? MR : NR;
  // about 4 units per thread, so that a thread slowed by the machine takes fewer; but by
  // filters, one per thread: each part streams the whole patch matrix (ResNet-18's 14x14:
  // 1.8 MB, past this CPU's L2), or packs it again when `patches` is 0, which cost as much
  // as the part's gemm in ResNet-18's 14x14 and 7x7 layers with 8 parts
  const perThread = byFilters ? 1 : 4;
  const parts = nt == 1 || batch >= 4 * nt ? 1 : max<i32>(1, imin(panels, (perThread * nt + batch - 1) / batch));
  const units = batch * parts;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const b = u / parts, part = u % parts;
    const extent = byFilters ? ng : N;
    const lo = imin(extent, panels * part / parts * tileSize), hi = imin(extent, panels * (part + 1) / parts * tileSize);
    const jLo = byFilters ? 0 : lo, jHi = byFilters ? N : hi;
    const mLo = byFilters ? lo : 0, mHi = byFilters ? hi : ng;
    for (let g = 0; g < groups; g++) {
      const xg = x + <usize>((b * c + g * cg) * h * w) * 4;
      const og = out + <usize>((b * n + g * ng) * N) * 4;
      const wg = wp + <usize>(g * ngPad * K) * 4;
      const rawG = weights + <usize>(g * ng * K) * 4;
      for (let nc0 = jLo; nc0 < jHi; nc0 += NC) {
        const nc = imin(NC, jHi - nc0);
        for (let kc0 = 0; kc0 < K; kc0 += KC) {
          const kc = imin(KC, K - kc0);
          let bk = bp;
          if (patches != 0) bk = patches + <usize>(kc0 * nPad) * 4;
          else packIm2col(bp, xg, kc0, kc, nc0, nc, idx);
          for (let mc0 = mLo; mc0 < mHi; mc0 += MC) {
            const mc = imin(MC, mHi - mc0);
            let ak = ap;
            if (wp != 0) ak = wg + <usize>(kc0 * ngPad + mc0 * kc) * 4;
            else packA(ap, rawG, K, false, mc0, mc, kc0, kc, 1);
            macroKernel(ak, bk, og + <usize>(mc0 * N + nc0) * 4, <usize>N * 4, mc, nc, kc, kc0 > 0, tile);
          }
        }
      }
    }
  }
  return done;
}

/**
 * The patch matrix of one image (batch 1, one group, N <= NC positions) packed as a job,
 * into dst as convForwardJob reads it with `patches`: the KC-row blocks one after another,
 * block kc0 at kc0 x roundUp(N, NR) floats. A unit is one KC-row block. Packed once for
 * every thread that then splits the image by filters, rather than once by each of them.
 */
export function packPatchesJob(
  tid: i32, counter: usize, nt: i32, dst: usize, x: usize,
  c: i32, h: i32, w: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32,
  scratch: usize, scratchStride: usize,
): i32 {
  geometry(1, c, h, w, 1, 1, size, stride, pad, outH, outW);
  const K = gK, N = gPositions, nPad = roundUp(N, NR);
  const idx = indexPtr(scratch + <usize>tid * scratchStride);
  const units = (K + KC - 1) / KC;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const kc0 = u * KC;
    packIm2col(dst + <usize>(kc0 * nPad) * 4, x, kc0, imin(KC, K - kc0), 0, N, idx);
  }
  return done;
}

/**
 * inputDelta += col2im(W_g^T x delta_g) as a job; a unit is one (image, group).
 * wp holds W_g^T packed by `packAFull` per group (groups x roundUp(K, MR) x ng floats);
 * col is this thread's K x N workspace at col + tid * colStride.
 */
export function convBackwardDataJob(
  tid: i32, counter: usize, nt: i32, dx: usize, delta: usize, wp: usize,
  batch: i32, c: i32, h: i32, w: i32, n: i32, groups: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32,
  scratch: usize, scratchStride: usize, col: usize, colStride: usize,
): i32 {
  geometry(batch, c, h, w, n, groups, size, stride, pad, outH, outW);
  const cg = gCg, ng = gNg, K = gK, N = gPositions;
  const kPad = roundUp(K, MR);
  const s = scratch + <usize>tid * scratchStride;
  const bp = packBPtr(s), tile = tilePtr(s);
  const myCol = col + <usize>tid * colStride;
  // 1x1, stride 1, no padding: col is the input delta itself, so accumulate in place
  const direct = size == 1 && stride == 1 && pad == 0;
  const units = batch * groups;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const b = u / groups, g = u % groups;
    const dg = delta + <usize>((b * n + g * ng) * N) * 4;
    const xg = dx + <usize>((b * c + g * cg) * h * w) * 4;
    const wg = wp + <usize>(g * kPad * ng) * 4;
    const target = direct ? xg : myCol;
    for (let nc0 = 0; nc0 < N; nc0 += NC) {
      const nc = imin(NC, N - nc0);
      for (let kc0 = 0; kc0 < ng; kc0 += KC) {
        const kc = imin(KC, ng - kc0);
        packB(bp, dg, N, false, kc0, kc, nc0, nc);
        const ak = wg + <usize>(kc0 * kPad) * 4;
        for (let mc0 = 0; mc0 < K; mc0 += MC) {
          const mc = imin(MC, K - mc0);
          macroKernel(ak + <usize>(mc0 * kc) * 4, bp, target + <usize>(mc0 * N + nc0) * 4, <usize>N * 4, mc, nc, kc, direct || kc0 > 0, tile);
        }
      }
    }
    if (!direct) col2imAdd(xg, myCol);
  }
  return done;
}

/** x[cc, iy, ix] += col[(cc, ky, kx), (oy, ox)] for every in-image tap (darknet's col2im_cpu). */
function col2imAdd(x: usize, col: usize): void {
  const h = gH, w = gW, size = gSize, stride = gStride, pad = gPad, outH = gOutH, outW = gOutW;
  const N = gPositions;
  let cc = 0, ky = 0, kx = 0;
  for (let k = 0; k < gK; k++) {
    const xp = x + <usize>(cc * h * w) * 4;
    const row = col + <usize>(k * N) * 4;
    // outputs whose tap lands inside: 0 <= o * stride - pad + kx < w
    const oxLo = outputsFrom(kx, pad, stride), oxHi = outputsTo(kx, pad, stride, w, outW);
    const oyLo = outputsFrom(ky, pad, stride), oyHi = outputsTo(ky, pad, stride, h, outH);
    for (let oy = oyLo; oy < oyHi; oy++) {
      const iy = oy * stride - pad + ky;
      const src = row + <usize>(oy * outW) * 4;
      const dst = xp + <usize>(iy * w - pad + kx) * 4;
      let ox = oxLo;
      if (stride == 1) {
        for (; ox + 4 <= oxHi; ox += 4) {
          const at = dst + <usize>ox * 4;
          v128.store(at, f32x4.add(v128.load(at), v128.load(src + <usize>ox * 4)));
        }
      }
      for (; ox < oxHi; ox++) {
        const at = dst + <usize>(ox * stride) * 4;
        store<f32>(at, load<f32>(at) + load<f32>(src + <usize>ox * 4));
      }
    }
    if (++kx == size) {
      kx = 0;
      if (++ky == size) { ky = 0; cc++; }
    }
  }
}

/** The first output whose tap t lands inside the image: o * stride - pad + t >= 0. */
@inline
function outputsFrom(t: i32, pad: i32, stride: i32): i32 {
  if (t >= pad) return 0;
  return stride == 1 ? pad - t : (pad - t + stride - 1) / stride;
}

/** One past the last output whose tap t lands inside: o * stride - pad + t < extent. */
@inline
function outputsTo(t: i32, pad: i32, stride: i32, extent: i32, outExtent: i32): i32 {
  const last = extent - 1 + pad - t; // o * stride <= last
  if (last < 0) return 0;
  return imin(outExtent, (stride == 1 ? last : last / stride) + 1);
}

/**
 * weightUpdates += delta_g x im2col(input)^T as a job: a unit is a run of images, one
 * gemm per group with K = images x N (M = ng filters, N = K patch taps). Thread 0 adds
 * into dw; thread t > 0 into its own buffer at priv + (t - 1) * privStride, which the host
 * zeroes before and sums into dw after (`addInto`).
 */
export function convBackwardFilterJob(
  tid: i32, counter: usize, nt: i32, dw: usize, delta: usize, x: usize,
  batch: i32, c: i32, h: i32, w: i32, n: i32, groups: i32, size: i32, stride: i32, pad: i32, outH: i32, outW: i32,
  scratch: usize, scratchStride: usize, priv: usize, privStride: usize,
): i32 {
  geometry(batch, c, h, w, n, groups, size, stride, pad, outH, outW);
  const s = scratch + <usize>tid * scratchStride;
  const ap = packAPtr(s), bp = packBPtr(s), tile = tilePtr(s), idx = indexPtr(s);
  const target = tid == 0 ? dw : priv + <usize>(tid - 1) * privStride;
  const run = nt == 1 ? batch : max<i32>(1, batch / (4 * nt));
  const units = (batch + run - 1) / run;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    filterImages(target, delta, x, u * run, imin(batch, u * run + run), ap, bp, tile, idx);
  }
  return done;
}

/** target += the weight gradient of images b0 .. b1 (see convBackwardFilterJob). */
function filterImages(target: usize, delta: usize, x: usize, b0: i32, b1: i32, ap: usize, bp: usize, tile: usize, idx: usize): void {
  const groups = gGroups, ng = gNg, K = gK, N = gPositions;
  const kStart = b0 * N, kEnd = b1 * N;
  for (let g = 0; g < groups; g++) {
    for (let nc0 = 0; nc0 < K; nc0 += NC) {
      const nc = imin(NC, K - nc0);
      for (let kc0 = kStart; kc0 < kEnd; kc0 += KC) {
        const kc = imin(KC, kEnd - kc0);
        packIm2colT(bp, x, g, kc0, kc, nc0, nc, idx);
        for (let mc0 = 0; mc0 < ng; mc0 += MC) {
          const mc = imin(MC, ng - mc0);
          packDelta(ap, delta, g, mc0, mc, kc0, kc);
          macroKernel(ap, bp, target + <usize>((g * ng + mc0) * K + nc0) * 4, <usize>K * 4, mc, nc, kc, true, tile);
        }
      }
    }
  }
}

/**
 * Packs op(A)[f][k] = delta[b, g * ng + f, p] for filters mc0 .. mc0+mc and k = b * N + p
 * in k0 .. k0+kc into MR-row panels: runs of positions within one image, four rows by
 * four positions at a time through a 4 x 4 transpose.
 */
function packDelta(dst: usize, delta: usize, g: i32, mc0: i32, mc: i32, k0: i32, kc: i32): void {
  const n = gN, ng = gNg, N = gPositions;
  const zero = f32x4.splat(0);
  const row = <usize>N * 4;
  for (let ip = 0; ip < mc; ip += MR) {
    const rows = imin(MR, mc - ip);
    const d = dst + <usize>(ip * kc) * 4;
    const f0 = g * ng + mc0 + ip;
    let b = k0 / N, p = k0 % N;
    let k = 0;
    while (k < kc) {
      const run = imin(kc - k, N - p);
      const s0 = delta + <usize>((b * n + f0) * N + p) * 4;
      let i = 0;
      for (; i + 4 <= run; i += 4) {
        const at = s0 + <usize>i * 4;
        const r0 = v128.load(at);
        const r1 = rows > 1 ? v128.load(at + row) : zero;
        const r2 = rows > 2 ? v128.load(at + 2 * row) : zero;
        const r3 = rows > 3 ? v128.load(at + 3 * row) : zero;
        transpose4(d + <usize>(k + i) * 16, 16, r0, r1, r2, r3);
      }
      for (; i < run; i++) {
        for (let r = 0; r < MR; r++) {
          store<f32>(d + <usize>((k + i) * MR + r) * 4, r < rows ? load<f32>(s0 + <usize>r * row + <usize>i * 4) : 0);
        }
      }
      k += run;
      b++;
      p = 0;
    }
  }
}

/**
 * Packs op(B)[k][j] = im2col(input)[j][k]: k = b * N + p (image, output position) in
 * k0 .. k0+kc, j = patch tap (cc, ky, kx) of group g in j0 .. j0+nc, into NR-column panels.
 */
function packIm2colT(dst: usize, x: usize, g: i32, k0: i32, kc: i32, j0: i32, nc: i32, idx: usize): void {
  const c = gC, h = gH, w = gW, cg = gCg, size = gSize, stride = gStride, pad = gPad, outW = gOutW, N = gPositions;
  for (let jp = 0; jp < nc; jp += NR) {
    const cols = imin(NR, nc - jp);
    const d0 = dst + <usize>(jp * kc) * 4;
    // each panel column's tap: its offset from the patch's top-left, and (ky, kx) for bounds
    for (let j = 0; j < NR; j++) {
      const t = j0 + jp + imin(j, cols - 1);
      const kx = t % size, ky = (t / size) % size, cc = t / (size * size);
      store<i32>(idx + <usize>j * 12, (cc * h + ky) * w + kx);
      store<i32>(idx + <usize>j * 12 + 4, ky);
      store<i32>(idx + <usize>j * 12 + 8, kx);
    }
    const o0 = load<i32>(idx), o1 = load<i32>(idx + 12), o2 = load<i32>(idx + 24), o3 = load<i32>(idx + 36);
    const o4 = load<i32>(idx + 48), o5 = load<i32>(idx + 60), o6 = load<i32>(idx + 72), o7 = load<i32>(idx + 84);
    let b = k0 / N, p = k0 % N;
    let oy = p / outW, ox = p % outW;
    for (let k = 0; k < kc; k++) {
      const d = d0 + <usize>k * 32;
      const iy0 = oy * stride - pad, ix0 = ox * stride - pad;
      const img = x + <usize>((b * c + g * cg) * h * w) * 4;
      if (stride == 1 && k + 4 <= kc && ox + 4 <= outW && iy0 >= 0 && ix0 >= 0 && iy0 + size <= h && ix0 + 3 + size <= w) {
        // four positions along one output row: each tap reads four contiguous inputs
        const base = img + <usize>(iy0 * w + ix0) * 4;
        transpose4x8Store(d,
          v128.load(base + <usize>o0 * 4), v128.load(base + <usize>o1 * 4), v128.load(base + <usize>o2 * 4), v128.load(base + <usize>o3 * 4),
          v128.load(base + <usize>o4 * 4), v128.load(base + <usize>o5 * 4), v128.load(base + <usize>o6 * 4), v128.load(base + <usize>o7 * 4));
        k += 3;
        ox += 4;
        if (ox == outW) {
          ox = 0;
          if (++oy == gOutH) { oy = 0; b++; }
        }
        continue;
      }
      if (iy0 >= 0 && ix0 >= 0 && iy0 + size <= h && ix0 + size <= w) {
        const base = img + <usize>(iy0 * w + ix0) * 4;
        store<f32>(d, load<f32>(base + <usize>o0 * 4));
        store<f32>(d, load<f32>(base + <usize>o1 * 4), 4);
        store<f32>(d, load<f32>(base + <usize>o2 * 4), 8);
        store<f32>(d, load<f32>(base + <usize>o3 * 4), 12);
        store<f32>(d, load<f32>(base + <usize>o4 * 4), 16);
        store<f32>(d, load<f32>(base + <usize>o5 * 4), 20);
        store<f32>(d, load<f32>(base + <usize>o6 * 4), 24);
        store<f32>(d, load<f32>(base + <usize>o7 * 4), 28);
      } else {
        for (let j = 0; j < NR; j++) {
          const y = iy0 + load<i32>(idx + <usize>j * 12 + 4);
          const xx = ix0 + load<i32>(idx + <usize>j * 12 + 8);
          const inside = j < cols && y >= 0 && y < h && xx >= 0 && xx < w;
          // the tap's offset, less its (ky, kx) part, plus the position's
          const at = load<i32>(idx + <usize>j * 12) + iy0 * w + ix0;
          store<f32>(d + <usize>j * 4, inside ? load<f32>(img + <usize>at * 4) : 0);
        }
      }
      if (++ox == outW) {
        ox = 0;
        if (++oy == gOutH) { oy = 0; b++; }
      }
    }
  }
}

/** Packs each group's weights for convForwardJob (once per call, by the host): W_g [ng x K], row-major. */
export function packConvWeights(dst: usize, weights: usize, n: i32, groups: i32, K: i32): void {
  const ng = n / groups;
  const ngPad = roundUp(ng, MR);
  for (let g = 0; g < groups; g++) {
    packAWhole(dst + <usize>(g * ngPad * K) * 4, weights + <usize>(g * ng * K) * 4, K, false, ng, K);
  }
}

/**
 * packConvWeights as a job: a unit is one (group, KC block of the patch taps), so that
 * the threads pack a batch-1 layer's weights together before splitting it by positions.
 */
export function packConvWeightsJob(tid: i32, counter: usize, nt: i32, dst: usize, weights: usize, n: i32, groups: i32, K: i32): i32 {
  const ng = n / groups;
  const ngPad = roundUp(ng, MR);
  const blocks = (K + KC - 1) / KC;
  const units = groups * blocks;
  let done = 0;
  for (let u = claim(counter); u < units; u = claim(counter), done++) {
    const g = u / blocks, kc0 = (u % blocks) * KC;
    packA(dst + <usize>(g * ngPad * K + kc0 * ngPad) * 4, weights + <usize>(g * ng * K) * 4, K, false, 0, ng, kc0, imin(KC, K - kc0), 1);
  }
  return done;
}

/** Packs each group's transposed weights for convBackwardDataJob: W_g^T [K x ng]. */
export function packConvWeightsT(dst: usize, weights: usize, n: i32, groups: i32, K: i32): void {
  const ng = n / groups;
  const kPad = roundUp(K, MR);
  for (let g = 0; g < groups; g++) {
    packAWhole(dst + <usize>(g * kPad * ng) * 4, weights + <usize>(g * ng * K) * 4, K, true, K, ng);
  }
}

/** op(A) [M x K] packed per KC block, as convForwardJob and convBackwardDataJob index it. */
function packAWhole(dst: usize, a: usize, lda: i32, transA: bool, M: i32, K: i32): void {
  const mPad = roundUp(M, MR);
  for (let kc0 = 0; kc0 < K; kc0 += KC) {
    const kc = imin(KC, K - kc0);
    packA(dst + <usize>(kc0 * mPad) * 4, a, lda, transA, 0, M, kc0, kc, 1);
  }
}
