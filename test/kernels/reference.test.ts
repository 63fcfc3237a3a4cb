/**
 * Checks the reference kernels themselves: hand-computed cases for every op, and, in
 * float64, every backward op against central finite differences of its forward op.
 *
 * Tolerances (stated once, used below):
 * - hand-computed cases: 1e-6 absolute in float32 (values are small), exact where the
 *   result is exactly representable;
 * - finite differences in float64: |analytic - numeric| <= FD_TOL * max(1, |numeric|),
 *   with FD_TOL = 1e-6 and step FD_H = 1e-5 (truncation error ~1e-10, rounding ~1e-11).
 */
import { ReferenceKernels } from '../../src/kernels/reference';
import { ACTIVATIONS, GRADIENT_FROM_INPUT } from '../../src/kernels/types';
import type { Activation, ChannelShape, ConvShape, GemmShape, PoolShape, Tensor } from '../../src/kernels/types';
import { mulberry32 } from '../../src/engine/random';

const FD_TOL = 1e-6;
const FD_H = 1e-5;

function randomValues(n: number, seed: number, lo = -1, hi = 1): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

function tensor(k: ReferenceKernels, values: ArrayLike<number>): Tensor {
  const t = k.alloc(values.length);
  k.upload(t, values);
  return t;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol) {
      throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

/** Asserts |analytic - numeric| <= FD_TOL * max(1, |numeric|) everywhere; returns the worst ratio. */
function expectGradient(analytic: ArrayLike<number>, numeric: ArrayLike<number>): number {
  expect(analytic.length).toBe(numeric.length);
  let worst = 0;
  for (let i = 0; i < numeric.length; i++) {
    const err = Math.abs(analytic[i] - numeric[i]) / Math.max(1, Math.abs(numeric[i]));
    if (err > FD_TOL) throw new Error(`index ${i}: analytic ${analytic[i]}, numeric ${numeric[i]}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** Central differences of a scalar function of `x` (x is perturbed in place and restored). */
function numericGradient(x: number[], f: (x: number[]) => number): number[] {
  return x.map((v, i) => {
    x[i] = v + FD_H;
    const up = f(x);
    x[i] = v - FD_H;
    const down = f(x);
    x[i] = v;
    return (up - down) / (2 * FD_H);
  });
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

describe('[reference] storage', () => {
  test('float32 by default, float64 on request; read returns a copy and counts readbacks', () => {
    const k32 = new ReferenceKernels();
    const k64 = new ReferenceKernels({ float64: true });
    expect(k32.backend).toBe('reference');
    const a = tensor(k32, [0.1, 2]);
    const b = tensor(k64, [0.1, 2]);
    const ra = k32.read(a);
    const rb = k64.read(b);
    expect(ra).toBeInstanceOf(Float32Array);
    expect(rb).toBeInstanceOf(Float64Array);
    expect(ra[0]).toBe(Math.fround(0.1));
    expect(rb[0]).toBe(0.1);
    ra[1] = 99;
    expect(k32.read(a)[1]).toBe(2);
    expect(k32.stats()).toEqual({ compiled: 0, readbacks: 2 });
  });

  test('alloc zero-fills; fill, copy, axpby', () => {
    const k = new ReferenceKernels();
    const x = k.alloc(3);
    expect(Array.from(k.read(x))).toEqual([0, 0, 0]);
    k.fill(x, 1.5);
    const y = tensor(k, [1, 2, 3]);
    k.axpby(y, 2, x, -1); // 2 * 1.5 - y
    expect(Array.from(k.read(y))).toEqual([2, 1, 0]);
    k.copy(x, y);
    expect(Array.from(k.read(x))).toEqual([2, 1, 0]);
  });

  test('copyRows: strided, with offsets, = and +=', () => {
    const k = new ReferenceKernels();
    const src = tensor(k, [1, 2, 3, 4, 5, 6]); // [2, 3]
    const dst = tensor(k, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // [2, 5]
    const rows = { batch: 2, n: 2, srcStride: 3, srcOffset: 1, dstStride: 5, dstOffset: 3, accumulate: false };
    k.copyRows(dst, src, rows);
    expect(Array.from(k.read(dst))).toEqual([0, 0, 0, 2, 3, 0, 0, 0, 5, 6]);
    k.copyRows(dst, src, { ...rows, accumulate: true });
    expect(Array.from(k.read(dst))).toEqual([0, 0, 0, 4, 6, 0, 0, 0, 10, 12]);
    expect(() => k.copyRows(dst, src, { ...rows, dstOffset: 4 })).toThrow(/copyRows/);
  });

  test('size mismatches throw an error naming the op', () => {
    const k = new ReferenceKernels();
    expect(() => k.upload(k.alloc(2), [1, 2, 3])).toThrow(/upload/);
    expect(() => k.copy(k.alloc(2), k.alloc(3))).toThrow(/copy/);
    const g: GemmShape = { M: 2, N: 2, K: 2, transA: false, transB: false, alpha: 1, beta: 0 };
    expect(() => k.gemm(k.alloc(4), k.alloc(4), k.alloc(5), g)).toThrow(/gemm/);
    const c = k.alloc(4);
    expect(() => k.gemm(c, c, k.alloc(4), g)).toThrow(/alias/);
    const conv: ConvShape = { batch: 1, c: 1, h: 3, w: 3, n: 1, groups: 1, size: 2, stride: 1, pad: 0, outH: 3, outW: 3 };
    expect(() => k.convForward(k.alloc(9), k.alloc(9), k.alloc(4), conv)).toThrow(/convForward/);
    expect(() => k.activate(k.alloc(2), k.alloc(2), 'swish' as Activation)).toThrow(/activate/);
    const k64 = new ReferenceKernels({ float64: true });
    expect(() => k.fill(k64.alloc(1), 0)).toThrow(/precision/);
  });
});

describe('[reference] gemm', () => {
  // A = [[1, 2, 3], [4, 5, 6]] (2 x 3), B = [[1, 0], [0, 1], [1, 1]] (3 x 2): A B = [[4, 5], [10, 11]]
  const A = [1, 2, 3, 4, 5, 6];
  const At = [1, 4, 2, 5, 3, 6];
  const B = [1, 0, 0, 1, 1, 1];
  const Bt = [1, 0, 1, 0, 1, 1];
  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    test(`hand-computed, transA=${transA} transB=${transB}, alpha 2, beta 0.5`, () => {
      const k = new ReferenceKernels();
      const C = tensor(k, [1, 2, 3, 4]);
      k.gemm(C, tensor(k, transA ? At : A), tensor(k, transB ? Bt : B), { M: 2, N: 2, K: 3, transA, transB, alpha: 2, beta: 0.5 });
      expect(Array.from(k.read(C))).toEqual([8.5, 11, 21.5, 24]);
    });
  }

  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    test(`finite differences: gemm's own gradients, transA=${transA} transB=${transB}`, () => {
      const k = new ReferenceKernels({ float64: true });
      const [M, N, K, alpha] = [3, 4, 5, 1.5];
      const a = randomValues(M * K, 1);
      const b = randomValues(K * N, 2);
      const r = randomValues(M * N, 3); // d(loss)/dC, loss = sum(r * C)
      const shape: GemmShape = { M, N, K, transA, transB, alpha, beta: 0 };
      const loss = (av: number[], bv: number[]): number => {
        const C = k.alloc(M * N);
        k.gemm(C, tensor(k, av), tensor(k, bv), shape);
        return dot(k.read(C), r);
      };
      const R = tensor(k, r);
      // dA = alpha R op(B)^T (stored as A is); dB = alpha op(A)^T R (stored as B is)
      const dA = k.alloc(M * K);
      if (!transA) k.gemm(dA, R, tensor(k, b), { M, N: K, K: N, transA: false, transB: !transB, alpha, beta: 0 });
      else k.gemm(dA, tensor(k, b), R, { M: K, N: M, K: N, transA: transB, transB: true, alpha, beta: 0 });
      const dB = k.alloc(K * N);
      if (!transB) k.gemm(dB, tensor(k, a), R, { M: K, N, K: M, transA: !transA, transB: false, alpha, beta: 0 });
      else k.gemm(dB, R, tensor(k, a), { M: N, N: K, K: M, transA: true, transB: transA, alpha, beta: 0 });
      expectGradient(k.read(dA), numericGradient(a, (x) => loss(x, b)));
      expectGradient(k.read(dB), numericGradient(b, (x) => loss(a, x)));
    });
  }
});

