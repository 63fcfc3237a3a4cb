import type { NetworkSpec } from '../../cfg/config';
import { parseCfg } from '../../cfg/parser';
import { rewriteCfg } from '../../cfg/write';
import type { LayerSpec } from '../../engine/layer';
import { DarknetError } from '../../errors';
import type { LayerWeights, WeightsFile } from '../../io/weights';
import type { Activation } from '../../kernels/types';
import { inferenceDenominator } from '../../layers/batchnorm-core';
import type { ConvolutionalSpec } from '../../layers/convolutional';
import type { ShortcutSpec } from '../../layers/shortcut';
import { blockForLayer, removeBlocks, type BlockRemoval, type RemovedBlock } from './blocks';
import { channelGraph, inputChannels, type Channel, type ChannelGraph } from './graph';
import { activate, checkSizes, copyLayer } from './fold';
import { layerArray, layerName } from './layers';
import { isKept, keptFilters, type ChannelPlan } from './plan';

/**
 * Network surgery: a plan's removed channels cut out of the cfg and the weights, giving a
 * smaller plain darknet model (DESIGN.md §8). Removing filter f of a layer removes its bias,
 * its batch-norm scale, mean and variance and its weights row, and input channel f of every
 * layer that reads it, wherever it sits in that layer's input (after a maxpool, inside a
 * route's concat, as h * w columns of a connected layer after a flatten).
 *
 * Folding: a removed channel is taken to output a constant v = act(bias) (exactly its
 * output when its batch-norm scale is 0, or, without batch norm, when its weights are all
 * 0; `foldValues` may give measured means instead), carried through pooling, [batchnorm]
 * and [shortcut] layers. Each reader adds what v contributed through its weights to its
 * bias, or, when it has batch norm, subtracts it from its rolling mean, so the remaining
 * network computes what the whole one did.
 * A plan that leaves a layer no filter (`emptied`, or every filter removed) removes the
 * residual block around it first (blocks.ts), then cuts the rest; without such a block it is
 * refused with the reason.
 * NOTE: for a convolutional reader with padding, a constant input contributes less near
 * the border (taps fall outside the image), so the fold (the full kernel sum) is exact
 * only where the kernel lies inside the image; the border drifts until fine-tuning.
 */

export interface ShrinkOptions {
  /** names the new cfg in errors (default: the spec's file) */
  file?: string;
  /** per conv / connected layer: the value each removed filter is taken to output, instead of act(bias) */
  foldValues?: ReadonlyMap<number, ArrayLike<number>>;
}

/** One conv or connected layer before and after. */
export interface LayerChange {
  index: number;
  /** e.g. `layer 2 (conv2)` */
  name: string;
  type: LayerSpec['type'];
  filtersBefore: number;
  filtersAfter: number;
  /** the kept filters' old indexes */
  kept: number[];
}

export interface ShrinkResult {
  cfgText: string;
  spec: NetworkSpec;
  weights: WeightsFile;
  /** the layers that shrank (indexes of the input network) */
  changes: LayerChange[];
  /** approximations made (padding folds), one line each */
  notes: string[];
  /** when layers were removed (a plan's emptied layers): per layer of the input, its index in the output, or -1 */
  layerMap?: number[];
  /** the residual blocks removed with the emptied layers */
  blocks?: RemovedBlock[];
}

/**
 * Applies a plan to the cfg text it was parsed from and its weights.
 * @example
 *   const g = channelGraph(spec);
 *   const plan = planChannels(spec, g, l1Scores(spec, w), new Map([[0, 0.5]]));
 *   const small = shrink(cfgText, spec, w, g, plan);
 *   writeWeights('small.weights', small.weights, small.spec);
 */
