/**
 * Prune schedules (monotone per layer, ending at the target), the sensitivity scan table
 * (CSV round trip and file:line errors), and rates picked from a scan.
 */
import * as path from 'path';
import type { NetworkSpec } from '../../src/cfg/config';
import { DarknetError } from '../../src/errors';
import { readCfg } from '../../src/cfg/parser';
import { parseLevels } from '../../src/commands/args';
import {
  baselineRow, checkScan, formatSensitivityCsv, parseSensitivityCsv, ratesFromSensitivity, sensitivityRow, type SensitivityScan,
} from '../../src/prune/scan';
import {
  RATE_CAP,
  agpSchedule,
  pruneSchedule,
  sensitivitySchedule,
  totalSparsity,
  triangleRates,
  triangleSchedule,
  uniformSchedule,
  type LayerRates,
} from '../../src/prune/schedule';
import { prunableLayers } from '../../src/prune/threshold';

const CFG = path.resolve(__dirname, '../../cfg');
const lenet = readCfg(path.join(CFG, 'lenet.cfg'));
const mlp = readCfg(path.join(CFG, 'lenet-300-100.cfg'));
const NETS: Array<[string, NetworkSpec]> = [
  ['lenet', lenet],
  ['lenet-300-100', mlp],
];

/** Every prunable layer's rate never falls from one round to the next. */
function expectMonotone(spec: NetworkSpec, rounds: LayerRates[]): void {
  const layers = prunableLayers(spec);
  for (const r of rounds) expect([...r.keys()].sort((a, b) => a - b)).toEqual(layers.map((l) => l.index));
  for (let i = 1; i < rounds.length; i++) {
    for (const l of layers) expect(rounds[i].get(l.index)!).toBeGreaterThanOrEqual(rounds[i - 1].get(l.index)!);
  }
  for (const r of rounds) for (const s of r.values()) expect(s >= 0 && s < 1).toBe(true);
}

describe('totalSparsity', () => {
  test('weight-count-weighted over the prunable layers; a missing layer counts as dense', () => {
    // lenet weights: conv1 500, conv2 25,000, fc1 400,000, fc2 5,000
    expect(totalSparsity(lenet, new Map([[0, 0.5], [2, 0.5], [4, 0.5], [5, 0.5]]))).toBeCloseTo(0.5, 15);
    expect(totalSparsity(lenet, new Map([[4, 0.9]]))).toBeCloseTo((0.9 * 400000) / 430500, 15);
    expect(totalSparsity(lenet, new Map([[0, 1], [5, 0.2]]))).toBeCloseTo((500 + 1000) / 430500, 15);
    expect(totalSparsity(mlp, new Map())).toBe(0);
  });
});

describe('uniform', () => {
  test.each(NETS)('%s: the same rate everywhere, geometric in the kept fraction, exactly the target last', (_, spec) => {
    const rounds = uniformSchedule(spec, 0.92, 5);
    expect(rounds).toHaveLength(5);
    expectMonotone(spec, rounds);
    rounds.forEach((r, i) => {
      expect(new Set(r.values()).size).toBe(1);
      expect(r.get(0)!).toBeCloseTo(1 - Math.pow(0.08, (i + 1) / 5), 14);
    });
    expect([...rounds[4].values()].every((s) => s === 0.92)).toBe(true);
    // each round keeps the same share of what the round before kept
    const kept = rounds.map((r) => 1 - r.get(0)!);
    for (let i = 1; i < 5; i++) expect(kept[i] / kept[i - 1]).toBeCloseTo(Math.pow(0.08, 1 / 5), 12);
    expect(totalSparsity(spec, rounds[4])).toBeCloseTo(0.92, 12);
  });

  test('one round is the target; target 0 stays dense', () => {
    expect(uniformSchedule(lenet, 0.5, 1)).toEqual([new Map([[0, 0.5], [2, 0.5], [4, 0.5], [5, 0.5]])]);
    expect(uniformSchedule(lenet, 0, 3).every((r) => [...r.values()].every((s) => s === 0))).toBe(true);
  });
});