describe('[reference] convolution', () => {
  test('hand-computed 2x2 conv on a 3x3 image, no padding', () => {
    const k = new ReferenceKernels();
    const s: ConvShape = { batch: 1, c: 1, h: 3, w: 3, n: 1, groups: 1, size: 2, stride: 1, pad: 0, outH: 2, outW: 2 };
    const out = k.alloc(4);
    k.convForward(out, tensor(k, [1, 2, 3, 4, 5, 6, 7, 8, 9]), tensor(k, [1, 0, 0, -1]), s);
    // x[y][x] - x[y+1][x+1] = -4 everywhere
    expect(Array.from(k.read(out))).toEqual([-4, -4, -4, -4]);
  });

  test('hand-computed 2x2 conv, stride 2, pad 1: corners see out-of-image zeros', () => {
    const k = new ReferenceKernels();
    const s: ConvShape = { batch: 1, c: 1, h: 3, w: 3, n: 1, groups: 1, size: 2, stride: 2, pad: 1, outH: 2, outW: 2 };
    const out = k.alloc(4);
    k.convForward(out, tensor(k, [1, 2, 3, 4, 5, 6, 7, 8, 9]), tensor(k, [1, 10, 100, 1000]), s);
    // output (0,0) window rows -1..0, cols -1..0: only tap (1,1) -> x[0][0] = 1 at weight 1000
    // (0,1): cols 1..2, taps (1,0) x=2, (1,1) x=3 -> 200 + 3000; (1,0): rows 1..2 cols -1..0 -> 10*4 + 1000*7
    // (1,1): rows 1..2 cols 1..2 -> 5 + 60 + 800 + 9000
    expect(Array.from(k.read(out))).toEqual([1000, 3200, 7040, 9865]);
  });

  test('hand-computed groups: each filter sees only its group\'s channels', () => {
    const k = new ReferenceKernels();
    // 2 channels of a 1x1 image, 4 filters, 2 groups: filters 0,1 see channel 0; 2,3 see channel 1
    const s: ConvShape = { batch: 2, c: 2, h: 1, w: 1, n: 4, groups: 2, size: 1, stride: 1, pad: 0, outH: 1, outW: 1 };
    const out = k.alloc(8);
    k.convForward(out, tensor(k, [3, 5, -1, 2]), tensor(k, [1, 2, 3, 4]), s);
    expect(Array.from(k.read(out))).toEqual([3, 6, 15, 20, -1, -2, 6, 8]);
  });

  test('backward ops accumulate (+=)', () => {
    const k = new ReferenceKernels();
    const s: ConvShape = { batch: 1, c: 1, h: 2, w: 2, n: 1, groups: 1, size: 2, stride: 1, pad: 0, outH: 1, outW: 1 };
    const dw = tensor(k, [1, 1, 1, 1]);
    k.convBackwardFilter(dw, tensor(k, [2]), tensor(k, [1, 2, 3, 4]), s);
    expect(Array.from(k.read(dw))).toEqual([3, 5, 7, 9]);
    const dx = tensor(k, [10, 10, 10, 10]);
    k.convBackwardData(dx, tensor(k, [-1]), tensor(k, [1, 2, 3, 4]), s);
    expect(Array.from(k.read(dx))).toEqual([9, 8, 7, 6]);
  });

  test('finite differences, groups 2, stride 2, pad 1: convBackwardFilter and convBackwardData', () => {
    const k = new ReferenceKernels({ float64: true });
    const s: ConvShape = { batch: 2, c: 4, h: 5, w: 6, n: 6, groups: 2, size: 3, stride: 2, pad: 1, outH: 3, outW: 3 };
    const x = randomValues(s.batch * s.c * s.h * s.w, 10);
    const w = randomValues(s.n * (s.c / s.groups) * s.size * s.size, 11);
    const r = randomValues(s.batch * s.n * s.outH * s.outW, 12); // delta; loss = sum(r * out)
    const loss = (xv: number[], wv: number[]): number => {
      const out = k.alloc(r.length);
      k.convForward(out, tensor(k, xv), tensor(k, wv), s);
      return dot(k.read(out), r);
    };
    const dw = k.alloc(w.length);
    k.convBackwardFilter(dw, tensor(k, r), tensor(k, x), s);
    const dx = k.alloc(x.length);
    k.convBackwardData(dx, tensor(k, r), tensor(k, w), s);
    expectGradient(k.read(dw), numericGradient(w, (v) => loss(x, v)));
    expectGradient(k.read(dx), numericGradient(x, (v) => loss(v, w)));
  });

  test('finite differences, stride 3 leaving the last rows unread, pad 2', () => {
    const k = new ReferenceKernels({ float64: true });
    const s: ConvShape = { batch: 1, c: 2, h: 7, w: 5, n: 2, groups: 1, size: 2, stride: 3, pad: 2, outH: 4, outW: 3 };
    const x = randomValues(s.batch * s.c * s.h * s.w, 20);
    const w = randomValues(s.n * s.c * s.size * s.size, 21);
    const r = randomValues(s.batch * s.n * s.outH * s.outW, 22);
    const loss = (xv: number[], wv: number[]): number => {
      const out = k.alloc(r.length);
      k.convForward(out, tensor(k, xv), tensor(k, wv), s);
      return dot(k.read(out), r);
    };
    const dw = k.alloc(w.length);
    k.convBackwardFilter(dw, tensor(k, r), tensor(k, x), s);
    const dx = k.alloc(x.length);
    k.convBackwardData(dx, tensor(k, r), tensor(k, w), s);
    expectGradient(k.read(dw), numericGradient(w, (v) => loss(x, v)));
    const gx = k.read(dx);
    expectGradient(gx, numericGradient(x, (v) => loss(v, w)));
    // size-2 windows starting at rows -2, 1, 4, 7 never read rows 0, 3 and 6
    for (let ch = 0; ch < 2; ch++) {
      for (const iy of [0, 3, 6]) for (let ix = 0; ix < 5; ix++) expect(gx[(ch * 7 + iy) * 5 + ix]).toBe(0);
    }
    expect(gx[(0 * 7 + 1) * 5 + 1]).not.toBe(0);
  });
});

