import type { NetworkSpec } from '../config';
import { DarknetError, fileError } from '../errors';
import { prunableLayers, type PrunableLayer } from './threshold';

/**
 * Prune schedules: for each of `rounds` rounds, the target sparsity of every prunable layer
 * (DESIGN.md §5 step 3: raise sparsity round by round). A round's rates feed
 * `applyThreshold(spec, w, fractionRules(rates))`. Pure functions; no training.
 *
 * Every schedule is non-decreasing per layer across rounds and its last round is the final
 * target exactly (per layer; for triangle and scaled sensitivity rates the TOTAL matches the
 * target to the bisection's precision, far below 1e-3).
 */

/** layer net index -> target sparsity in [0, 1) */
export type LayerRates = Map<number, number>;

export type ScheduleMode = 'uniform' | 'triangle' | 'sensitivity' | 'agp';
export const SCHEDULE_MODES: readonly ScheduleMode[] = ['uniform', 'triangle', 'sensitivity', 'agp'];

/** No layer is scaled above this: a layer with every weight pruned cuts the net in two. */
export const RATE_CAP = 0.99;

export interface ScheduleOptions {
  mode: ScheduleMode;
  /** final TOTAL sparsity (uniform, triangle, agp); unused by sensitivity */
  target: number;
  rounds: number;
  /** sensitivity: each layer's final rate (from ratesFromSensitivity or --layer-sparsity) */
  rates?: ReadonlyMap<number, number>;
  /** agp: s_i, the sparsity the schedule starts from (default 0) */
  initial?: number;
}

/**
 * The per-round rates of a mode, round 1 first.
 * @example pruneSchedule(spec, { mode: 'agp', target: 0.92, rounds: 4 }).map((r) => r.get(0));
 *   // [0.531875, 0.805, 0.905625, 0.92]
 */
export function pruneSchedule(spec: NetworkSpec, o: ScheduleOptions): LayerRates[] {
  switch (o.mode) {
    case 'uniform':
      return uniformSchedule(spec, o.target, o.rounds);
    case 'triangle':
      return triangleSchedule(spec, o.target, o.rounds);
    case 'agp':
      return agpSchedule(spec, o.target, o.rounds, o.initial ?? 0);
    case 'sensitivity':
      if (!o.rates) throw new DarknetError('--mode sensitivity needs per-layer rates: --sensitivity FILE or --layer-sparsity');
      return sensitivitySchedule(spec, o.rates, o.rounds);
    default:
      throw new DarknetError(`unknown prune mode '${String(o.mode)}'; expected one of ${SCHEDULE_MODES.join(', ')}`);
  }
}

function checkRounds(rounds: number): void {
  if (!Number.isInteger(rounds) || rounds < 1) throw new DarknetError(`--rounds ${rounds}: must be a whole number >= 1`);
}

function checkRate(rate: number, what: string): void {
  if (!(rate >= 0 && rate < 1)) throw new DarknetError(`${what} ${rate}: sparsity must be in [0, 1)`);
}

/**
 * Round r of R on the way to `final`, stepping geometrically in the kept fraction:
 * kept_r = kept_final^(r/R), so each round removes the same share of what is left
 * (for 0.92 over 4 rounds: 46.8%, 71.7%, 85.0%, 92%). Round R is `final` exactly.
 */
export function geometricStep(final: number, r: number, rounds: number): number {
  return r === rounds ? final : 1 - Math.pow(1 - final, r / rounds);
}

function stepEach(finals: ReadonlyMap<number, number>, rounds: number): LayerRates[] {
  const out: LayerRates[] = [];
  for (let r = 1; r <= rounds; r++) {
    out.push(new Map([...finals].map(([index, s]) => [index, geometricStep(s, r, rounds)])));
  }
  return out;
}

function sameRate(spec: NetworkSpec, rate: number): LayerRates {
  return new Map(prunableLayers(spec).map((l) => [l.index, rate]));
}

/**
 * `uniform`: the same rate in every prunable layer (a magnitude pruner), stepped
 * geometrically in the kept fraction (see geometricStep); a linear step in sparsity would
 * remove ever larger shares of the surviving weights in the late rounds.
 */
