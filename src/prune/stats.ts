import type { NetworkSpec } from '../cfg/config';
import type { LayerSpec } from '../engine/layer';
import type { WeightsFile } from '../io/weights';

/**
 * Sparsity of a weights file, counted from the arrays themselves (never from
 * bookkeeping): per prunable layer and in total, weights, non-zeros, sparsity, dense
 * FLOPs and the FLOPs left if a kernel skipped every zero weight.
 */
export interface LayerSparsity {
  index: number;
  type: LayerSpec['type'];
  /** weights only: biases and batch-norm parameters are never pruned */
  weights: number;
  nonzero: number;
  sparsity: number;
  /** all parameters of the layer (weights, biases, batch-norm) */
  params: number;
  /** FLOPs of one image's forward pass */
  flops: number;
  /** flops * nonzero / weights: multiply-adds with a zero weight skipped */
  effectiveFlops: number;
}

export interface SparsityReport {
  layers: LayerSparsity[];
  total: {
    weights: number;
    nonzero: number;
    sparsity: number;
    params: number;
    /** non-zero parameters (biases and batch-norm included) */
    nonzeroParams: number;
    flops: number;
    effectiveFlops: number;
    /** dense weights / non-zero weights: Han et al.'s "x fewer weights" */
    compression: number;
  };
}

export const PRUNABLE: ReadonlySet<LayerSpec['type']> = new Set(['convolutional', 'connected']);

function countNonzero(a: Float32Array | undefined): number {
  if (!a) return 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) n++;
  return n;
}

export function sparsityOf(spec: NetworkSpec, w: WeightsFile): SparsityReport {
  const layers: LayerSparsity[] = [];
  let params = 0;
  let nonzeroParams = 0;
  let flops = 0;
  let effectiveFlops = 0;
  spec.layers.forEach((l, i) => {
    const arrays = w.layers[i] ?? {};
    const layerParams = l.params.reduce((s, p) => s + p.size, 0);
    params += layerParams;
    for (const p of l.params) nonzeroParams += countNonzero(arrays[p.name]);
    flops += l.flops;
    if (!PRUNABLE.has(l.type)) {
      effectiveFlops += l.flops;
      return;
    }
    const weights = l.params.find((p) => p.name === 'weights')?.size ?? 0;
    const nonzero = countNonzero(arrays.weights);
    const effective = weights ? (l.flops * nonzero) / weights : l.flops;
    effectiveFlops += effective;
    layers.push({
      index: i,
      type: l.type,
      weights,
      nonzero,
      sparsity: weights ? 1 - nonzero / weights : 0,
      params: layerParams,
      flops: l.flops,
      effectiveFlops: effective,
    });
  });
  const weights = layers.reduce((s, l) => s + l.weights, 0);
  const nonzero = layers.reduce((s, l) => s + l.nonzero, 0);
  return {
    layers,
    total: {
      weights,
      nonzero,
      sparsity: weights ? 1 - nonzero / weights : 0,
      params,
      nonzeroParams,
      flops,
      effectiveFlops,
      compression: nonzero ? weights / nonzero : Infinity,
    },
  };
}