describe('[reference] per-channel ops', () => {
  const s: ChannelShape = { batch: 2, channels: 2, spatial: 2 };
  const x = [1, 2, 3, 4, 5, 6, 7, 8]; // [b][f][i]

  test('addBias, scaleBias, backwardBias, backwardScale', () => {
    const k = new ReferenceKernels();
    const t = tensor(k, x);
    k.addBias(t, tensor(k, [10, 20]), s);
    expect(Array.from(k.read(t))).toEqual([11, 12, 23, 24, 15, 16, 27, 28]);
    k.scaleBias(t, tensor(k, [1, -1]), s);
    expect(Array.from(k.read(t))).toEqual([11, 12, -23, -24, 15, 16, -27, -28]);
    const bu = tensor(k, [1, 1]);
    k.backwardBias(bu, tensor(k, x), s);
    expect(Array.from(k.read(bu))).toEqual([1 + 1 + 2 + 5 + 6, 1 + 3 + 4 + 7 + 8]);
    const su = tensor(k, [0, 100]);
    k.backwardScale(su, tensor(k, x), tensor(k, [1, 1, 1, 1, 2, 2, 2, 2]), s);
    expect(Array.from(k.read(su))).toEqual([1 + 2 + 10 + 12, 100 + 3 + 4 + 14 + 16]);
  });

  test('batchnormStats: biased variance; normalize in place', () => {
    const k = new ReferenceKernels({ float64: true });
    const mean = k.alloc(2);
    const variance = k.alloc(2);
    const t = tensor(k, x);
    k.batchnormStats(mean, variance, t, s);
    // channel 0: 1, 2, 5, 6 -> mean 3.5, variance (6.25 + 2.25 + 2.25 + 6.25) / 4 = 4.25
    expect(Array.from(k.read(mean))).toEqual([3.5, 5.5]);
    expect(Array.from(k.read(variance))).toEqual([4.25, 4.25]);
    k.normalize(t, t, mean, variance, 2, s); // sqrt(4.25 + 2) = 2.5
    expectClose(k.read(t), [-1, -0.6, -1, -0.6, 0.6, 1, 0.6, 1], 1e-15);
  });

  test('avgpool forward and backward (+=)', () => {
    const k = new ReferenceKernels();
    const out = k.alloc(4);
    k.avgpoolForward(out, tensor(k, x), s);
    expect(Array.from(k.read(out))).toEqual([1.5, 3.5, 5.5, 7.5]);
    const dx = tensor(k, [1, 1, 1, 1, 1, 1, 1, 1]);
    k.avgpoolBackward(dx, tensor(k, [2, 4, 6, 8]), s);
    expect(Array.from(k.read(dx))).toEqual([2, 2, 3, 3, 4, 4, 5, 5]);
  });

  test('finite differences: avgpoolBackward', () => {
    const k = new ReferenceKernels({ float64: true });
    const cs: ChannelShape = { batch: 2, channels: 3, spatial: 5 };
    const xv = randomValues(30, 40);
    const r = randomValues(6, 41);
    const dx = k.alloc(30);
    k.avgpoolBackward(dx, tensor(k, r), cs);
    expectGradient(k.read(dx), numericGradient(xv, (v) => {
      const out = k.alloc(6);
      k.avgpoolForward(out, tensor(k, v), cs);
      return dot(k.read(out), r);
    }));
  });

  test('finite differences: batchnormBackward through batchnormStats + normalize', () => {
    const k = new ReferenceKernels({ float64: true });
    const cs: ChannelShape = { batch: 3, channels: 2, spatial: 4 };
    const eps = 1e-3;
    const xv = randomValues(24, 50, -2, 2);
    const r = randomValues(24, 51); // dxhat; loss = sum(r * xNorm)
    const forward = (v: number[]): { xNorm: Tensor; variance: Tensor } => {
      const mean = k.alloc(2);
      const variance = k.alloc(2);
      const xNorm = tensor(k, v);
      k.batchnormStats(mean, variance, xNorm, cs);
      k.normalize(xNorm, xNorm, mean, variance, eps, cs);
      return { xNorm, variance };
    };
    const { xNorm, variance } = forward(xv);
    const dx = k.alloc(24);
    k.batchnormBackward(dx, tensor(k, r), xNorm, variance, eps, cs);
    expectGradient(k.read(dx), numericGradient(xv, (v) => dot(k.read(forward(v).xNorm), r)));
    expect(() => {
      const same = tensor(k, r);
      k.batchnormBackward(same, same, xNorm, variance, eps, cs);
    }).toThrow(/alias/);
  });
});

