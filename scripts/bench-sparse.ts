/**
 * Dense vs sparse weights on wasm-simd, side by side in one run: where does skipping the
 * zeros start to pay? For each shape and op, the dense gemm that darknet's layer calls is
 * timed against the sparse op (types.ts, SparseKernels) at 50 .. 98% unstructured sparsity
 * (uniform random zeros; for the 4x1 blocks also zeros pruned in whole 4x1 blocks, as a
 * block prune mode would make them, column "4x1 blocked mask"). Sparse speed is GFLOP/s-equivalent: the dense op's flops over the
 * sparse op's time, so it beats dense exactly when the column is larger. The break-even is
 * the sparsity where the two cross (linear in time between measured points).
 *
 *   npm run build && node dist/scripts/bench-sparse.js
 *
 * Environment: BENCH_THREADS=1 (default: the backend's, one per core up to 4).
 * Each cell: the median of 5 samples of at least 20 ms each, after a warm-up; the dense
 * gemm is timed again beside every sparsity row, so the ratios hold on a loaded machine.
 * For fc at batch > 1 the products take [features x batch] operands, so the column
 * "CSR + transposes" also times the sparse.transpose calls a connected layer needs.
 * The "conv2 layer" tables time what a convolutional layer runs, whole: the dense
 * convForward (and convBackwardFilter + convBackwardData) against the sparse path's
 * sparse.convForward (im2col + spmm per image, fused) (and im2col + transpose +
 * sampledGradient + spmmTransposed + col2im over the batch's panel), at batch 1 and 64: their break-even is what `--sparse auto` uses for conv.
 * BENCH_ONLY=conv runs only those.
 */
import { mulberry32 } from '../src/engine/random';
import type { ConvShape, GemmShape, Kernels, SparseFormat, SparseMatrix, Tensor } from '../src/kernels/types';
import { WasmSimdKernels } from '../src/kernels/wasm-simd';

const SPARSITIES = [0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98];
const SAMPLES = 5;
const SAMPLE_MS = 20;

/** Sparse A is M x K; the dense operands have N columns. */
interface Shape {
  name: string;
  M: number;
  K: number;
  N: number;
}

type Op = 'forward' | 'backward-data' | 'backward-filter';

const SHAPES: Shape[] = [
  { name: 'fc 800->500, batch 1', M: 500, K: 800, N: 1 },
  { name: 'fc 800->500, batch 64', M: 500, K: 800, N: 64 },
  // darknet's convolutional layer makes one gemm per image over its im2col panel
  { name: 'conv2 20->50, per image (N = 8x8)', M: 50, K: 500, N: 64 },
  // all 64 images' panels side by side, for comparison (B rows 16 KB apart)
  { name: 'conv2 20->50, 64 images in one panel (N = 64 x 8x8)', M: 50, K: 500, N: 64 * 64 },
];

/** The dense gemm darknet's layer makes for this op (connected.c / convolutional.c orientation). */
function denseGemm(s: Shape, op: Op, fc: boolean): GemmShape {
  const { M, K, N } = s;
  const g = { transA: false, transB: false, alpha: 1, beta: 0 };
  if (fc) {
    // connected: output [batch x outputs] = input [batch x inputs] x weights^T
    if (op === 'forward') return { ...g, M: N, N: M, K, transB: true };
    if (op === 'backward-data') return { ...g, M: N, N: K, K: M };
    return { ...g, M, N: K, K: N, transA: true, beta: 1 };
  }
  // convolutional: out [n x outHW] = weights [n x K] x columns [K x outHW]
  if (op === 'forward') return { ...g, M, N, K };
  if (op === 'backward-data') return { ...g, M: K, N, K: M, transA: true };
  return { ...g, M, N: K, K: N, transB: true, beta: 1 };
}

function filled(k: Kernels, values: ArrayLike<number>): Tensor {
  const t = k.alloc(values.length);
  k.upload(t, values);
  return t;
}

