import type { Activation, ChannelShape, GemmShape, Kernels, SparseMatrix, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamSpec, type ParamTensor, type ParseContext, type SparseMode, type UpdateArgs,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { BatchNorm, batchNormParams } from './batchnorm-core';
import {
  activationInputTensor, applyMask, backwardNormBiasActivation, forwardNormBiasActivation, initialWeights, refreshSparseWeights,
  sparseWanted, updateWeighted, weightedParams, type WeightedLayer,
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
  /** the input before the activation, kept for mish's gradient (null for the others) */
  readonly activationInput: Tensor | null;
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
    this.activationInput = activationInputTensor(k, spec.activation, batch * outputs);
  }

  forward(net: NetState): void {
    if (this.sparse && (!net.train || this.mask)) this.sparseForward(net.input);
    else this.k.gemm(this.output, net.input, this.weights, this.forwardGemm);
    forwardNormBiasActivation(this.k, this, this.channels, net.train);
  }

  backward(net: NetState): void {
    backwardNormBiasActivation(this.k, this, this.channels);
    if (this.sparse && this.mask) {
      this.sparseBackward(net);
      return;
    }
    this.k.gemm(this.weightUpdates, this.delta, net.input, this.filterGemm);
    if (net.delta) this.k.gemm(net.delta, this.delta, this.weights, this.dataGemm);
  }

  // ---- the sparse path (k.sparse; connected_layer.c has none) ----

  /** In use: the mode asked for resolved against this layer's sparsity. */
  private sparse: SparseBuffers | null = null;
  private sparseMode: SparseMode = 'off';

  /**
   * Skips zero weights: inference always, training when the zeros are frozen by a mask (their
   * positions then never change, so the compressed copy only takes the new values after each
   * update). `auto` takes it from SPARSE_AUTO_SPARSITY zeros up: the break-even measured by
   * scripts/bench-sparse.ts for fc 800 -> 500 was ~46% at batch 1 and ~42-44% at batch 64
   * (transposes included), so half the weights 0 is a safe margin.
   */
  setSparse(mode: SparseMode): boolean {
    this.sparseMode = mode;
    this.dropSparse();
    if (!sparseWanted(this.k, this, mode, SPARSE_AUTO_SPARSITY)) return false;
    const { batch, inputs, outputs } = this.spec;
    const alloc = (n: number) => this.k.alloc(n);
    this.sparse = {
      A: null, inputT: alloc(inputs * batch), outputT: alloc(outputs * batch),
      deltaT: alloc(outputs * batch), inputDeltaT: alloc(inputs * batch), inputDelta: alloc(batch * inputs),
    };
    return true;
  }

  paramsChanged(): void {
    this.bn?.paramsChanged();
    if (this.sparseMode !== 'off') this.setSparse(this.sparseMode);
  }

  /** The compressed weights: positions from the mask when there is one, else from the zeros. */
  private packed(): SparseMatrix {
    const s = this.sparse!;
    if (!s.A) {
      const { inputs, outputs } = this.spec;
      s.A = this.k.sparse!.pack(this.mask ?? this.weights, outputs, inputs);
      if (this.mask) this.k.sparse!.refresh(s.A, this.weights);
    }
    return s.A;
  }

  /** output^T [out x batch] = W [out x in] x input^T [in x batch] */
  private sparseForward(input: Tensor): void {
    const s = this.sparse!;
    const sparse = this.k.sparse!;
    const { batch, inputs, outputs } = this.spec;
    sparse.transpose(s.inputT, input, { rows: batch, cols: inputs });
    sparse.spmm(s.outputT, this.packed(), s.inputT, { N: batch, accumulate: false });
    sparse.transpose(this.output, s.outputT, { rows: outputs, cols: batch });
  }

  /**
   * weightUpdates += delta^T input at the kept weights only (the frozen ones get nothing,
   * as the masked update would zero it anyway); inputDelta += W^T delta.
   */
  private sparseBackward(net: NetState): void {
    const s = this.sparse!;
    const sparse = this.k.sparse!;
    const { batch, inputs, outputs } = this.spec;
    const A = this.packed();
    sparse.transpose(s.deltaT, this.delta, { rows: batch, cols: outputs });
    sparse.sampledGradient(this.weightUpdates, A, s.deltaT, s.inputT, { N: batch });
    if (net.delta) {
      sparse.spmmTransposed(s.inputDeltaT, A, s.deltaT, { N: batch, accumulate: false });
      sparse.transpose(s.inputDelta, s.inputDeltaT, { rows: inputs, cols: batch });
      this.k.axpby(net.delta, 1, s.inputDelta, 1);
    }
  }

  private dropSparse(): void {
    const s = this.sparse;
    if (!s) return;
    if (s.A) this.k.sparse!.free(s.A);
    for (const t of [s.inputT, s.outputT, s.deltaT, s.inputDeltaT, s.inputDelta]) this.k.free(t);
    this.sparse = null;
  }

  /** darknet's update_connected_layer; decay applies to weights only. */
  update(a: UpdateArgs): void {
    updateWeighted(this.k, this, a);
    refreshSparseWeights(this.k, this, this.sparse);
  }

  setMask(mask: ArrayLike<number> | null): void {
    this.mask = applyMask(this.k, this, mask);
    this.paramsChanged();
  }

}

/** The sparse path's compressed weights and its transposed operands, `[features, batch]`. */
interface SparseBuffers {
  A: SparseMatrix | null;
  inputT: Tensor;
  outputT: Tensor;
  deltaT: Tensor;
  inputDeltaT: Tensor;
  /** `[batch, inputs]`, added into the previous layer's delta */
  inputDelta: Tensor;
}

/** `--sparse auto` runs a connected layer sparsely from this share of zero weights up. */
export const SPARSE_AUTO_SPARSITY = 0.5;

export const connected: LayerDefinition<ConnectedSpec> = {
  type: 'connected',
  names: ['connected', 'conn'],
  parse,
  create: (spec, k) => new ConnectedLayer(spec, k),
};
