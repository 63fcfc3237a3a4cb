import type { NetworkSpec } from '../../cfg/config';
import type { ImageSource } from '../../data/loader';
import { Network } from '../../engine/network';
import { formatDuration, indented, silentReporter, type Reporter } from '../../engine/reporter';
import { train, type BatchSource } from '../../engine/train';
import { serializeWeights, type WeightsFile } from '../../io/weights';
import type { Kernels } from '../../kernels/types';
import { pct } from '../recipe';
import { prunableLayers } from '../threshold';
import { evaluatorOn, planForBudget, type BudgetResult } from './budget';
import { filterCount, isProducer, taylorScores, type ChannelScores, type Criterion } from './criteria';
import { channelGraph } from './graph';
import { blockLayers, lowestBlocks, removeBlocks, residualBlocks, scoreBlocks, type RemovedBlock } from './blocks';
import { hostScores } from './index';
import { planChannels, planForFlops, prunableProducers, type ChannelPlan, type TieRule } from './plan';
import { measureSpeed, type Speed, type SpeedOptions } from './speed';
import { shrink } from './surgery';

/**
 * The iterative channel-pruning loop (`prune --structure channel`): each round scores the
 * current model's filters, removes a step of them (a new, smaller spec + weights, built in
 * memory by surgery.ts), fine-tunes that smaller network, evaluates it and measures its
 * speed. Nothing here reads or writes a file: `onRound` hands each round's model (cfg text,
 * spec, weights) to the caller, which saves `<cfg>_round<N>.cfg` + `.weights`.
 *
 * Schedule: the final target is reached geometrically, so every round cuts by the same
 * factor: round r of N keeps FLOPs <= F^(r/N) x dense (`flops`), or F^(r/N) of every
 * layer's dense filters (`keep`). With `layers` (whole residual blocks, blocks.ts), round r
 * first removes blocks until ceil(layers x r / N) are gone, lowest criterion score first,
 * then chooses the filters in the network without them.
 *
 * Layers are numbered as in the dense cfg in every result (rows, blocks), so that rounds
 * compare layer by layer after blocks have gone; a round's budget ratios are numbered as
 * its own cfg.
 */

export type ChannelTarget =
  /** FLOPs of the final model at most `fraction` x dense */
  | { kind: 'flops'; fraction: number }
  /** every prunable layer keeps `fraction` of its dense filters at the end */
  | { kind: 'keep'; fraction: number };

/** One model of the loop: what the caller writes as `<cfg>_round<N>.cfg` + `.weights`. */
export interface ChannelModel {
  cfgText: string;
  spec: NetworkSpec;
  weights: WeightsFile;
}

export interface ChannelLayerRow {
  index: number;
  name: string;
  type: string;
  filtersDense: number;
  filters: number;
  params: number;
  flops: number;
}

/** Size, accuracy and measured speed of one model. */
export interface ChannelModelResult {
  params: number;
  flops: number;
  /** bytes of its .weights file */
  bytes: number;
  top1: number;
  /** measured in memory on this machine (NaN when measuring was off) */
  speed: Speed;
  layers: ChannelLayerRow[];
}

export interface ChannelRoundResult extends ChannelModelResult {
  round: number;
  /** top-1 straight after the surgery, before fine-tuning (`top1` is after) */
  top1Pruned: number;
  /** what the round aimed at: FLOPs x dense, or the fraction of dense filters kept */
  target: number;
  /** greedy allocation: the per-layer keep fractions chosen this round (of the round's input) and uniform's */
  budget?: { ratios: Array<[number, number]>; uniformKeep?: number };
  /** `layers`: the residual blocks removed this round (layers numbered as in the dense cfg) */
  blocks?: RemovedBlock[];
  seconds: number;
}