describe('[reference] activations', () => {
  test('hand-computed values from darknet\'s activations.h', () => {
    const k = new ReferenceKernels({ float64: true });
    const xs = [-5, -1.5, -0.5, 0.5, 1.5, 2.5, 5];
    const expected: Record<Activation, number[]> = {
      logistic: xs.map((x) => 1 / (1 + Math.exp(-x))),
      loggy: xs.map((x) => 2 / (1 + Math.exp(-x)) - 1),
      relu: [0, 0, 0, 0.5, 1.5, 2.5, 5],
      elu: [Math.exp(-5) - 1, Math.exp(-1.5) - 1, Math.exp(-0.5) - 1, 0.5, 1.5, 2.5, 5],
      selu: xs.map((x) => (x >= 0 ? 1.0507 * x : 1.0507 * 1.6732 * (Math.exp(x) - 1))),
      relie: [-0.05, -0.015, -0.005, 0.5, 1.5, 2.5, 5],
      plse: [-0.01, 0.3125, 0.4375, 0.5625, 0.6875, 0.8125, 1.01],
      hardtan: [-1, -1, -0.5, 0.5, 1, 1, 1],
      lhtan: [-0.005, -0.0015, -0.0005, 0.5, 1.0005, 1.0015, 1.004],
      linear: xs,
      ramp: [-0.5, -0.15, -0.05, 0.55, 1.65, 2.75, 5.5],
      leaky: [-0.5, -0.15, -0.05, 0.5, 1.5, 2.5, 5],
      tanh: xs.map(Math.tanh),
      // floor(x) even: floor(x/2); odd: (x - floor(x)) + floor(x/2)
      stair: [-3, -1, -0.5, 0, 0.5, 1, 2],
      // x * tanh(ln(1 + e^x)); mish(1) = 0.8650983882673103
      mish: xs.map((x) => x * Math.tanh(Math.log(1 + Math.exp(x)))),
    };
    for (const act of ACTIVATIONS) {
      const out = k.alloc(xs.length);
      k.activate(out, tensor(k, xs), act);
      try {
        expectClose(k.read(out), expected[act], 1e-12);
      } catch (e) {
        throw new Error(`${act}: ${(e as Error).message}`);
      }
    }
  });

  test('mish: softplus\'s threshold 20 (x above, exp(x) below) and its gradient there, as AlexeyAB\'s darknet', () => {
    const k = new ReferenceKernels({ float64: true });
    const xs = [-30, -20.5, 20.5, 30, 1, -1];
    const out = k.alloc(xs.length);
    k.activate(out, tensor(k, xs), 'mish');
    expectClose(k.read(out), [-30 * Math.tanh(Math.exp(-30)), -20.5 * Math.tanh(Math.exp(-20.5)), 20.5 * Math.tanh(20.5), 30 * Math.tanh(30),
      0.8650983882673103, -0.30340146137410895], 1e-12);
    // gradient_array_mish: x * (1 - tanh(sp)^2) * (1 - exp(-sp)) + tanh(sp), sp = softplus(x)
    const delta = tensor(k, xs.map(() => 1));
    k.gradient(delta, tensor(k, xs), 'mish');
    const want = xs.map((x) => {
      const sp = x > 20 ? x : x < -20 ? Math.exp(x) : Math.log1p(Math.exp(x));
      const t = Math.tanh(sp);
      return x * (1 - t * t) * (1 - Math.exp(-sp)) + t;
    });
    expectClose(k.read(delta), want, 1e-9);
    expect(Array.from(k.read(delta)).every(Number.isFinite)).toBe(true);
  });

  test('activate in place, and no NaN where darknet\'s formulas overflow', () => {
    const k = new ReferenceKernels();
    const t = tensor(k, [-1, 2]);
    k.activate(t, t, 'leaky');
    expectClose(k.read(t), [-0.1, 2]);
    const big = tensor(k, [1000, -1000]);
    const out = k.alloc(2);
    for (const act of ['tanh', 'elu', 'selu'] as const) {
      k.activate(out, big, act);
      expect(Array.from(k.read(out)).every(Number.isFinite)).toBe(true);
    }
  });

  // points at least 0.2 from every kink (0, +-1, +-4, integers for stair)
  const points = [-5.3, -4.6, -3.7, -2.4, -1.6, -0.7, -0.3, 0.2, 0.45, 0.8, 1.3, 2.6, 3.5, 4.7, 6.2];
  for (const act of ACTIVATIONS) {
    test(`finite differences: gradient of ${act} from its ${GRADIENT_FROM_INPUT.has(act) ? 'input' : 'output'}`, () => {
      const k = new ReferenceKernels({ float64: true });
      const f = (x: number): number => {
        const t = tensor(k, [x]);
        k.activate(t, t, act);
        return k.read(t)[0];
      };
      const output = k.alloc(points.length);
      k.activate(output, tensor(k, points), act);
      const d0 = randomValues(points.length, 60, 0.5, 2);
      const delta = tensor(k, d0);
      // mish's gradient takes the activation's input (GRADIENT_FROM_INPUT)
      k.gradient(delta, GRADIENT_FROM_INPUT.has(act) ? tensor(k, points) : output, act);
      const numeric = points.map((x, i) => d0[i] * (f(x + FD_H) - f(x - FD_H)) / (2 * FD_H));
      expectGradient(k.read(delta), numeric);
    });
  }
});

