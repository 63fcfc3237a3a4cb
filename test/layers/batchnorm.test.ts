import type { Layer } from '../../src/engine/layer';
import { ReferenceKernels } from '../../src/kernels/reference';
import { batchnorm, type BatchnormLayer } from '../../src/layers/batchnorm';
import { mulberry32 } from '../../src/engine/random';
import { describeEachBackend } from '../backends';
import { build, context, gradientErrors, netState, randomValues, maxBackendError } from './gradcheck';

/** float64 central differences agree with backward to this relative error */
const TOLERANCE = 1e-5;

const k = new ReferenceKernels({ float64: true });

function bnLayer(shape = { batch: 2, h: 3, w: 4, c: 3 }) {
  const { spec, layer } = build(batchnorm, k, 'batchnorm', {}, context(shape));
  return { spec, layer: layer as BatchnormLayer };
}

describe('batchnorm: parse', () => {
  test('output shape = input shape; scales, rolling_mean, rolling_variance per channel', () => {
    const { spec } = bnLayer();
    expect(spec).toMatchObject({ type: 'batchnorm', outH: 3, outW: 4, outC: 3, outputs: 36, flops: 0 });
    expect(spec.params).toEqual([
      { name: 'scales', size: 3 }, { name: 'rolling_mean', size: 3 }, { name: 'rolling_variance', size: 3 },
    ]);
    expect(spec.describe).toBe('Batch Normalization Layer: 4 x 3 x 3 image');
  });

  test('a missing input image is an error', () => {
    expect(() => bnLayer({ batch: 1, h: 0, w: 0, c: 0 })).toThrow(/^t\.cfg:3: .*must output an image/);
  });

  test("no update: darknet never trains this layer's scales or (unsaved) biases", () => {
    expect((bnLayer().layer as Layer).update).toBeUndefined();
  });
});

