import type { NetworkSpec } from '../cfg/config';
import type { ImageSource } from '../data/loader';
import { evaluate } from '../engine/evaluate';
import { applyMasks, masksFromZeros } from '../engine/masks';
import type { SparseMode } from '../engine/layer';
import type { Network } from '../engine/network';
import { formatDuration, indented, silentReporter, type Reporter } from '../engine/reporter';
import { train, type BatchSource } from '../engine/train';
import type { WeightsFile } from '../io/weights';
import { totalSparsity, type LayerRates } from './schedule';
import { sparsityOf, type SparsityReport } from './stats';
import { applyThreshold, fractionRules, prunableLayers } from './threshold';

/**
 * The sparsification recipe (DESIGN.md §5, Han et al. 2015) on objects: each round
 * thresholds the weights to that round's per-layer sparsity, evaluates, retrains with the
 * zeros frozen, evaluates again. One training and one evaluation network serve every
 * round; nothing here reads or writes a file: `onRound` hands each round's weights to the
 * caller (the `prune` command saves them), and an interrupted round comes back as
 * `partial` so the caller can save it and resume it later.
 */

export interface LayerRow {
  index: number;
  name: string;
  type: string;
  weights: number;
  nonzero: number;
  sparsity: number;
  /** the rate this round asked for */
  target: number;
  /** FLOPs of one image's forward pass, dense and with zero weights skipped */
  flops: number;
  effectiveFlops: number;
}

export interface RoundResult {
  round: number;
  top1Pruned: number;
  top1Retrained: number;
  sparsity: number;
  nonzero: number;
  totalWeights: number;
  compression: number;
  flops: number;
  effectiveFlops: number;
  seconds: number;
  layers: LayerRow[];
}

export interface DenseResult {
  top1: number;
  sparsity: number;
  nonzero: number;
  totalWeights: number;
  flops: number;
}

/** A round stopped during retraining: its pruned accuracy and the weights reached so far. */
export interface PartialRound {
  round: number;
  top1Pruned: number;
  /** the retraining network's weights (header.seen = retraining images so far) */
  weights: WeightsFile;
}

export interface PruneLoopOptions {
  spec: NetworkSpec;
  /** the weights the next round starts from (the dense model, or the last finished round's) */
  start: WeightsFile;
  /** rounds already done (resume); the loop runs rounds done + 1 ... schedule.length */
  done: number;
  /** per round, per prunable layer, the target sparsity */
  schedule: LayerRates[];
  /** the retraining network: its [net] holds the retraining rate and max_batches = retraining batches */
  trainNet: Network;
  /** the evaluation network (any batch size) */
  evalNet: Network;
  batches: BatchSource;
  epochSize: number;
  evalSource: ImageSource;
  /** a round interrupted earlier: retraining continues from its weights */
  resume?: PartialRound;
  signal?: AbortSignal;
  reporter?: Reporter;
  /** skip frozen zeros while retraining (connected layers on k.sparse; default auto) */
  sparse?: SparseMode;
  /** each finished round, with its weights (the caller saves them) */
  onRound(result: RoundResult, weights: WeightsFile): void;
}

export interface PruneLoopResult {
  rounds: RoundResult[];
  /** set when the signal stopped a round during retraining */
  partial?: PartialRound;
  interrupted: boolean;
}

/** Top-1 of `w` on the evaluation network. */
export async function top1Of(net: Network, w: WeightsFile, source: ImageSource, signal?: AbortSignal): Promise<number> {
  net.loadWeights(w);
  return (await evaluate(net, source, { signal })).top1;
}

export async function denseResult(spec: NetworkSpec, evalNet: Network, w: WeightsFile, source: ImageSource): Promise<DenseResult> {
  const s = sparsityOf(spec, w);
  const top1 = await top1Of(evalNet, w, source);
  return { top1, sparsity: s.total.sparsity, nonzero: s.total.nonzero, totalWeights: s.total.weights, flops: s.total.flops };
}

