import type { Activation, ChannelShape, GemmShape, Kernels, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamSpec, type ParamTensor, type ParseContext, type UpdateArgs,
} from '../layer';
import type { Options } from '../options';
import { mulberry32 } from '../random';
import { BatchNorm } from './batchnorm-core';
import { applyMask, WEIGHT_SEED } from './convolutional';

/** darknet's connected_layer.c: `[connected]` / `[conn]`, a dense layer over the flat input. */

export interface ConnectedSpec extends LayerSpec {
  type: 'connected';
  activation: Activation;
  batchNormalize: boolean;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): ConnectedSpec {
  const outputs = o.int('output', 1);
  const activation = activationOption(o, 'logistic');
  const batchNormalize = o.flag('batch_normalize');
  if (outputs < 1) throw o.error(`output=${outputs} must be >= 1`, 'output');
  if (ctx.inputs < 1) throw o.error('the layer before a connected layer has no outputs');

  // NOTE: the .weights order differs from the conv layer's: weights come before the
  // batch-norm arrays. Weights are [outputs, inputs] (row = output), unless the file's
  // major or minor version is > 1000 (the loader transposes those).
  const params: ParamSpec[] = [{ name: 'biases', size: outputs }, { name: 'weights', size: outputs * ctx.inputs }];
  if (batchNormalize) {
    params.push({ name: 'scales', size: outputs }, { name: 'rolling_mean', size: outputs }, { name: 'rolling_variance', size: outputs });
  }
  const describe = `connected                            ${String(ctx.inputs).padStart(4)}  ->  ${String(outputs).padStart(4)}`;

  return {
    ...baseSpec('connected', o, ctx, common, { outH: 1, outW: 1, outC: outputs }),
    type: 'connected',
    activation, batchNormalize, params,
    flops: 2 * ctx.inputs * outputs,
    describe,
  };
}

export class ConnectedLayer implements Layer {
  /** `[batch, outputs]` */
  readonly output: Tensor;
  readonly delta: Tensor;
  /** `[outputs]` */
  readonly biases: Tensor;
  readonly biasUpdates: Tensor;
  /** `[outputs, inputs]` */
  readonly weights: Tensor;
  /** accumulates -dL/d(weights) (darknet's sign), then carries momentum */
  readonly weightUpdates: Tensor;
  /** `[weights]`, 1 keeps, 0 prunes; null when dense */
  mask: Tensor | null = null;
  readonly bn: BatchNorm | null;
  readonly params: readonly ParamTensor[];
  private readonly channels: ChannelShape;
  /** output[batch, out] = input[batch, in] * weights^T */
  private readonly forwardGemm: GemmShape;
  /** weightUpdates[out, in] += delta^T[out, batch] * input[batch, in] */
  private readonly filterGemm: GemmShape;
  /** inputDelta[batch, in] += delta[batch, out] * weights[out, in] */
  private readonly dataGemm: GemmShape;

  constructor(readonly spec: ConnectedSpec, private readonly k: Kernels) {
    const { batch, inputs, outputs } = spec;
    this.channels = { batch, channels: outputs, spatial: 1 };
    this.forwardGemm = { M: batch, N: outputs, K: inputs, transA: false, transB: true, alpha: 1, beta: 0 };
    this.filterGemm = { M: outputs, N: inputs, K: batch, transA: true, transB: false, alpha: 1, beta: 1 };
    this.dataGemm = { M: batch, N: inputs, K: outputs, transA: false, transB: false, alpha: 1, beta: 1 };
    this.output = k.alloc(batch * outputs);
    this.delta = k.alloc(batch * outputs);
    this.biases = k.alloc(outputs);
    this.biasUpdates = k.alloc(outputs);
    this.weights = k.alloc(outputs * inputs);
    this.weightUpdates = k.alloc(outputs * inputs);

    // darknet's make_connected_layer: uniform(-scale, scale), scale = sqrt(2 / inputs).
    const scale = Math.sqrt(2 / inputs);
    const random = mulberry32(WEIGHT_SEED + spec.index);
    k.upload(this.weights, Array.from({ length: outputs * inputs }, () => scale * (2 * random() - 1)));

    this.bn = spec.batchNormalize ? new BatchNorm(k, this.channels) : null;
    const bn = this.bn;
    const tensors: Record<ParamSpec['name'], Omit<ParamTensor, 'name'> | undefined> = {
      biases: { tensor: this.biases, updates: this.biasUpdates },
      scales: bn ? { tensor: bn.scales, updates: bn.scaleUpdates } : undefined,
      rolling_mean: bn ? { tensor: bn.rollingMean } : undefined,
      rolling_variance: bn ? { tensor: bn.rollingVariance } : undefined,
      weights: { tensor: this.weights, updates: this.weightUpdates },
    };
    this.params = spec.params.map((p) => ({ name: p.name, ...tensors[p.name]! }));
  }

  forward(net: NetState): void {
    const k = this.k;
    k.gemm(this.output, net.input, this.weights, this.forwardGemm);
    this.bn?.forward(this.output, net.train);
    k.addBias(this.output, this.biases, this.channels);
    k.activate(this.output, this.output, this.spec.activation);
  }

  backward(net: NetState): void {
    const k = this.k;
    k.gradient(this.delta, this.output, this.spec.activation);
    k.backwardBias(this.biasUpdates, this.delta, this.channels);
    this.bn?.backward(this.delta);
    k.gemm(this.weightUpdates, this.delta, net.input, this.filterGemm);
    if (net.delta) k.gemm(net.delta, this.delta, this.weights, this.dataGemm);
  }

  /** darknet's update_connected_layer; decay applies to weights only. */
  update(a: UpdateArgs): void {
    const p = { rate: a.learningRate * this.spec.learningRateScale, momentum: a.momentum, batch: a.batch };
    this.k.sgdUpdate(this.biases, this.biasUpdates, null, { ...p, decay: 0 });
    this.bn?.update(p);
    this.k.sgdUpdate(this.weights, this.weightUpdates, this.mask, { ...p, decay: a.decay });
  }

  setMask(mask: ArrayLike<number> | null): void {
    this.mask = applyMask(this.k, this.weights, this.weightUpdates, mask, this.mask);
  }
}

export const connected: LayerDefinition<ConnectedSpec> = {
  type: 'connected',
  names: ['connected', 'conn'],
  parse,
  create: (spec, k) => new ConnectedLayer(spec, k),
};
