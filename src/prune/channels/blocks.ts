import type { NetworkSpec } from '../../cfg/config';
import { parseCfg } from '../../cfg/parser';
import { cfgValue, removeSections, rewriteCfg } from '../../cfg/write';
import type { LayerSpec } from '../../engine/layer';
import { DarknetError } from '../../errors';
import type { LayerWeights, WeightsFile } from '../../io/weights';
import type { Activation } from '../../kernels/types';
import { inferenceDenominator } from '../../layers/batchnorm-core';
import type { ConvolutionalSpec } from '../../layers/convolutional';
import type { RouteSpec } from '../../layers/route';
import type { ShortcutSpec } from '../../layers/shortcut';
import { isProducer, l1Scores, type ChannelScores, type Criterion } from './criteria';
import { activate, checkSizes, copyLayer } from './fold';
import { layerArray, layerName } from './layers';

/**
 * Removing whole residual blocks: a `[shortcut]` (out = act(alpha * branch + beta * x), x =
 * layer `from`) and the branch of layers it bypasses (from + 1 .. shortcut - 1). Without the
 * block its readers read x itself, so the cfg loses those sections and every `[route]
 * layers=` and `[shortcut] from=` after them is renumbered (a relative index stays relative,
 * an absolute one absolute, as darknet resolves them: negative = this layer's index + it).
 * This is the part of channel pruning that turns into wall-clock time (the slimming forks:
 * fewer layers, not thinner ones).
 *
 * Folding: the branch's output is taken to be a per-channel constant c, act(bias) of its last
 * conv (exactly its output when that conv's batch-norm scales are all 0, or, without batch
 * norm, its weights), or, when an emptied conv inside the branch is the source, that conv's
 * act(bias) carried through the rest of the branch. What the readers then lack, alpha * c, is
 * carried forward (through pooling, dropout, [route] and linear [shortcut]s) into the next
 * conv or connected layer's bias, or its batch-norm / [batchnorm] rolling mean, as the channel
 * fold does (surgery.ts). A [shortcut] with a non-linear activation applied it to x + branch;
 * without the block x passes without it: exact only where act(y) = y (leaky, relu: y >= 0).
 * Both approximations are reported in `notes`.
 */

export interface ResidualBlock {
  /** the [shortcut] layer: the block's last layer */
  shortcut: number;
  /** the layer the shortcut adds (x): it stays, and the block's readers read it instead */
  from: number;
  /** the branch's last layer (shortcut - 1), whose output the shortcut adds */
  tail: number;
  /** why removing the block would not leave a whole network, or undefined when it may go */
  why?: string;
}

/** `layers 5-8` (the layers a block's removal takes out). */
export function blockLayers(b: Pick<ResidualBlock, 'from' | 'shortcut'>): string {
  return `layers ${b.from + 1}-${b.shortcut}`;
}

/** The layers layer i reads (earlier indexes; none for layer 0, which reads the input). */
export function readsOf(spec: NetworkSpec, i: number): number[] {
  const l = spec.layers[i];
  if (l.type === 'route') return (l as RouteSpec).layers;
  if (l.type === 'shortcut') return [i - 1, (l as ShortcutSpec).from];
  return i === 0 ? [] : [i - 1];
}

/** Every [shortcut] with a branch of at least one layer, with why it must stay (if it must). */
export function residualBlocks(spec: NetworkSpec): ResidualBlock[] {
  const blocks: ResidualBlock[] = [];
  spec.layers.forEach((l, s) => {
    if (l.type !== 'shortcut') return;
    const from = (l as ShortcutSpec).from;
    if (from >= s - 1) return; // adds its own input: no branch
    const b: ResidualBlock = { shortcut: s, from, tail: s - 1 };
    b.why = whyBlockStays(spec, b);
    blocks.push(b);
  });
  return blocks;
}

