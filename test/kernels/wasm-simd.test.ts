/**
 * What only the wasm-simd backend has. kernels.test.ts compares every op of it with the
 * reference (with its default threads, one per core, and with one thread); here:
 *   - its threads: with 2, every threaded job (gemm and convolutions over 4 MFLOP; elementwise
 *     and per-channel ops over PARALLEL_VALUES values) waits for
 *     the worker to join (`waitForWorkers`), so the worker's share is tested even when a busy
 *     machine would have run it late; without waiting, results match however the units fall;
 *   - its shared memory, which grows under live tensors;
 *   - gemm's literal beta 0 and K = 0, as the reference does them (gpu.js's backends do not);
 *   - its allocator: 200 networks built and dropped do not grow the memory;
 *   - its worker threads: dispose terminates them, and a process that never disposes exits.
 * Tolerances as in compare.ts.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { mulberry32 } from '../../src/engine/random';
import { PARALLEL_FLOPS, PARALLEL_VALUES, WasmSimdKernels } from '../../src/kernels/wasm-simd';
import type { ConvShape, Tensor } from '../../src/kernels/types';
import { comparing, conv, CONV_SHAPES, ELEM, EXACT, expectConvMatches, expectGemmMatches, LENET_TENSORS, pool, SUM } from './compare';

/** gemms big enough (> PARALLEL_FLOPS) for wasm-simd to split between threads: by columns, by rows. */
const THREADED_GEMMS: [number, number, number][] = [[9, 1037, 263], [131, 40, 600]];
/** The convolutions of the shared suite that are big enough too. */
const THREADED_CONVS = Object.entries(CONV_SHAPES).filter(
  ([, s]) => 2 * s.batch * s.n * s.outH * s.outW * (s.c / s.groups) * s.size * s.size >= PARALLEL_FLOPS,
);
/**
 * Batches under 4 per thread: convForward splits each image between the threads, over its
 * filters where there are more filters than positions (the deep layers), else over its
 * positions. What every part would pack again is packed first by the threads together,
 * in a job of its own: the image's patches (batch 1, one group, split by filters) or the
 * weights (split by positions). `jobs`: the pool jobs one convForward makes with 2 threads.
 * A layer with few flops but many weights (a 1x1 classifier) is threaded too.
 */
const SPLIT_IMAGE_CONVS: Record<string, { s: ConvShape; jobs: number }> = {
  'batch 1, 512 filters on 4x4 (by filters, patches packed together), K = 576 > KC':
    { s: conv({ batch: 1, c: 64, h: 4, w: 4, n: 512, groups: 1, size: 3, stride: 1, pad: 1 }), jobs: 2 },
  'batch 1, stride 2, 256 filters on 9x9 to 5x5 (by filters, patches packed together)':
    { s: conv({ batch: 1, c: 64, h: 9, w: 9, n: 256, groups: 1, size: 3, stride: 2, pad: 1 }), jobs: 2 },
  'batch 1, 24 filters on 40x40 (by positions, weights packed together)':
    { s: conv({ batch: 1, c: 8, h: 40, w: 40, n: 24, groups: 1, size: 3, stride: 1, pad: 1 }), jobs: 2 },
  'batch 2, groups 2, 32 filters on 20x20 (by positions, weights packed together)':
    { s: conv({ batch: 2, c: 32, h: 20, w: 20, n: 32, groups: 2, size: 3, stride: 1, pad: 1 }), jobs: 2 },
  'batch 3, groups 2, 256 filters on 6x6 (by filters, each part packs the patches)':
    { s: conv({ batch: 3, c: 32, h: 6, w: 6, n: 256, groups: 2, size: 3, stride: 1, pad: 1 }), jobs: 1 },
  'batch 1, 1x1 with 1000 filters on 1x1 (0.6 MFLOP, but 300K weights)':
    { s: conv({ batch: 1, c: 300, h: 1, w: 1, n: 1000, groups: 1, size: 1, stride: 1, pad: 0 }), jobs: 2 },
};

