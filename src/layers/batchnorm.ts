import type { ChannelShape, Kernels, Tensor } from '../kernels/types';
import {
  baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState,
  type ParamTensor, type ParseContext,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { BatchNorm, batchNormParams } from './batchnorm-core';

/**
 * darknet's batchnorm_layer.c: `[batchnorm]`, batch norm over the input image's
 * channels, then a per-channel bias; output shape = input shape. No cfg keys.
 *
 * NOTE: darknet gives this layer biases but never saves them, and gives it no update
 * function, so neither its scales nor its biases ever train (they stay 1 and 0 unless
 * a .weights file sets the scales). We mirror that: no `update`. Training the biases
 * would make a saved-and-reloaded model differ from the trained one.
 */

export interface BatchnormSpec extends LayerSpec {
  type: 'batchnorm';
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): BatchnormSpec {
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before a batchnorm layer must output an image (h, w, c > 0)');
  return {
    ...baseSpec('batchnorm', o, ctx, common, { outH: h, outW: w, outC: c }),
    type: 'batchnorm',
    params: batchNormParams(c),
    // per-element work is not counted (darknet counts only multiply-adds of conv layers)
    flops: 0,
    describe: `Batch Normalization Layer: ${w} x ${h} x ${c} image`,
  };
}

export class BatchnormLayer implements Layer {
  /** `[batch, c, h, w]` */
  readonly output: Tensor;
  readonly delta: Tensor;
  /** `[c]`, not saved and never updated (see the NOTE above) */
  readonly biases: Tensor;
  readonly biasUpdates: Tensor;
  readonly bn: BatchNorm;
  readonly params: readonly ParamTensor[];
  private readonly channels: ChannelShape;

  constructor(readonly spec: BatchnormSpec, private readonly k: Kernels) {
    const { batch, c, outputs } = spec;
    this.channels = { batch, channels: c, spatial: spec.h * spec.w };
    this.output = k.alloc(batch * outputs);
    this.delta = k.alloc(batch * outputs);
    this.biases = k.alloc(c);
    this.biasUpdates = k.alloc(c);
    this.bn = new BatchNorm(k, this.channels);
    this.params = [
      { name: 'scales', tensor: this.bn.scales, updates: this.bn.scaleUpdates },
      { name: 'rolling_mean', tensor: this.bn.rollingMean },
      { name: 'rolling_variance', tensor: this.bn.rollingVariance },
    ];
  }

  forward(net: NetState): void {
    this.k.copy(this.output, net.input);
    this.bn.forward(this.output, net.train);
    this.k.addBias(this.output, this.biases, this.channels);
  }

  paramsChanged(): void {
    this.bn.paramsChanged();
  }

  backward(net: NetState): void {
    this.k.backwardBias(this.biasUpdates, this.delta, this.channels);
    this.bn.backward(this.delta);
    // NOTE: darknet copies (=) into net.delta; we add, like every other layer, so a
    // delta shared with a route or shortcut is not overwritten.
    if (net.delta) this.k.axpby(net.delta, 1, this.delta, 1);
  }
}

export const batchnorm: LayerDefinition<BatchnormSpec> = {
  type: 'batchnorm',
  names: ['batchnorm'],
  parse,
  create: (spec, k) => new BatchnormLayer(spec, k),
};
