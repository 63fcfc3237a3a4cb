/**
 * Choosing what goes: the channel graph's ties and protections, per-layer fractions,
 * union of the kept sets across a [shortcut] (or, with tie group, one ranking of them), --round-to, refusals with their reasons, and
 * the uniform fraction that meets a FLOPs budget.
 */
import * as path from 'path';
import * as fs from 'fs';
import { parseCfg } from '../../../src/cfg/parser';
import { DarknetError } from '../../../src/errors';
import { l1Scores, type ChannelScores } from '../../../src/prune/channels/criteria';
import { channelGraph, whyProtected } from '../../../src/prune/channels/graph';
import { parseLayerKeep, pruneChannels } from '../../../src/prune/channels';
import { keptFilters, planChannels, planForFlops, prunableProducers, shrunkCost } from '../../../src/prune/channels/plan';
import { cfgText, randomWeights } from './nets';

const residual = parseCfg(cfgText(['height=5', 'width=5', 'channels=3'],
  ['[convolutional]', 'batch_normalize=1', 'filters=8', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
  ['[convolutional]', 'batch_normalize=1', 'filters=8', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
  ['[shortcut]', 'from=-2', 'activation=linear'],
  ['[convolutional]', 'filters=6', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
  ['[connected]', 'output=3', 'activation=linear']), 'residual.cfg');

/** Scores making `low` the lowest filters of each layer. */
function lowest(spec = residual, low: Record<number, number[]>): ChannelScores {
  const g = channelGraph(spec);
  return new Map([...g.producers].map(([layer, ids]) => [layer, Float64Array.from(ids, (_, f) => (low[layer]?.includes(f) ? f / 100 : 1 + f))]));
}

describe('[reference] channel graph', () => {
  test('[reference] a [shortcut] ties channel k of both sides; the classes and the input are protected', () => {
    const g = channelGraph(residual);
    const a = g.producers.get(0)!;
    const b = g.producers.get(1)!;
    for (let k = 0; k < 8; k++) expect(g.classOf(a[k])).toBe(g.classOf(b[k]));
    expect(g.classOf(a[0])).not.toBe(g.classOf(a[1]));
    expect(whyProtected(g, g.producers.get(4)![0])).toMatch(/network's output/);
    expect(whyProtected(g, g.input[0].id)).toMatch(/input/);
    expect(whyProtected(g, a[3])).toBeUndefined();
    expect(prunableProducers(g)).toEqual([0, 1, 3]);
  });

  test('[reference] grouped convolutions and shortcuts of other shapes keep their channels, and say why', () => {
    const grouped = parseCfg(cfgText(['height=4', 'width=4', 'channels=2'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[convolutional]', 'filters=4', 'size=1', 'groups=2', 'activation=leaky'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[connected]', 'output=2']), 'grouped.cfg');
    const g = channelGraph(grouped);
    const scores = l1Scores(grouped, randomWeights(grouped, 1));
    for (const layer of [0, 1]) {
      expect(() => planChannels(grouped, g, scores, new Map([[layer, 0.5]]))).toThrow(/grouped convolution \(groups=2\)/);
    }
    expect(keptFilters(g, planChannels(grouped, g, scores, new Map([[2, 0.5]])), 2)).toHaveLength(2);

    const mismatched = parseCfg(cfgText(['height=4', 'width=4', 'channels=2'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[convolutional]', 'filters=6', 'size=1', 'activation=leaky'],
      ['[shortcut]', 'from=-2'],
      ['[connected]', 'output=2']), 'mismatch.cfg');
    const m = channelGraph(mismatched);
    expect(() => planChannels(mismatched, m, l1Scores(mismatched, randomWeights(mismatched, 1)), new Map([[1, 0.5]])))
      .toThrow(/layer 2 \(shortcut\) adds layer 0 \(4 x 4 x 4\) to a 4 x 4 x 6 input/);
  });

  test('[reference] layers it does not know (upsample, reorg) keep what they read and make; the rest stays prunable', () => {
    const spec = parseCfg(cfgText(['height=4', 'width=4', 'channels=2'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[upsample]', 'stride=2'],
      ['[convolutional]', 'filters=8', 'size=1', 'activation=leaky'],
      ['[reorg]', 'stride=2'],
      ['[convolutional]', 'filters=6', 'size=1', 'activation=leaky'],
      ['[connected]', 'output=2']), 'unknown.cfg');
    const g = channelGraph(spec);
    expect(g.outputs[1]).toHaveLength(4);
    expect(g.outputs[3]).toHaveLength(32);
    const scores = l1Scores(spec, randomWeights(spec, 1));
    for (const layer of [0, 2]) {
      expect(() => planChannels(spec, g, scores, new Map([[layer, 0.5]]))).toThrow(/\((upsample|reorg)\): a layer type channel pruning does not know/);
    }
    expect(keptFilters(g, planChannels(spec, g, scores, new Map([[4, 0.5]])), 4)).toHaveLength(3);
  });
});

describe('[reference] planChannels', () => {
  test('[reference] tied channels go only when every side would remove them (union of the kept)', () => {
    const g = channelGraph(residual);
    const scores = lowest(residual, { 0: [0, 1, 2, 3], 1: [2, 3, 4, 5] });
    const plan = planChannels(residual, g, scores, new Map([[0, 0.5], [1, 0.5]]));
    expect(keptFilters(g, plan, 0)).toEqual([0, 1, 4, 5, 6, 7]);
    expect(keptFilters(g, plan, 1)).toEqual([0, 1, 4, 5, 6, 7]);
    // one side keeping everything keeps every tied channel
    const one = planChannels(residual, g, scores, new Map([[0, 0.25]]));
    expect(keptFilters(g, one, 0)).toHaveLength(8);
  });

  test('[reference] tie group: the tied layers rank their channels together and keep the fraction asked', () => {
    const g = channelGraph(residual);
    const scores = lowest(residual, { 0: [0, 1, 2, 3], 1: [2, 3, 4, 5] });
    // each channel by the mean of score / its layer's mean score over both sides:
    // 2 and 3 are low on both, 0 and 1 low on one side only, 4 and 5 high on layer 0
    const plan = planChannels(residual, g, scores, new Map([[0, 0.5], [1, 0.5]]), { tie: 'group' });
    expect(keptFilters(g, plan, 0)).toEqual([4, 5, 6, 7]);
    expect(keptFilters(g, plan, 1)).toEqual([4, 5, 6, 7]);
    // the union rule kept 6 of the same layers (above); a layer not asked keeps all, as with union
    expect(keptFilters(g, planChannels(residual, g, scores, new Map([[0, 0.25]]), { tie: 'group' }), 0)).toHaveLength(8);
    // the group keeps the largest fraction asked of its layers, rounded up to --round-to
    const mixed = planChannels(residual, g, scores, new Map([[0, 0.25], [1, 0.375]]), { tie: 'group' });
    expect(keptFilters(g, mixed, 0)).toEqual([5, 6, 7]);
    expect(keptFilters(g, planChannels(residual, g, scores, new Map([[0, 0.25], [1, 0.375]]), { tie: 'group', roundTo: 4 }), 1)).toEqual([4, 5, 6, 7]);
    // layers outside the tie choose alone, as before
    expect(keptFilters(g, planChannels(residual, g, scores, new Map([[0, 0.5], [1, 0.5], [3, 0.5]]), { tie: 'group' }), 3)).toHaveLength(3);
  });

  test('[reference] keep max(1, round(fraction x filters)), rounded up to --round-to (at most all)', () => {
    const g = channelGraph(residual);
    const scores = l1Scores(residual, randomWeights(residual, 2));
    const kept = (ratio: number, roundTo: number) => keptFilters(g, planChannels(residual, g, scores, new Map([[3, ratio]]), { roundTo }), 3).length;
    expect(kept(0.5, 1)).toBe(3);
    expect(kept(0.5, 4)).toBe(4);
    expect(kept(0.8, 4)).toBe(6); // 5 -> 8 is more than the 6 filters
    expect(kept(0.01, 1)).toBe(1);
    expect(kept(0.01, 8)).toBe(6);
    // tied layers round together
    const tied = planChannels(residual, g, scores, new Map([[0, 0.3], [1, 0.3]]), { roundTo: 4 });
    expect(keptFilters(g, tied, 0).length % 4).toBe(0);
    expect(keptFilters(g, tied, 1)).toEqual(keptFilters(g, tied, 0));
  });

  test('[reference] keeping 0 filters of a layer outside any residual block is refused with the reason', () => {
    const g = channelGraph(residual);
    const scores = l1Scores(residual, randomWeights(residual, 2));
    let error: unknown;
    try {
      planChannels(residual, g, scores, new Map([[3, 0]]));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DarknetError);
    expect((error as Error).message).toBe('layer 3 (conv3): keeping 0 of 6 filters removes the layer, which cannot be done here: it is not inside a residual block: only a [shortcut]\'s branch can go whole (the next layer would read nothing)');
    // the branch's conv (layer 1) may go with its block; the tie to layer 0 keeps layer 0 whole
    const plan = planChannels(residual, g, scores, new Map([[1, 0]]));
    expect(plan.emptied).toEqual(new Set([1]));
    expect(keptFilters(g, plan, 0)).toHaveLength(8);
    expect(() => planChannels(residual, g, scores, new Map([[2, 0.5]]))).toThrow(/only convolutional and connected layers/);
  });

  test('[reference] --layer-keep takes names and indexes', () => {
    expect(parseLayerKeep('conv2=0.5, 3=0.25', residual)).toEqual(new Map([[1, 0.5], [3, 0.25]]));
    expect(() => parseLayerKeep('conv9=0.5', residual)).toThrow(/unknown layer 'conv9'/);
    expect(() => parseLayerKeep('conv1=1.5', residual)).toThrow(/in \[0, 1\]/);
    expect(() => parseLayerKeep('conv1', residual)).toThrow(/not layer=fraction/);
  });
});

describe('[reference] a FLOPs budget', () => {
  const lenetText = fs.readFileSync(path.resolve(__dirname, '../../../cfg/lenet.cfg'), 'utf8');
  const lenet = parseCfg(lenetText, 'lenet.cfg');
  const w = randomWeights(lenet, 9);
  const scores = l1Scores(lenet, w);

  test('[reference] the largest uniform fraction whose FLOPs fit', () => {
    const g = channelGraph(lenet);
    const dense = lenet.layers.reduce((s, l) => s + l.flops, 0);
    for (const fraction of [0.5, 0.2, 0.1]) {
      const r = planForFlops(lenet, g, scores, fraction);
      expect(r.flops).toBeLessThanOrEqual(fraction * dense);
      // a little more of every layer would not fit
      const more = planChannels(lenet, g, scores, new Map(prunableProducers(g).map((l) => [l, Math.min(1, r.keep + 0.03)])));
      expect(shrunkCost(lenet, g, more).flops).toBeGreaterThan(fraction * dense);
      const small = pruneChannels(lenetText, lenet, w, { rule: { kind: 'flops', fraction }, scores });
      expect(small.spec.layers.reduce((s, l) => s + l.flops, 0)).toBe(r.flops);
    }
    expect(() => planForFlops(lenet, g, scores, 0.001)).toThrow(/even one filter per prunable layer/);
  });
});
