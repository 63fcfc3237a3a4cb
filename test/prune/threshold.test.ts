/**
 * Save-time thresholding: each rule gives exactly the expected zeros on hand-made arrays,
 * nothing but `weights` changes, the input is never modified, and a thresholded file keeps
 * darknet's layout with sparsityOf counting exactly the zeros made.
 */
import * as path from 'path';
import { DarknetError } from '../../src/errors';
import { parseCfg, readCfg } from '../../src/cfg/parser';
import { sparsityOf } from '../../src/prune/stats';
import {
  applyThreshold,
  fractionRules,
  maskFromZeros,
  parseLayerSparsity,
  prunableLayers,
  type ThresholdRule,
  type ThresholdRules,
} from '../../src/prune/threshold';
import { gaussian, mulberry32 } from '../../src/engine/random';
import type { NetworkSpec } from '../../src/cfg/config';
import { DARKNET_HEADER, parseWeights, serializeWeights, type WeightsFile } from '../../src/io/weights';

const CFG = path.resolve(__dirname, '../../cfg');
const lenet = readCfg(path.join(CFG, 'lenet.cfg'));
const mlp = readCfg(path.join(CFG, 'lenet-300-100.cfg'));

/**
 * A tiny net for hand-made arrays: layer 0 connected 4 -> 2 with batch norm (8 weights),
 * layer 1 dropout (not prunable), layer 2 connected 2 -> 3 (6 weights), layer 3 softmax.
 */
const tiny = parseCfg(
  [
    '[net]', 'height=1', 'width=1', 'channels=4',
    '[connected]', 'output=2', 'batch_normalize=1', 'activation=linear',
    '[dropout]', 'probability=0.5',
    '[connected]', 'output=3', 'activation=linear',
    '[softmax]',
  ].join('\n'),
  'tiny.cfg',
);

const f32 = (...v: number[]) => Float32Array.from(v);

/** Hand-made weights for `tiny`; `w0` and `w2` replace the two weights arrays. */
function tinyWeights(w0 = [0.5, -0.1, 0.3, -0.05, 0.2, 0, -0.4, 0.15], w2 = [1, -0.2, 0.05, -0.3, 0.25, 0.6]): WeightsFile {
  return {
    header: { ...DARKNET_HEADER, seen: 1234 },
    layers: [
      {
        biases: f32(0.01, -0.02),
        weights: f32(...w0),
        scales: f32(1e-3, -1e-3),
        rolling_mean: f32(0.001, 0),
        rolling_variance: f32(0.5, 1e-9),
      },
      {},
      { biases: f32(1e-6, -0.5, 0), weights: f32(...w2) },
      {},
    ],
  };
}

/** Random gaussian values for every parameter array of a spec (seeded). */
function randomWeights(spec: NetworkSpec, seed: number): WeightsFile {
  const random = mulberry32(seed);
  return {
    header: { ...DARKNET_HEADER, seen: 0 },
    layers: spec.layers.map((l) => {
      const out: WeightsFile['layers'][number] = {};
      for (const p of l.params) out[p.name] = Float32Array.from({ length: p.size }, () => 0.1 * gaussian(random));
      return out;
    }),
  };
}

/** An independent deep copy, -0 preserved. */
function clone(w: WeightsFile): WeightsFile {
  return { header: { ...w.header }, layers: w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, a]) => [k, (a as Float32Array).slice()]))) };
}

/** Same arrays, element by element with Object.is (so -0 and +0 differ). */
function expectIdentical(a: Float32Array | undefined, b: Float32Array | undefined): void {
  expect(a).toBeDefined();
  expect(b).toBeDefined();
  expect(a!.length).toBe(b!.length);
  for (let i = 0; i < a!.length; i++) if (!Object.is(a![i], b![i])) throw new Error(`index ${i}: ${a![i]} vs ${b![i]}`);
}

function expectIdenticalFiles(a: WeightsFile, b: WeightsFile): void {
  expect(a.header).toEqual(b.header);
  expect(a.layers.length).toBe(b.layers.length);
  a.layers.forEach((l, i) => {
    expect(Object.keys(l).sort()).toEqual(Object.keys(b.layers[i]).sort());
    for (const k of Object.keys(l) as Array<keyof typeof l>) expectIdentical(l[k], b.layers[i][k]);
  });
}