describe('[reference] maxpool', () => {
  // 4x4 image; size 3, stride 1, padding 2 (darknet's default size - 1): window of output
  // (i, j) covers rows i-1..i+1, cols j-1..j+1; out is 4x4.
  const x = [
    1, 5, 2, 0,
    3, 5, 4, 1,
    0, 2, 9, 9,
    6, 1, 9, 7,
  ];
  const s: PoolShape = { batch: 1, c: 1, h: 4, w: 4, size: 3, stride: 1, padding: 2, outH: 4, outW: 4 };

  test('hand-computed 3x3 window with padding', () => {
    const k = new ReferenceKernels();
    const out = k.alloc(16);
    k.maxpoolForward(out, tensor(k, x), s);
    expect(Array.from(k.read(out))).toEqual([
      5, 5, 5, 4,
      5, 9, 9, 9,
      6, 9, 9, 9,
      6, 9, 9, 9,
    ]);
  });

  test('ties go to the first tap in row-major window order', () => {
    const k = new ReferenceKernels();
    const dx = k.alloc(16);
    const delta = Array.from({ length: 16 }, (_, i) => 2 ** i);
    k.maxpoolBackward(dx, tensor(k, delta), tensor(k, x), s);
    const g = k.read(dx);
    // the 5s at (0,1) and (1,1) tie: outputs (0,0), (0,1), (0,2), (1,0) all pick (0,1)
    expect(g[1]).toBe(1 + 2 + 4 + 16);
    expect(g[5]).toBe(0);
    // the 9s at (2,2), (2,3), (3,2) tie: every window holding (2,2) (outputs (1..3, 1..3))
    // picks it, as the first 9 in row-major window order
    expect(g[10]).toBe(32 + 64 + 128 + 512 + 1024 + 2048 + 8192 + 16384 + 32768);
    expect(g[11]).toBe(0);
    expect(g[14]).toBe(0);
    expect(g[12]).toBe(256 + 4096); // the 6 at (3,0), for outputs (2,0) and (3,0)
    expect(g[6]).toBe(8); // the 4 at (1,2), for output (0,3)
    // every delta went somewhere, exactly once
    expect(Array.from(g).reduce((a, b) => a + b, 0)).toBe(2 ** 16 - 1);
  });

  test('stride 2, odd padding 3: windows start at -1; a window wholly in the padding is -FLT_MAX', () => {
    const k = new ReferenceKernels();
    // 1x5 image, size 2: outH = (1 + 3 - 2) / 2 + 1 = 2, outW = (5 + 3 - 2) / 2 + 1 = 4
    // column windows -1..0, 1..2, 3..4, 5..6; row windows -1..0, 1..2 (the second is all padding)
    const ps: PoolShape = { batch: 1, c: 1, h: 1, w: 5, size: 2, stride: 2, padding: 3, outH: 2, outW: 4 };
    const out = k.alloc(8);
    const input = tensor(k, [-3, -7, -2, -1, -5]);
    k.maxpoolForward(out, input, ps);
    const FLT_MAX = 3.4028234663852886e38;
    expect(Array.from(k.read(out))).toEqual([-3, -2, -1, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX]);
    const dx = k.alloc(5);
    k.maxpoolBackward(dx, tensor(k, [1, 2, 4, 8, 16, 32, 64, 128]), input, ps);
    expect(Array.from(k.read(dx))).toEqual([1, 0, 2, 4, 0]);
  });

  test('finite differences: maxpoolBackward, size 3, stride 2, padding 2, two channels', () => {
    const k = new ReferenceKernels({ float64: true });
    const ps: PoolShape = { batch: 2, c: 2, h: 5, w: 6, size: 3, stride: 2, padding: 2, outH: 3, outW: 3 };
    // distinct values 0.1 apart, so a step of FD_H never changes an argmax
    const n = 2 * 2 * 5 * 6;
    const rand = mulberry32(70);
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const xv = perm.map((p) => p * 0.1 - 3);
    const r = randomValues(2 * 2 * 3 * 3, 71);
    const dx = k.alloc(n);
    k.maxpoolBackward(dx, tensor(k, r), tensor(k, xv), ps);
    expectGradient(k.read(dx), numericGradient(xv, (v) => {
      const out = k.alloc(r.length);
      k.maxpoolForward(out, tensor(k, v), ps);
      return dot(k.read(out), r);
    }));
  });
});