describe('batchnorm: forward', () => {
  test('training normalizes per channel with batch stats and updates the rolling ones', () => {
    const { layer, spec } = bnLayer();
    const random = mulberry32(2);
    const x = randomValues(spec.batch * spec.inputs, random, -2, 3);
    const input = k.alloc(x.length);
    k.upload(input, x);
    k.upload(layer.biases, [0.1, 0.2, 0.3]);
    k.upload(layer.bn.scales, [1, 2, 3]);
    layer.forward(netState(k, input, null, true));
    const out = k.read(layer.output);
    const spatial = spec.h * spec.w;
    const rollingMean = k.read(layer.bn.rollingMean);
    const rollingVariance = k.read(layer.bn.rollingVariance);
    for (let f = 0; f < 3; f++) {
      const idx = [0, 1].flatMap((b) => Array.from({ length: spatial }, (_, i) => (b * 3 + f) * spatial + i));
      const mean = idx.reduce((s, i) => s + x[i], 0) / idx.length;
      const variance = idx.reduce((s, i) => s + (x[i] - mean) ** 2, 0) / idx.length;
      for (const i of idx) expect(out[i]).toBeCloseTo((f + 1) * (x[i] - mean) / Math.sqrt(variance + 1e-5) + 0.1 * (f + 1), 10);
      expect(rollingMean[f]).toBeCloseTo(0.01 * mean, 12);
      // NOTE: darknet's rolling variance averages the unbiased batch variance
      expect(rollingVariance[f]).toBeCloseTo(0.01 * variance * idx.length / (idx.length - 1), 12);
    }
  });

  test("inference normalizes with the rolling stats as darknet does: (x - mean) / (sqrt(var) + 1e-6)", () => {
    const { layer, spec } = bnLayer({ batch: 1, h: 1, w: 2, c: 2 });
    k.upload(layer.bn.rollingMean, [1, -1]);
    k.upload(layer.bn.rollingVariance, [4, 0.25]);
    k.upload(layer.bn.scales, [2, 1]);
    k.upload(layer.biases, [0, 1]);
    const input = k.alloc(spec.inputs);
    k.upload(input, [3, 5, 0, 1]);
    layer.forward(netState(k, input, null, false));
    const expected = [2 * 2 / (2 + 1e-6), 2 * 4 / (2 + 1e-6), 1 / (0.5 + 1e-6) + 1, 2 / (0.5 + 1e-6) + 1];
    Array.from(k.read(layer.output)).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
    expect(Array.from(k.read(layer.bn.rollingMean))).toEqual([1, -1]);
    expect(Array.from(k.read(layer.bn.rollingVariance))).toEqual([4, 0.25]);
  });

  test('low-variance channels, where sqrt(var) + 1e-6 and sqrt(var + 1e-5) differ by up to 300x; rolling stats replaced, then trained', () => {
    const variances = [1, 1e-4, 1e-6, 1e-8, 1e-12, 0];
    const c = variances.length;
    const { layer, spec } = bnLayer({ batch: 1, h: 1, w: 3, c });
    const x = randomValues(spec.inputs, mulberry32(5), -1, 1);
    const means = randomValues(c, mulberry32(6), -0.5, 0.5);
    const input = k.alloc(spec.inputs);
    k.upload(input, x);
    const infer = () => {
      layer.forward(netState(k, input, null, false));
      return Array.from(k.read(layer.output));
    };
    const darknet = (v: readonly number[]) => x.map((xi, i) => (xi - means[Math.floor(i / 3)]) / (Math.sqrt(v[Math.floor(i / 3)]) + 1e-6));
    k.upload(layer.bn.rollingMean, means);
    k.upload(layer.bn.rollingVariance, variances);
    const out = infer();
    const want = darknet(variances);
    out.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want[i]))));
    // the old formula would be far off on the small variances
    const ours = x.map((xi, i) => (xi - means[Math.floor(i / 3)]) / Math.sqrt(variances[Math.floor(i / 3)] + 1e-5));
    expect(Math.abs(ours[9] - want[9])).toBeGreaterThan(0.9 * Math.abs(want[9]));

    // replaced from outside (as loading a weights file does): paramsChanged re-derives
    const other = variances.map((v) => 2 * v + 1e-7);
    k.upload(layer.bn.rollingVariance, other);
    (layer as Layer).paramsChanged!();
    const want2 = darknet(other);
    infer().forEach((v, i) => expect(Math.abs(v - want2[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want2[i]))));

    // a training pass moves the rolling variance: the next inference uses the new one
    layer.forward(netState(k, input, null, true));
    const moved = Array.from(k.read(layer.bn.rollingVariance));
    expect(moved).not.toEqual(other);
    k.upload(layer.bn.rollingMean, means);
    const want3 = darknet(moved);
    infer().forEach((v, i) => expect(Math.abs(v - want3[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want3[i]))));
  });
});

describe('batchnorm: backward matches central differences (float64)', () => {
  test.each([
    ['batch 2, 3 x 4 x 3', { batch: 2, h: 3, w: 4, c: 3 }],
    ['batch 5, 1 x 1 x 4 (after a connected layer)', { batch: 5, h: 1, w: 1, c: 4 }],
  ])('%s', (_name, shape) => {
    const { layer, spec } = bnLayer(shape);
    const random = mulberry32(8);
    k.upload(layer.bn.scales, randomValues(spec.c, random, 0.5, 1.5));
    k.upload(layer.biases, randomValues(spec.c, random));
    const checked = [
      { name: 'scales', value: layer.bn.scales, updates: layer.bn.scaleUpdates },
      { name: 'biases', value: layer.biases, updates: layer.biasUpdates },
    ];
    const errors = gradientErrors(k, layer, randomValues(spec.batch * spec.inputs, random, -1, 2), checked);
    expect(Object.keys(errors).sort()).toEqual(['biases', 'input', 'scales']);
    for (const [name, e] of Object.entries(errors)) expect({ name, e: e < TOLERANCE ? 'ok' : e }).toEqual({ name, e: 'ok' });
  });

  test('backward adds into net.delta rather than overwriting it', () => {
    const { layer, spec } = bnLayer({ batch: 2, h: 1, w: 2, c: 1 });
    const input = k.alloc(spec.batch * spec.inputs);
    k.upload(input, [1, 2, 4, 8]);
    const prior = k.alloc(4);
    k.fill(prior, 10);
    const net = netState(k, input, prior);
    layer.forward(net);
    k.upload(layer.delta, [1, -1, 0.5, 2]);
    layer.backward(net);
    const bnDelta = k.read(layer.delta);
    Array.from(k.read(prior)).forEach((v, i) => expect(v).toBeCloseTo(10 + bnDelta[i], 12));
  });
});

