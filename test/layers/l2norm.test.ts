import { ReferenceKernels } from '../../src/kernels/reference';
import { l2norm } from '../../src/layers/l2norm';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward to 1e-12 (float64); gradients by central differences (step 1e-6)
// to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('l2norm', () => {
  test("darknet's layer-table line; a flat input is refused", () => {
    const s = l2norm.parse(section('l2norm'), context({ batch: 1, h: 2, w: 2, c: 3 }), COMMON);
    expect(s.describe).toBe('l2norm                                           12');
    expect(() => l2norm.parse(section('l2norm'), { ...context({ batch: 1, h: 0, w: 0, c: 0 }), inputs: 5 }, COMMON))
      .toThrow('t.cfg:3: the layer before [l2norm] must output an image');
  });

  test('forward: each pixel\'s channel vector has unit length', () => {
    const { layer } = build(l2norm, k, 'l2norm', {}, context({ batch: 1, h: 1, w: 2, c: 2 }));
    const input = k.alloc(4);
    k.upload(input, [3, 1, 4, 0]); // pixel 0: (3, 4), pixel 1: (1, 0)
    layer.forward(netState(k, input, null));
    expect(Array.from(k.read(layer.output))).toEqual([0.6, 1, 0.8, 0]);
  });

  test('gradient by finite differences', () => {
    const { layer, spec } = build(l2norm, k, 'l2norm', {}, context({ batch: 2, h: 2, w: 3, c: 4 }));
    const x = randomValues(2 * spec.inputs, mulberry32(3));
    expect(gradientErrors(k, layer, x, []).input).toBeLessThan(1e-6);
  });
});
