/**
 * The measuring half of `npm run bench` (scripts/bench.ts): what one child process does.
 * A child builds one implementation of one net (ours on a backend, tfjs on its wasm or
 * cpu backend, or convnetjs), times training, batch-64 inference and batch-1 latency on
 * real MNIST batches, and prints one result line (`@@BENCH {json}`) with its peak RSS.
 *
 * Every figure is a median of per-call times inside the run: images/s = 64 / median
 * seconds per batch, latency = median milliseconds per single-image call. Every call
 * waits for its result (ours reads the loss or the output back; tfjs dataSync; convnetjs
 * is synchronous), so a per-call time is the whole step.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { NetworkSpec } from '../src/cfg/config';
import type { BackendName, Kernels } from '../src/kernels/types';
import { loadMnist } from '../src/data/mnist';
import type { Network } from '../src/engine/network';
import { parseCfg } from '../src/cfg/parser';

export const BATCH = 64;
export const CLASSES = 10;
/** Real MNIST training images cycled through by every measurement (16 batches). */
const POOL_BATCHES = 16;

export type NetName = 'lenet' | 'mlp';
export const NETS: Record<NetName, { title: string; cfg: string }> = {
  lenet: { title: 'LeNet-5', cfg: 'cfg/lenet.cfg' },
  mlp: { title: 'LeNet-300-100', cfg: 'cfg/lenet-300-100.cfg' },
};

/** Not a backend name of ours: wasm-simd created with threads: 1 (createKernels picks the thread count itself). */
export const WASM_SIMD_1T = 'wasm-simd-1t';

export type PeerName = 'tfjs-wasm' | 'tfjs-cpu' | 'convnetjs';
export const PEERS: readonly PeerName[] = ['tfjs-wasm', 'tfjs-cpu', 'convnetjs'];

/** How long each phase runs: warm-up calls (stopped early past warmSeconds), then timed calls. */
export interface PhaseBudget {
  warm: number;
  warmSeconds: number;
  minCalls: number;
  minSeconds: number;
}

export interface ChildJob {
  kind: 'ours' | 'peer' | 'baseline';
  /** our backend, or the peer's name */
  name: string;
  net: NetName;
  /** 3: the cfg with channels=3 and each gray image in all three planes (darknet's input) */
  channels: 1 | 3;
  root: string;
  train: PhaseBudget;
  infer: PhaseBudget;
  latency: PhaseBudget;
}

export interface PhaseResult {
  calls: number;
  seconds: number;
  /** median seconds per call */
  median: number;
}

export interface ChildResult {
  ok: boolean;
  /** why not, when !ok (or why a phase is n/a) */
  error?: string;
  description: string;
  train?: PhaseResult | { na: string };
  infer?: PhaseResult | { na: string };
  latency?: PhaseResult | { na: string };
  /** process.resourceUsage().maxRSS, MB */
  peakRssMB: number;
  /** RSS once MNIST is loaded and the batches are made, before the net exists, MB */
  baseRssMB: number;
  /** our backends: host read-backs per training step */
  readbacksPerStep?: number;
  /** mean loss per image over the first and the last 3 training batches (a sanity check that it learns) */
  loss?: { first: number; last: number; batches: number };
}

/** What one implementation can do; every call returns only once its result exists. */
interface Runner {
  description: string;
  /** returns the mean loss per image */
  trainBatch(b: number): number;
  inferBatch(b: number): void;
  infer1(b: number): void;
  /** a reason training cannot run, if it cannot */
  trainNa?: string;
  stats?(): { readbacks: number };
  dispose(): void;
}

interface Pool {
  /** [batch, c*28*28] floats in 0..1, channel-planar */
  x: Float32Array[];
  /** [batch, 10] one-hot */
  y: Float32Array[];
  labels: Uint8Array[];
  inputs: number;
}

