/**
 * The prune-retrain recipe and the sensitivity scan on a small net and real MNIST:
 * sparsity rises round by round to the target, every reported number equals a direct
 * count over the saved file, zeros stay frozen through retraining, and the run resumes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/commands/cli';
import { trainClassifier } from '../../src/commands/classifier';
import { MnistSource } from '../../src/data/loader';
import { loadMnist } from '../../src/data/mnist';
import { createKernels } from '../../src/kernels/backend';
import type { Kernels } from '../../src/kernels/types';
import { readCfg } from '../../src/cfg/parser';
import { pruneCommand } from '../../src/commands/prune';
import { sensitivityCommand } from '../../src/commands/sensitivity';
import { collectingReporter } from '../../src/engine/reporter';
import { Interrupted } from '../../src/commands/interrupt';
import { sparsityOf } from '../../src/prune/stats';
import { readWeights } from '../../src/io/weights';

const CFG = `
[net]
batch=32
height=28
width=28
channels=1
learning_rate=0.05
momentum=0.9
decay=0.0005
policy=poly
power=1
max_batches=300

[convolutional]
filters=8
size=5
stride=1
pad=0
activation=linear

[maxpool]
size=2
stride=2

[connected]
output=64
activation=relu

[connected]
output=10
activation=linear

[softmax]
`;

const dir = path.join(os.tmpdir(), `dts-prune-${process.pid}`);
const cfgFile = path.join(dir, 'small.cfg');
const dataFile = path.join(dir, 'small.data');
const quiet = () => undefined;
let k: Kernels;
let dense: string;
const trainSet = new MnistSource(loadMnist('train', 6000), 1);
const testSet = new MnistSource(loadMnist('t10k', 1000), 1);

beforeAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(cfgFile, CFG);
  fs.writeFileSync(path.join(dir, 'labels.txt'), Array.from({ length: 10 }, (_, i) => `c${i}`).join('\n'));
  fs.writeFileSync(dataFile, `classes=10\nlabels=${path.join(dir, 'labels.txt')}\nbackup=${dir}\ntop=1\n`);
  k = await createKernels('wasm-simd');
  const r = await trainClassifier({ dataFile, cfgFile, kernels: k, source: trainSet, backupDir: path.join(dir, 'dense') });
  dense = r.finalWeights;
});
afterAll(() => {
  k?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('[wasm-simd] prune recipe', () => {
  test('[wasm-simd] uniform rounds raise sparsity to the target, with frozen zeros and honest reports', async () => {
    const out = path.join(dir, 'uniform');
    const logs: string[] = [];
    const report = await pruneCommand({
      dataFile, cfgFile, weights: dense, target: 0.8, rounds: 3, retrainBatches: 40, lrScale: 0.1, mode: 'uniform', out,
      kernels: k, evalSource: testSet, trainSource: trainSet, reporter: collectingReporter(logs),
    });
    expect(report.history.map((r) => r.round)).toEqual([1, 2, 3]);
    const sparsities = report.history.map((r) => r.sparsity);
    for (let i = 1; i < sparsities.length; i++) expect(sparsities[i]).toBeGreaterThan(sparsities[i - 1]);
    expect(sparsities[2]).toBeCloseTo(0.8, 3);
    const spec = readCfg(cfgFile);
    let previousZeros: Float32Array[] | null = null;
    for (const r of report.history) {
      // Every number in the report is a count over the saved file.
      const saved = readWeights(r.weights, spec);
      const s = sparsityOf(spec, saved);
      expect(r.nonzero).toBe(s.total.nonzero);
      expect(r.sparsity).toBe(s.total.sparsity);
      r.layers.forEach((l, i) => expect(l.nonzero).toBe(s.layers[i].nonzero));
      // Zeros of one round are still zero after the next round's retraining.
      const weights = saved.layers.filter((l) => l.weights).map((l) => l.weights!);
      if (previousZeros) {
        previousZeros.forEach((before, li) => {
          for (let j = 0; j < before.length; j++) if (before[j] === 0) expect(weights[li][j]).toBe(0);
        });
      }
      previousZeros = weights;
    }
    // Retraining with frozen zeros never loses what pruning left (1,000 test images, 1 point of noise).
    expect(report.dense.top1).toBeGreaterThan(0.75);
    for (const r of report.history) expect(r.top1Retrained).toBeGreaterThanOrEqual(r.top1Pruned - 0.01);
    expect(fs.readdirSync(out)).toEqual(expect.arrayContaining(['report.json', 'report.csv', 'accuracy.png', 'sparsity.png', 'small_round3.weights']));
    expect(logs.some((l) => l.startsWith('round 3/3:'))).toBe(true);
  });

  test('[wasm-simd] an interrupted run keeps finished rounds and resumes from the last one', async () => {
    const out = path.join(dir, 'resume');
    const options = {
      dataFile, cfgFile, weights: dense, target: 0.7, rounds: 3, retrainBatches: 10, lrScale: 0.1, mode: 'agp' as const, out,
      kernels: k, evalSource: testSet, trainSource: trainSet,
    };
    // Abort during round 2's retraining (a signal handler does this in the CLI: faults.test.ts).
    const stop = new AbortController();
    const seen: string[] = [];
    const watch = collectingReporter(seen);
    const reporter = { ...watch, info: (l: string) => { watch.info(l); if (/^round 2: pruned top-1/.test(l)) stop.abort(); } };
    await expect(pruneCommand({ ...options, reporter, signal: stop.signal })).rejects.toBeInstanceOf(Interrupted);
    const first = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(first.history).toHaveLength(1);
    expect(first.inProgress.round).toBe(2);
    const round1 = fs.readFileSync(first.history[0].weights);
    const logs: string[] = [];
    const resumed = await pruneCommand({ ...options, reporter: collectingReporter(logs) });
    expect(logs.some((l) => /resuming .*: 1 of 3 rounds done, round 2 part-retrained/.test(l))).toBe(true);
    expect(resumed.history).toHaveLength(3);
    expect(Buffer.compare(fs.readFileSync(resumed.history[0].weights), round1)).toBe(0);
  });

  test('[wasm-simd] a rate that is too high is called out', async () => {
    const logs: string[] = [];
    await pruneCommand({
      dataFile, cfgFile, weights: dense, target: 0.5, rounds: 1, retrainBatches: 20, lrScale: 6, mode: 'uniform',
      out: path.join(dir, 'hot'), kernels: k, evalSource: testSet, trainSource: trainSet, reporter: collectingReporter(logs),
    });
    expect(logs.some((l) => /retraining ended worse .* lower --lr-scale/.test(l))).toBe(true);
  });

  test('[wasm-simd] sensitivity: one layer at a time, CSV and PNG, the first layer most fragile', async () => {
    const r = await sensitivityCommand({
      dataFile, cfgFile, weights: dense, levels: [0, 0.5, 0.9, 0.99], out: path.join(dir, 'scan'), kernels: k, evalSource: testSet,
    });
    expect(r.scan.rows).toHaveLength(3 * 4);
    const csv = fs.readFileSync(r.csv, 'utf8').trim().split('\n');
    expect(csv[0]).toBe('layer,name,type,weights,sparsity,top1');
    expect(csv).toHaveLength(1 + 1 + 12);
    // At level 0 nothing changes; at 99% each layer alone hurts.
    for (const row of r.scan.rows.filter((x) => x.sparsity === 0)) expect(row.top1).toBe(r.scan.baseline.top1);
    expect(fs.statSync(r.png).size).toBeGreaterThan(1000);
  });

  test('[wasm-simd] prune threshold from the CLI writes a darknet file whose zeros the summary counts', async () => {
    const out = path.join(dir, 'thresholded.weights');
    const text: string[] = [];
    const code = await main(['prune', 'threshold', cfgFile, dense, out, '--sparsity', '0.75'], { out: (t) => text.push(t), err: quiet });
    expect(code).toBe(0);
    const spec = readCfg(cfgFile);
    const s = sparsityOf(spec, readWeights(out, spec));
    for (const l of s.layers) expect(l.sparsity).toBeCloseTo(0.75, 3);
    expect(text.join('')).toMatch(/sparsity\s+75\.0%/);
    const bad: string[] = [];
    expect(await main(['prune', 'threshold', cfgFile, dense, out, '--sparsity', '0.5', '--std', '1'], { out: quiet, err: (t) => bad.push(t) })).toBe(1);
    expect(bad.join('')).toMatch(/give exactly one of/);
  });
});
