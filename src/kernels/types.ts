/**
 * The kernel seam. Layers call these named operations and nothing else; a backend
 * (gpu.js in one of its modes, or the plain TypeScript reference) implements them.
 *
 * Conventions, shared by every implementation:
 * - Buffers are opaque `Tensor` handles made by `alloc`; a backend owns their storage
 *   (a Float32Array, a Float64Array, or a GPU texture) and may rebind it on every call.
 * - Lifetimes are explicit: `free` gives a tensor's storage back (a freed tensor is
 *   refused by every op, and by a second `free`), `dispose` gives back the whole backend.
 *   A process that builds and drops many networks frees each one's tensors, so its
 *   memory stays flat: the garbage collector cannot reclaim a tensor inside a backend's
 *   WebAssembly memory, nor a GL texture.
 * - Destination first, then inputs, then sizes (llm.c's order). "+=" in a doc comment
 *   means the op accumulates into its destination; "=" means it overwrites it.
 * - Images are channel-planar, darknet's layout: `[batch, c, h, w]`, flat.
 * - A destination may also be one of the inputs only where the doc comment says so.
 * - Every shape argument is an integer; kernels are compiled once per distinct shape
 *   and cached, so a training loop compiles nothing after its first batch.
 */

export type FloatArray = Float32Array | Float64Array;

/** An opaque buffer of `size` floats owned by a backend. */
export interface Tensor {
  readonly size: number;
}

export type BackendName = 'reference' | 'cpu' | 'webasm' | 'headlessgl' | 'webgpu' | 'wasm-simd';

/**
 * The activations darknet knows (activations.c), by their cfg names; `mish` is
 * AlexeyAB's darknet's: x * tanh(softplus(x)), softplus(x) = x above 20, exp(x) below -20,
 * log1p(exp(x)) between.
 */
export const ACTIVATIONS = [
  'logistic', 'loggy', 'relu', 'elu', 'selu', 'relie', 'plse', 'hardtan', 'lhtan',
  'linear', 'ramp', 'leaky', 'tanh', 'stair', 'mish',
] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/**
 * Activations whose derivative cannot be had from their output (mish is not one-to-one):
 * `gradient` takes the activation's INPUT for these, as darknet's gradient_array_mish
 * takes activation_input, so a layer keeps a copy of the input before activating.
 */
export const GRADIENT_FROM_INPUT: ReadonlySet<Activation> = new Set<Activation>(['mish']);

/**
 * Row-major C = alpha * op(A) * op(B) + beta * C, darknet's gemm(TA, TB, M, N, K, ...).
 * op(A) is M x K (A is stored K x M when transA); op(B) is K x N (stored N x K when transB).
 * Leading dimensions are the stored row lengths; offsets are not supported (use a
 * tensor per matrix).
 */
