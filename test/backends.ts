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

/**
 * Another configuration of a backend for a suite to run on as well, e.g. wasm-simd with one
 * thread besides the default (one per core). It runs only where its backend starts.
 */
export interface BackendVariant {
  backend: BackendName;
  /** what sets it apart, added to the describe title: "[wasm-simd] kernels ..., 1 thread" */
  label: string;
  create: () => Promise<Kernels>;
}

/**
 * `describe` once per startable backend, with its kernels ready in `get()`, and once more
 * per variant of a backend that starts.
 */
export function describeEachBackend(
  title: string,
  body: (backend: BackendName, get: () => Kernels) => void,
  variants: BackendVariant[] = [],
): void {
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
    describeOn(p.name, `[${p.name}] ${title}`, () => createKernels(p.name), body);
    for (const v of variants.filter((v) => v.backend === p.name)) {
      describeOn(p.name, `[${p.name}] ${title}, ${v.label}`, v.create, body);
    }
  }
}

function describeOn(
  backend: BackendName,
  title: string,
  create: () => Promise<Kernels>,
  body: (backend: BackendName, get: () => Kernels) => void,
): void {
  describe(title, () => {
    let k: Kernels | undefined;
    beforeAll(async () => {
      k = await create();
    });
    afterAll(async () => {
      k?.dispose();
      // gpu.js releases kernels and GL contexts on the next turn of the event loop: wait for it
      // here, not during jest's short worker shutdown.
      await (k as { released?: () => Promise<void> } | undefined)?.released?.();
    });
    body(backend, () => {
      if (!k) throw new Error(`${title}: kernels not created`);
      return k;
    });
  });
}
