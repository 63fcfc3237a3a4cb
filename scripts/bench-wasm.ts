/**
 * GFLOP/s of the wasm-simd backend's heavy kernels (gemm 512^3, the LeNet-5 connected
 * gemms and the LeNet-5 batch-64 convolutions), with 1 and 2 threads, next to the plain
 * TypeScript reference; then LeNet-5 training images/s through the real Network (forward,
 * backward, update on batch 64). Each cell is the median of several timed runs after a
 * warm-up run.
 *
 *   npm run build && node dist/scripts/bench-wasm.js
 *
 * Environment: BENCH_THREADS=1,2 (the thread counts), BENCH_REFERENCE=0 skips the reference.
 */
import * as path from 'node:path';
import { Network } from '../src/network';
import { readCfg } from '../src/parser';
import { ReferenceKernels } from '../src/kernels/reference';
import { WasmSimdKernels } from '../src/kernels/wasm-simd';
import type { ConvShape, GemmShape, Kernels, Tensor } from '../src/kernels/types';
import { mulberry32 } from '../src/random';

const BATCH = 64;
/** Timed runs per cell: at least MIN_RUNS, then until BUDGET_MS or MAX_RUNS. */
const MIN_RUNS = 5;
const MAX_RUNS = 31;
const BUDGET_MS = 1500;

interface Case {
  name: string;
  flops: number;
  /** allocates inputs on k and returns the op to time */
  setup(k: Kernels): () => void;
}

function filled(k: Kernels, size: number, seed: number): Tensor {
  const random = mulberry32(seed);
  const t = k.alloc(size);
  k.upload(t, Float32Array.from({ length: size }, () => random() * 2 - 1));
  return t;
}

function gemmCase(name: string, s: GemmShape): Case {
  return {
    name, flops: 2 * s.M * s.N * s.K,
    setup: (k) => {
      const [a, b, c] = [filled(k, s.M * s.K, 1), filled(k, s.K * s.N, 2), k.alloc(s.M * s.N)];
      return () => k.gemm(c, a, b, s);
    },
  };
}

function conv(c: number, hw: number, n: number, size: number): ConvShape {
  const out = hw - size + 1;
  return { batch: BATCH, c, h: hw, w: hw, n, groups: 1, size, stride: 1, pad: 0, outH: out, outW: out };
}

function convCases(label: string, s: ConvShape): Case[] {
  const inputSize = s.batch * s.c * s.h * s.w;
  const weightSize = s.n * (s.c / s.groups) * s.size * s.size;
  const outSize = s.batch * s.n * s.outH * s.outW;
  const flops = 2 * s.batch * s.n * s.outH * s.outW * (s.c / s.groups) * s.size * s.size;
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

const CASES: Case[] = [
  gemmCase('gemm 512x512x512', { M: 512, N: 512, K: 512, transA: false, transB: false, alpha: 1, beta: 0 }),
  gemmCase('fc 64x500x800 (forward, B^T)', { M: BATCH, N: 500, K: 800, transA: false, transB: true, alpha: 1, beta: 1 }),
  gemmCase('fc 500x800x64 (weights, A^T)', { M: 500, N: 800, K: BATCH, transA: true, transB: false, alpha: 1, beta: 1 }),
  gemmCase('fc 64x800x500 (delta)', { M: BATCH, N: 800, K: 500, transA: false, transB: false, alpha: 1, beta: 1 }),
  ...convCases('conv1 1x28x28->20 5x5', conv(1, 28, 20, 5)),
  ...convCases('conv2 20x12x12->50 5x5', conv(20, 12, 50, 5)),
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of `op` over timed runs after one warm-up. */
function time(op: () => void, budgetMs = BUDGET_MS, minRuns = MIN_RUNS, maxRuns = MAX_RUNS): number {
  op();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (times.length < maxRuns && performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    op();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** LeNet-5 (cfg/lenet.cfg) training images/s on k: forward, backward and update of batch 64. */
function lenetImagesPerSecond(k: Kernels): number {
  const spec = readCfg(path.resolve(__dirname, '../../cfg/lenet.cfg')); // from dist/scripts
  const net = new Network(spec, k, { seed: 1 });
  const random = mulberry32(7);
  const x = Float32Array.from({ length: net.batch * spec.net.inputs }, () => random());
  const y = new Float32Array(net.batch * net.outputs);
  for (let b = 0; b < net.batch; b++) y[b * net.outputs + (b % net.outputs)] = 1;
  const seconds = time(() => net.trainBatch(x, y), 3000, 10, 60);
  return net.batch / seconds;
}

async function main(): Promise<void> {
  const threadCounts = (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number);
  const backends: { label: string; k: Kernels }[] = [];
  for (const threads of threadCounts) backends.push({ label: `wasm-simd x${threads}`, k: await WasmSimdKernels.create({ threads }) });
  if (process.env.BENCH_REFERENCE !== '0') backends.push({ label: 'reference', k: new ReferenceKernels() });

  const header = ['case', ...backends.map((b) => b.label)];
  const rows: string[][] = [];
  for (const c of CASES) {
    const row = [c.name];
    for (const { label, k } of backends) {
      const reference = label === 'reference';
      const seconds = time(c.setup(k), reference ? 500 : BUDGET_MS, reference ? 1 : MIN_RUNS, reference ? 3 : MAX_RUNS);
      row.push(`${(c.flops / seconds / 1e9).toFixed(2)} GFLOP/s`);
    }
    rows.push(row);
    process.stderr.write('.');
  }
  const lenet = ['LeNet-5 train, batch 64'];
  for (const { label, k } of backends) {
    if (label === 'reference') {
      lenet.push('(skipped)');
      continue;
    }
    try {
      lenet.push(`${lenetImagesPerSecond(k).toFixed(0)} images/s`);
    } catch (e) {
      lenet.push(`failed: ${(e as Error).message}`);
    }
  }
  rows.push(lenet);
  process.stderr.write('\n');
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  for (const { k } of backends) k.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
