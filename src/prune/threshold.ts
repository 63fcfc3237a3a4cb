import type { NetworkSpec } from '../cfg/config';
import { DarknetError } from '../errors';
import type { LayerSpec } from '../engine/layer';
import type { LayerWeights, WeightsFile } from '../io/weights';
import { PRUNABLE } from './stats';

/**
 * Save-time thresholding (DESIGN.md §5 step 1, Han et al. 2015): every weight of a
 * prunable layer (convolutional, connected) whose magnitude is below a threshold becomes
 * exactly 0. Pure host-side functions over a WeightsFile; no backend, no training.
 *
 * Contract of every rule: after thresholding, every weight with |w| < threshold is +0 and
 * every weight kept has |w| >= threshold. A fraction rule may also zero some weights with
 * |w| == threshold (ties, broken by position) to hit its target count exactly.
 */

/** How one layer's (or the pooled layers') threshold is chosen. */
export type ThresholdRule =
  /** |w| < value -> 0, compared in float64 */
  | { kind: 'absolute'; value: number }
  /** Han et al.: threshold = quality * std of the weights (population std, zeros included) */
  | { kind: 'std'; quality: number }
  /** the round(sparsity * n) smallest magnitudes become 0 (zeros already there count) */
  | { kind: 'fraction'; sparsity: number };

/** Where rules apply. Layers a rule does not reach are copied unchanged. */
export type ThresholdRules =
  /** every prunable layer separately, with the same rule */
  | { scope: 'layer'; rule: ThresholdRule }
  /**
   * one threshold for all prunable layers' weights pooled: fraction = one magnitude
   * quantile over every weight, std = quality * std of the pooled weights (absolute is
   * the same as scope 'layer')
   */
  | { scope: 'global'; rule: ThresholdRule }
  /** per layer index (net index, as in the summary table); `rest` for layers not in the map */
  | { scope: 'map'; rules: ReadonlyMap<number, ThresholdRule>; rest?: ThresholdRule };

export interface LayerThreshold {
  /** net index of the layer */
  index: number;
  /** the magnitude cut: 0 for a layer no rule reached */
  threshold: number;
  /** 1 - non-zeros / weights after thresholding, as sparsityOf counts it */
  sparsity: number;
}

export interface ThresholdResult {
  weights: WeightsFile;
  /** one row per prunable layer that has weights in the file, in net order */
  thresholds: LayerThreshold[];
}

/** A prunable layer as reports and `--layer-sparsity` name it. */
export interface PrunableLayer {
  /** net index */
  index: number;
  /** e.g. conv1, fc2 (see prunableLayers) */
  name: string;
  type: LayerSpec['type'];
  /** number of weights (biases and batch-norm parameters are never pruned) */
  weights: number;
}

/** Short name prefixes, as Caffe's LeNet and Han et al.'s tables write them. */
const SHORT_NAME: Partial<Record<LayerSpec['type'], string>> = { convolutional: 'conv', connected: 'fc' };

/**
 * The prunable layers of a net with their names: the short type name plus a 1-based count
 * among layers of that type, in net order (conv1, conv2, fc1, fc2), so our per-layer tables
 * read beside Han et al.'s (LeNet-5: conv1 conv2 fc1 fc2; LeNet-300-100: fc1 fc2 fc3).
 * @example prunableLayers(readCfg('cfg/lenet.cfg')).map((l) => `${l.index}=${l.name}`);
 *   // ['0=conv1', '2=conv2', '4=fc1', '5=fc2']
 */
export function prunableLayers(spec: NetworkSpec): PrunableLayer[] {
  const counts = new Map<string, number>();
  const out: PrunableLayer[] = [];
  for (const l of spec.layers) {
    if (!PRUNABLE.has(l.type)) continue;
    const prefix = SHORT_NAME[l.type] ?? l.type;
    const n = (counts.get(prefix) ?? 0) + 1;
    counts.set(prefix, n);
    out.push({ index: l.index, name: `${prefix}${n}`, type: l.type, weights: weightCount(l) });
  }
  return out;
}

function weightCount(l: LayerSpec): number {
  return l.params.find((p) => p.name === 'weights')?.size ?? 0;
}

function listPrunable(spec: NetworkSpec): string {
  return prunableLayers(spec).map((p) => `${p.index} (${p.name})`).join(', ');
}

/**
 * Resolves a layer key, a net index ("4") or a prunable layer's name ("fc1", any case), to
 * the net index of a prunable layer. `what` names the option in errors.
 */
