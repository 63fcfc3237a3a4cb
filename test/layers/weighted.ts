/**
 * Shared by the convolutional and connected tests: checks of what both layers get from
 * src/layers/weighted.ts (params with their update buffers, the gradients of weights,
 * biases and batch-norm scales, pruning masks that hold through training).
 */
import type { Layer, UpdateArgs } from '../../src/engine/layer';
import type { Kernels, Tensor } from '../../src/kernels/types';
import type { WeightedLayer } from '../../src/layers/weighted';
import { type Checked, gradientErrors, netState, randomValues } from './gradcheck';
import { mulberry32 } from '../../src/engine/random';

type Weighted = Layer & WeightedLayer;

/** float64 central differences agree with backward to this relative error */
const TOLERANCE = 1e-5;

/** layer.params follow spec.params, each the layer's own tensor with its update buffer (none for rolling stats). */
export function expectParamTensors(layer: Weighted): void {
  const bn = layer.bn;
  const own: Record<string, [Tensor | undefined, Tensor | undefined]> = {
    biases: [layer.biases, layer.biasUpdates],
    weights: [layer.weights, layer.weightUpdates],
    scales: [bn?.scales, bn?.scaleUpdates],
    rolling_mean: [bn?.rollingMean, undefined],
    rolling_variance: [bn?.rollingVariance, undefined],
  };
  expect(layer.params.map((p) => p.name)).toEqual(layer.spec.params.map((p) => p.name));
  layer.params.forEach((p, i) => {
    // identity, not deep equality: two zero-filled tensors of one size are deep-equal
    expect(p.tensor).toBe(own[p.name][0]);
    expect(p.updates).toBe(own[p.name][1]);
    expect(p.tensor.size).toBe(layer.spec.params[i].size);
  });
}

/**
 * backward against central differences (float64) for the input, the weights, the biases
 * and, with batch norm, the scales; biases and scales are moved off their initial 0 and 1.
 */
export function expectGradients(k: Kernels, layer: Weighted, seed: number): void {
  const random = mulberry32(seed);
  k.upload(layer.biases, randomValues(layer.biases.size, random, -0.5, 0.5));
  const checked: Checked[] = [
    { name: 'weights', value: layer.weights, updates: layer.weightUpdates },
    { name: 'biases', value: layer.biases, updates: layer.biasUpdates },
  ];
  if (layer.bn) {
    k.upload(layer.bn.scales, randomValues(layer.bn.scales.size, random, 0.5, 1.5));
    checked.push({ name: 'scales', value: layer.bn.scales, updates: layer.bn.scaleUpdates });
  }
  const input = randomValues(layer.spec.batch * layer.spec.inputs, random);
  const errors = gradientErrors(k, layer, input, checked);
  expect(Object.keys(errors).sort()).toEqual(['input', ...checked.map((c) => c.name)].sort());
  for (const [name, e] of Object.entries(errors)) expect({ name, e: e < TOLERANCE ? 'ok' : e }).toEqual({ name, e: 'ok' });
}

/**
 * Fills the weight momentum (which must not revive a pruned weight either), sets `mask`,
 * then trains 5 steps on random inputs and deltas: after setMask and after every update,
 * each masked weight and its momentum are exactly 0. With `propagate`, backward also adds
 * into an input delta. Returns the input tensor.
 */
export function expectMaskHolds(
  k: Kernels, layer: Weighted, mask: number[], random: () => number, update: UpdateArgs, propagate: boolean,
): Tensor {
  k.upload(layer.weightUpdates, randomValues(layer.weights.size, random));
  layer.setMask!(mask);
  const zeroed = () => Array.from(k.read(layer.weights)).every((w, i) => mask[i] === 1 || Object.is(w, 0));
  expect(zeroed()).toBe(true);
  const input = k.alloc(layer.spec.batch * layer.spec.inputs);
  const inputDelta = propagate ? k.alloc(input.size) : null;
  for (let step = 0; step < 5; step++) {
    k.upload(input, randomValues(input.size, random));
    const net = netState(k, input, inputDelta);
    layer.forward(net);
    k.upload(layer.delta, randomValues(layer.delta.size, random));
    layer.backward(net);
    layer.update!(update);
    expect(zeroed()).toBe(true);
    expect(Array.from(k.read(layer.weightUpdates)).every((u, i) => mask[i] === 1 || u === 0)).toBe(true);
  }
  return input;
}