export interface GemmShape {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/**
 * A convolution as darknet's convolutional_layer sees it.
 * input `[batch, c, h, w]`, weights `[n, c / groups, size, size]`, output `[batch, n, outH, outW]`
 * with outH = (h + 2 * pad - size) / stride + 1 (integer division), same for outW.
 * Filter f belongs to group g = floor(f / (n / groups)) and sees input channels
 * g * (c / groups) ... (g + 1) * (c / groups) - 1. Out-of-image taps read 0.
 */
export interface ConvShape {
  batch: number;
  c: number;
  h: number;
  w: number;
  n: number;
  groups: number;
  size: number;
  stride: number;
  pad: number;
  outH: number;
  outW: number;
}

/**
 * darknet's maxpool: `padding` is the total padding (default size - 1); the window of
 * output (i, j) starts at row i * stride - floor(padding / 2), column j * stride -
 * floor(padding / 2). outH = (h + padding - size) / stride + 1. Out-of-image taps are
 * never the max (-FLT_MAX). Ties go to the first tap in row-major window order (a
 * later tap must be strictly greater to win), as in darknet.
 */
export interface PoolShape {
  batch: number;
  c: number;
  h: number;
  w: number;
  size: number;
  stride: number;
  padding: number;
  outH: number;
  outW: number;
}

/** `[batch, channels, spatial]` view used by per-channel ops (bias, batch norm, avgpool). */
export interface ChannelShape {
  batch: number;
  channels: number;
  spatial: number;
}

/** darknet's SGD step (update_convolutional_layer), per parameter tensor. */
export interface SgdParams {
  /** learning rate already multiplied by the layer's learning_rate scale */
  rate: number;
  momentum: number;
  /** weight decay; pass 0 for biases and batch-norm scales, as darknet does */
  decay: number;
  /** B = batch * subdivisions */
  batch: number;
}

/** darknet's shortcut_cpu geometry: `add` is [batch, c1, h1, w1], `out` is [batch, c2, h2, w2]. */
export interface ShortcutShape {
  batch: number;
  w1: number;
  h1: number;
  c1: number;
  w2: number;
  h2: number;
  c2: number;
}

export type CostType = 'sse' | 'L1' | 'smooth';

/**
 * How a `SparseMatrix` stores its kept entries (measured in scripts/bench-sparse.ts):
 * - 'csr': compressed sparse rows (row starts, column indices, values): exactly the
 *   non-zeros. spmm vectorises over N, XNNPACK's MRx1 f32-spmm over CHW activations.
 * - 'block4x1': four consecutive rows share each column index; a block is kept when any
 *   of its four values is non-zero (the others stored as 0). One index and one load of
 *   B feed four rows, but unstructured zeros leave many padded slots.
 */
export type SparseFormat = 'csr' | 'block4x1';

/**
 * A weight matrix [rows x cols] with its zeros left out, made by `SparseKernels.pack`
 * and owned by that backend (opaque, like a Tensor). It keeps exactly the entries that
 * were non-zero when packed (the pruning mask); `refresh` re-reads their values.
 */
export interface SparseMatrix {
  readonly rows: number;
  readonly cols: number;
  /** kept entries (non-zeros when packed) */
  readonly nonZeros: number;
  readonly format: SparseFormat;
}

/**
 * Sparse-times-dense products for pruned weights, every dense operand row-major with N
 * columns: `[M x N]`, `[K x N]`, where the sparse matrix A is `[M x K]`.
 * Connected layers use N = batch on transposed activations (input^T is [inputs x batch]);
 * convolutions use the im2col panel of one image, N = outH * outW, K = c/groups*size*size.
 * The dense gemm with the zeros kept is the check: each op equals it (to rounding).
 */
export interface SparseKernels {
  /**
   * A compressed copy of dense `weights` [rows x cols] keeping its non-zero entries.
   *
   * @example
   *   const A = k.sparse!.pack(weights, 500, 800);   // fc 800 -> 500, zeros pruned
   *   k.sparse!.spmm(out, A, inputT, { N: 64, accumulate: false });
   */
  pack(weights: Tensor, rows: number, cols: number, format?: SparseFormat): SparseMatrix;
  /** A's kept values = weights at their positions (after an update); the positions stay. */
  refresh(A: SparseMatrix, weights: Tensor): void;
  /** Gives back A's storage; a later use of A throws. */
  free(A: SparseMatrix): void;
  /** C [M x N] (= or +=, by accumulate) A [M x K] x B [K x N]. C may not alias B. */
  spmm(C: Tensor, A: SparseMatrix, B: Tensor, s: { N: number; accumulate: boolean }): void;
  /** C [K x N] (= or +=) A^T x B [M x N] (backward-data: inputDelta from delta). C may not alias B. */
  spmmTransposed(C: Tensor, A: SparseMatrix, B: Tensor, s: { N: number; accumulate: boolean }): void;
  /**
   * Backward-filter at the kept entries only: for each kept (i, k),
   * weightUpdates[i * K + k] += sum over n of delta[i, n] * input[k, n], with weightUpdates
   * dense [M x K], delta [M x N], input [K x N]. Every other entry is left as it is
   * (so a pruned entry that is 0 stays exactly 0).
   */
  sampledGradient(weightUpdates: Tensor, A: SparseMatrix, delta: Tensor, input: Tensor, s: { N: number }): void;
  /**
   * dst [cols x rows] = src [rows x cols] transposed: a connected layer's activations
   * [batch x inputs] become the [inputs x batch] operand the products take, and back.
   * With `block` (default 1) each entry is a run of `block` floats moved whole:
   * dst [cols, rows, block] = src [rows, cols, block] (a convolution's [batch, filters,
   * outH * outW] output and its [filters, batch, outH * outW] product). dst may not be src.
   */
  transpose(dst: Tensor, src: Tensor, s: { rows: number; cols: number; block?: number }): void;
  /**
   * The im2col panels of every image side by side, for a convolution with groups = 1:
   * cols [K, batch, outH * outW], K = c * size * size taps in (channel, ky, kx) order (the
   * weights' [n, c, size, size] order), cols[k, b, oy * outW + ox] = input[b, channel,
   * oy * stride - pad + ky, ox * stride - pad + kx], 0 outside the image. Then the
   * convolution is the product weights [n x K] x cols [K x batch * outH * outW].
   */
  im2col(cols: Tensor, input: Tensor, s: ConvShape): void;
  /**
   * im2col's adjoint: inputDelta [batch, c, h, w] += every entry of cols [K, batch,
   * outH * outW] at the input pixel im2col read it from (out-of-image taps are dropped).
   */
  col2im(inputDelta: Tensor, cols: Tensor, s: ConvShape): void;
  /**
   * out [batch, n, outH, outW] = the convolution (groups = 1, no bias) with weights A
   * [n x c * size * size]: per image, A x its im2col panel, the same sums as im2col, spmm
   * and transpose (block outH * outW) over the batch. wasm-simd fuses them per image, the
   * panel in a thread's scratch, so the batch's panel (K times the input) is never written.
   */
  convForward(out: Tensor, A: SparseMatrix, input: Tensor, s: ConvShape): void;
}

export interface KernelStats {
  /** gpu.js kernels compiled so far (0 for the reference) */
  compiled: number;
  /** reads from backend storage to the host (`read`, and scalar results such as losses) */
  readbacks: number;
}

export interface Kernels {
  /** the backend actually running, not the one asked for */
  readonly backend: BackendName;
  /** a one-line description, e.g. "webasm (gpu.js WebAssemblyKernel)" */
  readonly description: string;