export function resolvePrunableLayer(spec: NetworkSpec, key: string, what = '--layer-sparsity'): number {
  const k = key.trim();
  const layers = prunableLayers(spec);
  if (/^\d+$/.test(k)) {
    const index = Number(k);
    const l = spec.layers[index];
    if (!l) {
      throw new DarknetError(`${what}: no layer ${index}: ${spec.file} has layers 0-${spec.layers.length - 1}; prunable: ${listPrunable(spec)}`);
    }
    if (!PRUNABLE.has(l.type)) {
      throw new DarknetError(
        `${what}: layer ${index} is ${l.type}: only convolutional and connected layers are pruned; prunable: ${listPrunable(spec)}`,
      );
    }
    return index;
  }
  const found = layers.find((p) => p.name === k.toLowerCase());
  if (!found) throw new DarknetError(`${what}: unknown layer '${k}'; prunable layers of ${spec.file}: ${listPrunable(spec)}`);
  return found.index;
}

/**
 * Parses `--layer-sparsity`: comma-separated `layer=sparsity` pairs, the layer by net index
 * or by name (see prunableLayers), the sparsity in [0, 1).
 * @example parseLayerSparsity('0=0.3,fc1=0.9', readCfg('cfg/lenet.cfg')); // Map { 0 => 0.3, 4 => 0.9 }
 */
export function parseLayerSparsity(text: string, spec: NetworkSpec, what = '--layer-sparsity'): Map<number, number> {
  const rates = new Map<number, number>();
  if (text.trim() === '') throw new DarknetError(`${what}: empty; expected e.g. 0=0.3,2=0.8 or conv1=0.3,fc1=0.9`);
  for (const item of text.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new DarknetError(`${what}: '${item.trim()}' is not layer=sparsity (e.g. 0=0.3 or fc1=0.9)`);
    const key = item.slice(0, eq).trim();
    const valueText = item.slice(eq + 1).trim();
    if (key === '') throw new DarknetError(`${what}: '${item.trim()}' has no layer before '='`);
    const index = resolvePrunableLayer(spec, key, what);
    const value = valueText === '' ? NaN : Number(valueText);
    if (!Number.isFinite(value) || value < 0 || value >= 1) {
      throw new DarknetError(`${what}: sparsity '${valueText}' for layer ${key} must be a number in [0, 1)`);
    }
    if (rates.has(index)) throw new DarknetError(`${what}: layer ${index} is given twice ('${key}')`);
    rates.set(index, value);
  }
  return rates;
}

/** Per-layer fraction rules from per-layer target sparsities (a schedule round, a user map). */
export function fractionRules(rates: ReadonlyMap<number, number>): ThresholdRules {
  const rules = new Map<number, ThresholdRule>();
  for (const [index, sparsity] of rates) rules.set(index, { kind: 'fraction', sparsity });
  return { scope: 'map', rules };
}

/** 1 where w != 0, else 0: the mask of a loaded, thresholded layer (`[weights]`, like the weights). */
export function maskFromZeros(weights: Float32Array): Float32Array {
  const mask = new Float32Array(weights.length);
  for (let i = 0; i < weights.length; i++) mask[i] = weights[i] !== 0 ? 1 : 0;
  return mask;
}

function checkRule(rule: ThresholdRule, where: string): void {
  const bad = (msg: string) => new DarknetError(`threshold ${where}: ${msg}`);
  switch (rule.kind) {
    case 'absolute':
      if (!(rule.value >= 0) || !Number.isFinite(rule.value)) throw bad(`absolute value ${rule.value} must be a finite number >= 0`);
      return;
    case 'std':
      if (!(rule.quality >= 0) || !Number.isFinite(rule.quality)) throw bad(`quality ${rule.quality} must be a finite number >= 0`);
      return;
    case 'fraction':
      if (!(rule.sparsity >= 0 && rule.sparsity <= 1)) throw bad(`sparsity ${rule.sparsity} must be in [0, 1]`);
      return;
    default:
      throw bad(`unknown rule ${JSON.stringify(rule)}`);
  }
}

/** Float64 population standard deviation over several arrays taken as one. */
function stdOf(arrays: readonly Float32Array[]): number {
  let n = 0;
  let sum = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) sum += a[i];
  for (const a of arrays) n += a.length;
  if (n === 0) return 0;
  const mean = sum / n;
  let sq = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) sq += (a[i] - mean) * (a[i] - mean);
  return Math.sqrt(sq / n);
}

/** Zeroes every |w| < t. */
function zeroBelow(arrays: readonly Float32Array[], t: number): void {
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Math.abs(a[i]) < t) a[i] = 0;
}

/**
 * Zeroes the k = max(round(sparsity * n), zeros already there) smallest magnitudes of the
 * arrays taken as one, and returns the threshold: the smallest magnitude kept (the largest
 * magnitude when nothing is kept). Ties at the threshold are zeroed in order (array by
 * array, then by position) until exactly k are zero, so the result is deterministic.
 */