function makePool(channels: 1 | 3): Pool {
  const m = loadMnist('train', BATCH * POOL_BATCHES);
  const pixels = m.rows * m.cols;
  const inputs = pixels * channels;
  const pool: Pool = { x: [], y: [], labels: [], inputs };
  for (let b = 0; b < POOL_BATCHES; b++) {
    const x = new Float32Array(BATCH * inputs);
    const y = new Float32Array(BATCH * CLASSES);
    const labels = new Uint8Array(BATCH);
    for (let j = 0; j < BATCH; j++) {
      const i = b * BATCH + j;
      for (let c = 0; c < channels; c++) {
        for (let p = 0; p < pixels; p++) x[j * inputs + c * pixels + p] = m.images[i * pixels + p] / 255;
      }
      labels[j] = m.labels[i];
      y[j * CLASSES + m.labels[i]] = 1;
    }
    pool.x.push(x);
    pool.y.push(y);
    pool.labels.push(labels);
  }
  return pool;
}

function rssMB(): number {
  return process.memoryUsage().rss / (1024 * 1024);
}

function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Warm-up, then timed calls until both minCalls and minSeconds are reached. */
function timePhase(call: (i: number) => void, budget: PhaseBudget): PhaseResult {
  let i = 0;
  const warmStart = performance.now();
  for (let w = 0; w < budget.warm; w++) {
    call(i++);
    if ((performance.now() - warmStart) / 1000 > budget.warmSeconds) break;
  }
  const times: number[] = [];
  const start = performance.now();
  let elapsed = 0;
  while (times.length < budget.minCalls || elapsed < budget.minSeconds) {
    const t0 = performance.now();
    call(i++);
    const t1 = performance.now();
    times.push((t1 - t0) / 1000);
    elapsed = (t1 - start) / 1000;
  }
  return { calls: times.length, seconds: elapsed, median: median(times) };
}

/** The shipped cfg, with channels=3 when asked (darknet's classifier input). */
export function benchSpec(root: string, net: NetName, channels: 1 | 3): NetworkSpec {
  const file = path.join(root, NETS[net].cfg);
  let text = fs.readFileSync(file, 'utf8');
  if (channels === 3) text = setNetKey(text, 'channels', '3');
  return parseCfg(text, file);
}

/** Replaces (or adds) a key of the [net] section of cfg text. */
export function setNetKey(text: string, key: string, value: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^\s*\[(net|network)\]/.test(l));
  if (start < 0) throw new Error('cfg has no [net] section');
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
  if (end < 0) end = lines.length;
  for (let i = start + 1; i < end; i++) {
    if (new RegExp(`^\\s*${key}\\s*=`).test(lines[i])) {
      lines[i] = `${key}=${value}`;
      return lines.join('\n');
    }
  }
  lines.splice(start + 1, 0, `${key}=${value}`);
  return lines.join('\n');
}

