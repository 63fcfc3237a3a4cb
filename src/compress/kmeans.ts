/**
 * Trained weight sharing, step one (Han et al. 2016 §3): per layer, 1-D k-means over the
 * NON-ZERO weights, with linear initialisation (centroids evenly spaced between the
 * smallest and the largest weight, which the paper found best because it keeps the few
 * large weights that matter most). `bits` bits index 2^bits - 1 shared values plus the
 * implicit zero: index 0 is a pruned weight, exactly 0, and it stays 0.
 */

/** A layer's weights as a codebook and one index per weight. */
export interface LayerCode {
  /** the shared values (ascending after k-means; at most 2^bits - 1, none of them 0) */
  centroids: Float32Array;
  /** `[weights]` in the layer's weights layout: 0 = pruned (exactly 0), i >= 1 = centroids[i - 1] */
  indices: Uint16Array;
}

/** Largest codebook index width: indices are Uint16. */
export const MAX_BITS = 16;

export interface KmeansOptions {
  /** Lloyd iterations at most (default 300; 1-D k-means on sorted values converges well before) */
  maxIterations?: number;
}

/**
 * Clusters a layer's non-zero weights into at most 2^bits - 1 shared values. Deterministic
 * (no random initialisation). Every non-zero weight maps to its nearest centroid (ties to the
 * smaller); clusters that end empty are dropped, so a layer with few distinct values gets a
 * smaller codebook.
 * @example
 *   const code = kmeansLayer(new Float32Array([0, 0.1, 0.11, -0.5, 0]), 1);
 *   // code.centroids: one value (the mean of the three non-zeros); code.indices [0, 1, 1, 1, 0]
 */
export function kmeansLayer(weights: Float32Array, bits: number, o: KmeansOptions = {}): LayerCode {
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_BITS) throw new RangeError(`k-means: bits ${bits} is not in 1..${MAX_BITS}`);
  const values: number[] = [];
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) values.push(weights[i]);
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { centroids: new Float32Array(0), indices: new Uint16Array(weights.length) };
  // prefix[i] = sum of the i smallest values: a cluster's mean is two look-ups
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + sorted[i];
  const k = Math.min(2 ** bits - 1, n);
  const lo = sorted[0];
  const hi = sorted[n - 1];
  let centroids = Array.from({ length: k }, (_, j) => (k === 1 ? prefix[n] / n : lo + ((hi - lo) * j) / (k - 1)));
  const maxIterations = o.maxIterations ?? 300;
  for (let it = 0; it < maxIterations; it++) {
    // In 1-D with sorted centroids each cluster is a run of the sorted values, cut at the
    // midpoints between neighbouring centroids.
    const next: number[] = [];
    let start = 0;
    for (let j = 0; j < centroids.length; j++) {
      const end = j + 1 < centroids.length ? upperBound(sorted, (centroids[j] + centroids[j + 1]) / 2) : n;
      if (end > start) next.push((prefix[end] - prefix[start]) / (end - start));
      start = Math.max(start, end);
    }
    const converged = next.length === centroids.length && next.every((c, j) => c === centroids[j]);
    centroids = next;
    if (converged) break;
  }
  return assign(weights, centroids);
}

/**
 * Each non-zero weight to its nearest centroid (ties to the smaller), dropping centroids
 * no weight chose; the centroids are rounded to float32 (never 0) first, and the codebook
 * comes back ascending.
 */
export function assign(weights: Float32Array, centroids: readonly number[]): LayerCode {
  const c = Float64Array.from(centroids, nonZeroFloat32).sort();
  const midpoints = new Float64Array(Math.max(0, c.length - 1));
  for (let j = 0; j + 1 < c.length; j++) midpoints[j] = (c[j] + c[j + 1]) / 2;
  const cluster = new Int32Array(weights.length).fill(-1);
  const used = new Uint8Array(c.length);
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    // first midpoint >= w: values below or at a midpoint go to the smaller centroid
    let a = 0;
    let b = midpoints.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (midpoints[m] < weights[i]) a = m + 1;
      else b = m;
    }
    cluster[i] = a;
    used[a] = 1;
  }
  const renumber = new Int32Array(c.length);
  const kept: number[] = [];
  for (let j = 0; j < c.length; j++) {
    if (!used[j]) continue;
    kept.push(c[j]);
    renumber[j] = kept.length; // 1-based: 0 is the pruned zero
  }
  const indices = new Uint16Array(weights.length);
  for (let i = 0; i < weights.length; i++) if (cluster[i] >= 0) indices[i] = renumber[cluster[i]];
  return { centroids: Float32Array.from(kept), indices };
}

/** The dense weights a code stands for: every weight its centroid, pruned ones exactly 0. */
export function decodeLayer(code: LayerCode): Float32Array {
  const out = new Float32Array(code.indices.length);
  for (let i = 0; i < out.length; i++) {
    const j = code.indices[i];
    if (j > 0) out[i] = code.centroids[j - 1];
  }
  return out;
}

/**
 * A centroid as float32 that is never 0: the mean of weights of both signs could be, and a
 * shared value of 0 would silently prune its whole cluster. The nudge is below any weight.
 */
export function nonZeroFloat32(x: number): number {
  const f = Math.fround(x);
  return f !== 0 ? f : x < 0 ? -SMALLEST_NORMAL : SMALLEST_NORMAL;
}

/** 2^-126, float32's smallest normal number. */
const SMALLEST_NORMAL = 2 ** -126;

/** Index of the first sorted value > x. */
function upperBound(sorted: Float64Array, x: number): number {
  let a = 0;
  let b = sorted.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (sorted[m] <= x) a = m + 1;
    else b = m;
  }
  return a;
}
