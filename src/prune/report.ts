import * as path from 'path';
import type { NetworkSpec } from '../cfg/config';
import { renderBarChart, renderLineChart } from '../report/plot';
import type { DenseResult, RoundResult } from './recipe';
import type { ScheduleMode } from './schedule';
import { prunableLayers } from './threshold';

/**
 * The prune report: what `report.json` holds (enough to resume a run and to check that
 * a resume belongs to the same run), and its CSV and PNG views. Contents only; the
 * command writes them.
 */
export interface PruneReport {
  /** format version of report.json */
  version: 2;
  /**
   * sha256 over the cfg text, the start weights' bytes and every option that changes the
   * result; a resume with another fingerprint is refused
   */
  fingerprint: string;
  cfg: string;
  data: string;
  start: string;
  mode: ScheduleMode;
  target: number;
  rounds: number;
  retrainBatches: number;
  lrScale: number;
  dense: DenseResult;
  history: Array<RoundResult & { weights: string }>;
  /** a round stopped during retraining, to resume from its backup */
  inProgress?: { round: number; top1Pruned: number; backup: string };
}

/** report.csv: one row per round per layer, then the round's total. */
export function reportCsv(report: PruneReport): string {
  const csv = ['round,layer,name,type,weights,nonzero,sparsity,target,flops,effective_flops,top1_pruned,top1_retrained'];
  for (const r of report.history) {
    for (const l of r.layers) {
      csv.push([r.round, l.index, l.name, l.type, l.weights, l.nonzero, l.sparsity, l.target, l.flops, l.effectiveFlops, r.top1Pruned, r.top1Retrained].join(','));
    }
    csv.push([r.round, 'total', '', '', r.totalWeights, r.nonzero, r.sparsity, '', r.flops, r.effectiveFlops, r.top1Pruned, r.top1Retrained].join(','));
  }
  return csv.join('\n') + '\n';
}

/** accuracy.png: top-1 pruned and retrained against total sparsity. */
export function accuracyChart(report: PruneReport): Buffer {
  const start: [number, number] = [report.dense.sparsity, report.dense.top1];
  return renderLineChart({
    title: `${path.basename(report.cfg)}: top-1 over prune rounds (${report.mode})`,
    xLabel: 'total sparsity of conv + connected weights',
    yLabel: 'top-1',
    series: [
      { name: 'pruned', points: [start, ...report.history.map((r) => [r.sparsity, r.top1Pruned] as [number, number])] },
      { name: 'retrained', points: [start, ...report.history.map((r) => [r.sparsity, r.top1Retrained] as [number, number])] },
    ],
  });
}

/** sparsity.png: per layer, a bar per round. */
export function sparsityChart(report: PruneReport, spec: NetworkSpec): Buffer {
  return renderBarChart({
    title: 'sparsity per layer, by round',
    xLabel: 'layer',
    yLabel: 'sparsity',
    groups: report.history.map((r) => `round ${r.round}`),
    bars: prunableLayers(spec).map((l) => ({ label: l.name, values: report.history.map((r) => r.layers.find((x) => x.index === l.index)?.sparsity ?? 0) })),
    yMax: 1,
  });
}
