import * as fs from 'fs';
import * as path from 'path';
import { trainClassifier, validate, withBatch, loadClassifierSpec, type Log } from '../classifier';
import type { NetworkSpec } from '../config';
import { readDataConfig, readLabels, readLines } from '../data/dataset';
import { ListSource, type ImageSource } from '../data/loader';
import { DarknetError } from '../errors';
import { createKernels } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { Network } from '../network';
import { renderBarChart, renderLineChart } from '../plot';
import { formatDuration } from '../progress';
import { atomicWrite, readWeights, writeWeights, type WeightsFile } from '../weights';
import { pruneSchedule, parseSensitivityCsv, checkScan, ratesFromSensitivity, totalSparsity, type LayerRates, type ScheduleMode } from './schedule';
import { sparsityOf, type SparsityReport } from './stats';
import { applyThreshold, fractionRules, prunableLayers } from './threshold';

/**
 * The sparsification recipe (DESIGN.md §5, Han et al. 2015) as one command: each round
 * thresholds the weights to that round's per-layer sparsity, evaluates the pruned model,
 * retrains it with the zeros frozen at a reduced learning rate, evaluates again and saves
 * the round's weights. Every reported number is counted from the saved file.
 */
export interface PruneOptions {
  dataFile: string;
  cfgFile: string;
  weights: string;
  /** final total sparsity of the prunable layers' weights, e.g. 0.92 */
  target: number;
  rounds: number;
  /** batches of retraining per round */
  retrainBatches: number;
  /** multiplies the cfg's learning_rate while retraining */
  lrScale: number;
  mode: ScheduleMode;
  /** sensitivity mode: a scan CSV from `darknet-ts sensitivity` ... */
  sensitivityFile?: string;
  /** ... with the accuracy drop a layer may take (fraction, e.g. 0.005) */
  maxDrop?: number;
  /** or per-layer final rates given by the user */
  layerRates?: Map<number, number>;
  out: string;
  backend?: string;
  seed?: number;
  /** evaluate on the first N valid images only (default: all) */
  evalImages?: number;
  log?: Log;
  quiet?: boolean;
  shouldStop?: () => boolean;
  kernels?: Kernels;
  /** tests: images to evaluate on instead of the valid list */
  evalSource?: ImageSource;
  /** tests: images to retrain on instead of the train list */
  trainSource?: ImageSource;
}

export interface LayerRow {
  index: number;
  name: string;
  type: string;
  weights: number;
  nonzero: number;
  sparsity: number;
  /** the rate this round asked for */
  target: number;
  bflops: number;
  effectiveBflops: number;
}

export interface RoundReport {
  round: number;
  /** weights file of the round (after retraining) */
  weights: string;
  prunedWeights: string;
  top1Pruned: number;
  top1Retrained: number;
  sparsity: number;
  nonzero: number;
  totalWeights: number;
  compression: number;
  bflops: number;
  effectiveBflops: number;
  seconds: number;
  layers: LayerRow[];
}

export interface PruneReport {
  cfg: string;
  data: string;
  start: string;
  mode: ScheduleMode;
  target: number;
  rounds: number;
  retrainBatches: number;
  lrScale: number;
  dense: { top1: number; sparsity: number; nonzero: number; totalWeights: number; bflops: number };
  history: RoundReport[];
}

const REPORT = 'report.json';

/** Per-layer rows of a saved file, with the targets the round asked for. */
function layerRows(spec: NetworkSpec, s: SparsityReport, targets: LayerRates): LayerRow[] {
  const names = new Map(prunableLayers(spec).map((p) => [p.index, p.name]));
  return s.layers.map((l) => ({
    index: l.index,
    name: names.get(l.index) ?? String(l.index),
    type: l.type,
    weights: l.weights,
    nonzero: l.nonzero,
    sparsity: l.sparsity,
    target: targets.get(l.index) ?? 0,
    bflops: l.flops / 1e9,
    effectiveBflops: l.effectiveFlops / 1e9,
  }));
}

/** An evaluator bound to one network: loads a weights file's arrays and returns top-1. */
export function makeEvaluator(net: Network, source: ImageSource, classes: number) {
  return async (w: WeightsFile): Promise<number> => {
    net.loadWeights(w);
    return (await validate(net, source, classes, 1, true)).top1;
  };
}

function perLayerRates(spec: NetworkSpec, o: PruneOptions, log: Log): LayerRates[] {
  let rates = o.layerRates;
  if (o.mode === 'sensitivity' && !rates) {
    if (!o.sensitivityFile) throw new DarknetError('--mode sensitivity needs --sensitivity FILE (from darknet-ts sensitivity) or --layer-sparsity');
    const scan = parseSensitivityCsv(fs.readFileSync(o.sensitivityFile, 'utf8'), o.sensitivityFile);
    checkScan(spec, scan, o.sensitivityFile);
    const r = ratesFromSensitivity(scan, o.maxDrop ?? 0.005, o.target);
    if (!r.reached) log(`warning: the scan tolerates at most ${(100 * r.total).toFixed(1)}% total sparsity at a ${(100 * (o.maxDrop ?? 0.005)).toFixed(2)} point drop; pruning to that`);
    rates = r.rates;
  }
  return pruneSchedule(spec, { mode: o.mode, target: o.target, rounds: o.rounds, rates });
}

