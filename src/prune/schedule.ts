import type { NetworkSpec } from '../cfg/config';
import { DarknetError } from '../errors';
import { prunableLayers } from './threshold';

/**
 * Prune schedules: for each of `rounds` rounds, the target sparsity of every prunable layer
 * (DESIGN.md §5 step 3: raise sparsity round by round). A round's rates feed
 * `applyThreshold(spec, w, fractionRules(rates))`. Pure functions; no training.
 *
 * Every schedule is non-decreasing per layer across rounds and its last round is the final
 * target exactly (per layer; for triangle and scaled sensitivity rates the TOTAL matches the
 * target to the bisection's precision, far below 1e-3).
 */

/** layer net index -> target sparsity in [0, 1) */
export type LayerRates = Map<number, number>;

export type ScheduleMode = 'uniform' | 'triangle' | 'sensitivity' | 'agp';
export const SCHEDULE_MODES: readonly ScheduleMode[] = ['uniform', 'triangle', 'sensitivity', 'agp'];

/** No layer is scaled above this: a layer with every weight pruned cuts the net in two. */
export const RATE_CAP = 0.99;

export interface ScheduleOptions {
  mode: ScheduleMode;
  /** final TOTAL sparsity (uniform, triangle, agp); unused by sensitivity */
  target: number;
  rounds: number;
  /** sensitivity: each layer's final rate (from ratesFromSensitivity or --layer-sparsity) */
  rates?: ReadonlyMap<number, number>;
  /** agp: s_i, the sparsity the schedule starts from (default 0) */
  initial?: number;
}

/**
 * The per-round rates of a mode, round 1 first.
 * @example pruneSchedule(spec, { mode: 'agp', target: 0.92, rounds: 4 }).map((r) => r.get(0));
 *   // [0.531875, 0.805, 0.905625, 0.92]
 */
export function pruneSchedule(spec: NetworkSpec, o: ScheduleOptions): LayerRates[] {
  switch (o.mode) {
    case 'uniform':
      return uniformSchedule(spec, o.target, o.rounds);
    case 'triangle':
      return triangleSchedule(spec, o.target, o.rounds);
    case 'agp':
      return agpSchedule(spec, o.target, o.rounds, o.initial ?? 0);
    case 'sensitivity':
      if (!o.rates) throw new DarknetError('--mode sensitivity needs per-layer rates: --sensitivity FILE or --layer-sparsity');
      return sensitivitySchedule(spec, o.rates, o.rounds);
    default:
      throw new DarknetError(`unknown prune mode '${String(o.mode)}'; expected one of ${SCHEDULE_MODES.join(', ')}`);
  }
}

function checkRounds(rounds: number): void {
  if (!Number.isInteger(rounds) || rounds < 1) throw new DarknetError(`--rounds ${rounds}: must be a whole number >= 1`);
}

export function checkRate(rate: number, what: string): void {
  if (!(rate >= 0 && rate < 1)) throw new DarknetError(`${what} ${rate}: sparsity must be in [0, 1)`);
}

/**
 * Round r of R on the way to `final`, stepping geometrically in the kept fraction:
 * kept_r = kept_final^(r/R), so each round removes the same share of what is left
 * (for 0.92 over 4 rounds: 46.8%, 71.7%, 85.0%, 92%). Round R is `final` exactly.
 */
export function geometricStep(final: number, r: number, rounds: number): number {
  return r === rounds ? final : 1 - Math.pow(1 - final, r / rounds);
}

function stepEach(finals: ReadonlyMap<number, number>, rounds: number): LayerRates[] {
  const out: LayerRates[] = [];
  for (let r = 1; r <= rounds; r++) {
    out.push(new Map([...finals].map(([index, s]) => [index, geometricStep(s, r, rounds)])));
  }
  return out;
}

function sameRate(spec: NetworkSpec, rate: number): LayerRates {
  return new Map(prunableLayers(spec).map((l) => [l.index, rate]));
}

/**
 * `uniform`: the same rate in every prunable layer (a magnitude pruner), stepped
 * geometrically in the kept fraction (see geometricStep); a linear step in sparsity would
 * remove ever larger shares of the surviving weights in the late rounds.
 */
export function uniformSchedule(spec: NetworkSpec, target: number, rounds: number): LayerRates[] {
  checkRate(target, '--target');
  checkRounds(rounds);
  return stepEach(sameRate(spec, target), rounds);
}