export function shrink(
  cfgText: string, spec: NetworkSpec, weights: WeightsFile, g: ChannelGraph, plan: ChannelPlan, o: ShrinkOptions = {},
): ShrinkResult {
  checkPlan(g, plan);
  const emptied = new Set(plan.emptied ?? []);
  for (const layer of g.producers.keys()) if (keptFilters(g, plan, layer).length === 0) emptied.add(layer);
  if (emptied.size) return shrinkWithBlocks(cfgText, spec, weights, g, plan, emptied, o);
  const values = channelValues(spec, weights, g, o.foldValues);
  const layers: LayerWeights[] = [];
  const edits = new Map<number, Record<string, number>>();
  const changes: LayerChange[] = [];
  const notes: string[] = [];

  spec.layers.forEach((l, i) => {
    const inCh = inputChannels(g, i);
    const inValues = i === 0 ? new Float64Array(inCh.length) : values[i - 1];
    const keptIn = inCh.map((ch, j) => (isKept(g, plan, ch.id) ? j : -1)).filter((j) => j >= 0);
    const ids = g.producers.get(i);
    const keptOut = ids ? keptFilters(g, plan, i) : [];
    const changed = keptIn.length < inCh.length || (ids !== undefined && keptOut.length < ids.length);
    if (!changed) {
      layers.push(copyLayer(weights.layers[i] ?? {}));
      return;
    }
    if (l.type === 'convolutional' || l.type === 'connected') {
      const cut = l.type === 'convolutional'
        ? cutConvolutional(spec, weights, l as ConvolutionalSpec, inCh, inValues, keptIn, keptOut, notes)
        : cutConnected(spec, weights, l, inCh, inValues, keptIn, keptOut);
      layers.push(cut);
      if (keptOut.length < ids!.length) {
        edits.set(i, l.type === 'convolutional' ? { filters: keptOut.length } : { output: keptOut.length });
        changes.push({ index: i, name: layerName(spec, i), type: l.type, filtersBefore: ids!.length, filtersAfter: keptOut.length, kept: keptOut });
      }
      return;
    }
    // [batchnorm] keeps per-channel arrays of its input's channels; the other layers have none.
    const out: LayerWeights = {};
    for (const p of l.params) out[p.name] = pick(layerArray(spec, weights, i, p.name), keptIn);
    layers.push(out);
  });

  const file = o.file ?? spec.file;
  const newText = rewriteCfg(cfgText, edits, file);
  const newSpec = parseCfg(newText, file);
  checkSizes(newSpec, layers);
  return { cfgText: newText, spec: newSpec, weights: { header: { ...weights.header }, layers }, changes, notes };
}

/** A plan made by hand must not remove what the graph protects. */
function checkPlan(g: ChannelGraph, plan: ChannelPlan): void {
  for (const cls of plan.removed) {
    const why = g.protectedClasses.get(cls);
    if (why) throw new DarknetError(`cannot remove channel class ${cls}: ${why}`);
  }
}

/**
 * A plan that empties layers: the residual block around each goes first (blocks.ts; the
 * branch's constant, from the last emptied layer in it, is folded into the readers), then
 * the plan's other channels go from the smaller network, mapped onto its graph.
 */