export async function pruneRecipe(o: PruneOptions): Promise<PruneReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (!(o.target > 0 && o.target < 1)) throw new DarknetError(`--target ${o.target}: must be between 0 and 1 (e.g. 0.92)`);
  if (!(o.retrainBatches >= 0) || !Number.isInteger(o.retrainBatches)) throw new DarknetError(`--retrain-batches ${o.retrainBatches}: must be a whole number`);
  if (!(o.lrScale > 0)) throw new DarknetError(`--lr-scale ${o.lrScale}: must be positive`);
  const data = readDataConfig(o.dataFile);
  const spec = loadClassifierSpec(o.cfgFile, data.classes, () => undefined);
  const schedule = perLayerRates(spec, o, log);
  const k = o.kernels ?? (await createKernels(o.backend as never));
  log(`backend: ${k.description}`);

  const shape = { w: spec.net.w, h: spec.net.h, c: spec.net.c };
  let evalSource = o.evalSource;
  if (!evalSource) {
    const paths = readLines(data.valid, 'the validation list');
    evalSource = new ListSource(o.evalImages ? paths.slice(0, o.evalImages) : paths, readLabels(data.labels, data.classes), shape);
  }
  // One training source for every round, so images are decoded (and cached) once.
  const trainSource = o.trainSource ?? new ListSource(readLines(data.train, 'the training list'), readLabels(data.labels, data.classes), shape);
  const evalNet = new Network(withBatch(spec, spec.net.batch), k, { seed: o.seed });
  const evaluate = makeEvaluator(evalNet, evalSource, data.classes);
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.basename(o.cfgFile).replace(/\.cfg$/, '');
  const reportFile = path.join(o.out, REPORT);

  // Resume: rounds already in the report (with their weights on disk) are not redone.
  let report: PruneReport;
  let current: WeightsFile;
  const previous = fs.existsSync(reportFile) ? (JSON.parse(fs.readFileSync(reportFile, 'utf8')) as PruneReport) : null;
  if (previous && previous.cfg === o.cfgFile && previous.target === o.target && previous.rounds === o.rounds && previous.mode === o.mode) {
    report = previous;
    report.history = report.history.filter((r) => fs.existsSync(r.weights));
    const last = report.history[report.history.length - 1];
    current = readWeights(last ? last.weights : o.weights, spec);
    log(`resuming ${o.out}: ${report.history.length} of ${o.rounds} rounds done`);
  } else {
    if (previous) log(`warning: ${reportFile} is from another recipe; starting over`);
    current = readWeights(o.weights, spec);
    const dense = sparsityOf(spec, current);
    const top1 = await evaluate(current);
    report = {
      cfg: o.cfgFile,
      data: o.dataFile,
      start: o.weights,
      mode: o.mode,
      target: o.target,
      rounds: o.rounds,
      retrainBatches: o.retrainBatches,
      lrScale: o.lrScale,
      dense: { top1, sparsity: dense.total.sparsity, nonzero: dense.total.nonzero, totalWeights: dense.total.weights, bflops: dense.total.flops / 1e9 },
      history: [],
    };
    log(`dense: top-1 ${pct(top1)}, ${dense.total.nonzero} non-zero weights of ${dense.total.weights}`);
    saveReport(o.out, report, spec);
  }

  for (let r = report.history.length + 1; r <= o.rounds; r++) {
    if (o.shouldStop?.()) break;
    const started = Date.now();
    const targets = schedule[r - 1];
    log(`round ${r}/${o.rounds}: target ${pct(totalSparsity(spec, targets))} total sparsity ` +
      `(${[...targets].map(([i, s]) => `${i}=${pct(s)}`).join(' ')})`);
    const pruned = applyThreshold(spec, current, fractionRules(targets)).weights;
    const prunedFile = path.join(o.out, `${base}_round${r}.pruned.weights`);
    writeWeights(prunedFile, pruned, spec);
    const top1Pruned = await evaluate(pruned);
    log(`round ${r}: pruned top-1 ${pct(top1Pruned)} (before retraining)`);

    let retrainedFile = prunedFile;
    if (o.retrainBatches > 0) {
      const trained = await trainClassifier({
        dataFile: o.dataFile,
        cfgFile: o.cfgFile,
        weights: prunedFile,
        clear: true,
        freezeZeros: true,
        maxBatches: o.retrainBatches,
        learningRateScale: o.lrScale,
        backupDir: path.join(o.out, 'retrain'),
        backupEvery: Number.MAX_SAFE_INTEGER,
        logEvery: Math.max(1, Math.floor(o.retrainBatches / 5)),
        seed: (o.seed ?? 1) + r,
        kernels: k,
        source: trainSource,
        quiet: o.quiet,
        log: (l) => log(`  ${l}`),
        shouldStop: o.shouldStop,
      });
      if (trained.interrupted) {
        log(`round ${r} interrupted: rounds 1-${r - 1} are saved in ${o.out}; run the same command to resume`);
        break;
      }
      retrainedFile = trained.finalWeights;
    }
    const roundFile = path.join(o.out, `${base}_round${r}.weights`);
    const retrained = readWeights(retrainedFile, spec);
    writeWeights(roundFile, retrained, spec);
    // Every number below comes from the file just saved.
    const saved = readWeights(roundFile, spec);
    const s = sparsityOf(spec, saved);
    const top1Retrained = await evaluate(saved);
    if (top1Retrained < top1Pruned) {
      log(`warning: round ${r}: retraining ended worse (${pct(top1Retrained)}) than the pruned model began (${pct(top1Pruned)}); ` +
        `the learning rate is too high: lower --lr-scale (now ${o.lrScale})`);
    }
    report.history.push({
      round: r,
      weights: roundFile,
      prunedWeights: prunedFile,
      top1Pruned,
      top1Retrained,
      sparsity: s.total.sparsity,
      nonzero: s.total.nonzero,
      totalWeights: s.total.weights,
      compression: s.total.compression,
      bflops: s.total.flops / 1e9,
      effectiveBflops: s.total.effectiveFlops / 1e9,
      seconds: (Date.now() - started) / 1000,
      layers: layerRows(spec, s, targets),
    });
    saveReport(o.out, report, spec);
    log(formatRound(report, report.history[report.history.length - 1]));
    current = saved;
  }
  return report;
}

