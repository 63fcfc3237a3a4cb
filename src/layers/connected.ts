import type { Activation, ChannelShape, GemmShape, Kernels, SparseMatrix, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamSpec, type ParamTensor, type ParseContext, type SparseMode, type UpdateArgs,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { BatchNorm, batchNormParams } from './batchnorm-core';
import {
  applyMask, backwardNormBiasActivation, forwardNormBiasActivation, initialWeights, updateWeighted, weightedParams,
  type WeightedLayer,
} from './weighted';

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
  const params: ParamSpec[] = [
    { name: 'biases', size: outputs },
    { name: 'weights', size: outputs * ctx.inputs },
    ...(batchNormalize ? batchNormParams(outputs) : []),
  ];
  const describe = `connected                            ${String(ctx.inputs).padStart(4)}  ->  ${String(outputs).padStart(4)}`;

  return {
    ...baseSpec('connected', o, ctx, common, { outH: 1, outW: 1, outC: outputs }),
    type: 'connected',
    activation, batchNormalize, params,
    flops: 2 * ctx.inputs * outputs,
    describe,
  };
}

export class ConnectedLayer implements Layer, WeightedLayer {
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
    k.upload(this.weights, initialWeights(spec.index, outputs * inputs, (random) => scale * (2 * random() - 1)));
    this.bn = spec.batchNormalize ? new BatchNorm(k, this.channels) : null;
    this.params = weightedParams(spec.params, this);
  }

  forward(net: NetState): void {
    if (!net.train && this.sparse) this.sparseForward(net.input);
    else this.k.gemm(this.output, net.input, this.weights, this.forwardGemm);
    forwardNormBiasActivation(this.k, this, this.channels, net.train);
  }

  // ---- the sparse inference path (k.sparse; connected_layer.c has none) ----

  /** In use: the mode asked for resolved against this layer's sparsity. */
  private sparse: { A: SparseMatrix | null; inputT: Tensor; outputT: Tensor } | null = null;
  private sparseMode: SparseMode = 'off';

  /**
   * Sparse inference: output^T [out x batch] = W [out x in] (CSR) x input^T [in x batch].
   * `auto` takes it from SPARSE_AUTO_SPARSITY zeros up: the break-even measured by
   * scripts/bench-sparse.ts for fc 800 -> 500 was ~46% at batch 1 and ~42-44% at batch 64
   * (transposes included), so half the weights 0 is a safe margin.
   */
  setSparse(mode: SparseMode): boolean {
    this.sparseMode = mode;
    this.dropSparse();
    const sparse = this.k.sparse;
    if (mode === 'off' || !sparse) return false;
    if (mode === 'auto') {
      const w = this.k.read(this.weights);
      let zeros = 0;
      for (let i = 0; i < w.length; i++) if (w[i] === 0) zeros++;
      if (zeros < SPARSE_AUTO_SPARSITY * w.length) return false;
    }
    const { batch, inputs, outputs } = this.spec;
    this.sparse = { A: null, inputT: this.k.alloc(inputs * batch), outputT: this.k.alloc(outputs * batch) };
    return true;
  }

  paramsChanged(): void {
    if (this.sparseMode !== 'off') this.setSparse(this.sparseMode);
  }

  private sparseForward(input: Tensor): void {
    const s = this.sparse!;
    const sparse = this.k.sparse!;
    const { batch, inputs, outputs } = this.spec;
    // Packed on first use after a change of weights (a load, or training's updates).
    s.A ??= sparse.pack(this.weights, outputs, inputs);
    sparse.transpose(s.inputT, input, { rows: batch, cols: inputs });
    sparse.spmm(s.outputT, s.A, s.inputT, { N: batch, accumulate: false });
    sparse.transpose(this.output, s.outputT, { rows: outputs, cols: batch });
  }

  private dropSparse(): void {
    if (!this.sparse) return;
    if (this.sparse.A) this.k.sparse!.free(this.sparse.A);
    this.k.free(this.sparse.inputT);
    this.k.free(this.sparse.outputT);
    this.sparse = null;
  }

  backward(net: NetState): void {
    backwardNormBiasActivation(this.k, this, this.channels);
    this.k.gemm(this.weightUpdates, this.delta, net.input, this.filterGemm);
    if (net.delta) this.k.gemm(net.delta, this.delta, this.weights, this.dataGemm);
  }

  /** darknet's update_connected_layer; decay applies to weights only. */
  update(a: UpdateArgs): void {
    updateWeighted(this.k, this, a);
    // the compressed copy is stale (and zeros may have moved): packed again when next used
    if (this.sparse?.A) {
      this.k.sparse!.free(this.sparse.A);
      this.sparse.A = null;
    }
  }

  setMask(mask: ArrayLike<number> | null): void {
    this.mask = applyMask(this.k, this, mask);
  }
}

/** `--sparse auto` runs a connected layer sparsely from this share of zero weights up. */
export const SPARSE_AUTO_SPARSITY = 0.5;

export const connected: LayerDefinition<ConnectedSpec> = {
  type: 'connected',
  names: ['connected', 'conn'],
  parse,
  create: (spec, k) => new ConnectedLayer(spec, k),
};