for (const threads of [1, 2]) {
  describe(`[wasm-simd] ${threads} thread${threads > 1 ? 's' : ''}, waitForWorkers`, () => {
    let k: WasmSimdKernels;
    beforeAll(async () => {
      k = await WasmSimdKernels.create({ threads, waitForWorkers: true });
    });
    afterAll(() => k?.dispose());
    const c = comparing(() => k, `wasm-simd x${threads}`);
    const { ref, values, random, pair, check } = c;
    beforeEach(c.reseed);

    test('names itself and its threads', () => {
      expect(k.backend).toBe('wasm-simd');
      expect(k.threads).toBe(threads);
      expect(k.description).toMatch(new RegExp(`^wasm-simd .*${threads} thread`));
    });

    test('tensors survive the memory growing', () => {
      const v = values(1000);
      const t = pair(v);
      const big = k.alloc(12 * 2 ** 20); // 48 MB: past the initial 16 MB, so the memory grows
      k.fill(big, 1);
      expect(k.read(t.g)).toEqual(v);
      const r = k.read(big);
      expect(r[0] + r[r.length - 1]).toBe(2);
    });

    test('gemm: beta 0 scales C literally (a NaN stays), K = 0 only scales', () => {
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
    });

    if (threads === 1) {
      test('one thread dispatches nothing', () => {
        expectGemmMatches(c, THREADED_GEMMS[0], false, true);
        expect(k.threadStats()).toEqual({ jobs: 0, workerUnits: 0 });
      });
    } else {
      test('big gemms, all transposes, match the reference', () => {
        for (const shape of THREADED_GEMMS) {
          expect(2 * shape[0] * shape[1] * shape[2]).toBeGreaterThanOrEqual(PARALLEL_FLOPS);
          for (const transA of [false, true]) {
            for (const transB of [false, true]) expectGemmMatches(c, shape, transA, transB);
          }
        }
      });

      for (const [name, s] of THREADED_CONVS) {
        test(`conv ${name}: forward, backward filter and data match the reference`, () => {
          expectConvMatches(c, s);
        });
      }

      for (const [name, { s, jobs }] of Object.entries(SPLIT_IMAGE_CONVS)) {
        test(`conv ${name}: each image split between the threads matches the reference`, () => {
          const input = pair(values(s.batch * s.c * s.h * s.w));
          const weights = pair(values((s.n * s.c / s.groups) * s.size * s.size, 0.5));
          const out = pair(values(s.batch * s.n * s.outH * s.outW)); // overwritten
          const before = k.threadStats();
          k.convForward(out.g, input.g, weights.g, s);
          const after = k.threadStats();
          ref.convForward(out.r, input.r, weights.r, s);
          check(out, SUM, 'convForward');
          // `jobs` pool jobs: the shared packing job where there is one, then the conv job
          expect(after.jobs - before.jobs).toBe(threads > 1 ? jobs : 0);
          expectConvMatches(c, s); // and backward, with the same shapes
        });
      }

      // Elementwise and per-channel ops over PARALLEL_VALUES values are split between the
      // threads: by planes (odd sizes, so units end mid-image and rows have scalar tails),
      // or by runs of 4 values.
      test('per-channel ops over many planes (addBias, scaleBias, normalize) match the reference', () => {
        const jobs = k.threadStats().jobs;
        const s = { batch: 2, channels: 37, spatial: 4099 };
        expect(s.batch * s.channels * s.spatial).toBeGreaterThanOrEqual(PARALLEL_VALUES);
        const x = pair(values(s.batch * s.channels * s.spatial, 3));
        const b = pair(values(s.channels));
        const mean = pair(values(s.channels));
        const variance = pair(values(s.channels).map(Math.abs));
        const out = pair(new Float32Array(x.r.size));
        k.normalize(out.g, x.g, mean.g, variance.g, 1e-5, s);
        ref.normalize(out.r, x.r, mean.r, variance.r, 1e-5, s);
        check(out, ELEM, 'normalize');
        k.scaleBias(out.g, b.g, s);
        ref.scaleBias(out.r, b.r, s);
        check(out, ELEM, 'scaleBias');
        k.addBias(out.g, b.g, s);
        ref.addBias(out.r, b.r, s);
        check(out, ELEM, 'addBias');
        expect(k.threadStats().jobs).toBe(jobs + 3);
      });

      test('activate, copy and shortcut over many values match the reference', () => {
        const jobs = k.threadStats().jobs;
        const n = PARALLEL_VALUES + 4 * 1001 + 3;
        const x = pair(values(n, 4));
        const y = pair(new Float32Array(n));
        for (const act of ['leaky', 'relu', 'logistic', 'mish'] as const) {
          k.activate(y.g, x.g, act);
          ref.activate(y.r, x.r, act);
          check(y, act === 'relu' ? EXACT : ELEM, `activate ${act}`);
        }
        k.copy(y.g, x.g);
        ref.copy(y.r, x.r);
        check(y, EXACT, 'copy');
        k.activate(y.g, y.g, 'linear'); // in place: nothing to do
        check(y, EXACT, 'activate linear in place');
        const shapes = {
          'same shape': { batch: 2, w1: 113, h1: 63, c1: 19, w2: 113, h2: 63, c2: 19 },
          'add downsampled, fewer channels out': { batch: 2, w1: 226, h1: 126, c1: 21, w2: 113, h2: 63, c2: 19 },
        };
        for (const [name, s] of Object.entries(shapes)) {
          const add = pair(values(s.batch * s.c1 * s.h1 * s.w1));
          const out = pair(values(s.batch * s.c2 * s.h2 * s.w2));
          k.shortcut(out.g, add.g, 0.5, 2, s);
          ref.shortcut(out.r, add.r, 0.5, 2, s);
          check(out, EXACT, `shortcut, ${name}`);
        }
        expect(k.threadStats().jobs).toBe(jobs + 7); // 4 activations, copy, 2 shortcuts
      });

      test('maxpool over many planes, forward and += backward, matches the reference', () => {
        const jobs = k.threadStats().jobs;
        for (const s of [
          pool({ batch: 2, c: 19, h: 92, w: 91, size: 2, stride: 2, padding: 1 }),
          pool({ batch: 1, c: 23, h: 115, w: 121, size: 3, stride: 2, padding: 2 }),
        ]) {
          const n = s.batch * s.c * s.h * s.w;
          expect(n).toBeGreaterThanOrEqual(PARALLEL_VALUES);
          const input = pair(Float32Array.from({ length: n }, () => Math.floor(random() * 3)));
          const out = pair(new Float32Array(s.batch * s.c * s.outH * s.outW));
          const delta = pair(values(out.r.size));
          const inputDelta = pair(values(n));
          k.maxpoolForward(out.g, input.g, s);
          ref.maxpoolForward(out.r, input.r, s);
          check(out, EXACT, 'maxpoolForward');
          k.maxpoolBackward(inputDelta.g, delta.g, input.g, s);
          ref.maxpoolBackward(inputDelta.r, delta.r, input.r, s);
          check(inputDelta, ELEM, 'maxpoolBackward');
        }
        expect(k.threadStats().jobs).toBe(jobs + 4);
      });

      test('the worker did part of the threaded jobs above', () => {
        const { jobs, workerUnits } = k.threadStats();
        expect(jobs).toBeGreaterThan(10);
        expect(workerUnits).toBeGreaterThan(jobs / 2);
      });
    }
  });
}

