import { GRADIENT_FROM_INPUT, type Activation, type ChannelShape, type Kernels, type SparseMatrix, type Tensor } from '../kernels/types';
import type { ParamSpec, ParamTensor, SparseMode, UpdateArgs } from '../engine/layer';
import { mulberry32 } from '../engine/random';
import type { BatchNorm } from './batchnorm-core';

/**
 * What the layers with weights (convolutional, connected) share, as plain functions over
 * the tensors each layer carries: darknet's steps around the layer's own linear op
 * (batch norm or not, biases, activation), the update, pruning masks and initial weights.
 */

/** The tensors and settings of a convolutional or connected layer that these functions use. */
export interface WeightedLayer {
  readonly spec: { readonly index: number; readonly activation: Activation; readonly learningRateScale: number };
  /** `[batch, channels, spatial]` (connected: spatial 1) */
  readonly output: Tensor;
  readonly delta: Tensor;
  /** `[channels]` */
  readonly biases: Tensor;
  readonly biasUpdates: Tensor;
  readonly weights: Tensor;
  /** accumulates -dL/d(weights) (darknet's sign), then carries momentum */
  readonly weightUpdates: Tensor;
  /** `[weights]`, 1 keeps, 0 prunes; null when dense */
  readonly mask: Tensor | null;
  readonly bn: BatchNorm | null;
  /**
   * `[batch, outputs]`: the activation's input, for those whose gradient needs it (mish;
   * see activationInputTensor); null or absent for the others
   */
  readonly activationInput?: Tensor | null;
}

/** A tensor of `size` for the activation's input when `act` needs it for its gradient (mish), else null. */
export function activationInputTensor(k: Kernels, act: Activation, size: number): Tensor | null {
  return GRADIENT_FROM_INPUT.has(act) ? k.alloc(size) : null;
}

/**
 * Whether `--sparse mode` puts this layer on the sparse path: never without k.sparse or
 * with `off`, always with `on`, with `auto` from `autoSparsity` zero weights (counted in
 * the mask when there is one) up.
 */
export function sparseWanted(k: Kernels, l: WeightedLayer, mode: SparseMode, autoSparsity: number): boolean {
  if (mode === 'off' || !k.sparse) return false;
  if (mode === 'on') return true;
  const kept = k.read(l.mask ?? l.weights);
  let zeros = 0;
  for (let i = 0; i < kept.length; i++) if (kept[i] === 0) zeros++;
  return zeros >= autoSparsity * kept.length;
}

/**
 * After an update, a layer's compressed weights (`sparse.A`): with a mask the kept
 * positions stay and only the values change (refreshed in place); without one the zeros
 * may have moved, so they are dropped and packed again when next used.
 */
export function refreshSparseWeights(k: Kernels, l: WeightedLayer, sparse: { A: SparseMatrix | null } | null): void {
  if (!sparse?.A) return;
  if (l.mask) {
    k.sparse!.refresh(sparse.A, l.weights);
  } else {
    k.sparse!.free(sparse.A);
    sparse.A = null;
  }
}

/**
 * NOTE: weights are seeded by layer index (mulberry32(WEIGHT_SEED + index)), so the same
 * cfg always starts from the same weights; darknet's rand() does not repeat.
 */
export const WEIGHT_SEED = 0x5eed;

/** `count` initial weights, each `draw(random)` from the layer's seeded generator. */
export function initialWeights(index: number, count: number, draw: (random: () => number) => number): number[] {
  const random = mulberry32(WEIGHT_SEED + index);
  return Array.from({ length: count }, () => draw(random));
}

/** The layer's tensors in the order of `params` (its .weights order), each with its update buffer. */
export function weightedParams(params: readonly ParamSpec[], l: WeightedLayer): ParamTensor[] {
  const bn = l.bn;
  const tensors: Record<ParamSpec['name'], Omit<ParamTensor, 'name'> | undefined> = {
    biases: { tensor: l.biases, updates: l.biasUpdates },
    scales: bn ? { tensor: bn.scales, updates: bn.scaleUpdates } : undefined,
    rolling_mean: bn ? { tensor: bn.rollingMean } : undefined,
    rolling_variance: bn ? { tensor: bn.rollingVariance } : undefined,
    weights: { tensor: l.weights, updates: l.weightUpdates },
  };
  return params.map((p) => ({ name: p.name, ...tensors[p.name]! }));
}

/** After the layer's linear op into `output`: batch norm when on, biases, activation, in place. */
export function forwardNormBiasActivation(k: Kernels, l: WeightedLayer, channels: ChannelShape, train: boolean): void {
  l.bn?.forward(l.output, train);
  k.addBias(l.output, l.biases, channels);
  if (l.activationInput) k.copy(l.activationInput, l.output);
  k.activate(l.output, l.output, l.spec.activation);
}

/**
 * Before the layer's weight and input gradients: `delta` through the activation, the
 * bias gradient, and batch norm's backward when on, in place.
 */
export function backwardNormBiasActivation(k: Kernels, l: WeightedLayer, channels: ChannelShape): void {
  const act = l.spec.activation;
  if (GRADIENT_FROM_INPUT.has(act) && !l.activationInput) {
    throw new Error(`layer ${l.spec.index}: the ${act} gradient needs the activation's input, which this layer does not keep`);
  }
  k.gradient(l.delta, l.activationInput ?? l.output, act);
  k.backwardBias(l.biasUpdates, l.delta, channels);
  l.bn?.backward(l.delta);
}

/**
 * darknet's update_convolutional_layer and update_connected_layer: biases and batch-norm
 * scales without decay, then the weights with decay and the mask.
 */
export function updateWeighted(k: Kernels, l: WeightedLayer, a: UpdateArgs): void {
  const p = { rate: a.learningRate * l.spec.learningRateScale, momentum: a.momentum, batch: a.batch };
  k.sgdUpdate(l.biases, l.biasUpdates, null, { ...p, decay: 0 });
  l.bn?.update(p, a.scaleL1);
  k.sgdUpdate(l.weights, l.weightUpdates, l.mask, { ...p, decay: a.decay });
}

/**
 * Stores `mask` on the backend (in the layer's previous mask tensor when it has one) and
 * zeroes the masked weights and their momentum now, so a pruned weight is 0 before the
 * first update too. Returns the layer's new mask tensor, or null for none.
 */
export function applyMask(k: Kernels, l: WeightedLayer, mask: ArrayLike<number> | null): Tensor | null {
  if (mask === null) return null;
  if (mask.length !== l.weights.size) throw new Error(`mask has ${mask.length} entries, the weights ${l.weights.size}`);
  const t = l.mask ?? k.alloc(l.weights.size);
  k.upload(t, mask);
  for (const buffer of [l.weights, l.weightUpdates]) {
    const values = k.read(buffer);
    for (let i = 0; i < values.length; i++) if (mask[i] === 0) values[i] = 0;
    k.upload(buffer, values);
  }
  return t;
}
