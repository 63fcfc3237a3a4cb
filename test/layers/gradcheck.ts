/**
 * Shared by the layer tests: build a layer from a hand-made cfg section, and check its
 * backward pass against central finite differences in float64.
 *
 * Sign convention (darknet's): a layer's delta is -dL/d(output). With the scalar loss
 * L = sum(output * R), we set delta = -R; backward must then add -dL/d(input) into
 * net.delta and -dL/d(param) into each parameter's update buffer.
 */
import type { CommonSpec, Layer, LayerDefinition, LayerSpec, NetState, ParseContext } from '../../src/engine/layer';
import type { Kernels, Tensor } from '../../src/kernels/types';
import { Options } from '../../src/cfg/options';
import { mulberry32 } from '../../src/engine/random';

export const COMMON: CommonSpec = {
  learningRateScale: 1, stopbackward: false, dontload: false, dontsave: false, dontloadscales: false,
};

/** A `[section]` at line 3 of "t.cfg", its keys on the lines after it. */
export function section(name: string, keys: Record<string, string | number> = {}): Options {
  const lines = Object.entries(keys).map(([key, value], i) => ({ key, value: String(value), line: 4 + i }));
  return new Options('t.cfg', name, 3, lines);
}

export function context(s: { batch: number; h: number; w: number; c: number; index?: number }): ParseContext {
  return { index: s.index ?? 0, batch: s.batch, h: s.h, w: s.w, c: s.c, inputs: s.h * s.w * s.c, previous: [] };
}

export function build<S extends LayerSpec>(
  def: LayerDefinition<S>, k: Kernels, name: string, keys: Record<string, string | number>,
  ctx: ParseContext, common: CommonSpec = COMMON,
): { spec: S; layer: Layer } {
  const spec = def.parse(section(name, keys), ctx, common);
  return { spec, layer: def.create(spec, k) };
}

export function randomValues(n: number, random: () => number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * random());
}

export function netState(k: Kernels, input: Tensor, delta: Tensor | null, train = true): NetState {
  return { k, train, input, delta, truth: null, layers: [], random: mulberry32(7) };
}

/** A tensor whose gradient is checked, and where backward accumulates -dL/d(it). */
export interface Checked {
  name: string;
  value: Tensor;
  /** the update buffer; null for the input, whose gradient goes into net.delta */
  updates: Tensor | null;
}

/** ||a - b|| / ||b||, with ||b|| required to be non-trivial. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  if (!(norm > 1e-20)) throw new Error('reference gradient is zero: the check would prove nothing');
  return Math.sqrt(diff / norm);
}

/**
 * Returns, per checked tensor (and for the input), the relative error between what
 * backward accumulated and -dL/d(tensor) by central differences with step h.
 */
export function gradientErrors(
  k: Kernels, layer: Layer, inputValues: number[], params: Checked[], seed = 11, h = 1e-6,
): Record<string, number> {
  const random = mulberry32(seed);
  const R = randomValues(layer.output.size, random);
  const input = k.alloc(inputValues.length);
  k.upload(input, inputValues);
  const inputDelta = k.alloc(inputValues.length);
  const net = netState(k, input, inputDelta, true);

  // analytic: one forward, delta = -R, one backward into buffers that already hold
  // values (momentum, other consumers' deltas): backward must add, not overwrite
  layer.forward(net);
  k.upload(layer.delta, R.map((r) => -r));
  const prior = new Map<Tensor, number[]>();
  for (const t of [inputDelta, ...params.map((p) => p.updates!)]) {
    prior.set(t, randomValues(t.size, random));
    k.upload(t, prior.get(t)!);
  }
  layer.backward(net);
  const added = (t: Tensor) => Array.from(k.read(t)).map((v, i) => v - prior.get(t)![i]);
  const analytic: Record<string, ArrayLike<number>> = { input: added(inputDelta) };
  for (const p of params) analytic[p.name] = added(p.updates!);

  const loss = projectedLoss(k, layer, net, R);
  const errors: Record<string, number> = {};
  for (const t of [{ name: 'input', value: input }, ...params]) {
    errors[t.name] = relativeError(analytic[t.name], minusNumericalGradient(k, t.value, loss, h));
  }
  return errors;
}