function zeroFraction(arrays: readonly Float32Array[], sparsity: number): number {
  let n = 0;
  for (const a of arrays) n += a.length;
  if (n === 0) return 0;
  const magnitudes = new Float32Array(n); // every |w|, pooled
  let zeros = 0;
  let j = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const m = Math.abs(a[i]);
      if (m === 0) zeros++;
      magnitudes[j++] = m;
    }
  }
  magnitudes.sort();
  // NOTE: never fewer zeros than already there: a prune never revives a weight.
  const k = Math.max(Math.round(sparsity * n), zeros);
  const t = k < n ? magnitudes[k] : magnitudes[n - 1];
  let zeroed = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      if (Math.abs(a[i]) < t) {
        a[i] = 0;
        zeroed++;
      }
    }
  }
  for (const a of arrays) {
    for (let i = 0; i < a.length && zeroed < k; i++) {
      if (Math.abs(a[i]) === t) {
        a[i] = 0;
        zeroed++;
      }
    }
  }
  return t;
}

/** Applies a rule to arrays taken as one; returns the threshold used. */
function applyRule(arrays: readonly Float32Array[], rule: ThresholdRule): number {
  switch (rule.kind) {
    case 'absolute':
      zeroBelow(arrays, rule.value);
      return rule.value;
    case 'std': {
      const t = rule.quality * stdOf(arrays);
      zeroBelow(arrays, t);
      return t;
    }
    case 'fraction':
      return zeroFraction(arrays, rule.sparsity);
  }
}

function copyLayer(l: LayerWeights): LayerWeights {
  const out: LayerWeights = {};
  for (const [name, a] of Object.entries(l) as Array<[keyof LayerWeights, Float32Array | undefined]>) {
    if (a) out[name] = a.slice();
  }
  return out;
}

function nonzerosOf(a: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) n++;
  return n;
}

/**
 * Thresholds the weights of every prunable layer the rules reach and returns a new file;
 * the input is never modified. Only `weights` arrays change: biases, scales and rolling
 * statistics are copied as they are. Zeros already present stay zero, and every zero
 * weight of a layer a rule reached is written as +0.
 * @example
 *   const { weights, thresholds } = applyThreshold(spec, readWeights(file, spec),
 *     { scope: 'layer', rule: { kind: 'std', quality: 1.0 } });
 *   writeWeights(out, weights, spec);
 */
export function applyThreshold(spec: NetworkSpec, w: WeightsFile, rules: ThresholdRules): ThresholdResult {
  if (rules.scope === 'map') {
    for (const [index, rule] of rules.rules) {
      const l = spec.layers[index];
      if (!l || !PRUNABLE.has(l.type)) {
        throw new DarknetError(
          `threshold: layer ${index} is ${l ? l.type : 'not in the net'}, not prunable; prunable: ${listPrunable(spec)}`,
        );
      }
      if (!w.layers[index]?.weights) throw new DarknetError(`threshold: layer ${index} has no weights in the file (dontload?)`);
      checkRule(rule, `layer ${index}`);
    }
    if (rules.rest) checkRule(rules.rest, 'for the other layers');
  } else {
    checkRule(rules.rule, rules.scope === 'global' ? 'global' : 'per layer');
  }

  const layers = w.layers.map(copyLayer);
  // the prunable layers with weights in this file, in net order
  const targets = spec.layers.filter((l) => PRUNABLE.has(l.type) && layers[l.index]?.weights);
  for (const l of targets) {
    const a = layers[l.index].weights!;
    if (a.length !== weightCount(l)) {
      throw new DarknetError(`threshold: layer ${l.index} ${l.type} has ${a.length} weights, ${spec.file} needs ${weightCount(l)}`);
    }
    if (a.some(Number.isNaN)) throw new DarknetError(`threshold: layer ${l.index} ${l.type} has NaN weights (a diverged model?)`);
  }

  const threshold = new Map<number, number>();
  if (rules.scope === 'global') {
    const t = applyRule(targets.map((l) => layers[l.index].weights!), rules.rule);
    for (const l of targets) threshold.set(l.index, t);
  } else {
    for (const l of targets) {
      const rule = rules.scope === 'layer' ? rules.rule : rules.rules.get(l.index) ?? rules.rest;
      if (rule) threshold.set(l.index, applyRule([layers[l.index].weights!], rule));
    }
  }

  const thresholds: LayerThreshold[] = targets.map((l) => {
    const a = layers[l.index].weights!;
    // NOTE: -0 === 0 in JavaScript; a thresholded layer's zeros are all written as +0.
    if (threshold.has(l.index)) for (let i = 0; i < a.length; i++) if (a[i] === 0) a[i] = 0;
    return { index: l.index, threshold: threshold.get(l.index) ?? 0, sparsity: a.length ? 1 - nonzerosOf(a) / a.length : 0 };
  });
  return { weights: { header: { ...w.header }, layers }, thresholds };
}
