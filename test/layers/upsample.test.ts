import { ReferenceKernels } from '../../src/kernels/reference';
import { upsample } from '../../src/layers/upsample';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward exact on the hand-computed values; gradients by central differences
// (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('upsample parse', () => {
  test("darknet's layer-table lines", () => {
    const u = upsample.parse(section('upsample', { stride: 2 }), context({ batch: 1, h: 13, w: 13, c: 256 }), COMMON);
    expect(u.describe).toBe('upsample            2x    13 x  13 x 256   ->    26 x  26 x 256');
    const d = upsample.parse(section('upsample', { stride: -2 }), context({ batch: 1, h: 26, w: 26, c: 8 }), COMMON);
    expect(d.describe).toBe('downsample          2x    26 x  26 x   8   ->    13 x  13 x   8');
  });

  test('a downsample that does not divide the image is refused', () => {
    expect(() => upsample.parse(section('upsample', { stride: -2 }), context({ batch: 1, h: 5, w: 4, c: 1 }), COMMON))
      .toThrow('t.cfg:4: downsample by 2 needs the input');
  });
});

describe('upsample forward and backward (reference, float64)', () => {
  function run(keys: Record<string, number>, shape: { batch: number; h: number; w: number; c: number }, x: number[]): number[] {
    const { layer } = build(upsample, k, 'upsample', keys, context(shape));
    const input = k.alloc(x.length);
    k.upload(input, x);
    layer.forward(netState(k, input, null));
    return Array.from(k.read(layer.output));
  }

  test('2x repeats each value in a 2 x 2 block, times scale', () => {
    expect(run({ stride: 2, scale: 0.5 }, { batch: 1, h: 1, w: 2, c: 1 }, [2, 4])).toEqual([1, 1, 2, 2, 1, 1, 2, 2]);
  });

  test('downsample sums each block, times scale', () => {
    expect(run({ stride: -2 }, { batch: 1, h: 2, w: 4, c: 1 }, [1, 2, 3, 4, 5, 6, 7, 8])).toEqual([14, 22]);
  });

  test.each([
    ['upsample 2x, scale 0.7', { stride: 2, scale: 0.7 }, { batch: 2, h: 2, w: 3, c: 2 }],
    ['upsample 3x', { stride: 3 }, { batch: 1, h: 2, w: 2, c: 1 }],
    ['downsample 2x', { stride: -2, scale: 1.5 }, { batch: 2, h: 4, w: 2, c: 3 }],
  ])('gradient by finite differences (%s)', (_name, keys, shape) => {
    const { layer, spec } = build(upsample, k, 'upsample', keys, context(shape));
    const x = randomValues(spec.batch * spec.inputs, mulberry32(5));
    expect(gradientErrors(k, layer, x, []).input).toBeLessThan(1e-6);
  });
});
