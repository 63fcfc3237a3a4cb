/**
 * GFLOP/s of the heavy kernels on LeNet-5 training shapes at batch 64, for every backend
 * that starts here and for the plain TypeScript reference, in one table with ratios to
 * the reference. Each cell is the median of a few timed runs after one warm-up run
 * (which compiles the kernel); GPU work is waited for (gl.finish) before the clock stops.
 *
 *   npm run build && node dist/scripts/bench-kernels.js      # cpu modes
 *   xvfb-run -a node dist/scripts/bench-kernels.js           # with headlessgl
 *
 * Environment: BENCH_BACKENDS=wasm-simd,webasm limits the backends (the reference always runs;
 * wasm-simd also runs on one thread, as the wasm-simd-1t column).
 */
import { createKernels, probeBackends } from '../src/kernels/backend';
import { WasmSimdKernels } from '../src/kernels/wasm-simd';
import type { ConvShape, GemmShape, Kernels, Tensor } from '../src/kernels/types';
import { mulberry32 } from '../src/engine/random';

const BATCH = 64;
/** Timed runs per cell stop at this many, or once this much time has been spent (at least MIN_RUNS). */
const MAX_RUNS = 5;
const MIN_RUNS = 3;
const BUDGET_MS = 1500;

interface Case {
  name: string;
  flops: number;
  /** allocates inputs on k and returns the op to time */
  setup(k: Kernels): () => void;
}

function conv(c: number, hw: number, n: number, size: number): ConvShape {
  const out = hw - size + 1;
  return { batch: BATCH, c, h: hw, w: hw, n, groups: 1, size, stride: 1, pad: 0, outH: out, outW: out };
}

function convFlops(s: ConvShape): number {
  return 2 * s.batch * s.n * s.outH * s.outW * (s.c / s.groups) * s.size * s.size;
}

function filled(k: Kernels, size: number, seed: number): Tensor {
  const random = mulberry32(seed);
  const t = k.alloc(size);
  k.upload(t, Float32Array.from({ length: size }, () => random() * 2 - 1));
  return t;
}

function convCases(label: string, s: ConvShape): Case[] {
  const inputSize = s.batch * s.c * s.h * s.w;
  const weightSize = s.n * (s.c / s.groups) * s.size * s.size;
  const outSize = s.batch * s.n * s.outH * s.outW;
  const flops = convFlops(s);
  return [
    { name: `${label} convForward`, flops, setup: (k) => {
      const [x, w, y] = [filled(k, inputSize, 1), filled(k, weightSize, 2), k.alloc(outSize)];
      return () => k.convForward(y, x, w, s);
    } },
    { name: `${label} convBackwardFilter`, flops, setup: (k) => {
      const [x, d, u] = [filled(k, inputSize, 1), filled(k, outSize, 3), k.alloc(weightSize)];
      return () => k.convBackwardFilter(u, d, x, s);
    } },
    { name: `${label} convBackwardData`, flops, setup: (k) => {
      const [w, d, dx] = [filled(k, weightSize, 2), filled(k, outSize, 3), k.alloc(inputSize)];
      return () => k.convBackwardData(dx, d, w, s);
    } },
  ];
}

/** darknet's connected layer: forward, weight gradient and input delta gemms. */
function connectedCases(inputs: number, outputs: number): Case[] {
  const label = `fc ${inputs}->${outputs}`;
  const flops = 2 * BATCH * inputs * outputs;
  const gemm = (name: string, s: GemmShape, sizes: [number, number, number]): Case => ({
    name: `${label} ${name} gemm ${s.M}x${s.N}x${s.K}${s.transA ? ' tA' : ''}${s.transB ? ' tB' : ''}`,
    flops,
    setup: (k) => {
      const [A, B, C] = [filled(k, sizes[0], 4), filled(k, sizes[1], 5), filled(k, sizes[2], 6)];
      return () => k.gemm(C, A, B, s);
    },
  });
  return [
    gemm('forward', { M: BATCH, N: outputs, K: inputs, transA: false, transB: true, alpha: 1, beta: 1 },
      [BATCH * inputs, outputs * inputs, BATCH * outputs]),
    gemm('filter', { M: outputs, N: inputs, K: BATCH, transA: true, transB: false, alpha: 1, beta: 1 },
      [BATCH * outputs, BATCH * inputs, outputs * inputs]),
    gemm('data', { M: BATCH, N: inputs, K: outputs, transA: false, transB: false, alpha: 1, beta: 1 },
      [BATCH * outputs, outputs * inputs, BATCH * inputs]),
  ];
}