function whyBlockStays(spec: NetworkSpec, b: ResidualBlock): string | undefined {
  const s = spec.layers[b.shortcut] as ShortcutSpec;
  const shape = (w: number, h: number, c: number) => `${w} x ${h} x ${c}`;
  if (s.fromW !== s.w || s.fromH !== s.h || s.fromC !== s.c) {
    return `layer ${b.shortcut} (shortcut) adds layer ${b.from} (${shape(s.fromW, s.fromH, s.fromC)}) to a ${shape(s.w, s.h, s.c)} input: without the branch the shape would change`;
  }
  if (s.beta !== 1) return `layer ${b.shortcut} (shortcut) scales layer ${b.from} by beta=${s.beta}: without the branch its output would not be layer ${b.from}'s`;
  if (spec.layers[b.tail].type !== 'convolutional') {
    return `its branch ends in ${layerName(spec, b.tail)}, not a convolutional layer: the branch's output is no known constant`;
  }
  if (b.shortcut === spec.layers.length - 1) return `layer ${b.shortcut} (shortcut) is the network's output`;
  for (let j = b.shortcut + 1; j < spec.layers.length; j++) {
    const inside = readsOf(spec, j).find((r) => r > b.from && r < b.shortcut);
    if (inside !== undefined) return `layer ${j} (${spec.layers[j].type}) reads layer ${inside}, inside the block`;
  }
  return undefined;
}

/** Layer types a constant passes through inside a branch (constantThrough). */
const CONSTANT_THROUGH = new Set(['convolutional', 'connected', 'batchnorm', 'maxpool', 'avgpool', 'dropout']);

/**
 * The residual block whose removal takes out a layer that keeps no filter (the innermost one
 * that may go), or why there is none: the layer's output must be a constant the rest of the
 * branch carries to the [shortcut].
 */
export function blockForLayer(spec: NetworkSpec, layer: number): { block?: ResidualBlock; why?: string } {
  const around = residualBlocks(spec)
    .filter((b) => b.from < layer && layer <= b.tail)
    .sort((a, b) => (a.shortcut - a.from) - (b.shortcut - b.from));
  if (around.length === 0) {
    return { why: 'it is not inside a residual block: only a [shortcut]\'s branch can go whole (the next layer would read nothing)' };
  }
  const block = around.find((b) => !b.why);
  if (!block) return { why: `its residual block (${blockLayers(around[0])}) cannot be removed: ${around[0].why}` };
  for (let j = layer + 1; j <= block.tail; j++) {
    if (!CONSTANT_THROUGH.has(spec.layers[j].type)) {
      return { why: `${layerName(spec, j)} comes after it inside the block (${blockLayers(block)}): the branch's output would not be a known constant` };
    }
  }
  return { block };
}

// ---------------------------------------------------------------------------------------
// Ranking: which blocks go first

export interface BlockScore {
  block: ResidualBlock;
  /** mean over the filters of the branch's conv and connected layers */
  score: number;
  /** `bn`: mean |gamma|; `l1`: mean L1 of the filters (bn falls back to it when a conv has no batch norm); `taylor` */
  by: Criterion;
}

/**
 * Each block's score: the mean of its branch's filter scores by the criterion (`scores` as
 * hostScores or taylorScores give them); under `bn`, a block with a conv without batch norm is
 * ranked by the mean L1 of its filters instead.
 */
export function scoreBlocks(spec: NetworkSpec, w: WeightsFile, blocks: ResidualBlock[], criterion: Criterion, scores: ChannelScores): BlockScore[] {
  let l1: ChannelScores | undefined;
  return blocks.map((block) => {
    const producers: number[] = [];
    for (let i = block.from + 1; i < block.shortcut; i++) if (isProducer(spec.layers[i].type)) producers.push(i);
    let by = criterion;
    let from = scores;
    if (criterion === 'bn' && !producers.every((i) => spec.layers[i].params.some((p) => p.name === 'scales'))) {
      by = 'l1';
      from = l1 ??= l1Scores(spec, w);
    }
    let sum = 0;
    let count = 0;
    for (const i of producers) {
      const s = from.get(i);
      if (!s) throw new Error(`scoreBlocks: no scores for ${layerName(spec, i)}`);
      for (const x of s) sum += x;
      count += s.length;
    }
    return { block, score: count ? sum / count : 0, by };
  });
}

