/**
 * Every op of the wasm-simd kernels against the plain TypeScript reference (float32), on
 * random inputs: LeNet-like shapes, odd sizes (not multiples of the 4 x 8 tile or of the
 * gemm blocks KC = 256, NC = 1024 in any dimension), groups, strides and padding, all
 * gemm transposes with alpha and beta, "+=" into pre-filled destinations, and masked SGD.
 * The whole suite runs once with 1 thread and once with 2; with 2, every threaded job
 * (gemm and convolutions over 4 MFLOP) waits for the worker to join (`waitForWorkers`),
 * so the worker's share is tested even when a busy machine would have run it late.
 *
 * Tolerances, stated once: an op passes when max |got - ref| / (1 + |ref|) <= tol, with
 *   EXACT = 0     selects and copies (copy, copyRows =, fill, relu, maxpool forward, masks);
 *   ELEM  = 1e-5  elementwise maths (float32 arithmetic against the reference's float64,
 *                 e.g. leaky's x * 0.1f, sgd's rate / batch folded into one float);
 *   SUM   = 1e-4  reductions and dot products (float32 f32x4 accumulation in a different
 *                 order from the reference's float64 sums, K up to 1500).
 */
import { ReferenceKernels } from '../../src/kernels/reference';
import { WasmSimdKernels } from '../../src/kernels/wasm-simd';
import { ACTIVATIONS } from '../../src/kernels/types';
import type { ConvShape, FloatArray, GemmShape, PoolShape, ShortcutShape, Tensor } from '../../src/kernels/types';
import { mulberry32 } from '../../src/random';

const EXACT = 0;
const ELEM = 1e-5;
const SUM = 1e-4;

/** The worst error of got against want, scaled as the header says, and where it is. */
function worst(got: FloatArray, want: FloatArray): { error: number; at: number } {
  if (got.length !== want.length) throw new Error(`lengths differ: ${got.length} vs ${want.length}`);
  let error = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const e = Number.isNaN(want[i]) && Number.isNaN(got[i]) ? 0 : Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= error)) {
      error = e;
      at = i;
    }
  }
  return { error, at };
}

function expectClose(got: FloatArray, want: FloatArray, tol: number, what: string): void {
  const { error, at } = worst(got, want);
  if (!(error <= tol)) {
    throw new Error(`${what}: error ${error.toExponential(2)} > ${tol} at [${at}]: got ${got[at]}, want ${want[at]}`);
  }
}

function conv(s: Omit<ConvShape, 'outH' | 'outW'>): ConvShape {
  return {
    ...s,
    outH: Math.floor((s.h + 2 * s.pad - s.size) / s.stride) + 1,
    outW: Math.floor((s.w + 2 * s.pad - s.size) / s.stride) + 1,
  };
}

function pool(s: Omit<PoolShape, 'outH' | 'outW'>): PoolShape {
  return {
    ...s,
    outH: Math.floor((s.h + s.padding - s.size) / s.stride) + 1,
    outW: Math.floor((s.w + s.padding - s.size) / s.stride) + 1,
  };
}

/** LeNet-like and odd convolutions; the last three are big enough (> 4 MFLOP) to run threaded. */
const CONV_SHAPES: Record<string, ConvShape> = {
  'lenet conv1 1x28x28 -> 20 5x5': conv({ batch: 2, c: 1, h: 28, w: 28, n: 20, groups: 1, size: 5, stride: 1, pad: 0 }),
  'groups 2, stride 2, pad 1, 9x7': conv({ batch: 3, c: 4, h: 9, w: 7, n: 6, groups: 2, size: 3, stride: 2, pad: 1 }),
  'stride 3, pad 2, 5x5 on 11x8, groups 3': conv({ batch: 2, c: 3, h: 11, w: 8, n: 3, groups: 3, size: 5, stride: 3, pad: 2 }),
  '1x1, 6 -> 4 (in-place backward data)': conv({ batch: 2, c: 6, h: 5, w: 3, n: 4, groups: 1, size: 1, stride: 1, pad: 0 }),
  'batch 1 (positions split between threads), 3x3 pad 1 on 13x11, 5 -> 7': conv({ batch: 1, c: 5, h: 13, w: 11, n: 7, groups: 1, size: 3, stride: 1, pad: 1 }),
  'lenet conv2 20x12x12 -> 50 5x5, batch 3': conv({ batch: 3, c: 20, h: 12, w: 12, n: 50, groups: 1, size: 5, stride: 1, pad: 0 }),
  'K = 325 > KC, 13x17x15 -> 22 5x5 pad 2, batch 5': conv({ batch: 5, c: 13, h: 17, w: 15, n: 22, groups: 1, size: 5, stride: 1, pad: 2 }),
  'groups 2, stride 2, pad 1, 16x31x29 -> 14 3x3, batch 9': conv({ batch: 9, c: 16, h: 31, w: 29, n: 14, groups: 2, size: 3, stride: 2, pad: 1 }),
};