test('[wasm-simd] without waitForWorkers, threaded jobs match the reference however the units fall', async () => {
  const k = await WasmSimdKernels.create({ threads: 2 });
  const { ref, values, pair, check } = comparing(() => k, 'wasm-simd x2, not waiting');
  const s = CONV_SHAPES['K = 325 > KC, 13x17x15 -> 22 5x5 pad 2, batch 5'];
  const input = pair(values(s.batch * s.c * s.h * s.w));
  const delta = pair(values(s.batch * s.n * s.outH * s.outW));
  const weightUpdates = pair(values(s.n * s.c * s.size * s.size));
  for (let i = 0; i < 5; i++) {
    k.convBackwardFilter(weightUpdates.g, delta.g, input.g, s);
    ref.convBackwardFilter(weightUpdates.r, delta.r, input.r, s);
  }
  check(weightUpdates, SUM, 'convBackwardFilter x5');
  k.dispose();
});

test('[wasm-simd] dispose terminates the worker threads; its tensors are refused afterwards', async () => {
  const k = await WasmSimdKernels.create({ threads: 3 });
  const t = k.alloc(8);
  expect(k.liveWorkers()).toBe(2);
  k.dispose();
  k.dispose(); // twice is harmless
  expect(() => k.read(t)).toThrow('read: the wasm-simd backend was disposed; create another');
  for (let waited = 0; k.liveWorkers() > 0 && waited < 10000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  expect(k.liveWorkers()).toBe(0);
  await expect(WasmSimdKernels.create({ threads: 0 })).rejects.toThrow(/threads/);
});

test('[wasm-simd] a process that never disposes its backend still exits (the workers are unref()ed)', async () => {
  // a child node that loads the TypeScript sources, starts 2 workers, runs a threaded gemm and just ends
  const source = path.resolve(__dirname, '../../src/kernels/wasm-simd.ts');
  const script = `
    const fs = require('node:fs');
    const ts = require(${JSON.stringify(require.resolve('typescript'))});
    require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'),
      { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, file);
    const { WasmSimdKernels } = require(${JSON.stringify(source)});
    WasmSimdKernels.create({ threads: 2, waitForWorkers: true }).then((k) => {
      const [a, b, c] = [k.alloc(300 * 300), k.alloc(300 * 300), k.alloc(300 * 300)];
      k.gemm(c, a, b, { M: 300, N: 300, K: 300, transA: false, transB: false, alpha: 1, beta: 0 });
      console.log('worker units', k.threadStats().workerUnits);
    });`;
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['-e', script], { timeout: 30000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
  expect(stderr).toBe('');
  expect(code).toBe(0); // null: killed at the timeout, still alive
  expect(stdout).toMatch(/^worker units [1-9]/);
});

/** Seeded shuffle (Fisher-Yates), so the allocator sees a different order each cycle. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

test('[wasm-simd] 200 networks built and dropped do not grow the memory; reused storage reads zero', async () => {
  const k = await WasmSimdKernels.create({ threads: 1 });
  const random = mulberry32(7);
  const network = (): Tensor[] => shuffle([...LENET_TENSORS], random).map((n) => k.alloc(n));
  // the first network (and one that lives on throughout, like a pruning run's reference
  // copy) grows the memory; dropping it and building the next reuses it from then on
  const kept = network();
  for (const t of network()) k.free(t);
  const before = k.memoryStats();
  for (let cycle = 0; cycle < 200; cycle++) {
    const tensors = network();
    if (cycle % 20 === 0 || cycle === 199) {
      for (const t of tensors) {
        const values = k.read(t);
        if (values.some((v) => v !== 0)) throw new Error(`cycle ${cycle}: a ${t.size}-value tensor is not zero`);
      }
    }
    for (const t of tensors) k.fill(t, cycle + 1);
    for (const t of shuffle(tensors, random)) k.free(t);
  }
  const after = k.memoryStats();
  expect(after.memoryBytes).toBe(before.memoryBytes);
  expect(after.top).toBe(before.top);
  expect(after.liveBytes).toBe(before.liveBytes);
  // without free, 200 LeNets at batch 8 would have taken about 1 GB more
  expect(after.memoryBytes).toBeLessThan(64 * 2 ** 20);
  for (const t of kept) k.free(t);
  k.dispose();
});
