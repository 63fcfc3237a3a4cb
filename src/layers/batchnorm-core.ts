import type { ChannelShape, Kernels, SgdParams, Tensor } from '../kernels/types';
import type { ParamSpec } from '../engine/layer';

/**
 * The batch-norm sequence shared by convolutional, connected and batchnorm layers
 * (darknet's forward_batchnorm_layer / backward_batchnorm_layer without the bias, which
 * each layer adds and differentiates itself, since layers without batch norm need it too).
 *
 * NOTE: darknet's forward normalizes with the UNBIASED batch variance as
 * (x - mean) / (sqrt(var) + 1e-6), and its backward uses sqrt(var + 1e-5) with the
 * biased-variance formula, so its backward is not quite the gradient of its forward.
 * We normalize with the BIASED batch variance as (x - mean) / sqrt(var + 1e-5), whose
 * exact gradient `batchnormBackward` computes. The rolling variance still averages the
 * unbiased variance, as darknet's does, so saved weights mean the same thing. The two
 * forwards differ by a factor sqrt(N / (N - 1)) per channel (N = batch * spatial).
 *
 * Inference (rolling statistics) normalizes exactly as darknet's does, so a net trained by
 * darknet gives darknet's answers: (x - mean) / (sqrt(var) + 1e-6). The kernels' normalize
 * divides by sqrt(v + eps), so we hand it v' = (sqrt(var) + 1e-6)^2 and eps 0, derived on
 * the host (in float64, then rounded to float32) whenever the rolling variance may have
 * changed: after construction, after a training pass, and after `paramsChanged`.
 */

/** the epsilon under every square root of a variance */
export const BN_EPSILON = 1e-5;

/** The batch-norm arrays of a layer's .weights, in darknet's order, for `channels` channels. */
export function batchNormParams(channels: number): ParamSpec[] {
  return [{ name: 'scales', size: channels }, { name: 'rolling_mean', size: channels }, { name: 'rolling_variance', size: channels }];
}

/** darknet's epsilon at inference: it divides by sqrt(var) + 1e-6 (normalize_cpu) */
export const BN_INFERENCE_EPSILON = 1e-6;

/** The divisor of darknet's inference batch norm for a rolling variance `variance`. */
export function inferenceDenominator(variance: number): number {
  return Math.sqrt(variance) + BN_INFERENCE_EPSILON;
}

/** darknet's rolling average: r = .99 r + .01 (batch statistic) */
const ROLLING_KEEP = 0.99;

export class BatchNorm {
  /** `[channels]`, trained; initialised to 1 as in darknet */
  readonly scales: Tensor;
  /** `[channels]`, accumulates -dL/d(scales) (darknet's sign) */
  readonly scaleUpdates: Tensor;
  /** `[channels]`, used at inference; start at 0 as in darknet (calloc) */
  readonly rollingMean: Tensor;
  readonly rollingVariance: Tensor;
  /** `[channels]`: the last training batch's mean and biased variance */
  private readonly mean: Tensor;
  private readonly variance: Tensor;
  /** `[channels]`: (sqrt(rollingVariance) + 1e-6)^2, valid unless `stale` */
  private readonly inferenceVariance: Tensor;
  private stale = true;
  /** `[batch, channels, spatial]`: the normalized input of the last training pass */
  private readonly xNorm: Tensor;
  /** `[batch, channels, spatial]`: scratch for the input gradient */
  private readonly dx: Tensor;

  constructor(private readonly k: Kernels, private readonly shape: ChannelShape) {
    const { batch, channels, spatial } = shape;
    this.scales = k.alloc(channels);
    k.fill(this.scales, 1);
    this.scaleUpdates = k.alloc(channels);
    this.rollingMean = k.alloc(channels);
    this.rollingVariance = k.alloc(channels);
    this.mean = k.alloc(channels);
    this.variance = k.alloc(channels);
    this.inferenceVariance = k.alloc(channels);
    this.xNorm = k.alloc(batch * channels * spatial);
    this.dx = k.alloc(batch * channels * spatial);
  }

  /** x = scales * normalize(x), in place. `x` is `[batch, channels, spatial]`. */
  forward(x: Tensor, train: boolean): void {
    const k = this.k;
    if (train) {
      k.batchnormStats(this.mean, this.variance, x, this.shape);
      const n = this.shape.batch * this.shape.spatial;
      // NOTE: darknet's rolling variance averages the unbiased variance (variance_cpu
      // divides by N - 1). With N = 1 darknet divides by zero; we keep the biased one.
      const unbias = n > 1 ? n / (n - 1) : 1;
      k.axpby(this.rollingMean, 1 - ROLLING_KEEP, this.mean, ROLLING_KEEP);
      k.axpby(this.rollingVariance, (1 - ROLLING_KEEP) * unbias, this.variance, ROLLING_KEEP);
      this.stale = true;
      k.normalize(this.xNorm, x, this.mean, this.variance, BN_EPSILON, this.shape);
      k.copy(x, this.xNorm);
    } else {
      if (this.stale) this.deriveInferenceVariance();
      k.normalize(x, x, this.rollingMean, this.inferenceVariance, 0, this.shape);
    }
    k.scaleBias(x, this.scales, this.shape);
  }

  /**
   * The rolling statistics were replaced from outside (a loaded file): re-derive what
   * inference uses from them. Whoever writes `rollingVariance` directly must call this
   * (a training pass marks it itself).
   */
  paramsChanged(): void {
    this.stale = true;
  }

  /** NOTE: one read-back of [channels] floats, only when the rolling variance changed. */
  private deriveInferenceVariance(): void {
    const v = this.k.read(this.rollingVariance);
    const out = new Float64Array(v.length);
    for (let c = 0; c < v.length; c++) out[c] = inferenceDenominator(v[c]) ** 2;
    this.k.upload(this.inferenceVariance, out);
    this.stale = false;
  }

  /**
   * Given delta = -dL/d(output of forward), accumulates scaleUpdates and replaces delta
   * by -dL/d(input of forward). Uses the statistics of the last TRAINING forward pass
   * (darknet's backward after an inference pass uses the rolling ones; our Network only
   * runs backward after a training pass).
   */
  backward(delta: Tensor): void {
    const k = this.k;
    k.backwardScale(this.scaleUpdates, this.xNorm, delta, this.shape);
    k.scaleBias(delta, this.scales, this.shape);
    k.batchnormBackward(this.dx, delta, this.xNorm, this.variance, BN_EPSILON, this.shape);
    k.copy(delta, this.dx);
  }

  /**
   * darknet's scale step: no decay. With `l1` > 0 (network slimming), the L1 sub-gradient
   * l1 * sign(scale) of the batch's mean loss joins the gradient first; scaleUpdates holds
   * the negative gradient summed over the B images, hence -B * l1 * sign.
   * NOTE: done on the host ([channels] floats, a few per layer), so it costs one read-back.
   */
  update(p: Omit<SgdParams, 'decay'>, l1 = 0): void {
    if (l1 > 0) {
      const scales = this.k.read(this.scales);
      const updates = this.k.read(this.scaleUpdates);
      for (let c = 0; c < updates.length; c++) updates[c] -= p.batch * l1 * Math.sign(scales[c]);
      this.k.upload(this.scaleUpdates, updates);
    }
    this.k.sgdUpdate(this.scales, this.scaleUpdates, null, { ...p, decay: 0 });
  }
}
