import { ReferenceKernels } from '../../src/kernels/reference';
import type { NetState } from '../../src/engine/layer';
import { route } from '../../src/layers/route';
import { COMMON, section } from './gradcheck';
import { contextAfter, earlierLayer, earlierSpec, sourceGradientErrors } from './earlier';

// Tolerances: forward copies are exact; gradients in float64 by central differences
// (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });
const batch = 2;
// layers 0..2, as a route at index 3 sees them
const previous = [earlierSpec(0, batch, 4, 4, 3), earlierSpec(1, batch, 4, 4, 2), earlierSpec(2, batch, 2, 2, 5)];
const parse = (keys: Record<string, string | number>) => route.parse(section('route', keys), contextAfter(previous), COMMON);

describe('route parse', () => {
  test('same w and h: channels add up; negative indexes count back from this layer', () => {
    const spec = parse({ layers: '-3,1' });
    expect(spec.layers).toEqual([0, 1]);
    expect(spec.sizes).toEqual([48, 32]);
    expect([spec.outW, spec.outH, spec.outC, spec.outputs, spec.inputs]).toEqual([4, 4, 5, 80, 80]);
    expect(spec.describe).toBe('route  0 1');
  });

  test('different w or h: a flat 0 x 0 x 0 output of all the values, as darknet', () => {
    const spec = parse({ layers: '0,2' });
    expect([spec.outW, spec.outH, spec.outC, spec.outputs]).toEqual([0, 0, 0, 48 + 20]);
  });

  test("missing layers= names it at the section's line", () => {
    expect(() => parse({})).toThrow("t.cfg:3: [route] needs 'layers='");
  });

  test.each([
    ['-4', 'route layer -4'],
    ['1,3', 'route layer 3'],
    ['7', 'route layer 7'],
  ])('layers=%s is out of range, said at its line', (layers, message) => {
    expect(() => parse({ layers })).toThrow(`t.cfg:4: ${message} (from 'layers=${layers}') is out of range: layer 3 can route only earlier layers (0..2)`);
  });
});

describe('route forward and backward (reference, float64)', () => {
  function setUp(layers: string) {
    const spec = parse({ layers });
    const earlier = previous.map((s, i) => earlierLayer(k, s, 20 + i));
    const layer = route.create(spec, k);
    const last = earlier[earlier.length - 1];
    const net: NetState = {
      k, train: true, input: last.output, delta: last.delta, truth: null, layers: [...earlier, layer], random: Math.random,
    };
    return { layer, earlier, net };
  }

  test('forward concatenates each image\'s rows in order', () => {
    const { layer, earlier, net } = setUp('2,0');
    layer.forward(net);
    const out = k.read(layer.output);
    const a = k.read(earlier[2].output);
    const b = k.read(earlier[0].output);
    for (let i = 0; i < batch; i++) {
      expect(Array.from(out.subarray(i * 68, i * 68 + 20))).toEqual(Array.from(a.subarray(i * 20, i * 20 + 20)));
      expect(Array.from(out.subarray(i * 68 + 20, (i + 1) * 68))).toEqual(Array.from(b.subarray(i * 48, i * 48 + 48)));
    }
  });

  test('backward adds each slice into its layer\'s delta: relative error < 1e-6', () => {
    const { layer, earlier, net } = setUp('-1,0,1');
    const errors = sourceGradientErrors(k, layer, net, [0, 1, 2].map((i) => ({
      name: `layer ${i}`, value: earlier[i].output, delta: earlier[i].delta,
    })));
    for (const e of Object.values(errors)) expect(e).toBeLessThan(1e-6);
  });

  test('a layer routed twice gets both slices added', () => {
    const { layer, earlier, net } = setUp('1,1');
    k.fill(earlier[1].delta, 1);
    k.upload(layer.delta, Array.from({ length: batch * 64 }, (_, i) => i));
    layer.backward(net);
    const got = k.read(earlier[1].delta);
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < 32; i++) expect(got[b * 32 + i]).toBe(1 + (b * 64 + i) + (b * 64 + 32 + i));
    }
  });
});