const POOL_SHAPES: Record<string, PoolShape> = {
  'lenet 2x2 / 2, darknet default padding 1, 24x24': pool({ batch: 2, c: 20, h: 24, w: 24, size: 2, stride: 2, padding: 1 }),
  '2x2 / 2, padding 1, odd 9x11 (windows past the edge)': pool({ batch: 2, c: 3, h: 9, w: 11, size: 2, stride: 2, padding: 1 }),
  '2x2 / 2, padding 0, 8x21': pool({ batch: 2, c: 3, h: 8, w: 21, size: 2, stride: 2, padding: 0 }),
  '3x3 / 2, padding 2, 9x7': pool({ batch: 2, c: 3, h: 9, w: 7, size: 3, stride: 2, padding: 2 }),
  '3x3 / 1, padding 2 (darknet default), 5x6': pool({ batch: 1, c: 2, h: 5, w: 6, size: 3, stride: 1, padding: 2 }),
  '2x2 / 2, padding 2 (windows start before the image), 6x10': pool({ batch: 1, c: 2, h: 6, w: 10, size: 2, stride: 2, padding: 2 }),
};

for (const threads of [1, 2]) {
  describe(`[wasm-simd] kernels match the reference, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
    const ref = new ReferenceKernels();
    let k: WasmSimdKernels;
    let random = mulberry32(1);
    beforeAll(async () => {
      k = await WasmSimdKernels.create({ threads, waitForWorkers: true });
    });
    afterAll(() => k?.destroy());
    beforeEach(() => {
      random = mulberry32(12345);
    });

    function values(n: number, scale = 1): Float32Array {
      return Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
    }

    /** The same host values on wasm-simd (g) and on the reference (r). */
    function pair(v: ArrayLike<number>): { g: Tensor; r: Tensor } {
      const g = k.alloc(v.length);
      const r = ref.alloc(v.length);
      k.upload(g, v);
      ref.upload(r, v);
      return { g, r };
    }

    function check(p: { g: Tensor; r: Tensor }, tol: number, what: string): void {
      expectClose(k.read(p.g), ref.read(p.r), tol, `[wasm-simd x${threads}] ${what}`);
    }

    test('[wasm-simd] names itself and its threads', () => {
      expect(k.backend).toBe('wasm-simd');
      expect(k.threads).toBe(threads);
      expect(k.description).toMatch(new RegExp(`^wasm-simd .*${threads} thread`));
    });

    test('[wasm-simd] alloc is zero; upload, read, fill and copy round-trip', () => {
      const t = k.alloc(37);
      expect(Array.from(k.read(t))).toEqual(new Array(37).fill(0));
      const v = values(37);
      k.upload(t, v);
      expect(k.read(t)).toEqual(v);
      const u = k.alloc(37);
      k.copy(u, t);
      k.fill(t, 2.5);
      expect(k.read(u)).toEqual(v);
      expect(Array.from(k.read(t))).toEqual(new Array(37).fill(2.5));
      expect(() => k.upload(t, new Float32Array(36))).toThrow(/36/);
      expect(() => k.copy(u, k.alloc(36))).toThrow(/differ/);
    });

    test('[wasm-simd] tensors survive the memory growing; foreign tensors are refused', () => {
      const v = values(1000);
      const t = pair(v);
      const big = k.alloc(12 * 2 ** 20); // 48 MB: past the initial 16 MB, so the memory grows
      k.fill(big, 1);
      expect(k.read(t.g)).toEqual(v);
      const r = k.read(big);
      expect(r[0] + r[r.length - 1]).toBe(2);
      expect(() => k.fill(ref.alloc(4), 0)).toThrow(/not a tensor of this wasm-simd backend/);
    });

    test('[wasm-simd] axpby, also with x as the destination', () => {
      const x = pair(values(1001));
      const y = pair(values(1001));
      k.axpby(y.g, 0.75, x.g, -1.25);
      ref.axpby(y.r, 0.75, x.r, -1.25);
      check(y, ELEM, 'axpby');
      k.axpby(x.g, 2, x.g, 0.5);
      ref.axpby(x.r, 2, x.r, 0.5);
      check(x, ELEM, 'axpby aliased');
    });

    test('[wasm-simd] copyRows overwrites and accumulates strided rows', () => {
      const src = pair(values(3 * 10));
      const dst = pair(values(3 * 14));
      const rows = { batch: 3, n: 6, srcStride: 10, srcOffset: 3, dstStride: 14, dstOffset: 5 };
      k.copyRows(dst.g, src.g, { ...rows, accumulate: false });
      ref.copyRows(dst.r, src.r, { ...rows, accumulate: false });
      check(dst, EXACT, 'copyRows =');
      k.copyRows(dst.g, src.g, { ...rows, dstOffset: 8, accumulate: true });
      ref.copyRows(dst.r, src.r, { ...rows, dstOffset: 8, accumulate: true });
      check(dst, ELEM, 'copyRows +=');
      expect(() => k.copyRows(dst.g, src.g, { ...rows, dstOffset: 9, accumulate: false })).toThrow(/reach/);
    });

    describe('gemm', () => {
      // small and odd; past KC (K = 263) and NC (N = 1037); M > N (split by rows)
      const SHAPES: [number, number, number][] = [[13, 7, 29], [5, 1037, 263], [301, 70, 45], [1, 9, 1], [131, 40, 600]];
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          test(`[wasm-simd] gemm transA ${transA}, transB ${transB}: odd shapes, alpha 1.5, beta 0.5 / 0 / 1`, () => {
            for (const [M, N, K] of SHAPES) {
              const A = pair(values(M * K));
              const B = pair(values(K * N));
              const C = pair(values(M * N));
              for (const beta of [0.5, 0, 1]) {
                const s = { M, N, K, transA, transB, alpha: 1.5, beta };
                k.gemm(C.g, A.g, B.g, s);
                ref.gemm(C.r, A.r, B.r, s);
                check(C, SUM, `gemm ${M}x${N}x${K} beta ${beta}`);
              }
            }
          });
        }
      }

      test('[wasm-simd] gemm: beta 0 scales C literally (a NaN stays), K = 0 only scales, C may not alias', () => {
        const [M, N, K] = [6, 10, 3];
        const A = pair(values(M * K));
        const B = pair(values(K * N));
        const init = values(M * N);
        init[7] = NaN;
        const C = pair(init);
        const s = { M, N, K, transA: false, transB: false, alpha: 1, beta: 0 };
        k.gemm(C.g, A.g, B.g, s);
        ref.gemm(C.r, A.r, B.r, s);
        expect(k.read(C.g)[7]).toBeNaN();
        check(C, SUM, 'gemm beta 0 with NaN');
        const empty = pair([]);
        const D = pair(values(M * N));
        k.gemm(D.g, empty.g, empty.g, { ...s, K: 0, beta: 0.5 });
        ref.gemm(D.r, empty.r, empty.r, { ...s, K: 0, beta: 0.5 });
        check(D, ELEM, 'gemm K = 0');
        expect(() => k.gemm(C.g, C.g, B.g, { ...s, K: N })).toThrow(/alias/);
        expect(() => k.gemm(C.g, A.g, B.g, { ...s, K: 4 })).toThrow(/A has/);
      });

      test('[wasm-simd] gemm: a K = 1500 dot product of ones is exact', () => {
        const [M, N, K] = [3, 5, 1500];
        const A = pair(new Float32Array(M * K).fill(1));
        const B = pair(new Float32Array(K * N).fill(1));
        const C = pair(new Float32Array(M * N));
        k.gemm(C.g, A.g, B.g, { M, N, K, transA: false, transB: true, alpha: 1, beta: 0 });
        expect(Array.from(k.read(C.g))).toEqual(new Array(M * N).fill(K));
      });

      test('[wasm-simd] gemm: LeNet connected shapes, 64 x 800 -> 500, forward and both backward gemms', () => {
        const [batch, inputs, outputs] = [64, 800, 500];
        const x = pair(values(batch * inputs));
        const w = pair(values(outputs * inputs, 0.05));
        const y = pair(values(batch * outputs));
        const dy = pair(values(batch * outputs));
        const dw = pair(values(outputs * inputs));
        const dx = pair(values(batch * inputs));
        const forward: GemmShape = { M: batch, N: outputs, K: inputs, transA: false, transB: true, alpha: 1, beta: 1 };
        const filter: GemmShape = { M: outputs, N: inputs, K: batch, transA: true, transB: false, alpha: 1, beta: 1 };
        const data: GemmShape = { M: batch, N: inputs, K: outputs, transA: false, transB: false, alpha: 1, beta: 1 };
        for (const [C, A, B, s] of [[y, x, w, forward], [dw, dy, x, filter], [dx, dy, w, data]] as const) {
          k.gemm(C.g, A.g, B.g, s);
          ref.gemm(C.r, A.r, B.r, s);
          check(C, SUM, `gemm ${s.M}x${s.N}x${s.K}`);
        }
      });
    });

    describe('convolution', () => {
      for (const [name, s] of Object.entries(CONV_SHAPES)) {
        test(`[wasm-simd] conv ${name}: forward, backward filter and data (+= into pre-filled destinations)`, () => {
          const cpg = s.c / s.groups;
          const input = pair(values(s.batch * s.c * s.h * s.w));
          const weights = pair(values(s.n * cpg * s.size * s.size, 0.5));
          const out = pair(values(s.batch * s.n * s.outH * s.outW)); // overwritten
          k.convForward(out.g, input.g, weights.g, s);
          ref.convForward(out.r, input.r, weights.r, s);
          check(out, SUM, 'convForward');

          const delta = pair(values(s.batch * s.n * s.outH * s.outW));
          const weightUpdates = pair(values(weights.r.size)); // += keeps these
          k.convBackwardFilter(weightUpdates.g, delta.g, input.g, s);
          ref.convBackwardFilter(weightUpdates.r, delta.r, input.r, s);
          check(weightUpdates, SUM, 'convBackwardFilter');

          const inputDelta = pair(values(input.r.size));
          k.convBackwardData(inputDelta.g, delta.g, weights.g, s);
          ref.convBackwardData(inputDelta.r, delta.r, weights.r, s);
          check(inputDelta, SUM, 'convBackwardData');
        });
      }

      test('[wasm-simd] conv: += really adds: backward twice from zero is twice backward once', () => {
        const s = CONV_SHAPES['lenet conv2 20x12x12 -> 50 5x5, batch 3'];
        const input = pair(values(s.batch * s.c * s.h * s.w));
        const delta = pair(values(s.batch * s.n * s.outH * s.outW));
        const weights = pair(values(s.n * s.c * s.size * s.size));
        for (const op of ['filter', 'data'] as const) {
          const size = op === 'filter' ? weights.r.size : input.r.size;
          const once = k.alloc(size);
          const twice = k.alloc(size);
          for (const [t, times] of [[once, 1], [twice, 2]] as const) {
            for (let i = 0; i < times; i++) {
              if (op === 'filter') k.convBackwardFilter(t, delta.g, input.g, s);
              else k.convBackwardData(t, delta.g, weights.g, s);
            }
          }
          expectClose(k.read(twice), k.read(once).map((v) => 2 * v), ELEM, `twice ${op}`);
        }
      });

      test('[wasm-simd] conv: a shape that does not add up is refused', () => {
        const s = CONV_SHAPES['lenet conv1 1x28x28 -> 20 5x5'];
        const t = (n: number): Tensor => k.alloc(n);
        expect(() => k.convForward(t(2 * 20 * 24 * 24), t(2 * 28 * 28), t(500), { ...s, outH: 23 })).toThrow(/outH/);
        expect(() => k.convForward(t(2 * 20 * 24 * 24), t(2 * 28 * 28), t(499), s)).toThrow(/weights/);
        expect(() => k.convForward(t(2 * 20 * 24 * 24), t(2 * 28 * 28), t(500), { ...s, groups: 3 })).toThrow(/groups/);
      });
    });

    describe('per-channel ops', () => {
      const s = { batch: 3, channels: 5, spatial: 37 };
      const n = s.batch * s.channels * s.spatial;

      test('[wasm-simd] addBias and scaleBias', () => {
        const x = pair(values(n));
        const b = pair(values(s.channels));
        k.addBias(x.g, b.g, s);
        ref.addBias(x.r, b.r, s);
        check(x, ELEM, 'addBias');
        k.scaleBias(x.g, b.g, s);
        ref.scaleBias(x.r, b.r, s);
        check(x, ELEM, 'scaleBias');
      });

      test('[wasm-simd] backwardBias and backwardScale add into pre-filled updates', () => {
        const delta = pair(values(n));
        const xNorm = pair(values(n));
        const bias = pair(values(s.channels));
        const scale = pair(values(s.channels));
        k.backwardBias(bias.g, delta.g, s);
        ref.backwardBias(bias.r, delta.r, s);
        check(bias, SUM, 'backwardBias');
        k.backwardScale(scale.g, xNorm.g, delta.g, s);
        ref.backwardScale(scale.r, xNorm.r, delta.r, s);
        check(scale, SUM, 'backwardScale');
      });

      test('[wasm-simd] a reduction over 5000 values', () => {
        const big = { batch: 1, channels: 3, spatial: 5000 };
        const ones = pair(new Float32Array(3 * 5000).fill(1));
        const bias = pair(new Float32Array(3));
        k.backwardBias(bias.g, ones.g, big);
        expect(Array.from(k.read(bias.g))).toEqual([5000, 5000, 5000]);
        const x = pair(values(3 * 5000));
        k.backwardBias(bias.g, x.g, big);
        ref.backwardBias(bias.r, ones.r, big);
        ref.backwardBias(bias.r, x.r, big);
        check(bias, SUM, 'backwardBias 5000');
      });

      test('[wasm-simd] batchnormStats, normalize in place, batchnormBackward', () => {
        const x = pair(values(n, 3).map((v) => v + 1));
        const mean = pair(values(s.channels));
        const variance = pair(values(s.channels));
        k.batchnormStats(mean.g, variance.g, x.g, s);
        ref.batchnormStats(mean.r, variance.r, x.r, s);
        check(mean, SUM, 'batch mean');
        check(variance, SUM, 'batch variance');
        k.normalize(x.g, x.g, mean.g, variance.g, 1e-5, s);
        ref.normalize(x.r, x.r, mean.r, variance.r, 1e-5, s);
        check(x, SUM, 'normalize');
        const dxhat = pair(values(n));
        const out = pair(values(n));
        k.batchnormBackward(out.g, dxhat.g, x.g, variance.g, 1e-5, s);
        ref.batchnormBackward(out.r, dxhat.r, x.r, variance.r, 1e-5, s);
        check(out, SUM, 'batchnormBackward');
        expect(() => k.batchnormBackward(out.g, out.g, x.g, variance.g, 1e-5, s)).toThrow(/alias/);
      });
    });

    describe('activations', () => {
      for (const act of ACTIVATIONS) {
        test(`[wasm-simd] ${act}: activate in place and out of place, gradient from the output`, () => {
          // scale 6 covers every branch (plse's +-4, stair's steps, hardtan's +-1); 515 is not a multiple of 4
          const v = values(515, 6);
          const src = pair(v);
          const dst = pair(new Float32Array(v.length));
          k.activate(dst.g, src.g, act);
          ref.activate(dst.r, src.r, act);
          check(dst, act === 'relu' || act === 'linear' ? EXACT : ELEM, `activate ${act}`);
          k.activate(src.g, src.g, act);
          ref.activate(src.r, src.r, act);
          check(src, ELEM, `activate ${act} in place`);
          const delta = pair(values(v.length));
          k.gradient(delta.g, src.g, act);
          ref.gradient(delta.r, src.r, act);
          check(delta, ELEM, `gradient ${act}`);
        });
      }

      test('[wasm-simd] an unknown activation is refused', () => {
        const t = k.alloc(4);
        expect(() => k.activate(t, t, 'swish' as never)).toThrow(/unknown activation/);
      });
    });

    describe('pooling', () => {
      for (const [name, s] of Object.entries(POOL_SHAPES)) {
        test(`[wasm-simd] maxpool ${name}, with ties (first tap wins) and += backward`, () => {
          // values from {0, 1, 2}: many windows tie, so the tie rule decides the backward
          const input = pair(Float32Array.from({ length: s.batch * s.c * s.h * s.w }, () => Math.floor(random() * 3)));
          const out = pair(new Float32Array(s.batch * s.c * s.outH * s.outW));
          k.maxpoolForward(out.g, input.g, s);
          ref.maxpoolForward(out.r, input.r, s);
          check(out, EXACT, 'maxpoolForward');
          const delta = pair(values(out.r.size));
          const inputDelta = pair(values(input.r.size));
          k.maxpoolBackward(inputDelta.g, delta.g, input.g, s);
          ref.maxpoolBackward(inputDelta.r, delta.r, input.r, s);
          check(inputDelta, ELEM, 'maxpoolBackward');
          // and on distinct random values
          const noisy = pair(values(input.r.size));
          k.maxpoolForward(out.g, noisy.g, s);
          ref.maxpoolForward(out.r, noisy.r, s);
          check(out, EXACT, 'maxpoolForward, random');
          k.maxpoolBackward(inputDelta.g, delta.g, noisy.g, s);
          ref.maxpoolBackward(inputDelta.r, delta.r, noisy.r, s);
          check(inputDelta, ELEM, 'maxpoolBackward, random');
        });
      }

      test('[wasm-simd] avgpool forward and += backward', () => {
        const s = { batch: 3, channels: 7, spatial: 23 };
        const input = pair(values(s.batch * s.channels * s.spatial));
        const out = pair(new Float32Array(s.batch * s.channels));
        k.avgpoolForward(out.g, input.g, s);
        ref.avgpoolForward(out.r, input.r, s);
        check(out, SUM, 'avgpoolForward');
        k.avgpoolBackward(input.g, out.g, s);
        ref.avgpoolBackward(input.r, out.r, s);
        check(input, ELEM, 'avgpoolBackward');
      });
    });

    describe('softmax and losses', () => {
      test('[wasm-simd] softmax with groups and temperature; cross-entropy delta and loss', () => {
        const s = { batch: 5, inputs: 12, groups: 3, temperature: 0.7 };
        const input = pair(values(s.batch * s.inputs, 4));
        const out = pair(new Float32Array(input.r.size));
        k.softmax(out.g, input.g, s);
        ref.softmax(out.r, input.r, s);
        check(out, ELEM, 'softmax');
        const truth = pair(Float32Array.from({ length: input.r.size }, (_, i) => (i % 4 === 1 ? 1 : 0)));
        const delta = pair(values(input.r.size));
        const loss = k.softmaxCrossEntropy(delta.g, out.g, truth.g);
        const want = ref.softmaxCrossEntropy(delta.r, out.r, truth.r);
        check(delta, ELEM, 'softmaxCrossEntropy delta');
        expect(Math.abs(loss - want) / (1 + Math.abs(want))).toBeLessThanOrEqual(ELEM);
      });

      test('[wasm-simd] cross-entropy loss over 64 x 1000', () => {
        const n = 64 * 1000;
        const out = pair(Float32Array.from({ length: n }, () => 0.001 + random() * 0.998));
        const truth = pair(Float32Array.from({ length: n }, (_, i) => (i % 1000 === (i / 1000 | 0) ? 1 : 0)));
        const delta = pair(new Float32Array(n));
        const loss = k.softmaxCrossEntropy(delta.g, out.g, truth.g);
        const want = ref.softmaxCrossEntropy(delta.r, out.r, truth.r);
        expect(Math.abs(loss - want) / (1 + Math.abs(want))).toBeLessThanOrEqual(ELEM);
        check(delta, ELEM, 'delta');
      });

      for (const type of ['sse', 'L1', 'smooth'] as const) {
        test(`[wasm-simd] cost ${type}: delta and summed error`, () => {
          const pred = pair(values(777, 3));
          const truth = pair(values(777, 3));
          const delta = pair(values(777));
          const error = k.cost(delta.g, pred.g, truth.g, type);
          const want = ref.cost(delta.r, pred.r, truth.r, type);
          check(delta, ELEM, `cost ${type} delta`);
          expect(Math.abs(error - want) / (1 + Math.abs(want))).toBeLessThanOrEqual(SUM);
        });
      }
    });

    describe('dropout and shortcut', () => {
      for (const accumulate of [false, true]) {
        test(`[wasm-simd] dropout, accumulate ${accumulate}`, () => {
          const src = pair(values(301));
          const rand = pair(Float32Array.from({ length: 301 }, () => random()));
          const dst = pair(values(301));
          k.dropout(dst.g, src.g, rand.g, 0.3, 1 / 0.7, accumulate);
          ref.dropout(dst.r, src.r, rand.r, 0.3, 1 / 0.7, accumulate);
          check(dst, ELEM, 'dropout');
        });
      }

      const SHORTCUTS: Record<string, ShortcutShape> = {
        'same shape': { batch: 2, w1: 6, h1: 5, c1: 3, w2: 6, h2: 5, c2: 3 },
        'add downsampled (stride 2), fewer channels out': { batch: 2, w1: 8, h1: 6, c1: 4, w2: 4, h2: 3, c2: 3 },
        'add upsampled (sample 2), more channels out': { batch: 2, w1: 3, h1: 2, c1: 2, w2: 6, h2: 4, c2: 5 },
      };
      for (const [name, s] of Object.entries(SHORTCUTS)) {
        test(`[wasm-simd] shortcut, ${name}`, () => {
          const add = pair(values(s.batch * s.c1 * s.h1 * s.w1));
          const out = pair(values(s.batch * s.c2 * s.h2 * s.w2));
          k.shortcut(out.g, add.g, 0.5, 2, s);
          ref.shortcut(out.r, add.r, 0.5, 2, s);
          check(out, ELEM, 'shortcut');
        });
      }
    });

    describe('sgdUpdate', () => {
      test('[wasm-simd] sgdUpdate unmasked: matches the reference over 10 steps', () => {
        const p = { rate: 0.01, momentum: 0.9, decay: 0.0005, batch: 64 };
        const w = pair(values(1234));
        const u = pair(values(1234));
        for (let step = 0; step < 10; step++) {
          const g = pair(values(1234, 10));
          k.axpby(u.g, 1, g.g, 1);
          ref.axpby(u.r, 1, g.r, 1);
          k.sgdUpdate(w.g, u.g, null, p);
          ref.sgdUpdate(w.r, u.r, null, p);
        }
        check(w, ELEM, 'weights');
        check(u, ELEM, 'updates');
      });

      test('[wasm-simd] sgdUpdate masked for 100 steps (momentum 0.9, decay 0.0005): masked weights and updates stay exactly +0', () => {
        const n = 2001; // not a multiple of 4: the scalar tail is masked too
        const p = { rate: 0.1, momentum: 0.9, decay: 0.0005, batch: 64 };
        const mask = pair(Float32Array.from({ length: n }, () => (random() < 0.6 ? 0 : 1)));
        const w = pair(values(n));
        const u = pair(values(n));
        const gradient = k.alloc(n);
        const gradientRef = ref.alloc(n);
        for (let step = 0; step < 100; step++) {
          const g = values(n, 5);
          k.upload(gradient, g);
          ref.upload(gradientRef, g);
          k.axpby(u.g, 1, gradient, 1);
          ref.axpby(u.r, 1, gradientRef, 1);
          k.sgdUpdate(w.g, u.g, mask.g, p);
          ref.sgdUpdate(w.r, u.r, mask.r, p);
        }
        const m = ref.read(mask.r);
        const weights = k.read(w.g);
        const updates = k.read(u.g);
        let masked = 0;
        for (let i = 0; i < n; i++) {
          if (m[i] !== 0) continue;
          masked++;
          if (!Object.is(weights[i], 0) || !Object.is(updates[i], 0)) {
            throw new Error(`masked [${i}] revived: weight ${weights[i]}, update ${updates[i]}`);
          }
        }
        expect(masked).toBeGreaterThan(1000);
        // the kept weights move as the reference's do (100 steps of float32 drift: SUM)
        check(w, SUM, 'masked weights');
        check(u, SUM, 'masked updates');
      });
    });

    describe('bookkeeping', () => {
      test('[wasm-simd] readbacks count reads and scalar results only; the module is compiled once', () => {
        const before = k.stats();
        const a = pair(values(64 * 10));
        const b = k.alloc(64 * 10);
        k.softmax(b, a.g, { batch: 64, inputs: 10, groups: 1, temperature: 1 });
        k.gemm(k.alloc(64 * 64), a.g, b, { M: 64, N: 64, K: 10, transA: false, transB: true, alpha: 1, beta: 0 });
        expect(k.stats().readbacks).toBe(before.readbacks);
        k.read(b);
        k.softmaxCrossEntropy(k.alloc(640), b, a.g);
        k.cost(k.alloc(640), b, a.g, 'sse');
        expect(k.stats()).toEqual({ compiled: before.compiled, readbacks: before.readbacks + 3 });
      });

      test(`[wasm-simd] ${threads > 1 ? 'the worker did part of the threaded jobs above' : 'one thread dispatches nothing'}`, () => {
        const { jobs, workerUnits } = k.threadStats();
        if (threads > 1) {
          expect(jobs).toBeGreaterThan(10);
          expect(workerUnits).toBeGreaterThan(jobs / 2);
        } else {
          expect({ jobs, workerUnits }).toEqual({ jobs: 0, workerUnits: 0 });
        }
      });
    });
  });
}

test('[wasm-simd] without waitForWorkers, threaded jobs match the reference however the units fall', async () => {
  const k = await WasmSimdKernels.create({ threads: 2 });
  const ref = new ReferenceKernels();
  const random = mulberry32(3);
  const s = CONV_SHAPES['K = 325 > KC, 13x17x15 -> 22 5x5 pad 2, batch 5'];
  const both = (n: number): { g: Tensor; r: Tensor } => {
    const v = Float32Array.from({ length: n }, () => random() * 2 - 1);
    const g = k.alloc(n);
    const r = ref.alloc(n);
    k.upload(g, v);
    ref.upload(r, v);
    return { g, r };
  };
  const input = both(s.batch * s.c * s.h * s.w);
  const delta = both(s.batch * s.n * s.outH * s.outW);
  const weightUpdates = both(s.n * s.c * s.size * s.size);
  for (let i = 0; i < 5; i++) {
    k.convBackwardFilter(weightUpdates.g, delta.g, input.g, s);
    ref.convBackwardFilter(weightUpdates.r, delta.r, input.r, s);
  }
  expectClose(k.read(weightUpdates.g), ref.read(weightUpdates.r), SUM, 'convBackwardFilter x5');
  k.destroy();
});

test('[wasm-simd] destroy stops the threads; its tensors are refused afterwards', async () => {
  const k = await WasmSimdKernels.create({ threads: 2 });
  const t = k.alloc(8);
  k.destroy();
  k.destroy(); // twice is harmless
  expect(() => k.read(t)).toThrow(/destroyed/);
  await expect(WasmSimdKernels.create({ threads: 0 })).rejects.toThrow(/threads/);
});
