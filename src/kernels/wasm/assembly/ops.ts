// The non-gemm ops of the kernel seam (types.ts gives each one's exact semantics), as
// plain loops, with f32x4 where an op is hot in LeNet-style training (bias, relu/leaky/
// linear, maxpool 2x2, axpby, sgd). Transcendental maths runs in f64 and is rounded once
// on store, as the reference does. Pointers are byte offsets, sizes count floats.

/** darknet's -FLT_MAX: the value of an out-of-image maxpool tap. */
const NEG_FLT_MAX: f32 = -3.4028234663852886e38;

@inline function at(p: usize, i: i32): usize { return p + (<usize>i << 2); }

// ---- storage ----

export function fill(dst: usize, n: i32, value: f32): void {
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(dst, i), v);
  for (; i < n; i++) store<f32>(at(dst, i), value);
}

/** d = a * x + b * d; x may be d. */
export function axpby(d: usize, a: f32, x: usize, b: f32, n: i32): void {
  const va = f32x4.splat(a), vb = f32x4.splat(b);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    v128.store(at(d, i), f32x4.add(f32x4.mul(va, v128.load(at(x, i))), f32x4.mul(vb, v128.load(at(d, i)))));
  }
  for (; i < n; i++) store<f32>(at(d, i), a * load<f32>(at(x, i)) + b * load<f32>(at(d, i)));
}

/** d[i] += s[i]. */
export function addInto(d: usize, s: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(d, i), f32x4.add(v128.load(at(d, i)), v128.load(at(s, i))));
  for (; i < n; i++) store<f32>(at(d, i), load<f32>(at(d, i)) + load<f32>(at(s, i)));
}

export function copyRows(d: usize, s: usize, batch: i32, n: i32, srcStride: i32, srcOffset: i32, dstStride: i32, dstOffset: i32, accumulate: bool): void {
  for (let b = 0; b < batch; b++) {
    const dr = at(d, b * dstStride + dstOffset);
    const sr = at(s, b * srcStride + srcOffset);
    if (accumulate) addInto(dr, sr, n);
    else memory.copy(dr, sr, <usize>n << 2);
  }
}

// ---- per-channel ops ([batch, channels, spatial]) ----

export function addBias(x: usize, biases: usize, batch: i32, channels: i32, spatial: i32): void {
  addBiasPlanes(x, biases, channels, spatial, 0, batch * channels);
}

/** addBias over the planes (b, f) = p / channels, p % channels for p in [p0, p1). */
function addBiasPlanes(x: usize, biases: usize, channels: i32, spatial: i32, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    const row = at(x, p * spatial);
    const bias = load<f32>(at(biases, p % channels));
    const v = f32x4.splat(bias);
    let i = 0;
    for (; i + 4 <= spatial; i += 4) v128.store(at(row, i), f32x4.add(v128.load(at(row, i)), v));
    for (; i < spatial; i++) store<f32>(at(row, i), load<f32>(at(row, i)) + bias);
  }
}

export function scaleBias(x: usize, scales: usize, batch: i32, channels: i32, spatial: i32): void {
  scaleBiasPlanes(x, scales, channels, spatial, 0, batch * channels);
}

function scaleBiasPlanes(x: usize, scales: usize, channels: i32, spatial: i32, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    const row = at(x, p * spatial);
    const scale = load<f32>(at(scales, p % channels));
    const v = f32x4.splat(scale);
    let i = 0;
    for (; i + 4 <= spatial; i += 4) v128.store(at(row, i), f32x4.mul(v128.load(at(row, i)), v));
    for (; i < spatial; i++) store<f32>(at(row, i), load<f32>(at(row, i)) * scale);
  }
}

/** sum of row[0 .. n) (f32x4 partial sums, then f64). */
function rowSum(row: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, v128.load(at(row, i)));
  let sum = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  for (; i < n; i++) sum += load<f32>(at(row, i));
  return sum;
}