const zerosOf = (a: Float32Array) => a.reduce((n, x) => n + (x === 0 ? 1 : 0), 0);

describe('rules on hand-made arrays', () => {
  test('absolute: |w| < value becomes 0, |w| == value stays (in float64)', () => {
    const { weights, thresholds } = applyThreshold(tiny, tinyWeights(), { scope: 'layer', rule: { kind: 'absolute', value: 0.2 } });
    // 0.2 and -0.2 in float32 are 0.2000000030 in magnitude: not below 0.2
    expectIdentical(weights.layers[0].weights, f32(0.5, 0, 0.3, 0, 0.2, 0, -0.4, 0));
    expectIdentical(weights.layers[2].weights, f32(1, -0.2, 0, -0.3, 0.25, 0.6));
    expect(thresholds).toEqual([
      { index: 0, threshold: 0.2, sparsity: 4 / 8 },
      { index: 2, threshold: 0.2, sparsity: 1 - 5 / 6 }, // as sparsityOf counts it
    ]);
  });

  test("std: Han's quality * std of the layer's weights (population std, zeros included)", () => {
    // mean 0, variance (9 + 9 + 1 + 1 + 0.25 + 0.25) / 6
    const w2 = [3, -3, 1, -1, 0.5, -0.5];
    const std2 = Math.sqrt(20.5 / 6);
    const half = applyThreshold(tiny, tinyWeights(undefined, w2), { scope: 'layer', rule: { kind: 'std', quality: 0.5 } });
    expectIdentical(half.weights.layers[2].weights, f32(3, -3, 1, -1, 0, 0));
    expect(half.thresholds[1].threshold).toBeCloseTo(0.5 * std2, 12);
    const more = applyThreshold(tiny, tinyWeights(undefined, w2), { scope: 'layer', rule: { kind: 'std', quality: 0.6 } });
    expectIdentical(more.weights.layers[2].weights, f32(3, -3, 0, 0, 0, 0));
    // layer 0 uses its own std: mean 0.075, population std 0.2634...
    const w0 = [0.5, -0.1, 0.3, -0.05, 0.2, 0, -0.4, 0.15].map((x) => Math.fround(x));
    const mean = w0.reduce((s, x) => s + x, 0) / 8;
    const std0 = Math.sqrt(w0.reduce((s, x) => s + (x - mean) ** 2, 0) / 8);
    expect(half.thresholds[0].threshold).toBeCloseTo(0.5 * std0, 12);
    expectIdentical(half.weights.layers[0].weights, f32(...w0.map((x) => (Math.abs(x) < 0.5 * std0 ? 0 : x))));
  });

  test('std with scope global: one threshold from the pooled weights', () => {
    const w0 = [2, -2, 2, -2, 0.5, -0.5, 0.5, -0.5];
    const w2 = [0.5, -0.5, 0.5, -0.5, 0.5, -0.5];
    // pooled: mean 0, variance (4 * 4 + 10 * 0.25) / 14; 0.5 * std = 0.575: every 0.5 goes
    const { weights, thresholds } = applyThreshold(tiny, tinyWeights(w0, w2), { scope: 'global', rule: { kind: 'std', quality: 0.5 } });
    expectIdentical(weights.layers[0].weights, f32(2, -2, 2, -2, 0, 0, 0, 0));
    expectIdentical(weights.layers[2].weights, f32(0, 0, 0, 0, 0, 0));
    expect(thresholds[0].threshold).toBeCloseTo(0.5 * Math.sqrt(18.5 / 14), 12);
    expect(thresholds[1].threshold).toBe(thresholds[0].threshold);
    // per layer, layer 2's std is 0.5 and 0.5 * 0.5 < 0.5: nothing goes
    const each = applyThreshold(tiny, tinyWeights(w0, w2), { scope: 'layer', rule: { kind: 'std', quality: 0.5 } });
    expectIdentical(each.weights.layers[2].weights, f32(...w2));
  });

  test('fraction per layer: the round(s * n) smallest magnitudes, threshold = smallest kept', () => {
    const { weights, thresholds } = applyThreshold(tiny, tinyWeights(), { scope: 'layer', rule: { kind: 'fraction', sparsity: 0.5 } });
    // layer 0 sorted: 0 0.05 0.1 0.15 | 0.2 ...: the zero already there counts as one of the 4
    expectIdentical(weights.layers[0].weights, f32(0.5, 0, 0.3, 0, 0.2, 0, -0.4, 0));
    // layer 2 sorted: 0.05 0.2 0.25 | 0.3 0.6 1
    expectIdentical(weights.layers[2].weights, f32(1, 0, 0, -0.3, 0, 0.6));
    expect(thresholds).toEqual([
      { index: 0, threshold: Math.fround(0.2), sparsity: 0.5 },
      { index: 2, threshold: Math.fround(0.3), sparsity: 0.5 },
    ]);
  });

  test('fraction rounds to the nearest count: 0.3 of 8 is 2, 0.3 of 6 is 2', () => {
    const { weights } = applyThreshold(tiny, tinyWeights(), { scope: 'layer', rule: { kind: 'fraction', sparsity: 0.3 } });
    expectIdentical(weights.layers[0].weights, f32(0.5, -0.1, 0.3, 0, 0.2, 0, -0.4, 0.15));
    expectIdentical(weights.layers[2].weights, f32(1, 0, 0, -0.3, 0.25, 0.6));
  });

  test('fraction ties at the threshold: zeroed in position order until the target count, deterministically', () => {
    const w2 = [0.1, -0.1, 0.1, 0.1, 0.5, -0.1];
    const rules: ThresholdRules = { scope: 'map', rules: new Map([[2, { kind: 'fraction', sparsity: 0.5 }]]) };
    const a = applyThreshold(tiny, tinyWeights(undefined, w2), rules);
    expectIdentical(a.weights.layers[2].weights, f32(0, 0, 0, 0.1, 0.5, -0.1));
    expect(a.thresholds[1]).toEqual({ index: 2, threshold: Math.fround(0.1), sparsity: 0.5 });
    const b = applyThreshold(tiny, tinyWeights(undefined, w2), rules);
    expectIdentical(b.weights.layers[2].weights, a.weights.layers[2].weights);
  });

  test('fraction global: one magnitude quantile over all prunable weights pooled', () => {
    // pooled sorted: 0 .05 .05 .1 .15 .2 .2 | .25 .3 .3 .4 .5 .6 1 -> k = 7 (5 in layer 0), threshold 0.25
    const { weights, thresholds } = applyThreshold(tiny, tinyWeights(), { scope: 'global', rule: { kind: 'fraction', sparsity: 0.5 } });
    expectIdentical(weights.layers[0].weights, f32(0.5, 0, 0.3, 0, 0, 0, -0.4, 0));
    expectIdentical(weights.layers[2].weights, f32(1, 0, 0, -0.3, 0.25, 0.6));
    expect(thresholds).toEqual([
      { index: 0, threshold: Math.fround(0.25), sparsity: 5 / 8 },
      { index: 2, threshold: Math.fround(0.25), sparsity: 1 - 4 / 6 },
    ]);
  });

  test('fraction global ties across layers: the earlier layer loses its tied weight first', () => {
    // k = round(6/14 * 14) = 6: five below 0.2, then one of the two 0.2s: layer 0's
    const { weights } = applyThreshold(tiny, tinyWeights(), { scope: 'global', rule: { kind: 'fraction', sparsity: 6 / 14 } });
    expectIdentical(weights.layers[0].weights, f32(0.5, 0, 0.3, 0, 0, 0, -0.4, 0));
    expectIdentical(weights.layers[2].weights, f32(1, -0.2, 0, -0.3, 0.25, 0.6));
  });

  test('fraction 1 prunes every weight; fraction 0 prunes none', () => {
    const all = applyThreshold(tiny, tinyWeights(), { scope: 'layer', rule: { kind: 'fraction', sparsity: 1 } });
    expectIdentical(all.weights.layers[2].weights, new Float32Array(6));
    expect(all.thresholds[1]).toEqual({ index: 2, threshold: 1, sparsity: 1 });
    const none = applyThreshold(tiny, tinyWeights(), { scope: 'layer', rule: { kind: 'fraction', sparsity: 0 } });
    expectIdentical(none.weights.layers[2].weights, tinyWeights().layers[2].weights);
  });

  test('zeros already present stay zero under every rule, even one asking for less sparsity', () => {
    const w0 = [0, 0.9, 0, -0.8, 0, 0.7, -0.6, 0.5]; // 3 zeros of 8
    const rules: ThresholdRule[] = [
      { kind: 'absolute', value: 0 },
      { kind: 'std', quality: 0 },
      { kind: 'fraction', sparsity: 0 },
      { kind: 'fraction', sparsity: 0.25 },
    ];
    for (const rule of rules) {
      for (const scope of ['layer', 'global'] as const) {
        const { weights, thresholds } = applyThreshold(tiny, tinyWeights(w0), { scope, rule });
        expectIdentical(weights.layers[0].weights, f32(...w0));
        expect(thresholds[0].sparsity).toBe(3 / 8);
      }
    }
    // asking for 0.5 = 4 zeros: the 3 there plus the smallest non-zero
    const half = applyThreshold(tiny, tinyWeights(w0), { scope: 'layer', rule: { kind: 'fraction', sparsity: 0.5 } });
    expectIdentical(half.weights.layers[0].weights, f32(0, 0.9, 0, -0.8, 0, 0.7, -0.6, 0));
  });

  test('every zero of a thresholded layer is +0, including a -0 in the input', () => {
    const { weights } = applyThreshold(tiny, tinyWeights([-0, -0.01, 1, 1, 1, 1, 1, 1]), { scope: 'layer', rule: { kind: 'absolute', value: 0.1 } });
    expect(Object.is(weights.layers[0].weights![0], 0)).toBe(true);
    expect(Object.is(weights.layers[0].weights![1], 0)).toBe(true);
  });

  test('biases, scales and rolling statistics are copied untouched, even when tiny', () => {
    const input = tinyWeights();
    const { weights } = applyThreshold(tiny, input, { scope: 'global', rule: { kind: 'fraction', sparsity: 0.99 } });
    for (const i of [0, 2]) {
      for (const name of ['biases', 'scales', 'rolling_mean', 'rolling_variance'] as const) {
        if (!input.layers[i][name]) continue;
        expectIdentical(weights.layers[i][name], input.layers[i][name]);
        expect(weights.layers[i][name]).not.toBe(input.layers[i][name]); // a copy
      }
    }
    expect(weights.layers[1]).toEqual({});
    expect(weights.layers[3]).toEqual({});
    expect(weights.header).toEqual(input.header);
  });

  test('the input file is never modified, and the result shares no arrays with it', () => {
    const input = tinyWeights([-0, -0.01, 0.3, 0, 0.2, 0, -0.4, 0.15]);
    const before = clone(input);
    const { weights } = applyThreshold(tiny, input, { scope: 'layer', rule: { kind: 'fraction', sparsity: 0.9 } });
    expectIdenticalFiles(input, before);
    weights.layers[0].biases![0] = 42;
    weights.header.seen = 99;
    expectIdenticalFiles(input, before);
  });

  test('a map of rules: each listed layer its rule, the others `rest` or untouched', () => {
    const rules = new Map<number, ThresholdRule>([[0, { kind: 'absolute', value: 0.2 }]]);
    const only = applyThreshold(tiny, tinyWeights(), { scope: 'map', rules });
    expectIdentical(only.weights.layers[0].weights, f32(0.5, 0, 0.3, 0, 0.2, 0, -0.4, 0));
    expectIdentical(only.weights.layers[2].weights, tinyWeights().layers[2].weights);
    expect(only.thresholds[1]).toEqual({ index: 2, threshold: 0, sparsity: 0 });
    const rest = applyThreshold(tiny, tinyWeights(), { scope: 'map', rules, rest: { kind: 'absolute', value: 0.5 } });
    expectIdentical(rest.weights.layers[2].weights, f32(1, 0, 0, 0, 0, 0.6));
  });

  test('fractionRules turns per-layer rates (a schedule round) into a map of fraction rules', () => {
    const rules = fractionRules(new Map([[0, 0.5], [2, 0.5]]));
    const { weights } = applyThreshold(tiny, tinyWeights(), rules);
    expectIdentical(weights.layers[2].weights, f32(1, 0, 0, -0.3, 0, 0.6));
  });

  test('errors: a map naming a non-prunable or missing layer, bad rule values, NaN weights', () => {
    const map = (index: number, rule: ThresholdRule): ThresholdRules => ({ scope: 'map', rules: new Map([[index, rule]]) });
    const fraction = (sparsity: number): ThresholdRule => ({ kind: 'fraction', sparsity });
    expect(() => applyThreshold(tiny, tinyWeights(), map(1, fraction(0.5)))).toThrow(/layer 1 is dropout, not prunable; prunable: 0 \(fc1\), 2 \(fc2\)/);
    expect(() => applyThreshold(tiny, tinyWeights(), map(9, fraction(0.5)))).toThrow(DarknetError);
    for (const rule of [fraction(1.5), fraction(-0.1), fraction(NaN), { kind: 'absolute', value: -1 }, { kind: 'std', quality: NaN }] as ThresholdRule[]) {
      expect(() => applyThreshold(tiny, tinyWeights(), { scope: 'layer', rule })).toThrow(DarknetError);
    }
    expect(() => applyThreshold(tiny, tinyWeights([NaN, 0, 0, 0, 0, 0, 0, 0]), { scope: 'layer', rule: fraction(0.5) })).toThrow(
      /layer 0 connected has NaN weights/,
    );
    const short = tinyWeights();
    short.layers[2].weights = f32(1, 2);
    expect(() => applyThreshold(tiny, short, { scope: 'layer', rule: fraction(0.5) })).toThrow(/layer 2 connected has 2 weights, tiny.cfg needs 6/);
  });
});

