/**
 * Removing whole residual blocks (blocks.ts): the proof obligation of surgery.test.ts for
 * layers. A block whose branch outputs exactly a constant (its last conv's batch-norm scales
 * 0, the shift beta not 0: folded) goes, the routes and shortcuts after it are renumbered in
 * the cfg text (relative and absolute forms), and the smaller network's outputs equal the
 * whole one's on the float64 reference kernels. A conv emptied by a plan (keep 0) takes its
 * block with it. What cannot go is refused with the reason.
 */
import { parseCfg } from '../../../src/cfg/parser';
import { removeSections } from '../../../src/cfg/write';
import type { WeightsFile } from '../../../src/io/weights';
import { blockForLayer, lowestBlocks, removeBlocks, residualBlocks, scoreBlocks } from '../../../src/prune/channels/blocks';
import { bnScores, l1Scores } from '../../../src/prune/channels/criteria';
import { channelGraph } from '../../../src/prune/channels/graph';
import { planChannels, shrunkCost } from '../../../src/prune/channels/plan';
import { shrink } from '../../../src/prune/channels/surgery';
import { RESIDUAL } from './cases';
import { cfgText, maxDifference, outputs, randomInputs, randomWeights, removing, roundTrip } from './nets';

const spec = parseCfg(RESIDUAL, 'residual.cfg');

/** Random weights with the given convs' batch-norm scales set to 0 (their outputs are then act(beta), beta random). */
function weightsWithZeroGamma(layers: number[], seed = 11): WeightsFile {
  const w = randomWeights(spec, seed);
  for (const l of layers) w.layers[l].scales!.fill(0);
  return w;
}

const x = randomInputs(spec, 3, 5);
const blocks = residualBlocks(spec);

