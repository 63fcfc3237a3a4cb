import { ReferenceKernels } from '../../src/kernels/reference';
import { local, type LocalLayer } from '../../src/layers/local';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward against a plain loop to 1e-12 (float64); gradients by central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('local parse', () => {
  test("darknet's layer-table line, params in .weights order, FLOPs", () => {
    // yolov1.cfg's local layer: 7 x 7 x 1024, 256 filters 3 x 3, pad=1
    const s = local.parse(section('local', { size: 3, stride: 1, pad: 1, filters: 256, activation: 'leaky' }), context({ batch: 1, h: 7, w: 7, c: 1024 }), COMMON);
    expect(s.describe).toBe('Local Layer: 7 x 7 x 1024 image, 256 filters -> 7 x 7 x 256 image');
    expect(s.params).toEqual([{ name: 'biases', size: 49 * 256 }, { name: 'weights', size: 49 * 256 * 1024 * 9 }]);
    expect(s.flops).toBe(0); // darknet's ops count leaves local layers out
  });

  test('pad=1 with a size whose im2col grid differs from the output is refused', () => {
    expect(() => local.parse(section('local', { size: 5, pad: 1 }), context({ batch: 1, h: 7, w: 7, c: 1 }), COMMON))
      .toThrow('t.cfg:3: local 5 x 5 / 1 with pad=1 does not fit');
  });
});

describe('local forward and backward (reference, float64)', () => {
  const shape = { batch: 2, h: 5, w: 4, c: 2 };
  const keys = { filters: 3, size: 3, stride: 2, pad: 1, activation: 'leaky' };

  test('forward: every location its own filters and every output its own bias', () => {
    const { layer, spec } = build(local, k, 'local', keys, context(shape));
    const l = layer as LocalLayer;
    const random = mulberry32(8);
    const x = randomValues(shape.batch * spec.inputs, random);
    const w = randomValues(spec.params[1].size, random);
    const bias = randomValues(spec.outputs, random);
    k.upload(l.weights, w);
    k.upload(l.biases, bias);
    const input = k.alloc(x.length);
    k.upload(input, x);
    layer.forward(netState(k, input, null));
    const out = k.read(layer.output);
    const { outH, outW, filters, c, h, w: width } = spec;
    for (let b = 0; b < shape.batch; b++) {
      for (let f = 0; f < filters; f++) {
        for (let y = 0; y < outH; y++) {
          for (let xx = 0; xx < outW; xx++) {
            const loc = y * outW + xx;
            let sum = bias[(f * outH + y) * outW + xx];
            for (let ch = 0; ch < c; ch++) {
              for (let ky = 0; ky < 3; ky++) {
                for (let kx = 0; kx < 3; kx++) {
                  const r = y * 2 - 1 + ky;
                  const col = xx * 2 - 1 + kx;
                  if (r < 0 || r >= h || col < 0 || col >= width) continue;
                  sum += w[((loc * filters + f) * c + ch) * 9 + ky * 3 + kx] * x[((b * c + ch) * h + r) * width + col];
                }
              }
            }
            const want = sum > 0 ? sum : 0.1 * sum;
            expect(Math.abs(out[((b * filters + f) * outH + y) * outW + xx] - want)).toBeLessThan(1e-12);
          }
        }
      }
    }
  });

  test('gradients of input, biases and weights by finite differences', () => {
    const { layer, spec } = build(local, k, 'local', { ...keys, activation: 'tanh' }, context(shape));
    const l = layer as LocalLayer;
    const x = randomValues(shape.batch * spec.inputs, mulberry32(9));
    const errors = gradientErrors(k, layer, x, [
      { name: 'biases', value: l.biases, updates: l.biasUpdates },
      { name: 'weights', value: l.weights, updates: l.weightUpdates },
    ]);
    for (const e of Object.values(errors)) expect(e).toBeLessThan(1e-6);
  });

  test("update is darknet's SGD step (biases without decay)", () => {
    const { layer } = build(local, k, 'local', { filters: 1, size: 1 }, context({ batch: 1, h: 1, w: 1, c: 1 }));
    const l = layer as LocalLayer;
    k.upload(l.weights, [2]);
    k.upload(l.weightUpdates, [0.5]);
    k.upload(l.biases, [1]);
    k.upload(l.biasUpdates, [0.25]);
    l.update({ learningRate: 0.1, momentum: 0.9, decay: 0.01, batch: 2, scaleL1: 0 });
    // updates += -decay * batch * w = 0.5 - 0.04 = 0.46; w += 0.1 / 2 * 0.46
    expect(k.read(l.weights)[0]).toBeCloseTo(2 + 0.05 * 0.46, 12);
    expect(k.read(l.biases)[0]).toBeCloseTo(1 + 0.05 * 0.25, 12);
    expect(k.read(l.weightUpdates)[0]).toBeCloseTo(0.46 * 0.9, 12);
  });
});
