/**
 * The few WebAssembly JS API types the wasm-simd host uses. NOTE: this project compiles
 * with lib ES2022 and no DOM, which declares no `WebAssembly` namespace; Node has it at
 * runtime, typed here rather than pulling in the DOM lib.
 */

/** A compiled module (opaque; it can be posted to worker threads). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  /** grows by `pages` of 64 KiB and returns the old size in pages; throws past the maximum */
  grow(pages: number): number;
}

export type WasmExports = Record<string, unknown>;

interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: Record<string, Record<string, unknown>>): Promise<{ exports: WasmExports }>;
}

export const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
