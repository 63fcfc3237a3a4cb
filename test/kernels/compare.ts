/**
 * Comparing a backend's kernels with the plain TypeScript reference (float32): shapes,
 * tolerances and the op checks that kernels.test.ts runs on every backend and
 * wasm-simd.test.ts runs again with threads.
 *
 * Tolerances, stated once: an op passes when max |got - ref| / (1 + |ref|) <= tol, with
 *   EXACT = 0     selects and copies (copy, copyRows =, fill, relu, maxpool forward, masks);
 *   ELEM  = 1e-5  elementwise maths (float32 arithmetic, exp/log/sqrt in the kernel language,
 *                 against the reference's float64, e.g. sgd's rate / batch folded into one float);
 *   SUM   = 1e-4  reductions and dot products (float32 accumulation in a different order
 *                 than the reference's float64 sums), including the loops of 1500 and 5000.
 */
import { ReferenceKernels } from '../../src/kernels/reference';
import type { ConvShape, FloatArray, Kernels, PoolShape, Tensor } from '../../src/kernels/types';
import { mulberry32 } from '../../src/engine/random';

export const EXACT = 0;
export const ELEM = 1e-5;
export const SUM = 1e-4;

/** The worst error of got against want, scaled as the header says, and where it is. */
function worst(got: FloatArray, want: FloatArray): { error: number; at: number } {
  if (got.length !== want.length) throw new Error(`lengths differ: ${got.length} vs ${want.length}`);
  let error = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const e = Number.isNaN(want[i]) && Number.isNaN(got[i]) ? 0 : Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= error)) {
      error = e;
      at = i;
    }
  }
  return { error, at };
}

export function expectClose(got: FloatArray, want: FloatArray, tol: number, what: string): void {
  const { error, at } = worst(got, want);
  if (!(error <= tol)) {
    throw new Error(`${what}: error ${error.toExponential(2)} > ${tol} at [${at}]: got ${got[at]}, want ${want[at]}`);
  }
}

export function conv(s: Omit<ConvShape, 'outH' | 'outW'>): ConvShape {
  return {
    ...s,
    outH: Math.floor((s.h + 2 * s.pad - s.size) / s.stride) + 1,
    outW: Math.floor((s.w + 2 * s.pad - s.size) / s.stride) + 1,
  };
}

export function pool(s: Omit<PoolShape, 'outH' | 'outW'>): PoolShape {
  return {
    ...s,
    outH: Math.floor((s.h + s.padding - s.size) / s.stride) + 1,
    outW: Math.floor((s.w + s.padding - s.size) / s.stride) + 1,
  };
}

/**
 * [M, N, K], odd for wasm-simd's 4 x 8 tile and its gemm blocks (MC = 128, KC = 256,
 * NC = 1024): small; past NC and KC; past two MC blocks; past MC and two KC blocks; a 1 x 1
 * dot. (wasm-simd.test.ts adds gemms big enough to split between threads.)
 */
export const GEMM_SHAPES: [number, number, number][] = [[13, 7, 29], [5, 1037, 263], [301, 70, 45], [131, 9, 520], [1, 9, 1]];

/**
 * LeNet-like and odd convolutions (small batches keep gpu.js's cpu backend quick); lenet
 * conv2, K = 325 and the batch-9 one are big enough (> 4 MFLOP) to run threaded on wasm-simd.
 */
export const CONV_SHAPES: Record<string, ConvShape> = {
  'lenet conv1 1x28x28 -> 20 5x5': conv({ batch: 2, c: 1, h: 28, w: 28, n: 20, groups: 1, size: 5, stride: 1, pad: 0 }),
  'lenet conv2 20x12x12 -> 50 5x5': conv({ batch: 2, c: 20, h: 12, w: 12, n: 50, groups: 1, size: 5, stride: 1, pad: 0 }),
  'groups 2, stride 2, pad 1, 9x7': conv({ batch: 3, c: 4, h: 9, w: 7, n: 6, groups: 2, size: 3, stride: 2, pad: 1 }),
  'stride 3, pad 2, 5x5 on 11x8, groups 3': conv({ batch: 2, c: 3, h: 11, w: 8, n: 3, groups: 3, size: 5, stride: 3, pad: 2 }),
  '1x1, 6 -> 4': conv({ batch: 2, c: 6, h: 5, w: 3, n: 4, groups: 1, size: 1, stride: 1, pad: 0 }),
  'batch 1, 3x3 pad 1 on 13x11, 5 -> 7': conv({ batch: 1, c: 5, h: 13, w: 11, n: 7, groups: 1, size: 3, stride: 1, pad: 1 }),
  'K = 325 > KC, 13x17x15 -> 22 5x5 pad 2, batch 5': conv({ batch: 5, c: 13, h: 17, w: 15, n: 22, groups: 1, size: 5, stride: 1, pad: 2 }),
  'groups 2, stride 2, pad 1, 16x31x29 -> 14 3x3, batch 9': conv({ batch: 9, c: 16, h: 31, w: 29, n: 14, groups: 2, size: 3, stride: 2, pad: 1 }),
};

