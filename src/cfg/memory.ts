import * as os from 'os';
import type { NetworkSpec } from './config';
import { DarknetError, excerpt, PATH_EXCERPT } from '../errors';
import type { LayerSpec } from '../engine/layer';
import type { ConvolutionalSpec } from '../layers/convolutional';

/**
 * How much memory a parsed cfg needs once built, from its spec alone (no backend, no
 * buffers), so that a network too big for this machine is refused with a sentence before
 * anything is allocated, not by an out-of-memory crash half-way through building it.
 */

/** The most floats one array may hold: darknet indexes with `int`, and so do our kernels. */
export const MAX_ARRAY_FLOATS = 2 ** 31 - 1;

const BYTES_PER_FLOAT = 4;
const GiB = 2 ** 30;

/**
 * Threads the estimate assumes for per-thread workspaces: wasm-simd's default cap
 * (available cores, at most 4), taken as 4 so that the estimate is the same on every machine.
 */
const WORKSPACE_THREADS = 4;

/**
 * The memory a built network may use: the smaller of 8 GiB and 70% of this machine's
 * memory (the rest is for the data set, the runtime and everything else running).
 */
export const NETWORK_MEMORY_BUDGET = Math.min(8 * GiB, Math.floor(0.7 * os.totalmem()));

/** What a buffer is for: parameters live as long as the network, workspaces are shared. */
export type ArrayKind = 'parameter' | 'activation' | 'workspace';

/** One buffer a built layer holds (or, for workspaces, needs while it runs). */
export interface LayerArray {
  /** darknet's name where it has one: weights, weight_updates, output, delta, workspace */
  name: string;
  kind: ArrayKind;
  floats: number;
}

/**
 * The buffers building `l` allocates, as src/layers and src/kernels make them:
 * - every parameter array; the trained ones (biases, scales, weights) also have an updates
 *   buffer, which holds the gradient and then the momentum (darknet's `*_updates`), and
 *   weights a pruning mask;
 * - output and delta, `[batch, outputs]` each; batch norm adds its normalized input and
 *   input gradient (`[batch, outputs]` each) and its batch mean and variance; dropout its
 *   random numbers (`[batch, inputs]`);
 * - for convolutions, the im2col columns of one image, `[c / groups * size * size, outH * outW]`
 *   (darknet's workspace), kept per thread, and packed copies of the weights.
 * Rough by design: small per-channel scratch and the kernels' fixed scratch are left out.
 * @example layerArrays(spec.layers[0]).find((a) => a.name === 'weights')!.floats; // 1500 for LeNet's conv1
 */
export function layerArrays(l: LayerSpec): LayerArray[] {
  const arrays: LayerArray[] = [];
  const add = (name: string, kind: ArrayKind, floats: number) => arrays.push({ name, kind, floats });
  for (const p of l.params) {
    add(p.name, 'parameter', p.size);
    if (p.name === 'biases' || p.name === 'scales' || p.name === 'weights') add(`${p.name}_updates`, 'parameter', p.size);
    if (p.name === 'weights') add('mask', 'parameter', p.size);
  }
  add('output', 'activation', l.batch * l.outputs);
  add('delta', 'activation', l.batch * l.outputs);
  const scales = l.params.find((p) => p.name === 'scales');
  if (scales) {
    add('mean', 'parameter', scales.size);
    add('variance', 'parameter', scales.size);
    add('x_norm', 'activation', l.batch * l.outputs);
    add('x_delta', 'activation', l.batch * l.outputs);
  }
  // NOTE: a [batchnorm] layer's biases are not in its .weights (so not in params), but exist.
  if (l.type === 'batchnorm') {
    add('biases', 'parameter', l.c);
    add('biases_updates', 'parameter', l.c);
  }
  if (l.type === 'dropout') add('rand', 'activation', l.batch * l.inputs);
  if (l.type === 'convolutional') {
    const { c, groups, size, outH, outW } = l as ConvolutionalSpec;
    const weights = l.params.find((p) => p.name === 'weights')?.size ?? 0;
    add('workspace', 'workspace', (c / groups) * size * size * outH * outW);
    // packed weights for forward and backward, and per-thread private weight updates
    add('packed_weights', 'workspace', weights * (2 + WORKSPACE_THREADS - 1));
  }
  return arrays;
}

/** Bytes by what they hold; `total` is what building the network for training needs. */
export interface NetworkMemory {
  parameters: number;
  activations: number;
  workspace: number;
  total: number;
}

/**
 * Bytes a network built from `spec` holds while training: every layer's parameters with
 * their updates and masks, every layer's outputs and deltas at the spec's batch (the
 * images of one forward pass), the network's input and truth, and the largest
 * convolution's workspace (workspaces are shared between layers, so only the largest
 * counts: its im2col columns times WORKSPACE_THREADS, plus its packed weights).
 * @example estimateNetworkMemory(readCfg('cfg/lenet.cfg')).total; // about 15 MiB at batch 64
 */
export function estimateNetworkMemory(spec: NetworkSpec): NetworkMemory {
  let parameters = 0;
  let activations = spec.net.batch * spec.net.inputs; // the network's input
  let workspace = 0;
  for (const l of spec.layers) {
    let layerWorkspace = 0;
    for (const a of layerArrays(l)) {
      if (a.kind === 'parameter') parameters += a.floats;
      else if (a.kind === 'activation') activations += a.floats;
      else layerWorkspace += a.name === 'workspace' ? a.floats * WORKSPACE_THREADS : a.floats;
    }
    workspace = Math.max(workspace, layerWorkspace);
  }
  const last = spec.layers[spec.layers.length - 1];
  if (last) activations += last.batch * last.outputs; // the truth
  const bytes = (floats: number) => floats * BYTES_PER_FLOAT;
  return {
    parameters: bytes(parameters),
    activations: bytes(activations),
    workspace: bytes(workspace),
    total: bytes(parameters + activations + workspace),
  };
}

/** estimateNetworkMemory's total. @example estimateNetworkBytes(spec) <= NETWORK_MEMORY_BUDGET */
export function estimateNetworkBytes(spec: NetworkSpec): number {
  return estimateNetworkMemory(spec).total;
}

/**
 * Refuses, in one line, a network whose estimate is over the budget (by default
 * NETWORK_MEMORY_BUDGET: min(8 GiB, 70% of this machine's memory)); call it before a
 * network is built. `summary` need not: describing a big network allocates nothing.
 * @example checkNetworkBudget(readCfg(cfgFile)); // then new Network(spec, kernels)
 */
export function checkNetworkBudget(spec: NetworkSpec, budget = NETWORK_MEMORY_BUDGET): void {
  const m = estimateNetworkMemory(spec);
  if (m.total <= budget) return;
  throw new DarknetError(
    `${excerpt(spec.file, PATH_EXCERPT)}: the network needs about ${formatBytes(m.total)} at batch ${spec.net.batch} `
    + `(parameters ${formatBytes(m.parameters)}, activations ${formatBytes(m.activations)}, workspace ${formatBytes(m.workspace)}), `
    + `over the budget of ${formatBytes(budget)}`,
  );
}

/** Bytes in the unit that fits: `512 KiB`, `27.8 MiB`, `1.6e+9 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  const shown = value >= 1e6 ? value.toExponential(1) : value.toFixed(digits);
  return `${shown} ${units[unit]}`;
}