/** A square gemm, the usual yardstick of a CPU's matrix speed. */
function squareGemm(n: number): Case {
  return {
    name: `gemm ${n}x${n}x${n} (yardstick)`,
    flops: 2 * n * n * n,
    setup: (k) => {
      const [A, B, C] = [filled(k, n * n, 4), filled(k, n * n, 5), k.alloc(n * n)];
      return () => k.gemm(C, A, B, { M: n, N: n, K: n, transA: false, transB: false, alpha: 1, beta: 0 });
    },
  };
}

const CASES: Case[] = [
  squareGemm(512),
  ...convCases('conv1 1x28x28->20 5x5', conv(1, 28, 20, 5)),
  ...convCases('conv2 20x12x12->50 5x5', conv(20, 12, 50, 5)),
  ...connectedCases(800, 500),
  ...connectedCases(500, 10),
];

/** Median GFLOP/s of one case on one backend. */
function measure(k: Kernels, c: Case): number {
  const finish = (k as { finish?: () => void }).finish?.bind(k) ?? (() => undefined);
  const op = c.setup(k);
  op(); // warm-up: compiles
  finish();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < MAX_RUNS && (times.length < MIN_RUNS || performance.now() - start < BUDGET_MS)) {
    const t0 = performance.now();
    op();
    finish();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return c.flops / (median * 1e6);
}

async function main(): Promise<void> {
  const wanted = process.env.BENCH_BACKENDS?.split(',').map((s) => s.trim());
  // Columns: the reference, then each backend that starts; wasm-simd also on one thread.
  const columns: Array<{ name: string; make: () => Promise<Kernels> }> = [{ name: 'reference', make: () => createKernels('reference') }];
  for (const p of probeBackends(['wasm-simd', 'cpu', 'webasm', 'headlessgl', 'webgpu'])) {
    if (wanted && !wanted.includes(p.name)) continue;
    if (!p.ok) {
      console.log(`note: ${p.name} does not start here: ${p.reason}`);
      continue;
    }
    columns.push({ name: p.name, make: () => createKernels(p.name) });
    if (p.name === 'wasm-simd') columns.push({ name: 'wasm-simd-1t', make: () => WasmSimdKernels.create({ threads: 1 }) });
  }
  const names = columns.map((c) => c.name);
  const results = new Map<string, number[]>();
  const started = performance.now();
  for (const { name, make } of columns) {
    const k = await make();
    console.log(`running ${k.description} ...`);
    results.set(name, CASES.map((c) => measure(k, c)));
    k.dispose();
  }

  const nameWidth = Math.max(...CASES.map((c) => c.name.length));
  const header = ['op (batch 64)'.padEnd(nameWidth), 'MFLOP'.padStart(7), ...names.map((n) => n.padStart(16))].join('  ');
  console.log(`\nGFLOP/s (median of ${MIN_RUNS}-${MAX_RUNS} runs), x = ratio to the reference\n`);
  console.log(header);
  console.log('-'.repeat(header.length));
  CASES.forEach((c, i) => {
    const ref = results.get('reference')![i];
    const cells = names.map((n) => {
      const g = results.get(n)![i];
      return (n === 'reference' ? g.toFixed(2) : `${g.toFixed(2)} (${(g / ref).toFixed(2)}x)`).padStart(16);
    });
    console.log([c.name.padEnd(nameWidth), (c.flops / 1e6).toFixed(1).padStart(7), ...cells].join('  '));
  });
  console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s in all`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
