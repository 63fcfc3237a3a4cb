import type { NetworkSpec } from '../cfg/config';
import { DarknetError, excerpt } from '../errors';
import type { LayerWeights, WeightsFile } from '../io/weights';
import { PRUNABLE } from '../prune/stats';
import { prunableLayers, resolvePrunableLayer } from '../prune/threshold';
import type { CodedWeights, CompressedModel } from './dcw';
import { decodeLayer, kmeansLayer, MAX_BITS, type KmeansOptions, type LayerCode } from './kmeans';
import { MAX_INDEX_BITS } from './sparse';

/**
 * A whole model through weight sharing: per-layer widths from the command line, k-means on
 * every conv and connected layer, and the model a .dcw stores.
 */

/** How a layer's weights are stored: codebook index bits and relative index bits. */
export interface LayerWidths {
  bits: number;
  indexBits: number;
}

const TYPE_KEYS: Readonly<Record<string, string>> = { conv: 'convolutional', convolutional: 'convolutional', fc: 'connected', connected: 'connected' };

/**
 * Per-layer widths from `conv=8,fc=5`: a type (`conv`, `fc`) sets every layer of it; a layer
 * name (`conv1`, `fc2`) or net index (`4`) sets one and wins over its type, in any order.
 * Every conv and connected layer must get a width.
 * @example parseLayerWidths('conv=8,fc=5,fc2=6', readCfg('cfg/lenet.cfg'), '--bits', 16);
 *   // Map { 0 => 8, 2 => 8, 4 => 5, 5 => 6 }
 */
export function parseLayerWidths(text: string, spec: NetworkSpec, what: string, max: number): Map<number, number> {
  const byType = new Map<string, number>();
  const byLayer = new Map<number, number>();
  if (text.trim() === '') throw new DarknetError(`${what}: empty; expected e.g. conv=8,fc=5`);
  for (const item of text.split(',')) {
    const eq = item.indexOf('=');
    const key = item.slice(0, Math.max(0, eq)).trim();
    const valueText = item.slice(eq + 1).trim();
    if (eq < 0 || key === '') throw new DarknetError(`${what}: '${excerpt(item.trim(), 30)}' is not layer=bits (e.g. conv=8, fc=5 or fc1=6)`);
    const value = valueText === '' ? NaN : Number(valueText);
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new DarknetError(`${what}: '${excerpt(valueText, 20)}' for ${excerpt(key, 20)} must be a whole number of bits from 1 to ${max}`);
    }
    const twice = () => new DarknetError(`${what}: ${excerpt(key, 20)} is given twice`);
    const type = TYPE_KEYS[key.toLowerCase()];
    if (type) {
      if (byType.has(type)) throw twice();
      byType.set(type, value);
    } else {
      const index = resolvePrunableLayer(spec, key, what);
      if (byLayer.has(index)) throw twice();
      byLayer.set(index, value);
    }
  }
  const widths = new Map<number, number>();
  for (const l of prunableLayers(spec)) {
    const w = byLayer.get(l.index) ?? byType.get(l.type);
    if (w === undefined) {
      throw new DarknetError(`${what}: no width for layer ${l.index} (${l.name}); add ${l.type === 'convolutional' ? 'conv' : 'fc'}=N or ${l.name}=N`);
    }
    widths.set(l.index, w);
  }
  return widths;
}

/** `--bits` and `--index-bits` together, per prunable layer. */
export function parseWidths(bits: string, indexBits: string, spec: NetworkSpec): Map<number, LayerWidths> {
  const b = parseLayerWidths(bits, spec, '--bits', MAX_BITS);
  const ib = parseLayerWidths(indexBits, spec, '--index-bits', MAX_INDEX_BITS);
  return new Map([...b].map(([i, w]) => [i, { bits: w, indexBits: ib.get(i)! }]));
}

/** k-means (kmeansLayer) on the weights of every layer in `widths`. */
export function kmeansModel(spec: NetworkSpec, w: WeightsFile, widths: ReadonlyMap<number, LayerWidths>, o: KmeansOptions = {}): Map<number, LayerCode> {
  const codes = new Map<number, LayerCode>();
  for (const [i, width] of widths) {
    const weights = w.layers[i]?.weights;
    if (!weights) throw new DarknetError(`layer ${i} (${spec.layers[i]?.type}) has no weights to share (dontload=1?)`);
    codes.set(i, kmeansLayer(weights, width.bits, o));
  }
  return codes;
}

/** The weights with every coded layer replaced by its shared values (zeros exact). */
export function sharedWeights(w: WeightsFile, codes: ReadonlyMap<number, LayerCode>): WeightsFile {
  return {
    header: { ...w.header },
    layers: w.layers.map((l, i) => {
      const code = codes.get(i);
      return code ? { ...l, weights: decodeLayer(code) } : { ...l };
    }),
  };
}

/**
 * The model a .dcw stores: `w`'s arrays as float32 (biases, batch norm, and the weights of
 * any layer not coded) and the coded layers' codes with their widths.
 */
export function compressedModel(
  spec: NetworkSpec,
  w: WeightsFile,
  codes: ReadonlyMap<number, LayerCode>,
  widths: ReadonlyMap<number, LayerWidths>,
): CompressedModel {
  return {
    header: { ...w.header },
    layers: spec.layers.map((l, i) => {
      const raw: LayerWeights = { ...w.layers[i] };
      const code = codes.get(i);
      const width = widths.get(i);
      if (!code || !width || !PRUNABLE.has(l.type)) return { raw };
      delete raw.weights;
      const coded: CodedWeights = { code, bits: width.bits, indexBits: width.indexBits };
      return { raw, coded };
    }),
  };
}
