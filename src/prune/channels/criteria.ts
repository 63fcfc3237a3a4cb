import type { NetworkSpec } from '../../cfg/config';
import type { Network } from '../../engine/network';
import type { BatchSource } from '../../engine/train';
import { DarknetError } from '../../errors';
import type { WeightsFile } from '../../io/weights';
import type { FloatArray } from '../../kernels/types';
import { layerArray } from './layers';

/**
 * How important each filter of a convolutional layer (each neuron of a connected one) is:
 * one score per filter, higher = more important; pruning removes the lowest. Scores are
 * compared only within a layer (each layer keeps its own fraction), so their scales across
 * layers do not matter.
 *
 * - `l1`: sum of |w| over the filter's weights (Li et al. 2017, "Pruning Filters for
 *   Efficient ConvNets"); a connected neuron's row of weights.
 * - `bn`: |gamma|, the filter's batch-norm scale (Liu et al. 2017, network slimming); layers
 *   without batch norm are scored by `l1` and named in `withoutBatchNorm`.
 * - `taylor`: |mean over images and positions of activation * gradient of the loss| per
 *   channel, from a few training batches (Molchanov et al. 2017, the first-order Taylor
 *   estimate of the loss change when the channel is zeroed).
 */

export const CRITERIA = ['l1', 'bn', 'taylor'] as const;
export type Criterion = (typeof CRITERIA)[number];

/** Per convolutional or connected layer (net index): one score per filter, in filter order. */
export type ChannelScores = Map<number, Float64Array>;

/** Layers whose filters make channels, as the criteria and the surgery see them. */
export function isProducer(type: string): type is 'convolutional' | 'connected' {
  return type === 'convolutional' || type === 'connected';
}

/** Filters (conv) or neurons (connected) of a producer layer. */
export function filterCount(spec: NetworkSpec, layer: number): number {
  const l = spec.layers[layer];
  return l.type === 'connected' ? l.outputs : l.outC;
}

/**
 * L1 norm of each filter's weights (each connected neuron's row).
 * @example l1Scores(spec, weights).get(0); // conv1: Float64Array of 20 sums of |w|
 */
export function l1Scores(spec: NetworkSpec, w: WeightsFile): ChannelScores {
  const scores: ChannelScores = new Map();
  spec.layers.forEach((l, i) => {
    if (!isProducer(l.type)) return;
    const weights = layerArray(spec, w, i, 'weights');
    const n = filterCount(spec, i);
    const per = weights.length / n; // conv [n, c / groups, size, size]; connected [outputs, inputs]
    const s = new Float64Array(n);
    for (let f = 0; f < n; f++) {
      let sum = 0;
      for (let j = f * per; j < (f + 1) * per; j++) sum += Math.abs(weights[j]);
      s[f] = sum;
    }
    scores.set(i, s);
  });
  return scores;
}

/** |gamma| of each filter with batch norm; the other producer layers scored by L1 and listed. */
export function bnScores(spec: NetworkSpec, w: WeightsFile): { scores: ChannelScores; withoutBatchNorm: number[] } {
  const scores = l1Scores(spec, w);
  const withoutBatchNorm: number[] = [];
  for (const i of scores.keys()) {
    if (!spec.layers[i].params.some((p) => p.name === 'scales')) {
      withoutBatchNorm.push(i);
      continue;
    }
    scores.set(i, Float64Array.from(layerArray(spec, w, i, 'scales'), Math.abs));
  }
  return { scores, withoutBatchNorm };
}

export interface TaylorResult {
  scores: ChannelScores;
  /** per producer layer, the mean of each channel's output over the batches (train mode) */
  meanActivation: Map<number, Float64Array>;
  /** images the estimate saw */
  images: number;
}

/**
 * Molchanov et al.'s first-order Taylor criterion on `batches` training batches of a built
 * network with its weights loaded: score = |sum of output * dLoss/d(output)| / (images *
 * positions). Forward runs in training mode (batch norm on batch statistics) so that the
 * gradient is the training one; the network's parameters, rolling statistics and update
 * buffers are restored afterwards, so a net used for training goes on as if untouched.
 */
export async function taylorScores(net: Network, source: BatchSource, batches: number): Promise<TaylorResult> {
  if (!(Number.isInteger(batches) && batches >= 1)) throw new DarknetError(`taylor: batches must be a whole number >= 1, not ${batches}`);
  const stop = net.layers.findIndex((l) => l.spec.stopbackward);
  if (stop >= 0 && net.layers.some((l, i) => i <= stop && isProducer(l.spec.type))) {
    throw new DarknetError(`taylor needs the gradient of every layer: layer ${stop} has stopbackward=1; use --criterion l1 or bn`);
  }
  const k = net.k;
  const producers = net.layers.map((l, i) => i).filter((i) => isProducer(net.layers[i].spec.type));
  const products = new Map<number, Float64Array>(); // sum of output * delta per channel
  const activations = new Map<number, Float64Array>(); // sum of output per channel
  for (const i of producers) {
    products.set(i, new Float64Array(filterCount(net.spec, i)));
    activations.set(i, new Float64Array(filterCount(net.spec, i)));
  }
  const saved = snapshot(net);
  try {
    for (let b = 0; b < batches; b++) {
      const { x, y } = await source.next();
      k.upload(net.input, x);
      k.upload(net.truth, y);
      net.forward(true, true);
      net.backward((i) => {
        if (!products.has(i)) return;
        // NOTE: read here, before the layer's own backward turns its delta into the
        // gradient of its pre-activation (in place).
        accumulate(k.read(net.layers[i].output), k.read(net.layers[i].delta), net.batch, products.get(i)!, activations.get(i)!);
      });
    }
  } finally {
    restore(net, saved);
  }
  const images = batches * net.batch;
  const scores: ChannelScores = new Map();
  const meanActivation = new Map<number, Float64Array>();
  for (const i of producers) {
    const l = net.layers[i].spec;
    const positions = images * (l.type === 'connected' ? 1 : l.outH * l.outW);
    scores.set(i, products.get(i)!.map((v) => Math.abs(v) / positions));
    meanActivation.set(i, activations.get(i)!.map((v) => v / positions));
  }
  return { scores, meanActivation, images };
}

/** Adds one batch's `[batch, channels, positions]` output * delta and output into per-channel sums. */
function accumulate(output: FloatArray, delta: FloatArray, batch: number, products: Float64Array, sums: Float64Array): void {
  const channels = products.length;
  const positions = output.length / (batch * channels);
  for (let b = 0; b < batch; b++) {
    for (let f = 0; f < channels; f++) {
      const base = (b * channels + f) * positions;
      let p = 0;
      let s = 0;
      for (let j = base; j < base + positions; j++) {
        p += output[j] * delta[j];
        s += output[j];
      }
      products[f] += p;
      sums[f] += s;
    }
  }
}

/** Host copies of every parameter tensor and update buffer. */
function snapshot(net: Network): FloatArray[][] {
  return net.layers.map((l) => l.params.flatMap((p) => [net.k.read(p.tensor), ...(p.updates ? [net.k.read(p.updates)] : [])]));
}

function restore(net: Network, saved: FloatArray[][]): void {
  net.layers.forEach((l, i) => {
    let j = 0;
    for (const p of l.params) {
      net.k.upload(p.tensor, saved[i][j++]);
      if (p.updates) net.k.upload(p.updates, saved[i][j++]);
    }
  });
}