export interface ChannelLoopOptions extends ChannelModel {
  kernels: Kernels;
  target: ChannelTarget;
  rounds: number;
  /** `flops` targets: per-layer ratios from a sensitivity scan (greedy), or one fraction for all */
  allocation?: 'greedy' | 'uniform';
  /** whole residual blocks to remove over the rounds (`--layers N`), ceil(N x r / rounds) by round r */
  layers?: number;
  criterion: Criterion;
  roundTo?: number;
  /** filters tied by a [shortcut]: see planChannels */
  tie?: TieRule;
  /** fine-tuning batches per round; the rate is the cfg's x lrScale, poly/step as the cfg says, ending at this batch */
  retrainBatches: number;
  lrScale: number;
  batches: BatchSource;
  epochSize: number;
  evalSource: ImageSource;
  /** images for the greedy scan (default: evalSource) */
  scanSource?: ImageSource;
  /** taylor: training batches per scoring */
  taylorBatches?: number;
  /** false: do not measure speed (NaN in the results) */
  speed?: SpeedOptions | false;
  seed?: number;
  signal?: AbortSignal;
  reporter?: Reporter;
  /** each finished round with its model (the caller saves it) */
  onRound(result: ChannelRoundResult, model: ChannelModel): void;
  /** the dense model's result, before the first round */
  onDense?(result: ChannelModelResult): void;
}

export interface ChannelLoopResult {
  dense: ChannelModelResult;
  rounds: ChannelRoundResult[];
  /** the signal stopped the loop; the finished rounds were handed to onRound */
  interrupted: boolean;
}

/**
 * Per-layer rows (every layer with parameters or FLOPs) of a model against the dense one;
 * `toDense` (when blocks were removed): per layer of the model, its index in the dense spec.
 */
export function channelRows(dense: NetworkSpec, spec: NetworkSpec, toDense?: readonly number[]): ChannelLayerRow[] {
  const names = new Map(prunableLayers(dense).map((p) => [p.index, p.name]));
  const rows: ChannelLayerRow[] = [];
  spec.layers.forEach((l, i) => {
    const params = l.params.reduce((s, p) => s + p.size, 0);
    if (params === 0 && l.flops === 0) return;
    const producer = isProducer(l.type);
    const d = toDense ? toDense[i] : i;
    rows.push({
      index: d, name: names.get(d) ?? l.type, type: l.type, filtersDense: producer ? filterCount(dense, d) : 0,
      filters: producer ? filterCount(spec, i) : 0, params, flops: l.flops,
    });
  });
  return rows;
}

function sizeOf(dense: NetworkSpec, m: ChannelModel, toDense?: readonly number[]): Omit<ChannelModelResult, 'top1' | 'speed'> {
  return {
    params: m.spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0),
    flops: m.spec.layers.reduce((s, l) => s + l.flops, 0),
    bytes: serializeWeights(m.weights, m.spec).length,
    layers: channelRows(dense, m.spec, toDense),
  };
}

const NO_SPEED: Speed = { inferImagesPerSecond: NaN, trainImagesPerSecond: NaN, latencyMs: NaN };