/** The loss L = sum(output * R) of a forward pass: the one a layer delta of -R is the -gradient of. */
export function projectedLoss(k: Kernels, layer: Layer, net: NetState, R: readonly number[]): () => number {
  return () => {
    layer.forward(net);
    const out = k.read(layer.output);
    let sum = 0;
    for (let i = 0; i < R.length; i++) sum += out[i] * R[i];
    return sum;
  };
}

/**
 * -dL/d(tensor) by central differences with step h: each value moved by +h and by -h in
 * turn, `loss` evaluated each time. The tensor holds its own values again afterwards.
 */
export function minusNumericalGradient(k: Kernels, tensor: Tensor, loss: () => number, h: number): number[] {
  const values = Array.from(k.read(tensor));
  return values.map((v, i) => {
    values[i] = v + h;
    k.upload(tensor, values);
    const plus = loss();
    values[i] = v - h;
    k.upload(tensor, values);
    const minus = loss();
    values[i] = v;
    k.upload(tensor, values);
    return -(plus - minus) / (2 * h);
  });
}

/**
 * Runs forward (training), backward and update of the same layer on `k` and on the
 * float32 reference from the same parameters, inputs and deltas; returns the largest
 * error relative to max(1, |reference|) over every output, delta, update and parameter.
 * Then a forward in inference mode (rolling statistics), compared the same way.
 */
export function maxBackendError<S extends LayerSpec>(
  def: LayerDefinition<S>, k: Kernels, reference: Kernels, name: string,
  keys: Record<string, string | number>, ctx: ParseContext,
): number {
  const spec = def.parse(section(name, keys), ctx, COMMON);
  const [a, b] = [def.create(spec, reference), def.create(spec, k)];
  const random = mulberry32(21);
  for (let i = 0; i < a.params.length; i++) {
    const values = a.params[i].name === 'rolling_variance'
      ? randomValues(a.params[i].tensor.size, random, 0.5, 2)
      : Array.from(reference.read(a.params[i].tensor)).map((v) => v + 0.1 * (random() - 0.5));
    reference.upload(a.params[i].tensor, values);
    k.upload(b.params[i].tensor, values);
  }
  const x = randomValues(spec.batch * spec.inputs, random);
  const r = randomValues(spec.batch * spec.outputs, random);
  let worst = 0;
  const compare = (t1: Tensor, t2: Tensor) => {
    const [u, v] = [reference.read(t1), k.read(t2)];
    for (let i = 0; i < u.length; i++) worst = Math.max(worst, Math.abs(u[i] - v[i]) / Math.max(1, Math.abs(u[i])));
  };
  const nets = [reference, k].map((kk) => {
    const input = kk.alloc(x.length);
    kk.upload(input, x);
    return netState(kk, input, kk.alloc(x.length), true);
  });
  [a, b].forEach((l, i) => l.forward(nets[i]));
  compare(a.output, b.output);
  [a, b].forEach((l, i) => {
    nets[i].k.upload(l.delta, r);
    l.backward(nets[i]);
  });
  compare(nets[0].delta!, nets[1].delta!);
  a.params.forEach((p, i) => p.updates && compare(p.updates, b.params[i].updates!));
  const args = { learningRate: 0.1, momentum: 0.9, decay: 0.0005, batch: spec.batch, scaleL1: 0 };
  a.update?.(args);
  b.update?.(args);
  a.params.forEach((p, i) => compare(p.tensor, b.params[i].tensor));
  [a, b].forEach((l, i) => l.forward({ ...nets[i], train: false }));
  compare(a.output, b.output);
  return worst;
}
