/**
 * The FLOPs / latency budget (budget.ts): units tie [shortcut] groups, the scan evaluates
 * each unit alone at each level, and the greedy walk ends at or under the budget with
 * per-layer ratios a shrunk model really has.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseCfg } from '../../../src/cfg/parser';
import { MnistSource } from '../../../src/data/loader';
import { loadMnist } from '../../../src/data/mnist';
import { readWeights } from '../../../src/io/weights';
import { collectingReporter } from '../../../src/engine/reporter';
import { ReferenceKernels } from '../../../src/kernels/reference';
import { evaluatorOn, formatBudget, planForBudget, pruningUnits } from '../../../src/prune/channels/budget';
import { l1Scores } from '../../../src/prune/channels/criteria';
import { channelGraph } from '../../../src/prune/channels/graph';
import { planForFlops, shrunkCost } from '../../../src/prune/channels/plan';
import { shrink } from '../../../src/prune/channels/surgery';
import { cfgText } from './nets';

const FIXTURE = path.resolve(__dirname, '../../fixtures/darknet-lenet');

describe('[reference] budget', () => {
  test('[reference] a [shortcut] ties its layers into one unit', () => {
    const spec = parseCfg(cfgText(['height=6', 'width=6', 'channels=2'],
      ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'pad=1', 'activation=leaky'],
      ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'pad=1', 'activation=leaky'],
      ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'pad=1', 'activation=linear'],
      ['[shortcut]', 'from=-3', 'activation=leaky'],
      ['[avgpool]'],
      ['[connected]', 'output=3', 'activation=linear'],
      ['[softmax]']), 'tied.cfg');
    expect(pruningUnits(channelGraph(spec))).toEqual([[0, 2], [1]]);
  });

  test('[reference] the greedy walk meets a FLOPs budget with the ratios it reports', async () => {
    const text = fs.readFileSync(path.join(FIXTURE, 'lenet.cfg'), 'utf8');
    const spec = parseCfg(text, 'lenet.cfg');
    const w = readWeights(path.join(FIXTURE, 'lenet.weights'), spec);
    const g = channelGraph(spec);
    const scores = l1Scores(spec, w);
    const k = new ReferenceKernels();
    const evaluator = evaluatorOn(k, new MnistSource(loadMnist('t10k', 16), 3), 16);
    const dense = spec.layers.reduce((s, l) => s + l.flops, 0);
    const r = await planForBudget(text, spec, w, g, { flops: 0.3, scores, evaluator, levels: [0.6, 0.3], roundTo: 4 });
    // the budget is met, and the cost the walk computed is the shrunk model's own
    expect(r.flops).toBeLessThanOrEqual(0.3 * dense);
    const small = shrink(text, spec, w, g, r.plan);
    expect(small.spec.layers.reduce((s, l) => s + l.flops, 0)).toBe(r.flops);
    expect(shrunkCost(spec, g, r.plan).flops).toBe(r.flops);
    // one scan row per unit and level, the ratios from the levels, the top-1 the shrunk model's
    expect(r.scan.map((u) => u.layers)).toEqual([[0], [2], [4]]);
    expect(r.scan.every((u) => u.points.map((p) => p.keep).join() === '0.6,0.3')).toBe(true);
    for (const keep of r.ratios.values()) expect([1, 0.6, 0.3]).toContain(keep);
    expect(r.top1).toBe(await evaluator(small.spec, small.weights));
    // uniform, for the report, meets the same budget
    const u = planForFlops(spec, g, scores, 0.3, { roundTo: 4 });
    const uniform = shrink(text, spec, w, g, u.plan);
    expect(r.uniform).toEqual({ keep: u.keep, flops: u.flops, top1: await evaluator(uniform.spec, uniform.weights) });
    expect(formatBudget(spec, r)).toMatch(/layer 0 \(conv1\) +keep +\d+% +\(uniform: \d+\.\d%\)/);
    // a budget below what the smallest level gives is refused with the reason
    await expect(planForBudget(text, spec, w, g, { flops: 0.01, scores, evaluator, levels: [0.5] }))
      .rejects.toThrow(/--flops 0\.01: every layer at its smallest scanned level \(keep 0\.5\) still costs 0\.\d+ x the dense FLOPs/);
  }, 60000);

  test('[reference] a latency budget: the walk aims by the scan, measures the chosen model, and aims lower until it fits', async () => {
    const text = fs.readFileSync(path.join(FIXTURE, 'lenet.cfg'), 'utf8');
    const spec = parseCfg(text, 'lenet.cfg');
    const w = readWeights(path.join(FIXTURE, 'lenet.weights'), spec);
    const g = channelGraph(spec);
    const scores = l1Scores(spec, w);
    const evaluator = evaluatorOn(new ReferenceKernels(), new MnistSource(loadMnist('t10k', 16), 3), 16);
    // A stand-in clock: 0.1 ms of overhead plus 1 ms per dense-model FLOPs share, and 20%
    // slower when conv1 and conv2 are both cut, which no scan of one layer alone sees: the
    // first walk's estimate is optimistic, the measurement says so, and the walk aims lower.
    const dense = spec.layers.reduce((s, l) => s + l.flops, 0);
    const measureLatency = (s: typeof spec) => {
      const share = s.layers.reduce((t, l) => t + l.flops, 0) / dense;
      const both = s.layers[0].outC < spec.layers[0].outC && s.layers[2].outC < spec.layers[2].outC;
      return (0.1 + share) * (both ? 1.2 : 1);
    };
    const lines = collectingReporter();
    const r = await planForBudget(text, spec, w, g, { latencyMs: 0.55, scores, evaluator, measureLatency, levels: [0.6, 0.3], roundTo: 4, reporter: lines });
    expect(r.latencyMs!.dense).toBeCloseTo(1.1, 12);
    expect(r.latencyMs!.chosen).toBeLessThanOrEqual(0.55);
    const small = shrink(text, spec, w, g, r.plan);
    expect(r.latencyMs!.chosen).toBe(measureLatency(small.spec));
    const tries = lines.lines.filter((l) => /^latency budget 0\.55 ms: estimated \d+\.\d+ ms, measured \d+\.\d+ ms$/.test(l));
    expect(tries.length).toBeGreaterThan(1);
    expect(formatBudget(spec, r)).toMatch(/latency \(batch 1\) 1\.100 -> 0\.\d+ ms/);
    // a budget the smallest models cannot meet is refused with the reason
    await expect(planForBudget(text, spec, w, g, { latencyMs: 0.05, scores, evaluator, measureLatency, levels: [0.5] }))
      .rejects.toThrow(/--latency-ms 0\.05: every layer at its smallest scanned level \(keep 0\.5\) still costs/);
  }, 60000);
});
