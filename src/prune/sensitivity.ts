import type { NetworkSpec } from '../cfg/config';
import type { ImageSource } from '../data/loader';
import type { Network } from '../engine/network';
import { silentReporter, type Reporter } from '../engine/reporter';
import type { WeightsFile } from '../io/weights';
import { renderLineChart } from '../report/plot';
import { top1Of } from './recipe';
import { baselineRow, sensitivityRow, type SensitivityScan } from './scan';
import { sparsityOf } from './stats';
import { applyThreshold, prunableLayers } from './threshold';

/**
 * Sensitivity analysis (DESIGN.md §5): each prunable layer alone pruned to each level,
 * every other layer dense, evaluated without retraining, on one evaluation network.
 * Layers whose accuracy falls early are fragile (usually the first); the scan feeds
 * `prune --mode sensitivity`.
 */
export interface SensitivityOptions {
  levels: number[];
  /** a layer is fragile if it loses more than this much top-1 (fraction) at or below `fragileAt` */
  fragileDrop?: number;
  fragileAt?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface SensitivityResult {
  scan: SensitivityScan;
  /** names of the fragile layers */
  fragile: string[];
}

export async function sensitivityScan(
  spec: NetworkSpec,
  evalNet: Network,
  dense: WeightsFile,
  source: ImageSource,
  o: SensitivityOptions,
): Promise<SensitivityResult> {
  const reporter = o.reporter ?? silentReporter;
  const baseline = baselineRow(spec, sparsityOf(spec, dense).total.sparsity, await top1Of(evalNet, dense, source, o.signal));
  reporter.info(`baseline top-1 ${(100 * baseline.top1).toFixed(2)}%`);
  const layers = prunableLayers(spec);
  const rows: SensitivityScan['rows'] = [];
  const progress = reporter.progress('sensitivity', layers.length * o.levels.length, 'eval');
  let done = 0;
  for (const layer of layers) {
    for (const level of o.levels) {
      const pruned = applyThreshold(spec, dense, { scope: 'map', rules: new Map([[layer.index, { kind: 'fraction', sparsity: level }]]) });
      rows.push(sensitivityRow(layer, level, await top1Of(evalNet, pruned.weights, source, o.signal)));
      progress.update(++done, `${layer.name} @ ${level}`);
    }
  }
  progress.finish(done);
  const scan: SensitivityScan = { baseline, rows };
  // Fragile: loses more than fragileDrop at or below fragileAt sparsity.
  const drop = o.fragileDrop ?? 0.01;
  const at = o.fragileAt ?? 0.5;
  const fragile = layers
    .filter((l) => rows.some((r) => r.layer === l.index && r.sparsity <= at + 1e-9 && baseline.top1 - r.top1 > drop))
    .map((l) => l.name);
  for (const l of layers) {
    const cells = rows.filter((r) => r.layer === l.index).map((r) => `${(100 * r.sparsity).toFixed(0)}%:${(100 * r.top1).toFixed(2)}`).join(' ');
    reporter.info(`${l.name.padEnd(6)} ${String(l.weights).padStart(7)} weights  ${cells}`);
  }
  reporter.info(fragile.length
    ? `fragile (more than ${(100 * drop).toFixed(1)} points lost at <= ${(100 * at).toFixed(0)}% sparsity): ${fragile.join(', ')}`
    : `no layer loses more than ${(100 * drop).toFixed(1)} points at <= ${(100 * at).toFixed(0)}% sparsity`);
  return { scan, fragile };
}

/** The scan's curves, one per layer. */
export function sensitivityChart(spec: NetworkSpec, scan: SensitivityScan, title: string): Buffer {
  return renderLineChart({
    title,
    xLabel: 'sparsity of the layer',
    yLabel: 'top-1',
    series: prunableLayers(spec).map((l) => ({
      name: `${l.name} (${l.weights} weights)`,
      points: scan.rows.filter((r) => r.layer === l.index).map((r) => [r.sparsity, r.top1] as [number, number]),
    })),
  });
}
