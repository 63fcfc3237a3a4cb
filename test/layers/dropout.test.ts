import { ReferenceKernels } from '../../src/kernels/reference';
import { dropout } from '../../src/layers/dropout';
import type { NetState } from '../../src/engine/layer';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, netState, randomValues, section } from './gradcheck';

// Tolerances: kept values equal input * scale to 1e-12 (float64); the dropped fraction
// of 2 x 5000 values is within 0.02 of p (over 4 standard deviations, sqrt(p(1-p)/n)
// = 0.0046 at p = 0.3; the seed is fixed, so the run is deterministic anyway).
const k = new ReferenceKernels({ float64: true });

describe('dropout parse', () => {
  test('defaults: p = .5, scale = 2, output shape = input shape', () => {
    const spec = dropout.parse(section('dropout'), context({ batch: 2, h: 4, w: 3, c: 5 }), COMMON);
    expect([spec.probability, spec.scale]).toEqual([0.5, 2]);
    expect([spec.outW, spec.outH, spec.outC, spec.outputs]).toEqual([3, 4, 5, 60]);
    expect(spec.describe).toBe('dropout       p = 0.50                 60  ->    60');
  });

  test('probability must be in [0, 1), at its line', () => {
    expect(() => dropout.parse(section('dropout', { probability: 1 }), context({ batch: 1, h: 1, w: 1, c: 4 }), COMMON))
      .toThrow('t.cfg:4: dropout probability=1 must be in [0, 1)');
  });
});

describe('dropout forward and backward (reference, float64)', () => {
  const p = 0.3;
  const scale = 1 / (1 - p);
  const batch = 2;
  const inputs = 5000;
  const x = randomValues(batch * inputs, mulberry32(9), 0.5, 1.5); // never 0, so output 0 means dropped

  function setUp(seed: number, train: boolean) {
    const { layer } = build(dropout, k, 'dropout', { probability: p }, context({ batch, h: 1, w: 1, c: inputs }));
    const input = k.alloc(x.length);
    k.upload(input, x);
    const net: NetState = { ...netState(k, input, k.alloc(x.length), train), random: mulberry32(seed) };
    return { layer, net };
  }

  test('training: drops about p of the values and scales the rest by 1 / (1 - p)', () => {
    const { layer, net } = setUp(42, true);
    layer.forward(net);
    const out = k.read(layer.output);
    let dropped = 0;
    out.forEach((v, i) => {
      if (v === 0) dropped++;
      else expect(v).toBeCloseTo(x[i] * scale, 12);
    });
    expect(Math.abs(dropped / out.length - p)).toBeLessThan(0.02);
  });

  test('backward uses the forward mask and adds into net.delta', () => {
    const { layer, net } = setUp(42, true);
    layer.forward(net);
    const kept = Array.from(k.read(layer.output), (v) => v !== 0);
    const delta = randomValues(x.length, mulberry32(3));
    k.upload(layer.delta, delta);
    k.fill(net.delta!, 1);
    layer.backward(net);
    const got = k.read(net.delta!);
    kept.forEach((keep, i) => expect(got[i]).toBeCloseTo(keep ? 1 + delta[i] * scale : 1, 12));
  });

  test('the mask is seeded: the same seed repeats it, the next pass draws a new one', () => {
    const mask = (layer: ReturnType<typeof setUp>['layer']) => Array.from(k.read(layer.output), (v) => v === 0);
    const a = setUp(42, true);
    const b = setUp(42, true);
    a.layer.forward(a.net);
    b.layer.forward(b.net);
    const first = mask(a.layer);
    expect(mask(b.layer)).toEqual(first);
    a.layer.forward(a.net);
    expect(mask(a.layer)).not.toEqual(first);
  });

  test('inference is the identity and draws nothing', () => {
    const { layer, net } = setUp(42, false);
    let draws = 0;
    net.random = () => {
      draws++;
      return 0;
    };
    layer.forward(net);
    expect(Array.from(k.read(layer.output))).toEqual(x);
    expect(draws).toBe(0);
  });
});
