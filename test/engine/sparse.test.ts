/**
 * Sparse inference through the network (connected layers on k.sparse): the same outputs as
 * the dense path on a pruned LeNet-300-100, `auto` choosing by sparsity, the compressed copy
 * made again after training updates and loads, and nothing left behind by dispose. The
 * same for convolutional layers on a pruned LeNet-5 (im2col panels times CSR weights),
 * training with frozen zeros included.
 */
import * as path from 'path';
import { readCfg } from '../../src/cfg/parser';
import { Network, withBatch } from '../../src/engine/network';
import { mulberry32 } from '../../src/engine/random';
import { applyMasks, masksFromZeros } from '../../src/engine/masks';
import { applyThreshold } from '../../src/prune/threshold';
import { describeEachBackend } from '../backends';
import { ReferenceKernels } from '../../src/kernels/reference';
import { ConvolutionalLayer, convolutional } from '../../src/layers/convolutional';
import { build, context, minusNumericalGradient, netState, projectedLoss, randomValues, relativeError } from '../layers/gradcheck';

const CFG = path.resolve(__dirname, '..', '..', 'cfg', 'lenet-300-100.cfg');
/** LeNet-5: conv 20 5x5, maxpool, conv 50 5x5, maxpool, fc 500, fc 10 (layers 0, 2, 4, 5 have weights) */
const LENET5 = path.resolve(__dirname, '..', '..', 'cfg', 'lenet.cfg');

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
      // the frozen zeros stay exactly 0 on the sparse path too (one expect: 266k weights)
      const w0 = thresholded.layers[i].weights!;
      expect(w0.findIndex((v, j) => v === 0 && !Object.is(l.weights![j], 0))).toBe(-1);
    });
  });

  test(`[${backend}] LeNet-5 pruned as Han et al.: sparse conv and fc layers predict as dense; auto follows each layer's sparsity`, () => {
    const k = get();
    if (!k.sparse) return; // gpu.js backends: dense only (the first test)
    const spec = withBatch(readCfg(LENET5), 3);
    const net = new Network(spec, k, { seed: 4 });
    // conv1 34% (below auto's thresholds: stays dense), conv2 88%, fc1 92%, fc2 81%
    const rules = new Map([[0, 0.34], [2, 0.88], [4, 0.92], [5, 0.81]].map(([i, s]) => [i, { kind: 'fraction' as const, sparsity: s }]));
    const pruned = applyThreshold(spec, net.exportWeights(), { scope: 'map', rules }).weights;
    net.loadWeights(pruned);
    const random = mulberry32(6);
    const x = Float32Array.from({ length: 3 * 784 }, () => random());
    const dense = Float32Array.from(net.predict(x));
    expect(net.setSparse('auto')).toEqual([2, 4, 5]);
    expect(maxDiff(net.predict(x), dense)).toBeLessThan(1e-5);
    expect(net.setSparse('on')).toEqual([0, 2, 4, 5]);
    expect(maxDiff(net.predict(x), dense)).toBeLessThan(1e-5);
    net.dispose();
  });

  test(`[${backend}] LeNet-5 training with frozen zeros runs sparse convolutions and gives the dense path's weights`, () => {
    const k = get();
    if (!k.sparse) return;
    const spec = withBatch(readCfg(LENET5), 4);
    const start = new Network(spec, k, { seed: 8 });
    const rules = new Map([[0, 0.5], [2, 0.88], [4, 0.9], [5, 0.8]].map(([i, s]) => [i, { kind: 'fraction' as const, sparsity: s }]));
    const thresholded = applyThreshold(spec, start.exportWeights(), { scope: 'map', rules }).weights;
    start.dispose();
    const random = mulberry32(10);
    const x = Float32Array.from({ length: 4 * 784 }, () => random());
    const y = new Float32Array(4 * 10);
    for (let i = 0; i < 4; i++) y[i * 10 + ((3 * i) % 10)] = 1;
    const trained = (mode: 'on' | 'off') => {
      const net = new Network(spec, k, { seed: 8 });
      net.loadWeights(thresholded);
      applyMasks(net, masksFromZeros(net, thresholded));
      expect(net.setSparse(mode)).toEqual(mode === 'on' ? [0, 2, 4, 5] : []);
      for (let step = 0; step < 3; step++) net.trainBatch(x, y);
      const w = net.exportWeights();
      net.dispose();
      return w;
    };
    const sparse = trained('on');
    const dense = trained('off');
    sparse.layers.forEach((l, i) => {
      if (!l.weights) return;
      expect(maxDiff(l.weights, dense.layers[i].weights!)).toBeLessThan(1e-4);
      expect(maxDiff(l.biases!, dense.layers[i].biases!)).toBeLessThan(1e-4);
      const w0 = thresholded.layers[i].weights!;
      expect(w0.findIndex((v, j) => v === 0 && !Object.is(l.weights![j], 0))).toBe(-1);
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

describe('[reference] a sparse convolutional layer against finite differences', () => {
  test('[reference] masked conv (stride 2, pad 1), mish, sparse on: input, bias and kept-weight gradients; pruned ones stay 0; groups=2 runs dense', () => {
    const k = new ReferenceKernels({ float64: true });
    const ctx = context({ batch: 2, h: 6, w: 5, c: 2 });
    const keys = { filters: 3, size: 3, stride: 2, pad: 1, activation: 'mish' };
    const { layer } = build(convolutional, k, 'convolutional', keys, ctx);
    const conv = layer as ConvolutionalLayer;
    const random = mulberry32(12);
    const mask = Array.from({ length: conv.weights.size }, () => (random() < 0.6 ? 0 : 1));
    conv.setMask(mask);
    expect(conv.setSparse('on')).toBe(true);
    const xv = randomValues(2 * 2 * 6 * 5, random);
    const R = randomValues(conv.output.size, random);
    const input = k.alloc(xv.length);
    k.upload(input, xv);
    const inputDelta = k.alloc(xv.length);
    const net = netState(k, input, inputDelta, true);
    conv.forward(net);
    k.upload(conv.delta, R.map((r) => -r));
    k.fill(conv.weightUpdates, 0);
    k.fill(conv.biasUpdates, 0);
    conv.backward(net);
    const forwardLoss = projectedLoss(k, conv, net, R);
    // the sparse path holds a packed copy of the weights: re-read after each nudge
    const loss = () => {
      conv.paramsChanged();
      return forwardLoss();
    };
    const dw = k.read(conv.weightUpdates);
    const numericW = minusNumericalGradient(k, conv.weights, loss, 1e-6);
    expect(relativeError(dw.filter((_, i) => mask[i] === 1), numericW.filter((_, i) => mask[i] === 1))).toBeLessThan(1e-6);
    expect(Array.from(dw).every((v, i) => mask[i] === 1 || Object.is(v, 0))).toBe(true);
    expect(relativeError(k.read(conv.biasUpdates), minusNumericalGradient(k, conv.biases, loss, 1e-6))).toBeLessThan(1e-6);
    expect(relativeError(k.read(inputDelta), minusNumericalGradient(k, input, loss, 1e-6))).toBeLessThan(1e-6);

    const grouped = build(convolutional, k, 'convolutional', { ...keys, filters: 4, groups: 2 }, ctx).layer as ConvolutionalLayer;
    expect(grouped.setSparse('on')).toBe(false);
    k.dispose();
  });
});
