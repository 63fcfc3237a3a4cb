import type { Activation, ChannelShape, ConvShape, Kernels, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamSpec, type ParamTensor, type ParseContext, type UpdateArgs,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { gaussian } from '../engine/random';
import { BatchNorm, batchNormParams } from './batchnorm-core';
import {
  backwardNormBiasActivation, forwardNormBiasActivation, initialWeights, updateWeighted, weightedParams,
  type WeightedLayer,
} from './weighted';

/**
 * `[deconvolutional]` / `[deconv]`: darknet's deconvolutional_layer.c, a transposed
 * convolution. It is a convolution run backwards: with the convolution that maps this
 * layer's OUTPUT shape `[n, outH, outW]` to its INPUT shape `[c, h, w]` (weights
 * `[c, n, size, size]`, darknet's deconv layout), forward = that conv's backward-data,
 * the input gradient = that conv's forward, the filter gradient = its backward-filter
 * with input and delta swapped. All on the kernels (no host code).
 */
export interface DeconvolutionalSpec extends LayerSpec {
  type: 'deconvolutional';
  filters: number;
  size: number;
  stride: number;
  padding: number;
  activation: Activation;
  batchNormalize: boolean;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): DeconvolutionalSpec {
  const filters = o.int('filters', 1);
  const size = o.int('size', 1);
  const stride = o.int('stride', 1);
  const activation = activationOption(o, 'logistic');
  const batchNormalize = o.flag('batch_normalize');
  const pad = o.int('pad', 0);
  const explicitPadding = o.int('padding', 0);
  const padding = pad ? Math.floor(size / 2) : explicitPadding;
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before a deconvolutional layer must output an image (h, w, c > 0)');
  if (filters < 1 || size < 1 || stride < 1 || padding < 0) {
    throw o.error(`filters, size and stride must be >= 1 and padding >= 0 (filters=${filters} size=${size} stride=${stride} padding=${padding})`);
  }
  // darknet's make_deconvolutional_layer
  const outH = (h - 1) * stride + size - 2 * padding;
  const outW = (w - 1) * stride + size - 2 * padding;
  if (outH < 1 || outW < 1) throw o.error(`deconv ${size} x ${size} / ${stride} with padding ${padding} leaves nothing of a ${w} x ${h} input`);
  const params: ParamSpec[] = [
    { name: 'biases', size: filters },
    ...(batchNormalize ? batchNormParams(filters) : []),
    { name: 'weights', size: c * filters * size * size },
  ];
  const p = (x: number, width: number) => String(x).padStart(width);
  return {
    ...baseSpec('deconvolutional', o, ctx, common, { outH, outW, outC: filters }),
    type: 'deconvolutional',
    filters, size, stride, padding, activation, batchNormalize,
    params,
    // NOTE: darknet counts no FLOPs for deconvolutions (its `ops` total has only conv and
    // connected), so neither do we: the summary's total stays darknet's number.
    flops: 0,
    describe: `deconv${p(filters, 5)} ${p(size, 2)} x${p(size, 2)} /${p(stride, 2)}  ${p(w, 4)} x${p(h, 4)} x${p(c, 4)}   ->  ${p(outW, 4)} x${p(outH, 4)} x${p(filters, 4)}`,
  };
}

export class DeconvolutionalLayer implements Layer, WeightedLayer {
  /** `[batch, filters, outH, outW]` */
  readonly output: Tensor;
  readonly delta: Tensor;
  /** `[filters]` */
  readonly biases: Tensor;
  readonly biasUpdates: Tensor;
  /** `[c, filters, size, size]` */
  readonly weights: Tensor;
  readonly weightUpdates: Tensor;
  readonly mask: Tensor | null = null;
  readonly bn: BatchNorm | null;
  readonly params: readonly ParamTensor[];
  /** `[batch, c, h, w]`: the input gradient before it is added into net.delta */
  private readonly inputDelta: Tensor;
  /** the convolution from this layer's output shape to its input shape */
  private readonly conv: ConvShape;
  private readonly channels: ChannelShape;

  constructor(readonly spec: DeconvolutionalSpec, private readonly k: Kernels) {
    const { batch, c, h, w, filters, size, stride, padding, outH, outW } = spec;
    this.conv = { batch, c: filters, h: outH, w: outW, n: c, groups: 1, size, stride, pad: padding, outH: h, outW: w };
    this.channels = { batch, channels: filters, spatial: outH * outW };
    this.output = k.alloc(batch * spec.outputs);
    this.delta = k.alloc(batch * spec.outputs);
    this.inputDelta = k.alloc(batch * spec.inputs);
    this.biases = k.alloc(filters);
    this.biasUpdates = k.alloc(filters);
    const nWeights = c * filters * size * size;
    this.weights = k.alloc(nWeights);
    this.weightUpdates = k.alloc(nWeights);
    // darknet: 0.02 * N(0, 1), then scaled by (outW * outH) / (w * h)
    const scale = 0.02 * ((outW * outH) / (w * h));
    k.upload(this.weights, initialWeights(spec.index, nWeights, (random) => scale * gaussian(random)));
    this.bn = spec.batchNormalize ? new BatchNorm(k, this.channels) : null;
    this.params = weightedParams(spec.params, this);
  }

  forward(net: NetState): void {
    this.k.fill(this.output, 0);
    this.k.convBackwardData(this.output, net.input, this.weights, this.conv);
    forwardNormBiasActivation(this.k, this, this.channels, net.train);
  }

  backward(net: NetState): void {
    backwardNormBiasActivation(this.k, this, this.channels);
    // the conv's "input" is our delta, its "output delta" our input
    this.k.convBackwardFilter(this.weightUpdates, net.input, this.delta, this.conv);
    if (net.delta) {
      this.k.convForward(this.inputDelta, this.delta, this.weights, this.conv);
      this.k.axpby(net.delta, 1, this.inputDelta, 1);
    }
  }

  /** darknet's update_deconvolutional_layer: as a convolution's. */
  update(a: UpdateArgs): void {
    updateWeighted(this.k, this, a);
  }

  paramsChanged(): void {
    this.bn?.paramsChanged();
  }
}

export const deconvolutional: LayerDefinition<DeconvolutionalSpec> = {
  type: 'deconvolutional',
  names: ['deconvolutional', 'deconv'],
  parse,
  create: (spec, k) => new DeconvolutionalLayer(spec, k),
};