export function uniformSchedule(spec: NetworkSpec, target: number, rounds: number): LayerRates[] {
  checkRate(target, '--target');
  checkRounds(rounds);
  return stepEach(sameRate(spec, target), rounds);
}

/**
 * `agp` (Zhu and Gupta 2017): s_t = s_f + (s_i - s_f) * (1 - t/n)^3 for t = 1..n, the
 * same rate in every prunable layer: large steps while many redundant weights remain,
 * small ones near the end.
 */
export function agpSchedule(spec: NetworkSpec, target: number, rounds: number, initial = 0): LayerRates[] {
  checkRate(target, '--target');
  checkRate(initial, 'agp initial');
  checkRounds(rounds);
  if (initial > target) throw new DarknetError(`agp: initial sparsity ${initial} is above the target ${target}`);
  const out: LayerRates[] = [];
  for (let t = 1; t <= rounds; t++) {
    out.push(sameRate(spec, target + (initial - target) * Math.pow(1 - t / rounds, 3)));
  }
  return out;
}

/**
 * `sensitivity`: each layer stepped geometrically (see geometricStep) to its own final rate.
 * Prunable layers missing from `finals` stay dense (rate 0).
 */
export function sensitivitySchedule(spec: NetworkSpec, finals: ReadonlyMap<number, number>, rounds: number): LayerRates[] {
  checkRounds(rounds);
  const all = sameRate(spec, 0);
  for (const [index, rate] of finals) {
    if (!all.has(index)) throw new DarknetError(`sensitivity rates: layer ${index} is not a prunable layer of ${spec.file}`);
    checkRate(rate, `layer ${index}`);
    all.set(index, rate);
  }
  return stepEach(all, rounds);
}

/**
 * `triangle`: final rates rising linearly with depth, rate_i = min(0.99, c * (i + 1) / L)
 * for the i-th of L prunable layers (0-based, net order), with c solved by bisection so
 * that the weight-count-weighted total is `target`. Layers near the output tolerate more
 * sparsity; the first layers lose accuracy even with a little (DESIGN.md §5).
 * @example triangleRates(readCfg('cfg/lenet.cfg'), 0.92); // conv1 0.313, conv2 0.626, fc1 0.938, fc2 0.99
 */
export function triangleRates(spec: NetworkSpec, target: number): LayerRates {
  checkRate(target, '--target');
  const layers = prunableLayers(spec);
  const L = layers.length;
  const shape = new Map(layers.map((l, i) => [l.index, (i + 1) / L]));
  const ratesAt = (c: number): LayerRates => new Map([...shape].map(([index, s]) => [index, Math.min(RATE_CAP, c * s)]));
  if (target > RATE_CAP) {
    throw new DarknetError(`--target ${target}: triangle caps every layer at ${RATE_CAP}, so the total cannot pass ${RATE_CAP}`);
  }
  // at c = RATE_CAP * L every layer is capped, so the total is RATE_CAP >= target
  return bisect(ratesAt, (r) => totalSparsity(spec, r), target, RATE_CAP * L).rates;
}

/** triangleRates stepped geometrically to each layer's final rate. */
export function triangleSchedule(spec: NetworkSpec, target: number, rounds: number): LayerRates[] {
  checkRounds(rounds);
  return stepEach(triangleRates(spec, target), rounds);
}

/**
 * The rates at the scale c in [0, hi] whose total is `target`, for a total that is
 * continuous and non-decreasing in c, with total(hi) >= target.
 */
function bisect(
  ratesAt: (c: number) => LayerRates,
  total: (r: LayerRates) => number,
  target: number,
  hi: number,
): { c: number; rates: LayerRates } {
  if (total(ratesAt(0)) >= target) return { c: 0, rates: ratesAt(0) };
  let lo = 0;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (total(ratesAt(mid)) < target) lo = mid;
    else hi = mid;
  }
  return { c: hi, rates: ratesAt(hi) };
}

/**
 * The weight-count-weighted total sparsity of per-layer rates: sum(weights_i * rate_i) /
 * sum(weights_i) over every prunable layer; layers not in `rates` count as dense.
 */