  /** A zero-filled tensor of `size` floats (also when it reuses freed storage). */
  alloc(size: number): Tensor;
  /**
   * Gives back the storage of `t`, made by this backend's `alloc`, for later allocs to
   * reuse. Every later use of `t`, a second free included, throws "... was freed".
   * NOTE: freeing after `dispose` is allowed (the storage went with the backend), so
   * networks and their backend can be dropped in either order.
   *
   * @example
   *   const t = k.alloc(784);
   *   k.free(t);
   *   k.read(t); // throws: read: this tensor (784 values) was freed
   */
  free(t: Tensor): void;
  /** dst = src (host values; src.length must equal dst.size). */
  upload(dst: Tensor, src: ArrayLike<number>): void;
  /** A host copy of the tensor's values. */
  read(src: Tensor): FloatArray;
  /** dst = value. */
  fill(dst: Tensor, value: number): void;
  /** dst = src (same size). */
  copy(dst: Tensor, src: Tensor): void;
  /** dst = a * x + b * dst, elementwise (same size). */
  axpby(dst: Tensor, a: number, x: Tensor, b: number): void;
  /**
   * Strided row copy, for route layers: for each b < batch and i < n,
   * dst[b * dstStride + dstOffset + i] (= or +=, by accumulate) src[b * srcStride + srcOffset + i].
   */
  copyRows(dst: Tensor, src: Tensor, r: {
    batch: number; n: number; srcStride: number; srcOffset: number;
    dstStride: number; dstOffset: number; accumulate: boolean;
  }): void;

  /** C = alpha * op(A) op(B) + beta * C. C may not alias A or B. */
  gemm(C: Tensor, A: Tensor, B: Tensor, s: GemmShape): void;

  /** out = conv(input, weights), no bias. `[batch, n, outH, outW]` */
  convForward(out: Tensor, input: Tensor, weights: Tensor, s: ConvShape): void;
  /** weightUpdates += d(out)/d(weights) contracted with delta. `[n, c/groups, size, size]` */
  convBackwardFilter(weightUpdates: Tensor, delta: Tensor, input: Tensor, s: ConvShape): void;
  /** inputDelta += d(out)/d(input) contracted with delta. `[batch, c, h, w]` */
  convBackwardData(inputDelta: Tensor, delta: Tensor, weights: Tensor, s: ConvShape): void;

  /** x[b, f, i] += biases[f]. */
  addBias(x: Tensor, biases: Tensor, s: ChannelShape): void;
  /** x[b, f, i] *= scales[f]. */
  scaleBias(x: Tensor, scales: Tensor, s: ChannelShape): void;
  /** biasUpdates[f] += sum over b, i of delta[b, f, i]. */
  backwardBias(biasUpdates: Tensor, delta: Tensor, s: ChannelShape): void;
  /** scaleUpdates[f] += sum over b, i of delta[b, f, i] * xNorm[b, f, i]. */
  backwardScale(scaleUpdates: Tensor, xNorm: Tensor, delta: Tensor, s: ChannelShape): void;

  /** dst = act(src), elementwise; dst may be src. */
  activate(dst: Tensor, src: Tensor, act: Activation): void;
  /**
   * delta *= act'(output), darknet's gradient_array: the derivative from the activation's
   * OUTPUT; for the GRADIENT_FROM_INPUT ones (mish) `output` is the activation's input.
   */
  gradient(delta: Tensor, output: Tensor, act: Activation): void;

