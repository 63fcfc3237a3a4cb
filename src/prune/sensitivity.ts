import * as path from 'path';
import { loadClassifierSpec, withBatch, type Log } from '../classifier';
import { readDataConfig, readLabels, readLines } from '../data/dataset';
import { ListSource, type ImageSource } from '../data/loader';
import { createKernels } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { Network } from '../network';
import { renderLineChart } from '../plot';
import { Progress } from '../progress';
import { atomicWrite, readWeights } from '../weights';
import { makeEvaluator } from './recipe';
import { baselineRow, formatSensitivityCsv, sensitivityRow, type SensitivityScan } from './schedule';
import { sparsityOf } from './stats';
import { applyThreshold, prunableLayers } from './threshold';

/**
 * Sensitivity analysis (DESIGN.md §5): each prunable layer alone pruned to each level,
 * every other layer dense, evaluated without retraining. Layers whose accuracy falls
 * early are fragile (usually the first); the scan feeds `prune --mode sensitivity`.
 */
export interface SensitivityOptions {
  dataFile: string;
  cfgFile: string;
  weights: string;
  levels: number[];
  /** CSV and PNG go here (default: beside the weights) */
  out?: string;
  backend?: string;
  evalImages?: number;
  /** a layer is fragile if it loses more than this much top-1 (fraction) at or below `fragileAt` */
  fragileDrop?: number;
  fragileAt?: number;
  log?: Log;
  quiet?: boolean;
  kernels?: Kernels;
  evalSource?: ImageSource;
}

export interface SensitivityResult {
  scan: SensitivityScan;
  csv: string;
  png: string;
  fragile: string[];
}

export async function sensitivityScan(o: SensitivityOptions): Promise<SensitivityResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const data = readDataConfig(o.dataFile);
  const spec = loadClassifierSpec(o.cfgFile, data.classes, () => undefined);
  const k = o.kernels ?? (await createKernels(o.backend as never));
  log(`backend: ${k.description}`);
  let source = o.evalSource;
  if (!source) {
    const paths = readLines(data.valid, 'the validation list');
    source = new ListSource(o.evalImages ? paths.slice(0, o.evalImages) : paths, readLabels(data.labels, data.classes), {
      w: spec.net.w, h: spec.net.h, c: spec.net.c,
    });
  }
  const evaluate = makeEvaluator(new Network(withBatch(spec, spec.net.batch), k), source, data.classes);
  const dense = readWeights(o.weights, spec);
  const baseline = baselineRow(spec, sparsityOf(spec, dense).total.sparsity, await evaluate(dense));
  log(`baseline top-1 ${(100 * baseline.top1).toFixed(2)}%`);
  const layers = prunableLayers(spec);
  const rows: SensitivityScan['rows'] = [];
  const progress = o.quiet ? null : new Progress('sensitivity', layers.length * o.levels.length, 'eval');
  let done = 0;
  for (const layer of layers) {
    for (const level of o.levels) {
      const pruned = applyThreshold(spec, dense, { scope: 'map', rules: new Map([[layer.index, { kind: 'fraction', sparsity: level }]]) });
      rows.push(sensitivityRow(layer, level, await evaluate(pruned.weights)));
      progress?.update(++done, `${layer.name} @ ${level}`);
    }
  }
  progress?.finish(done);
  const scan: SensitivityScan = { baseline, rows };
  const out = o.out ?? path.dirname(o.weights);
  const base = path.basename(o.weights).replace(/\.weights$/, '');
  const csv = path.join(out, `${base}.sensitivity.csv`);
  const png = path.join(out, `${base}.sensitivity.png`);
  atomicWrite(csv, formatSensitivityCsv(scan));
  atomicWrite(
    png,
    renderLineChart({
      title: `${path.basename(o.cfgFile)}: sensitivity (one layer pruned, no retraining)`,
      xLabel: 'sparsity of the layer',
      yLabel: 'top-1',
      series: layers.map((l) => ({ name: `${l.name} (${l.weights} weights)`, points: rows.filter((r) => r.layer === l.index).map((r) => [r.sparsity, r.top1]) })),
    }),
  );
  // Fragile: loses more than fragileDrop at or below fragileAt sparsity.
  const drop = o.fragileDrop ?? 0.01;
  const at = o.fragileAt ?? 0.5;
  const fragile = layers
    .filter((l) => rows.some((r) => r.layer === l.index && r.sparsity <= at + 1e-9 && baseline.top1 - r.top1 > drop))
    .map((l) => l.name);
  for (const l of layers) {
    const mine = rows.filter((r) => r.layer === l.index);
    const cells = mine.map((r) => `${(100 * r.sparsity).toFixed(0)}%:${(100 * r.top1).toFixed(2)}`).join(' ');
    log(`${l.name.padEnd(6)} ${String(l.weights).padStart(7)} weights  ${cells}`);
  }
  log(fragile.length
    ? `fragile (more than ${(100 * drop).toFixed(1)} points lost at <= ${(100 * at).toFixed(0)}% sparsity): ${fragile.join(', ')}`
    : `no layer loses more than ${(100 * drop).toFixed(1)} points at <= ${(100 * at).toFixed(0)}% sparsity`);
  log(`wrote ${csv} and ${png}`);
  return { scan, csv, png, fragile };
}
