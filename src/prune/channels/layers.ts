import type { NetworkSpec } from '../../cfg/config';
import { DarknetError } from '../../errors';
import type { LayerWeights, WeightsFile } from '../../io/weights';
import { prunableLayers } from '../threshold';

/** How channel pruning names and reads the layers it changes. */

/** A layer's name for messages: `layer 2 (conv2)`, or `layer 1 (maxpool)`. */
export function layerName(spec: NetworkSpec, layer: number): string {
  const named = prunableLayers(spec).find((p) => p.index === layer);
  return `layer ${layer} (${named?.name ?? spec.layers[layer].type})`;
}

/** One array of a layer's weights; missing (dontload, dontloadscales) is an error naming the layer. */
export function layerArray(spec: NetworkSpec, w: WeightsFile, layer: number, name: keyof LayerWeights): Float32Array {
  const a = w.layers[layer]?.[name];
  if (!a) {
    const l = spec.layers[layer];
    const why = l.dontload ? ' (dontload=1)' : l.dontloadscales ? ' (dontloadscales=1)' : '';
    throw new DarknetError(`${layerName(spec, layer)} (line ${l.line}) has no ${name} in the weights${why}: channel pruning needs every array of the layers it reads or changes`);
  }
  return a;
}