/** sum of a[i] * b[i] over [0, n). */
function rowDot(a: usize, b: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(at(a, i)), v128.load(at(b, i))));
  let sum = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  for (; i < n; i++) sum += <f64>load<f32>(at(a, i)) * <f64>load<f32>(at(b, i));
  return sum;
}

/** out[f] += sum over b, i of delta[b, f, i]. */
export function backwardBias(out: usize, delta: usize, batch: i32, channels: i32, spatial: i32): void {
  for (let f = 0; f < channels; f++) {
    let sum: f64 = 0;
    for (let b = 0; b < batch; b++) sum += rowSum(at(delta, (b * channels + f) * spatial), spatial);
    store<f32>(at(out, f), <f32>(<f64>load<f32>(at(out, f)) + sum));
  }
}

/** out[f] += sum over b, i of delta[b, f, i] * xNorm[b, f, i]. */
export function backwardScale(out: usize, xNorm: usize, delta: usize, batch: i32, channels: i32, spatial: i32): void {
  for (let f = 0; f < channels; f++) {
    let sum: f64 = 0;
    for (let b = 0; b < batch; b++) {
      const o = (b * channels + f) * spatial;
      sum += rowDot(at(delta, o), at(xNorm, o), spatial);
    }
    store<f32>(at(out, f), <f32>(<f64>load<f32>(at(out, f)) + sum));
  }
}

// ---- activations (ids are the indices of ACTIVATIONS in types.ts) ----

const LOGISTIC = 0, LOGGY = 1, RELU = 2, ELU = 3, SELU = 4, RELIE = 5, PLSE = 6, HARDTAN = 7;
const LHTAN = 8, LINEAR = 9, RAMP = 10, LEAKY = 11, TANH = 12, STAIR = 13, MISH = 14;

/** AlexeyAB's darknet's softplus_activate with MISH_THRESHOLD 20. */
function softplus(x: f64): f64 {
  return x > 20 ? x : x < -20 ? Math.exp(x) : Math.log1p(Math.exp(x));
}

function activateOne(x: f64, act: i32): f64 {
  switch (act) {
    case LOGISTIC: return 1 / (1 + Math.exp(-x));
    case LOGGY: return 2 / (1 + Math.exp(-x)) - 1;
    case RELU: return x * (x > 0 ? 1 : 0);
    // NOTE: darknet's elu/selu/tanh formulas turn NaN once exp overflows; these do not (as the reference)
    case ELU: return x >= 0 ? x : Math.exp(x) - 1;
    case SELU: return x >= 0 ? 1.0507 * x : 1.0507 * 1.6732 * (Math.exp(x) - 1);
    case RELIE: return x > 0 ? x : 0.01 * x;
    case PLSE: return x < -4 ? 0.01 * (x + 4) : x > 4 ? 0.01 * (x - 4) + 1 : 0.125 * x + 0.5;
    case HARDTAN: return x < -1 ? -1 : x > 1 ? 1 : x;
    case LHTAN: return x < 0 ? 0.001 * x : x > 1 ? 0.001 * (x - 1) + 1 : x;
    case LINEAR: return x;
    case RAMP: return x * (x > 0 ? 1 : 0) + 0.1 * x;
    case LEAKY: return x > 0 ? x : 0.1 * x;
    case TANH: return Math.tanh(x);
    case STAIR: {
      const n = Math.floor(x);
      return n % 2 == 0 ? Math.floor(x / 2) : x - n + Math.floor(x / 2);
    }
    case MISH: return x * Math.tanh(softplus(x));
    default: return NaN;
  }
}

