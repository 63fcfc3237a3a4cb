import { ReferenceKernels } from '../../src/kernels/reference';
import { DarknetError } from '../../src/errors';
import { convolutional, type ConvolutionalLayer } from '../../src/layers/convolutional';
import { ACTIVATIONS } from '../../src/kernels/types';
import { mulberry32 } from '../../src/engine/random';
import { describeEachBackend } from '../backends';
import { build, COMMON, context, netState, randomValues, section, maxBackendError } from './gradcheck';
import { expectGradients, expectMaskHolds, expectParamTensors } from './weighted';

const k = new ReferenceKernels({ float64: true });

function conv(keys: Record<string, string | number>, shape = { batch: 2, h: 6, w: 5, c: 4 }, common = COMMON) {
  const { spec, layer } = build(convolutional, k, 'convolutional', keys, context(shape), common);
  return { spec, layer: layer as ConvolutionalLayer };
}

describe('convolutional: parse', () => {
  test('darknet defaults: 1 filter of 1 x 1, stride 1, no padding, logistic, no batch norm', () => {
    const { spec } = conv({});
    expect(spec).toMatchObject({
      type: 'convolutional', filters: 1, size: 1, stride: 1, padding: 0, groups: 1,
      activation: 'logistic', batchNormalize: false, outH: 6, outW: 5, outC: 1, outputs: 30, line: 3,
    });
  });

  test('pad=1 means padding = size / 2, overriding padding=', () => {
    expect(conv({ size: 5, pad: 1, padding: 7 }).spec.padding).toBe(2);
    const o = section('conv', { size: 5, pad: 1, padding: 7, colour: 1 });
    convolutional.parse(o, context({ batch: 1, h: 6, w: 6, c: 1 }), COMMON);
    expect(o.unused().map((l) => l.key)).toEqual(['colour']);
    expect(conv({ size: 4, pad: 1 }).spec.padding).toBe(2);
    expect(conv({ size: 3, padding: 3 }).spec).toMatchObject({ padding: 3, outH: 10, outW: 9 });
  });

  test('output size uses C integer division: (h + 2 pad - size) / stride + 1', () => {
    const { spec } = conv({ filters: 2, size: 3, stride: 2, pad: 1 }, { batch: 1, h: 7, w: 6, c: 1 });
    expect([spec.outH, spec.outW]).toEqual([4, 3]);
  });

  test('params in .weights order, with and without batch norm', () => {
    const plain = conv({ filters: 6, size: 3, groups: 2 }).spec.params;
    expect(plain).toEqual([{ name: 'biases', size: 6 }, { name: 'weights', size: 6 * 2 * 9 }]);
    const bn = conv({ filters: 6, size: 3, batch_normalize: 1 }).spec.params;
    expect(bn.map((p) => `${p.name}:${p.size}`)).toEqual(
      ['biases:6', 'scales:6', 'rolling_mean:6', 'rolling_variance:6', 'weights:216']);
  });

  test('flops = 2 * n * size^2 * c / groups * outH * outW', () => {
    const { spec } = conv({ filters: 6, size: 3, groups: 2, pad: 1 });
    expect(spec.flops).toBe(2 * 6 * 9 * 2 * 6 * 5);
  });

  test("describe is darknet's row for LeNet-5's convolutions (strings from C printf)", () => {
    const c1 = conv({ filters: 20, size: 5, activation: 'linear' }, { batch: 1, h: 28, w: 28, c: 3 }).spec;
    expect(c1.describe).toBe('conv     20  5 x 5 / 1    28 x  28 x   3   ->    24 x  24 x  20  0.002 BFLOPs');
    const c2 = conv({ filters: 50, size: 5, activation: 'linear' }, { batch: 1, h: 12, w: 12, c: 20 }).spec;
    expect(c2.describe).toBe('conv     50  5 x 5 / 1    12 x  12 x  20   ->     8 x   8 x  50  0.003 BFLOPs');
  });

  test('an unknown activation is an error on its line, listing every activation', () => {
    expect(() => conv({ filters: 2, activation: 'swish' })).toThrow(DarknetError);
    expect(() => conv({ filters: 2, activation: 'swish' })).toThrow(
      `t.cfg:5: unknown activation 'swish'; known: ${ACTIVATIONS.join(', ')}`);
  });

  test('an output size <= 0 is an error naming the section line', () => {
    expect(() => conv({ size: 7 }, { batch: 1, h: 6, w: 5, c: 1 })).toThrow(/^t\.cfg:3: a 7 x 7 window does not fit/);
    // C division would truncate (3 - 5) / 4 to 0 and claim one output row: still an error
    expect(() => conv({ size: 5, stride: 4 }, { batch: 1, h: 3, w: 3, c: 1 })).toThrow(/t\.cfg:3: .*does not fit/);
  });

  test('groups must divide filters and channels', () => {
    expect(() => conv({ filters: 3, groups: 2 })).toThrow(/t\.cfg:\d+: groups=2 must divide both filters \(3\) and input channels \(4\)/);
    expect(() => conv({ filters: 4, groups: 3 }, { batch: 1, h: 4, w: 4, c: 3 })).toThrow(/groups=3 must divide/);
    expect(() => conv({ filters: 6, groups: 3 }, { batch: 1, h: 4, w: 4, c: 4 })).toThrow(/input channels \(4\)/);
  });

  test('a missing input image is an error', () => {
    expect(() => conv({}, { batch: 1, h: 0, w: 0, c: 0 })).toThrow(/t\.cfg:3: .*must output an image/);
  });
});

