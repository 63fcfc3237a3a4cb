// The wasm-simd kernel module: everything the host (../../wasm-simd.ts) calls.
// Built by `npm run build:wasm` into dist/wasm/kernels.wasm, over an imported shared memory.

export { gemmJob, scaleMatrix } from './gemm';
import { NC, SCRATCH_FLOATS } from './gemm';
export { convForwardJob, packPatchesJob, convBackwardDataJob, convBackwardFilterJob, packConvWeights, packConvWeightsJob, packConvWeightsT } from './conv';
export * from './ops';
export { spmmCsrJob, spmmBlock4x1Job, sampledGradientJob, im2colJob, sparseConvForwardJob, gatherSparse, transposeMatrix, transposeBlocks } from './sparse';

/** The first byte past the module's own static data: the host allocates from here up. */
export function heapBase(): usize {
  return __heap_base;
}

/** Output positions of one column block of the conv gemm: packPatchesJob packs at most this many. */
export function patchColumns(): i32 {
  return NC;
}

/** Floats of per-thread scratch that the gemm and conv jobs need. */
export function scratchFloats(): i32 {
  return SCRATCH_FLOATS;
}