/** act'(y) from the activation's output y (darknet's gradient_array); mish: from its input. */
function gradientOne(y: f64, act: i32): f64 {
  switch (act) {
    case LOGISTIC: return (1 - y) * y;
    case LOGGY: {
      const s = (y + 1) / 2;
      return 2 * (1 - s) * s;
    }
    case RELU: return y > 0 ? 1 : 0;
    case ELU: return y >= 0 ? 1 : y + 1;
    case SELU: return y >= 0 ? 1.0507 : y + 1.0507 * 1.6732;
    case RELIE: return y > 0 ? 1 : 0.01;
    case PLSE: return y < 0 || y > 1 ? 0.01 : 0.125;
    case HARDTAN: return y > -1 && y < 1 ? 1 : 0;
    case LHTAN: return y > 0 && y < 1 ? 1 : 0.001;
    case LINEAR: return 1;
    case RAMP: return (y > 0 ? 1 : 0) + 0.1;
    case LEAKY: return y > 0 ? 1 : 0.1;
    case TANH: return 1 - y * y;
    case STAIR: return Math.floor(y) == y ? 0 : 1;
    case MISH: {
      // y is the activation's INPUT here (types.ts GRADIENT_FROM_INPUT), as gradient_array_mish
      const sp = softplus(y);
      const t = Math.tanh(sp);
      return y * (1 - t * t) * -Math.expm1(-sp) + t;
    }
    default: return NaN;
  }
}

/** d = act(s) elementwise; d may be s. */
export function activate(d: usize, s: usize, n: i32, act: i32): void {
  // linear in place (a conv before a shortcut) would rewrite every value unchanged
  if (act == LINEAR && d == s) return;
  let i = 0;
  if (act == RELU || act == LEAKY || act == LINEAR) {
    // x * (x > 0 ? 1 : 0) keeps relu's -0 and NaN as the formula does; leaky selects
    const zero = f32x4.splat(0), one = f32x4.splat(1), tenth = f32x4.splat(<f32>0.1);
    for (; i + 4 <= n; i += 4) {
      const x = v128.load(at(s, i));
      const pos = f32x4.gt(x, zero);
      let y = x;
      if (act == RELU) y = f32x4.mul(x, v128.and(pos, one));
      else if (act == LEAKY) y = v128.bitselect(x, f32x4.mul(x, tenth), pos);
      v128.store(at(d, i), y);
    }
  }
  for (; i < n; i++) store<f32>(at(d, i), <f32>activateOne(<f64>load<f32>(at(s, i)), act));
}

/** d *= act'(y) elementwise. */
export function gradient(d: usize, y: usize, n: i32, act: i32): void {
  let i = 0;
  if (act == RELU || act == LEAKY || act == LINEAR) {
    const zero = f32x4.splat(0), one = f32x4.splat(1), tenth = f32x4.splat(<f32>0.1);
    const low = act == RELU ? zero : act == LEAKY ? tenth : one;
    for (; i + 4 <= n; i += 4) {
      const g = v128.bitselect(one, low, f32x4.gt(v128.load(at(y, i)), zero));
      v128.store(at(d, i), f32x4.mul(v128.load(at(d, i)), g));
    }
  }
  for (; i < n; i++) store<f32>(at(d, i), <f32>(<f64>load<f32>(at(d, i)) * gradientOne(<f64>load<f32>(at(y, i)), act)));
}

// ---- pooling ----

/**
 * out = max over each window, or with backward: dx[tap of the max] += delta[o] (delta
 * comes in `out`). The first tap wins ties (a later one must be strictly greater);
 * out-of-image taps are -FLT_MAX and never win. One scan serves forward and backward.
 */
export function maxpool(out: usize, x: usize, batch: i32, c: i32, h: i32, w: i32, size: i32, stride: i32, padding: i32, outH: i32, outW: i32, dx: usize, backward: bool): void {
  maxpoolPlanes(out, x, h, w, size, stride, padding, outH, outW, dx, backward, 0, batch * c);
}