describe('convolutional: weights', () => {
  test("initialised as darknet's (He normal), seeded by layer index", () => {
    const make = (index: number) => {
      const { layer } = build(convolutional, k, 'conv', { filters: 16, size: 5 }, context({ batch: 1, h: 8, w: 8, c: 8, index }));
      return Array.from(k.read((layer as ConvolutionalLayer).weights));
    };
    const a = make(2);
    expect(make(2)).toEqual(a);
    expect(make(3)).not.toEqual(a);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length);
    expect(std).toBeCloseTo(Math.sqrt(2 / (5 * 5 * 8)), 2);
    expect(Math.abs(mean)).toBeLessThan(0.01);
  });

  test('batch norm starts with scales 1, rolling mean and variance 0 (darknet)', () => {
    const { layer } = conv({ filters: 3, batch_normalize: 1 });
    const byName = Object.fromEntries(layer.params.map((p) => [p.name, Array.from(k.read(p.tensor))]));
    expect(byName.scales).toEqual([1, 1, 1]);
    expect(byName.rolling_mean).toEqual([0, 0, 0]);
    expect(byName.rolling_variance).toEqual([0, 0, 0]);
    expect(byName.biases).toEqual([0, 0, 0]);
  });
});

describe('convolutional: params', () => {
  test('params follow spec.params, with their update buffers (none for rolling stats)', () => {
    expectParamTensors(conv({ filters: 3, size: 3, batch_normalize: 1 }).layer);
  });
});

describe('convolutional: backward matches central differences (float64)', () => {
  const cases: [string, Record<string, string | number>][] = [
    ['groups=2, stride 2, pad, leaky', { filters: 4, size: 3, stride: 2, pad: 1, groups: 2, activation: 'leaky' }],
    ['groups=2, stride 2, padding=1, logistic', { filters: 4, size: 3, stride: 2, padding: 1, groups: 2, activation: 'logistic' }],
    ['1 x 1, stride 1, tanh', { filters: 3, size: 1, activation: 'tanh' }],
    ['batch_normalize, training, leaky', { filters: 4, size: 3, pad: 1, activation: 'leaky', batch_normalize: 1 }],
    ['batch_normalize, groups=2, stride 2, logistic', { filters: 4, size: 3, stride: 2, groups: 2, batch_normalize: 1 }],
  ];
  test.each(cases)('%s', (_name, keys) => {
    expectGradients(k, conv(keys).layer, 5);
  });

  test('without a previous delta (first layer), backward still fills the updates', () => {
    const { layer } = conv({ filters: 2, size: 3 });
    const input = k.alloc(layer.spec.batch * layer.spec.inputs);
    k.upload(input, randomValues(input.size, mulberry32(3)));
    const net = netState(k, input, null);
    layer.forward(net);
    k.fill(layer.delta, 1);
    layer.backward(net);
    expect(Array.from(k.read(layer.weightUpdates)).some((x) => x !== 0)).toBe(true);
  });
});

describe('convolutional: batch norm statistics', () => {
  test('training updates the rolling stats with the unbiased variance; inference uses them', () => {
    // 1 x 1 conv with weight 1 on one channel: the BN sees the input itself
    const { layer } = conv({ filters: 1, size: 1, activation: 'linear', batch_normalize: 1 }, { batch: 2, h: 2, w: 2, c: 1 });
    k.upload(layer.weights, [1]);
    const x = [1, 2, 3, 4, 5, 6, 7, 9];
    const input = k.alloc(8);
    k.upload(input, x);
    layer.forward(netState(k, input, null, true));
    const mean = x.reduce((s, v) => s + v, 0) / 8;
    const biased = x.reduce((s, v) => s + (v - mean) ** 2, 0) / 8;
    const [rm, rv] = [layer.bn!.rollingMean, layer.bn!.rollingVariance].map((t) => k.read(t)[0]);
    expect(rm).toBeCloseTo(0.01 * mean, 12);
    expect(rv).toBeCloseTo(0.01 * biased * 8 / 7, 12);
    const trained = Array.from(k.read(layer.output));
    trained.forEach((v, i) => expect(v).toBeCloseTo((x[i] - mean) / Math.sqrt(biased + 1e-5), 10));

    k.upload(layer.biases, [0.5]);
    k.upload(layer.bn!.scales, [2]);
    layer.forward(netState(k, input, null, false));
    Array.from(k.read(layer.output)).forEach((v, i) => expect(v).toBeCloseTo(2 * (x[i] - rm) / (Math.sqrt(rv) + 1e-6) + 0.5, 10));
  });
});

