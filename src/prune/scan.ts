import type { NetworkSpec } from '../cfg/config';
import { DarknetError, fileError } from '../errors';
import { bisect, checkRate, RATE_CAP, weightedTotal, type LayerRates } from './schedule';
import { prunableLayers, type PrunableLayer } from './threshold';

/**
 * The sensitivity scan table: `darknet-ts sensitivity` writes it as CSV, `prune --mode
 * sensitivity` reads it back and turns it into per-layer rates.
 */

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
