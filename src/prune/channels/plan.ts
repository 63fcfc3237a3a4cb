import type { NetworkSpec } from '../../cfg/config';
import { DarknetError } from '../../errors';
import type { ChannelScores } from './criteria';
import { inputChannels, whyProtected, type ChannelGraph } from './graph';
import { blockForLayer } from './blocks';
import { layerName } from './layers';

/**
 * Which channels go: from a fraction to keep per layer and the criterion's scores, each
 * layer proposes its lowest-scored filters; a channel class (filters tied by a [shortcut])
 * goes only when EVERY member is proposed (the union of the kept sets, as the slimming
 * forks and NNI do), and never when protected (graph.ts). With `tie: 'group'` the layers
 * tied by shortcuts are ranked together instead (torch-pruning's group importance): each
 * class scores the mean over its filters of score / its layer's mean score, and the group
 * keeps the fraction asked (the largest of its layers') of its classes, so a residual
 * stream shrinks as much as a plain layer (under the union rule its layers rarely agree).
 * `roundTo` then puts back the best-scored removed filters until every kept count is a
 * multiple of it (or the whole layer).
 */

export interface ChannelPlan {
  /** the removed classes (ChannelGraph.classOf of a removed id) */
  removed: Set<number>;
  /**
   * conv / connected layers asked to keep 0 filters: each goes with the residual block around
   * it (blocks.ts blockForLayer), whatever `removed` says of its filters
   */
  emptied?: Set<number>;
}

/** Fractions of filters to keep, per conv or connected layer (net index); layers not listed keep all. */
export type KeepRatios = ReadonlyMap<number, number>;

/** How filters tied by a [shortcut] are chosen (see planChannels). */
export type TieRule = 'union' | 'group';
export const TIE_RULES: readonly TieRule[] = ['union', 'group'];

export interface PlanOptions {
  /** keep a multiple of this many filters per changed layer (1, 4 or 8); default 1 */
  roundTo?: number;
  /** filters tied by a [shortcut]: each layer's own choice, kept where any keeps it ('union', the default), or ranked together ('group') */
  tie?: TieRule;
}

/** The conv and connected layers with at least one filter that may go (net indexes). */
export function prunableProducers(g: ChannelGraph): number[] {
  return [...g.producers].filter(([, ids]) => ids.some((id) => !whyProtected(g, id))).map(([layer]) => layer);
}

/** True when the filter's channel stays. */
export function isKept(g: ChannelGraph, plan: ChannelPlan, id: number): boolean {
  return !plan.removed.has(g.classOf(id));
}

/** Kept filters of a producer layer, ascending. */
export function keptFilters(g: ChannelGraph, plan: ChannelPlan, layer: number): number[] {
  const ids = g.producers.get(layer) ?? [];
  return ids.map((id, f) => (isKept(g, plan, id) ? f : -1)).filter((f) => f >= 0);
}

/**
 * The plan for per-layer keep fractions (each in [0, 1]). A layer keeps max(1, round(fraction *
 * filters)), rounded up to `roundTo`; 0 removes the layer with the residual block around it
 * (its branch then adds a constant, folded; refused with the reason where no block can go).
 * @example planChannels(spec, channelGraph(spec), l1Scores(spec, w), new Map([[0, 0.5], [2, 0.5]]), { roundTo: 4 });
 */