describe('agp', () => {
  test('matches s_t = s_f + (s_i - s_f)(1 - t/n)^3, the same rate in every layer', () => {
    const rounds = agpSchedule(lenet, 0.92, 4);
    const expected = [0.531875, 0.805, 0.905625, 0.92];
    rounds.forEach((r, i) => {
      for (const s of r.values()) expect(s).toBeCloseTo(expected[i], 14);
    });
    expect(rounds[3].get(4)).toBe(0.92);
    expectMonotone(lenet, rounds);
  });

  test('with s_i = 0.5: 0.5 + (-0.4)(1 - t/3)^3 for t = 1..3', () => {
    const rounds = agpSchedule(mlp, 0.9, 3, 0.5);
    const f = (t: number) => 0.9 + (0.5 - 0.9) * Math.pow(1 - t / 3, 3);
    rounds.forEach((r, i) => expect(r.get(1)!).toBeCloseTo(f(i + 1), 14));
    expect(rounds[2].get(2)).toBe(0.9);
    expectMonotone(mlp, rounds);
  });

  test('an initial sparsity above the target is refused', () => {
    expect(() => agpSchedule(lenet, 0.5, 3, 0.6)).toThrow(/initial sparsity 0.6 is above the target 0.5/);
  });
});

describe('triangle', () => {
  test.each(NETS)('%s: rates rise with depth in proportion to (i + 1) / L, the total hits the target', (_, spec) => {
    for (const target of [0.5, 0.8, 0.92, 0.95]) {
      const rates = triangleRates(spec, target);
      expect(Math.abs(totalSparsity(spec, rates) - target)).toBeLessThan(1e-9);
      const layers = prunableLayers(spec);
      const values = layers.map((l) => rates.get(l.index)!);
      for (let i = 1; i < values.length; i++) {
        expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
        if (values[i] < RATE_CAP) expect(values[i]).toBeGreaterThan(values[i - 1]);
      }
      for (const v of values) expect(v).toBeLessThanOrEqual(RATE_CAP);
      // uncapped layers share one scale: rate_i / ((i + 1) / L) is the same
      const scales = values.map((v, i) => v / ((i + 1) / layers.length)).filter((_, i) => values[i] < RATE_CAP);
      for (const s of scales) expect(s).toBeCloseTo(scales[0], 9);
    }
  });

  test('lenet at 0.92: fc2, the output layer, is capped at 0.99', () => {
    const r = triangleRates(lenet, 0.92);
    expect(r.get(5)).toBe(RATE_CAP);
    expect(r.get(0)!).toBeCloseTo(r.get(4)! / 3, 12);
  });

  test.each(NETS)('%s: the schedule steps each layer geometrically to its triangle rate', (_, spec) => {
    const rounds = triangleSchedule(spec, 0.92, 4);
    expectMonotone(spec, rounds);
    expect(rounds[3]).toEqual(triangleRates(spec, 0.92));
    expect(Math.abs(totalSparsity(spec, rounds[3]) - 0.92)).toBeLessThan(1e-3);
    for (const r of rounds) {
      const values = prunableLayers(spec).map((l) => r.get(l.index)!);
      for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
    }
  });

  test('target 0 is dense; a target above the cap is refused', () => {
    expect([...triangleRates(lenet, 0).values()]).toEqual([0, 0, 0, 0]);
    expect(() => triangleRates(lenet, 0.995)).toThrow(/triangle caps every layer at 0.99/);
  });
});

describe('sensitivity', () => {
  test('each layer stepped geometrically to its own final rate; layers not given stay dense', () => {
    const finals = new Map([[0, 0.3], [4, 0.95], [5, 0.8]]);
    const rounds = sensitivitySchedule(lenet, finals, 3);
    expectMonotone(lenet, rounds);
    expect(rounds[2]).toEqual(new Map([[0, 0.3], [2, 0], [4, 0.95], [5, 0.8]]));
    expect(rounds[0].get(4)!).toBeCloseTo(1 - Math.pow(0.05, 1 / 3), 14);
    expect(rounds[1].get(0)!).toBeCloseTo(1 - Math.pow(0.7, 2 / 3), 14);
  });

  test('refuses a non-prunable layer or a rate outside [0, 1)', () => {
    expect(() => sensitivitySchedule(lenet, new Map([[1, 0.5]]), 3)).toThrow(/layer 1 is not a prunable layer/);
    expect(() => sensitivitySchedule(lenet, new Map([[0, 1]]), 3)).toThrow(/layer 0 1: sparsity must be in \[0, 1\)/);
  });
});

