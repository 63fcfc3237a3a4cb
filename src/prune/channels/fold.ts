import type { NetworkSpec } from '../../cfg/config';
import type { LayerWeights } from '../../io/weights';
import { ReferenceKernels } from '../../kernels/reference';
import type { Activation } from '../../kernels/types';

/** Small pieces the channel surgery (surgery.ts) and the block surgery (blocks.ts) share. */

/** act(x) per element, by the reference kernels (the functions the tests check every backend against). */
export function activate(x: Float64Array, act: Activation): Float64Array {
  if (act === 'linear') return x;
  const k = new ReferenceKernels({ float64: true });
  const t = k.alloc(x.length);
  k.upload(t, x);
  k.activate(t, t, act);
  const out = Float64Array.from(k.read(t));
  k.free(t);
  return out;
}

/** A deep copy of one layer's arrays. */
export function copyLayer(l: LayerWeights): LayerWeights {
  const out: LayerWeights = {};
  for (const [name, a] of Object.entries(l) as Array<[keyof LayerWeights, Float32Array]>) out[name] = a.slice();
  return out;
}

/** The new arrays must be exactly what the new cfg asks for (a programming error otherwise). */
export function checkSizes(spec: NetworkSpec, layers: LayerWeights[]): void {
  spec.layers.forEach((l, i) => {
    for (const p of l.params) {
      const a = layers[i][p.name];
      if (a && a.length !== p.size) throw new Error(`surgery: layer ${i} ${p.name} has ${a.length} floats, the new cfg needs ${p.size}`);
    }
  });
}