export async function channelLoop(o: ChannelLoopOptions): Promise<ChannelLoopResult> {
  const reporter = o.reporter ?? silentReporter;
  const k = o.kernels;
  const evaluator = evaluatorOn(k, o.evalSource, 100, o.signal);
  const speedOf = (m: ChannelModel) => (o.speed === false ? NO_SPEED : measureSpeed(m.spec, m.weights, k, { seed: o.seed, ...(o.speed ?? {}) }));
  const denseSpec = o.spec;
  const denseFlops = denseSpec.layers.reduce((s, l) => s + l.flops, 0);
  // refused before any work when the dense network has fewer blocks that may go
  if (o.layers !== undefined) lowestBlocks(denseSpec, residualBlocks(denseSpec).map((block) => ({ block, score: 0, by: o.criterion })), o.layers);
  const dense: ChannelModelResult = { ...sizeOf(denseSpec, o), top1: await evaluator(o.spec, o.weights), speed: speedOf(o) };
  o.onDense?.(dense);
  reporter.info(`dense: top-1 ${pct(dense.top1)}, ${dense.params} parameters, ${(dense.flops / 1e6).toFixed(3)} MFLOPs, ${formatSpeed(dense.speed)}`);

  const rounds: ChannelRoundResult[] = [];
  let current: ChannelModel = { cfgText: o.cfgText, spec: o.spec, weights: o.weights };
  // per layer of `current`: its index in the dense spec
  let toDense = denseSpec.layers.map((_, i) => i);
  let blocksGone = 0;
  for (let r = 1; r <= o.rounds; r++) {
    if (o.signal?.aborted) return { dense, rounds, interrupted: true };
    const started = Date.now();
    const target = Math.pow(o.target.fraction, r / o.rounds);
    let scores = await scoresOf(current, o, r === 1);
    let blocks: RemovedBlock[] | undefined;
    const due = o.layers === undefined ? 0 : Math.min(o.layers, Math.ceil((o.layers * r) / o.rounds)) - blocksGone;
    if (due > 0) {
      const chosen = lowestBlocks(current.spec, scoreBlocks(current.spec, current.weights, residualBlocks(current.spec), o.criterion, scores), due);
      const cut = removeBlocks(current.cfgText, current.spec, current.weights, chosen.map((c) => ({ block: c.block })), { file: o.spec.file });
      for (const n of cut.notes) reporter.warn(n);
      blocks = cut.removed.map((b) => ({ ...b, from: toDense[b.from], shortcut: toDense[b.shortcut] }));
      reporter.info(`round ${r}/${o.rounds}: removed ${blocks.length} residual block${blocks.length === 1 ? '' : 's'} (lowest ${o.criterion} score first): ` +
        blocks.map((b) => `${blockLayers(b)}${b.exact ? '' : ' (approximate)'}`).join(', ') + ' (numbered as in the dense cfg)');
      const next: number[] = [];
      cut.layerMap.forEach((j, i) => { if (j >= 0) next[j] = toDense[i]; });
      toDense = next;
      current = { cfgText: cut.cfgText, spec: cut.spec, weights: cut.weights };
      blocksGone += blocks.length;
      scores = await scoresOf(current, o);
    }
    const g = channelGraph(current.spec);
    let plan: ChannelPlan;
    let budget: ChannelRoundResult['budget'];
    if (o.target.kind === 'keep') {
      // every layer towards round(dense filters x target), from what it has now
      const ratios = new Map(prunableProducers(g).map((l) => [l, Math.min(1, Math.max(1, Math.round(filterCount(denseSpec, toDense[l]) * target)) / filterCount(current.spec, l))]));
      plan = planChannels(current.spec, g, scores, ratios, { roundTo: o.roundTo, tie: o.tie });
    } else {
      const currentFlops = current.spec.layers.reduce((s, l) => s + l.flops, 0);
      const fraction = Math.min(1, (target * denseFlops) / currentFlops);
      if (o.allocation === 'uniform') {
        plan = planForFlops(current.spec, g, scores, fraction, { roundTo: o.roundTo, tie: o.tie }).plan;
      } else {
        let chosen: BudgetResult;
        try {
          chosen = await planForBudget(current.cfgText, current.spec, current.weights, g, {
            flops: fraction, scores, evaluator: evaluatorOn(k, o.scanSource ?? o.evalSource, 100, o.signal), roundTo: o.roundTo, tie: o.tie,
            reporter: indented(reporter), signal: o.signal,
          });
        } catch (e) {
          if (o.signal?.aborted) return { dense, rounds, interrupted: true };
          throw e;
        }
        plan = chosen.plan;
        budget = { ratios: [...chosen.ratios], uniformKeep: chosen.uniform?.keep };
      }
    }
    const small = shrink(current.cfgText, current.spec, current.weights, g, plan, { file: o.spec.file });
    const pruned: ChannelModel = { cfgText: small.cfgText, spec: small.spec, weights: small.weights };
    let top1Pruned: number;
    try {
      top1Pruned = await evaluator(pruned.spec, pruned.weights);
    } catch (e) {
      if (o.signal?.aborted) return { dense, rounds, interrupted: true };
      throw e;
    }
    reporter.info(`round ${r}/${o.rounds}: ${o.target.kind === 'flops' ? `FLOPs <= ${target.toFixed(3)} x dense` : `keep ${pct(target, 1)} of the dense filters`}; ` +
      `pruned top-1 ${pct(top1Pruned)} (before fine-tuning)`);

    const tuned = await fineTune(pruned, o, r, reporter);
    if (!tuned) return { dense, rounds, interrupted: true };
    const model: ChannelModel = { ...pruned, weights: tuned };
    const result: ChannelRoundResult = {
      round: r, ...sizeOf(denseSpec, model, toDense), top1Pruned, top1: await evaluator(model.spec, model.weights), speed: speedOf(model),
      target, budget, blocks, seconds: (Date.now() - started) / 1000,
    };
    if (result.top1 < top1Pruned) reporter.warn(`round ${r}: fine-tuning ended worse (${pct(result.top1)}) than the pruned model began (${pct(top1Pruned)}); lower --lr-scale`);
    rounds.push(result);
    o.onRound(result, model);
    current = model;
  }
  return { dense, rounds, interrupted: false };
}

