import type { NetworkSpec } from '../../cfg/config';
import type { ImageSource } from '../../data/loader';
import { evaluate } from '../../engine/evaluate';
import { Network, withBatch } from '../../engine/network';
import { silentReporter, type Reporter } from '../../engine/reporter';
import { DarknetError } from '../../errors';
import type { WeightsFile } from '../../io/weights';
import type { Kernels } from '../../kernels/types';
import type { ChannelScores } from './criteria';
import type { ChannelGraph } from './graph';
import { layerName } from './layers';
import { planChannels, planForFlops, prunableProducers, shrunkCost, type ChannelPlan, type KeepRatios, type PlanOptions, type TieRule } from './plan';
import { measureSpeed } from './speed';
import { shrink } from './surgery';

/**
 * A FLOPs or latency budget met with per-layer keep ratios (issue 9, item 5: AMC's search,
 * done simply, as NetAdapt does it). A quick sensitivity scan prunes each unit alone to each
 * level and measures top-1 (and, for a latency budget, batch-1 latency) without
 * fine-tuning; then a greedy walk lowers, step by step, the unit whose next level costs the
 * least top-1 per FLOP (or millisecond) saved, measured on the combined model, until the
 * budget is met. A unit is one prunable layer, or the layers a [shortcut] ties together
 * (they only lose channels together).
 */

/** Keep fractions the scan tries, in the order the greedy walk takes them. */
export const SCAN_LEVELS: readonly number[] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05];

/** Top-1 of a model (spec + weights) on a fixed set of images. */
export type Evaluator = (spec: NetworkSpec, weights: WeightsFile) => Promise<number>;

/**
 * The evaluator on `source`'s images, a fresh network per model (shapes change per model).
 * @example const top1 = await evaluatorOn(k, validImages, 100)(small.spec, small.weights);
 */
export function evaluatorOn(k: Kernels, source: ImageSource, batch = 100, signal?: AbortSignal): Evaluator {
  return async (spec, weights) => {
    const net = new Network(withBatch(spec, Math.min(batch, source.count)), k);
    try {
      net.loadWeights(weights);
      return (await evaluate(net, source, { signal })).top1;
    } finally {
      net.dispose();
    }
  };
}

/** The producer layers that lose channels together (tied by [shortcut]s), each unit ascending. */
export function pruningUnits(g: ChannelGraph): number[][] {
  const layers = prunableProducers(g);
  const unitOfClass = new Map<number, number>();
  const parent = layers.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  layers.forEach((layer, i) => {
    for (const id of g.producers.get(layer)!) {
      const cls = g.classOf(id);
      const other = unitOfClass.get(cls);
      if (other === undefined) unitOfClass.set(cls, i);
      else parent[find(i)] = find(other);
    }
  });
  const units = new Map<number, number[]>();
  layers.forEach((layer, i) => units.set(find(i), [...(units.get(find(i)) ?? []), layer]));
  return [...units.values()];
}

/** One unit at one level in the scan. */
export interface ScanPoint {
  keep: number;
  top1: number;
  /** FLOPs of the whole model with only this unit pruned */
  flops: number;
  /** batch-1 latency of that model (latency budgets only) */
  latencyMs?: number;
}

export interface UnitScan {
  layers: number[];
  points: ScanPoint[];
}

