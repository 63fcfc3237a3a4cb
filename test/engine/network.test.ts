/**
 * Whole-network checks: a gradient check of a full classifier (conv + batch norm +
 * maxpool + connected + dropout off + softmax) in float64 on the reference, the
 * masked update through Network on every backend, and short training runs on real
 * MNIST on every backend, whose loss curves must agree across backends.
 */
import { loadMnist } from '../../src/data/mnist';
import { ReferenceKernels } from '../../src/kernels/reference';
import type { Kernels } from '../../src/kernels/types';
import { Network } from '../../src/engine/network';
import { parseCfg } from '../../src/cfg/parser';
import { mulberry32 } from '../../src/engine/random';
import { describeEachBackend } from '../backends';
import { minusNumericalGradient } from '../layers/gradcheck';

const GRAD_CFG = `
[net]
batch=2
height=6
width=6
channels=2
learning_rate=0.1
momentum=0.9
decay=0.0005

[convolutional]
filters=3
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

[maxpool]
size=2
stride=2

[connected]
output=5
activation=tanh

[dropout]
probability=0

[connected]
output=4
activation=linear

[softmax]
`;

function randomArray(n: number, random: () => number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => (random() * 2 - 1) * scale);
}

function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  const y = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) y[i * classes + labels[i]] = 1;
  return y;
}

describe('[reference] whole-network gradient (float64, central differences)', () => {
  test('[reference] every parameter of conv+bn / maxpool / connected / dropout(p=0) / softmax', () => {
    const k = new ReferenceKernels({ float64: true });
    const net = new Network(parseCfg(GRAD_CFG, 'grad.cfg'), k, { seed: 3 });
    const random = mulberry32(7);
    k.upload(net.input, randomArray(net.batch * net.config.inputs, random));
    k.upload(net.truth, oneHot([1, 3], 4));
    const loss = () => net.forward(true, true);

    loss();
    net.backward();
    const eps = 1e-6;
    let checked = 0;
    let worst = 0;
    for (const layer of net.layers) {
      for (const p of layer.params) {
        if (!p.updates) continue;
        const analytic = k.read(p.updates); // darknet's sign: minus the gradient
        const numeric = minusNumericalGradient(k, p.tensor, loss, eps);
        for (let i = 0; i < numeric.length; i++) {
          const err = Math.abs(numeric[i] - analytic[i]) / Math.max(1e-3, Math.abs(numeric[i]) + Math.abs(analytic[i]));
          worst = Math.max(worst, err);
          checked++;
        }
      }
    }
    // Tolerance: relative error below 1e-5 in float64 (the difference step is 1e-6).
    expect(checked).toBeGreaterThan(200);
    expect(worst).toBeLessThan(1e-5);
  });
});

const SMALL_CNN = `
[net]
batch=32
height=28
width=28
channels=1
learning_rate=0.05
momentum=0.9
decay=0.0005
max_batches=120

[convolutional]
filters=8
size=5
stride=1
pad=0
activation=relu

[maxpool]
size=2
stride=2

[connected]
output=10
activation=linear

[softmax]
`;

/** Trains SMALL_CNN on the first `images` MNIST training images; returns losses and test accuracy. */
function trainSmall(k: Kernels, steps: number, testCount: number): { losses: number[]; accuracy: number } {
  const spec = parseCfg(SMALL_CNN, 'small.cfg');
  const net = new Network(spec, k, { seed: 11 });
  const train = loadMnist('train', steps * net.batch);
  const pixels = 28 * 28;
  const x = new Float32Array(net.batch * pixels);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const start = s * net.batch;
    for (let i = 0; i < x.length; i++) x[i] = train.images[start * pixels + i] / 255;
    losses.push(net.trainBatch(x, oneHot(train.labels.subarray(start, start + net.batch), 10)));
  }
  const test = loadMnist('t10k', testCount);
  let correct = 0;
  for (let start = 0; start < testCount; start += net.batch) {
    x.fill(0);
    const n = Math.min(net.batch, testCount - start);
    for (let i = 0; i < n * pixels; i++) x[i] = test.images[start * pixels + i] / 255;
    const out = net.predict(x);
    for (let b = 0; b < n; b++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (out[b * 10 + c] > out[b * 10 + best]) best = c;
      if (best === test.labels[start + b]) correct++;
    }
  }
  return { losses, accuracy: correct / testCount };
}

const STEPS = 60; // 1,920 real MNIST training images, one pass
const reference = (() => {
  let cached: ReturnType<typeof trainSmall> | undefined;
  return () => (cached ??= trainSmall(new ReferenceKernels(), STEPS, 500));
})();

describe('[reference] short MNIST training', () => {
  test('[reference] a small CNN learns real MNIST: >= 85% on 500 test images after 1,920 images', () => {
    const { losses, accuracy } = reference();
    expect(losses[0]).toBeGreaterThan(1.5); // ~ln(10) at the start
    expect(accuracy).toBeGreaterThanOrEqual(0.85);
  });
});

describeEachBackend('network', (backend, get) => {
  test(`[${backend}] short MNIST training matches the reference loss curve and accuracy`, () => {
    const { losses, accuracy } = trainSmall(get(), STEPS, 500);
    const ref = reference();
    // Same seed, data and maths: the curves agree step by step. float32 sums in a
    // different order drift slowly, so the first 20 steps must agree to 1e-3 relative
    // and the final accuracy to within 2 points.
    for (let s = 0; s < 20; s++) expect(Math.abs(losses[s] - ref.losses[s])).toBeLessThanOrEqual(1e-3 * ref.losses[s]);
    expect(accuracy).toBeGreaterThanOrEqual(0.85);
    expect(Math.abs(accuracy - ref.accuracy)).toBeLessThanOrEqual(0.02);
  });

  test(`[${backend}] frozen zeros: masked weights and momentum stay exactly 0 through 100 network steps`, () => {
    const k = get();
    const net = new Network(parseCfg(SMALL_CNN.replace('batch=32', 'batch=4'), 'small.cfg'), k, { seed: 5 });
    const random = mulberry32(9);
    const masks = net.layers.map((l) => {
      const w = l.params.find((p) => p.name === 'weights');
      if (!w || !l.setMask) return null;
      const mask = Float32Array.from({ length: w.tensor.size }, () => (random() < 0.5 ? 0 : 1));
      l.setMask(mask);
      return mask;
    });
    const x = Float32Array.from({ length: net.batch * net.config.inputs }, () => random());
    const y = oneHot([0, 1, 2, 3], 10);
    for (let s = 0; s < 100; s++) net.trainBatch(x, y);
    let masked = 0;
    net.layers.forEach((l, i) => {
      const mask = masks[i];
      if (!mask) return;
      const w = l.params.find((p) => p.name === 'weights')!;
      const weights = k.read(w.tensor);
      const updates = k.read(w.updates!);
      for (let j = 0; j < mask.length; j++) {
        if (mask[j] !== 0) continue;
        masked++;
        if (weights[j] !== 0 || updates[j] !== 0) throw new Error(`layer ${i} weight ${j} revived: ${weights[j]} / ${updates[j]}`);
      }
    });
    expect(masked).toBeGreaterThan(500);
  });
});