/** maxpool over the planes [p0, p1) of [batch * c]: each reads and writes its own plane only. */
function maxpoolPlanes(out: usize, x: usize, h: i32, w: i32, size: i32, stride: i32, padding: i32, outH: i32, outW: i32, dx: usize, backward: bool, p0: i32, p1: i32): void {
  const offset = -(padding / 2);
  // darknet's usual 2x2 / 2 (padding 0, or its default 1, which pads after the image only)
  const pairs = size == 2 && stride == 2 && offset == 0;
  for (let plane = p0; plane < p1; plane++) {
    const xp = at(x, plane * h * w);
    const op = at(out, plane * outH * outW);
    const dp = at(dx, plane * h * w);
    for (let i = 0; i < outH; i++) {
      let j = 0;
      if (pairs && 2 * i + 1 < h) {
        j = backward
          ? maxpool2x2Backward(at(op, i * outW), at(xp, 2 * i * w), at(dp, 2 * i * w), w)
          : maxpool2x2Forward(at(op, i * outW), at(xp, 2 * i * w), w);
      }
      for (; j < outW; j++) {
        let max = NEG_FLT_MAX;
        let tap = -1;
        for (let n = 0; n < size; n++) {
          const y = offset + i * stride + n;
          if (y < 0 || y >= h) continue;
          for (let m = 0; m < size; m++) {
            const xx = offset + j * stride + m;
            if (xx < 0 || xx >= w) continue;
            const v = load<f32>(at(xp, y * w + xx));
            if (v > max) {
              max = v;
              tap = y * w + xx;
            }
          }
        }
        if (!backward) store<f32>(at(op, i * outW + j), max);
        else if (tap >= 0) store<f32>(at(dp, tap), load<f32>(at(dp, tap)) + load<f32>(at(op, i * outW + j)));
      }
    }
  }
}

/**
 * One output row of a 2x2 / 2 maxpool, four outputs at a time from eight floats of each
 * of the two input rows r0, r0 + w; returns how many outputs it wrote (the rest, whose
 * windows reach past the row, go through the scalar loop).
 */
@inline
function maxpool2x2Forward(o: usize, r0: usize, w: i32): i32 {
  const r1 = at(r0, w);
  const neg = f32x4.splat(NEG_FLT_MAX);
  let j = 0;
  for (; 2 * j + 8 <= w; j += 4) {
    const a0 = v128.load(at(r0, 2 * j)), a1 = v128.load(at(r0, 2 * j + 4));
    const b0 = v128.load(at(r1, 2 * j)), b1 = v128.load(at(r1, 2 * j + 4));
    // pmax(m, v) = m < v ? v : m: a tap wins only when strictly greater, NaN never
    let m = f32x4.pmax(neg, f32x4.shuffle(a0, a1, 0, 2, 4, 6));
    m = f32x4.pmax(m, f32x4.shuffle(a0, a1, 1, 3, 5, 7));
    m = f32x4.pmax(m, f32x4.shuffle(b0, b1, 0, 2, 4, 6));
    m = f32x4.pmax(m, f32x4.shuffle(b0, b1, 1, 3, 5, 7));
    v128.store(at(o, j), m);
  }
  return j;
}

