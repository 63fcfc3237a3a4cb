/**
 * Peak memory of long in-process runs, the number `free` on the kernel seam and the
 * one-engine design are for: resident set size (RSS) and the process's peak (VmHWM)
 * after round 1 and after round 30 of a LeNet-5 prune run (the recipe as `prune` runs it:
 * one retraining and one evaluation network for every round), after the first and the
 * last evaluation of a full sensitivity scan (20 levels x 4 layers), and while a library
 * user builds and disposes 30 LeNet-5 networks in a row. Each should stay flat within 10%.
 *
 *   npm run bench:memory [-- --backend wasm-simd --retrain-batches 20]
 *   (node --expose-gc dist/scripts/bench-memory.js after npm run build)
 */
import * as fs from 'fs';
import * as path from 'path';
import { readCfg } from '../src/cfg/parser';
import { MnistSource, TrainBatches } from '../src/data/loader';
import { loadMnist } from '../src/data/mnist';
import { Network, withBatch } from '../src/engine/network';
import { mulberry32 } from '../src/engine/random';
import { createKernels, type BackendChoice } from '../src/kernels/backend';
import type { Kernels } from '../src/kernels/types';
import { pruneLoop } from '../src/prune/recipe';
import { agpSchedule } from '../src/prune/schedule';
import { sensitivityScan } from '../src/prune/sensitivity';
import { augmentationOf } from '../src/data/augment';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

interface Sample {
  rss: number;
  peak: number;
  /** the backend's own memory (wasm-simd: its WebAssembly.Memory), MiB; NaN where not known */
  backend: number;
}

let kernels: Kernels;

/**
 * RSS now, the peak so far (VmHWM) and the backend's memory, in MiB. With --expose-gc
 * (npm run bench:memory passes it) garbage is collected first, so RSS is what is live.
 */
function memory(): Sample {
  (globalThis as { gc?: () => void }).gc?.();
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  const stats = (kernels as { memoryStats?: () => { memoryBytes: number } }).memoryStats?.();
  return { rss: process.memoryUsage().rss / 2 ** 20, peak: hwm ? Number(hwm[1]) / 1024 : NaN, backend: stats ? stats.memoryBytes / 2 ** 20 : NaN };
}

function row(label: string, first: Sample, last: Sample): string {
  const cells = (a: number, b: number) => [a.toFixed(0), b.toFixed(0), (b / a).toFixed(3)].map((c) => c.padStart(10)).join('');
  return `${label.padEnd(44)}${cells(first.rss, last.rss)}  ${cells(first.peak, last.peak)}  ${cells(first.backend, last.backend)}`;
}

async function main(): Promise<void> {
  const backend = arg('backend', 'wasm-simd') as BackendChoice;
  const retrainBatches = Number(arg('retrain-batches', '20'));
  const k = await createKernels(backend);
  kernels = k;
  const spec = readCfg(path.resolve(__dirname, '..', '..', 'cfg', 'lenet.cfg'));
  const train = new MnistSource(loadMnist('train', 6000), 1);
  const test = new MnistSource(loadMnist('t10k', 500), 1);
  console.log(`backend: ${k.description}; LeNet-5, ${retrainBatches} retraining batches a round, 500 evaluation images`);
  const rows: string[] = [];

  // 1. The prune loop, 30 rounds, on one training and one evaluation network.
  const retrainSpec = { ...spec, net: { ...spec.net, maxBatches: retrainBatches, learningRate: spec.net.learningRate * 0.1 } };
  const trainNet = new Network(retrainSpec, k);
  const evalNet = new Network(withBatch(spec, spec.net.batch), k);
  const dense = trainNet.exportWeights();
  const batches = new TrainBatches(train, trainNet.batch, 10, { w: 28, h: 28, c: 1 }, mulberry32(7), augmentationOf(spec.net, false), () => undefined);
  const perRound: Sample[] = [];
  await pruneLoop({
    spec, start: dense, done: 0, schedule: agpSchedule(spec, 0.95, 30), trainNet, evalNet, batches, epochSize: train.count, evalSource: test,
    onRound: () => void perRound.push(memory()),
  });
  rows.push(row('prune, 30 rounds (round 1 -> 30)', perRound[0], perRound[29]));

  // 2. A full sensitivity scan on the evaluation network.
  const perEval: Sample[] = [];
  const reporter = { info: () => undefined, warn: () => undefined, progress: () => ({ update: () => void perEval.push(memory()), finish: () => undefined }) };
  const levels = Array.from({ length: 20 }, (_, i) => Math.round(i * 0.05 * 100) / 100);
  await sensitivityScan(spec, evalNet, dense, test, { levels, reporter });
  rows.push(row(`sensitivity, ${perEval.length} evaluations (first -> last)`, perEval[0], perEval[perEval.length - 1]));
  trainNet.dispose();
  evalNet.dispose();

  // 3. 30 networks built, used and disposed in a row (what a library user's loop does).
  const perNet: Sample[] = [];
  for (let i = 0; i < 30; i++) {
    const net = new Network(spec, k, { seed: i });
    const b = await batches.next();
    net.trainBatch(b.x, b.y);
    net.dispose();
    perNet.push(memory());
  }
  rows.push(row('30 networks built and disposed (1 -> 30)', perNet[0], perNet[29]));

  const head = (a: string) => [`${a} 1st`, `${a} last`, 'ratio'].map((c) => c.padStart(10)).join('');
  console.log(`${'MiB'.padEnd(44)}${head('RSS')}  ${head('peak')}  ${head('backend')}`);
  for (const r of rows) console.log(r);
  k.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