export async function pruneLoop(o: PruneLoopOptions): Promise<PruneLoopResult> {
  const reporter = o.reporter ?? silentReporter;
  const rounds: RoundResult[] = [];
  let current = o.start;
  const total = o.schedule.length;
  const retrainBatches = o.trainNet.config.maxBatches;
  for (let r = o.done + 1; r <= total; r++) {
    if (o.signal?.aborted) return { rounds, interrupted: true };
    const started = Date.now();
    const targets = o.schedule[r - 1];
    const pruned = applyThreshold(o.spec, current, fractionRules(targets)).weights;
    let top1Pruned: number;
    if (o.resume && o.resume.round === r) {
      top1Pruned = o.resume.top1Pruned;
      o.trainNet.loadWeights(o.resume.weights);
      reporter.info(`round ${r}/${total}: resuming retraining at batch ${o.trainNet.currentBatch()} of ${retrainBatches}`);
    } else {
      reporter.info(`round ${r}/${total}: target ${pct(totalSparsity(o.spec, targets))} total sparsity ` +
        `(${[...targets].map(([i, s]) => `${i}=${pct(s)}`).join(' ')})`);
      top1Pruned = await top1Of(o.evalNet, pruned, o.evalSource);
      reporter.info(`round ${r}: pruned top-1 ${pct(top1Pruned)} (before retraining)`);
      o.trainNet.loadWeights(pruned);
      o.trainNet.seen = 0;
    }
    // The mask comes from the pruned weights' zeros: they and their momentum stay 0, and
    // layers sparse enough retrain on the sparse kernels (faster as the rounds go on).
    applyMasks(o.trainNet, masksFromZeros(o.trainNet, pruned));
    o.trainNet.setSparse(o.sparse ?? 'auto');
    if (retrainBatches > 0) {
      const outcome = await train(o.trainNet, o.batches, {
        maxBatches: retrainBatches,
        epochSize: o.epochSize,
        signal: o.signal,
        logEvery: Math.max(1, Math.floor(retrainBatches / 5)),
        reporter: indented(reporter),
        label: `round ${r} retrain`,
      });
      if (outcome.interrupted) {
        return { rounds, interrupted: true, partial: { round: r, top1Pruned, weights: o.trainNet.exportWeights() } };
      }
    }
    const retrained = retrainBatches > 0 ? o.trainNet.exportWeights() : pruned;
    retrained.header = { ...retrained.header, seen: current.header.seen };
    const s = sparsityOf(o.spec, retrained);
    const top1Retrained = await top1Of(o.evalNet, retrained, o.evalSource);
    if (top1Retrained < top1Pruned) {
      reporter.warn(`round ${r}: retraining ended worse (${pct(top1Retrained)}) than the pruned model began (${pct(top1Pruned)}); ` +
        `the learning rate is too high: lower --lr-scale`);
    }
    const result: RoundResult = {
      round: r,
      top1Pruned,
      top1Retrained,
      sparsity: s.total.sparsity,
      nonzero: s.total.nonzero,
      totalWeights: s.total.weights,
      compression: s.total.compression,
      flops: s.total.flops,
      effectiveFlops: s.total.effectiveFlops,
      seconds: (Date.now() - started) / 1000,
      layers: layerRows(o.spec, s, targets),
    };
    rounds.push(result);
    o.onRound(result, retrained);
    current = retrained;
  }
  return { rounds, interrupted: false };
}

/** Per-layer rows of a weights file, with the targets the round asked for. */
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
    flops: l.flops,
    effectiveFlops: l.effectiveFlops,
  }));
}

export function pct(x: number, digits = 2): string {
  return `${(100 * x).toFixed(digits)}%`;
}

/** MFLOPs for MNIST-sized nets, BFLOPs past a billion. */
export function formatFlops(flops: number): string {
  return flops >= 1e9 ? `${(flops / 1e9).toFixed(3)} BFLOPs` : `${(flops / 1e6).toFixed(3)} MFLOPs`;
}

/** The table printed after each round: per layer, then the total. */
export function formatRound(dense: DenseResult, total: number, r: RoundResult): string {
  const unit = dense.flops >= 1e9 ? 1e9 : 1e6;
  const unitName = unit === 1e9 ? 'BFLOPs' : 'MFLOPs';
  const head = ['layer', 'name', 'weights', 'non-zero', 'kept', 'sparsity', unitName, `eff. ${unitName}`];
  const rows = r.layers.map((l) => [
    String(l.index), l.name, String(l.weights), String(l.nonzero), pct(1 - l.sparsity, 1), pct(l.sparsity, 1), (l.flops / unit).toFixed(3), (l.effectiveFlops / unit).toFixed(3),
  ]);
  rows.push(['total', '', String(r.totalWeights), String(r.nonzero), pct(1 - r.sparsity, 1), pct(r.sparsity, 1), (r.flops / unit).toFixed(3), (r.effectiveFlops / unit).toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const delta = r.top1Retrained - dense.top1;
  return [
    `round ${r.round}/${total}: ${r.compression.toFixed(1)}x fewer weights, top-1 ${pct(r.top1Pruned)} pruned -> ${pct(r.top1Retrained)} retrained ` +
      `(dense ${pct(dense.top1)}, ${delta >= 0 ? '+' : ''}${(100 * delta).toFixed(2)} points), ${formatDuration(r.seconds)}`,
    line(head),
    ...rows.map(line),
  ].join('\n');
}