  /** out = max over each window (PoolShape). */
  maxpoolForward(out: Tensor, input: Tensor, s: PoolShape): void;
  /** inputDelta[tap] += delta[o] for every output o whose max was that tap (recomputed from input). */
  maxpoolBackward(inputDelta: Tensor, delta: Tensor, input: Tensor, s: PoolShape): void;
  /** out[b, f] = mean over i of input[b, f, i] (darknet's global avgpool). */
  avgpoolForward(out: Tensor, input: Tensor, s: ChannelShape): void;
  /** inputDelta[b, f, i] += delta[b, f] / spatial. */
  avgpoolBackward(inputDelta: Tensor, delta: Tensor, s: ChannelShape): void;

  /**
   * out = softmax over each group: input is [batch, inputs], split in `groups` runs of
   * inputs / groups; out = exp(x / T - max / T) / sum (darknet's softmax_cpu, stride 1).
   */
  softmax(out: Tensor, input: Tensor, s: { batch: number; inputs: number; groups: number; temperature: number }): void;
  /**
   * darknet's softmax_x_ent: delta = truth - output; returns the summed loss
   * sum of -log(output) where truth != 0 (one readback).
   */
  softmaxCrossEntropy(delta: Tensor, output: Tensor, truth: Tensor): number;
  /**
   * darknet's cost layer maths on (pred, truth): returns the summed error and writes
   * delta, with d = t - p. sse: delta = d, error = d^2. L1: delta = d > 0 ? 1 : -1,
   * error = |d|. smooth: |d| < 1: delta = d, error = d^2; else delta = d > 0 ? 1 : -1,
   * error = 2|d| - 1. (darknet's deltas are minus half the error's gradient for sse.)
   * NOTE: darknet's smooth_l1_cpu writes delta = (d < 0) ? 1 : -1 outside |d| < 1, the
   * wrong sign; we write sign(d), consistent with the inner branch.
   */
  cost(delta: Tensor, pred: Tensor, truth: Tensor, type: CostType): number;

  /** Per-channel batch mean and biased variance (divide by batch * spatial). `[channels]` each. */
  batchnormStats(mean: Tensor, variance: Tensor, x: Tensor, s: ChannelShape): void;
  /** out = (x - mean[f]) / sqrt(variance[f] + eps); out may be x. */
  normalize(out: Tensor, x: Tensor, mean: Tensor, variance: Tensor, eps: number, s: ChannelShape): void;
  /**
   * Exact batch-norm input gradient, given delta already scaled by the scales (dxhat):
   * out = (dxhat - mean(dxhat) - xNorm * mean(dxhat * xNorm)) / sqrt(variance + eps),
   * means per channel over batch * spatial. out may not alias dxhat.
   */
  batchnormBackward(out: Tensor, dxhat: Tensor, xNorm: Tensor, variance: Tensor, eps: number, s: ChannelShape): void;

  /**
   * Seeded dropout from host-made uniforms `rand` in [0, 1):
   * dst (= or +=, by accumulate) rand < prob ? 0 : src * scale.
   */
  dropout(dst: Tensor, src: Tensor, rand: Tensor, prob: number, scale: number, accumulate: boolean): void;

  /** darknet's shortcut_cpu: out[o] = s1 * out[o] + s2 * add[a] over the sampled positions. */
  shortcut(out: Tensor, add: Tensor, s1: number, s2: number, s: ShortcutShape): void;

  /**
   * darknet's SGD step, in place on weights and updates:
   *   updates += -decay * batch * weights; weights += rate / batch * updates; updates *= momentum.
   * With a mask (1 keeps, 0 prunes), every weight and update where mask == 0 is set to
   * exactly +0.0 after the step, so neither gradient, decay nor momentum revives it.
   */
  sgdUpdate(weights: Tensor, updates: Tensor, mask: Tensor | null, p: SgdParams): void;

  /**
   * Sparse-weight products, where the backend has them (reference, wasm-simd); gpu.js's
   * backends leave this out and callers use the dense ops with the zeros kept.
   */
  readonly sparse?: SparseKernels;

  /** What this backend has done so far. */
  stats(): KernelStats;
  /**
   * Gives back the whole backend: worker threads terminated, GL textures and context
   * released. Afterwards `alloc` and every op on tensors throw "... was disposed"; `free`
   * does not, and a second `dispose` does nothing.
   */
  dispose(): void;
}