async function oursRunner(job: ChildJob, pool: Pool): Promise<Runner> {
  // Loaded here, so a peer's process holds none of ours (gpu.js, sharp) in its RSS.
  const { withBatch } = await import('../src/engine/network');
  const { createKernels } = await import('../src/kernels/backend');
  const { Network } = await import('../src/engine/network');
  const spec = withBatch(benchSpec(job.root, job.net, job.channels), BATCH);
  let k: Kernels;
  if (job.name === WASM_SIMD_1T) {
    // wasm-simd on one thread, for a like-for-like row beside darknet's 1-thread build
    const { WasmSimdKernels } = await import('../src/kernels/wasm-simd');
    k = await WasmSimdKernels.create({ threads: 1 });
  } else {
    k = await createKernels(job.name as BackendName);
    if (k.backend !== job.name) throw new Error(`asked for ${job.name}, got ${k.description}`);
  }
  const net = new Network(spec, k, { seed: 1 });
  let net1: Network | null = null;
  const one = new Float32Array(pool.inputs);
  return {
    description: k.description,
    trainBatch: (b) => {
      const loss = net.trainBatch(pool.x[b % POOL_BATCHES], pool.y[b % POOL_BATCHES]);
      if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at batch ${b}`);
      return loss;
    },
    inferBatch: (b) => void net.predict(pool.x[b % POOL_BATCHES]),
    infer1: (b) => {
      net1 ??= new Network(withBatch(spec, 1), k, { seed: 1 });
      const i = b % (POOL_BATCHES * BATCH);
      one.set(pool.x[Math.floor(i / BATCH)].subarray((i % BATCH) * pool.inputs, (i % BATCH + 1) * pool.inputs));
      net1.predict(one);
    },
    stats: () => k.stats(),
    dispose: () => k.dispose(),
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
async function tfjsRunner(job: ChildJob, pool: Pool, backend: 'wasm' | 'cpu'): Promise<Runner> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  const tfl = await import('@tensorflow/tfjs-layers');
  let flags = '';
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
    if (!(await tf.setBackend('wasm'))) throw new Error("tfjs's wasm backend did not start");
    await tf.ready();
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    flags = `${simd ? 'SIMD' : 'no SIMD'}, ${threads ? 'threaded build' : '1 thread'}`;
  } else {
    if (!(await tf.setBackend('cpu'))) throw new Error("tfjs's cpu backend did not start");
    await tf.ready();
    flags = 'plain JS';
  }
  const conv = job.net === 'lenet';
  const model = tfl.sequential();
  if (conv) {
    model.add(tfl.layers.conv2d({ inputShape: [28, 28, job.channels], filters: 20, kernelSize: 5, padding: 'valid' }));
    model.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
    model.add(tfl.layers.conv2d({ filters: 50, kernelSize: 5, padding: 'valid' }));
    model.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
    model.add(tfl.layers.flatten());
    model.add(tfl.layers.dense({ units: 500, activation: 'relu' }));
    model.add(tfl.layers.dense({ units: 10 }));
  } else {
    model.add(tfl.layers.dense({ inputShape: [pool.inputs], units: 300, activation: 'relu' }));
    model.add(tfl.layers.dense({ units: 100, activation: 'relu' }));
    model.add(tfl.layers.dense({ units: 10 }));
  }
  if (job.channels !== 1) throw new Error('tfjs peers run the 1-channel nets only');
  const optimizer = tf.train.momentum(0.01, 0.9);
  const shape = (n: number): number[] => (conv ? [n, 28, 28, 1] : [n, pool.inputs]);
  const input = (b: number) => tf.tensor(pool.x[b % POOL_BATCHES], shape(BATCH) as any);
  let trainNa: string | undefined;
  if (backend === 'wasm' && conv && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    trainNa = "tfjs-backend-wasm has no Conv2DBackpropFilter kernel: it cannot train a conv net";
  }
  return {
    description: `tfjs ${tf.version_core} ${backend} backend (${flags}), tfjs-layers, SGD momentum 0.9, no weight decay`,
    trainNa,
    trainBatch: (b) => {
      const x = input(b);
      const y = tf.tensor2d(pool.y[b % POOL_BATCHES], [BATCH, CLASSES]);
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as any) as any, true);
      const v = loss!.dataSync()[0];
      loss!.dispose();
      x.dispose();
      y.dispose();
      if (!Number.isFinite(v)) throw new Error(`loss is ${v} at batch ${b}`);
      return v;
    },
    inferBatch: (b) => {
      const x = input(b);
      const out = model.predict(x) as any;
      out.dataSync();
      out.dispose();
      x.dispose();
    },
    infer1: (b) => {
      const i = b % (POOL_BATCHES * BATCH);
      const data = pool.x[Math.floor(i / BATCH)].subarray((i % BATCH) * pool.inputs, (i % BATCH + 1) * pool.inputs);
      const x = tf.tensor(data, shape(1) as any);
      const out = model.predict(x) as any;
      out.dataSync();
      out.dispose();
      x.dispose();
    },
    dispose: () => model.dispose(),
  };
}

async function convnetjsRunner(job: ChildJob, pool: Pool): Promise<Runner> {
  if (job.channels !== 1) throw new Error('convnetjs runs the 1-channel nets only');
  const convnetjs: any = require('convnetjs');
  const defs: any[] = [{ type: 'input', out_sx: 28, out_sy: 28, out_depth: 1 }];
  if (job.net === 'lenet') {
    defs.push(
      { type: 'conv', sx: 5, filters: 20, stride: 1, pad: 0 },
      { type: 'pool', sx: 2, stride: 2 },
      { type: 'conv', sx: 5, filters: 50, stride: 1, pad: 0 },
      { type: 'pool', sx: 2, stride: 2 },
      { type: 'fc', num_neurons: 500, activation: 'relu' },
    );
  } else {
    defs.push({ type: 'fc', num_neurons: 300, activation: 'relu' }, { type: 'fc', num_neurons: 100, activation: 'relu' });
  }
  defs.push({ type: 'softmax', num_classes: 10 }); // convnetjs adds the fc 10 before it
  const net = new convnetjs.Net();
  net.makeLayers(defs);
  const trainer = new convnetjs.Trainer(net, { method: 'sgd', learning_rate: 0.01, momentum: 0.9, batch_size: BATCH, l2_decay: 0.0005 });
  const vol = new convnetjs.Vol(28, 28, 1, 0.0);
  const setImage = (b: number, j: number) => {
    const x = pool.x[b % POOL_BATCHES];
    for (let p = 0; p < pool.inputs; p++) vol.w[p] = x[j * pool.inputs + p];
  };
  return {
    description: 'convnetjs 0.3.0 (plain JS, one image at a time), SGD momentum 0.9, l2 decay 0.0005',
    trainBatch: (b) => {
      let loss = 0;
      for (let j = 0; j < BATCH; j++) {
        setImage(b, j);
        loss += trainer.train(vol, pool.labels[b % POOL_BATCHES][j]).loss;
      }
      if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at batch ${b}`);
      return loss / BATCH;
    },
    inferBatch: (b) => {
      for (let j = 0; j < BATCH; j++) {
        setImage(b, j);
        net.forward(vol, false);
      }
    },
    infer1: (b) => {
      setImage(b, b % BATCH);
      net.forward(vol, false);
    },
    dispose: () => undefined,
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Runs one job in this process and returns its result (never throws). */
export async function runChild(job: ChildJob): Promise<ChildResult> {
  const pool = makePool(job.channels);
  const baseRssMB = rssMB();
  if (job.kind === 'baseline') {
    return { ok: true, description: 'node + MNIST loaded + batches made, no network', peakRssMB: peakRssMB(), baseRssMB };
  }
  let runner: Runner;
  try {
    if (job.kind === 'ours') runner = await oursRunner(job, pool);
    else if (job.name === 'tfjs-wasm') runner = await tfjsRunner(job, pool, 'wasm');
    else if (job.name === 'tfjs-cpu') runner = await tfjsRunner(job, pool, 'cpu');
    else if (job.name === 'convnetjs') runner = await convnetjsRunner(job, pool);
    else throw new Error(`unknown implementation ${job.name}`);
  } catch (e) {
    return { ok: false, error: firstLine(e), description: job.name, peakRssMB: peakRssMB(), baseRssMB };
  }
  const result: ChildResult = { ok: true, description: runner.description, peakRssMB: 0, baseRssMB };
  try {
    if (runner.trainNa) {
      result.train = { na: runner.trainNa };
    } else {
      const losses: number[] = [];
      const train = timePhase((b) => void losses.push(runner.trainBatch(b)), job.train);
      result.train = train;
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      result.loss = { first: mean(losses.slice(0, 3)), last: mean(losses.slice(-3)), batches: losses.length };
      if (runner.stats) {
        // one more step, counted on its own
        const before = runner.stats().readbacks;
        runner.trainBatch(train.calls);
        result.readbacksPerStep = runner.stats().readbacks - before;
      }
    }
    result.infer = timePhase((b) => runner.inferBatch(b), job.infer);
    result.latency = timePhase((b) => runner.infer1(b), job.latency);
  } catch (e) {
    result.ok = false;
    result.error = firstLine(e);
  }
  result.peakRssMB = peakRssMB();
  try {
    runner.dispose();
  } catch {
    // the numbers are in; a failing clean-up does not change them
  }
  return result;
}

export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0];
}