describe('pruneSchedule', () => {
  test('dispatches on the mode', () => {
    expect(pruneSchedule(lenet, { mode: 'uniform', target: 0.9, rounds: 3 })).toEqual(uniformSchedule(lenet, 0.9, 3));
    expect(pruneSchedule(lenet, { mode: 'triangle', target: 0.9, rounds: 3 })).toEqual(triangleSchedule(lenet, 0.9, 3));
    expect(pruneSchedule(lenet, { mode: 'agp', target: 0.9, rounds: 3, initial: 0.1 })).toEqual(agpSchedule(lenet, 0.9, 3, 0.1));
    const rates = new Map([[2, 0.7]]);
    expect(pruneSchedule(lenet, { mode: 'sensitivity', target: 0.9, rounds: 3, rates })).toEqual(sensitivitySchedule(lenet, rates, 3));
  });

  test.each([
    [{ mode: 'sensitivity', target: 0.9, rounds: 3 }, /needs per-layer rates/],
    [{ mode: 'magnitude', target: 0.9, rounds: 3 }, /unknown prune mode 'magnitude'; expected one of uniform, triangle, sensitivity, agp/],
    [{ mode: 'uniform', target: 0.9, rounds: 0 }, /--rounds 0: must be a whole number >= 1/],
    [{ mode: 'agp', target: 0.9, rounds: 2.5 }, /--rounds 2.5/],
    [{ mode: 'uniform', target: 1, rounds: 3 }, /--target 1: sparsity must be in \[0, 1\)/],
    [{ mode: 'triangle', target: -0.1, rounds: 3 }, /--target -0.1/],
  ])('%j is refused', (o, message) => {
    const run = () => pruneSchedule(lenet, o as Parameters<typeof pruneSchedule>[1]);
    expect(run).toThrow(DarknetError);
    expect(run).toThrow(message);
  });
});

/** A scan of lenet at levels 0, 0.3, 0.5, 0.7, 0.9 with baseline top-1 0.99. */
function lenetScan(): SensitivityScan {
  const [conv1, conv2, fc1, fc2] = prunableLayers(lenet);
  const levels = [0, 0.3, 0.5, 0.7, 0.9];
  const top1 = {
    conv1: [0.99, 0.97, 0.9, 0.7, 0.3],
    conv2: [0.99, 0.99, 0.986, 0.965, 0.8],
    fc1: [0.99, 0.992, 0.99, 0.988, 0.986],
    // 0.7 drops 0.02 below the baseline, 0.9 only 0.001: a lucky level beyond a failing one
    fc2: [0.99, 0.99, 0.987, 0.97, 0.989],
  };
  const rows = [conv1, conv2, fc1, fc2].flatMap((l) =>
    levels.map((s, i) => sensitivityRow(l, s, top1[l.name as keyof typeof top1][i])),
  );
  return { baseline: baselineRow(lenet, 0, 0.99), rows };
}

