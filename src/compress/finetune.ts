import type { Network } from '../engine/network';
import type { Tensor } from '../kernels/types';
import { train, type BatchSource, type TrainOptions, type TrainOutcome } from '../engine/train';
import { DarknetError } from '../errors';
import { nonZeroFloat32, type LayerCode } from './kmeans';

/**
 * Trained weight sharing, step two (Han et al. 2016 §3.1, Figure 3): fine-tune the shared
 * values. The gradient of a centroid is the sum of the gradients of the weights that share
 * it, so after every optimizer step each centroid moves by the SUM of its members' changes
 * in that step, and every member is written back to its centroid. Pruned weights stay
 * exactly 0 (the network's masks freeze them, and they are written as 0). Biases and
 * batch-norm parameters train as usual: they are stored unshared.
 *
 * NOTE: the summed step of a centroid is as large as the number of weights sharing it, so
 * fine-tuning wants a far smaller learning rate than training (the command's --lr-scale).
 * Momentum and decay need no special case: both are linear per weight, so summing the
 * members' changes gives momentum and decay on the centroid's own (summed) gradient.
 */

export interface FinetuneResult {
  /** the fine-tuned codes (same indices, moved centroids), by layer index */
  codes: Map<number, LayerCode>;
  outcome: TrainOutcome;
}

interface Shared {
  layer: number;
  tensor: Tensor;
  indices: Uint16Array;
  centroids: Float32Array;
  /** `[weights]`: the values last written to the network */
  written: Float32Array;
}

/**
 * Trains `net` (already loaded with the pruned weights, its zeros masked) with the weights
 * of every layer in `codes` shared, and returns the moved centroids. `o` is train()'s
 * options: maxBatches counts the network's batches as train() does; o.afterBatch, if
 * given, runs after the shared values are written back.
 * @example
 *   net.loadWeights(pruned);
 *   applyMasks(net, masksFromZeros(net, pruned));
 *   net.seen = 0;
 *   const { codes: tuned } = await finetuneCentroids(net, codes, batches, { maxBatches: 1000, epochSize: 60000 });
 */
export async function finetuneCentroids(
  net: Network,
  codes: ReadonlyMap<number, LayerCode>,
  batches: BatchSource,
  o: TrainOptions,
): Promise<FinetuneResult> {
  const shared: Shared[] = [...codes].map(([layer, code]) => {
    const param = net.layers[layer]?.params.find((p) => p.name === 'weights');
    if (!param) throw new DarknetError(`layer ${layer} has no weights to share`);
    const size = param.tensor.size;
    if (code.indices.length !== size) throw new DarknetError(`layer ${layer}: the code has ${code.indices.length} indices for ${size} weights`);
    return { layer, tensor: param.tensor, indices: code.indices, centroids: Float32Array.from(code.centroids), written: new Float32Array(size) };
  });
  for (const s of shared) writeShared(net, s);
  const outcome = await train(net, batches, {
    ...o,
    afterBatch(step) {
      for (const s of shared) {
        moveCentroids(s, net.k.read(s.tensor));
        writeShared(net, s);
      }
      o.afterBatch?.(step);
    },
  });
  return { codes: new Map(shared.map((s) => [s.layer, { centroids: s.centroids, indices: s.indices }])), outcome };
}

/** Each centroid += the sum of its members' changes since they were written. */
function moveCentroids(s: Shared, now: ArrayLike<number>): void {
  const sums = new Float64Array(s.centroids.length);
  for (let i = 0; i < s.indices.length; i++) {
    const j = s.indices[i];
    if (j > 0) sums[j - 1] += now[i] - s.written[i];
  }
  for (let j = 0; j < s.centroids.length; j++) s.centroids[j] = nonZeroFloat32(s.centroids[j] + sums[j]);
}

/** Every member of a cluster set to its centroid, pruned weights to 0, on the network. */
function writeShared(net: Network, s: Shared): void {
  for (let i = 0; i < s.indices.length; i++) {
    const j = s.indices[i];
    s.written[i] = j > 0 ? s.centroids[j - 1] : 0;
  }
  net.k.upload(s.tensor, s.written);
}