/** The backward of maxpool2x2Forward: each delta goes to its window's winning tap. */
@inline
function maxpool2x2Backward(delta: usize, r0: usize, d0: usize, w: i32): i32 {
  const r1 = at(r0, w);
  const d1 = at(d0, w);
  const neg = f32x4.splat(NEG_FLT_MAX);
  let j = 0;
  for (; 2 * j + 8 <= w; j += 4) {
    const a0 = v128.load(at(r0, 2 * j)), a1 = v128.load(at(r0, 2 * j + 4));
    const b0 = v128.load(at(r1, 2 * j)), b1 = v128.load(at(r1, 2 * j + 4));
    const t00 = f32x4.shuffle(a0, a1, 0, 2, 4, 6), t01 = f32x4.shuffle(a0, a1, 1, 3, 5, 7);
    const t10 = f32x4.shuffle(b0, b1, 0, 2, 4, 6), t11 = f32x4.shuffle(b0, b1, 1, 3, 5, 7);
    // g: this tap beat the running max; the winner is the last tap whose g is set
    const g00 = f32x4.gt(t00, neg);
    let m = v128.bitselect(t00, neg, g00);
    const g01 = f32x4.gt(t01, m);
    m = v128.bitselect(t01, m, g01);
    const g10 = f32x4.gt(t10, m);
    m = v128.bitselect(t10, m, g10);
    const g11 = f32x4.gt(t11, m);
    const later10 = g11, later01 = v128.or(g10, g11), later00 = v128.or(g01, later01);
    const d = v128.load(at(delta, j));
    const e00 = v128.and(d, v128.andnot(g00, later00)), e01 = v128.and(d, v128.andnot(g01, later01));
    const e10 = v128.and(d, v128.andnot(g10, later10)), e11 = v128.and(d, g11);
    // interleave back to input order and add (a losing tap adds +0)
    const p0 = at(d0, 2 * j), p1 = at(d1, 2 * j);
    v128.store(p0, f32x4.add(v128.load(p0), f32x4.shuffle(e00, e01, 0, 4, 1, 5)));
    v128.store(p0, f32x4.add(v128.load(p0, 16), f32x4.shuffle(e00, e01, 2, 6, 3, 7)), 16);
    v128.store(p1, f32x4.add(v128.load(p1), f32x4.shuffle(e10, e11, 0, 4, 1, 5)));
    v128.store(p1, f32x4.add(v128.load(p1, 16), f32x4.shuffle(e10, e11, 2, 6, 3, 7)), 16);
  }
  return j;
}

/** out[bf] = mean of x[bf, :]. */
export function avgpoolForward(out: usize, x: usize, planes: i32, spatial: i32): void {
  for (let p = 0; p < planes; p++) store<f32>(at(out, p), <f32>(rowSum(at(x, p * spatial), spatial) / spatial));
}

/** dx[bf, i] += delta[bf] / spatial. */
export function avgpoolBackward(dx: usize, delta: usize, planes: i32, spatial: i32): void {
  for (let p = 0; p < planes; p++) {
    const v = <f32>(<f64>load<f32>(at(delta, p)) / spatial);
    const row = at(dx, p * spatial);
    for (let i = 0; i < spatial; i++) store<f32>(at(row, i), load<f32>(at(row, i)) + v);
  }
}

// ---- softmax and losses ----

/** softmax over runs of len values, with temperature t; scratch holds len f64. */
export function softmax(out: usize, x: usize, total: i32, len: i32, t: f64, scratch: usize): void {
  for (let start = 0; start < total; start += len) {
    let largest = -Infinity;
    for (let i = 0; i < len; i++) {
      const v = <f64>load<f32>(at(x, start + i));
      if (v > largest) largest = v; // NaN never wins, as in the reference
    }
    let sum: f64 = 0;
    for (let i = 0; i < len; i++) {
      const e = Math.exp(<f64>load<f32>(at(x, start + i)) / t - largest / t);
      store<f64>(scratch + (<usize>i << 3), e);
      sum += e;
    }
    for (let i = 0; i < len; i++) store<f32>(at(out, start + i), <f32>(load<f64>(scratch + (<usize>i << 3)) / sum));
  }
}

/** delta = truth - output; returns the sum of -log(output) where truth != 0. */
export function softmaxCrossEntropy(delta: usize, p: usize, t: usize, n: i32): f64 {
  let loss: f64 = 0;
  for (let i = 0; i < n; i++) {
    const ti = load<f32>(at(t, i)), pi = load<f32>(at(p, i));
    if (ti != 0) loss -= Math.log(<f64>pi);
    store<f32>(at(delta, i), <f32>(<f64>ti - <f64>pi));
  }
  return loss;
}

