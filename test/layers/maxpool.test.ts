import { ReferenceKernels } from '../../src/kernels/reference';
import { maxpool } from '../../src/layers/maxpool';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward values are exact (a max selects an input); gradients are checked
// in float64 by central differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('maxpool parse', () => {
  test('darknet defaults: size = stride, padding = size - 1', () => {
    const spec = maxpool.parse(section('maxpool', { stride: 2 }), context({ batch: 1, h: 28, w: 28, c: 20 }), COMMON);
    expect([spec.size, spec.stride, spec.padding]).toEqual([2, 2, 1]);
    // (28 + 1 - 2) / 2 + 1 = 14
    expect([spec.outW, spec.outH, spec.outC, spec.outputs]).toEqual([14, 14, 20, 14 * 14 * 20]);
    expect(spec.describe).toBe('max          2 x 2 / 2    28 x  28 x  20   ->    14 x  14 x  20');
    expect(spec.flops).toBe(0);
    expect(spec.params).toEqual([]);
  });

  test('odd window and explicit padding', () => {
    const s = maxpool.parse(section('max', { size: 3, stride: 2 }), context({ batch: 1, h: 5, w: 7, c: 1 }), COMMON);
    expect([s.padding, s.outW, s.outH]).toEqual([2, 4, 3]); // (7+2-3)/2+1, (5+2-3)/2+1
    const p = maxpool.parse(section('max', { size: 2, stride: 2, padding: 0 }), context({ batch: 1, h: 5, w: 5, c: 1 }), COMMON);
    expect([p.outW, p.outH]).toEqual([2, 2]);
  });

  test.each([
    [{ stride: 0 }, 't.cfg:4: maxpool stride=0'],
    [{ size: 0 }, 't.cfg:4: maxpool size=0'],
    [{ size: 2, padding: -1 }, 't.cfg:5: maxpool padding=-1'],
    [{ size: 9, stride: 1, padding: 0 }, 't.cfg:3: maxpool 9 x 9 / 1 with padding 0 leaves nothing'],
  ])('bad keys %j are errors at their line', (keys, message) => {
    expect(() => maxpool.parse(section('maxpool', keys), context({ batch: 1, h: 4, w: 4, c: 1 }), COMMON)).toThrow(message);
  });

  test('the layer before must output an image', () => {
    const ctx = { ...context({ batch: 1, h: 0, w: 0, c: 0 }), inputs: 10 };
    expect(() => maxpool.parse(section('maxpool', {}), ctx, COMMON)).toThrow('t.cfg:3: the layer before [maxpool] must output an image');
  });
});

describe('maxpool forward and backward (reference, float64)', () => {
  test('forward takes each window max; padded taps never win', () => {
    // 1 image, 1 channel, 3 x 3, all negative so a padded 0 would win if it were read.
    const { layer } = build(maxpool, k, 'maxpool', { size: 2, stride: 1 }, context({ batch: 1, h: 3, w: 3, c: 1 }));
    const x = [-9, -2, -7, -4, -5, -6, -1, -8, -3];
    const input = k.alloc(9);
    k.upload(input, x);
    layer.forward(netState(k, input, null));
    // padding 1 -> offset 0 (floor(1/2)), out 3 x 3; the last row and column see the image edge
    expect(Array.from(k.read(layer.output))).toEqual([-2, -2, -6, -1, -3, -3, -1, -3, -3]);
  });

  test.each([
    ['2 x 2 / 2', { size: 2, stride: 2 }, { batch: 2, h: 6, w: 6, c: 2 }],
    ['3 x 3 / 2, padding 2', { size: 3, stride: 2 }, { batch: 2, h: 5, w: 7, c: 3 }],
    ['3 x 3 / 1, overlapping windows', { size: 3, stride: 1, padding: 2 }, { batch: 1, h: 4, w: 4, c: 2 }],
  ])('backward routes each delta to its max (%s): relative error < 1e-6', (_name, keys, shape) => {
    const { layer, spec } = build(maxpool, k, 'maxpool', keys, context(shape));
    const x = randomValues(spec.batch * spec.inputs, mulberry32(3));
    const errors = gradientErrors(k, layer, x, []);
    expect(errors.input).toBeLessThan(1e-6);
  });

  test('backward adds into net.delta', () => {
    const { layer } = build(maxpool, k, 'maxpool', { size: 2, stride: 2 }, context({ batch: 1, h: 2, w: 2, c: 1 }));
    const input = k.alloc(4);
    k.upload(input, [1, 4, 3, 2]);
    const inputDelta = k.alloc(4);
    k.upload(inputDelta, [10, 10, 10, 10]);
    const net = netState(k, input, inputDelta);
    layer.forward(net);
    k.upload(layer.delta, [0.5]);
    layer.backward(net);
    expect(Array.from(k.read(inputDelta))).toEqual([10, 10.5, 10, 10]);
  });
});
