import { ReferenceKernels } from '../../src/kernels/reference';
import type { LayerSpec, NetState } from '../../src/engine/layer';
import { shortcut } from '../../src/layers/shortcut';
import { COMMON, section } from './gradcheck';
import { contextAfter, earlierLayer, earlierSpec, sourceGradientErrors } from './earlier';

// Tolerances: forward values to 1e-12 absolute (float64); gradients by central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });
const batch = 2;

/** Layer 0 (the `from`) has shape `from`, layer 1 (the input) has shape `input`; the shortcut is layer 2. */
function layersOf(from: [number, number, number], input: [number, number, number]): LayerSpec[] {
  return [earlierSpec(0, batch, ...from), earlierSpec(1, batch, ...input)];
}

function parseWith(previous: LayerSpec[], keys: Record<string, string | number>) {
  return shortcut.parse(section('shortcut', keys), contextAfter(previous), COMMON);
}

function setUp(from: [number, number, number], input: [number, number, number], keys: Record<string, string | number>) {
  const previous = layersOf(from, input);
  const spec = parseWith(previous, keys);
  const earlier = previous.map((s, i) => earlierLayer(k, s, 30 + i));
  const layer = shortcut.create(spec, k);
  const net: NetState = {
    k, train: true, input: earlier[1].output, delta: earlier[1].delta, truth: null, layers: [...earlier, layer], random: Math.random,
  };
  const sources = [
    { name: 'input', value: earlier[1].output, delta: earlier[1].delta },
    { name: 'from', value: earlier[0].output, delta: earlier[0].delta },
  ];
  return { spec, layer, earlier, net, sources };
}

describe('shortcut parse', () => {
  test('defaults, index relative to this layer, darknet layer-table line', () => {
    const spec = parseWith(layersOf([8, 8, 2], [4, 4, 3]), { from: -2 });
    expect([spec.from, spec.activation, spec.alpha, spec.beta]).toEqual([0, 'linear', 1, 1]);
    expect([spec.outW, spec.outH, spec.outC, spec.outputs]).toEqual([4, 4, 3, 48]);
    expect(spec.describe).toBe('res    0                   8 x   8 x   2   ->     4 x   4 x   3');
  });

  test("missing from= names it at the section's line", () => {
    expect(() => parseWith(layersOf([4, 4, 3], [4, 4, 3]), {})).toThrow("t.cfg:3: [shortcut] needs 'from='");
  });

  test.each([-3, 2, 5])('from=%d is out of range, said at its line', (from) => {
    expect(() => parseWith(layersOf([4, 4, 3], [4, 4, 3]), { from }))
      .toThrow(`t.cfg:4: shortcut from=${from} is out of range: layer 2 can add only earlier layers (0..1)`);
  });

  test.each([
    [[6, 6, 3], '6 x 6 x 3'],
    [[8, 4, 3], '8 x 4 x 3'],
    [[2, 1, 3], '2 x 1 x 3'],
  ] as [[number, number, number], string][])('from %j into 4 x 4 x 3 is an error naming both shapes', (from, shape) => {
    expect(() => parseWith(layersOf(from, [4, 4, 3]), { from: 0 }))
      .toThrow(`t.cfg:4: shortcut from layer 0 (${shape}) does not fit its input (4 x 4 x 3)`);
  });

  test('from a layer without an image shape is an error', () => {
    const flat = { ...earlierSpec(0, batch, 1, 1, 48), outW: 0, outH: 0, outC: 0 };
    expect(() => parseWith([flat, earlierSpec(1, batch, 4, 4, 3)], { from: 0 }))
      .toThrow('t.cfg:3: shortcut needs images: its input is 4 x 4 x 3, layer 0 outputs 0 x 0 x 0');
  });

  test('an unknown activation is an error at its line', () => {
    expect(() => parseWith(layersOf([4, 4, 3], [4, 4, 3]), { from: 0, activation: 'swish' })).toThrow("t.cfg:5: unknown activation 'swish'");
  });
});

describe('shortcut forward and backward (reference, float64)', () => {
  test('forward: alpha * input + beta * from, then the activation', () => {
    const { layer, earlier, net } = setUp([4, 4, 3], [4, 4, 3], { from: 0, alpha: 0.7, beta: 1.3, activation: 'tanh' });
    layer.forward(net);
    const x = k.read(earlier[1].output);
    const y = k.read(earlier[0].output);
    k.read(layer.output).forEach((v, i) => expect(v).toBeCloseTo(Math.tanh(0.7 * x[i] + 1.3 * y[i]), 12));
  });

  test.each([
    ['same shape, alpha and beta != 1', [4, 4, 3], [4, 4, 3], { alpha: 0.7, beta: 1.3, activation: 'logistic' }],
    ['from twice as large, fewer channels (subsampled)', [8, 8, 2], [4, 4, 3], { beta: 0.5, activation: 'tanh' }],
    ['from half as large, more channels (spread out)', [2, 2, 4], [4, 4, 3], { beta: -0.8, activation: 'logistic' }],
  ] as [string, [number, number, number], [number, number, number], Record<string, string | number>][])(
    'backward into input and from, %s: relative error < 1e-6',
    (_name, from, input, keys) => {
      const { layer, net, sources } = setUp(from, input, { from: -2, ...keys });
      const errors = sourceGradientErrors(k, layer, net, sources);
      expect(errors.input).toBeLessThan(1e-6);
      expect(errors.from).toBeLessThan(1e-6);
    },
  );

  test('NOTE: as darknet, net.delta gets alpha * delta everywhere, also where from does not land', () => {
    const { layer, net, earlier } = setUp([2, 2, 4], [4, 4, 3], { from: 0, alpha: 0.5 });
    layer.forward(net);
    k.fill(layer.delta, 2);
    k.fill(earlier[1].delta, 0);
    layer.backward(net);
    expect(Array.from(k.read(earlier[1].delta)).every((v) => v === 1)).toBe(true);
  });
});
