/**
 * The correctness proof of channel surgery (DESIGN.md §8): on every graph shape, removing
 * channels whose removal cannot change the function (their outgoing weights are 0, or they
 * output a constant act(bias) because their weights or batch-norm scale are 0, folded into
 * the readers) leaves every output of the network equal to the unpruned one's, computed by
 * the engine on the float64 reference kernels. And the shrunk cfg and weights load.
 */
import { parseCfg } from '../../../src/cfg/parser';
import { l1Scores } from '../../../src/prune/channels/criteria';
import { channelGraph } from '../../../src/prune/channels/graph';
import { keptFilters, planChannels, shrunkCost } from '../../../src/prune/channels/plan';
import { shrink } from '../../../src/prune/channels/surgery';
import { CASES } from './cases';
import { cfgText, maxDifference, outputs, randomInputs, randomWeights, removing, roundTrip } from './nets';

describe('[reference] channel surgery keeps the function of a network whose removed channels contribute nothing', () => {
  for (const c of CASES) {
    test(`[reference] ${c.name}`, () => {
      const spec = parseCfg(c.text, 'case.cfg');
      const w = randomWeights(spec, 11);
      const g = channelGraph(spec);
      c.prepare(spec, w, g);
      const plan = removing(g, c.remove);
      const small = shrink(c.text, spec, w, g, plan);

      const x = randomInputs(spec, 3, 5);
      const dense = outputs(spec, w, x, 3);
      const shrunk = outputs(small.spec, small.weights, x, 3);
      expect(maxDifference(shrunk, dense)).toBeLessThan(1e-5);
      // not trivially: the removed channels' constants, not folded, would change the outputs
      const zeros = new Map([...g.producers].map(([layer, ids]) => [layer, new Float64Array(ids.length)]));
      const plain = shrink(c.text, spec, w, g, plan, { foldValues: zeros });
      const unfolded = outputs(plain.spec, plain.weights, x, 3);
      if (!c.nothingToFold) expect(maxDifference(unfolded, dense)).toBeGreaterThan(1e-4);

      for (const [layer, fs] of c.remove) {
        const change = small.changes.find((ch) => ch.index === layer)!;
        expect(change.filtersBefore - change.filtersAfter).toBe(fs.length);
        expect(change.kept.some((f) => fs.includes(f))).toBe(false);
      }
      const loaded = roundTrip(small.cfgText, small.weights);
      expect(loaded.spec.layers.map((l) => l.outputs)).toEqual(small.spec.layers.map((l) => l.outputs));
      expect(maxDifference(outputs(loaded.spec, loaded.weights, x, 3), shrunk)).toBe(0);
      const params = small.spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0);
      expect(shrunkCost(spec, g, plan)).toEqual({ params, flops: small.spec.layers.reduce((s, l) => s + l.flops, 0) });
    });
  }

});

describe('[reference] channel surgery on random (non-zero) channels', () => {
  test('[reference] conv -> maxpool -> conv -> connected: shapes and parameter counts', () => {
    const text = cfgText(['height=10', 'width=10', 'channels=3'],
      ['[convolutional]', 'batch_normalize=1', 'filters=12', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[maxpool]', 'size=2', 'stride=2'],
      ['[convolutional]', 'filters=10', 'size=3', 'stride=1', 'pad=0', 'activation=relu'],
      ['[connected]', 'output=9', 'activation=relu'],
      ['[connected]', 'output=4', 'activation=linear'],
      ['[softmax]']);
    const spec = parseCfg(text, 'random.cfg');
    const w = randomWeights(spec, 3);
    const g = channelGraph(spec);
    const plan = planChannels(spec, g, l1Scores(spec, w), new Map([[0, 0.5], [2, 0.3], [3, 0.6]]));
    const small = shrink(text, spec, w, g, plan);
    expect(small.changes.map((c) => [c.index, c.filtersBefore, c.filtersAfter])).toEqual([[0, 12, 6], [2, 10, 3], [3, 9, 5]]);
    // conv1: 6 x (bias, scale, mean, variance) + 6*3*9; conv2: 3 + 3*6*9; fc1 (3 x 3 x 3 inputs): 5 + 5*27; fc2: 4 + 4*5
    const expected = [6 * 4 + 6 * 3 * 9, 0, 3 + 3 * 6 * 9, 5 + 5 * 27, 4 + 4 * 5, 0];
    expect(small.spec.layers.map((l) => l.params.reduce((s, p) => s + p.size, 0))).toEqual(expected);
    const loaded = roundTrip(small.cfgText, small.weights);
    expect(loaded.bytes).toBe(20 + 4 * expected.reduce((a, b) => a + b, 0));
    expect(shrunkCost(spec, g, plan).params).toBe(expected.reduce((a, b) => a + b, 0));
    // the kept filters are the largest by L1, and the arrays are theirs
    const l1 = l1Scores(spec, w).get(2)!;
    const kept = keptFilters(g, plan, 2);
    const smallest = Math.min(...kept.map((f) => l1[f]));
    expect([...l1].filter((v, f) => !kept.includes(f) && v > smallest)).toEqual([]);
    // the first kept filter's weights: its kept input channels' kernels, in order
    const keptIn = keptFilters(g, plan, 0);
    const f0 = kept[0];
    const expectW = keptIn.flatMap((j) => Array.from(w.layers[2].weights!.subarray((f0 * 12 + j) * 9, (f0 * 12 + j + 1) * 9)));
    expect(Array.from(small.weights.layers[2].weights!.subarray(0, keptIn.length * 9))).toEqual(expectW);
  });

  test('[reference] the last layer keeps its outputs (the classes), and the rest of the net still runs', () => {
    const text = cfgText(['inputs=6'], ['[connected]', 'output=5', 'activation=relu'], ['[connected]', 'output=4', 'activation=linear']);
    const spec = parseCfg(text, 'mlp.cfg');
    const w = randomWeights(spec, 4);
    const g = channelGraph(spec);
    expect(() => planChannels(spec, g, l1Scores(spec, w), new Map([[1, 0.5]]))).toThrow(/layer 1 \(fc2\).*cannot be removed: the network's output/);
    // nor does surgery take a hand-made plan that removes them, or a whole layer
    expect(() => shrink(text, spec, w, g, removing(g, [[1, [0]]]))).toThrow(/network's output \(the classes\)/);
    expect(() => shrink(text, spec, w, g, removing(g, [[0, [0, 1, 2, 3, 4]]]))).toThrow(/layer 0 \(fc1\): every filter would go, and the layer cannot be removed: it is not inside a residual block/);
    const small = shrink(text, spec, w, g, planChannels(spec, g, l1Scores(spec, w), new Map([[0, 0.4]])));
    expect(small.spec.layers.map((l) => l.outputs)).toEqual([2, 4]);
    expect(outputs(small.spec, small.weights, randomInputs(spec, 2, 1), 2).every(Number.isFinite)).toBe(true);
  });
});
