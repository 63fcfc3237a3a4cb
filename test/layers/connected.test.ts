import { ReferenceKernels } from '../../src/kernels/reference';
import { connected, type ConnectedLayer } from '../../src/layers/connected';
import { ACTIVATIONS } from '../../src/kernels/types';
import { mulberry32 } from '../../src/engine/random';
import { describeEachBackend } from '../backends';
import { build, COMMON, context, netState, maxBackendError } from './gradcheck';
import { expectGradients, expectMaskHolds, expectParamTensors } from './weighted';

const k = new ReferenceKernels({ float64: true });

function conn(keys: Record<string, string | number>, shape = { batch: 3, h: 2, w: 2, c: 2 }, common = COMMON) {
  const { spec, layer } = build(connected, k, 'connected', keys, context(shape), common);
  return { spec, layer: layer as ConnectedLayer };
}

describe('connected: parse', () => {
  test('darknet defaults: 1 output, logistic, no batch norm', () => {
    expect(conn({}).spec).toMatchObject({
      type: 'connected', activation: 'logistic', batchNormalize: false,
      inputs: 8, outH: 1, outW: 1, outC: 1, outputs: 1,
    });
  });

  test('params in .weights order: biases, weights, then the batch-norm arrays', () => {
    expect(conn({ output: 5 }).spec.params).toEqual([{ name: 'biases', size: 5 }, { name: 'weights', size: 40 }]);
    expect(conn({ output: 5, batch_normalize: 1 }).spec.params.map((p) => p.name)).toEqual(
      ['biases', 'weights', 'scales', 'rolling_mean', 'rolling_variance']);
  });

  test("flops = 2 * inputs * outputs; describe is darknet's row for LeNet-5 (strings from C printf)", () => {
    const fc1 = conn({ output: 500, activation: 'relu' }, { batch: 1, h: 4, w: 4, c: 50 }).spec;
    expect(fc1.flops).toBe(2 * 800 * 500);
    expect(fc1.describe).toBe('connected                             800  ->   500');
    const fc2 = conn({ output: 10, activation: 'linear' }, { batch: 1, h: 1, w: 1, c: 500 }).spec;
    expect(fc2.describe).toBe('connected                             500  ->    10');
  });

  test('bad output and activation are errors naming their lines', () => {
    expect(() => conn({ output: 0 })).toThrow(/^t\.cfg:4: output=0 must be >= 1/);
    expect(() => conn({ output: 3, activation: 'gelu' })).toThrow(
      `t.cfg:5: unknown activation 'gelu'; known: ${ACTIVATIONS.join(', ')}`);
  });
});

describe('connected: weights', () => {
  test("initialised as darknet's: uniform(-s, s), s = sqrt(2 / inputs), seeded by layer index", () => {
    const make = (index: number) => {
      const { layer } = build(connected, k, 'connected', { output: 50 }, context({ batch: 1, h: 1, w: 1, c: 32, index }));
      return Array.from(k.read((layer as ConnectedLayer).weights));
    };
    const a = make(4);
    expect(make(4)).toEqual(a);
    expect(make(5)).not.toEqual(a);
    const s = Math.sqrt(2 / 32);
    expect(a.every((x) => Math.abs(x) <= s)).toBe(true);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.95 * s);
  });
});

describe('connected: params', () => {
  test('params follow spec.params, with their update buffers (none for rolling stats)', () => {
    expectParamTensors(conn({ output: 3, batch_normalize: 1 }).layer);
  });
});

describe('connected: backward matches central differences (float64)', () => {
  const cases: [string, Record<string, string | number>][] = [
    ['tanh', { output: 5, activation: 'tanh' }],
    ['logistic', { output: 4 }],
    ['leaky', { output: 3, activation: 'leaky' }],
    ['batch_normalize, training, logistic', { output: 4, batch_normalize: 1 }],
    ['batch_normalize, training, linear', { output: 3, activation: 'linear', batch_normalize: 1 }],
  ];
  test.each(cases)('%s', (_name, keys) => {
    expectGradients(k, conn(keys).layer, 6);
  });

  test('forward is input * weights^T + biases, weights row = output', () => {
    const { layer } = conn({ output: 2, activation: 'linear' }, { batch: 1, h: 1, w: 1, c: 3 });
    k.upload(layer.weights, [1, 2, 3, 4, 5, 6]);
    k.upload(layer.biases, [0.5, -1]);
    const input = k.alloc(3);
    k.upload(input, [1, 0, -1]);
    layer.forward(netState(k, input, null));
    expect(Array.from(k.read(layer.output))).toEqual([1 - 3 + 0.5, 4 - 6 - 1]);
  });
});

describe('connected: update', () => {
  test("follows darknet's update_connected_layer on a tiny case", () => {
    const { layer } = conn({ output: 1, batch_normalize: 1 }, { batch: 1, h: 1, w: 1, c: 1 }, { ...COMMON, learningRateScale: 0.5 });
    k.upload(layer.weights, [-0.25]);
    k.upload(layer.weightUpdates, [1]);
    k.upload(layer.biases, [1]);
    k.upload(layer.biasUpdates, [-2]);
    k.upload(layer.bn!.scaleUpdates, [4]);
    layer.update({ learningRate: 0.2, momentum: 0.5, decay: 0.1, batch: 2, scaleL1: 0 });
    const rate = 0.1;
    expect(k.read(layer.biases)[0]).toBeCloseTo(1 + (rate / 2) * -2, 14);
    expect(k.read(layer.biasUpdates)[0]).toBeCloseTo(-1, 14);
    expect(k.read(layer.bn!.scales)[0]).toBeCloseTo(1 + (rate / 2) * 4, 14);
    expect(k.read(layer.bn!.scaleUpdates)[0]).toBeCloseTo(2, 14);
    const wu = 1 - 0.1 * 2 * -0.25;
    expect(k.read(layer.weights)[0]).toBeCloseTo(-0.25 + (rate / 2) * wu, 14);
    expect(k.read(layer.weightUpdates)[0]).toBeCloseTo(0.5 * wu, 14);
  });

  test('a masked connected layer keeps its masked weights exactly 0 through training', () => {
    const { layer } = conn({ output: 6, activation: 'relu' });
    const random = mulberry32(10);
    const mask = Array.from({ length: layer.weights.size }, () => (random() < 0.6 ? 0 : 1));
    expectMaskHolds(k, layer, mask, random, { learningRate: 0.5, momentum: 0.9, decay: 0.001, batch: 3, scaleL1: 0 }, true);
  });
});

/** float32 gpu.js backends agree with the float32 reference to this (relative to max(1, |x|)) */
const BACKEND_TOLERANCE = 1e-4;

describeEachBackend('connected: same results as the reference', (_backend, get) => {
  const reference = new ReferenceKernels();
  test.each([
    ['relu', { output: 5, activation: 'relu' }],
    ['batch_normalize, logistic', { output: 4, batch_normalize: 1 }],
  ] as [string, Record<string, string | number>][])('%s: forward, backward, update, inference', (_name, keys) => {
    expect(maxBackendError(connected, get(), reference, 'connected', keys, context({ batch: 3, h: 2, w: 2, c: 2 }))).toBeLessThan(BACKEND_TOLERANCE);
  });
});
