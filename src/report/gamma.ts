import type { Network } from '../engine/network';
import { renderLineChart } from './plot';

/**
 * What network slimming (`classifier train --slim`) is for a user to watch: the batch-norm
 * scales |gamma| of every layer moving towards 0, epoch by epoch. Slimming forks' most
 * common complaint is that they do not, so the command prints a summary line per epoch and
 * draws the histograms side by side.
 */

/** Every batch-norm scale of a network, as |gamma|; empty when it has no batch norm. */
export function batchNormScales(net: Network): Float32Array {
  const parts = net.layers.flatMap((l) => l.params.filter((p) => p.name === 'scales').map((p) => net.k.read(p.tensor)));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++) out[o++] = Math.abs(p[i]);
  return out;
}

/** `|gamma|: median 0.412, 12.5% below 0.01 (of 2,048 scales)` */
export function gammaSummary(scales: Float32Array): string {
  const sorted = Float32Array.from(scales).sort();
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
  let small = 0;
  for (const g of sorted) if (g < 0.01) small++;
  return `|gamma|: median ${median.toPrecision(3)}, ${((100 * small) / Math.max(1, sorted.length)).toFixed(1)}% below 0.01 (of ${sorted.length} scales)`;
}

/** Histograms of |gamma| (share of scales per bin), one line per labelled snapshot. */
export function gammaChart(title: string, snapshots: Array<{ label: string; scales: Float32Array }>, bins = 40): Buffer {
  let max = 0;
  for (const s of snapshots) for (const g of s.scales) max = Math.max(max, g);
  const width = (max || 1) / bins;
  return renderLineChart({
    title,
    xLabel: '|gamma| (batch-norm scale)',
    yLabel: 'share of scales',
    series: snapshots.map((s) => {
      const counts = new Array<number>(bins).fill(0);
      for (const g of s.scales) counts[Math.min(bins - 1, Math.floor(g / width))]++;
      return { name: s.label, points: counts.map((c, i) => [(i + 0.5) * width, c / Math.max(1, s.scales.length)] as [number, number]) };
    }),
  });
}
