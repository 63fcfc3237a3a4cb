/**
 * Sparse inference through the network (connected layers on k.sparse): the same outputs as
 * the dense path on a pruned LeNet-300-100, `auto` choosing by sparsity, the compressed copy
 * made again after training updates and loads, and nothing left behind by dispose.
 */
import * as path from 'path';
import { readCfg } from '../../src/cfg/parser';
import { Network, withBatch } from '../../src/engine/network';
import { mulberry32 } from '../../src/engine/random';
import { applyMasks, masksFromZeros } from '../../src/engine/masks';
import { applyThreshold } from '../../src/prune/threshold';
import { describeEachBackend } from '../backends';

const CFG = path.resolve(__dirname, '..', '..', 'cfg', 'lenet-300-100.cfg');

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return d;
}

describeEachBackend('sparse inference', (backend, get) => {
  test(`[${backend}] a pruned network predicts the same sparse as dense; auto follows the sparsity; updates and loads are seen`, () => {
    const k = get();
    if (!k.sparse) {
      // gpu.js backends have no sparse ops: every mode stays dense.
      const net = new Network(withBatch(readCfg(CFG), 4), k);
      expect(net.setSparse('on')).toEqual([]);
      net.dispose();
      return;
    }
    const spec = withBatch(readCfg(CFG), 8);
    const net = new Network(spec, k, { seed: 3 });
    // fc1 and fc2 at 92% and 91% zeros, fc3 at 30% (below auto's 50%)
    const rules = new Map([[0, 0.92], [1, 0.91], [2, 0.3]].map(([i, s]) => [i, { kind: 'fraction' as const, sparsity: s }]));
    const pruned = applyThreshold(spec, net.exportWeights(), { scope: 'map', rules }).weights;
    net.loadWeights(pruned);
    const random = mulberry32(5);
    const x = Float32Array.from({ length: 8 * 784 }, () => random());
    const dense = Float32Array.from(net.predict(x));

    expect(net.setSparse('auto')).toEqual([0, 1]);
    expect(maxDiff(net.predict(x), dense)).toBeLessThan(1e-5);
    expect(net.setSparse('on')).toEqual([0, 1, 2]);
    expect(maxDiff(net.predict(x), dense)).toBeLessThan(1e-5);

    // A training step changes the weights: inference must follow them.
    const y = new Float32Array(8 * 10);
    for (let i = 0; i < 8; i++) y[i * 10 + (i % 10)] = 1;
    net.trainBatch(x, y);
    const sparseAfter = Float32Array.from(net.predict(x));
    net.setSparse('off');
    expect(maxDiff(sparseAfter, net.predict(x))).toBeLessThan(1e-5);

    // A load replaces them again.
    net.setSparse('on');
    net.loadWeights(pruned);
    expect(maxDiff(net.predict(x), dense)).toBeLessThan(1e-5);
    net.dispose();
  });

  test(`[${backend}] training with frozen zeros runs sparse and gives the dense path's weights`, () => {
    const k = get();
    if (!k.sparse) return; // gpu.js backends: dense only (the test above)
    const spec = withBatch(readCfg(CFG), 16);
    const start = new Network(spec, k, { seed: 7 });
    const rules = new Map([[0, 0.9], [1, 0.9], [2, 0.6]].map(([i, s]) => [i, { kind: 'fraction' as const, sparsity: s }]));
    const thresholded = applyThreshold(spec, start.exportWeights(), { scope: 'map', rules }).weights;
    start.dispose();
    const random = mulberry32(9);
    const x = Float32Array.from({ length: 16 * 784 }, () => random());
    const y = new Float32Array(16 * 10);
    for (let i = 0; i < 16; i++) y[i * 10 + (i % 10)] = 1;
    const trained = (mode: 'on' | 'off') => {
      const net = new Network(spec, k, { seed: 7 });
      net.loadWeights(thresholded);
      applyMasks(net, masksFromZeros(net, thresholded));
      expect(net.setSparse(mode)).toEqual(mode === 'on' ? [0, 1, 2] : []);
      for (let step = 0; step < 4; step++) net.trainBatch(x, y);
      const w = net.exportWeights();
      net.dispose();
      return w;
    };
    const sparse = trained('on');
    const dense = trained('off');
    sparse.layers.forEach((l, i) => {
      if (!l.weights) return;
      expect(maxDiff(l.weights, dense.layers[i].weights!)).toBeLessThan(1e-4);
      // the frozen zeros stay exactly 0 on the sparse path too
      thresholded.layers[i].weights!.forEach((w0, j) => {
        if (w0 === 0) expect(Object.is(l.weights![j], 0)).toBe(true);
      });
    });
  });

  test(`[${backend}] building, using sparsely and disposing networks leaves the backend's memory where it was`, () => {
    const k = get();
    const stats = () => (k as { memoryStats?: () => { liveBytes: number } }).memoryStats?.().liveBytes ?? 0;
    const spec = withBatch(readCfg(CFG), 4);
    const before = stats();
    for (let i = 0; i < 5; i++) {
      const net = new Network(spec, k, { seed: i });
      net.setSparse('on');
      net.predict(new Float32Array(4 * 784));
      net.dispose();
    }
    expect(stats()).toBe(before);
  });
});
