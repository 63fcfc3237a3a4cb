/**
 * Every op of every backend against the plain TypeScript reference (float32), on random
 * inputs with LeNet-like and odd shapes (see compare.ts for the shapes and the tolerances:
 * EXACT for selects and copies, ELEM elementwise, SUM for sums), once per backend that
 * starts here, and once more on wasm-simd with a single thread (the default runs one per
 * core; wasm-simd.test.ts checks what its threads do).
 */
import { createKernels, probeBackends } from '../../src/kernels/backend';
import { WasmSimdKernels } from '../../src/kernels/wasm-simd';
import { ACTIVATIONS, GRADIENT_FROM_INPUT } from '../../src/kernels/types';
import type { Kernels, PoolShape, ShortcutShape, Tensor } from '../../src/kernels/types';
import { DarknetError } from '../../src/errors';
import { type BackendVariant, describeEachBackend } from '../backends';
import {
  comparing, CONV_SHAPES, ELEM, EXACT, expectClose, expectConvMatches, expectGemmMatches, GEMM_SHAPES, pool, SUM,
} from './compare';

const POOL_SHAPES: Record<string, PoolShape> = {
  'lenet 2x2 / 2, darknet default padding 1, 24x24': pool({ batch: 2, c: 20, h: 24, w: 24, size: 2, stride: 2, padding: 1 }),
  '2x2 / 2, padding 1, odd 9x11 (windows past the edge)': pool({ batch: 2, c: 3, h: 9, w: 11, size: 2, stride: 2, padding: 1 }),
  '2x2 / 2, padding 0, 8x21': pool({ batch: 2, c: 3, h: 8, w: 21, size: 2, stride: 2, padding: 0 }),
  '3x3 / 2, padding 2, 9x7': pool({ batch: 2, c: 3, h: 9, w: 7, size: 3, stride: 2, padding: 2 }),
  '3x3 / 1, padding 2 (darknet default), 5x6': pool({ batch: 1, c: 2, h: 5, w: 6, size: 3, stride: 1, padding: 2 }),
  '2x2 / 2, padding 2 (windows start before the image), 6x10': pool({ batch: 1, c: 2, h: 6, w: 10, size: 2, stride: 2, padding: 2 }),
};

/** wasm-simd's default runs big gemms and convolutions on one thread per core; this runs all on one. */
const ONE_THREAD: BackendVariant = { backend: 'wasm-simd', label: '1 thread', create: () => WasmSimdKernels.create({ threads: 1 }) };

