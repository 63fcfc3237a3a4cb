/**
 * Runs one suite on every backend this machine can start. Test names carry the backend
 * in brackets ("[webasm] gemm ..."), which test/backend-reporter.js counts, so the
 * output of `npm test` says which backends ran and how many tests each.
 *
 * A backend that cannot start is reported, never silently skipped: with
 * DARKNET_TS_REQUIRE (e.g. "cpu,webasm,headlessgl", set by .ci/run) a missing one fails.
 */
import { createKernels, probeBackends } from '../src/kernels/backend';
import type { BackendName, Kernels } from '../src/kernels/types';

export const GPUJS_BACKENDS: BackendName[] = ['cpu', 'webasm', 'headlessgl', 'webgpu'];
/** The hand-written WebAssembly backend, fast enough for whole-dataset checks in tests. */
export const FAST_BACKENDS: BackendName[] = ['wasm-simd'];

/** Every backend a suite runs on: gpu.js's modes and the hand-written one. */
export const ALL_BACKENDS: BackendName[] = [...GPUJS_BACKENDS, ...FAST_BACKENDS];

/** `describe` once per startable backend, with its kernels ready in `get()`. */
export function describeEachBackend(title: string, body: (backend: BackendName, get: () => Kernels) => void): void {
  const probes = probeBackends(ALL_BACKENDS);
  for (const p of probes) {
    if (!p.ok) {
      const required = (process.env.DARKNET_TS_REQUIRE ?? '').split(',').includes(p.name);
      if (required) {
        describe(`[${p.name}] ${title}`, () => {
          test(`[${p.name}] backend starts`, () => {
            throw new Error(`backend ${p.name} is required here but cannot start: ${p.reason}`);
          });
        });
      } else {
        process.stderr.write(`note: backend ${p.name} not available here (${p.reason}); its tests did not run\n`);
      }
      continue;
    }
    describe(`[${p.name}] ${title}`, () => {
      let k: Kernels | undefined;
      beforeAll(async () => {
        k = await createKernels(p.name);
      });
      afterAll(() => k?.destroy());
      body(p.name, () => {
        if (!k) throw new Error(`${p.name} kernels not created`);
        return k;
      });
    });
  }
}
