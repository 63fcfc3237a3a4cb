import { DarknetError } from '../errors';
import type { WeightsFile } from '../io/weights';
import type { Network } from './network';

/**
 * Pruning masks as explicit values: layer index -> `[weights]` of 1 (kept) and 0 (frozen
 * at exactly 0), in the layer's weights layout. Made from a model's zeros, from a
 * threshold (prune/threshold.ts) or from a channel selection, and put on a network with
 * `applyMasks`: from then on every update keeps the masked weights and their momentum 0.
 *
 * NOTE: darknet's update adds momentum and decay to every weight, so without the mask a
 * pruned weight comes back after one step; this is the most reported bug in pruning tools.
 */
export type Masks = Map<number, Float32Array>;

/** 1 where w != 0, else 0. */
export function maskFromZeros(weights: ArrayLike<number>): Float32Array {
  const mask = new Float32Array(weights.length);
  for (let i = 0; i < weights.length; i++) mask[i] = weights[i] !== 0 ? 1 : 0;
  return mask;
}

/** A mask for every layer that has weights and can be masked, from the zeros of a weights file. */
export function masksFromZeros(net: Network, w: WeightsFile): Masks {
  const masks: Masks = new Map();
  net.layers.forEach((l, i) => {
    const weights = w.layers[i]?.weights;
    if (weights && l.setMask) masks.set(i, maskFromZeros(weights));
  });
  return masks;
}

/** Puts masks on a network's layers (layers not in `masks` are left as they are). */
export function applyMasks(net: Network, masks: Masks): void {
  for (const [i, mask] of masks) {
    const l = net.layers[i];
    if (!l?.setMask) throw new DarknetError(`layer ${i} (${l?.spec.type ?? 'none'}) cannot be masked`);
    l.setMask(mask);
  }
}

/** Removes every mask (dense training again). */
export function clearMasks(net: Network): void {
  for (const l of net.layers) l.setMask?.(null);
}

/** Zeros (frozen) and weights counted over masks. */
export function countMasked(masks: Masks): { zeros: number; weights: number } {
  let zeros = 0;
  let weights = 0;
  for (const m of masks.values()) {
    weights += m.length;
    for (let i = 0; i < m.length; i++) if (m[i] === 0) zeros++;
  }
  return { zeros, weights };
}