/**
 * The `n` lowest-scored blocks that may go, none overlapping another; refused with the reasons
 * when fewer than `n` can go.
 */
export function lowestBlocks(spec: NetworkSpec, scored: BlockScore[], n: number): BlockScore[] {
  if (!(Number.isInteger(n) && n >= 1)) throw new DarknetError(`--layers ${n}: must be a whole number >= 1`);
  const chosen: BlockScore[] = [];
  const taken = new Set<number>();
  const free = scored.filter((s) => !s.block.why).sort((a, b) => a.score - b.score || a.block.shortcut - b.block.shortcut);
  for (const s of free) {
    if (chosen.length === n) break;
    const span = Array.from({ length: s.block.shortcut - s.block.from }, (_, k) => s.block.from + 1 + k);
    if (span.some((i) => taken.has(i))) continue;
    for (const i of span) taken.add(i);
    chosen.push(s);
  }
  if (chosen.length < n) {
    const refused = scored.filter((s) => s.block.why).map((s) => `${blockLayers(s.block)}: ${s.block.why}`);
    throw new DarknetError(`--layers ${n}: ${spec.file} has ${chosen.length} residual block${chosen.length === 1 ? '' : 's'} that can be removed` +
      (refused.length ? `; ${refused.join('; ')}` : scored.length ? '' : ' (no [shortcut] with a branch)'));
  }
  return chosen.sort((a, b) => a.block.shortcut - b.block.shortcut);
}

// ---------------------------------------------------------------------------------------
// Surgery

export interface BlockRemoval {
  block: ResidualBlock;
  /** a conv or connected layer inside the branch whose output is taken as constant (default: the tail) */
  source?: number;
  /** the value each of the source's filters is taken to output (default: act(bias)) */
  values?: ArrayLike<number>;
}

export interface RemovedBlock {
  from: number;
  shortcut: number;
  /** true when the block's output was exactly x (+ a constant, folded): the network computes what it did */
  exact: boolean;
  /** largest |alpha * c| folded into the readers */
  folded: number;
}

export interface BlockSurgery {
  cfgText: string;
  spec: NetworkSpec;
  weights: WeightsFile;
  /** per layer of the input: its index in the output, or -1 when removed */
  layerMap: number[];
  removed: RemovedBlock[];
  /** approximations made, one line each */
  notes: string[];
}

/**
 * Removes residual blocks from the cfg text and the weights, folding each branch's constant
 * output into the readers (see the file's comment).
 * @example
 *   const blocks = lowestBlocks(spec, scoreBlocks(spec, w, residualBlocks(spec), 'bn', bnScores(spec, w).scores), 1);
 *   const small = removeBlocks(cfgText, spec, w, blocks.map((s) => ({ block: s.block })));
 */
