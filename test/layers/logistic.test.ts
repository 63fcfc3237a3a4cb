import { ReferenceKernels } from '../../src/kernels/reference';
import { logistic } from '../../src/layers/logistic';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, minusNumericalGradient, netState, randomValues, relativeError, section } from './gradcheck';

// Tolerances: outputs and loss to 1e-12 (float64); the delta forward writes against
// -d(loss)/d(input) by central differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('logistic', () => {
  test("darknet's layer-table line; keeps the image shape", () => {
    const s = logistic.parse(section('logistic'), context({ batch: 1, h: 2, w: 3, c: 4 }), COMMON);
    expect(s.describe).toBe('logistic x entropy                               24');
    expect([s.outW, s.outH, s.outC, s.outputs]).toEqual([3, 2, 4, 24]);
  });

  test('sigmoid outputs, cross-entropy loss, and delta = -d(loss)/d(input)', () => {
    const { layer, spec } = build(logistic, k, 'logistic', {}, context({ batch: 2, h: 1, w: 1, c: 5 }));
    const random = mulberry32(6);
    const x = randomValues(2 * spec.inputs, random, -3, 3);
    const t = randomValues(2 * spec.inputs, random, 0, 1);
    const input = k.alloc(x.length);
    k.upload(input, x);
    const net = { ...netState(k, input, null), truth: k.alloc(t.length) };
    k.upload(net.truth, t);
    layer.forward(net);
    const p = x.map((v) => 1 / (1 + Math.exp(-v)));
    const out = k.read(layer.output);
    p.forEach((v, i) => expect(Math.abs(out[i] - v)).toBeLessThan(1e-12));
    const loss = p.reduce((s, v, i) => s - t[i] * Math.log(v) - (1 - t[i]) * Math.log(1 - v), 0);
    expect(Math.abs(layer.cost! - loss)).toBeLessThan(1e-12);
    const delta = Array.from(k.read(layer.delta));
    const numerical = minusNumericalGradient(k, input, () => {
      layer.forward(net);
      return layer.cost!;
    }, 1e-6);
    expect(relativeError(delta, numerical)).toBeLessThan(1e-6);
  });

  test('without a truth: no loss', () => {
    const { layer } = build(logistic, k, 'logistic', {}, context({ batch: 1, h: 1, w: 1, c: 2 }));
    const input = k.alloc(2);
    layer.forward(netState(k, input, null));
    expect(layer.cost).toBe(0);
    expect(Array.from(k.read(layer.output))).toEqual([0.5, 0.5]);
  });
});
