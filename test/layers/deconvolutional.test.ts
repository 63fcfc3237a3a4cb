import { ReferenceKernels } from '../../src/kernels/reference';
import { deconvolutional, type DeconvolutionalLayer } from '../../src/layers/deconvolutional';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: forward against a plain scatter loop to 1e-12 (float64); gradients by
// central differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

describe('deconvolutional parse', () => {
  test("darknet's layer-table line, shapes, params in .weights order", () => {
    const s = deconvolutional.parse(section('deconv', { filters: 16, size: 4, stride: 2, pad: 1, batch_normalize: 1 }), context({ batch: 1, h: 13, w: 12, c: 32 }), COMMON);
    // out = (in - 1) * stride + size - 2 * padding, padding = size / 2 = 2
    expect([s.outW, s.outH, s.outC]).toEqual([22, 24, 16]);
    expect(s.describe).toBe('deconv   16  4 x 4 / 2    12 x  13 x  32   ->    22 x  24 x  16');
    expect(s.params.map((p) => [p.name, p.size])).toEqual([
      ['biases', 16], ['scales', 16], ['rolling_mean', 16], ['rolling_variance', 16], ['weights', 32 * 16 * 16],
    ]);
  });
});

/** A plain transposed convolution: each input value scatters weights[ch, f] into the output. */
function plainDeconv(x: number[], w: number[], bias: number[], s: { batch: number; c: number; h: number; w: number; n: number; size: number; stride: number; pad: number; outH: number; outW: number }): number[] {
  const out = new Array(s.batch * s.n * s.outH * s.outW).fill(0);
  for (let b = 0; b < s.batch; b++) {
    for (let ch = 0; ch < s.c; ch++) {
      for (let y = 0; y < s.h; y++) {
        for (let xx = 0; xx < s.w; xx++) {
          const v = x[((b * s.c + ch) * s.h + y) * s.w + xx];
          for (let f = 0; f < s.n; f++) {
            for (let ky = 0; ky < s.size; ky++) {
              for (let kx = 0; kx < s.size; kx++) {
                const oy = y * s.stride - s.pad + ky;
                const ox = xx * s.stride - s.pad + kx;
                if (oy < 0 || oy >= s.outH || ox < 0 || ox >= s.outW) continue;
                out[((b * s.n + f) * s.outH + oy) * s.outW + ox] += v * w[((ch * s.n + f) * s.size + ky) * s.size + kx];
              }
            }
          }
        }
      }
    }
  }
  return out.map((v, i) => v + bias[Math.floor(i / (s.outH * s.outW)) % s.n]);
}

describe('deconvolutional forward and backward (reference, float64)', () => {
  const shape = { batch: 2, h: 3, w: 2, c: 3 };
  const keys = { filters: 2, size: 3, stride: 2, padding: 1, activation: 'linear' };

  test('forward is the transposed convolution', () => {
    const { layer, spec } = build(deconvolutional, k, 'deconvolutional', keys, context(shape));
    const l = layer as DeconvolutionalLayer;
    const random = mulberry32(10);
    const x = randomValues(shape.batch * spec.inputs, random);
    const w = randomValues(spec.params[1].size, random);
    const bias = randomValues(2, random);
    k.upload(l.weights, w);
    k.upload(l.biases, bias);
    const input = k.alloc(x.length);
    k.upload(input, x);
    layer.forward(netState(k, input, null));
    const want = plainDeconv(x, w, bias, { ...shape, n: 2, size: 3, stride: 2, pad: 1, outH: spec.outH, outW: spec.outW });
    expect([spec.outH, spec.outW]).toEqual([5, 3]);
    const out = k.read(layer.output);
    want.forEach((v, i) => expect(Math.abs(out[i] - v)).toBeLessThan(1e-12));
  });

  test.each([
    ['stride 2, padding 1, tanh', { ...keys, activation: 'tanh' }],
    ['batch_normalize, pad=1, size 2', { filters: 3, size: 2, stride: 1, pad: 1, batch_normalize: 1, activation: 'linear' }],
  ])('gradients of input, biases and weights by finite differences (%s)', (_name, kk) => {
    const { layer, spec } = build(deconvolutional, k, 'deconvolutional', kk, context(shape));
    const l = layer as DeconvolutionalLayer;
    const x = randomValues(shape.batch * spec.inputs, mulberry32(11));
    const checked = [
      { name: 'biases', value: l.biases, updates: l.biasUpdates },
      { name: 'weights', value: l.weights, updates: l.weightUpdates },
      ...(l.bn ? [{ name: 'scales', value: l.bn.scales, updates: l.bn.scaleUpdates }] : []),
    ];
    const errors = gradientErrors(k, layer, x, checked);
    for (const e of Object.values(errors)) expect(e).toBeLessThan(1e-6);
  });
});

describe('deconvolutional batch norm after a load', () => {
  test('new rolling statistics loaded into a built network are the ones inference uses', async () => {
    const { parseCfg } = await import('../../src/cfg/parser');
    const { Network } = await import('../../src/engine/network');
    const spec = parseCfg(`[net]
batch=1
height=3
width=3
channels=2

[deconvolutional]
batch_normalize=1
filters=3
size=2
stride=2
activation=linear
`, 'deconv-bn.cfg');
    const kd = new ReferenceKernels({ float64: true });
    const x = Float64Array.from({ length: spec.net.inputs }, (_, i) => Math.sin(i + 1));
    const net = new Network(spec, kd, { seed: 1 });
    const w = net.exportWeights();
    const first = Array.from(net.predict(x));
    w.layers[0].rolling_variance = Float32Array.from([4, 9, 0.25]);
    w.layers[0].rolling_mean = Float32Array.from([0.5, -1, 2]);
    net.loadWeights(w);
    const reloaded = Array.from(net.predict(x));
    const fresh = new Network(spec, kd, { seed: 2 });
    fresh.loadWeights(w);
    const expected = Array.from(fresh.predict(x));
    expect(reloaded).not.toEqual(first);
    reloaded.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
    net.dispose();
    fresh.dispose();
  });
});
