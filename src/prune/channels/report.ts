import * as path from 'path';
import type { NetworkSpec } from '../../cfg/config';
import { formatBytes } from '../../cfg/memory';
import type { LayerSpec } from '../../engine/layer';
import { serializeWeights, type WeightsFile } from '../../io/weights';
import { renderBarChart, renderLineChart } from '../../report/plot';
import { prunableLayers } from '../threshold';
import type { ChannelModelResult, ChannelRoundResult, ChannelTarget } from './loop';
import type { TieRule } from './plan';

/**
 * The table `prune channels` prints: per layer with parameters or FLOPs, filters, parameters
 * and FLOPs dense -> shrunk; then the totals and the bytes on disk, with the factors gained.
 */

/** A model's size: what `prune channels` compares dense against shrunk. */
export interface ModelSize {
  /** floats in the .weights file */
  params: number;
  /** FLOPs of one image's forward pass */
  flops: number;
  /** bytes of the .weights file */
  bytes: number;
}

export function modelSize(spec: NetworkSpec, w: WeightsFile): ModelSize {
  return {
    params: spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0),
    flops: spec.layers.reduce((s, l) => s + l.flops, 0),
    bytes: serializeWeights(w, spec).length,
  };
}

/** One model for the comparison: its spec and its size (params, FLOPs, bytes). */
export interface Side {
  spec: NetworkSpec;
  size: ModelSize;
}

function filtersOf(l: LayerSpec): string {
  if (l.type === 'connected') return String(l.outputs);
  if (l.type === 'convolutional' || l.type === 'batchnorm') return String(l.outC);
  return '';
}

function paramsOf(l: LayerSpec): number {
  return l.params.reduce((s, p) => s + p.size, 0);
}

const thousands = (n: number) => Math.round(n).toLocaleString('en-US');

/** `x` times fewer, e.g. `4.2x`, or `1.0x` when equal. */
function factor(before: number, after: number): string {
  return after > 0 ? `${(before / after).toFixed(1)}x` : '-';
}

/**
 * `layerMap` (when layers were removed): per dense layer, its index in the shrunk spec or -1.
 * @example
 *   io.out(formatChannelReport({ spec, size: modelSize(spec, w) }, { spec: small.spec, size: modelSize(small.spec, small.weights) }));
 */