/**
 * The criterion's scores on the current model (taylor: a training network of its shape).
 * Its notes (layers without batch norm ranked by L1) hold for every round: said once, for
 * the dense model, in its numbering.
 */
async function scoresOf(m: ChannelModel, o: ChannelLoopOptions, dense = false): Promise<ChannelScores> {
  if (o.criterion !== 'taylor') {
    const h = hostScores(o.criterion, m.spec, m.weights);
    if (dense) for (const n of h.notes) o.reporter?.warn(n);
    return h.scores;
  }
  const net = new Network(m.spec, o.kernels, { seed: o.seed });
  try {
    net.loadWeights(m.weights);
    return (await taylorScores(net, o.batches, o.taylorBatches ?? 10)).scores;
  } finally {
    net.dispose();
  }
}

/** Fine-tunes a round's model; null when interrupted. */
async function fineTune(m: ChannelModel, o: ChannelLoopOptions, round: number, reporter: Reporter): Promise<WeightsFile | null> {
  if (o.retrainBatches === 0) return m.weights;
  const spec: NetworkSpec = { ...m.spec, net: { ...m.spec.net, learningRate: m.spec.net.learningRate * o.lrScale, maxBatches: o.retrainBatches } };
  const net = new Network(spec, o.kernels, { seed: o.seed });
  try {
    net.loadWeights(m.weights);
    net.seen = 0;
    const outcome = await train(net, o.batches, {
      maxBatches: o.retrainBatches, epochSize: o.epochSize, signal: o.signal, logEvery: Math.max(1, Math.floor(o.retrainBatches / 5)),
      reporter: indented(reporter), label: `round ${round} fine-tune`,
    });
    if (outcome.interrupted) return null;
    const w = net.exportWeights();
    w.header = { ...w.header, seen: m.weights.header.seen };
    return w;
  } finally {
    net.dispose();
  }
}

export function formatSpeed(s: Speed): string {
  if (!Number.isFinite(s.inferImagesPerSecond)) return 'speed not measured';
  return `infer ${Math.round(s.inferImagesPerSecond)} img/s, train ${Math.round(s.trainImagesPerSecond)} img/s, latency ${s.latencyMs.toFixed(3)} ms`;
}

/** The table printed after each round: per layer filters dense -> now, then totals, top-1 and speed against dense. */
export function formatChannelRound(dense: ChannelModelResult, total: number, r: ChannelRoundResult): string {
  const unit = dense.flops >= 1e9 ? 1e9 : 1e6;
  const unitName = unit === 1e9 ? 'BFLOPs' : 'MFLOPs';
  const head = ['layer', 'name', 'filters', 'params', unitName];
  const rows = r.layers.map((l) => [
    String(l.index), l.name, l.filtersDense ? (l.filtersDense === l.filters ? String(l.filters) : `${l.filtersDense} -> ${l.filters}`) : '',
    String(l.params), (l.flops / unit).toFixed(3),
  ]);
  rows.push(['total', '', '', String(r.params), (r.flops / unit).toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const x = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  const delta = r.top1 - dense.top1;
  const speed = Number.isFinite(r.speed.inferImagesPerSecond)
    ? `\nspeed: infer ${Math.round(r.speed.inferImagesPerSecond)} img/s (${x(r.speed.inferImagesPerSecond, dense.speed.inferImagesPerSecond)} dense), ` +
      `train ${Math.round(r.speed.trainImagesPerSecond)} img/s (${x(r.speed.trainImagesPerSecond, dense.speed.trainImagesPerSecond)}), ` +
      `latency ${r.speed.latencyMs.toFixed(3)} ms (dense ${dense.speed.latencyMs.toFixed(3)})`
    : '';
  return [
    `round ${r.round}/${total}: ${x(dense.params, r.params)} fewer parameters, ${x(dense.flops, r.flops)} fewer FLOPs, ${r.bytes} bytes; ` +
      `top-1 ${pct(r.top1Pruned)} pruned -> ${pct(r.top1)} fine-tuned (dense ${pct(dense.top1)}, ${delta >= 0 ? '+' : ''}${(100 * delta).toFixed(2)} points), ${formatDuration(r.seconds)}`,
    line(head),
    ...rows.map(line),
  ].join('\n') + speed;
}
