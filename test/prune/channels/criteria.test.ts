/**
 * The filter criteria: L1 and |gamma| on hand-checkable arrays, and the Taylor estimate
 * against central differences of the network's loss (float64 reference kernels): scaling a
 * filter's weights and bias by (1 + e) scales its leaky output by (1 + e), so
 * dLoss/de = sum of output * dLoss/d(output), which is what the estimate sums.
 */
import { parseCfg } from '../../../src/cfg/parser';
import { Network } from '../../../src/engine/network';
import { mulberry32 } from '../../../src/engine/random';
import type { WeightsFile } from '../../../src/io/weights';
import { ReferenceKernels } from '../../../src/kernels/reference';
import { bnScores, l1Scores, taylorScores } from '../../../src/prune/channels/criteria';
import { cfgText, randomInputs, randomWeights } from './nets';

const text = cfgText(['batch=4', 'height=6', 'width=6', 'channels=2'],
  ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
  ['[convolutional]', 'filters=5', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
  ['[maxpool]', 'size=2', 'stride=2'],
  ['[connected]', 'output=6', 'activation=leaky'],
  ['[connected]', 'output=3', 'activation=linear'],
  ['[softmax]']);
const spec = parseCfg(text, 'taylor.cfg');

describe('[reference] L1 and batch-norm criteria', () => {
  test('[reference] L1 sums |w| per filter (conv) and per row (connected); bn takes |gamma|, L1 where there is none', () => {
    const w = randomWeights(spec, 1);
    const l1 = l1Scores(spec, w);
    expect([...l1.keys()]).toEqual([0, 1, 3, 4]);
    const conv2 = w.layers[1].weights!; // [5, 4, 3, 3]
    expect(l1.get(1)![2]).toBeCloseTo(conv2.subarray(2 * 36, 3 * 36).reduce((s, x) => s + Math.abs(x), 0), 10);
    const fc1 = w.layers[3].weights!; // [6, 5 * 3 * 3]
    expect(l1.get(3)![5]).toBeCloseTo(fc1.subarray(5 * 45, 6 * 45).reduce((s, x) => s + Math.abs(x), 0), 10);
    w.layers[0].scales![1] = -0.25;
    const bn = bnScores(spec, w);
    expect(bn.scores.get(0)![1]).toBe(0.25);
    expect(bn.withoutBatchNorm).toEqual([1, 3, 4]);
    expect(bn.scores.get(3)).toEqual(l1.get(3));
  });
});

describe('[reference] Taylor criterion', () => {
  const k = new ReferenceKernels({ float64: true });
  const x = Float32Array.from(randomInputs(spec, 4, 3));
  const random = mulberry32(8);
  const y = new Float32Array(4 * 3);
  for (let b = 0; b < 4; b++) y[b * 3 + Math.floor(random() * 3)] = 1;
  const batches = { next: async () => ({ x, y }) };

  function loss(w: WeightsFile): number {
    const net = new Network(spec, k);
    net.loadWeights(w);
    k.upload(net.input, x);
    k.upload(net.truth, y);
    // training mode, as the estimate runs: layer 0's batch norm on the batch's statistics
    const cost = net.forward(true, true);
    net.dispose();
    return cost;
  }

  test('[reference] |sum of output x gradient| / (images x positions) matches central differences of the loss', async () => {
    // conv2 and fc1 have no batch norm: their leaky outputs scale exactly with their filters
    const w = randomWeights(spec, 5);
    const net = new Network(spec, k);
    net.loadWeights(w);
    const t = await taylorScores(net, batches, 2);
    net.dispose();
    expect(t.images).toBe(8);
    for (const [layer, positions] of [[1, 36], [3, 1]]) {
      for (let f = 0; f < (layer === 1 ? 5 : 6); f++) {
        const scaled = (s: number) => {
          const v: WeightsFile = { header: w.header, layers: w.layers.map((l) => ({ ...l })) };
          const a = w.layers[layer].weights!;
          const per = a.length / (layer === 1 ? 5 : 6);
          v.layers[layer].weights = a.map((z, i) => (Math.floor(i / per) === f ? z * s : z));
          v.layers[layer].biases = w.layers[layer].biases!.map((z, i) => (i === f ? z * s : z));
          return loss(v);
        };
        // NOTE: the scaled weights are stored as float32 (a .weights file's precision), so e is
        // not tiny: rounding then moves the difference by about 1e-7 / e relatively
        const e = 1e-3;
        const derivative = (scaled(1 + e) - scaled(1 - e)) / (2 * e);
        const expected = Math.abs(derivative) / (4 * positions);
        expect(Math.abs(t.scores.get(layer)![f] - expected)).toBeLessThan(1e-3 * expected + 1e-9);
      }
    }
  });

  test('[reference] leaves the network as it found it, and scores a channel nothing reads as 0', async () => {
    const w = randomWeights(spec, 6);
    // nothing reads filter 2 of conv2: fc1's columns for it are 0
    for (let o = 0; o < 6; o++) w.layers[3].weights!.fill(0, o * 45 + 2 * 9, o * 45 + 3 * 9);
    const net = new Network(spec, k);
    net.loadWeights(w);
    const before = net.exportWeights();
    const t = await taylorScores(net, batches, 1);
    expect(t.scores.get(1)![2]).toBe(0);
    expect(t.scores.get(1)![1]).toBeGreaterThan(0);
    expect(net.exportWeights()).toEqual(before);
    for (const l of net.layers) for (const p of l.params) if (p.updates) expect(Array.from(k.read(p.updates)).every((v) => v === 0)).toBe(true);
    net.dispose();
  });
});
