import { GPU } from 'gpu.js';
import { DarknetError } from '../errors';
import { GpuJsKernels, type GpuJsMode } from './gpujs';
import { ReferenceKernels } from './reference';
import { locateWasm, WasmSimdKernels } from './wasm-simd';
import type { BackendName, Kernels } from './types';

/**
 * The one place that picks a backend. Layers and the CLI ask `createKernels` for one by
 * name (or 'auto') and never look at gpu.js themselves.
 *
 * @example
 *   const k = await createKernels();            // DARKNET_TS_BACKEND, else 'auto'
 *   const gl = await createKernels('headlessgl'); // throws DarknetError if it cannot start
 *   console.log(k.description);                 // e.g. "webasm (gpu.js WebAssemblyKernel)"
 */

export type BackendChoice = BackendName | 'auto';

export interface BackendProbe {
  name: BackendName;
  ok: boolean;
  /** why it cannot start and what to do, or what it is when it can */
  reason: string;
}

/** Every name createKernels accepts. */
export const BACKEND_CHOICES = ['auto', 'wasm-simd', 'webgpu', 'headlessgl', 'webasm', 'cpu', 'reference'] as const satisfies
  readonly (BackendChoice | 'reference')[];

/**
 * 'auto' takes the first of these that starts. wasm-simd comes before headlessgl on
 * purpose: headless GL on a machine without a GPU is Mesa's software renderer (about 1
 * GFLOP/s here, measured), while wasm-simd does 25-40 GFLOP/s per core; the `gl`
 * package masks the renderer's name ("ANGLE"), so we cannot tell a real GPU apart.
 */
export const AUTO_ORDER: readonly BackendName[] = ['webgpu', 'wasm-simd', 'headlessgl', 'webasm'];

const GL_BUILD_HINT =
  "the optional 'gl' package did not build (install Debian's libxi-dev libx11-dev libxext-dev " +
  'libgl1-mesa-dev pkg-config python3 g++ make, then npm rebuild gl)';

const probeCache = new Map<BackendName, BackendProbe>();

/**
 * Which of `names` can start here, synchronously, without creating a backend. Results
 * are cached per process (a GL context or a native module does not appear mid-run).
 */
export function probeBackends(names: BackendName[]): BackendProbe[] {
  return names.map((name) => {
    let p = probeCache.get(name);
    if (!p) {
      p = { name, ...probeOne(name) };
      probeCache.set(name, p);
    }
    return p;
  });
}

function probeOne(name: BackendName): { ok: boolean; reason: string } {
  switch (name) {
    case 'reference':
      return { ok: true, reason: 'plain TypeScript loops' };
    case 'cpu':
      return { ok: true, reason: "gpu.js's plain JavaScript backend" };
    case 'webasm':
      return GPU.isWebAssemblySupported
        ? { ok: true, reason: "gpu.js's WebAssembly backend" }
        : { ok: false, reason: 'this JavaScript runtime has no WebAssembly' };
    case 'headlessgl':
      return probeHeadlessGl();
    case 'wasm-simd':
      return probeWasmSimd();
    case 'webgpu':
      return probeWebGpu();
    default:
      return { ok: false, reason: `unknown backend '${String(name)}'` };
  }
}

function probeHeadlessGl(): { ok: boolean; reason: string } {
  let createContext: (w: number, h: number) => unknown;
  try {
    createContext = require('gl');
  } catch (e) {
    return { ok: false, reason: `${GL_BUILD_HINT}: ${firstLine(e)}` };
  }
  type Context = { getExtension(name: string): { destroy(): void } | null };
  let context: Context | null;
  try {
    context = createContext(1, 1) as Context | null;
  } catch (e) {
    return { ok: false, reason: `gl(1, 1) threw: ${firstLine(e)}` };
  }
  if (!context) {
    return process.env.DISPLAY
      ? { ok: false, reason: `gl(1, 1) returned no context on display ${process.env.DISPLAY}: run under \`xvfb-run -a\`` }
      : { ok: false, reason: 'no X display: run under `xvfb-run -a`' };
  }
  context.getExtension('STACKGL_destroy_context')?.destroy();
  if (!GPU.isHeadlessGLSupported) return { ok: false, reason: "gl works but gpu.js's headlessgl backend did not start" };
  return { ok: true, reason: 'headless GL (gpu.js HeadlessGLKernel)' };
}

