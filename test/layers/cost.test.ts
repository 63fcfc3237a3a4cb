import { ReferenceKernels } from '../../src/kernels/reference';
import { cost } from '../../src/layers/cost';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, netState, randomValues, relativeError, section } from './gradcheck';

// darknet's convention: delta = truth - prediction for sse, which is -0.5 d(error)/d(pred)
// for error = sum (t - p)^2; smooth keeps that factor (delta = -0.5 d(error)/d(pred) in
// both branches), L1 has delta = sign(t - p) = -d(error)/d(pred).
// Tolerances: errors and copies to 1e-12 absolute (float64); deltas against central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('cost parse', () => {
  test('defaults (sse, scale 1) and darknet layer-table line', () => {
    const spec = cost.parse(section('cost'), context({ batch: 2, h: 1, w: 1, c: 10 }), COMMON);
    expect([spec.costType, spec.scale, spec.outputs]).toEqual(['sse', 1, 10]);
    expect(spec.describe).toBe('cost                                             10');
  });

  test('an unknown type is an error listing darknet\'s names', () => {
    expect(() => cost.parse(section('cost', { scale: 2, type: 'l2' }), context({ batch: 1, h: 1, w: 1, c: 4 }), COMMON))
      .toThrow("t.cfg:5: unknown type 'l2'; known: seg, sse, masked, smooth, L1, wgan");
  });

  test.each(['seg', 'wgan'])('darknet type %s is unsupported, said so', (type) => {
    expect(() => cost.parse(section('cost', { type }), context({ batch: 1, h: 1, w: 1, c: 4 }), COMMON))
      .toThrow(`t.cfg:4: cost type '${type}' is not supported (supported: sse, masked, L1, smooth)`);
  });
});

describe('cost forward and backward (reference, float64)', () => {
  const batch = 2;
  const inputs = 6;
  // predictions and truths apart by 0.1 .. 2.5 in either direction: both smooth branches
  // are hit and no difference sits on a kink of L1 or smooth.
  const random = mulberry32(12);
  const truth = randomValues(batch * inputs, random);
  const pred = truth.map((t, i) => t + (i % 2 ? 1 : -1) * (0.1 + 2.4 * random()));

  function run(type: string, scale = 1) {
    const { layer } = build(cost, k, 'cost', { type, scale }, context({ batch, h: 1, w: 1, c: inputs }));
    const input = k.alloc(pred.length);
    k.upload(input, pred);
    const t = k.alloc(truth.length);
    k.upload(t, truth);
    const net = { ...netState(k, input, k.alloc(pred.length)), truth: t };
    layer.forward(net);
    return { layer, net, input };
  }

  const errorOf: Record<string, (d: number) => number> = {
    sse: (d) => d * d,
    L1: (d) => Math.abs(d),
    smooth: (d) => (Math.abs(d) < 1 ? d * d : 2 * Math.abs(d) - 1),
  };
  const factor: Record<string, number> = { sse: 0.5, L1: 1, smooth: 0.5 };

  test.each(['sse', 'L1', 'smooth'])('%s: cost is the summed error, delta = -factor * d(error)/d(pred)', (type) => {
    const { layer, net, input } = run(type);
    const want = truth.reduce((sum, t, i) => sum + errorOf[type](t - pred[i]), 0);
    expect(layer.cost).toBeCloseTo(want, 12);
    expect(Array.from(k.read(layer.output))).toEqual(pred); // the prediction passes through

    const delta = Array.from(k.read(layer.delta));
    const h = 1e-6;
    const values = [...pred];
    const errorAt = (v: number[]) => {
      k.upload(input, v);
      layer.forward(net);
      return layer.cost!;
    };
    const expected = values.map((v, i) => {
      values[i] = v + h;
      const plus = errorAt(values);
      values[i] = v - h;
      const minus = errorAt(values);
      values[i] = v;
      return -factor[type] * (plus - minus) / (2 * h);
    });
    expect(relativeError(delta, expected)).toBeLessThan(1e-6);
  });

  test('backward adds scale * delta into net.delta', () => {
    const { layer, net } = run('sse', 0.5);
    k.fill(net.delta!, 1);
    layer.backward(net);
    const got = k.read(net.delta!);
    truth.forEach((t, i) => expect(got[i]).toBeCloseTo(1 + 0.5 * (t - pred[i]), 12));
  });

  test('without a truth: no cost, the prediction still passes through', () => {
    const { layer } = build(cost, k, 'cost', {}, context({ batch, h: 1, w: 1, c: inputs }));
    const input = k.alloc(pred.length);
    k.upload(input, pred);
    layer.forward(netState(k, input, null));
    expect(layer.cost).toBe(0);
    expect(Array.from(k.read(layer.output))).toEqual(pred);
  });
});