/** [M x K] values whose zeros come in whole 4x1 blocks (rows 4g .. 4g+3 of one column). */
function blockPruned(M: number, K: number, seed: number, sparsity: number): Float32Array {
  const r = mulberry32(seed);
  const w = randomValues(M * K, seed + 1);
  for (let g = 0; 4 * g < M; g++) {
    for (let k = 0; k < K; k++) {
      if (r() < sparsity) for (let i = 4 * g; i < Math.min(4 * g + 4, M); i++) w[i * K + k] = 0;
    }
  }
  return w;
}

function randomValues(n: number, seed: number, sparsity = 0): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => {
    const keep = r() >= sparsity;
    const v = 2 * r() - 1;
    return keep ? v : 0;
  });
}

/** Median milliseconds per call: samples of at least SAMPLE_MS, reps calibrated on a warm-up. */
function time(fn: () => void): number {
  fn();
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const ms = performance.now() - t0;
    if (ms >= SAMPLE_MS) break;
    reps = Math.max(reps * 2, Math.ceil((reps * SAMPLE_MS * 1.2) / Math.max(ms, 0.01)));
  }
  const samples: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    samples.push((performance.now() - t0) / reps);
  }
  samples.sort((a, b) => a - b);
  return samples[SAMPLES >> 1];
}

interface Row {
  sparsity: number;
  /** ms per call: the dense gemm (timed again beside each row, so load drift hits both) */
  dense: number;
  csr: number;
  /** fc at batch > 1: CSR with the activations transposed in and out, as the layer would */
  csrTransposed?: number;
  block?: number;
  /** 4x1 blocks on a mask pruned in 4x1 blocks */
  blockMask?: number;
}

/** The sparsity where sparse time crosses dense time (ratio 1), linear between measured points. */
function breakEven(rows: Row[], pick: (r: Row) => number | undefined): string {
  const pts = rows.map((r) => ({ s: r.sparsity, ratio: pick(r)! / r.dense }));
  if (pts[0].ratio <= 1) return `<= ${pct(pts[0].s)}`;
  for (let i = 1; i < pts.length; i++) {
    if (pts[i].ratio <= 1) {
      const [a, b] = [pts[i - 1], pts[i]];
      return `~${pct(a.s + ((a.ratio - 1) / (a.ratio - b.ratio)) * (b.s - a.s))}`;
    }
  }
  return `> ${pct(pts[pts.length - 1].s)}`;
}

const pct = (s: number): string => `${(100 * s).toFixed(0)}%`;

/** Every table's break-even (CSR against dense), printed together at the end. */
const summary: { what: string; csr: string }[] = [];
const gflops = (flops: number, ms: number): string => (flops / ms / 1e6).toFixed(2);
const cell = (flops: number, dense: number, ms: number): string =>
  `${gflops(flops, ms).padStart(8)} ${`(${(dense / ms).toFixed(2)}x)`.padStart(8)}`;