describe('ratesFromSensitivity', () => {
  test('per layer, the highest level before the first drop above maxDrop', () => {
    const { rates, picked, scale, reached, total } = ratesFromSensitivity(lenetScan(), 0.005);
    expect(picked).toEqual(new Map([[0, 0], [2, 0.5], [4, 0.9], [5, 0.5]]));
    expect(rates).toBe(picked);
    expect(scale).toBe(1);
    expect(reached).toBe(true);
    expect(total).toBeCloseTo(totalSparsity(lenet, picked), 12);
    // a looser tolerance picks higher levels
    expect(ratesFromSensitivity(lenetScan(), 0.03).picked).toEqual(new Map([[0, 0.3], [2, 0.7], [4, 0.9], [5, 0.9]]));
  });

  test('with a target: one scale on the picked rates (each capped at 0.99) so the total hits it', () => {
    for (const target of [0.5, 0.85, 0.92]) {
      const r = ratesFromSensitivity(lenetScan(), 0.005, target);
      expect(r.reached).toBe(true);
      expect(Math.abs(totalSparsity(lenet, r.rates) - target)).toBeLessThan(1e-9);
      expect(Math.abs(r.total - target)).toBeLessThan(1e-9);
      expect(r.rates.get(0)).toBe(0); // a fragile layer stays dense
      for (const [i, s] of r.rates) expect(s).toBeCloseTo(Math.min(RATE_CAP, r.scale * r.picked.get(i)!), 12);
    }
  });

  test('a target the tolerant layers cannot reach even at the cap: the cap, reached false', () => {
    const scan = lenetScan();
    scan.rows = scan.rows.filter((r) => r.layer !== 4); // without fc1 only 30,500 of 430,500 weights can go
    const r = ratesFromSensitivity(scan, 0.005, 0.5);
    expect(r.reached).toBe(false);
    expect(r.rates).toEqual(new Map([[0, 0], [2, RATE_CAP], [5, RATE_CAP]]));
    expect(r.total).toBeCloseTo((0.99 * 30000) / 430500, 12); // layers missing from the scan count as dense
    // no tolerant layer at all: every level, even 0, is below a baseline of 1
    const fragile = ratesFromSensitivity({ ...lenetScan(), baseline: { ...lenetScan().baseline, top1: 1 } }, 0, 0.9);
    expect(fragile.reached).toBe(false);
    expect([...fragile.rates.values()]).toEqual([0, 0, 0, 0]);
  });

  test('checkScan: a scan of this cfg passes, one of another cfg is refused', () => {
    expect(() => checkScan(lenet, lenetScan(), 'scan.csv')).not.toThrow();
    expect(() => checkScan(mlp, lenetScan(), 'scan.csv')).toThrow(
      /scan.csv: layer 0 is conv1 convolutional with 500 weights in the scan, but fc1 connected with 235200 in .*lenet-300-100.cfg/,
    );
    const deeper = lenetScan();
    deeper.rows = deeper.rows.filter((r) => r.layer === 4);
    expect(() => checkScan(mlp, deeper, 'scan.csv')).toThrow(/scan.csv: layer 4 \(fc1\) is not a prunable layer of .*lenet-300-100.cfg/);
    const wrong = lenetScan();
    wrong.rows[0] = { ...wrong.rows[0], weights: 1500 };
    expect(() => checkScan(lenet, wrong, 'scan.csv')).toThrow(/layer 0 is conv1 convolutional with 1500 weights in the scan, but conv1 convolutional with 500/);
    const base = lenetScan();
    base.baseline = { ...base.baseline, weights: 266200 };
    expect(() => checkScan(lenet, base, 'scan.csv')).toThrow(/scan.csv: the baseline row counts 266200 weights, .*lenet.cfg has 430500/);
  });
});