describeEachBackend('kernels match the reference', (backend, get) => {
  const c = comparing(get, backend);
  const { ref, values, pair, check, random } = c;
  beforeEach(c.reseed);

  test('description names the gpu.js kernel class, and nothing fell back', () => {
    const k = get();
    expect(k.backend).toBe(backend);
    if (backend === 'wasm-simd') expect(k.description).toMatch(/^wasm-simd \(AssemblyScript/);
    else expect(k.description).toMatch(/gpu\.js (CPUKernel|WebAssemblyKernel|HeadlessGLKernel|WebGPUKernel)/);
    expect(k.description).not.toMatch(/fell back/);
  });

  test('alloc is zero; upload, read, fill and copy round-trip; wrong sizes and foreign tensors are refused', () => {
    const k = get();
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
    expect(() => k.fill(ref.alloc(4), 0)).toThrow(/not a tensor of this/);
  });

  test('axpby, also with x as the destination', () => {
    const x = pair(values(1001));
    const y = pair(values(1001));
    get().axpby(y.g, 0.75, x.g, -1.25);
    ref.axpby(y.r, 0.75, x.r, -1.25);
    check(y, ELEM, 'axpby');
    get().axpby(x.g, 2, x.g, 0.5);
    ref.axpby(x.r, 2, x.r, 0.5);
    check(x, ELEM, 'axpby aliased');
  });

  test('copyRows overwrites and accumulates strided rows', () => {
    const src = pair(values(3 * 10));
    const dst = pair(values(3 * 14));
    const rows = { batch: 3, n: 6, srcStride: 10, srcOffset: 3, dstStride: 14, dstOffset: 5 };
    get().copyRows(dst.g, src.g, { ...rows, accumulate: false });
    ref.copyRows(dst.r, src.r, { ...rows, accumulate: false });
    check(dst, EXACT, 'copyRows =');
    get().copyRows(dst.g, src.g, { ...rows, dstOffset: 8, accumulate: true });
    ref.copyRows(dst.r, src.r, { ...rows, dstOffset: 8, accumulate: true });
    check(dst, ELEM, 'copyRows +=');
    expect(() => get().copyRows(dst.g, src.g, { ...rows, dstOffset: 9, accumulate: false })).toThrow(/reach/);
  });

  describe('gemm', () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        test(`transA ${transA}, transB ${transB}: odd shapes, alpha 1.5, beta 0.5 / 0 / 1`, () => {
          for (const shape of GEMM_SHAPES) expectGemmMatches(c, shape, transA, transB);
        });
      }
    }

    test('C may not alias A or B; sizes must add up', () => {
      const k = get();
      const [M, N, K] = [6, 10, 3];
      const A = pair(values(M * K));
      const B = pair(values(K * N));
      const C = pair(values(M * N));
      const s = { M, N, K, transA: false, transB: false, alpha: 1, beta: 0.5 };
      expect(() => k.gemm(C.g, C.g, B.g, { ...s, K: N })).toThrow(/alias/);
      expect(() => k.gemm(C.g, A.g, B.g, { ...s, K: 4 })).toThrow(/A has/);
    });

    test('a K = 1500 loop is not cut at loopMaxIterations (1000)', () => {
      const [M, N, K] = [3, 5, 1500];
      const A = pair(new Float32Array(M * K).fill(1));
      const B = pair(values(K * N));
      const C = pair(new Float32Array(M * N));
      const s = { M, N, K, transA: false, transB: true, alpha: 1, beta: 0 };
      get().gemm(C.g, A.g, B.g, s);
      ref.gemm(C.r, A.r, B.r, s);
      check(C, SUM, 'gemm K=1500');
      // all-ones: the sums are exactly K, which a loop cut at 1000 would miss by a third
      const ones = pair(new Float32Array(K * N).fill(1));
      get().gemm(C.g, A.g, ones.g, s);
      expect(Array.from(get().read(C.g))).toEqual(new Array(M * N).fill(K));
    });

    test('LeNet connected shapes: 64 x 800 -> 500, forward and both backward gemms', () => {
      const [batch, inputs, outputs] = [64, 800, 500];
      const x = pair(values(batch * inputs));
      const w = pair(values(outputs * inputs, 0.05));
      const y = pair(values(batch * outputs));
      const dy = pair(values(batch * outputs));
      const dw = pair(values(outputs * inputs));
      const dx = pair(values(batch * inputs));
      const forward = { M: batch, N: outputs, K: inputs, transA: false, transB: true, alpha: 1, beta: 1 };
      const filter = { M: outputs, N: inputs, K: batch, transA: true, transB: false, alpha: 1, beta: 1 };
      const data = { M: batch, N: inputs, K: outputs, transA: false, transB: false, alpha: 1, beta: 1 };
      for (const [C, A, B, s] of [[y, x, w, forward], [dw, dy, x, filter], [dx, dy, w, data]] as const) {
        get().gemm(C.g, A.g, B.g, s);
        ref.gemm(C.r, A.r, B.r, s);
        check(C, SUM, `gemm ${s.M}x${s.N}x${s.K}`);
      }
    });
  });

  describe('convolution', () => {
    for (const [name, s] of Object.entries(CONV_SHAPES)) {
      test(`${name}: forward, backward filter and data (+= into pre-filled destinations)`, () => {
        expectConvMatches(c, s);
      });
    }

    test('+= really adds: backward twice from zero is twice backward once', () => {
      const k = get();
      const s = CONV_SHAPES['groups 2, stride 2, pad 1, 9x7'];
      const input = pair(values(s.batch * s.c * s.h * s.w));
      const delta = pair(values(s.batch * s.n * s.outH * s.outW));
      const weights = pair(values(s.n * (s.c / s.groups) * s.size * s.size));
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

    test('a shape that does not add up is refused', () => {
      const k = get();
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

    test('addBias and scaleBias', () => {
      const x = pair(values(n));
      const b = pair(values(s.channels));
      get().addBias(x.g, b.g, s);
      ref.addBias(x.r, b.r, s);
      check(x, ELEM, 'addBias');
      get().scaleBias(x.g, b.g, s);
      ref.scaleBias(x.r, b.r, s);
      check(x, ELEM, 'scaleBias');
    });

    test('backwardBias and backwardScale add into pre-filled updates', () => {
      const delta = pair(values(n));
      const xNorm = pair(values(n));
      const bias = pair(values(s.channels));
      const scale = pair(values(s.channels));
      get().backwardBias(bias.g, delta.g, s);
      ref.backwardBias(bias.r, delta.r, s);
      check(bias, SUM, 'backwardBias');
      get().backwardScale(scale.g, xNorm.g, delta.g, s);
      ref.backwardScale(scale.r, xNorm.r, delta.r, s);
      check(scale, SUM, 'backwardScale');
    });

    test('a reduction over 5000 values is not cut at loopMaxIterations (1000)', () => {
      const big = { batch: 1, channels: 3, spatial: 5000 };
      const ones = pair(new Float32Array(3 * 5000).fill(1));
      const bias = pair(new Float32Array(3));
      get().backwardBias(bias.g, ones.g, big);
      expect(Array.from(get().read(bias.g))).toEqual([5000, 5000, 5000]);
      const x = pair(values(3 * 5000));
      get().backwardBias(bias.g, x.g, big);
      ref.backwardBias(bias.r, ones.r, big);
      ref.backwardBias(bias.r, x.r, big);
      check(bias, SUM, 'backwardBias 5000');
    });

    test('batchnormStats, normalize in place, batchnormBackward', () => {
      const x = pair(values(n, 3).map((v) => v + 1));
      const mean = pair(values(s.channels));
      const variance = pair(values(s.channels));
      get().batchnormStats(mean.g, variance.g, x.g, s);
      ref.batchnormStats(mean.r, variance.r, x.r, s);
      check(mean, SUM, 'batch mean');
      check(variance, SUM, 'batch variance');
      get().normalize(x.g, x.g, mean.g, variance.g, 1e-5, s);
      ref.normalize(x.r, x.r, mean.r, variance.r, 1e-5, s);
      check(x, SUM, 'normalize');
      const dxhat = pair(values(n));
      const out = pair(values(n));
      get().batchnormBackward(out.g, dxhat.g, x.g, variance.g, 1e-5, s);
      ref.batchnormBackward(out.r, dxhat.r, x.r, variance.r, 1e-5, s);
      check(out, SUM, 'batchnormBackward');
      expect(() => get().batchnormBackward(out.g, out.g, x.g, variance.g, 1e-5, s)).toThrow(/alias/);
    });
  });

  describe('activations', () => {
    for (const act of ACTIVATIONS) {
      test(`${act}: activate in place and out of place, gradient from the ${GRADIENT_FROM_INPUT.has(act) ? 'input' : 'output'}`, () => {
        // scale 6 covers every branch (plse's +-4, stair's steps, hardtan's +-1); 515 is not a multiple of 4
        const v = values(515, 6);
        const src = pair(v);
        const dst = pair(new Float32Array(v.length));
        get().activate(dst.g, src.g, act);
        ref.activate(dst.r, src.r, act);
        check(dst, act === 'relu' || act === 'linear' ? EXACT : ELEM, `activate ${act}`);
        get().activate(src.g, src.g, act);
        ref.activate(src.r, src.r, act);
        check(src, ELEM, `activate ${act} in place`);
        const delta = pair(values(v.length));
        // mish's gradient takes the activation's input (GRADIENT_FROM_INPUT)
        const at = GRADIENT_FROM_INPUT.has(act) ? pair(v) : src;
        get().gradient(delta.g, at.g, act);
        ref.gradient(delta.r, at.r, act);
        check(delta, ELEM, `gradient ${act}`);
      });
    }

    test('an unknown activation is refused', () => {
      const t = get().alloc(4);
      expect(() => get().activate(t, t, 'swish' as never)).toThrow(/unknown activation/);
    });
  });

  describe('pooling', () => {
    for (const [name, s] of Object.entries(POOL_SHAPES)) {
      test(`maxpool ${name}, with ties (first tap wins) and on distinct values; += backward`, () => {
        const n = s.batch * s.c * s.h * s.w;
        // values from {0, 1, 2}: many windows tie, so the tie rule decides the backward
        const ties = Float32Array.from({ length: n }, () => Math.floor(random() * 3));
        const out = pair(new Float32Array(s.batch * s.c * s.outH * s.outW));
        const delta = pair(values(out.r.size));
        const inputDelta = pair(values(n));
        for (const [kind, v] of [['ties', ties], ['distinct', values(n)]] as const) {
          const input = pair(v);
          get().maxpoolForward(out.g, input.g, s);
          ref.maxpoolForward(out.r, input.r, s);
          check(out, EXACT, `maxpoolForward, ${kind}`);
          get().maxpoolBackward(inputDelta.g, delta.g, input.g, s);
          ref.maxpoolBackward(inputDelta.r, delta.r, input.r, s);
          check(inputDelta, ELEM, `maxpoolBackward, ${kind}`);
        }
      });
    }

    test('avgpool forward and += backward', () => {
      const s = { batch: 3, channels: 7, spatial: 23 };
      const input = pair(values(s.batch * s.channels * s.spatial));
      const out = pair(new Float32Array(s.batch * s.channels));
      get().avgpoolForward(out.g, input.g, s);
      ref.avgpoolForward(out.r, input.r, s);
      check(out, SUM, 'avgpoolForward');
      get().avgpoolBackward(input.g, out.g, s);
      ref.avgpoolBackward(input.r, out.r, s);
      check(input, ELEM, 'avgpoolBackward');
    });
  });

  describe('softmax and losses', () => {
    test('softmax with groups and temperature; cross-entropy delta and loss', () => {
      const s = { batch: 5, inputs: 12, groups: 3, temperature: 0.7 };
      const input = pair(values(s.batch * s.inputs, 4));
      const out = pair(new Float32Array(input.r.size));
      get().softmax(out.g, input.g, s);
      ref.softmax(out.r, input.r, s);
      check(out, ELEM, 'softmax');
      const truth = pair(Float32Array.from({ length: input.r.size }, (_, i) => (i % 4 === 1 ? 1 : 0)));
      const delta = pair(values(input.r.size));
      const loss = get().softmaxCrossEntropy(delta.g, out.g, truth.g);
      const want = ref.softmaxCrossEntropy(delta.r, out.r, truth.r);
      check(delta, ELEM, 'softmaxCrossEntropy delta');
      expect(Math.abs(loss - want) / (1 + Math.abs(want))).toBeLessThanOrEqual(ELEM);
    });

    test('cross-entropy loss over 64 x 1000 (several partial sums)', () => {
      const n = 64 * 1000;
      const out = pair(Float32Array.from({ length: n }, () => 0.001 + random() * 0.998));
      const truth = pair(Float32Array.from({ length: n }, (_, i) => (i % 1000 === (i / 1000 | 0) ? 1 : 0)));
      const delta = pair(new Float32Array(n));
      const loss = get().softmaxCrossEntropy(delta.g, out.g, truth.g);
      const want = ref.softmaxCrossEntropy(delta.r, out.r, truth.r);
      expect(Math.abs(loss - want) / (1 + Math.abs(want))).toBeLessThanOrEqual(ELEM);
      check(delta, ELEM, 'delta');
    });

    for (const type of ['sse', 'L1', 'smooth'] as const) {
      test(`cost ${type}: delta and summed error`, () => {
        const pred = pair(values(777, 3));
        const truth = pair(values(777, 3));
        const delta = pair(values(777));
        const error = get().cost(delta.g, pred.g, truth.g, type);
        const want = ref.cost(delta.r, pred.r, truth.r, type);
        check(delta, ELEM, `cost ${type} delta`);
        expect(Math.abs(error - want) / (1 + Math.abs(want))).toBeLessThanOrEqual(SUM);
      });
    }
  });

  describe('dropout and shortcut', () => {
    for (const accumulate of [false, true]) {
      test(`dropout, accumulate ${accumulate}`, () => {
        const src = pair(values(301));
        const rand = pair(Float32Array.from({ length: 301 }, () => random()));
        const dst = pair(values(301));
        get().dropout(dst.g, src.g, rand.g, 0.3, 1 / 0.7, accumulate);
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
      test(`shortcut, ${name}`, () => {
        const add = pair(values(s.batch * s.c1 * s.h1 * s.w1));
        const out = pair(values(s.batch * s.c2 * s.h2 * s.w2));
        get().shortcut(out.g, add.g, 0.5, 2, s);
        ref.shortcut(out.r, add.r, 0.5, 2, s);
        check(out, ELEM, 'shortcut');
      });
    }
  });

  describe('sgdUpdate', () => {
    test('unmasked: matches the reference over 10 steps', () => {
      const p = { rate: 0.01, momentum: 0.9, decay: 0.0005, batch: 64 };
      const w = pair(values(1234));
      const u = pair(values(1234));
      for (let step = 0; step < 10; step++) {
        const g = pair(values(1234, 10));
        get().axpby(u.g, 1, g.g, 1);
        ref.axpby(u.r, 1, g.r, 1);
        get().sgdUpdate(w.g, u.g, null, p);
        ref.sgdUpdate(w.r, u.r, null, p);
      }
      check(w, ELEM, 'weights');
      check(u, ELEM, 'updates');
    });

    test('masked for 100 steps (momentum 0.9, decay 0.0005): every masked weight and update stays exactly +0', () => {
      const k = get();
      const n = 2001; // not a multiple of 4: wasm-simd's scalar tail is masked too
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

  describe('caching and readbacks', () => {
    /** A small forward and backward pass through conv, bias, activation, pool, connected, softmax. */
    function trainStep(k: Kernels, t: Record<string, Tensor>): void {
      const s = CONV_SHAPES['groups 2, stride 2, pad 1, 9x7'];
      const ch = { batch: s.batch, channels: s.n, spatial: s.outH * s.outW };
      const ps = pool({ batch: s.batch, c: s.n, h: s.outH, w: s.outW, size: 2, stride: 2, padding: 0 });
      const pooled = s.n * ps.outH * ps.outW;
      k.convForward(t.conv, t.input, t.weights, s);
      k.addBias(t.conv, t.biases, ch);
      k.activate(t.conv, t.conv, 'leaky');
      k.maxpoolForward(t.pool, t.conv, ps);
      k.gemm(t.fc, t.pool, t.fcWeights, { M: s.batch, N: 10, K: pooled, transA: false, transB: true, alpha: 1, beta: 0 });
      k.softmax(t.prob, t.fc, { batch: s.batch, inputs: 10, groups: 1, temperature: 1 });
      k.softmaxCrossEntropy(t.fcDelta, t.prob, t.truth);
      k.gemm(t.poolDelta, t.fcDelta, t.fcWeights, { M: s.batch, N: pooled, K: 10, transA: false, transB: false, alpha: 1, beta: 1 });
      k.maxpoolBackward(t.convDelta, t.poolDelta, t.conv, ps);
      k.gradient(t.convDelta, t.conv, 'leaky');
      k.backwardBias(t.biasUpdates, t.convDelta, ch);
      k.convBackwardFilter(t.weightUpdates, t.convDelta, t.input, s);
      k.convBackwardData(t.inputDelta, t.convDelta, t.weights, s);
      k.sgdUpdate(t.weights, t.weightUpdates, t.mask, { rate: 0.01, momentum: 0.9, decay: 0.0005, batch: s.batch });
    }

    function buffers(k: Kernels): Record<string, Tensor> {
      const s = CONV_SHAPES['groups 2, stride 2, pad 1, 9x7'];
      const pooled = s.n * Math.floor(s.outH / 2) * Math.floor(s.outW / 2);
      const sizes: Record<string, number> = {
        input: s.batch * s.c * s.h * s.w, weights: s.n * (s.c / s.groups) * 9, biases: s.n,
        conv: s.batch * s.n * s.outH * s.outW, pool: s.batch * pooled, fcWeights: 10 * pooled,
        fc: s.batch * 10, prob: s.batch * 10, truth: s.batch * 10, fcDelta: s.batch * 10,
        poolDelta: s.batch * pooled, convDelta: s.batch * s.n * s.outH * s.outW, biasUpdates: s.n,
        weightUpdates: s.n * (s.c / s.groups) * 9, inputDelta: s.batch * s.c * s.h * s.w, mask: s.n * (s.c / s.groups) * 9,
      };
      const t: Record<string, Tensor> = {};
      for (const [name, size] of Object.entries(sizes)) {
        t[name] = k.alloc(size);
        k.upload(t[name], name === 'mask' ? new Float32Array(size).fill(1) : values(size, 0.5));
      }
      return t;
    }

    test('a second pass over the same shapes compiles nothing', () => {
      const k = get();
      const t = buffers(k);
      trainStep(k, t);
      const compiled = k.stats().compiled;
      expect(compiled).toBeGreaterThan(0);
      trainStep(k, t);
      trainStep(k, buffers(k)); // fresh tensors of the same shapes reuse the kernels too
      expect(k.stats().compiled).toBe(compiled);
    });

    test('a forward-only sequence reads nothing back until read', () => {
      const k = get();
      const t = buffers(k);
      const s = CONV_SHAPES['groups 2, stride 2, pad 1, 9x7'];
      const before = k.stats().readbacks;
      k.convForward(t.conv, t.input, t.weights, s);
      k.addBias(t.conv, t.biases, { batch: s.batch, channels: s.n, spatial: s.outH * s.outW });
      k.activate(t.conv, t.conv, 'relu');
      k.maxpoolForward(t.pool, t.conv, pool({ batch: s.batch, c: s.n, h: s.outH, w: s.outW, size: 2, stride: 2, padding: 0 }));
      k.gemm(t.fc, t.pool, t.fcWeights, { M: s.batch, N: 10, K: t.pool.size / s.batch, transA: false, transB: true, alpha: 1, beta: 0 });
      k.softmax(t.prob, t.fc, { batch: s.batch, inputs: 10, groups: 1, temperature: 1 });
      expect(k.stats().readbacks).toBe(before);
      k.read(t.prob);
      expect(k.stats().readbacks).toBe(before + 1);
      k.softmaxCrossEntropy(t.fcDelta, t.prob, t.truth);
      expect(k.stats().readbacks).toBe(before + 2);
      k.cost(t.fcDelta, t.prob, t.truth, 'sse');
      expect(k.stats().readbacks).toBe(before + 3);
    });
  });
}, [ONE_THREAD]);

describe('choosing a backend', () => {
  test('an unknown name is a DarknetError listing the valid ones', async () => {
    await expect(createKernels('cuda' as never)).rejects.toThrow(DarknetError);
    await expect(createKernels('cuda' as never)).rejects.toThrow(/auto, wasm-simd, webgpu, headlessgl, webasm, cpu, reference/);
  });

  test('a backend that cannot start says why and what to do', async () => {
    for (const p of probeBackends(['headlessgl', 'webgpu'])) {
      if (p.ok) continue;
      await expect(createKernels(p.name)).rejects.toThrow(DarknetError);
      await expect(createKernels(p.name)).rejects.toThrow(p.reason);
    }
  });

  test('the default comes from DARKNET_TS_BACKEND', async () => {
    const saved = process.env.DARKNET_TS_BACKEND;
    try {
      process.env.DARKNET_TS_BACKEND = 'reference';
      expect((await createKernels()).backend).toBe('reference');
      process.env.DARKNET_TS_BACKEND = 'nonsense';
      await expect(createKernels()).rejects.toThrow(/unknown backend 'nonsense'/);
    } finally {
      if (saved === undefined) delete process.env.DARKNET_TS_BACKEND;
      else process.env.DARKNET_TS_BACKEND = saved;
    }
  });

  test('reference and auto start; auto picks wasm-simd here', async () => {
    const r = await createKernels('reference');
    expect(r.backend).toBe('reference');
    const k = await createKernels('auto');
    // wasm-simd starts wherever the module was built, and comes before software GL
    expect(k.backend).toBe('wasm-simd');
    k.dispose();
  });
});
