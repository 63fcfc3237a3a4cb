import { ACTIVATIONS, GRADIENT_FROM_INPUT, type Activation, type Kernels, type Tensor } from '../kernels/types';
import type { Options } from '../cfg/options';

/**
 * The layer contract. Each layer type lives in `src/layers/<type>.ts` and exports a
 * `LayerDefinition`: `parse` turns a cfg section into a plain, kernel-free `LayerSpec`
 * (shapes, parameter sizes, FLOPs: everything `summary` needs), `create` allocates the
 * buffers on a backend and returns the running `Layer`.
 */

export type LayerType =
  | 'convolutional' | 'connected' | 'maxpool' | 'avgpool' | 'softmax' | 'dropout'
  | 'cost' | 'route' | 'shortcut' | 'batchnorm' | 'crop' | 'reorg' | 'local' | 'normalization'
  | 'l2norm' | 'logistic' | 'upsample' | 'deconvolutional';

/** What a layer sees of the layers before it while it is parsed. */
export interface ParseContext {
  /** this layer's index in the network (0 = first layer after [net]) */
  index: number;
  /** the images per forward pass: [net] batch / subdivisions */
  batch: number;
  /** input shape: the previous layer's output, or the [net] input */
  h: number;
  w: number;
  c: number;
  inputs: number;
  /** the specs parsed so far, for route and shortcut */
  previous: readonly LayerSpec[];
}

/** One parameter array, in the order darknet's .weights file stores the layer's arrays. */
export interface ParamSpec {
  /** darknet's name: biases, scales, rolling_mean, rolling_variance, weights */
  name: 'biases' | 'scales' | 'rolling_mean' | 'rolling_variance' | 'weights';
  size: number;
}

/** Keys every section may carry (parser.c reads them after the layer's own). */
export interface CommonSpec {
  /** per-layer multiplier of the net's learning rate (cfg `learning_rate`, default 1) */
  learningRateScale: number;
  stopbackward: boolean;
  dontload: boolean;
  dontsave: boolean;
  dontloadscales: boolean;
}

export interface LayerSpec extends CommonSpec {
  type: LayerType;
  index: number;
  /** the line of the `[section]` header, for errors found later (e.g. loading weights) */
  line: number;
  batch: number;
  h: number;
  w: number;
  c: number;
  inputs: number;
  outH: number;
  outW: number;
  outC: number;
  outputs: number;
  /** parameter arrays in .weights file order (empty for layers without) */
  params: ParamSpec[];
  /** floating-point operations of one forward pass of ONE image, darknet's BFLOPs * 1e9 */
  flops: number;
  /** darknet's layer-table row after the index column, e.g. "conv     20  5 x 5 / 1 ..." */
  describe: string;
}

/** The network's state as one layer sees it during forward and backward. */
export interface NetState {
  k: Kernels;
  train: boolean;
  /** the previous layer's output `[batch, inputs]`, or the network input */
  input: Tensor;
  /** the previous layer's delta, or null for the first layer (nothing to propagate into) */
  delta: Tensor | null;
  /** `[batch, outputs of the last layer]` while training or evaluating a loss, else null */
  truth: Tensor | null;
  layers: readonly Layer[];
  /** seeded uniform [0, 1), for dropout */
  random: () => number;
}

/** darknet's update_args. */
export interface UpdateArgs {
  learningRate: number;
  momentum: number;
  decay: number;
  /** B = batch * subdivisions */
  batch: number;
  /**
   * Network slimming (Liu et al. 2017): S in the L1 sub-gradient S * sign(gamma) added to
   * every batch-norm scale's gradient, pushing unneeded channels' scales to 0; 0 = off.
   */
  scaleL1: number;
}

/** A parameter tensor with its darknet name (and, for weights, its update buffer and mask). */
export interface ParamTensor {
  name: ParamSpec['name'];
  tensor: Tensor;
  /**
   * Where backward accumulates this parameter's negative gradient (darknet's
   * bias_updates / scale_updates / weight_updates); absent for rolling statistics.
   */
  updates?: Tensor;
}

export interface Layer {
  readonly spec: LayerSpec;
  /** `[batch, outputs]` */
  readonly output: Tensor;
  /** `[batch, outputs]`: d(loss)/d(output), darknet's sign (truth minus output) */
  readonly delta: Tensor;
  /** the parameter tensors in .weights order, matching spec.params */
  readonly params: readonly ParamTensor[];
  /** for loss layers: the summed loss of the last forward pass with a truth */
  cost?: number;

  forward(net: NetState): void;
  /** adds into net.delta (when not null) and into this layer's parameter updates */
  backward(net: NetState): void;
  update?(args: UpdateArgs): void;
  /**
   * Prunable layers (convolutional, connected): freeze weights where mask == 0. The mask
   * is `[weights]`, 1 = keep, 0 = pruned; null removes it. After every update the masked
   * weights and their momentum are exactly 0.
   */
  setMask?(mask: ArrayLike<number> | null): void;
  /**
   * Layers with a sparse path (convolutional, connected): run on the compressed weights
   * (`on`), densely (`off`), or sparsely when enough weights are 0 (`auto`). Inference and
   * training with frozen zeros (a mask set) both use it. Returns whether the sparse path
   * is now in use.
   */
  setSparse?(mode: SparseMode): boolean;
  /** The parameters were replaced from outside (a loaded file): drop anything derived from them. */
  paramsChanged?(): void;
}

/** `--sparse`: where zero weights are skipped. */
export type SparseMode = 'auto' | 'on' | 'off';

export interface LayerDefinition<S extends LayerSpec = LayerSpec> {
  type: LayerType;
  /** section names that make this layer, e.g. ['convolutional', 'conv'] */
  names: readonly string[];
  parse(o: Options, ctx: ParseContext, common: CommonSpec): S;
  create(spec: S, k: Kernels): Layer;
}

/** The fields every spec shares, from the context and common keys. */
export function baseSpec(
  type: LayerType,
  o: Options,
  ctx: ParseContext,
  common: CommonSpec,
  out: { outH: number; outW: number; outC: number; outputs?: number },
): Omit<LayerSpec, 'params' | 'flops' | 'describe'> {
  return {
    ...common,
    type,
    index: ctx.index,
    line: o.line,
    batch: ctx.batch,
    h: ctx.h,
    w: ctx.w,
    c: ctx.c,
    inputs: ctx.inputs,
    outH: out.outH,
    outW: out.outW,
    outC: out.outC,
    outputs: out.outputs ?? out.outH * out.outW * out.outC,
  };
}

/**
 * The `activation=` key, validated (darknet's get_activation warns and falls back to
 * relu on an unknown name; a typo silently changing the model is worse, so we refuse).
 * @example const act = activationOption(o, 'logistic'); // conv and connected default
 */
export function activationOption(o: Options, fallback: Activation, keepsInput = true): Activation {
  const a = o.choice('activation', fallback, ACTIVATIONS);
  // mish's gradient needs the activation's input; only layers that keep it may use it
  if (!keepsInput && GRADIENT_FROM_INPUT.has(a)) throw o.error(`activation=${a} is not supported in [${o.section}]`, 'activation');
  return a;
}