function benchOp(k: WasmSimdKernels, s: Shape, op: Op): void {
  const fc = s.name.startsWith('fc');
  const { M, K, N } = s;
  const flops = 2 * M * K * N;
  const g = denseGemm(s, op, fc);
  const [dA, dB, dC] = [filled(k, randomValues(g.M * g.K, 1)), filled(k, randomValues(g.K * g.N, 2)), k.alloc(g.M * g.N)];
  const timeDense = (): number => time(() => k.gemm(dC, dA, dB, g));

  const sp = k.sparse;
  const rows: Row[] = [];
  for (const sparsity of SPARSITIES) {
    const weights = filled(k, randomValues(M * K, 3, sparsity));
    const inRows = op === 'forward' ? K : M;
    const outRows = op === 'forward' ? M : K;
    const B = filled(k, randomValues(inRows * N, 4));
    const C = k.alloc(op === 'backward-filter' ? M * K : outRows * N);
    const X = op === 'backward-filter' ? filled(k, randomValues(K * N, 5)) : null;
    const run = (A: SparseMatrix): number => {
      if (op === 'forward') return time(() => sp.spmm(C, A, B, { N, accumulate: false }));
      if (op === 'backward-data') return time(() => sp.spmmTransposed(C, A, B, { N, accumulate: false }));
      return time(() => sp.sampledGradient(C, A, B, X!, { N }));
    };
    const packed = (w: Tensor, format: SparseFormat): number => {
      const A = sp.pack(w, M, K, format);
      const ms = run(A);
      sp.free(A);
      return ms;
    };
    const dense = timeDense();
    const row: Row = { sparsity, dense, csr: packed(weights, 'csr') };
    if (fc && N > 1) {
      // the layer's activations are [batch x features]: transpose in (and out) around the op
      const A = sp.pack(weights, M, K, 'csr');
      const bIn = k.alloc(B.size);
      const xIn = X ? k.alloc(X.size) : null;
      const cOut = op === 'backward-filter' ? null : k.alloc(C.size);
      row.csrTransposed = time(() => {
        sp.transpose(B, bIn, { rows: N, cols: inRows });
        if (xIn) sp.transpose(X!, xIn, { rows: N, cols: K });
        if (op === 'forward') sp.spmm(C, A, B, { N, accumulate: false });
        else if (op === 'backward-data') sp.spmmTransposed(C, A, B, { N, accumulate: false });
        else sp.sampledGradient(C, A, B, X!, { N });
        if (cOut) sp.transpose(cOut, C, { rows: outRows, cols: N });
      });
      sp.free(A);
      for (const t of [bIn, xIn, cOut]) if (t) k.free(t);
    }
    if (op === 'forward') {
      row.block = packed(weights, 'block4x1');
      const blocked = filled(k, blockPruned(M, K, 6, sparsity));
      row.blockMask = packed(blocked, 'block4x1');
      k.free(blocked);
    }
    rows.push(row);
    for (const t of [weights, B, C, X]) if (t) k.free(t);
  }
  for (const t of [dA, dB, dC]) k.free(t);

  const blocks = op === 'forward';
  const transposed = rows[0].csrTransposed !== undefined;
  console.log(`\n${s.name}, ${op}: sparse [${M} x ${K}] x [${K} x ${N}]; dense gemm ${g.M}x${g.N}x${g.K}${g.transA ? ' tA' : ''}${g.transB ? ' tB' : ''}`);
  console.log(`  sparsity | dense GFLOP/s | CSR GFLOP/s-eq (vs dense)${transposed ? ' | CSR + transposes' : ''}` +
    `${blocks ? ' | 4x1 GFLOP/s-eq (vs dense) | 4x1, 4x1-pruned mask' : ''}`);
  for (const r of rows) {
    const line = [pct(r.sparsity).padStart(10), gflops(flops, r.dense).padStart(13), cell(flops, r.dense, r.csr).padStart(25)];
    if (transposed) line.push(cell(flops, r.dense, r.csrTransposed!).padStart(17));
    if (blocks) line.push(cell(flops, r.dense, r.block!).padStart(25), cell(flops, r.dense, r.blockMask!).padStart(20));
    console.log(line.join(' | '));
  }
  const blockEven = blocks
    ? `, 4x1 ${breakEven(rows, (r) => r.block)}, 4x1 on a 4x1-pruned mask ${breakEven(rows, (r) => r.blockMask)}`
    : '';
  const transposedEven = transposed ? `, CSR + transposes ${breakEven(rows, (r) => r.csrTransposed)}` : '';
  console.log(`  break-even sparsity: CSR ${breakEven(rows, (r) => r.csr)}${transposedEven}${blockEven}`);
  summary.push({ what: `${s.name}, ${op}${transposed ? ' (CSR + transposes)' : ''}`, csr: breakEven(rows, (r) => r.csrTransposed ?? r.csr) });
}

/** LeNet-5's conv2: 20 -> 50 channels, 5x5, on 12x12 (8x8 out). */
function conv2(batch: number): ConvShape {
  return { batch, c: 20, h: 12, w: 12, n: 50, groups: 1, size: 5, stride: 1, pad: 0, outH: 8, outW: 8 };
}