/** darknet's cost maths (types.ts): type 0 sse, 1 L1, 2 smooth; returns the summed error. */
export function cost(delta: usize, p: usize, t: usize, n: i32, type: i32): f64 {
  let error: f64 = 0;
  for (let i = 0; i < n; i++) {
    const d = <f64>load<f32>(at(t, i)) - <f64>load<f32>(at(p, i));
    const sign: f64 = d > 0 ? 1 : -1;
    if (type == 0 || (type == 2 && Math.abs(d) < 1)) {
      store<f32>(at(delta, i), <f32>d);
      error += d * d;
    } else if (type == 1) {
      store<f32>(at(delta, i), <f32>sign);
      error += Math.abs(d);
    } else {
      store<f32>(at(delta, i), <f32>sign);
      error += 2 * Math.abs(d) - 1;
    }
  }
  return error;
}

// ---- batch norm ----

/** Per-channel mean and biased variance over batch * spatial. */
export function batchnormStats(mean: usize, variance: usize, x: usize, batch: i32, channels: i32, spatial: i32): void {
  const count = <f64>(batch * spatial);
  for (let f = 0; f < channels; f++) {
    let sum: f64 = 0;
    for (let b = 0; b < batch; b++) sum += rowSum(at(x, (b * channels + f) * spatial), spatial);
    const m = sum / count;
    let squares: f64 = 0;
    for (let b = 0; b < batch; b++) {
      const row = at(x, (b * channels + f) * spatial);
      for (let i = 0; i < spatial; i++) {
        const d = <f64>load<f32>(at(row, i)) - m;
        squares += d * d;
      }
    }
    store<f32>(at(mean, f), <f32>m);
    store<f32>(at(variance, f), <f32>(squares / count));
  }
}

/** out = (x - mean[f]) / sqrt(variance[f] + eps); out may be x. */
export function normalize(out: usize, x: usize, mean: usize, variance: usize, eps: f64, batch: i32, channels: i32, spatial: i32): void {
  normalizePlanes(out, x, mean, variance, eps, channels, spatial, 0, batch * channels);
}

function normalizePlanes(out: usize, x: usize, mean: usize, variance: usize, eps: f64, channels: i32, spatial: i32, p0: i32, p1: i32): void {
  // NOTE: f32x4 with a reciprocal, not an f64 division per value: this runs on every
  // inference batch-norm layer (at batch 1 it took an eighth of a forward pass)
  for (let p = p0; p < p1; p++) {
    const f = p % channels;
    const m = load<f32>(at(mean, f));
    const inv = <f32>(1 / Math.sqrt(<f64>load<f32>(at(variance, f)) + eps));
    const vm = f32x4.splat(m), vi = f32x4.splat(inv);
    const o = p * spatial;
    let i = 0;
    for (; i + 4 <= spatial; i += 4) v128.store(at(out, o + i), f32x4.mul(f32x4.sub(v128.load(at(x, o + i)), vm), vi));
    for (; i < spatial; i++) store<f32>(at(out, o + i), (load<f32>(at(x, o + i)) - m) * inv);
  }
}

/** out = (g - mean(g) - xNorm * mean(g * xNorm)) / sqrt(variance + eps), per channel. */
export function batchnormBackward(out: usize, g: usize, xNorm: usize, variance: usize, eps: f64, batch: i32, channels: i32, spatial: i32): void {
  const count = <f64>(batch * spatial);
  for (let f = 0; f < channels; f++) {
    let sumG: f64 = 0, sumGX: f64 = 0;
    for (let b = 0; b < batch; b++) {
      const o = (b * channels + f) * spatial;
      sumG += rowSum(at(g, o), spatial);
      sumGX += rowDot(at(g, o), at(xNorm, o), spatial);
    }
    const meanG = sumG / count, meanGX = sumGX / count;
    const sd = Math.sqrt(<f64>load<f32>(at(variance, f)) + eps);
    for (let b = 0; b < batch; b++) {
      const o = (b * channels + f) * spatial;
      for (let i = 0; i < spatial; i++) {
        const gi = <f64>load<f32>(at(g, o + i)), xi = <f64>load<f32>(at(xNorm, o + i));
        store<f32>(at(out, o + i), <f32>((gi - meanG - xi * meanGX) / sd));
      }
    }
  }
}