function shrinkWithBlocks(
  cfgText: string, spec: NetworkSpec, weights: WeightsFile, g: ChannelGraph, plan: ChannelPlan, emptied: Set<number>, o: ShrinkOptions,
): ShrinkResult {
  const bySource = new Map<number, BlockRemoval>(); // by the block's shortcut
  for (const layer of [...emptied].sort((a, b) => a - b)) {
    const { block, why } = blockForLayer(spec, layer);
    if (!block) throw new DarknetError(`${layerName(spec, layer)}: every filter would go, and the layer cannot be removed: ${why}`);
    bySource.set(block.shortcut, { block, source: layer, values: o.foldValues?.get(layer) });
  }
  const file = o.file ?? spec.file;
  const cut = removeBlocks(cfgText, spec, weights, [...bySource.values()], { file });
  const g2 = channelGraph(cut.spec);
  // a filter of the smaller network goes when its filter in the input network did
  const removed = new Set<number>();
  const back: number[] = [];
  cut.layerMap.forEach((to, from) => { if (to >= 0) back[to] = from; });
  for (const [layer, ids] of g2.producers) {
    const old = g.producers.get(back[layer])!;
    ids.forEach((id, f) => { if (!isKept(g, plan, old[f])) removed.add(g2.classOf(id)); });
  }
  const foldValues = o.foldValues && new Map([...o.foldValues].filter(([l]) => cut.layerMap[l] >= 0).map(([l, v]) => [cut.layerMap[l], v]));
  const rest = shrink(cut.cfgText, cut.spec, cut.weights, g2, { removed }, { file, foldValues });
  return {
    ...rest,
    changes: rest.changes.map((c) => ({ ...c, index: back[c.index], name: layerName(spec, back[c.index]) })),
    notes: [...cut.notes, ...rest.notes],
    layerMap: cut.layerMap,
    blocks: cut.removed,
  };
}

/** Per layer, the value each output channel is taken to hold when it is removed (float64). */
function channelValues(
  spec: NetworkSpec, w: WeightsFile, g: ChannelGraph, foldValues: ReadonlyMap<number, ArrayLike<number>> | undefined,
): Float64Array[] {
  const values: Float64Array[] = [];
  spec.layers.forEach((l, i) => {
    const inCh = inputChannels(g, i);
    const inValues = i === 0 ? new Float64Array(inCh.length) : values[i - 1];
    const given = foldValues?.get(i);
    let v: Float64Array;
    if (g.producers.has(i)) {
      if (given) {
        if (given.length !== g.producers.get(i)!.length) throw new DarknetError(`${layerName(spec, i)}: ${given.length} fold values for ${g.producers.get(i)!.length} filters`);
        v = Float64Array.from(given);
      } else {
        v = activate(Float64Array.from(layerArray(spec, w, i, 'biases')), (l as LayerSpec & { activation: Activation }).activation);
      }
    } else if (l.type === 'batchnorm') {
      const scales = layerArray(spec, w, i, 'scales');
      const mean = layerArray(spec, w, i, 'rolling_mean');
      const variance = layerArray(spec, w, i, 'rolling_variance');
      // inference batch norm as darknet: (x - mean) / (sqrt(var) + 1e-6) * scale; the layer's biases are never loaded (0)
      v = inValues.map((x, c) => ((x - mean[c]) / inferenceDenominator(variance[c])) * scales[c]);
    } else if (l.type === 'route') {
      v = new Float64Array(g.outputs[i].length);
      let at = 0;
      for (const r of (l as LayerSpec & { layers: number[] }).layers) {
        v.set(values[r], at);
        at += values[r].length;
      }
    } else if (l.type === 'shortcut') {
      const s = l as ShortcutSpec;
      const from = values[s.from];
      const sum = inValues.map((x, k) => (k < from.length ? s.alpha * x + s.beta * from[k] : x));
      v = activate(sum, s.activation);
    } else if (g.outputs[i].length === inCh.length) {
      // maxpool, avgpool (of a constant: the constant), dropout (identity at inference), softmax, cost
      v = Float64Array.from(inValues);
    } else {
      // a layer pruning does not know: its channels are all protected, their values never folded
      v = new Float64Array(g.outputs[i].length);
    }
    values.push(v);
  });
  return values;
}

