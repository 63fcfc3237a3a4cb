import type { Activation, ChannelShape, ConvShape, Kernels, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamSpec, type ParamTensor, type ParseContext, type UpdateArgs,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { gaussian } from '../engine/random';
import { BatchNorm, batchNormParams } from './batchnorm-core';
import {
  applyMask, backwardNormBiasActivation, forwardNormBiasActivation, initialWeights, updateWeighted, weightedParams,
  type WeightedLayer,
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
  }

  forward(net: NetState): void {
    this.k.convForward(this.output, net.input, this.weights, this.conv);
    forwardNormBiasActivation(this.k, this, this.channels, net.train);
  }

  backward(net: NetState): void {
    backwardNormBiasActivation(this.k, this, this.channels);
    this.k.convBackwardFilter(this.weightUpdates, this.delta, net.input, this.conv);
    if (net.delta) this.k.convBackwardData(net.delta, this.delta, this.weights, this.conv);
  }

  /** darknet's update_convolutional_layer; decay applies to weights only. */
  update(a: UpdateArgs): void {
    updateWeighted(this.k, this, a);
  }

  setMask(mask: ArrayLike<number> | null): void {
    this.mask = applyMask(this.k, this, mask);
  }
}

export const convolutional: LayerDefinition<ConvolutionalSpec> = {
  type: 'convolutional',
  names: ['convolutional', 'conv'],
  parse,
  create: (spec, k) => new ConvolutionalLayer(spec, k),
};