describe('[reference] softmax and losses', () => {
  test('softmax with groups and temperature', () => {
    const k = new ReferenceKernels({ float64: true });
    const out = k.alloc(8);
    // batch 2, inputs 4, groups 2: runs [1, 2], [3, 3], [0, 0], [-1, 1]
    k.softmax(out, tensor(k, [1, 2, 3, 3, 0, 0, -1, 1]), { batch: 2, inputs: 4, groups: 2, temperature: 1 });
    const e = Math.E;
    expectClose(k.read(out), [1 / (1 + e), e / (1 + e), 0.5, 0.5, 0.5, 0.5, 1 / (1 + e * e), e * e / (1 + e * e)], 1e-15);
    k.softmax(out, tensor(k, [1, 2, 3, 3, 0, 0, -1, 1]), { batch: 2, inputs: 4, groups: 2, temperature: 2 });
    expectClose(k.read(out), [1 / (1 + Math.sqrt(e)), Math.sqrt(e) / (1 + Math.sqrt(e)), 0.5, 0.5, 0.5, 0.5, 1 / (1 + e), e / (1 + e)], 1e-15);
    // large inputs stay finite: the max is subtracted first
    k.softmax(out, tensor(k, [1000, 1000, 0, 0, 0, 0, 0, 0]), { batch: 1, inputs: 8, groups: 1, temperature: 1 });
    expectClose(k.read(out), [0.5, 0.5, 0, 0, 0, 0, 0, 0], 1e-15);
    expect(() => k.softmax(out, k.alloc(8), { batch: 2, inputs: 4, groups: 3, temperature: 1 })).toThrow(/softmax/);
  });

  test('softmaxCrossEntropy: delta = truth - output, loss over truth != 0, one readback', () => {
    const k = new ReferenceKernels({ float64: true });
    const delta = k.alloc(4);
    const before = k.stats().readbacks;
    const loss = k.softmaxCrossEntropy(delta, tensor(k, [0.25, 0.75, 0.5, 0.5]), tensor(k, [0, 1, 0.5, 0]));
    expect(loss).toBeCloseTo(-Math.log(0.75) - Math.log(0.5), 14);
    expect(Array.from(k.read(delta))).toEqual([-0.25, 0.25, 0, -0.5]);
    expect(k.stats().readbacks).toBe(before + 2);
  });

  test('finite differences: softmax + cross-entropy, delta = -d(loss)/d(input), groups 3', () => {
    const k = new ReferenceKernels({ float64: true });
    const shape = { batch: 2, inputs: 9, groups: 3, temperature: 1 };
    const xv = randomValues(18, 80, -3, 3);
    const truth = tensor(k, [0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0]); // one-hot per group
    const lossAndDelta = (v: number[]): { loss: number; delta: Tensor } => {
      const out = k.alloc(18);
      k.softmax(out, tensor(k, v), shape);
      const delta = k.alloc(18);
      return { loss: k.softmaxCrossEntropy(delta, out, truth), delta };
    };
    const minusDelta = Array.from(k.read(lossAndDelta(xv).delta), (d) => -d);
    expectGradient(minusDelta, numericGradient(xv, (v) => lossAndDelta(v).loss));
  });

  test('cost: hand-computed sse, L1, smooth (with the fixed sign outside |d| < 1)', () => {
    const k = new ReferenceKernels({ float64: true });
    const pred = tensor(k, [0, 0, 0, 0]);
    const truth = tensor(k, [0.5, -0.25, 3, -2]);
    const delta = k.alloc(4);
    expect(k.cost(delta, pred, truth, 'sse')).toBe(0.25 + 0.0625 + 9 + 4);
    expect(Array.from(k.read(delta))).toEqual([0.5, -0.25, 3, -2]);
    expect(k.cost(delta, pred, truth, 'L1')).toBe(0.5 + 0.25 + 3 + 2);
    expect(Array.from(k.read(delta))).toEqual([1, -1, 1, -1]);
    expect(k.cost(delta, pred, truth, 'smooth')).toBe(0.25 + 0.0625 + 5 + 3);
    expect(Array.from(k.read(delta))).toEqual([0.5, -0.25, 1, -1]);
  });

  test('finite differences: cost deltas are -1/2 d(error)/d(pred) for sse and smooth, -d(error)/d(pred) for L1', () => {
    const k = new ReferenceKernels({ float64: true });
    const truthValues = [0.3, -0.4, 2.5, -1.8, 0.9];
    const pv = [-0.1, 0.2, 0.4, 0.1, -1.2]; // |d| = 0.4, 0.6, 2.1, 1.9, 2.1: both smooth branches
    const truth = tensor(k, truthValues);
    for (const [type, factor] of [['sse', -0.5], ['L1', -1], ['smooth', -0.5]] as const) {
      const error = (v: number[]): number => k.cost(k.alloc(5), tensor(k, v), truth, type);
      const delta = k.alloc(5);
      k.cost(delta, tensor(k, pv), truth, type);
      expectGradient(k.read(delta), numericGradient(pv, error).map((g) => factor * g));
    }
  });
});

