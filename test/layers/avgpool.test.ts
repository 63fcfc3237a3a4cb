import { ReferenceKernels } from '../../src/kernels/reference';
import { avgpool } from '../../src/layers/avgpool';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward means to 1e-12 absolute; gradients in float64 by central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('avgpool parse', () => {
  test('always global: 1 x 1 x c, darknet layer-table line', () => {
    const spec = avgpool.parse(section('avg'), context({ batch: 2, h: 7, w: 5, c: 12 }), COMMON);
    expect([spec.outW, spec.outH, spec.outC, spec.outputs, spec.inputs]).toEqual([1, 1, 12, 12, 7 * 5 * 12]);
    expect(spec.describe).toBe('avg                        5 x   7 x  12   ->    12');
    expect(spec.flops).toBe(0);
  });

  test('the layer before must output an image', () => {
    const ctx = { ...context({ batch: 1, h: 0, w: 0, c: 0 }), inputs: 10 };
    expect(() => avgpool.parse(section('avgpool'), ctx, COMMON)).toThrow('t.cfg:3: the layer before [avgpool] must output an image');
  });
});

describe('avgpool forward and backward (reference, float64)', () => {
  test('forward is the per-channel mean', () => {
    const { layer } = build(avgpool, k, 'avgpool', {}, context({ batch: 2, h: 1, w: 2, c: 2 }));
    const input = k.alloc(8);
    k.upload(input, [1, 3, 10, 20, -1, -2, 0, 8]); // [batch 2, c 2, 1 x 2]
    layer.forward(netState(k, input, null));
    const out = Array.from(k.read(layer.output));
    [2, 15, -1.5, 4].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 12));
  });

  test('backward spreads delta / (h w) over each channel: relative error < 1e-6', () => {
    const { layer, spec } = build(avgpool, k, 'avgpool', {}, context({ batch: 2, h: 3, w: 4, c: 3 }));
    const errors = gradientErrors(k, layer, randomValues(spec.batch * spec.inputs, mulberry32(2)), []);
    expect(errors.input).toBeLessThan(1e-6);
  });
});