/** float32 gpu.js backends agree with the float32 reference to this (relative to max(1, |x|)) */
const BACKEND_TOLERANCE = 1e-4;

describeEachBackend('batchnorm: same results as the reference', (_backend, get) => {
  const reference = new ReferenceKernels();
  test.each([
    ['3 x 4 x 3', {}],
  ] as [string, Record<string, string | number>][])('%s: forward, backward, update, inference', (_name, keys) => {
    expect(maxBackendError(batchnorm, get(), reference, 'batchnorm', keys, context({ batch: 2, h: 3, w: 4, c: 3 }))).toBeLessThan(BACKEND_TOLERANCE);
  });
});

describeEachBackend('batchnorm: inference on low-variance channels matches darknet in float32', (_backend, get) => {
  test('(x - mean) / (sqrt(var) + 1e-6) to float precision', async () => {
    const { BatchNorm } = await import('../../src/layers/batchnorm-core');
    const kb = get();
    const variances = [1, 3e-3, 1e-4, 1e-6, 1e-8, 1e-10, 0, 0.5];
    const channels = variances.length;
    const spatial = 5;
    const bn = new BatchNorm(kb, { batch: 2, channels, spatial });
    const x = randomValues(2 * channels * spatial, mulberry32(9), -1, 1);
    const means = randomValues(channels, mulberry32(10), -0.5, 0.5);
    const scales = randomValues(channels, mulberry32(11), 0.5, 1.5);
    kb.upload(bn.rollingMean, means);
    kb.upload(bn.rollingVariance, variances);
    kb.upload(bn.scales, scales);
    bn.paramsChanged();
    const t = kb.alloc(x.length);
    kb.upload(t, x);
    bn.forward(t, false);
    const out = kb.read(t);
    const f = Math.fround;
    for (let i = 0; i < x.length; i++) {
      const ch = Math.floor(i / spatial) % channels;
      // darknet: float (x - mean) over the double sqrt(var) + 1e-6f, times the scale in float
      const want = f(f(f(f(x[i]) - f(means[ch])) / (Math.sqrt(f(variances[ch])) + f(1e-6))) * f(scales[ch]));
      expect(Math.abs(out[i] - want)).toBeLessThanOrEqual(4e-7 * Math.max(1, Math.abs(want)));
    }
    kb.free(t);
  });
});

describe('batch-norm scales: network slimming', () => {
  test('the L1 sub-gradient moves every scale by rate * l1 towards 0, on top of the loss gradient', async () => {
    const { BatchNorm } = await import('../../src/layers/batchnorm-core');
    const bn = new BatchNorm(k, { batch: 4, channels: 4, spatial: 1 });
    k.upload(bn.scales, [0.5, -0.25, 2, 0]);
    k.upload(bn.scaleUpdates, [4, 0, -8, 0]); // summed negative gradient over B = 4 images
    bn.update({ rate: 0.1, momentum: 0, batch: 4 }, 0.01);
    // scale += rate / B * (updates - B * l1 * sign(scale))
    const want = [0.5 + 0.1 * (1 - 0.01), -0.25 + 0.1 * 0.01, 2 + 0.1 * (-2 - 0.01), 0];
    Array.from(k.read(bn.scales)).forEach((v, i) => expect(v).toBeCloseTo(want[i], 12));
  });
});