describe('[reference] dropout, shortcut, sgdUpdate', () => {
  test('dropout: = and +=, rand < prob drops', () => {
    const k = new ReferenceKernels();
    const src = tensor(k, [1, 2, 3, 4]);
    const rand = tensor(k, [0.1, 0.5, 0.49, 0.9]);
    const dst = tensor(k, [7, 7, 7, 7]);
    k.dropout(dst, src, rand, 0.5, 2, false);
    expect(Array.from(k.read(dst))).toEqual([0, 4, 0, 8]);
    k.dropout(dst, src, rand, 0.5, 2, true);
    expect(Array.from(k.read(dst))).toEqual([0, 8, 0, 16]);
  });

  test('shortcut with stride 2 (add is larger): fewer channels in add leave the rest alone', () => {
    const k = new ReferenceKernels();
    // add [1, 2, 4, 4] with values 100 * c + 10 * y + x; out [1, 3, 2, 2] all ones
    const add = Array.from({ length: 32 }, (_, i) => 100 * Math.floor(i / 16) + 10 * Math.floor((i % 16) / 4) + (i % 4));
    const out = tensor(k, new Array(12).fill(1));
    k.shortcut(out, tensor(k, add), 2, 1, { batch: 1, w1: 4, h1: 4, c1: 2, w2: 2, h2: 2, c2: 3 });
    // out = 2 * 1 + add[c, 2j, 2i]
    expect(Array.from(k.read(out))).toEqual([2, 4, 22, 24, 102, 104, 122, 124, 1, 1, 1, 1]);
  });

  test('shortcut with sample 2 (add is smaller): only every other position changes', () => {
    const k = new ReferenceKernels();
    const out = tensor(k, new Array(16).fill(1));
    k.shortcut(out, tensor(k, [1, 2, 3, 4]), 1, 10, { batch: 1, w1: 2, h1: 2, c1: 1, w2: 4, h2: 4, c2: 1 });
    expect(Array.from(k.read(out))).toEqual([11, 1, 21, 1, 1, 1, 1, 1, 31, 1, 41, 1, 1, 1, 1, 1]);
    expect(() => k.shortcut(out, k.alloc(8), 1, 1, { batch: 1, w1: 2, h1: 4, c1: 1, w2: 4, h2: 4, c2: 1 })).toThrow(/shortcut/);
  });

  test('sgdUpdate: darknet\'s step, hand-computed', () => {
    const k = new ReferenceKernels({ float64: true });
    const w = tensor(k, [1, -2]);
    const u = tensor(k, [0.5, 0.25]);
    k.sgdUpdate(w, u, null, { rate: 0.1, momentum: 0.9, decay: 0.01, batch: 10 });
    // u = 0.5 - 0.01 * 10 * 1 = 0.4;  w = 1 + 0.01 * 0.4 = 1.004;  u = 0.36
    // u = 0.25 + 0.1 * 2 = 0.45;      w = -2 + 0.01 * 0.45 = -1.9955; u = 0.405
    expectClose(k.read(w), [1.004, -1.9955], 1e-14);
    expectClose(k.read(u), [0.36, 0.405], 1e-14);
  });

  test('sgdUpdate with a mask: pruned weights and updates are exactly +0, even from NaN, Inf or -0', () => {
    const k = new ReferenceKernels();
    // entry 5 lands on -0 with -0 momentum; entry 6 lands on weight 0 with momentum -0.25
    const w = tensor(k, [1, NaN, -Infinity, -0, 2, -0, 0.5]);
    const u = tensor(k, [1, 1, 1, -5, Infinity, -0, -0.5]);
    const mask = tensor(k, [1, 0, 0, 0, 0, 0, 0]);
    k.sgdUpdate(w, u, mask, { rate: 1, momentum: 0.5, decay: 0, batch: 1 });
    const wv = k.read(w);
    const uv = k.read(u);
    expect(wv[0]).toBe(2);
    expect(uv[0]).toBe(0.5);
    for (let i = 1; i < 7; i++) {
      expect(Object.is(wv[i], 0)).toBe(true);
      expect(Object.is(uv[i], 0)).toBe(true);
    }
  });
});