export function removeBlocks(
  cfgText: string, spec: NetworkSpec, w: WeightsFile, removals: BlockRemoval[], o: { file?: string } = {},
): BlockSurgery {
  const gone = new Set<number>();
  const byShortcut = new Map<number, BlockRemoval>();
  for (const r of [...removals].sort((a, b) => a.block.shortcut - b.block.shortcut)) {
    const b = r.block;
    if (b.why) throw new DarknetError(`the residual block ${blockLayers(b)} cannot be removed: ${b.why}`);
    for (let i = b.from + 1; i <= b.shortcut; i++) {
      if (gone.has(i)) throw new DarknetError(`the residual blocks to remove overlap at layer ${i}: remove the outer one alone`);
      gone.add(i);
    }
    byShortcut.set(b.shortcut, r);
  }
  const layerMap: number[] = [];
  let next = 0;
  spec.layers.forEach((_, i) => layerMap.push(gone.has(i) ? -1 : next++));
  // a reader of a removed [shortcut] reads its block's x (itself maybe a removed shortcut's)
  const redirect = (i: number): number => {
    while (gone.has(i)) {
      const r = byShortcut.get(i);
      if (!r) throw new Error(`removeBlocks: layer ${i} is read from outside its block`);
      i = r.block.from;
    }
    return i;
  };

  const notes: string[] = [];
  const removed: RemovedBlock[] = [];
  const layers: Array<LayerWeights | null> = spec.layers.map((_, i) => (gone.has(i) ? null : copyLayer(w.layers[i] ?? {})));
  // per layer of the input: what its output lacks in the new network, per channel (null: nothing)
  const lacks: Array<Float64Array | null> = [];
  spec.layers.forEach((l, i) => {
    const r = byShortcut.get(i);
    if (r) {
      const s = l as ShortcutSpec;
      const c = branchConstant(spec, w, r, notes);
      const d = c.value.map((v, k) => s.alpha * v + (lacks[s.from]?.[k] ?? 0));
      if (s.activation !== 'linear') {
        notes.push(`${blockLayers(r.block)}: layer ${i} (shortcut) applied ${s.activation} to layer ${s.from} + the branch; without the block layer ${s.from}'s output passes without it (exact only where ${s.activation}(y) = y)`);
      }
      removed.push({ from: r.block.from, shortcut: i, exact: c.exact && s.activation === 'linear', folded: Math.max(0, ...d.map(Math.abs)) });
      lacks.push(nonZero(d));
      return;
    }
    if (gone.has(i)) {
      lacks.push(null);
      return;
    }
    lacks.push(carry(spec, i, lacks, layers[i]!, notes));
  });
  const last = spec.layers.length - 1;
  if (lacks[last]) throw new DarknetError(`the removed blocks' constant output reaches the network's output (${layerName(spec, last)}) with nothing to fold it into`);

  // The cfg: readers renumbered (old indexes), then the blocks' sections removed.
  const edits = new Map<number, Record<string, string>>();
  spec.layers.forEach((l, i) => {
    if (gone.has(i) || (l.type !== 'route' && l.type !== 'shortcut')) return;
    const key = l.type === 'route' ? 'layers' : 'from';
    const raw = cfgValue(cfgText, i, key);
    if (raw === undefined) throw new Error(`removeBlocks: layer ${i} has no ${key}= in the cfg text`);
    const given = raw.split(',').map(Number);
    const now = given.map((x) => {
      const target = layerMap[redirect(x < 0 ? i + x : x)];
      return x < 0 ? target - layerMap[i] : target;
    });
    if (now.some((x, k) => x !== given[k])) edits.set(i, { [key]: now.join(',') });
  });
  const file = o.file ?? spec.file;
  const text = removeSections(rewriteCfg(cfgText, edits, file), gone, file);
  const newSpec = parseCfg(text, file);
  const newLayers = layers.filter((x): x is LayerWeights => x !== null);
  checkSizes(newSpec, newLayers);
  checkWiring(spec, newSpec, layerMap, redirect);
  return { cfgText: text, spec: newSpec, weights: { header: { ...w.header }, layers: newLayers }, layerMap, removed, notes };
}

/** The new network must read what the old one did, renumbered (a programming error otherwise). */
function checkWiring(old: NetworkSpec, spec: NetworkSpec, layerMap: number[], redirect: (i: number) => number): void {
  old.layers.forEach((l, i) => {
    if (layerMap[i] < 0) return;
    const n = spec.layers[layerMap[i]];
    const want = readsOf(old, i).map((r) => layerMap[redirect(r)]);
    const got = readsOf(spec, layerMap[i]);
    if (n.type !== l.type || want.join() !== got.join()) {
      throw new Error(`removeBlocks: layer ${i} (${l.type}) became layer ${layerMap[i]} (${n.type}) reading ${got.join()}, not ${want.join()}`);
    }
  });
}

function nonZero(d: Float64Array): Float64Array | null {
  return d.some((x) => x !== 0) ? d : null;
}