export interface BudgetOptions {
  /** keep FLOPs at most this fraction of the given model's ... */
  flops?: number;
  /** ... or batch-1 latency at most this many milliseconds (measured) */
  latencyMs?: number;
  scores: ChannelScores;
  evaluator: Evaluator;
  /** latency budgets: the kernels to measure on */
  kernels?: Kernels;
  /** latency budgets: batch-1 ms of a model (default: measured on `kernels`, 20 passes) */
  measureLatency?: (spec: NetworkSpec, weights: WeightsFile) => number;
  roundTo?: number;
  /** filters tied by a [shortcut]: see planChannels */
  tie?: TieRule;
  levels?: readonly number[];
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface BudgetResult {
  plan: ChannelPlan;
  /** the per-layer keep fractions chosen (every prunable layer; 1 = untouched) */
  ratios: Map<number, number>;
  flops: number;
  /** the uniform fraction that meets the same FLOPs budget, its FLOPs and top-1 before fine-tuning (for the report) */
  uniform?: { keep: number; flops: number; top1: number };
  /** measured batch-1 latency of the dense and the chosen model (latency budgets) */
  latencyMs?: { dense: number; chosen: number };
  top1: number;
  scan: UnitScan[];
}

/**
 * The per-layer plan that meets a FLOPs or latency budget, chosen greedily from a scan.
 * @example
 *   const r = await planForBudget(spec, w, channelGraph(spec), { flops: 0.2, scores, evaluator: evaluatorOn(k, images) });
 *   shrink(cfgText, spec, w, g, r.plan);
 */
export async function planForBudget(
  cfgText: string, spec: NetworkSpec, weights: WeightsFile, g: ChannelGraph, o: BudgetOptions,
): Promise<BudgetResult> {
  const reporter = o.reporter ?? silentReporter;
  if ((o.flops === undefined) === (o.latencyMs === undefined)) throw new Error('planForBudget: give flops or latencyMs');
  if (o.flops !== undefined && !(o.flops > 0 && o.flops <= 1)) throw new DarknetError(`--flops ${o.flops} must be in (0, 1]`);
  if (o.latencyMs !== undefined && !(o.latencyMs > 0)) throw new DarknetError(`--latency-ms ${o.latencyMs} must be > 0`);
  if (o.latencyMs !== undefined && !o.kernels && !o.measureLatency) throw new Error('planForBudget: a latency budget needs kernels to measure on');
  const planOptions: PlanOptions = { roundTo: o.roundTo, tie: o.tie };
  const levels = o.levels ?? SCAN_LEVELS;
  const units = pruningUnits(g);
  if (units.length === 0) throw new DarknetError(`${spec.file}: no convolutional or connected layer has filters that may go`);
  const denseFlops = spec.layers.reduce((s, l) => s + l.flops, 0);
  const latencyOf = o.measureLatency ?? ((s: NetworkSpec, w: WeightsFile) => measureSpeed(s, w, o.kernels!, { only: ['latencyMs'], passes: 20, seconds: 0.2 }).latencyMs);

  // The scan: each unit alone at each level.
  const baseTop1 = await o.evaluator(spec, weights);
  const denseLatency = o.latencyMs !== undefined ? latencyOf(spec, weights) : undefined;
  const scan: UnitScan[] = [];
  for (const layers of units) {
    const points: ScanPoint[] = [];
    for (const keep of levels) {
      if (o.signal?.aborted) throw new DarknetError('interrupted during the sensitivity scan');
      const plan = planChannels(spec, g, o.scores, new Map(layers.map((l) => [l, keep])), planOptions);
      const small = shrink(cfgText, spec, weights, g, plan);
      const point: ScanPoint = { keep, top1: await o.evaluator(small.spec, small.weights), flops: shrunkCost(spec, g, plan).flops };
      if (denseLatency !== undefined) point.latencyMs = latencyOf(small.spec, small.weights);
      points.push(point);
    }
    scan.push({ layers, points });
    reporter.info(`scan ${layers.map((l) => layerName(spec, l)).join(' + ')}: top-1 ` +
      points.map((p) => `${p.keep}=${(100 * p.top1).toFixed(1)}`).join(' '));
  }

  // The greedy walk (NetAdapt-like). The cost of a state is its FLOPs (exact, from shapes) or
  // its latency estimated as dense minus each unit's own saving (the scan's, assumed
  // additive). Each step tries every unit one level further ON THE COMBINED MODEL (isolated
  // drops do not add up: two layers each harmless alone can break the model together) and
  // takes the one losing the least top-1 per unit of cost saved.
  const level = units.map(() => -1); // index into levels; -1 = keep all
  const ratiosOf = (lv: number[]) => new Map(units.flatMap((layers, u) => layers.map((l) => [l, lv[u] < 0 ? 1 : levels[lv[u]]] as [number, number])));
  const costOf = (lv: number[]): number => {
    if (o.flops !== undefined) return shrunkCost(spec, g, planChannels(spec, g, o.scores, ratiosOf(lv), planOptions)).flops;
    return lv.reduce((s, i, u) => s - (i < 0 ? 0 : denseLatency! - scan[u].points[i].latencyMs!), denseLatency!);
  };
  const top1Cache = new Map<string, number>();
  const top1Of = async (lv: number[]): Promise<number> => {
    const key = lv.join();
    if (!top1Cache.has(key)) {
      if (o.signal?.aborted) throw new DarknetError('interrupted during the budget search');
      const small = shrink(cfgText, spec, weights, g, planChannels(spec, g, o.scores, ratiosOf(lv), planOptions));
      top1Cache.set(key, await o.evaluator(small.spec, small.weights));
    }
    return top1Cache.get(key)!;
  };
  top1Cache.set(level.join(), baseTop1);
  let budget = o.flops !== undefined ? o.flops * denseFlops : o.latencyMs!;
  let measured: number | undefined;
  for (let attempt = 0; ; attempt++) {
    let cost = costOf(level);
    while (cost > budget) {
      const now = await top1Of(level);
      let best: { u: number; score: number; cost: number } | null = null;
      for (let u = 0; u < units.length; u++) {
        const next = level[u] + 1;
        if (next >= levels.length) continue;
        const lv = level.slice();
        lv[u] = next;
        const c = costOf(lv);
        const saved = cost - c;
        // no saving (rounding kept the count): a free step, taken only when nothing else is left
        const score = saved > 0 ? (Math.max(0, now - (await top1Of(lv))) + 1e-6) / saved : Infinity;
        if (!best || score < best.score) best = { u, score, cost: c };
      }
      if (!best) {
        const what = o.flops !== undefined ? `--flops ${o.flops}` : `--latency-ms ${o.latencyMs}`;
        throw new DarknetError(`${what}: every layer at its smallest scanned level (keep ${levels[levels.length - 1]}) still costs ${o.flops !== undefined ? `${(cost / denseFlops).toFixed(3)} x the dense FLOPs` : `${cost.toFixed(3)} ms`}`);
      }
      level[best.u]++;
      cost = best.cost;
    }
    if (o.latencyMs === undefined) break;
    // A latency budget is checked by measuring the chosen model; past it, aim lower and walk on.
    const plan = planChannels(spec, g, o.scores, ratiosOf(level), planOptions);
    const small = shrink(cfgText, spec, weights, g, plan);
    measured = latencyOf(small.spec, small.weights);
    reporter.info(`latency budget ${o.latencyMs} ms: estimated ${cost.toFixed(3)} ms, measured ${measured.toFixed(3)} ms`);
    if (measured <= o.latencyMs) break;
    if (attempt >= 3) {
      reporter.warn(`--latency-ms ${o.latencyMs}: the closest model found measures ${measured.toFixed(3)} ms after ${attempt + 1} tries; a lower --latency-ms aims further`);
      break;
    }
    budget *= o.latencyMs / measured;
  }

  const ratios = ratiosOf(level);
  const plan = planChannels(spec, g, o.scores, ratios, planOptions);
  const flops = shrunkCost(spec, g, plan).flops;
  const small = shrink(cfgText, spec, weights, g, plan);
  const result: BudgetResult = { plan, ratios, flops, top1: await o.evaluator(small.spec, small.weights), scan };
  if (o.flops !== undefined) {
    const u = planForFlops(spec, g, o.scores, o.flops, planOptions);
    const uniform = shrink(cfgText, spec, weights, g, u.plan);
    result.uniform = { keep: u.keep, flops: u.flops, top1: await o.evaluator(uniform.spec, uniform.weights) };
  } else {
    result.latencyMs = { dense: denseLatency!, chosen: measured! };
  }
  return result;
}

/** The chosen ratios against uniform, one line per layer, for the reports. */
export function formatBudget(spec: NetworkSpec, r: BudgetResult): string {
  const denseFlops = spec.layers.reduce((s, l) => s + l.flops, 0);
  const lines = [`per-layer keep ratios chosen by the sensitivity scan (greedy: least top-1 lost per ${r.latencyMs ? 'ms' : 'FLOP'} saved):`];
  for (const [layer, keep] of r.ratios) {
    lines.push(`  ${layerName(spec, layer).padEnd(24)} keep ${(100 * keep).toFixed(0).padStart(3)}%` + (r.uniform ? `   (uniform: ${(100 * r.uniform.keep).toFixed(1)}%)` : ''));
  }
  lines.push(`  FLOPs ${(r.flops / denseFlops).toFixed(3)} x dense` + (r.uniform ? ` (uniform: ${(r.uniform.flops / denseFlops).toFixed(3)} x)` : '') +
    `, top-1 on the scan images before fine-tuning ${(100 * r.top1).toFixed(2)}%` + (r.uniform ? ` (uniform: ${(100 * r.uniform.top1).toFixed(2)}%)` : ''));
  if (r.latencyMs) lines.push(`  latency (batch 1) ${r.latencyMs.dense.toFixed(3)} -> ${r.latencyMs.chosen.toFixed(3)} ms`);
  return lines.join('\n') + '\n';
}