describe('[reference] residual blocks', () => {
  test('[reference] the blocks of a cfg and their scores (mean |gamma| of the branch\'s convs, or mean L1)', () => {
    expect(blocks.map((b) => [b.from, b.tail, b.shortcut, b.why])).toEqual([[0, 2, 3, undefined], [3, 5, 6, undefined]]);
    const w = randomWeights(spec, 3);
    w.layers[4].scales!.set([0.1, -0.2, 0.3, -0.4]);
    w.layers[5].scales!.set([0.5, 0.6, -0.7, 0.8]);
    const byBn = scoreBlocks(spec, w, blocks, 'bn', bnScores(spec, w).scores);
    expect(byBn[1].by).toBe('bn');
    expect(byBn[1].score).toBeCloseTo((0.1 + 0.2 + 0.3 + 0.4 + 0.5 + 0.6 + 0.7 + 0.8) / 8, 6);
    expect(lowestBlocks(spec, byBn, 1).map((s) => s.block.shortcut)).toEqual([6]);
    const l1 = l1Scores(spec, w);
    const byL1 = scoreBlocks(spec, w, blocks, 'l1', l1);
    expect(byL1[0].score).toBeCloseTo(([...l1.get(1)!, ...l1.get(2)!].reduce((a, b) => a + b, 0)) / 8, 9);
    expect(() => lowestBlocks(spec, byBn, 3)).toThrow(/--layers 3: residual\.cfg has 2 residual blocks that can be removed/);
  });

  test('[reference] a block whose branch outputs a constant goes: same outputs, routes and shortcuts renumbered in the text', () => {
    const w = weightsWithZeroGamma([5]);
    const cut = removeBlocks(RESIDUAL, spec, w, [{ block: blocks[1] }], { file: 'small.cfg' });
    expect(cut.spec.layers.map((l) => l.type)).toEqual(['convolutional', 'convolutional', 'convolutional', 'shortcut', 'route', 'convolutional', 'avgpool', 'connected', 'softmax']);
    expect(cut.layerMap).toEqual([0, 1, 2, 3, -1, -1, -1, 4, 5, 6, 7, 8]);
    // route layers=-1,-7 (layers 6 and 0) -> -1,-4 (layers 3 and 0); everything else as written
    expect(cut.cfgText).toContain('# the head\n[route]\nlayers=-1,-4\n');
    expect(cut.cfgText).not.toContain('# block B\n\n');
    expect(cut.cfgText.replace('layers=-1,-4', 'layers=-1,-7')).toBe(removeSections(RESIDUAL, new Set([4, 5, 6]), 'x.cfg'));
    expect(cut.removed).toEqual([{ from: 3, shortcut: 6, exact: true, folded: expect.any(Number) }]);
    expect(cut.removed[0].folded).toBeGreaterThan(0.01);
    expect(cut.notes).toEqual([]);

    const dense = outputs(spec, w, x, 3);
    expect(maxDifference(outputs(cut.spec, cut.weights, x, 3), dense)).toBeLessThan(1e-6);
    // not trivially: without the fold (beta taken as 0) the outputs move
    const plain = removeBlocks(RESIDUAL, spec, w, [{ block: blocks[1], values: new Float64Array(4) }]);
    expect(maxDifference(outputs(plain.spec, plain.weights, x, 3), dense)).toBeGreaterThan(1e-3);
    // the files: the text parses, the weights load, the outputs are the same
    const loaded = roundTrip(cut.cfgText, cut.weights);
    expect(maxDifference(outputs(loaded.spec, loaded.weights, x, 3), dense)).toBeLessThan(1e-6);
    expect(loaded.bytes).toBeLessThan(roundTrip(RESIDUAL, w).bytes);
  });

  test('[reference] both blocks: the second\'s absolute from= follows the first\'s removal; outputs the same', () => {
    const w = weightsWithZeroGamma([2, 5]);
    const cutA = removeBlocks(RESIDUAL, spec, w, [{ block: blocks[0] }]);
    expect(cutA.cfgText).toContain('[shortcut]\nfrom=0\n'); // from=3 (block A's shortcut) -> its x, layer 0
    expect(cutA.cfgText).toContain('layers=-1,-4');
    expect(maxDifference(outputs(cutA.spec, cutA.weights, x, 3), outputs(spec, w, x, 3))).toBeLessThan(1e-6);
    const cut = removeBlocks(RESIDUAL, spec, w, [{ block: blocks[0] }, { block: blocks[1] }]);
    expect(cut.spec.layers.map((l) => l.type)).toEqual(['convolutional', 'route', 'convolutional', 'avgpool', 'connected', 'softmax']);
    expect(cut.cfgText).toContain('[route]\nlayers=-1,-1\n');
    expect(maxDifference(outputs(cut.spec, cut.weights, x, 3), outputs(spec, w, x, 3))).toBeLessThan(1e-6);
    expect(cut.removed.map((r) => r.exact)).toEqual([true, true]);
  });

  test('[reference] scales not 0: the branch is taken as act(beta), an approximation that is said', () => {
    const w = randomWeights(spec, 11);
    const cut = removeBlocks(RESIDUAL, spec, w, [{ block: blocks[1] }]);
    expect(cut.removed[0].exact).toBe(false);
    expect(cut.notes).toEqual([expect.stringMatching(/^layers 4-6: the branch's output is taken to be act\(bias\) of layer 5 \(conv\d\), but its batch-norm scales are not all 0 \(mean \|gamma\| [\d.]+\): an approximation/)]);
  });

  test('[reference] a plan that keeps 0 filters of a conv inside a branch removes its block, with other channels', () => {
    // layer 4 emptied (gamma 0: it outputs leaky(beta)), carried through layer 5 (1x1) and folded;
    // and conv 8's filter 2 (gamma 0) removed as a channel at the same time
    const w = weightsWithZeroGamma([4]);
    w.layers[8].scales![2] = 0;
    const g = channelGraph(spec);
    const plan = { ...removing(g, [[8, [2]]]), emptied: new Set([4]) };
    const small = shrink(RESIDUAL, spec, w, g, plan, { file: 'small.cfg' });
    expect(small.layerMap).toEqual([0, 1, 2, 3, -1, -1, -1, 4, 5, 6, 7, 8]);
    expect(small.blocks).toEqual([{ from: 3, shortcut: 6, exact: true, folded: expect.any(Number) }]);
    expect(small.blocks![0].folded).toBeGreaterThan(0.01); // the branch's constant was not 0: it was folded
    expect(small.changes.map((c) => [c.index, c.filtersBefore, c.filtersAfter])).toEqual([[8, 5, 4]]);
    expect(small.spec.layers[5].outC).toBe(4);
    expect(maxDifference(outputs(small.spec, small.weights, x, 3), outputs(spec, w, x, 3))).toBeLessThan(1e-6);
    expect(shrunkCost(spec, g, plan).params).toBe(small.spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0));

    // planChannels: keep 0 of the branch's conv is the same plan; of a conv outside any block, refused
    const scores = l1Scores(spec, w);
    expect(planChannels(spec, g, scores, new Map([[4, 0]])).emptied).toEqual(new Set([4]));
    expect(() => planChannels(spec, g, scores, new Map([[8, 0]])))
      .toThrow(/^layer 8 \(conv\d\): keeping 0 of 5 filters removes the layer, which cannot be done here: it is not inside a residual block/);
  });

  test('[reference] what cannot go is refused with the reason', () => {
    // a later [route] reads a layer inside block A; the shortcut scales x (beta)
    const inside = parseCfg(cfgText(['height=4', 'width=4', 'channels=2'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=linear'],
      ['[shortcut]', 'from=-3', 'activation=linear'],
      ['[convolutional]', 'filters=4', 'size=1', 'activation=leaky'],
      ['[shortcut]', 'from=-2', 'beta=0.5'],
      ['[route]', 'layers=-1,1'],
      ['[connected]', 'output=2', 'activation=linear']), 'inside.cfg');
    const b = residualBlocks(inside);
    expect(b.map((x) => x.why)).toEqual([
      'layer 6 (route) reads layer 1, inside the block',
      'layer 5 (shortcut) scales layer 3 by beta=0.5: without the branch its output would not be layer 3\'s',
    ]);
    const w = randomWeights(inside, 1);
    expect(() => lowestBlocks(inside, scoreBlocks(inside, w, b, 'l1', l1Scores(inside, w)), 1))
      .toThrow(/^--layers 1: inside\.cfg has 0 residual blocks that can be removed; layers 1-3: layer 6 \(route\) reads layer 1, inside the block; layers 4-5: /);
    expect(() => removeBlocks('', inside, w, [{ block: b[0] }])).toThrow(/the residual block layers 1-3 cannot be removed: layer 6 \(route\) reads layer 1/);
    expect(blockForLayer(inside, 1).why).toMatch(/its residual block \(layers 1-3\) cannot be removed: layer 6 \(route\) reads layer 1/);
    const g = channelGraph(inside);
    expect(() => shrink('', inside, w, g, removing(g, [[1, [0, 1, 2, 3]]])))
      .toThrow(/^layer 1 \(conv2\): every filter would go, and the layer cannot be removed: its residual block \(layers 1-3\) cannot be removed: layer 6 \(route\) reads layer 1, inside the block$/);
    // conv 5 (layer 4) is tied by the shortcut to convs 1 and 3: emptying it empties layer 0, outside any block
    expect(() => shrink('', inside, w, g, removing(g, [[4, [0, 1, 2, 3]]])))
      .toThrow(/^layer 0 \(conv1\): every filter would go, and the layer cannot be removed: it is not inside a residual block/);
  });

  test('[reference] a leaky [shortcut] (cfg/resnet-mnist.cfg\'s kind): removed with the approximation said', () => {
    const leaky = RESIDUAL.replace('from=3\nactivation=linear', 'from=3\nactivation=leaky');
    const s = parseCfg(leaky, 'leaky.cfg');
    const w = randomWeights(s, 11);
    w.layers[5].scales!.fill(0);
    const cut = removeBlocks(leaky, s, w, [{ block: residualBlocks(s)[1] }]);
    expect(cut.removed[0].exact).toBe(false);
    expect(cut.notes).toEqual(['layers 4-6: layer 6 (shortcut) applied leaky to layer 3 + the branch; without the block layer 3\'s output passes without it (exact only where leaky(y) = y)']);
  });
});