describe('maskFromZeros', () => {
  test('1 where w != 0, 0 where w is +0 or -0', () => {
    expect(Array.from(maskFromZeros(f32(0, -0, 1.5, -2, 1e-30)))).toEqual([0, 0, 1, 1, 1]);
    expect(maskFromZeros(new Float32Array(0)).length).toBe(0);
  });
});

describe('layer names and --layer-sparsity', () => {
  test('names: short type name + 1-based count among that type, in net order', () => {
    expect(prunableLayers(lenet)).toEqual([
      { index: 0, name: 'conv1', type: 'convolutional', weights: 500 },
      { index: 2, name: 'conv2', type: 'convolutional', weights: 25000 },
      { index: 4, name: 'fc1', type: 'connected', weights: 400000 },
      { index: 5, name: 'fc2', type: 'connected', weights: 5000 },
    ]);
    expect(prunableLayers(mlp).map((l) => `${l.index}=${l.name}`)).toEqual(['0=fc1', '1=fc2', '2=fc3']);
  });

  test('indexes and names (any case), spaces around keys and values', () => {
    expect(parseLayerSparsity('0=0.3,2=0.8', lenet)).toEqual(new Map([[0, 0.3], [2, 0.8]]));
    expect(parseLayerSparsity(' conv1 = 0.3 , FC1=0.9,fc2=0 ', lenet)).toEqual(new Map([[0, 0.3], [4, 0.9], [5, 0]]));
    expect(parseLayerSparsity('fc3=0.5,0=0.95', mlp)).toEqual(new Map([[2, 0.5], [0, 0.95]]));
  });

  test.each([
    ['1=0.5', /--layer-sparsity: layer 1 is maxpool: only convolutional and connected layers are pruned; prunable: 0 \(conv1\), 2 \(conv2\), 4 \(fc1\), 5 \(fc2\)/],
    ['6=0.5', /layer 6 is softmax/],
    ['7=0.5', /no layer 7: .*lenet.cfg has layers 0-6/],
    ['fc3=0.5', /unknown layer 'fc3'; prunable layers of .*lenet.cfg: 0 \(conv1\)/],
    ['maxpool1=0.5', /unknown layer 'maxpool1'/],
    ['conv1=1', /sparsity '1' for layer conv1 must be a number in \[0, 1\)/],
    ['conv1=-0.1', /must be a number in \[0, 1\)/],
    ['conv1=abc', /sparsity 'abc'/],
    ['conv1=', /sparsity '' for layer conv1/],
    ['0.3', /'0.3' is not layer=sparsity/],
    ['=0.3', /has no layer before '='/],
    ['0=0.3,conv1=0.5', /layer 0 is given twice \('conv1'\)/],
    ['0=0.3,', /'' is not layer=sparsity/],
    ['', /empty/],
  ])('%j is refused', (text, message) => {
    expect(() => parseLayerSparsity(text, lenet)).toThrow(DarknetError);
    expect(() => parseLayerSparsity(text, lenet)).toThrow(message);
  });
});