function cutConvolutional(
  spec: NetworkSpec, w: WeightsFile, l: ConvolutionalSpec, inCh: Channel[], inValues: Float64Array,
  keptIn: number[], keptOut: number[], notes: string[],
): LayerWeights {
  const i = l.index;
  if (l.groups > 1) throw new Error(`surgery: ${layerName(spec, i)} is grouped; the graph protects its channels`);
  const old = layerArray(spec, w, i, 'weights');
  const c = inCh.length;
  const taps = l.size * l.size;
  const removedIn = removedInputs(inCh, keptIn, inValues);
  // what each kept filter lost: sum over removed channels j of v_j * sum of its kernel slice [f, j]
  const lost = keptOut.map((f) => {
    let sum = 0;
    for (const j of removedIn) {
      let slice = 0;
      for (let t = 0; t < taps; t++) slice += old[(f * c + j) * taps + t];
      sum += inValues[j] * slice;
    }
    return sum;
  });
  if (l.padding > 0 && lost.some((x) => x !== 0)) {
    notes.push(`${layerName(spec, i)}: padding ${l.padding}: the removed input channels' constant is folded exactly only away from the image border`);
  }
  const weights = new Float32Array(keptOut.length * keptIn.length * taps);
  keptOut.forEach((f, fo) => keptIn.forEach((j, jo) => {
    weights.set(old.subarray((f * c + j) * taps, (f * c + j + 1) * taps), (fo * keptIn.length + jo) * taps);
  }));
  return { ...perFilter(spec, w, l, keptOut, lost), weights };
}

function cutConnected(
  spec: NetworkSpec, w: WeightsFile, l: LayerSpec, inCh: Channel[], inValues: Float64Array, keptIn: number[], keptOut: number[],
): LayerWeights {
  const i = l.index;
  const old = layerArray(spec, w, i, 'weights'); // [outputs, inputs]
  const offsets: number[] = [];
  inCh.reduce((at, ch) => (offsets.push(at), at + ch.length), 0);
  const columns = keptIn.flatMap((j) => Array.from({ length: inCh[j].length }, (_, k) => offsets[j] + k));
  const removedIn = removedInputs(inCh, keptIn, inValues);
  const lost = keptOut.map((o) => {
    let sum = 0;
    for (const j of removedIn) {
      let block = 0;
      for (let k = 0; k < inCh[j].length; k++) block += old[o * l.inputs + offsets[j] + k];
      sum += inValues[j] * block;
    }
    return sum;
  });
  const weights = new Float32Array(keptOut.length * columns.length);
  keptOut.forEach((o, oo) => columns.forEach((col, k) => {
    weights[oo * columns.length + k] = old[o * l.inputs + col];
  }));
  return { ...perFilter(spec, w, l, keptOut, lost), weights };
}

/**
 * The kept filters' biases and batch-norm arrays, with `lost` (what the removed inputs added
 * before the bias) folded back: into the bias, or out of the rolling mean with batch norm,
 * since then (x + lost - mean) = (x - (mean - lost)).
 */
function perFilter(spec: NetworkSpec, w: WeightsFile, l: LayerSpec, keptOut: number[], lost: number[]): LayerWeights {
  const i = l.index;
  const bn = l.params.some((p) => p.name === 'scales');
  const biases = pick(layerArray(spec, w, i, 'biases'), keptOut);
  if (!bn) {
    lost.forEach((x, k) => { biases[k] = biases[k] + x; });
    return { biases };
  }
  const rollingMean = pick(layerArray(spec, w, i, 'rolling_mean'), keptOut);
  lost.forEach((x, k) => { rollingMean[k] = rollingMean[k] - x; });
  return {
    biases,
    scales: pick(layerArray(spec, w, i, 'scales'), keptOut),
    rolling_mean: rollingMean,
    rolling_variance: pick(layerArray(spec, w, i, 'rolling_variance'), keptOut),
  };
}

/** Input channels removed with a non-zero value to fold. */
function removedInputs(inCh: Channel[], keptIn: number[], inValues: Float64Array): number[] {
  const kept = new Set(keptIn);
  return inCh.map((_, j) => j).filter((j) => !kept.has(j) && inValues[j] !== 0);
}

/** The entries `kept` of a per-channel array, in order. */
function pick(a: Float32Array, kept: number[]): Float32Array {
  return Float32Array.from(kept, (k) => a[k]);
}