/** Channels of a layer's output, as the channel graph counts them. */
function channelsOf(l: LayerSpec): number {
  if (l.type === 'connected') return l.outputs;
  return l.outC > 0 && l.outH * l.outW * l.outC === l.outputs ? l.outC : l.outputs;
}

function hasBatchNorm(l: LayerSpec): boolean {
  return l.params.some((p) => p.name === 'scales');
}

/** True when a conv or connected layer outputs exactly act(bias): its scales, or without batch norm its weights, are all 0. */
function outputsItsBias(spec: NetworkSpec, w: WeightsFile, i: number): boolean {
  const a = layerArray(spec, w, i, hasBatchNorm(spec.layers[i]) ? 'scales' : 'weights');
  return a.every((x) => x === 0);
}

/** The branch's output per channel, taken as constant, and whether it is exactly that. */
function branchConstant(spec: NetworkSpec, w: WeightsFile, r: BlockRemoval, notes: string[]): { value: Float64Array; exact: boolean } {
  const b = r.block;
  const source = r.source ?? b.tail;
  const l = spec.layers[source];
  if (!(source > b.from && source <= b.tail && isProducer(l.type))) throw new Error(`removeBlocks: layer ${source} is no conv or connected layer of ${blockLayers(b)}`);
  let value = r.values
    ? Float64Array.from(r.values)
    : activate(Float64Array.from(layerArray(spec, w, source, 'biases')), (l as LayerSpec & { activation: Activation }).activation);
  let exact = !r.values && outputsItsBias(spec, w, source);
  if (!exact && !r.values) {
    const what = hasBatchNorm(l) ? `its batch-norm scales are not all 0 (mean |gamma| ${meanAbs(layerArray(spec, w, source, 'scales')).toPrecision(3)})` : 'its weights are not all 0';
    notes.push(`${blockLayers(b)}: the branch's output is taken to be act(bias) of ${layerName(spec, source)}, but ${what}: an approximation (fine-tune after)`);
  }
  for (let j = source + 1; j <= b.tail; j++) {
    const through = constantThrough(spec, w, j, value);
    value = through.value;
    if (!through.exact && exact) {
      exact = false;
      notes.push(`${blockLayers(b)}: ${layerName(spec, j)} pads its input: the constant it makes is exact only away from the image border`);
    }
  }
  return { value, exact };
}

function meanAbs(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]);
  return a.length ? s / a.length : 0;
}

/** What layer j outputs, per channel, when every channel of its input is the constant `v`. */
function constantThrough(spec: NetworkSpec, w: WeightsFile, j: number, v: Float64Array): { value: Float64Array; exact: boolean } {
  const l = spec.layers[j];
  if (l.type === 'maxpool' || l.type === 'avgpool' || l.type === 'dropout') return { value: v, exact: true };
  if (l.type === 'batchnorm') {
    const scales = layerArray(spec, w, j, 'scales');
    const mean = layerArray(spec, w, j, 'rolling_mean');
    const variance = layerArray(spec, w, j, 'rolling_variance');
    return { value: v.map((x, c) => ((x - mean[c]) / inferenceDenominator(variance[c])) * scales[c]), exact: true };
  }
  if (!isProducer(l.type)) throw new DarknetError(`${layerName(spec, j)}: a constant does not pass through it`);
  const sums = inputSums(spec, w, j, v);
  const biases = layerArray(spec, w, j, 'biases');
  const pre = hasBatchNorm(l)
    ? sums.map((x, f) => (layerArray(spec, w, j, 'scales')[f] * (x - layerArray(spec, w, j, 'rolling_mean')[f])) / inferenceDenominator(layerArray(spec, w, j, 'rolling_variance')[f]) + biases[f])
    : sums.map((x, f) => x + biases[f]);
  const padded = l.type === 'convolutional' && (l as ConvolutionalSpec).padding > 0 && sums.some((x) => x !== 0);
  return { value: activate(pre, (l as LayerSpec & { activation: Activation }).activation), exact: !padded };
}

