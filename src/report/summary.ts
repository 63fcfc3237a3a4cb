import type { NetworkSpec } from '../cfg/config';
import type { LayerSpec } from '../engine/layer';
import { sparsityOf } from '../prune/stats';
import type { WeightsFile } from '../io/weights';
import { DarknetError } from '../errors';

/**
 * darknet's layer table (what parse_network_cfg prints while it builds a network), with
 * columns of our own appended to the right so darknet's row text stays as it was.
 */

/**
 * A column appended to darknet's rows, with lines for the totals block. The parameter
 * count is one; weights-file columns (non-zeros, sparsity) plug in the same way.
 */
export interface SummaryColumn {
  header: string;
  /** the cell for one layer, right-aligned under the header */
  cell(layer: LayerSpec): string;
  /** `[label, value]` lines for the totals block */
  totals?(spec: NetworkSpec): Array<[string, string]>;
}

/** darknet's header line, character for character. */
export const DARKNET_HEADER = 'layer     filters    size              input                output';

/** Parameters per layer: the sum of its arrays in the .weights file (biases, scales, ...). */
export const paramsColumn: SummaryColumn = {
  header: 'params',
  cell: (l) => groupThousands(layerParams(l)),
  totals: (spec) => [['total parameters', groupThousands(spec.layers.reduce((s, l) => s + layerParams(l), 0))]],
};

/**
 * The table as text, ending with a newline: darknet's header and rows (`%5d ` + the
 * layer's describe), our columns, then the totals (parameters, BFLOPs, and each extra
 * column's).
 * @example
 *   process.stdout.write(formatSummary(readCfg('cfg/lenet.cfg')));
 *   //   layer     filters    size              input                output          params
 *   //       0 conv     20  5 x 5 / 1    28 x  28 x   1   ->    24 x  24 x  20  0.001 BFLOPs     520
 *   //   ...
 *   //   total parameters  431,080
 *   //   total BFLOPs      0.005
 */
export function formatSummary(spec: NetworkSpec, extraColumns: readonly SummaryColumn[] = []): string {
  const columns = [paramsColumn, ...extraColumns];
  const rows = spec.layers.map((l) => `${String(l.index).padStart(5)} ${l.describe}`);
  const left = Math.max(DARKNET_HEADER.length, ...rows.map((r) => r.length));
  const cells = columns.map((col) => spec.layers.map((l) => col.cell(l)));
  const widths = columns.map((col, i) => Math.max(col.header.length, ...cells[i].map((c) => c.length)));

  const line = (text: string, values: string[]) =>
    (text.padEnd(left) + values.map((v, i) => '  ' + v.padStart(widths[i])).join('')).trimEnd();
  const out = [line(DARKNET_HEADER, columns.map((c) => c.header))];
  rows.forEach((r, i) => out.push(line(r, cells.map((c) => c[i]))));

  const totals: Array<[string, string]> = [
    ...paramsColumn.totals!(spec),
    ['total BFLOPs', formatBflops(spec.layers.reduce((s, l) => s + l.flops, 0))],
    ...extraColumns.flatMap((c) => c.totals?.(spec) ?? []),
  ];
  const labelWidth = Math.max(...totals.map(([label]) => label.length));
  out.push('');
  for (const [label, value] of totals) out.push(`${label.padEnd(labelWidth)}  ${value}`);
  return out.join('\n') + '\n';
}

/** The number of parameters (floats in the .weights file) of one layer. */
export function layerParams(l: LayerSpec): number {
  return l.params.reduce((s, p) => s + p.size, 0);
}

/** darknet's `%5.3f` of FLOPs / 1e9. */
export function formatBflops(flops: number): string {
  return (flops / 1e9).toFixed(3);
}