describe('convolutional: update', () => {
  test("follows darknet's update_convolutional_layer on a tiny case", () => {
    const { layer } = conv({ filters: 1, size: 1, batch_normalize: 1 }, { batch: 1, h: 1, w: 1, c: 1 }, { ...COMMON, learningRateScale: 2 });
    k.upload(layer.weights, [0.5]);
    k.upload(layer.weightUpdates, [2]);
    k.upload(layer.biases, [0.2]);
    k.upload(layer.biasUpdates, [3]);
    k.upload(layer.bn!.scaleUpdates, [-1]);
    layer.update({ learningRate: 0.1, momentum: 0.9, decay: 0.01, batch: 4, scaleL1: 0 });
    // rate = 0.1 * 2; biases += rate / B * bias_updates; bias_updates *= momentum
    expect(k.read(layer.biases)[0]).toBeCloseTo(0.2 + (0.2 / 4) * 3, 14);
    expect(k.read(layer.biasUpdates)[0]).toBeCloseTo(2.7, 14);
    // scales: like biases, no decay
    expect(k.read(layer.bn!.scales)[0]).toBeCloseTo(1 - 0.2 / 4, 14);
    expect(k.read(layer.bn!.scaleUpdates)[0]).toBeCloseTo(-0.9, 14);
    // weight_updates += -decay * B * weights; weights += rate / B * weight_updates; *= momentum
    const wu = 2 - 0.01 * 4 * 0.5;
    expect(k.read(layer.weights)[0]).toBeCloseTo(0.5 + (0.2 / 4) * wu, 14);
    expect(k.read(layer.weightUpdates)[0]).toBeCloseTo(0.9 * wu, 14);
  });

  test('a masked conv keeps its masked weights exactly 0 through training', () => {
    const { layer } = conv({ filters: 4, size: 3, pad: 1, activation: 'leaky' });
    const random = mulberry32(9);
    const mask = Array.from({ length: layer.weights.size }, () => (random() < 0.5 ? 0 : 1));
    const before = Array.from(k.read(layer.weights));
    const input = expectMaskHolds(k, layer, mask, random, { learningRate: 0.5, momentum: 0.9, decay: 0.001, batch: 2, scaleL1: 0 }, false);
    // the kept weights trained
    const after = Array.from(k.read(layer.weights));
    expect(after.every((w, i) => mask[i] === 0 || w !== before[i])).toBe(true);

    layer.setMask(null);
    layer.forward(netState(k, input, null));
    k.fill(layer.delta, 1);
    layer.backward(netState(k, input, null));
    layer.update({ learningRate: 0.5, momentum: 0.9, decay: 0.001, batch: 2, scaleL1: 0 });
    expect(Array.from(k.read(layer.weights)).some((w, i) => mask[i] === 0 && w !== 0)).toBe(true);
  });

  test('a mask of the wrong length is refused', () => {
    const { layer } = conv({ filters: 2, size: 3 });
    expect(() => layer.setMask([1, 0])).toThrow(/mask has 2 entries/);
  });
});

/** float32 gpu.js backends agree with the float32 reference to this (relative to max(1, |x|)) */
const BACKEND_TOLERANCE = 1e-4;

describeEachBackend('convolutional: same results as the reference', (_backend, get) => {
  const reference = new ReferenceKernels();
  test.each([
    ['groups=2, stride 2, pad, leaky', { filters: 4, size: 3, stride: 2, pad: 1, groups: 2, activation: 'leaky' }],
    ['batch_normalize, logistic', { filters: 3, size: 3, batch_normalize: 1 }],
  ] as [string, Record<string, string | number>][])('%s: forward, backward, update, inference', (_name, keys) => {
    expect(maxBackendError(convolutional, get(), reference, 'convolutional', keys, context({ batch: 2, h: 6, w: 5, c: 4 }))).toBeLessThan(BACKEND_TOLERANCE);
  });
});