/**
 * The tensors LeNet-5 on MNIST (1x28x28) allocates at batch 8, in floats: per layer its
 * weights and their updates, biases and theirs, output and delta; then the input and the
 * truth. About 4.8 MB of float32: a network-sized set for the alloc/free tests.
 */
export const LENET_TENSORS: number[] = [
  500, 500, 20, 20, 92160, 92160, // conv 20 5x5: output [8, 20, 24, 24]
  23040, 23040, // maxpool 2x2 / 2: [8, 20, 12, 12]
  25000, 25000, 50, 50, 25600, 25600, // conv 50 5x5: [8, 50, 8, 8]
  6400, 6400, // maxpool 2x2 / 2: [8, 50, 4, 4]
  400000, 400000, 500, 500, 4000, 4000, // connected 800 -> 500
  5000, 5000, 10, 10, 80, 80, // connected 500 -> 10
  80, 80, // softmax
  6272, 80, // input [8, 784], truth [8, 10]
];

export interface Pair {
  /** on the backend under test */
  g: Tensor;
  /** on the reference */
  r: Tensor;
}

/**
 * Seeded random inputs, put alike on the backend under test (`get()`) and on the reference,
 * and compared after each ran the same op. `reseed` before each test keeps them repeatable.
 */
export function comparing(get: () => Kernels, tag: string) {
  const ref = new ReferenceKernels();
  let random = mulberry32(12345);
  return {
    kernels: get,
    ref,
    reseed(): void {
      random = mulberry32(12345);
    },
    /** uniform in [0, 1) */
    random: (): number => random(),
    values(n: number, scale = 1): Float32Array {
      return Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
    },
    pair(v: ArrayLike<number>): Pair {
      const k = get();
      const g = k.alloc(v.length);
      const r = ref.alloc(v.length);
      k.upload(g, v);
      ref.upload(r, v);
      return { g, r };
    },
    check(p: Pair, tol: number, what: string): void {
      expectClose(get().read(p.g), ref.read(p.r), tol, `[${tag}] ${what}`);
    },
  };
}

export type Comparing = ReturnType<typeof comparing>;

/** gemm of one shape, alpha 1.5, on a pre-filled C with beta 0.5, 0 and 1. */
export function expectGemmMatches(c: Comparing, [M, N, K]: [number, number, number], transA: boolean, transB: boolean): void {
  const k = c.kernels();
  const A = c.pair(c.values(M * K));
  const B = c.pair(c.values(K * N));
  const C = c.pair(c.values(M * N));
  for (const beta of [0.5, 0, 1]) {
    const s = { M, N, K, transA, transB, alpha: 1.5, beta };
    k.gemm(C.g, A.g, B.g, s);
    c.ref.gemm(C.r, A.r, B.r, s);
    c.check(C, SUM, `gemm ${M}x${N}x${K} beta ${beta}`);
  }
}

/** Forward, backward filter and backward data of one convolution, += into pre-filled destinations. */
export function expectConvMatches(c: Comparing, s: ConvShape): void {
  const k = c.kernels();
  const cpg = s.c / s.groups;
  const input = c.pair(c.values(s.batch * s.c * s.h * s.w));
  const weights = c.pair(c.values(s.n * cpg * s.size * s.size, 0.5));
  const out = c.pair(c.values(s.batch * s.n * s.outH * s.outW)); // overwritten
  k.convForward(out.g, input.g, weights.g, s);
  c.ref.convForward(out.r, input.r, weights.r, s);
  c.check(out, SUM, 'convForward');

  const delta = c.pair(c.values(s.batch * s.n * s.outH * s.outW));
  const weightUpdates = c.pair(c.values(weights.r.size)); // += keeps these
  k.convBackwardFilter(weightUpdates.g, delta.g, input.g, s);
  c.ref.convBackwardFilter(weightUpdates.r, delta.r, input.r, s);
  c.check(weightUpdates, SUM, 'convBackwardFilter');

  const inputDelta = c.pair(c.values(input.r.size));
  k.convBackwardData(inputDelta.g, delta.g, weights.g, s);
  c.ref.convBackwardData(inputDelta.r, delta.r, weights.r, s);
  c.check(inputDelta, SUM, 'convBackwardData');
}
