/**
 * Renders sample charts of each kind the tool draws into /tmp/plot-demo-*.png, to look
 * at by eye after changing src/plot.ts.
 *   npx tsc -p tsconfig.json && node dist/scripts/plot-demo.js
 */
import { writeFileSync } from 'fs';
import { renderBarChart, renderLineChart, type Series } from '../src/report/plot';

/** Deterministic noise in [-0.5, 0.5), so the pictures do not change between runs. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function lossCurve(): Buffer {
  const rand = noise(1);
  const losses = Array.from({ length: 9380 }, (_, i) => Math.max(0.01, 2.3 * Math.exp(-i / 900) + 0.05 + 0.35 * rand() * Math.exp(-i / 3000)));
  let avg = -1;
  const smooth = losses.map((l, i): [number, number] => [i + 1, (avg = avg < 0 ? l : avg * 0.9 + l * 0.1)]);
  return renderLineChart({
    title: 'lenet: training loss',
    xLabel: 'batch',
    yLabel: 'loss per image',
    series: [
      { name: 'loss', points: losses.map((l, i) => [i + 1, l]), color: [170, 200, 235] },
      { name: 'avg (darknet, 0.9)', points: smooth, color: [20, 80, 170] },
    ],
  });
}

function accuracyVsSparsity(): Buffer {
  const layers = ['conv 0', 'conv 2', 'conv 4', 'conv 6', 'conv 8', 'conv 10', 'conn 12', 'conn 13', 'conv 14', 'conv 16'];
  const series: Series[] = layers.map((name, l) => ({
    name,
    points: Array.from({ length: 20 }, (_, i): [number, number] => {
      const s = i / 20;
      const knee = 0.45 + 0.05 * l;
      return [s, 0.99 - 0.9 / (1 + Math.exp(-(s - knee) * (12 + l)))];
    }),
  }));
  return renderLineChart({ title: 'accuracy vs sparsity, one layer pruned at a time', xLabel: 'sparsity', yLabel: 'top-1 accuracy', series, yMin: 0, yMax: 1 });
}

function pruneRounds(): Buffer {
  const rounds = Array.from({ length: 12 }, (_, i) => i);
  return renderLineChart({
    title: 'iterative pruning',
    xLabel: 'prune round',
    yLabel: 'fraction',
    series: [
      { name: 'top-1 accuracy', points: rounds.map((r) => [r, 0.99 - 0.002 * r - (r > 8 ? 0.05 * (r - 8) : 0)]) },
      { name: 'sparsity', points: rounds.map((r) => [r, 1 - 0.8 ** r]) },
    ],
    yMin: 0,
    yMax: 1,
  });
}

function logLoss(): Buffer {
  const rand = noise(2);
  return renderLineChart({
    title: 'training loss (log scale)',
    xLabel: 'batch',
    yLabel: 'loss',
    logY: true,
    series: [{ name: 'loss', points: Array.from({ length: 4000 }, (_, i) => [i, 2.3 * Math.exp(-i / 500) + 0.002 * (1 + rand())]) }],
    width: 640,
    height: 400,
  });
}

function sparsityBars(): Buffer {
  const layers = ['conv 0', 'conv 2', 'conv 4', 'conv 6', 'conn 8', 'conn 9'];
  return renderBarChart({
    title: 'sparsity per layer',
    xLabel: 'layer',
    yLabel: 'sparsity',
    groups: ['round 1', 'round 2', 'round 3'],
    bars: layers.map((label, i) => ({ label, values: [0.2 + 0.05 * i, 0.45 + 0.06 * i, 0.6 + 0.07 * i] })),
    yMax: 1,
  });
}

function manyBars(): Buffer {
  return renderBarChart({
    title: 'sparsity per layer (darknet19)',
    xLabel: 'layer',
    yLabel: 'sparsity',
    groups: ['sparsity'],
    bars: Array.from({ length: 19 }, (_, i) => ({ label: `conv_${2 * i}`, values: [Math.min(1, 0.3 + 0.035 * i)] })),
  });
}

const charts: Record<string, () => Buffer> = { loss: lossCurve, 'acc-sparsity': accuracyVsSparsity, rounds: pruneRounds, 'log-loss': logLoss, bars: sparsityBars, 'bars-many': manyBars };
for (const [name, render] of Object.entries(charts)) {
  const t0 = process.hrtime.bigint();
  const png = render();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const file = `/tmp/plot-demo-${name}.png`;
  writeFileSync(file, png);
  console.log(`${file}  ${png.length} bytes  ${ms.toFixed(0)} ms`);
}
