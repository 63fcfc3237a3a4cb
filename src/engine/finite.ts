import type { NetworkSpec } from '../cfg/config';
import type { WeightsFile } from '../io/weights';

/** Where a weights file first holds NaN or infinity, or null when every value is finite. */
export interface NonFinite {
  layer: number;
  type: string;
  param: string;
  index: number;
  value: number;
}

export function findNonFinite(w: WeightsFile, spec: NetworkSpec): NonFinite | null {
  for (let i = 0; i < w.layers.length; i++) {
    const arrays = w.layers[i] ?? {};
    for (const [param, a] of Object.entries(arrays)) {
      if (!a) continue;
      for (let j = 0; j < a.length; j++) {
        if (!Number.isFinite(a[j])) return { layer: i, type: spec.layers[i]?.type ?? '?', param, index: j, value: a[j] };
      }
    }
  }
  return null;
}
