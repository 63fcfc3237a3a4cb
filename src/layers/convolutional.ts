import type { Activation, ChannelShape, ConvShape, Kernels, SparseMatrix, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamSpec, type ParamTensor, type ParseContext, type SparseMode, type UpdateArgs,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { gaussian } from '../engine/random';
import { BatchNorm, batchNormParams } from './batchnorm-core';
import {
  activationInputTensor, applyMask, backwardNormBiasActivation, forwardNormBiasActivation, initialWeights, refreshSparseWeights,
  sparseWanted, updateWeighted, weightedParams, type WeightedLayer,
} from './weighted';

/** darknet's convolutional_layer.c: `[convolutional]` / `[conv]`. */

export interface ConvolutionalSpec extends LayerSpec {
  type: 'convolutional';
  /** darknet's n */
  filters: number;
  size: number;
  stride: number;
  /** padding on each side (cfg `pad=1` means size / 2) */
  padding: number;
  groups: number;
  activation: Activation;
  batchNormalize: boolean;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): ConvolutionalSpec {
  const filters = o.int('filters', 1);
  const size = o.int('size', 1);
  const stride = o.int('stride', 1);
  const pad = o.int('pad', 0);
  const explicitPadding = o.int('padding', 0); // read even when pad=1 overrides it, as darknet does
  const padding = pad ? Math.floor(size / 2) : explicitPadding;
  const groups = o.int('groups', 1);
  const activation = activationOption(o, 'logistic');
  const batchNormalize = o.flag('batch_normalize');
  // darknet's binary / XNOR convolutions and `flipped` (weights stored transposed) change
  // what the layer computes or loads: refused, never ignored.
  for (const key of ['binary', 'xnor', 'flipped']) {
    if (o.flag(key)) throw o.error(`convolutional ${key}=1 is not supported (darknet-ts has no ${key === 'flipped' ? 'flipped weight loading' : `${key} convolution`})`, key);
  }
  const { h, w, c } = ctx;

  if (!(h && w && c)) throw o.error('the layer before a convolutional layer must output an image (h, w, c > 0)');
  if (filters < 1 || size < 1 || stride < 1 || groups < 1 || padding < 0) {
    throw o.error(`filters, size, stride and groups must be >= 1 and padding >= 0 (filters=${filters} size=${size} stride=${stride} groups=${groups} padding=${padding})`);
  }
  if (filters % groups !== 0 || c % groups !== 0) {
    throw o.error(`groups=${groups} must divide both filters (${filters}) and input channels (${c})`, 'groups');
  }
  // darknet's convolutional_out_height: (h + 2 * pad - size) / stride + 1, C division.
  const outH = Math.trunc((h + 2 * padding - size) / stride) + 1;
  const outW = Math.trunc((w + 2 * padding - size) / stride) + 1;
  if (outH <= 0 || outW <= 0 || h + 2 * padding < size || w + 2 * padding < size) {
    throw o.error(`a ${size} x ${size} window does not fit the ${w} x ${h} input with padding ${padding}: output would be ${outW} x ${outH}`);
  }

  const perFilter = (c / groups) * size * size;
  const params: ParamSpec[] = [
    { name: 'biases', size: filters },
    ...(batchNormalize ? batchNormParams(filters) : []),
    { name: 'weights', size: filters * perFilter },
  ];

  const flops = 2 * filters * perFilter * outH * outW;
  const p = (x: number, width: number) => String(x).padStart(width);
  const describe = `conv  ${p(filters, 5)} ${p(size, 2)} x${p(size, 2)} /${p(stride, 2)}  ` +
    `${p(w, 4)} x${p(h, 4)} x${p(c, 4)}   ->  ${p(outW, 4)} x${p(outH, 4)} x${p(filters, 4)}  ` +
    `${(flops / 1e9).toFixed(3).padStart(5)} BFLOPs`;

  return {
    ...baseSpec('convolutional', o, ctx, common, { outH, outW, outC: filters }),
    type: 'convolutional',
    filters, size, stride, padding, groups, activation, batchNormalize,
    params, flops, describe,
  };
}

export class ConvolutionalLayer implements Layer, WeightedLayer {
  /** `[batch, filters, outH, outW]` */
  readonly output: Tensor;
  readonly delta: Tensor;
  /** `[filters]` */
  readonly biases: Tensor;
  readonly biasUpdates: Tensor;
  /** `[filters, c / groups, size, size]` */
  readonly weights: Tensor;
  /** accumulates -dL/d(weights) (darknet's sign), then carries momentum */
  readonly weightUpdates: Tensor;
  /** `[weights]`, 1 keeps, 0 prunes; null when dense */
  mask: Tensor | null = null;
  readonly bn: BatchNorm | null;
  readonly params: readonly ParamTensor[];
  private readonly conv: ConvShape;
  private readonly channels: ChannelShape;

  constructor(readonly spec: ConvolutionalSpec, private readonly k: Kernels) {
    const { batch, c, h, w, filters: n, groups, size, stride, padding: pad, outH, outW } = spec;
    this.conv = { batch, c, h, w, n, groups, size, stride, pad, outH, outW };
    this.channels = { batch, channels: n, spatial: outH * outW };
    this.output = k.alloc(batch * spec.outputs);
    this.delta = k.alloc(batch * spec.outputs);
    this.biases = k.alloc(n);
    this.biasUpdates = k.alloc(n);
    const nWeights = n * (c / groups) * size * size;
    this.weights = k.alloc(nWeights);
    this.weightUpdates = k.alloc(nWeights);

    // darknet's make_convolutional_layer: He initialisation, scale * N(0, 1).
    const scale = Math.sqrt(2 / (size * size * (c / groups)));
    k.upload(this.weights, initialWeights(spec.index, nWeights, (random) => scale * gaussian(random)));
    this.bn = spec.batchNormalize ? new BatchNorm(k, this.channels) : null;
    this.params = weightedParams(spec.params, this);
    this.activationInput = activationInputTensor(k, spec.activation, batch * spec.outputs);
  }

  forward(net: NetState): void {
    if (this.sparse && (!net.train || this.mask)) this.sparseForward(net.input);
    else this.k.convForward(this.output, net.input, this.weights, this.conv);
    forwardNormBiasActivation(this.k, this, this.channels, net.train);
  }

  backward(net: NetState): void {
    backwardNormBiasActivation(this.k, this, this.channels);
    if (this.sparse && this.mask && this.panelFits()) {
      this.sparseBackward(net);
      return;
    }
    this.k.convBackwardFilter(this.weightUpdates, this.delta, net.input, this.conv);
    if (net.delta) this.k.convBackwardData(net.delta, this.delta, this.weights, this.conv);
  }

  /** darknet's update_convolutional_layer; decay applies to weights only. */
  update(a: UpdateArgs): void {
    updateWeighted(this.k, this, a);
    refreshSparseWeights(this.k, this, this.sparse);
  }

  setMask(mask: ArrayLike<number> | null): void {
    this.mask = applyMask(this.k, this, mask);
    this.paramsChanged();
  }

  paramsChanged(): void {
    this.bn?.paramsChanged();
    if (this.sparseMode !== 'off') this.setSparse(this.sparseMode);
  }

  // ---- the sparse path (k.sparse; convolutional_layer.c has none) ----

  /** the input before the activation, kept for mish's gradient (null for the others) */
  readonly activationInput: Tensor | null;
  private sparse: ConvSparseBuffers | null = null;
  private sparseMode: SparseMode = 'off';

  /**
   * Skips zero weights as the connected layer does (inference always, training when a mask
   * freezes the zeros), as sparse-times-dense products over im2col panels: weights [n x K]
   * in CSR times cols [K x outH * outW] per image forward (k.sparse.convForward), and over
   * the whole batch's panel [K x batch * outH * outW] backward. `auto` takes it from
   * CONV_SPARSE_AUTO_SPARSITY zeros up. Dense for groups > 1 (one weight matrix per group,
   * not done); backward runs dense where the batch's panel would pass CONV_SPARSE_MAX_PANEL.
   */
  setSparse(mode: SparseMode): boolean {
    this.sparseMode = mode;
    this.dropSparse();
    if (this.spec.groups !== 1) return false;
    if (!sparseWanted(this.k, this, mode, CONV_SPARSE_AUTO_SPARSITY)) return false;
    this.sparse = { A: null, cols: null, deltaT: null };
    return true;
  }

  /** The batch's im2col panel (sparse backward) is at most CONV_SPARSE_MAX_PANEL floats. */
  private panelFits(): boolean {
    const { batch, c, size, outH, outW } = this.spec;
    return c * size * size * batch * outH * outW <= CONV_SPARSE_MAX_PANEL;
  }

  /** The compressed weights [n x K]: positions from the mask when there is one, else from the zeros. */
  private packed(): SparseMatrix {
    const s = this.sparse!;
    if (!s.A) {
      const K = this.spec.c * this.spec.size * this.spec.size;
      s.A = this.k.sparse!.pack(this.mask ?? this.weights, this.spec.filters, K);
      if (this.mask) this.k.sparse!.refresh(s.A, this.weights);
    }
    return s.A;
  }

  /** output = W [n x K] x im2col(input), per image (k.sparse.convForward) */
  private sparseForward(input: Tensor): void {
    this.k.sparse!.convForward(this.output, this.packed(), input, this.conv);
  }

  /**
   * weightUpdates += delta x cols^T at the kept weights only; inputDelta += col2im(W^T delta),
   * over the im2col panels of the whole batch (made here: the forward pass fuses its own per
   * image), then the panel buffer takes W^T delta.
   */
  private sparseBackward(net: NetState): void {
    const s = this.sparse!;
    const sparse = this.k.sparse!;
    const { batch, filters: n } = this.spec;
    const spatial = this.conv.outH * this.conv.outW;
    const N = batch * spatial;
    const A = this.packed();
    s.cols ??= this.k.alloc(this.spec.c * this.spec.size * this.spec.size * N);
    s.deltaT ??= this.k.alloc(n * N);
    sparse.im2col(s.cols, net.input, this.conv);
    sparse.transpose(s.deltaT, this.delta, { rows: batch, cols: n, block: spatial });
    sparse.sampledGradient(this.weightUpdates, A, s.deltaT, s.cols, { N });
    if (net.delta) {
      sparse.spmmTransposed(s.cols, A, s.deltaT, { N, accumulate: false });
      sparse.col2im(net.delta, s.cols, this.conv);
    }
  }

  private dropSparse(): void {
    const s = this.sparse;
    if (!s) return;
    if (s.A) this.k.sparse!.free(s.A);
    if (s.cols) this.k.free(s.cols);
    if (s.deltaT) this.k.free(s.deltaT);
    this.sparse = null;
  }
}

/** The sparse path's compressed weights and, once it trains, its panels. */
interface ConvSparseBuffers {
  A: SparseMatrix | null;
  /** `[c * size * size, batch, outH * outW]`: im2col of the input, then W^T delta */
  cols: Tensor | null;
  /** `[filters, batch, outH * outW]`: delta in the panels' order */
  deltaT: Tensor | null;
}

/**
 * `--sparse auto` runs a convolutional layer sparsely from this share of zero weights up.
 * scripts/bench-sparse.ts's "conv2 layer" tables (LeNet-5's conv2, 20 -> 50, 5x5 on 12x12,
 * wasm-simd, 2 threads; a loaded 2-core machine, +-10 points run to run) put the
 * break-even at <= 25% (forward) and ~60% (backward) at batch 1, and at ~50-74% (forward)
 * and ~50-74% (backward) at batch 64; from 70% up sparse won in every run but one.
 */
export const CONV_SPARSE_AUTO_SPARSITY = 0.7;

/** Batch panels larger than this (floats; 256 MiB) train densely: the sparse backward holds one per layer. */
export const CONV_SPARSE_MAX_PANEL = 64 * 2 ** 20;

export const convolutional: LayerDefinition<ConvolutionalSpec> = {
  type: 'convolutional',
  names: ['convolutional', 'conv'],
  parse,
  create: (spec, k) => new ConvolutionalLayer(spec, k),
};
