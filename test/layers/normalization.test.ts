import { ReferenceKernels } from '../../src/kernels/reference';
import { normalization } from '../../src/layers/normalization';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward against the closed form to 1e-12 (float64); gradients by central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('normalization parse', () => {
  test("darknet's layer-table line (w x h x c) and defaults", () => {
    const s = normalization.parse(section('lrn'), context({ batch: 1, h: 27, w: 26, c: 96 }), COMMON);
    expect(s.describe).toBe('Local Response Normalization Layer: 26 x 27 x 96 image, 5 size');
    expect([s.size, s.alpha, s.beta, s.kappa, s.outputs]).toEqual([5, 0.0001, 0.75, 1, 26 * 27 * 96]);
  });

  test('too few channels for the window is refused', () => {
    expect(() => normalization.parse(section('normalization', { size: 5 }), context({ batch: 1, h: 2, w: 2, c: 2 }), COMMON))
      .toThrow('t.cfg:4: normalization size=5 needs more than 2 channels');
  });
});

describe('normalization forward and backward (reference, float64)', () => {
  const shape = { batch: 2, h: 2, w: 3, c: 7 };
  const keys = { size: 5, alpha: 0.3, beta: 0.75, kappa: 2 };

  test("forward: darknet's window, which leaves out channel size/2", () => {
    const { layer, spec } = build(normalization, k, 'normalization', keys, context(shape));
    const x = randomValues(shape.batch * spec.inputs, mulberry32(1));
    const input = k.alloc(x.length);
    k.upload(input, x);
    layer.forward(netState(k, input, null));
    const out = k.read(layer.output);
    const spatial = 6;
    for (let b = 0; b < 2; b++) {
      for (let ch = 0; ch < 7; ch++) {
        for (let p = 0; p < spatial; p++) {
          const sq = (j: number) => x[(b * 7 + j) * spatial + p] ** 2;
          let window = 0;
          for (let j = Math.max(0, ch - 2); j <= Math.min(6, ch + 2); j++) window += sq(j);
          const norm = 2 + 0.3 * (window - sq(2));
          const i = (b * 7 + ch) * spatial + p;
          expect(Math.abs(out[i] - x[i] * norm ** -0.75)).toBeLessThan(1e-12);
        }
      }
    }
  });

  test.each([
    ['size 5', keys],
    ['size 3, defaults', { size: 3 }],
    ['size 4', { size: 4, alpha: 0.2 }],
  ])('gradient by finite differences (%s)', (_name, kk) => {
    const { layer, spec } = build(normalization, k, 'normalization', kk, context(shape));
    const x = randomValues(shape.batch * spec.inputs, mulberry32(2), 0.2, 1);
    expect(gradientErrors(k, layer, x, []).input).toBeLessThan(1e-6);
  });
});
