/**
 * Helpers for the channel-pruning tests: small cfgs with seeded random weights, a plan that
 * removes chosen filters, and the network's outputs on the float64 reference kernels.
 */
import type { NetworkSpec } from '../../../src/cfg/config';
import { parseCfg } from '../../../src/cfg/parser';
import { Network, withBatch } from '../../../src/engine/network';
import { gaussian, mulberry32 } from '../../../src/engine/random';
import { DARKNET_HEADER, parseWeights, serializeWeights, type LayerWeights, type WeightsFile } from '../../../src/io/weights';
import { ReferenceKernels } from '../../../src/kernels/reference';
import type { Kernels } from '../../../src/kernels/types';
import type { ChannelGraph } from '../../../src/prune/channels/graph';
import type { ChannelPlan } from '../../../src/prune/channels/plan';

/** `[net]` (batch=1 unless given) + sections, one key=value per line. */
export function cfgText(net: string[], ...sections: string[][]): string {
  const batch = net.some((l) => l.startsWith('batch=')) ? [] : ['batch=1'];
  return ['[net]', ...batch, ...net, '', ...sections.flatMap((s) => [...s, ''])].join('\n');
}

/**
 * Seeded random weights for every array of the spec: weights and biases ~ N(0, 0.5),
 * scales ~ N(1, 0.3), rolling means ~ N(0, 0.2), rolling variances in [0.5, 1.5].
 */
export function randomWeights(spec: NetworkSpec, seed: number): WeightsFile {
  const random = mulberry32(seed);
  const layers = spec.layers.map((l) => {
    const out: LayerWeights = {};
    for (const p of l.params) {
      const draw: () => number = {
        biases: () => 0.5 * gaussian(random),
        weights: () => 0.5 * gaussian(random),
        scales: () => 1 + 0.3 * gaussian(random),
        rolling_mean: () => 0.2 * gaussian(random),
        rolling_variance: () => 0.5 + random(),
      }[p.name];
      out[p.name] = Float32Array.from({ length: p.size }, draw);
    }
    return out;
  });
  return { header: { ...DARKNET_HEADER, seen: 0 }, layers };
}

/** The plan removing exactly these filters (by layer) and whatever a [shortcut] ties to them. */
export function removing(g: ChannelGraph, filters: Array<[number, number[]]>): ChannelPlan {
  const removed = new Set<number>();
  for (const [layer, fs] of filters) for (const f of fs) removed.add(g.classOf(g.producers.get(layer)![f]));
  return { removed };
}

/** Zeroes filter f's weights of a conv or connected layer (its output is then act(bias)). */
export function zeroFilter(spec: NetworkSpec, w: WeightsFile, layer: number, f: number): void {
  const a = w.layers[layer].weights!;
  const l = spec.layers[layer];
  const per = a.length / (l.type === 'connected' ? l.outputs : l.outC);
  a.fill(0, f * per, (f + 1) * per);
}

/** Random images, `[count, inputs]`, in [0, 1). */
export function randomInputs(spec: NetworkSpec, count: number, seed: number): Float64Array {
  const random = mulberry32(seed);
  return Float64Array.from({ length: count * spec.net.inputs }, () => random());
}

/** The last layer's outputs for `x` (`[count, inputs]`) on `k`, in inference mode. */
export function outputs(spec: NetworkSpec, w: WeightsFile, x: ArrayLike<number>, count: number, k: Kernels = new ReferenceKernels({ float64: true })): Float64Array {
  const net = new Network(withBatch(spec, count), k);
  try {
    net.loadWeights(w);
    return Float64Array.from(net.predict(x));
  } finally {
    net.dispose();
  }
}

/** Largest |a - b|, failing on a size mismatch. */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} vs ${b.length}`);
  let most = 0;
  for (let i = 0; i < a.length; i++) most = Math.max(most, Math.abs(a[i] - b[i]));
  return most;
}

/** The cfg text and weights go through darknet's formats and back: the file loads for the new cfg. */
export function roundTrip(text: string, w: WeightsFile, file = 'small.cfg'): { spec: NetworkSpec; weights: WeightsFile; bytes: number } {
  const spec = parseCfg(text, file);
  const buf = serializeWeights(w, spec);
  return { spec, weights: parseWeights(buf, spec, 'small.weights'), bytes: buf.length };
}
