/**
 * Weight sharing by 1-D k-means: zeros stay zero, every weight maps to its nearest shared
 * value, at most 2^bits - 1 values (exactly that many when the data has them), linear
 * initialisation, deterministic.
 */
import { assign, decodeLayer, kmeansLayer } from '../../src/compress/kmeans';
import { parseLayerWidths, parseWidths } from '../../src/compress/quantize';
import { parseCfg } from '../../src/cfg/parser';
import { mulberry32 } from '../../src/engine/random';

/** Gaussian-ish weights with a fraction pruned to exactly 0 (and a few -0). */
function prunedWeights(n: number, sparsity: number, seed = 1): Float32Array {
  const r = mulberry32(seed);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = (r() + r() + r() + r() - 2) * 0.1;
    w[i] = r() < sparsity ? (i % 7 === 0 ? -0 : 0) : g;
  }
  return w;
}

function distinct(a: Float32Array): Set<number> {
  return new Set(Array.from(a));
}

describe('k-means weight sharing', () => {
  const w = prunedWeights(20000, 0.9);

  test('zeros stay exactly zero and non-zeros stay non-zero', () => {
    for (const bits of [1, 2, 5, 8]) {
      const code = kmeansLayer(w, bits);
      const q = decodeLayer(code);
      let wrong = 0;
      for (let i = 0; i < w.length; i++) if ((q[i] === 0) !== (w[i] === 0) || (code.indices[i] === 0) !== (w[i] === 0)) wrong++;
      expect(wrong).toBe(0);
    }
  });

  test('every weight maps to its nearest centroid', () => {
    const code = kmeansLayer(w, 4);
    const c = Array.from(code.centroids);
    let farther = 0;
    for (let i = 0; i < w.length; i++) {
      if (w[i] === 0) continue;
      const mine = Math.abs(w[i] - c[code.indices[i] - 1]);
      for (const other of c) if (Math.abs(w[i] - other) < mine) farther++;
    }
    expect(farther).toBe(0);
  });

  test('2^bits - 1 shared values when the data fills them, never more, none of them 0', () => {
    for (const bits of [1, 3, 6, 8]) {
      const code = kmeansLayer(w, bits);
      // 2,000 bell-shaped non-zeros fill 63 clusters; of 255 the emptied tail ones are dropped
      if (bits <= 6) expect(code.centroids.length).toBe(2 ** bits - 1);
      else expect(code.centroids.length).toBeLessThanOrEqual(2 ** bits - 1);
      expect(distinct(decodeLayer(code)).size).toBe(code.centroids.length + 1); // the shared values and 0
      expect(Array.from(code.centroids).every((c) => c !== 0)).toBe(true);
      expect(Array.from(code.centroids)).toEqual([...code.centroids].sort((a, b) => a - b));
    }
    // Fewer distinct non-zeros than clusters: one value each, the codebook no larger.
    const few = Float32Array.of(0, 0.5, -0.25, 0.5, 0, 0.125);
    const code = kmeansLayer(few, 8);
    expect(Array.from(code.centroids)).toEqual([-0.25, 0.125, 0.5]);
    expect(Array.from(decodeLayer(code))).toEqual(Array.from(few).map((x) => (x === 0 ? 0 : x)));
  });

  test('is deterministic', () => {
    const a = kmeansLayer(w, 5);
    const b = kmeansLayer(Float32Array.from(w), 5);
    expect(Buffer.from(a.centroids.buffer).equals(Buffer.from(b.centroids.buffer))).toBe(true);
    expect(Buffer.from(a.indices.buffer).equals(Buffer.from(b.indices.buffer))).toBe(true);
  });

  test('linear initialisation: with no iterations the values are evenly spaced from min to max', () => {
    const r = mulberry32(3);
    const u = Float32Array.from({ length: 5000 }, () => r() * 2 - 1);
    const min = Math.min(...u);
    const max = Math.max(...u);
    const code = kmeansLayer(u, 3, { maxIterations: 0 });
    const expected = Array.from({ length: 7 }, (_, j) => Math.fround(min + ((max - min) * j) / 6));
    expect(Array.from(code.centroids)).toEqual(expected);
    // Lloyd iterations lower the squared error from there.
    const sse = (c: ReturnType<typeof kmeansLayer>) => u.reduce((s, x, i) => s + (x - c.centroids[c.indices[i] - 1]) ** 2, 0);
    expect(sse(kmeansLayer(u, 3))).toBeLessThanOrEqual(sse(code));
  });

  test('an all-zero layer has an empty codebook', () => {
    const code = kmeansLayer(new Float32Array(10), 4);
    expect(code.centroids.length).toBe(0);
    expect(Array.from(code.indices)).toEqual(new Array(10).fill(0));
  });

  test('assign never yields a zero shared value (a mean of both signs is nudged off 0)', () => {
    const code = assign(Float32Array.of(1e-30, -1e-30, 0), [0]);
    expect(code.centroids[0]).not.toBe(0);
    expect(Array.from(code.indices)).toEqual([1, 1, 0]);
  });
});

describe('--bits and --index-bits', () => {
  const spec = parseCfg(
    '[net]\nbatch=1\nheight=8\nwidth=8\nchannels=1\n[convolutional]\nfilters=2\nsize=3\n[convolutional]\nfilters=2\nsize=3\n[connected]\noutput=4\n[connected]\noutput=2\n[softmax]\n',
    'w.cfg',
  );

  test('types set every layer of them, names and indices override in any order', () => {
    expect([...parseLayerWidths('fc2=7,conv=8,fc=5', spec, '--bits', 16)]).toEqual([[0, 8], [1, 8], [2, 5], [3, 7]]);
    expect([...parseLayerWidths('conv=8,fc=5,1=3', spec, '--bits', 16)]).toEqual([[0, 8], [1, 3], [2, 5], [3, 5]]);
    expect([...parseWidths('conv=8,fc=5', 'conv=4,fc=3', spec)].map(([i, w]) => [i, w.bits, w.indexBits])).toEqual([[0, 8, 4], [1, 8, 4], [2, 5, 3], [3, 5, 3]]);
  });

  test('a missing, out-of-range, repeated or unknown key is a one-line error', () => {
    expect(() => parseLayerWidths('conv=8', spec, '--bits', 16)).toThrow(/--bits: no width for layer 2 \(fc1\); add fc=N or fc1=N/);
    expect(() => parseLayerWidths('conv=8,fc=17', spec, '--bits', 16)).toThrow(/from 1 to 16/);
    expect(() => parseLayerWidths('conv=0,fc=5', spec, '--bits', 16)).toThrow(/from 1 to 16/);
    expect(() => parseLayerWidths('conv=8,fc=2.5', spec, '--bits', 16)).toThrow(/whole number/);
    expect(() => parseLayerWidths('conv=8,convolutional=4,fc=5', spec, '--bits', 16)).toThrow(/given twice/);
    expect(() => parseLayerWidths('conv=8,fc=5,fc9=3', spec, '--bits', 16)).toThrow(/unknown layer 'fc9'/);
    expect(() => parseLayerWidths('conv8', spec, '--bits', 16)).toThrow(/not layer=bits/);
  });
});