describe('sensitivity CSV', () => {
  test('round trip: parse(format(scan)) gives the same scan, numbers in full', () => {
    const scan = lenetScan();
    scan.rows[1] = { ...scan.rows[1], sparsity: 0.15000000000000002, top1: 0.9876543210123 };
    const text = formatSensitivityCsv(scan);
    expect(text.split('\n')[0]).toBe('layer,name,type,weights,sparsity,top1');
    expect(text.split('\n')[1]).toBe('-1,baseline,,430500,0,0.99');
    expect(text.split('\n')[2]).toBe('0,conv1,convolutional,500,0,0.99');
    expect(parseSensitivityCsv(text, 'scan.csv')).toEqual(scan);
  });

  test('CRLF, blank lines, comments and spaces around fields are accepted', () => {
    const text = '# scan of lenet\r\n\r\nlayer, name, type, weights, sparsity, top1\r\n-1,baseline,,430500,0,0.99\r\n 0 , conv1 , convolutional , 500 , 0.5 , 0.9 \r\n';
    expect(parseSensitivityCsv(text, 'scan.csv')).toEqual({
      baseline: { layer: -1, name: 'baseline', type: '', weights: 430500, sparsity: 0, top1: 0.99 },
      rows: [{ layer: 0, name: 'conv1', type: 'convolutional', weights: 500, sparsity: 0.5, top1: 0.9 }],
    });
  });

  const HEAD = 'layer,name,type,weights,sparsity,top1';
  const BASE = '-1,baseline,,430500,0,0.99';
  const ROW = '0,conv1,convolutional,500,0.5,0.9';
  test.each([
    ['', /^scan.csv: empty/],
    ['layer,name,type,weights,sparsity,accuracy\n', /^scan.csv:1: expected the header 'layer,name,type,weights,sparsity,top1'/],
    [`${HEAD}\n${BASE}\n0,conv1,convolutional,500,0.5\n`, /^scan.csv:3: 5 fields, expected 6/],
    [`${HEAD}\n${BASE}\nx,conv1,convolutional,500,0.5,0.9\n`, /^scan.csv:3: layer 'x' is not a number/],
    [`${HEAD}\n${BASE}\n-2,conv1,convolutional,500,0.5,0.9\n`, /^scan.csv:3: layer '-2' must be a net index/],
    [`${HEAD}\n${BASE}\n0.5,conv1,convolutional,500,0.5,0.9\n`, /^scan.csv:3: layer '0.5' must be a net index/],
    [`${HEAD}\n${BASE}\n0,conv1,convolutional,5e2.5,0.5,0.9\n`, /^scan.csv:3: weights '5e2.5' is not a number/],
    [`${HEAD}\n${BASE}\n0,conv1,convolutional,500,1.5,0.9\n`, /^scan.csv:3: sparsity 1.5 must be in \[0, 1\]/],
    [`${HEAD}\n${BASE}\n0,conv1,convolutional,500,0.5,90\n`, /^scan.csv:3: top1 90 must be a fraction in \[0, 1\]/],
    [`${HEAD}\n${BASE}\n0,conv1,convolutional,500,0.5,\n`, /^scan.csv:3: top1 '' is not a number/],
    [`${HEAD}\n${BASE}\n${ROW}\n${BASE}\n`, /^scan.csv:4: a second baseline row/],
    [`${HEAD}\n${ROW}\n`, /^scan.csv: no baseline row/],
    [`${HEAD}\n${BASE}\n`, /^scan.csv: no layer rows/],
    [`${HEAD}\n${BASE}\n${ROW}\n\n${ROW}\n`, /^scan.csv:5: layer 0 at sparsity 0.5 is given twice/],
    [`${HEAD}\n${BASE}\n${ROW}\n0,conv2,convolutional,500,0.7,0.8\n`, /^scan.csv:4: layer 0 is conv2 convolutional with 500 weights here, but conv1 convolutional with 500 on line 3/],
    [`${HEAD}\n${BASE}\n0,,convolutional,500,0.5,0.9\n`, /^scan.csv:3: layer 0 needs a name and a type/],
  ])('%j is refused with file:line', (text, message) => {
    expect(() => parseSensitivityCsv(text, 'scan.csv')).toThrow(DarknetError);
    expect(() => parseSensitivityCsv(text, 'scan.csv')).toThrow(message);
  });

  test('the writer refuses a name that would break the CSV', () => {
    const scan = lenetScan();
    scan.rows[0] = { ...scan.rows[0], name: 'a,b' };
    expect(() => formatSensitivityCsv(scan)).toThrow(/comma/);
  });
});

describe('parseLevels', () => {
  test('start:stop:step with stop included and float noise rounded away, or a list', () => {
    const levels = parseLevels('0:0.95:0.05');
    expect(levels).toHaveLength(20);
    expect(levels[3]).toBe(0.15);
    expect(levels[19]).toBe(0.95);
    expect(parseLevels('0.5:0.9:0.2')).toEqual([0.5, 0.7, 0.9]);
    expect(parseLevels('0, 0.5,0.9')).toEqual([0, 0.5, 0.9]);
  });

  test.each([
    ['0:1:0.1', /level 1 must be in \[0, 1\)/],
    ['0:0.9', /not start:stop:step/],
    ['0:0.9:0', /step 0 must be > 0/],
    ['0.5:0.1:0.1', /stop 0.1 is below start 0.5/],
    ['0,x', /'x' is not a number/],
    ['', /'' is not a number/],
  ])('%j is refused', (text, message) => {
    expect(() => parseLevels(text)).toThrow(DarknetError);
    expect(() => parseLevels(text)).toThrow(message);
  });
});