export function planChannels(
  spec: NetworkSpec, g: ChannelGraph, scores: ChannelScores, ratios: KeepRatios, o: PlanOptions = {},
): ChannelPlan {
  const roundTo = o.roundTo ?? 1;
  if (!(Number.isInteger(roundTo) && roundTo >= 1)) throw new DarknetError(`round-to must be a whole number >= 1, not ${roundTo}`);
  const scoreOf = (layer: number) => {
    const s = scores.get(layer);
    if (!s || s.length !== g.producers.get(layer)!.length) throw new Error(`planChannels: no scores for ${layerName(spec, layer)}`);
    return s;
  };

  const proposed = new Set<number>(); // ids each layer would remove
  const emptied = new Set<number>();
  const groups = o.tie === 'group' ? tiedGroups(g, ratios) : [];
  const grouped = new Set(groups.flat());
  for (const [layer, ratio] of ratios) {
    const ids = g.producers.get(layer);
    const name = () => layerName(spec, layer);
    if (!ids) throw new DarknetError(`${layer < spec.layers.length ? name() : `layer ${layer}`}: only convolutional and connected layers have filters to remove`);
    if (!(ratio >= 0 && ratio <= 1)) throw new DarknetError(`${name()}: keep fraction ${ratio} must be in [0, 1]`);
    const free = ids.map((_, f) => f).filter((f) => !whyProtected(g, ids[f]));
    if (ratio === 0) {
      const around = blockForLayer(spec, layer);
      if (around.why) throw new DarknetError(`${name()}: keeping 0 of ${ids.length} filters removes the layer, which cannot be done here: ${around.why}`);
      // the layer goes whole; its free filters count as proposed for the classes tied to them
      emptied.add(layer);
      for (const f of free) proposed.add(ids[f]);
      continue;
    }
    if (free.length === 0 && ratio < 1) {
      throw new DarknetError(`${name()}: its filters cannot be removed: ${whyProtected(g, ids[0])}`);
    }
    if (grouped.has(layer)) continue;
    const want = roundUp(Math.max(1, Math.round(ratio * ids.length)), roundTo, ids.length);
    const s = scoreOf(layer);
    const order = free.sort((a, b) => s[a] - s[b] || a - b);
    for (const f of order.slice(0, Math.max(0, ids.length - want))) proposed.add(ids[f]);
  }
  for (const layers of groups) proposeGroup(g, layers, ratios, scoreOf, roundTo, proposed);

  // A class goes when every filter in it was proposed and none is protected.
  const members = new Map<number, number[]>();
  for (const ids of g.producers.values()) {
    for (const id of ids) members.set(g.classOf(id), [...(members.get(g.classOf(id)) ?? []), id]);
  }
  const plan: ChannelPlan = { removed: new Set(), emptied };
  for (const [cls, ids] of members) {
    if (!g.protectedClasses.has(cls) && ids.every((id) => proposed.has(id))) plan.removed.add(cls);
  }

  // roundTo: put back the best removed filters of a layer until its count is a multiple;
  // putting back a class may change a tied layer's count, so repeat until nothing moves.
  for (let changed = roundTo > 1; changed;) {
    changed = false;
    for (const [layer, ids] of g.producers) {
      if (emptied.has(layer)) continue;
      const kept = keptFilters(g, plan, layer).length;
      const target = roundUp(kept, roundTo, ids.length);
      if (kept === ids.length || kept === target) continue;
      const s = scoreOf(layer);
      const back = ids.map((_, f) => f).filter((f) => !isKept(g, plan, ids[f])).sort((a, b) => s[b] - s[a] || a - b);
      for (const f of back.slice(0, target - kept)) plan.removed.delete(g.classOf(ids[f]));
      changed = true;
    }
  }

  for (const [layer] of g.producers) {
    if (emptied.has(layer) || keptFilters(g, plan, layer).length > 0) continue;
    const around = blockForLayer(spec, layer);
    if (around.why) throw new DarknetError(`${layerName(spec, layer)}: every filter would go (tied by a [shortcut] to removed ones), and the layer cannot be removed: ${around.why}`);
    emptied.add(layer);
  }
  return plan;
}

/**
 * The groups of layers tied by shortcuts (2 or more layers sharing a class) with a ratio
 * below 1 for some member and none at 0 (a layer kept at 0 goes with its block: the union
 * rule handles those groups).
 */
function tiedGroups(g: ChannelGraph, ratios: KeepRatios): number[][] {
  const layersOf = new Map<number, Set<number>>(); // class -> producer layers with a member
  for (const [layer, ids] of g.producers) {
    for (const id of ids) {
      const c = g.classOf(id);
      if (!layersOf.has(c)) layersOf.set(c, new Set());
      layersOf.get(c)!.add(layer);
    }
  }
  const parent = new Map<number, number>();
  const find = (l: number): number => {
    while (parent.get(l)! !== l) l = parent.get(l)!;
    return l;
  };
  for (const layer of g.producers.keys()) parent.set(layer, layer);
  for (const layers of layersOf.values()) {
    const [first, ...rest] = [...layers];
    for (const l of rest) {
      const a = find(first);
      const b = find(l);
      if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
    }
  }
  const byRoot = new Map<number, number[]>();
  for (const layer of g.producers.keys()) byRoot.set(find(layer), [...(byRoot.get(find(layer)) ?? []), layer]);
  return [...byRoot.values()].filter((ls) => ls.length > 1 && ls.some((l) => (ratios.get(l) ?? 1) < 1) && ls.every((l) => ratios.get(l) !== 0));
}

/**
 * Proposes the lowest-ranked classes of a tied group: each class by the mean over its
 * filters of score / the mean score of the filter's layer; the group keeps the largest
 * fraction asked of its layers (a layer not asked keeps all: then nothing goes).
 */
function proposeGroup(
  g: ChannelGraph, layers: number[], ratios: KeepRatios, scoreOf: (layer: number) => ArrayLike<number>, roundTo: number, proposed: Set<number>,
): void {
  const ratio = Math.max(...layers.map((l) => ratios.get(l) ?? 1));
  const members = new Map<number, number[]>(); // class -> normalised scores of its filters
  const idsOf = new Map<number, number[]>();
  for (const layer of layers) {
    const ids = g.producers.get(layer)!;
    const s = scoreOf(layer);
    let mean = 0;
    for (let f = 0; f < ids.length; f++) mean += s[f] / ids.length;
    ids.forEach((id, f) => {
      const c = g.classOf(id);
      members.set(c, [...(members.get(c) ?? []), mean > 0 ? s[f] / mean : s[f]]);
      idsOf.set(c, [...(idsOf.get(c) ?? []), id]);
    });
  }
  const classes = [...members.keys()];
  const want = roundUp(Math.max(1, Math.round(ratio * classes.length)), roundTo, classes.length);
  const score = (c: number) => members.get(c)!.reduce((a, b) => a + b, 0) / members.get(c)!.length;
  const free = classes.filter((c) => !g.protectedClasses.has(c)).sort((a, b) => score(a) - score(b) || a - b);
  for (const c of free.slice(0, Math.max(0, classes.length - want))) for (const id of idsOf.get(c)!) proposed.add(id);
}