// ---- the rest ----

/** d (= or +=) rand < prob ? 0 : s * scale. */
export function dropout(d: usize, s: usize, rand: usize, n: i32, prob: f64, scale: f64, accumulate: bool): void {
  for (let i = 0; i < n; i++) {
    const v: f64 = <f64>load<f32>(at(rand, i)) < prob ? 0 : <f64>load<f32>(at(s, i)) * scale;
    store<f32>(at(d, i), <f32>(accumulate ? <f64>load<f32>(at(d, i)) + v : v));
  }
}

/** darknet's shortcut_cpu (see types.ts ShortcutShape); stride and sample already clamped to >= 1. */
export function shortcut(out: usize, add: usize, s1: f32, s2: f32, batch: i32, w1: i32, h1: i32, c1: i32, w2: i32, h2: i32, c2: i32, stride: i32, sample: i32): void {
  const minC = c1 < c2 ? c1 : c2;
  shortcutPlanes(out, add, s1, s2, w1, h1, c1, w2, h2, c2, stride, sample, 0, batch * minC);
}

/** shortcut over the planes (b, k) = p / minC, p % minC for p in [p0, p1). */
function shortcutPlanes(out: usize, add: usize, s1: f32, s2: f32, w1: i32, h1: i32, c1: i32, w2: i32, h2: i32, c2: i32, stride: i32, sample: i32, p0: i32, p1: i32): void {
  const minW = w1 < w2 ? w1 : w2, minH = h1 < h2 ? h1 : h2, minC = c1 < c2 ? c1 : c2;
  // same-size planes (a residual block's): each plane is one contiguous run, f32x4 (the
  // same f32 multiplies and add as the scalar loop, so the same bits)
  const flat = stride == 1 && sample == 1 && w1 == w2 && h1 == h2;
  const v1 = f32x4.splat(s1), v2 = f32x4.splat(s2);
  for (let p = p0; p < p1; p++) {
    const b = p / minC, k = p % minC;
    if (flat) {
      const o = at(out, (b * c2 + k) * h2 * w2), a = at(add, (b * c1 + k) * h1 * w1);
      const n = w1 * h1;
      let i = 0;
      for (; i + 4 <= n; i += 4) v128.store(at(o, i), f32x4.add(f32x4.mul(v1, v128.load(at(o, i))), f32x4.mul(v2, v128.load(at(a, i)))));
      for (; i < n; i++) store<f32>(at(o, i), s1 * load<f32>(at(o, i)) + s2 * load<f32>(at(a, i)));
      continue;
    }
    for (let j = 0; j < minH; j++) {
      for (let i = 0; i < minW; i++) {
        const oi = at(out, ((b * c2 + k) * h2 + j * sample) * w2 + i * sample);
        const ai = at(add, ((b * c1 + k) * h1 + j * stride) * w1 + i * stride);
        store<f32>(oi, s1 * load<f32>(oi) + s2 * load<f32>(ai));
      }
    }
  }
}

/**
 * darknet's SGD step: u += -decay * batch * w; w += rate / batch * u; u *= momentum.
 * With a mask (mask != 0), entries where mask == 0 end exactly +0.0.
 * NOTE: a select, not a multiply by the mask: NaN * 0 is NaN and -x * 0 is -0.
 */