export function totalSparsity(spec: NetworkSpec, rates: ReadonlyMap<number, number>): number {
  const layers = prunableLayers(spec);
  return weightedTotal(layers, rates, layers.reduce((s, l) => s + l.weights, 0));
}

/** sum(weights_i * rate_i) / all, over `layers` */
function weightedTotal(layers: ReadonlyArray<{ index: number; weights: number }>, rates: ReadonlyMap<number, number>, all: number): number {
  let zeros = 0;
  for (const l of layers) zeros += l.weights * (rates.get(l.index) ?? 0);
  return all ? zeros / all : 0;
}

// ---------------------------------------------------------------------------------------
// The sensitivity scan table (darknet-ts sensitivity writes it; --mode sensitivity reads it)

/** One row of the scan: one prunable layer alone at one sparsity level, every other layer dense. */
export interface SensitivityRow {
  /** net index; -1 for the baseline row */
  layer: number;
  /** e.g. conv1 (see prunableLayers); free text for the baseline */
  name: string;
  /** darknet's type name, e.g. convolutional; may be empty for the baseline */
  type: string;
  /** the layer's weight count (the baseline: every prunable weight) */
  weights: number;
  sparsity: number;
  /** top-1 accuracy as a fraction in [0, 1] */
  top1: number;
}

export interface SensitivityScan {
  /** the model as loaded, no layer pruned further: layer = -1 */
  baseline: SensitivityRow;
  /** every layer's levels, in the file's order */
  rows: SensitivityRow[];
}

export const SENSITIVITY_COLUMNS = ['layer', 'name', 'type', 'weights', 'sparsity', 'top1'] as const;

/** A layer's row at one level, with the name, type and weight count from prunableLayers. */
export function sensitivityRow(layer: PrunableLayer, sparsity: number, top1: number): SensitivityRow {
  return { layer: layer.index, name: layer.name, type: layer.type, weights: layer.weights, sparsity, top1 };
}

/** The baseline row: layer -1, every prunable weight, the file's own sparsity and top-1. */
export function baselineRow(spec: NetworkSpec, sparsity: number, top1: number): SensitivityRow {
  const weights = prunableLayers(spec).reduce((s, l) => s + l.weights, 0);
  return { layer: -1, name: 'baseline', type: '', weights, sparsity, top1 };
}

/**
 * The scan as CSV, baseline first; numbers are written in full (String(x)), so reading
 * the text back gives the same numbers.
 */