/** 432080 -> "432,080" (independent of the machine's locale). */
export function groupThousands(n: number): string {
  const sign = n < 0 ? '-' : '';
  return sign + String(Math.abs(Math.round(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * The columns a weights file adds: non-zero weights, sparsity and the BFLOPs left if
 * zero weights were skipped, all counted from the file's arrays.
 */
export function weightsColumns(spec: NetworkSpec, w: WeightsFile): SummaryColumn[] {
  const report = sparsityOf(spec, w);
  const byIndex = new Map(report.layers.map((l) => [l.index, l]));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    { header: 'non-zero', cell: (l) => (byIndex.has(l.index) ? groupThousands(byIndex.get(l.index)!.nonzero) : '') },
    { header: 'sparsity', cell: (l) => (byIndex.has(l.index) ? pct(byIndex.get(l.index)!.sparsity) : '') },
    {
      header: 'eff. BFLOPs',
      cell: (l) => (byIndex.has(l.index) ? formatBflops(byIndex.get(l.index)!.effectiveFlops) : ''),
      totals: () => [
        ['seen', groupThousands(w.header.seen)],
        ['weights (conv, connected)', groupThousands(report.total.weights)],
        ['non-zero weights', `${groupThousands(report.total.nonzero)} (${pct(1 - report.total.sparsity)})`],
        ['sparsity', pct(report.total.sparsity)],
        ['compression', `${report.total.compression.toFixed(1)}x fewer weights`],
        ['effective BFLOPs', `${formatBflops(report.total.effectiveFlops)} (zero weights skipped)`],
      ],
    },
  ];
}

/** Filters of a conv (or [batchnorm]) layer, outputs of a connected layer; undefined for others. */
function filtersOf(l: LayerSpec): number | undefined {
  if (l.type === 'convolutional' || l.type === 'batchnorm') return l.outC;
  if (l.type === 'connected') return l.outputs;
  return undefined;
}

/**
 * The columns `summary <new.cfg> --compare <old.cfg>` adds: per layer, filters old -> new
 * and the old parameter count, then the totals of both and the factors. The two cfgs must
 * have the same layers in the same order (what `prune channels` writes).
 * @example formatSummary(small, compareColumns(readCfg('cfg/lenet.cfg'), small));
 */
export function compareColumns(old: NetworkSpec, spec: NetworkSpec, oldName = 'old'): SummaryColumn[] {
  if (old.layers.length !== spec.layers.length || old.layers.some((l, i) => l.type !== spec.layers[i].type)) {
    const at = old.layers.findIndex((l, i) => l.type !== spec.layers[i]?.type);
    throw new DarknetError(`--compare ${old.file}: its layers differ from ${spec.file}'s ` +
      (at >= 0 ? `(layer ${at} is ${old.layers[at].type} there, ${spec.layers[at]?.type ?? 'missing'} here)` : `(${old.layers.length} layers there, ${spec.layers.length} here)`));
  }
  const oldParams = old.layers.reduce((s, l) => s + layerParams(l), 0);
  const newParams = spec.layers.reduce((s, l) => s + layerParams(l), 0);
  const oldFlops = old.layers.reduce((s, l) => s + l.flops, 0);
  const newFlops = spec.layers.reduce((s, l) => s + l.flops, 0);
  const factor = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(1)}x` : '-');
  // MFLOPs for MNIST-sized nets, BFLOPs past a billion (the unit of the larger model)
  const flopsText = (f: number, scale: number) => (scale >= 1e9 ? `${(f / 1e9).toFixed(3)} BFLOPs` : `${(f / 1e6).toFixed(3)} MFLOPs`);
  return [
    {
      header: `filters ${oldName} -> new`,
      cell: (l) => {
        const before = filtersOf(old.layers[l.index]);
        const after = filtersOf(l);
        return before === undefined || after === undefined ? '' : before === after ? String(after) : `${before} -> ${after}`;
      },
    },
    {
      header: `params ${oldName}`,
      cell: (l) => groupThousands(layerParams(old.layers[l.index])),
      totals: () => [
        [`parameters ${oldName} -> new`, `${groupThousands(oldParams)} -> ${groupThousands(newParams)} (${factor(oldParams, newParams)} fewer)`],
        [`FLOPs ${oldName} -> new`, `${flopsText(oldFlops, oldFlops)} -> ${flopsText(newFlops, oldFlops)} (${factor(oldFlops, newFlops)} fewer)`],
      ],
    },
  ];
}