export function sgdUpdate(w: usize, u: usize, mask: usize, n: i32, rate: f32, momentum: f32, decayBatch: f32, hasMask: bool): void {
  const vd = f32x4.splat(decayBatch), vr = f32x4.splat(rate), vm = f32x4.splat(momentum), zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let wi = v128.load(at(w, i));
    let ui = f32x4.add(v128.load(at(u, i)), f32x4.mul(vd, wi));
    wi = f32x4.add(wi, f32x4.mul(vr, ui));
    ui = f32x4.mul(ui, vm);
    if (hasMask) {
      const keep = f32x4.ne(v128.load(at(mask, i)), zero);
      wi = v128.bitselect(wi, zero, keep);
      ui = v128.bitselect(ui, zero, keep);
    }
    v128.store(at(w, i), wi);
    v128.store(at(u, i), ui);
  }
  for (; i < n; i++) {
    let wi = load<f32>(at(w, i));
    let ui = load<f32>(at(u, i)) + decayBatch * wi;
    wi += rate * ui;
    ui *= momentum;
    if (hasMask && load<f32>(at(mask, i)) == 0) {
      wi = 0;
      ui = 0;
    }
    store<f32>(at(w, i), wi);
    store<f32>(at(u, i), ui);
  }
}

// ---- the same ops as jobs (see gemmJob): a unit is a share of the planes, or of the values ----

/** Where unit u of `units` starts in [0, total): an even share, rounded down to a multiple of `step`. */
@inline function share(total: i32, u: i32, units: i32, step: i32): i32 {
  if (u >= units) return total;
  const lo = <i32>(<i64>total * u / units);
  return lo - lo % step;
}

export function activateJob(tid: i32, counter: usize, nt: i32, d: usize, s: usize, n: i32, act: i32, units: i32): i32 {
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    const lo = share(n, u, units, 4), hi = share(n, u + 1, units, 4);
    activate(at(d, lo), at(s, lo), hi - lo, act);
  }
  return done;
}

export function copyJob(tid: i32, counter: usize, nt: i32, d: usize, s: usize, n: i32, units: i32): i32 {
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    const lo = share(n, u, units, 4), hi = share(n, u + 1, units, 4);
    memory.copy(at(d, lo), at(s, lo), <usize>(hi - lo) << 2);
  }
  return done;
}

export function addBiasJob(tid: i32, counter: usize, nt: i32, x: usize, biases: usize, batch: i32, channels: i32, spatial: i32, units: i32): i32 {
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    addBiasPlanes(x, biases, channels, spatial, share(batch * channels, u, units, 1), share(batch * channels, u + 1, units, 1));
  }
  return done;
}

export function scaleBiasJob(tid: i32, counter: usize, nt: i32, x: usize, scales: usize, batch: i32, channels: i32, spatial: i32, units: i32): i32 {
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    scaleBiasPlanes(x, scales, channels, spatial, share(batch * channels, u, units, 1), share(batch * channels, u + 1, units, 1));
  }
  return done;
}

export function normalizeJob(tid: i32, counter: usize, nt: i32, out: usize, x: usize, mean: usize, variance: usize, eps: f64, batch: i32, channels: i32, spatial: i32, units: i32): i32 {
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    normalizePlanes(out, x, mean, variance, eps, channels, spatial, share(batch * channels, u, units, 1), share(batch * channels, u + 1, units, 1));
  }
  return done;
}

export function shortcutJob(tid: i32, counter: usize, nt: i32, out: usize, add: usize, s1: f32, s2: f32, batch: i32, w1: i32, h1: i32, c1: i32, w2: i32, h2: i32, c2: i32, stride: i32, sample: i32, units: i32): i32 {
  const planes = batch * (c1 < c2 ? c1 : c2);
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    shortcutPlanes(out, add, s1, s2, w1, h1, c1, w2, h2, c2, stride, sample, share(planes, u, units, 1), share(planes, u + 1, units, 1));
  }
  return done;
}

export function maxpoolJob(tid: i32, counter: usize, nt: i32, out: usize, x: usize, batch: i32, c: i32, h: i32, w: i32, size: i32, stride: i32, padding: i32, outH: i32, outW: i32, dx: usize, backward: bool, units: i32): i32 {
  let done = 0;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1), done++) {
    maxpoolPlanes(out, x, h, w, size, stride, padding, outH, outW, dx, backward, share(batch * c, u, units, 1), share(batch * c, u + 1, units, 1));
  }
  return done;
}