/** `count` rounded up to a multiple of `to`, but at most `all`. */
function roundUp(count: number, to: number, all: number): number {
  return Math.min(all, Math.ceil(count / to) * to);
}

export interface ShrunkCost {
  /** FLOPs of one image's forward pass, as LayerSpec.flops counts them */
  flops: number;
  /** floats in the .weights file */
  params: number;
}

/**
 * The layers a plan removes whole: the residual blocks around its emptied layers (and around
 * layers whose every filter goes). Throws the reason when such a layer cannot go.
 */
export function goneLayers(spec: NetworkSpec, g: ChannelGraph, plan: ChannelPlan): Set<number> {
  const gone = new Set<number>();
  const emptied = new Set(plan.emptied ?? []);
  for (const layer of g.producers.keys()) if (keptFilters(g, plan, layer).length === 0) emptied.add(layer);
  for (const layer of emptied) {
    const { block, why } = blockForLayer(spec, layer);
    if (!block) throw new DarknetError(`${layerName(spec, layer)}: every filter would go, and the layer cannot be removed: ${why}`);
    for (let i = block.from + 1; i <= block.shortcut; i++) gone.add(i);
  }
  return gone;
}

/**
 * FLOPs and parameters after a plan, from shapes alone (no cfg is written): a conv or
 * connected layer's FLOPs and weights scale by kept outputs x kept inputs, its per-filter
 * arrays by kept outputs, a [batchnorm] layer's arrays by kept channels.
 */
export function shrunkCost(spec: NetworkSpec, g: ChannelGraph, plan: ChannelPlan): ShrunkCost {
  let flops = 0;
  let params = 0;
  const gone = goneLayers(spec, g, plan);
  spec.layers.forEach((l, i) => {
    if (gone.has(i)) return;
    const inCh = inputChannels(g, i);
    const inAll = inCh.reduce((s, ch) => s + ch.length, 0);
    const inKept = inCh.reduce((s, ch) => s + (isKept(g, plan, ch.id) ? ch.length : 0), 0);
    const ids = g.producers.get(i);
    if (ids) {
      const out = keptFilters(g, plan, i).length / ids.length;
      flops += l.flops * out * (inKept / inAll);
      for (const p of l.params) params += p.size * out * (p.name === 'weights' ? inKept / inAll : 1);
      return;
    }
    flops += l.flops;
    // a [batchnorm] layer's arrays are per input channel (the only other layer with any)
    const channels = inCh.filter((ch) => isKept(g, plan, ch.id)).length / inCh.length;
    for (const p of l.params) params += p.size * channels;
  });
  return { flops: Math.round(flops), params: Math.round(params) };
}

/**
 * The plan that keeps the same fraction r of every prunable layer, r as large as lets the
 * FLOPs be at most `fraction` x dense (bisection on r; FLOPs only fall as r falls).
 * Throws when even one filter per layer is over the budget.
 */
export function planForFlops(
  spec: NetworkSpec, g: ChannelGraph, scores: ChannelScores, fraction: number, o: PlanOptions = {},
): { plan: ChannelPlan; keep: number; flops: number } {
  if (!(fraction > 0 && fraction <= 1)) throw new DarknetError(`--flops ${fraction} must be in (0, 1]`);
  const layers = prunableProducers(g);
  const dense = spec.layers.reduce((s, l) => s + l.flops, 0);
  const budget = fraction * dense;
  const at = (r: number) => {
    const plan = planChannels(spec, g, scores, new Map(layers.map((l) => [l, r])), o);
    return { plan, keep: r, flops: shrunkCost(spec, g, plan).flops };
  };
  let best = at(1);
  if (best.flops <= budget) return best;
  const smallest = at(1e-9);
  if (smallest.flops > budget) {
    throw new DarknetError(`--flops ${fraction}: even one filter per prunable layer leaves ${(smallest.flops / dense).toFixed(3)} x the dense FLOPs (the input, the classes and protected layers stay)`);
  }
  best = smallest;
  let lo = 1e-9;
  let hi = 1;
  for (let step = 0; step < 40; step++) {
    const mid = (lo + hi) / 2;
    const r = at(mid);
    if (r.flops <= budget) {
      best = r;
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return best;
}