/**
 * `agp` (Zhu and Gupta 2017): s_t = s_f + (s_i - s_f) * (1 - t/n)^3 for t = 1..n, the
 * same rate in every prunable layer: large steps while many redundant weights remain,
 * small ones near the end.
 */
export function agpSchedule(spec: NetworkSpec, target: number, rounds: number, initial = 0): LayerRates[] {
  checkRate(target, '--target');
  checkRate(initial, 'agp initial');
  checkRounds(rounds);
  if (initial > target) throw new DarknetError(`agp: initial sparsity ${initial} is above the target ${target}`);
  const out: LayerRates[] = [];
  for (let t = 1; t <= rounds; t++) {
    out.push(sameRate(spec, target + (initial - target) * Math.pow(1 - t / rounds, 3)));
  }
  return out;
}

/**
 * `sensitivity`: each layer stepped geometrically (see geometricStep) to its own final rate.
 * Prunable layers missing from `finals` stay dense (rate 0).
 */
export function sensitivitySchedule(spec: NetworkSpec, finals: ReadonlyMap<number, number>, rounds: number): LayerRates[] {
  checkRounds(rounds);
  const all = sameRate(spec, 0);
  for (const [index, rate] of finals) {
    if (!all.has(index)) throw new DarknetError(`sensitivity rates: layer ${index} is not a prunable layer of ${spec.file}`);
    checkRate(rate, `layer ${index}`);
    all.set(index, rate);
  }
  return stepEach(all, rounds);
}

/**
 * `triangle`: final rates rising linearly with depth, rate_i = min(0.99, c * (i + 1) / L)
 * for the i-th of L prunable layers (0-based, net order), with c solved by bisection so
 * that the weight-count-weighted total is `target`. Layers near the output tolerate more
 * sparsity; the first layers lose accuracy even with a little (DESIGN.md §5).
 * @example triangleRates(readCfg('cfg/lenet.cfg'), 0.92); // conv1 0.313, conv2 0.626, fc1 0.938, fc2 0.99
 */
export function triangleRates(spec: NetworkSpec, target: number): LayerRates {
  checkRate(target, '--target');
  const layers = prunableLayers(spec);
  const L = layers.length;
  const shape = new Map(layers.map((l, i) => [l.index, (i + 1) / L]));
  const ratesAt = (c: number): LayerRates => new Map([...shape].map(([index, s]) => [index, Math.min(RATE_CAP, c * s)]));
  if (target > RATE_CAP) {
    throw new DarknetError(`--target ${target}: triangle caps every layer at ${RATE_CAP}, so the total cannot pass ${RATE_CAP}`);
  }
  // at c = RATE_CAP * L every layer is capped, so the total is RATE_CAP >= target
  return bisect(ratesAt, (r) => totalSparsity(spec, r), target, RATE_CAP * L).rates;
}

/** triangleRates stepped geometrically to each layer's final rate. */
export function triangleSchedule(spec: NetworkSpec, target: number, rounds: number): LayerRates[] {
  checkRounds(rounds);
  return stepEach(triangleRates(spec, target), rounds);
}

/**
 * The rates at the scale c in [0, hi] whose total is `target`, for a total that is
 * continuous and non-decreasing in c, with total(hi) >= target.
 */
export function bisect(
  ratesAt: (c: number) => LayerRates,
  total: (r: LayerRates) => number,
  target: number,
  hi: number,
): { c: number; rates: LayerRates } {
  if (total(ratesAt(0)) >= target) return { c: 0, rates: ratesAt(0) };
  let lo = 0;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (total(ratesAt(mid)) < target) lo = mid;
    else hi = mid;
  }
  return { c: hi, rates: ratesAt(hi) };
}

/**
 * The weight-count-weighted total sparsity of per-layer rates: sum(weights_i * rate_i) /
 * sum(weights_i) over every prunable layer; layers not in `rates` count as dense.
 */
export function totalSparsity(spec: NetworkSpec, rates: ReadonlyMap<number, number>): number {
  const layers = prunableLayers(spec);
  return weightedTotal(layers, rates, layers.reduce((s, l) => s + l.weights, 0));
}

/** sum(weights_i * rate_i) / all, over `layers` */
export function weightedTotal(layers: ReadonlyArray<{ index: number; weights: number }>, rates: ReadonlyMap<number, number>, all: number): number {
  let zeros = 0;
  for (const l of layers) zeros += l.weights * (rates.get(l.index) ?? 0);
  return all ? zeros / all : 0;
}
