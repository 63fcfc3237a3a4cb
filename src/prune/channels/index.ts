import type { NetworkSpec } from '../../cfg/config';
import { DarknetError, excerpt } from '../../errors';
import type { WeightsFile } from '../../io/weights';
import { resolvePrunableLayer } from '../threshold';
import { bnScores, l1Scores, type ChannelScores } from './criteria';
import { channelGraph, type ChannelGraph } from './graph';
import { planChannels, planForFlops, prunableProducers, type ChannelPlan, type KeepRatios, type TieRule } from './plan';
import { shrink, type ShrinkResult } from './surgery';

/**
 * Structured pruning that writes a smaller darknet model: rank filters (criteria.ts), choose
 * what goes (plan.ts, over the channel graph of graph.ts), cut the cfg and weights
 * (surgery.ts); whole residual blocks go by blocks.ts. This file puts the steps together for
 * the command and the library.
 *
 * @example
 *   const spec = parseCfg(cfgText, 'lenet.cfg');
 *   const small = pruneChannels(cfgText, spec, weights, { rule: { kind: 'uniform', keep: 0.5 }, scores: l1Scores(spec, weights) });
 *   fs.writeFileSync('small.cfg', small.cfgText);
 *   writeWeights('small.weights', small.weights, small.spec);
 */

export { CRITERIA, bnScores, l1Scores, taylorScores, type ChannelScores, type Criterion, type TaylorResult } from './criteria';
export { channelGraph, type ChannelGraph } from './graph';
export {
  blockForLayer, lowestBlocks, removeBlocks, residualBlocks, scoreBlocks,
  type BlockRemoval, type BlockScore, type BlockSurgery, type RemovedBlock, type ResidualBlock,
} from './blocks';
export { planChannels, planForFlops, shrunkCost, TIE_RULES, type ChannelPlan, type KeepRatios, type TieRule } from './plan';
export { shrink, type LayerChange, type ShrinkResult } from './surgery';
export { formatChannelReport, modelSize, type ChannelPruneReport, type ModelSize } from './report';
export { evaluatorOn, formatBudget, planForBudget, pruningUnits, SCAN_LEVELS, type BudgetOptions, type BudgetResult, type Evaluator } from './budget';
export { measureSpeed, type Speed, type SpeedOptions } from './speed';
export { channelLoop, formatChannelRound, type ChannelLoopOptions, type ChannelLoopResult, type ChannelModel, type ChannelRoundResult, type ChannelTarget } from './loop';

/** What to keep. */
export type KeepRule =
  /** the same fraction of every prunable conv and connected layer */
  | { kind: 'uniform'; keep: number }
  /** per-layer fractions; layers not listed keep all */
  | { kind: 'layers'; keep: KeepRatios }
  /** a uniform fraction, the largest whose FLOPs are at most `fraction` x dense */
  | { kind: 'flops'; fraction: number };

export interface PruneChannelsOptions {
  rule: KeepRule;
  /** from l1Scores, bnScores or taylorScores */
  scores: ChannelScores;
  /** kept counts a multiple of this (1, 4, 8) */
  roundTo?: number;
  /** filters tied by a [shortcut]: see planChannels */
  tie?: TieRule;
  /** see ShrinkOptions.foldValues */
  foldValues?: ReadonlyMap<number, ArrayLike<number>>;
  /** the new cfg's name in errors */
  file?: string;
}

export interface PruneChannelsResult extends ShrinkResult {
  graph: ChannelGraph;
  plan: ChannelPlan;
  /** the uniform fraction used (uniform and flops rules) */
  keep?: number;
}

export function pruneChannels(
  cfgText: string, spec: NetworkSpec, weights: WeightsFile, o: PruneChannelsOptions,
): PruneChannelsResult {
  const graph = channelGraph(spec);
  const planOptions = { roundTo: o.roundTo, tie: o.tie };
  let plan: ChannelPlan;
  let keep: number | undefined;
  switch (o.rule.kind) {
    case 'uniform': {
      const layers = prunableProducers(graph);
      if (layers.length === 0) throw new DarknetError(`${spec.file}: no convolutional or connected layer has filters that may go`);
      const fraction = o.rule.keep;
      keep = fraction;
      plan = planChannels(spec, graph, o.scores, new Map(layers.map((l) => [l, fraction])), planOptions);
      break;
    }
    case 'layers':
      plan = planChannels(spec, graph, o.scores, o.rule.keep, planOptions);
      break;
    case 'flops': {
      const r = planForFlops(spec, graph, o.scores, o.rule.fraction, planOptions);
      plan = r.plan;
      keep = r.keep;
      break;
    }
  }
  const result = shrink(cfgText, spec, weights, graph, plan, { file: o.file, foldValues: o.foldValues });
  return { ...result, graph, plan, keep };
}

/** Scores by a host-side criterion (`taylor` needs a network and data: see taylorScores). */
export function hostScores(criterion: 'l1' | 'bn', spec: NetworkSpec, w: WeightsFile): { scores: ChannelScores; notes: string[] } {
  if (criterion === 'l1') return { scores: l1Scores(spec, w), notes: [] };
  const { scores, withoutBatchNorm } = bnScores(spec, w);
  const notes = withoutBatchNorm.length
    ? [`bn: layers ${withoutBatchNorm.join(', ')} have no batch norm; their filters are ranked by L1`]
    : [];
  return { scores, notes };
}

/**
 * `--layer-keep conv1=0.3,fc1=0.5` (layers by index or name) -> fractions to keep.
 * @example parseLayerKeep('conv2=0.5,4=0.25', spec); // Map { 2 => 0.5, 4 => 0.25 }
 */
export function parseLayerKeep(text: string, spec: NetworkSpec, what = '--layer-keep'): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new DarknetError(`${what}: '${excerpt(part.trim(), 30)}' is not layer=fraction (e.g. conv1=0.5,fc1=0.25)`);
    const layer = resolvePrunableLayer(spec, part.slice(0, eq), what);
    const raw = part.slice(eq + 1).trim();
    const keep = raw === '' ? NaN : Number(raw);
    if (!(keep >= 0 && keep <= 1)) throw new DarknetError(`${what}: '${excerpt(part.trim(), 30)}': the fraction to keep must be in [0, 1]`);
    if (out.has(layer)) throw new DarknetError(`${what}: layer ${layer} is given twice`);
    out.set(layer, keep);
  }
  return out;
}