export function formatSensitivityCsv(scan: SensitivityScan): string {
  const lines = [SENSITIVITY_COLUMNS.join(',')];
  for (const r of [scan.baseline, ...scan.rows]) {
    for (const text of [r.name, r.type]) {
      if (/[,"\r\n]/.test(text)) throw new Error(`sensitivity CSV: name or type '${text}' holds a comma, quote or newline`);
    }
    lines.push([r.layer, r.name, r.type, r.weights, r.sparsity, r.top1].join(','));
  }
  return lines.join('\n') + '\n';
}

/**
 * Reads a scan CSV. Blank lines and lines starting with '#' are skipped; every other
 * problem is an error with file:line: a wrong header, a wrong field count, a bad number,
 * no or two baseline rows, a layer whose name, type or weights differ between rows, a
 * level given twice for a layer.
 */
export function parseSensitivityCsv(text: string, file: string): SensitivityScan {
  let header = false;
  let baseline: SensitivityRow | undefined;
  const rows: SensitivityRow[] = [];
  const first = new Map<number, { row: SensitivityRow; line: number }>();
  const levels = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = n + 1;
    const raw = lines[n].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(',').map((f) => f.trim());
    if (!header) {
      if (fields.join(',') !== SENSITIVITY_COLUMNS.join(',')) {
        throw fileError(file, line, `expected the header '${SENSITIVITY_COLUMNS.join(',')}', found '${raw}'`);
      }
      header = true;
      continue;
    }
    if (fields.length !== SENSITIVITY_COLUMNS.length) {
      throw fileError(file, line, `${fields.length} fields, expected ${SENSITIVITY_COLUMNS.length} (${SENSITIVITY_COLUMNS.join(',')})`);
    }
    const row = parseRow(fields, file, line);
    if (row.layer === -1) {
      if (baseline) throw fileError(file, line, 'a second baseline row (layer -1)');
      baseline = row;
      continue;
    }
    if (row.name === '' || row.type === '') throw fileError(file, line, `layer ${row.layer} needs a name and a type`);
    const seen = first.get(row.layer);
    if (!seen) first.set(row.layer, { row, line });
    else if (seen.row.name !== row.name || seen.row.type !== row.type || seen.row.weights !== row.weights) {
      throw fileError(
        file,
        line,
        `layer ${row.layer} is ${row.name} ${row.type} with ${row.weights} weights here, but ${seen.row.name} ${seen.row.type} with ${seen.row.weights} on line ${seen.line}`,
      );
    }
    const key = `${row.layer}@${row.sparsity}`;
    if (levels.has(key)) throw fileError(file, line, `layer ${row.layer} at sparsity ${row.sparsity} is given twice`);
    levels.add(key);
    rows.push(row);
  }
  if (!header) throw fileError(file, undefined, `empty: expected the header '${SENSITIVITY_COLUMNS.join(',')}' and rows`);
  if (!baseline) throw fileError(file, undefined, 'no baseline row (layer -1): the dense accuracy every drop is measured from');
  if (rows.length === 0) throw fileError(file, undefined, 'no layer rows');
  return { baseline, rows };
}

function parseRow(f: string[], file: string, line: number): SensitivityRow {
  const num = (i: number): number => {
    const v = f[i] === '' ? NaN : Number(f[i]);
    if (!Number.isFinite(v)) throw fileError(file, line, `${SENSITIVITY_COLUMNS[i]} '${f[i]}' is not a number`);
    return v;
  };
  const layer = num(0);
  if (!Number.isInteger(layer) || layer < -1) throw fileError(file, line, `layer '${f[0]}' must be a net index (or -1 for the baseline)`);
  const weights = num(3);
  if (!Number.isInteger(weights) || weights < 0) throw fileError(file, line, `weights '${f[3]}' must be a whole number >= 0`);
  const sparsity = num(4);
  if (sparsity < 0 || sparsity > 1) throw fileError(file, line, `sparsity ${sparsity} must be in [0, 1]`);
  const top1 = num(5);
  if (top1 < 0 || top1 > 1) throw fileError(file, line, `top1 ${top1} must be a fraction in [0, 1]`);
  return { layer, name: f[1], type: f[2], weights, sparsity, top1 };
}

/**
 * Checks that a scan was made on this cfg: every layer row is a prunable layer of the spec
 * with the same name, type and weight count, and the baseline counts every prunable weight.
 */
export function checkScan(spec: NetworkSpec, scan: SensitivityScan, file: string): void {
  const layers = new Map(prunableLayers(spec).map((l) => [l.index, l]));
  for (const r of scan.rows) {
    const l = layers.get(r.layer);
    if (!l) throw new DarknetError(`${file}: layer ${r.layer} (${r.name}) is not a prunable layer of ${spec.file}: was the scan made on another cfg?`);
    if (l.type !== r.type || l.weights !== r.weights || l.name !== r.name) {
      throw new DarknetError(
        `${file}: layer ${r.layer} is ${r.name} ${r.type} with ${r.weights} weights in the scan, but ${l.name} ${l.type} with ${l.weights} in ${spec.file}`,
      );
    }
  }
  const all = [...layers.values()].reduce((s, l) => s + l.weights, 0);
  if (scan.baseline.weights !== all) {
    throw new DarknetError(`${file}: the baseline row counts ${scan.baseline.weights} weights, ${spec.file} has ${all}: was the scan made on another cfg?`);
  }
}

export interface SensitivityRates {
  /** the final per-layer rates, scaled towards the target */
  rates: LayerRates;
  /** per layer, the highest level the scan tolerates (before scaling) */
  picked: LayerRates;
  /** the factor applied to `picked` (1 without a target) */
  scale: number;
  /**
   * weight-count-weighted total of `rates`, over the baseline row's weight count (every
   * prunable weight of the net), so a layer missing from the scan counts as dense
   */
  total: number;
  /** false when the target could not be reached: every tolerant layer at the cap, or none tolerant */
  reached: boolean;
}

/**
 * Per-layer rates from a scan: for each layer, the highest level reached before its
 * accuracy first drops more than `maxDrop` below the baseline (walking the levels upwards;
 * a level beyond a failing one is not trusted, so a noisy curve cannot pick an isolated
 * lucky level), 0 when none qualifies. With a `target`, the picked rates are then scaled
 * by one factor, each capped at 0.99, so the total sparsity is the target where possible.
 * @example ratesFromSensitivity(parseSensitivityCsv(text, file), 0.005, 0.92).rates
 */
export function ratesFromSensitivity(scan: SensitivityScan, maxDrop: number, target?: number): SensitivityRates {
  if (!(maxDrop >= 0)) throw new DarknetError(`max accuracy drop ${maxDrop} must be >= 0`);
  if (target !== undefined) checkRate(target, '--target');
  const byLayer = new Map<number, SensitivityRow[]>();
  for (const r of scan.rows) byLayer.set(r.layer, [...(byLayer.get(r.layer) ?? []), r]);
  const layers = [...byLayer].map(([index, rows]) => ({ index, weights: rows[0].weights }));
  const all = scan.baseline.weights || layers.reduce((s, l) => s + l.weights, 0);

  const picked: LayerRates = new Map();
  for (const [index, rows] of byLayer) {
    let best = 0;
    for (const r of [...rows].sort((a, b) => a.sparsity - b.sparsity)) {
      if (scan.baseline.top1 - r.top1 > maxDrop) break;
      best = r.sparsity;
    }
    picked.set(index, Math.min(best, RATE_CAP));
  }
  const scaled = (c: number): LayerRates => new Map([...picked].map(([i, s]) => [i, Math.min(RATE_CAP, c * s)]));
  const total = (r: LayerRates) => weightedTotal(layers, r, all);
  if (target === undefined) return { rates: picked, picked, scale: 1, total: total(picked), reached: true };

  // the largest useful factor puts every tolerant layer at the cap
  const positive = [...picked.values()].filter((s) => s > 0);
  if (positive.length === 0) return { rates: picked, picked, scale: 1, total: 0, reached: target === 0 };
  const cMax = RATE_CAP / Math.min(...positive);
  if (total(scaled(cMax)) < target) {
    const rates = scaled(cMax);
    return { rates, picked, scale: cMax, total: total(rates), reached: false };
  }
  const { c, rates } = bisect(scaled, total, target, cMax);
  return { rates, picked, scale: c, total: total(rates), reached: true };
}

/**
 * The sparsity levels of a scan, `start:stop:step` (stop included) or a comma list, each in
 * [0, 1); float noise is rounded away (0:0.95:0.05 gives 0.15, not 0.15000000000000002).
 * @example parseLevels('0:0.2:0.05'); // [0, 0.05, 0.1, 0.15, 0.2]
 */
export function parseLevels(text: string, what = '--levels'): number[] {
  const clean = (x: number) => Math.round(x * 1e9) / 1e9;
  const num = (s: string) => {
    const v = s.trim() === '' ? NaN : Number(s);
    if (!Number.isFinite(v)) throw new DarknetError(`${what}: '${s.trim()}' is not a number (expected e.g. 0:0.95:0.05 or 0,0.5,0.9)`);
    return v;
  };
  let levels: number[];
  if (text.includes(':')) {
    const parts = text.split(':');
    if (parts.length !== 3) throw new DarknetError(`${what}: '${text}' is not start:stop:step (e.g. 0:0.95:0.05)`);
    const [start, stop, step] = parts.map(num);
    if (!(step > 0)) throw new DarknetError(`${what}: step ${step} must be > 0`);
    if (stop < start) throw new DarknetError(`${what}: stop ${stop} is below start ${start}`);
    const count = Math.floor((stop - start) / step + 1e-9) + 1;
    levels = Array.from({ length: count }, (_, i) => clean(start + i * step));
  } else {
    levels = text.split(',').map(num);
  }
  for (const l of levels) if (!(l >= 0 && l < 1)) throw new DarknetError(`${what}: level ${l} must be in [0, 1)`);
  return levels;
}
