import type { NetworkSpec } from '../../cfg/config';
import { formatBytes } from '../../cfg/memory';
import type { LayerSpec } from '../../engine/layer';
import { serializeWeights, type WeightsFile } from '../../io/weights';
import { prunableLayers } from '../threshold';

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
 * @example
 *   io.out(formatChannelReport({ spec, size: modelSize(spec, w) }, { spec: small.spec, size: modelSize(small.spec, small.weights) }));
 */
export function formatChannelReport(dense: Side, shrunk: Side): string {
  const flopsUnit = dense.size.flops >= 1e9 ? 1e9 : 1e6;
  const unitName = flopsUnit === 1e9 ? 'BFLOPs' : 'MFLOPs';
  const names = new Map(prunableLayers(dense.spec).map((p) => [p.index, p.name]));
  const head = ['layer', 'name', 'filters', 'params', unitName];
  const arrow = (a: string, b: string) => (a === b ? a : `${a} -> ${b}`);
  const rows: string[][] = [];
  dense.spec.layers.forEach((l, i) => {
    const s = shrunk.spec.layers[i];
    if (paramsOf(l) === 0 && l.flops === 0) return;
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