function pct(x: number, digits = 2): string {
  return `${(100 * x).toFixed(digits)}%`;
}

/** The table printed after each round: per layer, then the total. */
export function formatRound(report: PruneReport, r: RoundReport): string {
  const head = ['layer', 'name', 'weights', 'non-zero', 'kept', 'sparsity', 'BFLOPs', 'eff. BFLOPs'];
  const rows = r.layers.map((l) => [
    String(l.index), l.name, String(l.weights), String(l.nonzero), pct(1 - l.sparsity, 1), pct(l.sparsity, 1), l.bflops.toFixed(4), l.effectiveBflops.toFixed(4),
  ]);
  rows.push(['total', '', String(r.totalWeights), String(r.nonzero), pct(1 - r.sparsity, 1), pct(r.sparsity, 1), r.bflops.toFixed(4), r.effectiveBflops.toFixed(4)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const delta = r.top1Retrained - report.dense.top1;
  return [
    `round ${r.round}/${report.rounds}: ${r.compression.toFixed(1)}x fewer weights, top-1 ${pct(r.top1Pruned)} pruned -> ${pct(r.top1Retrained)} retrained ` +
      `(dense ${pct(report.dense.top1)}, ${delta >= 0 ? '+' : ''}${(100 * delta).toFixed(2)} points), ${formatDuration(r.seconds)}`,
    line(head),
    ...rows.map(line),
  ].join('\n');
}

/** report.json, report.csv (one row per round per layer) and the two plots. */
export function saveReport(out: string, report: PruneReport, spec: NetworkSpec): void {
  atomicWrite(path.join(out, REPORT), JSON.stringify(report, null, 2) + '\n');
  const csv = ['round,layer,name,type,weights,nonzero,sparsity,target,bflops,effective_bflops,top1_pruned,top1_retrained'];
  for (const r of report.history) {
    for (const l of r.layers) {
      csv.push([r.round, l.index, l.name, l.type, l.weights, l.nonzero, l.sparsity, l.target, l.bflops, l.effectiveBflops, r.top1Pruned, r.top1Retrained].join(','));
    }
    csv.push([r.round, 'total', '', '', r.totalWeights, r.nonzero, r.sparsity, '', r.bflops, r.effectiveBflops, r.top1Pruned, r.top1Retrained].join(','));
  }
  atomicWrite(path.join(out, 'report.csv'), csv.join('\n') + '\n');
  if (report.history.length === 0) return;
  const start: [number, number] = [report.dense.sparsity, report.dense.top1];
  atomicWrite(
    path.join(out, 'accuracy.png'),
    renderLineChart({
      title: `${path.basename(report.cfg)}: top-1 over prune rounds (${report.mode})`,
      xLabel: 'total sparsity of conv + connected weights',
      yLabel: 'top-1',
      series: [
        { name: 'pruned', points: [start, ...report.history.map((r) => [r.sparsity, r.top1Pruned] as [number, number])] },
        { name: 'retrained', points: [start, ...report.history.map((r) => [r.sparsity, r.top1Retrained] as [number, number])] },
      ],
    }),
  );
  const layers = prunableLayers(spec);
  atomicWrite(
    path.join(out, 'sparsity.png'),
    renderBarChart({
      title: 'sparsity per layer, by round',
      xLabel: 'layer',
      yLabel: 'sparsity',
      groups: report.history.map((r) => `round ${r.round}`),
      bars: layers.map((l) => ({ label: l.name, values: report.history.map((r) => r.layers.find((x) => x.index === l.index)?.sparsity ?? 0) })),
      yMax: 1,
    }),
  );
}
