import { ReferenceKernels } from '../../src/kernels/reference';
import { crop } from '../../src/layers/crop';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: crops are exact copies (x * 2 - 1 is exact in float64); gradients by central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

/** A plain crop: image b, channel ch, window at (dh, dw), optionally mirrored, x * scale + trans. */
function plainCrop(x: number[], s: { batch: number; c: number; h: number; w: number }, ch: number, cw: number, dh: number, dw: number, flip: boolean, adjust = true): number[] {
  const out: number[] = [];
  for (let b = 0; b < s.batch; b++) {
    for (let c = 0; c < s.c; c++) {
      for (let i = 0; i < ch; i++) {
        for (let j = 0; j < cw; j++) {
          const col = flip ? dw + cw - 1 - j : dw + j;
          const v = x[((b * s.c + c) * s.h + dh + i) * s.w + col];
          out.push(adjust ? 2 * v - 1 : v);
        }
      }
    }
  }
  return out;
}

describe('crop parse', () => {
  test("darknet's layer-table line (h x w first) and shapes", () => {
    const spec = crop.parse(section('crop', { crop_height: 4, crop_width: 3, flip: 1 }), context({ batch: 1, h: 6, w: 5, c: 3 }), COMMON);
    expect(spec.describe).toBe('Crop Layer: 6 x 5 -> 4 x 3 x 3 image');
    expect([spec.outH, spec.outW, spec.outC, spec.outputs, spec.flops]).toEqual([4, 3, 3, 36, 0]);
    expect(spec.params).toEqual([]);
  });

  test.each([
    [{ crop_height: 2, crop_width: 2, angle: 7 }, "t.cfg:6: crop angle=7 (colour/rotation jitter) is not supported; only angle=0"],
    [{ crop_height: 2, crop_width: 2, saturation: 1.5 }, 't.cfg:6: crop saturation=1.5'],
    [{ crop_height: 9, crop_width: 2 }, 't.cfg:3: crop 2 x 9 must be at least 1 x 1 and fit the 5 x 6 input'],
  ])('%j is refused', (keys, message) => {
    expect(() => crop.parse(section('crop', keys), context({ batch: 1, h: 6, w: 5, c: 3 }), COMMON)).toThrow(message);
  });

  test('the no-op jitter values of vgg-16.cfg load', () => {
    const spec = crop.parse(section('crop', { crop_height: 2, crop_width: 2, flip: 1, exposure: 1, saturation: 1, angle: 0 }), context({ batch: 1, h: 4, w: 4, c: 3 }), COMMON);
    expect(spec.flip).toBe(true);
  });
});

describe('crop forward and backward (reference, float64)', () => {
  const shape = { batch: 2, h: 6, w: 5, c: 2 };
  const x = randomValues(shape.batch * shape.h * shape.w * shape.c, mulberry32(4));

  test('inference takes the centre crop, mapped to 2x - 1', () => {
    const { layer } = build(crop, k, 'crop', { crop_height: 3, crop_width: 2, flip: 1 }, context(shape));
    const input = k.alloc(x.length);
    k.upload(input, x);
    layer.forward(netState(k, input, null, false));
    // dh = (6 - 3) / 2 = 1, dw = (5 - 2) / 2 = 1, never flipped at inference
    expect(Array.from(k.read(layer.output))).toEqual(plainCrop(x, shape, 3, 2, 1, 1, false));
  });

  test('noadjust keeps the values', () => {
    const { layer } = build(crop, k, 'crop', { crop_height: 6, crop_width: 5, noadjust: 1 }, context(shape));
    const input = k.alloc(x.length);
    k.upload(input, x);
    layer.forward(netState(k, input, null, false));
    expect(Array.from(k.read(layer.output))).toEqual(x);
  });

  test('training takes one of the possible windows, flipped or not, and the draws vary', () => {
    const { layer } = build(crop, k, 'crop', { crop_height: 3, crop_width: 2, flip: 1 }, context(shape));
    const input = k.alloc(x.length);
    k.upload(input, x);
    const net = netState(k, input, null, true);
    const seen = new Set<string>();
    for (let run = 0; run < 40; run++) {
      layer.forward(net);
      const out = Array.from(k.read(layer.output));
      let match = '';
      for (let dh = 0; dh <= 3; dh++) {
        for (let dw = 0; dw <= 3; dw++) {
          for (const flip of [false, true]) {
            const want = plainCrop(x, shape, 3, 2, dh, dw, flip);
            if (want.every((v, i) => v === out[i])) match = `${dh},${dw},${flip}`;
          }
        }
      }
      expect(match).not.toBe('');
      seen.add(match);
    }
    expect(seen.size).toBeGreaterThan(5);
    expect([...seen].some((m) => m.endsWith('true'))).toBe(true);
  });

  test('backward: 2 * delta back to the cropped pixels (centre crop), added', () => {
    const { layer } = build(crop, k, 'crop', { crop_height: 1, crop_width: 1 }, context({ batch: 1, h: 3, w: 3, c: 1 }));
    const input = k.alloc(9);
    const inputDelta = k.alloc(9);
    k.upload(inputDelta, [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    const net = netState(k, input, inputDelta, false);
    layer.forward(net);
    k.upload(layer.delta, [0.25]);
    layer.backward(net);
    expect(Array.from(k.read(inputDelta))).toEqual([1, 1, 1, 1, 1.5, 1, 1, 1, 1]);
  });

  test('gradient by finite differences (a full-size crop, so every draw is the same window)', () => {
    const { layer } = build(crop, k, 'crop', { crop_height: 6, crop_width: 5 }, context(shape));
    expect(gradientErrors(k, layer, x, []).input).toBeLessThan(1e-6);
  });
});

describe('crop shift (darknet GPU: one random offset per colour channel per batch)', () => {
  test('training adds (u - 0.5) * shift per channel, the same for every image; inference adds none', () => {
    const shape = { batch: 2, h: 2, w: 2, c: 3 };
    const { layer } = build(crop, k, 'crop', { crop_height: 2, crop_width: 2, shift: 0.2, noadjust: 1 }, context(shape));
    const x = new Array(24).fill(0.5);
    const input = k.alloc(24);
    k.upload(input, x);
    layer.forward(netState(k, input, null, false));
    expect(Array.from(k.read(layer.output))).toEqual(x);
    layer.forward(netState(k, input, null, true));
    const out = Array.from(k.read(layer.output));
    for (let ch = 0; ch < 3; ch++) {
      const values = [0, 1].flatMap((b) => out.slice((b * 3 + ch) * 4, (b * 3 + ch + 1) * 4));
      expect(new Set(values).size).toBe(1); // one offset per channel, shared by both images
      expect(Math.abs(values[0] - 0.5)).toBeLessThanOrEqual(0.1);
    }
    expect(new Set([0, 1, 2].map((ch) => out[ch * 4])).size).toBe(3);
  });
});
