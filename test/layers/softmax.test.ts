import { ReferenceKernels } from '../../src/kernels/reference';
import { softmax } from '../../src/layers/softmax';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, netState, randomValues, relativeError, section } from './gradcheck';

// Tolerances: probabilities and losses to 1e-12 absolute (float64); the delta written by
// forward against -d(loss)/d(input) by central differences (step 1e-6) to a relative L2
// error below 1e-6.
const k = new ReferenceKernels({ float64: true });

/** One-hot truth per group: class (b * 7 + g * 3) mod groupSize of each group. */
function oneHot(batch: number, inputs: number, groups: number): number[] {
  const size = inputs / groups;
  const t = new Array(batch * inputs).fill(0);
  for (let b = 0; b < batch; b++) {
    for (let g = 0; g < groups; g++) t[b * inputs + g * size + ((b * 7 + g * 3) % size)] = 1;
  }
  return t;
}

function softmaxOf(x: number[], temperature: number): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp((v - m) / temperature));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

describe('softmax parse', () => {
  test('defaults and darknet layer-table line', () => {
    const spec = softmax.parse(section('soft'), context({ batch: 2, h: 1, w: 1, c: 10 }), COMMON);
    expect([spec.groups, spec.temperature, spec.noloss]).toEqual([1, 1, false]);
    expect([spec.outputs, spec.outW, spec.outH, spec.outC]).toEqual([10, 0, 0, 0]); // flat, as darknet
    expect(spec.describe).toBe('softmax                                          10');
  });

  test('a tree= file that cannot be read is an error naming it, at its line', () => {
    expect(() => softmax.parse(section('softmax', { tree: 'no-such-dir/9k.tree' }), context({ batch: 1, h: 1, w: 1, c: 10 }), COMMON))
      .toThrow("t.cfg:4: softmax tree file 'no-such-dir/9k.tree' cannot be read");
  });

  test('groups must divide the inputs', () => {
    expect(() => softmax.parse(section('softmax', { temperature: 2, groups: 3 }), context({ batch: 1, h: 1, w: 1, c: 10 }), COMMON))
      .toThrow('t.cfg:5: softmax groups=3 must divide its 10 inputs');
  });

  test('temperature must be positive', () => {
    expect(() => softmax.parse(section('softmax', { temperature: 0 }), context({ batch: 1, h: 1, w: 1, c: 10 }), COMMON))
      .toThrow('t.cfg:4: softmax temperature=0 must be positive');
  });
});

describe('softmax forward and backward (reference, float64)', () => {
  const batch = 3;
  const inputs = 8;
  const groups = 2;
  const x = randomValues(batch * inputs, mulberry32(4), -3, 3);

  function run(keys: Record<string, number>, withTruth: boolean) {
    const { layer } = build(softmax, k, 'softmax', keys, context({ batch, h: 1, w: 1, c: inputs }));
    const input = k.alloc(x.length);
    k.upload(input, x);
    const truth = k.alloc(x.length);
    k.upload(truth, oneHot(batch, inputs, groups));
    const net = { ...netState(k, input, k.alloc(x.length)), truth: withTruth ? truth : null };
    layer.forward(net);
    return { layer, net, input };
  }

  test('forward: a softmax per group, with temperature', () => {
    const { layer } = run({ groups, temperature: 2 }, false);
    const out = Array.from(k.read(layer.output));
    for (let r = 0; r < batch * groups; r++) {
      const want = softmaxOf(x.slice(r * 4, r * 4 + 4), 2);
      want.forEach((v, i) => expect(out[r * 4 + i]).toBeCloseTo(v, 12));
    }
    expect(layer.cost).toBe(0); // no truth, no loss
  });

  test('with a truth: cost is the summed cross entropy and delta = -d(cost)/d(input)', () => {
    const { layer, input, net } = run({ groups }, true);
    const out = Array.from(k.read(layer.output));
    const t = oneHot(batch, inputs, groups);
    const entropy = t.reduce((sum, ti, i) => sum + (ti ? -Math.log(out[i]) : 0), 0);
    expect(layer.cost).toBeCloseTo(entropy, 12);

    const delta = Array.from(k.read(layer.delta));
    const h = 1e-6;
    const values = [...x];
    const lossAt = (v: number[]) => {
      k.upload(input, v);
      layer.forward(net);
      return layer.cost!;
    };
    const minusGradient = values.map((v, i) => {
      values[i] = v + h;
      const plus = lossAt(values);
      values[i] = v - h;
      const minus = lossAt(values);
      values[i] = v;
      return -(plus - minus) / (2 * h);
    });
    expect(relativeError(delta, minusGradient)).toBeLessThan(1e-6);
  });

  test('NOTE: at temperature != 1 the delta is still truth - output (darknet), not the gradient', () => {
    const { layer } = run({ groups, temperature: 2 }, true);
    const out = k.read(layer.output);
    const t = oneHot(batch, inputs, groups);
    const delta = k.read(layer.delta);
    t.forEach((ti, i) => expect(delta[i]).toBeCloseTo(ti - out[i], 12));
  });

  test('noloss: no cost and no delta even with a truth', () => {
    const { layer } = run({ groups, noloss: 1 }, true);
    expect(layer.cost).toBe(0);
    expect(Array.from(k.read(layer.delta)).every((v) => v === 0)).toBe(true);
  });

  test('backward adds delta into net.delta', () => {
    const { layer, net } = run({ groups }, true);
    k.fill(net.delta!, 0.25);
    layer.backward(net);
    const delta = k.read(layer.delta);
    const got = k.read(net.delta!);
    delta.forEach((d, i) => expect(got[i]).toBeCloseTo(0.25 + d, 12));
  });
});