describe('thresholded files on the real cfgs', () => {
  test.each([
    ['lenet', lenet],
    ['lenet-300-100', mlp],
  ])('%s: per-layer fractions hit their exact counts, serialise in darknet layout, and sparsityOf counts the zeros', (_, spec) => {
    const input = randomWeights(spec, 7);
    const layers = prunableLayers(spec);
    const rates = new Map(layers.map((l, i) => [l.index, [0.3, 0.8, 0.92, 0.6][i]]));
    const { weights, thresholds } = applyThreshold(spec, input, fractionRules(rates));

    const back = parseWeights(serializeWeights(weights, spec), spec, 'thresholded.weights');
    expectIdenticalFiles(back, weights);
    const report = sparsityOf(spec, back);
    for (const l of layers) {
      const zeros = Math.round(rates.get(l.index)! * l.weights);
      const row = report.layers.find((r) => r.index === l.index)!;
      expect(l.weights - row.nonzero).toBe(zeros);
      expect(zerosOf(back.layers[l.index].weights!)).toBe(zeros);
      expect(thresholds.find((t) => t.index === l.index)!.sparsity).toBe(row.sparsity);
      // every weight below the layer's threshold is 0, every one kept is at or above it
      const t = thresholds.find((r) => r.index === l.index)!.threshold;
      const w = back.layers[l.index].weights!;
      const src = input.layers[l.index].weights!;
      let broken = 0;
      for (let i = 0; i < w.length; i++) {
        if (Math.abs(src[i]) < t && w[i] !== 0) broken++;
        if (w[i] !== 0 && (Math.abs(w[i]) < t || w[i] !== src[i])) broken++;
      }
      expect(broken).toBe(0);
      expect(maskFromZeros(w).reduce((s, x) => s + x, 0)).toBe(row.nonzero);
    }
    // every non-weight array, and so every non-zero parameter, survives the round trip
    const dense = sparsityOf(spec, input);
    expect(report.total.nonzeroParams).toBe(dense.total.nonzeroParams - (dense.total.nonzero - report.total.nonzero));
  });

  test('lenet-300-100 global 0.92: one threshold, exactly round(0.92 * N) zeros in total', () => {
    const { weights, thresholds } = applyThreshold(mlp, randomWeights(mlp, 3), { scope: 'global', rule: { kind: 'fraction', sparsity: 0.92 } });
    const report = sparsityOf(mlp, parseWeights(serializeWeights(weights, mlp), mlp, 'x.weights'));
    expect(report.total.weights).toBe(266200);
    expect(report.total.weights - report.total.nonzero).toBe(Math.round(0.92 * 266200));
    expect(new Set(thresholds.map((t) => t.threshold)).size).toBe(1);
    // the same gaussian scale in each layer: the pooled cut gives each about the target
    for (const l of report.layers) expect(l.sparsity).toBeCloseTo(0.92, 1);
  });

  test('an old header (int32 seen, transposed connected weights) keeps its layout', () => {
    const input = randomWeights(mlp, 5);
    input.header = { major: 1001, minor: 0, revision: 0, seen: 640 };
    const { weights } = applyThreshold(mlp, input, { scope: 'layer', rule: { kind: 'std', quality: 1 } });
    const back = parseWeights(serializeWeights(weights, mlp), mlp, 'old.weights');
    expectIdenticalFiles(back, weights);
  });
});