/**
 * Per filter of conv / connected layer j: what inputs holding `d` per channel add before its
 * bias, sum_j d_j * (the sum of its weights over channel j: a kernel slice, or a block of h * w
 * columns after a flatten).
 */
function inputSums(spec: NetworkSpec, w: WeightsFile | LayerWeights, j: number, d: Float64Array): Float64Array {
  const l = spec.layers[j];
  const weights = 'layers' in w ? layerArray(spec, w, j, 'weights') : w.weights!;
  const filters = l.type === 'connected' ? l.outputs : l.outC;
  if (l.type === 'convolutional' && (l as ConvolutionalSpec).groups > 1) {
    throw new DarknetError(`${layerName(spec, j)} is a grouped convolution: a removed block's constant cannot be folded into it`);
  }
  const per = weights.length / filters / d.length; // weights per filter per input channel
  if (!Number.isInteger(per)) throw new Error(`removeBlocks: ${layerName(spec, j)} reads ${d.length} channels, its weights do not split into them`);
  const out = new Float64Array(filters);
  for (let f = 0; f < filters; f++) {
    let s = 0;
    for (let c = 0; c < d.length; c++) {
      if (d[c] === 0) continue;
      let slice = 0;
      for (let t = (f * d.length + c) * per; t < (f * d.length + c + 1) * per; t++) slice += weights[t];
      s += d[c] * slice;
    }
    out[f] = s;
  }
  return out;
}

/**
 * Layer i of the input network, which stays: folds what its input lacks into its own arrays
 * (`into`, a copy), or passes it on; returns what its output lacks.
 */
function carry(spec: NetworkSpec, i: number, lacks: Array<Float64Array | null>, into: LayerWeights, notes: string[]): Float64Array | null {
  const l = spec.layers[i];
  const reads = readsOf(spec, i);
  if (reads.every((r) => !lacks[r])) return null;
  const name = layerName(spec, i);
  const d = lacks[i - 1];
  switch (l.type) {
    case 'convolutional':
    case 'connected': {
      const lost = inputSums(spec, into, i, d!);
      if (hasBatchNorm(l)) into.rolling_mean = into.rolling_mean!.map((m, f) => m - lost[f]);
      else into.biases = into.biases!.map((b, f) => b + lost[f]);
      if (l.type === 'convolutional' && (l as ConvolutionalSpec).padding > 0) {
        notes.push(`${name}: padding ${(l as ConvolutionalSpec).padding}: the removed block's constant is folded exactly only away from the image border`);
      }
      return null;
    }
    case 'batchnorm':
      into.rolling_mean = into.rolling_mean!.map((m, c) => m - d![c]);
      return null;
    case 'maxpool':
    case 'avgpool':
    case 'dropout':
      return d;
    case 'route': {
      if (channelsOf(l) !== reads.reduce((s, r) => s + channelsOf(spec.layers[r]), 0)) {
        throw new DarknetError(`${name} concatenates layers of different sizes into a flat vector: a removed block's constant cannot pass through it`);
      }
      const out = new Float64Array(channelsOf(l));
      let at = 0;
      for (const r of reads) {
        if (lacks[r]) out.set(lacks[r]!, at);
        at += channelsOf(spec.layers[r]);
      }
      return out;
    }
    case 'shortcut': {
      const s = l as ShortcutSpec;
      if (s.fromC !== s.c || s.fromW !== s.w || s.fromH !== s.h) {
        throw new DarknetError(`${name} adds layers of different shapes: a removed block's constant cannot pass through it`);
      }
      const out = new Float64Array(s.c).map((_, k) => s.alpha * (d?.[k] ?? 0) + s.beta * (lacks[s.from]?.[k] ?? 0));
      if (s.activation !== 'linear') notes.push(`${name}: a removed block's constant passes its ${s.activation} activation as if it were linear (an approximation)`);
      return nonZero(out);
    }
    default:
      throw new DarknetError(`a removed block's constant output reaches ${name}, which cannot take it in (only conv, connected and [batchnorm] layers fold it; pooling, dropout, [route] and [shortcut] pass it on)`);
  }
}