function probeWasmSimd(): { ok: boolean; reason: string } {
  if (typeof SharedArrayBuffer === 'undefined') return { ok: false, reason: 'this runtime has no SharedArrayBuffer (needed for its shared memory)' };
  try {
    locateWasm();
  } catch (e) {
    return { ok: false, reason: firstLine(e) };
  }
  return { ok: true, reason: 'hand-written WebAssembly SIMD kernels with worker threads' };
}

function probeWebGpu(): { ok: boolean; reason: string } {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (!nav?.gpu) {
    try {
      require('webgpu');
    } catch (e) {
      return {
        ok: false,
        reason: `nothing provides navigator.gpu and the 'webgpu' package does not load here (${firstLine(e)}); ` +
          'it needs a system whose libstdc++ its binary supports (newer than Debian 12)',
      };
    }
  }
  // NOTE: gpu.js's webgpu kernels return Promises on every call (readback is async), and
  // the Kernels seam is synchronous, so even a working WebGPU cannot serve it yet.
  return {
    ok: false,
    reason: "WebGPU is present, but gpu.js's webgpu kernels are asynchronous and darknet-ts's kernel seam is synchronous",
  };
}

/**
 * A kernel backend by name. `choice` defaults to $DARKNET_TS_BACKEND, else 'auto' (the
 * first of AUTO_ORDER that starts). 'reference' is the plain TypeScript
 * implementation (float32). Throws DarknetError, with the reason and the fix, when the
 * named backend cannot start, and for an unknown name.
 */
export async function createKernels(choice?: BackendChoice | 'reference'): Promise<Kernels> {
  const name = (choice ?? process.env.DARKNET_TS_BACKEND ?? 'auto').trim() as BackendChoice;
  if (!BACKEND_CHOICES.includes(name)) {
    throw new DarknetError(`unknown backend '${name}': choose one of ${BACKEND_CHOICES.join(', ')}`);
  }
  if (name === 'reference') return new ReferenceKernels();
  if (name === 'auto') {
    const tried: string[] = [];
    for (const p of probeBackends([...AUTO_ORDER])) {
      if (!p.ok) {
        tried.push(`${p.name}: ${p.reason}`);
        continue;
      }
      try {
        return await start(p.name);
      } catch (e) {
        tried.push(`${p.name}: ${firstLine(e)}`);
      }
    }
    throw new DarknetError(`no backend starts here (${tried.join('; ')}); try --backend cpu or reference`);
  }
  const [p] = probeBackends([name]);
  if (!p.ok) throw new DarknetError(`backend '${name}' cannot start here: ${p.reason}`);
  return start(name);
}

/** A backend that really runs as `name` (gpu.js falls back silently; we do not). */
async function start(name: BackendName): Promise<Kernels> {
  if (name === 'wasm-simd') {
    try {
      return await WasmSimdKernels.create();
    } catch (e) {
      throw new DarknetError(`backend 'wasm-simd' failed to start: ${firstLine(e)}`);
    }
  }
  let k: GpuJsKernels;
  try {
    k = new GpuJsKernels(name as GpuJsMode);
  } catch (e) {
    throw new DarknetError(`backend '${name}' failed to start: ${firstLine(e)}`);
  }
  if (k.backend !== name) {
    const ran = k.description;
    k.dispose();
    throw new DarknetError(`backend '${name}' was asked for, but gpu.js ran ${ran}`);
  }
  return k;
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0];
}
