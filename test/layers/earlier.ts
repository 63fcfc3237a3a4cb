/**
 * For the route and shortcut tests: stand-ins for earlier layers (a spec with an output
 * shape, real output and delta tensors), and a finite-difference check over several
 * sources at once (net.input and earlier layers' outputs).
 *
 * Sign convention as in gradcheck.ts: with L = sum(output * R) and the layer's delta set
 * to -R, backward must add -dL/d(source) into each source's delta.
 */
import type { Layer, LayerSpec, NetState, ParseContext } from '../../src/engine/layer';
import type { Kernels, Tensor } from '../../src/kernels/types';
import { mulberry32 } from '../../src/engine/random';
import { COMMON, minusNumericalGradient, projectedLoss, randomValues, relativeError } from './gradcheck';

export function earlierSpec(index: number, batch: number, w: number, h: number, c: number): LayerSpec {
  return {
    ...COMMON, type: 'convolutional', index, line: 1, batch, h, w, c, inputs: h * w * c,
    outH: h, outW: w, outC: c, outputs: h * w * c, params: [], flops: 0, describe: 'stand-in',
  };
}

/** A layer that does nothing but hold an output (random values) and a delta. */
export function earlierLayer(k: Kernels, spec: LayerSpec, seed: number): Layer {
  const output = k.alloc(spec.batch * spec.outputs);
  k.upload(output, randomValues(output.size, mulberry32(seed)));
  return { spec, output, delta: k.alloc(spec.batch * spec.outputs), params: [], forward() {}, backward() {} };
}

/** The context of the layer after `previous`: its input is the last one's output. */
export function contextAfter(previous: LayerSpec[]): ParseContext {
  const last = previous[previous.length - 1];
  return {
    index: previous.length, batch: last.batch, h: last.outH, w: last.outW, c: last.outC,
    inputs: last.outputs, previous,
  };
}

export interface Source {
  name: string;
  value: Tensor;
  /** where backward accumulates -dL/d(value) */
  delta: Tensor;
}

/**
 * Relative error, per source, between what backward added into the source's delta and
 * -dL/d(source) by central differences with step h (float64 kernels assumed).
 */
export function sourceGradientErrors(
  k: Kernels, layer: Layer, net: NetState, sources: Source[], seed = 5, h = 1e-6,
): Record<string, number> {
  const R = randomValues(layer.output.size, mulberry32(seed));
  const loss = projectedLoss(k, layer, net, R);

  layer.forward(net);
  k.upload(layer.delta, R.map((r) => -r));
  for (const s of sources) k.fill(s.delta, 0);
  layer.backward(net);
  const analytic = sources.map((s) => k.read(s.delta));

  const errors: Record<string, number> = {};
  sources.forEach((s, j) => {
    errors[s.name] = relativeError(analytic[j], minusNumericalGradient(k, s.value, loss, h));
  });
  return errors;
}