export function formatChannelReport(dense: Side, shrunk: Side, layerMap?: readonly number[]): string {
  const flopsUnit = dense.size.flops >= 1e9 ? 1e9 : 1e6;
  const unitName = flopsUnit === 1e9 ? 'BFLOPs' : 'MFLOPs';
  const names = new Map(prunableLayers(dense.spec).map((p) => [p.index, p.name]));
  const head = ['layer', 'name', 'filters', 'params', unitName];
  const arrow = (a: string, b: string) => (a === b ? a : `${a} -> ${b}`);
  const rows: string[][] = [];
  dense.spec.layers.forEach((l, i) => {
    if (paramsOf(l) === 0 && l.flops === 0) return;
    const at = layerMap ? layerMap[i] : i;
    if (at < 0) {
      rows.push([String(i), names.get(i) ?? l.type, `${filtersOf(l)} -> removed`, `${thousands(paramsOf(l))} -> 0`, `${(l.flops / flopsUnit).toFixed(3)} -> 0`]);
      return;
    }
    const s = shrunk.spec.layers[at];
    rows.push([
      String(i), names.get(i) ?? l.type, arrow(filtersOf(l), filtersOf(s)), arrow(thousands(paramsOf(l)), thousands(paramsOf(s))),
      arrow((l.flops / flopsUnit).toFixed(3), (s.flops / flopsUnit).toFixed(3)),
    ]);
  });
  rows.push([
    'total', '', '', arrow(thousands(dense.size.params), thousands(shrunk.size.params)),
    arrow((dense.size.flops / flopsUnit).toFixed(3), (shrunk.size.flops / flopsUnit).toFixed(3)),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c === 1 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ').trimEnd();
  return [
    line(head),
    ...rows.map(line),
    `parameters: ${thousands(dense.size.params)} -> ${thousands(shrunk.size.params)} (${factor(dense.size.params, shrunk.size.params)} fewer)`,
    `FLOPs:      ${(dense.size.flops / flopsUnit).toFixed(3)} -> ${(shrunk.size.flops / flopsUnit).toFixed(3)} ${unitName} (${factor(dense.size.flops, shrunk.size.flops)} fewer)`,
    `on disk:    ${formatBytes(dense.size.bytes)} -> ${formatBytes(shrunk.size.bytes)} (${factor(dense.size.bytes, shrunk.size.bytes)} smaller)`,
  ].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------
// The iterative loop's report (`prune --structure channel`): report.json, report.csv and
// the charts, in the shape of the unstructured loop's (../report.ts). Contents only.

/** report.json of `prune --structure channel`. */
export interface ChannelPruneReport {
  version: 1;
  structure: 'channel';
  cfg: string;
  data: string;
  start: string;
  criterion: string;
  target: ChannelTarget;
  allocation: 'greedy' | 'uniform';
  /** filters tied by a [shortcut] (planChannels) */
  tie: TieRule;
  /** `--layers`: residual blocks removed over the rounds */
  layers?: number;
  rounds: number;
  retrainBatches: number;
  lrScale: number;
  roundTo: number;
  dense: ChannelModelResult;
  /** each finished round, with the files it was written to */
  history: Array<ChannelRoundResult & { cfgFile: string; weightsFile: string }>;
  /** set when Ctrl-C / SIGTERM stopped the run; the finished rounds are kept */
  interrupted?: boolean;
}

/** report.csv: one row per round per layer, then the round's totals (with top-1 and measured speed). */
export function channelReportCsv(report: ChannelPruneReport): string {
  const csv = ['round,layer,name,type,filters_dense,filters,params,flops,bytes,top1_pruned,top1,infer_images_per_s,train_images_per_s,latency_ms'];
  const rows = (round: number, m: ChannelModelResult, top1Pruned: number | string) => {
    for (const l of m.layers) csv.push([round, l.index, l.name, l.type, l.filtersDense || '', l.filters || '', l.params, l.flops, '', '', '', '', '', ''].join(','));
    csv.push([round, 'total', '', '', '', '', m.params, m.flops, m.bytes, top1Pruned, m.top1, m.speed.inferImagesPerSecond, m.speed.trainImagesPerSecond, m.speed.latencyMs].join(','));
  };
  rows(0, report.dense, '');
  for (const r of report.history) rows(r.round, r, r.top1Pruned);
  return csv.join('\n') + '\n';
}

/** accuracy.png: top-1 pruned and fine-tuned against FLOPs (x dense), dense at 1. */
export function channelAccuracyChart(report: ChannelPruneReport): Buffer {
  const d = report.dense;
  const start: [number, number] = [1, d.top1];
  return renderLineChart({
    title: `${path.basename(report.cfg)}: top-1 over channel-prune rounds (${report.criterion})`,
    xLabel: 'FLOPs x dense',
    yLabel: 'top-1',
    series: [
      { name: 'pruned', points: [start, ...report.history.map((r) => [r.flops / d.flops, r.top1Pruned] as [number, number])] },
      { name: 'fine-tuned', points: [start, ...report.history.map((r) => [r.flops / d.flops, r.top1] as [number, number])] },
    ],
  });
}

/** speed.png: measured images/s, inference and training, dense and each round. */
export function channelSpeedChart(report: ChannelPruneReport): Buffer {
  const models = [report.dense, ...report.history];
  return renderBarChart({
    title: 'measured speed (in memory, this machine)',
    xLabel: 'model',
    yLabel: 'images/s',
    groups: ['infer', 'train'],
    bars: models.map((m, i) => ({
      label: i === 0 ? 'dense' : `round ${i}`,
      values: [m.speed.inferImagesPerSecond, m.speed.trainImagesPerSecond].map((v) => (Number.isFinite(v) ? v : 0)),
    })),
  });
}

/** filters.png: per prunable layer, a bar per model (dense, then each round). */
export function channelFiltersChart(report: ChannelPruneReport): Buffer {
  const models = [report.dense, ...report.history];
  const producers = report.dense.layers.filter((l) => l.filtersDense > 0);
  return renderBarChart({
    title: 'filters per layer, by round',
    xLabel: 'layer',
    yLabel: 'filters kept (x dense)',
    groups: models.map((_, i) => (i === 0 ? 'dense' : `round ${i}`)),
    bars: producers.map((p) => ({
      label: p.name,
      values: models.map((m) => (m.layers.find((l) => l.index === p.index)?.filters ?? 0) / p.filtersDense),
    })),
    yMax: 1,
  });
}