/** A convolutional layer's whole op, dense against its sparse path (src/layers/convolutional.ts). */
function benchConvLayer(k: WasmSimdKernels, s: ConvShape, pass: 'forward' | 'backward'): void {
  const sp = k.sparse;
  const K = s.c * s.size * s.size;
  const spatial = s.outH * s.outW;
  const N = s.batch * spatial;
  const flops = 2 * s.n * K * N * (pass === 'forward' ? 1 : 2);
  const x = filled(k, randomValues(s.batch * s.c * s.h * s.w, 7));
  const delta = filled(k, randomValues(s.batch * s.n * spatial, 8));
  const out = k.alloc(s.batch * s.n * spatial);
  const dx = k.alloc(x.size);
  const cols = k.alloc(K * N);
  const outT = k.alloc(s.n * N);
  const rows: Row[] = [];
  for (const sparsity of SPARSITIES) {
    const weights = filled(k, randomValues(s.n * K, 9, sparsity));
    const dw = k.alloc(weights.size);
    const dense = pass === 'forward'
      ? time(() => k.convForward(out, x, weights, s))
      : time(() => {
        k.convBackwardFilter(dw, delta, x, s);
        k.convBackwardData(dx, delta, weights, s);
      });
    const A = sp.pack(weights, s.n, K);
    const csr = pass === 'forward'
      ? time(() => sp.convForward(out, A, x, s))
      : time(() => {
        // the layer reuses the forward's panel for the filter gradient; timed with its im2col here
        sp.im2col(cols, x, s);
        sp.transpose(outT, delta, { rows: s.batch, cols: s.n, block: spatial });
        sp.sampledGradient(dw, A, outT, cols, { N });
        sp.spmmTransposed(cols, A, outT, { N, accumulate: false });
        sp.col2im(dx, cols, s);
      });
    sp.free(A);
    rows.push({ sparsity, dense, csr });
    k.free(weights);
    k.free(dw);
  }
  for (const t of [x, delta, out, dx, cols, outT]) k.free(t);
  const what = pass === 'forward'
    ? 'convForward vs sparse.convForward (im2col + CSR spmm per image, fused)'
    : 'convBackwardFilter + convBackwardData vs im2col + transpose + sampledGradient + spmmTransposed + col2im';
  console.log(`\nconv2 layer 20->50 5x5 on 12x12, batch ${s.batch}, ${pass}: ${what}`);
  console.log('  sparsity | dense GFLOP/s | sparse GFLOP/s-eq (vs dense)');
  for (const r of rows) console.log([pct(r.sparsity).padStart(10), gflops(flops, r.dense).padStart(13), cell(flops, r.dense, r.csr).padStart(28)].join(' | '));
  console.log(`  break-even sparsity: ${breakEven(rows, (r) => r.csr)}`);
  summary.push({ what: `conv2 layer, batch ${s.batch}, ${pass} (whole op)`, csr: breakEven(rows, (r) => r.csr) });
}

function printSummary(): void {
  console.log('\nbreak-even sparsity, CSR against dense (sparse wins above it):');
  const width = Math.max(...summary.map((r) => r.what.length));
  for (const r of summary) console.log(`  ${r.what.padEnd(width)}  ${r.csr}`);
}

async function main(): Promise<void> {
  const threads = process.env.BENCH_THREADS ? Number(process.env.BENCH_THREADS) : undefined;
  const k = await WasmSimdKernels.create({ threads });
  const started = performance.now();
  console.log(`${k.description}; unstructured random zeros; GFLOP/s-eq = dense flops / sparse time`);
  try {
    for (const batch of [1, 64]) {
      for (const pass of ['forward', 'backward'] as const) benchConvLayer(k, conv2(batch), pass);
    }
    if (process.env.BENCH_ONLY !== 'conv') {
      for (const s of SHAPES) {
        for (const op of ['forward', 'backward-data', 'backward-filter'] as Op[]) {
          if (s.N > 64 && op !== 'forward') continue; // the conv layer tables time the batch's backward
          benchOp(k, s, op);
        }
      }
    }
    printSummary();
  } finally {
    k.dispose();
  }
  console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s in all`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
