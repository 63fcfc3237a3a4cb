import type { WasmMemory } from './api';

/**
 * The wasm-simd allocator: aligned byte blocks of one WebAssembly.Memory, which can grow
 * but never shrink. A freed block goes on a free list kept sorted by address and merged
 * with its free neighbours; a block that ends at the top of the heap lowers the top
 * instead. `alloc` takes the smallest free block that fits (best fit, splitting off the
 * rest) and bumps the top only when none does. So a process that builds and drops many
 * networks of the same shapes reuses the same bytes, and the memory stops growing after
 * the first one. The bookkeeping lives here on the host, none of it in the memory.
 *
 * Every block comes back zero-filled: bytes never handed out are still the zeros wasm
 * memory starts with, so only the part below `dirty` (handed out before) is cleared.
 *
 * @example
 *   const heap = new Heap(memory, base);
 *   const p = heap.alloc(4000); // byte offset, 64-byte aligned, 4000 zero bytes
 *   heap.free(p);
 *   heap.alloc(4000);           // p again
 */

/** Block alignment in bytes (a cache line; also keeps f32x4 loads aligned). */
export const ALIGN = 64;
const PAGE = 65536;

export interface HeapStats {
  /** the WebAssembly.Memory's size in bytes (it only grows) */
  memoryBytes: number;
  /** first byte past the highest block in use */
  top: number;
  /** bytes in blocks handed out and not freed, alignment included */
  liveBytes: number;
  /** blocks handed out and not freed */
  liveBlocks: number;
  /** free blocks below the top (fragments waiting for reuse) */
  freeBlocks: number;
  freeBytes: number;
}

interface Block {
  ptr: number;
  bytes: number;
}

export class Heap {
  /** free blocks below `top`, sorted by ptr; no two adjacent, none ending at `top` */
  private readonly freeList: Block[] = [];
  /** live blocks: ptr -> bytes (aligned) */
  private readonly live = new Map<number, number>();
  private top: number;
  /** first byte never handed out: from here up the memory is still zero */
  private dirty: number;
  private liveBytes = 0;

  /** `base`: the first byte the heap may use (past the module's data and the thread control block). */
  constructor(private readonly memory: WasmMemory, base: number) {
    this.top = align(base);
    this.dirty = this.top;
  }

  /** `bytes` zero bytes (a block of at least ALIGN), ALIGN-aligned; grows the memory as needed. */
  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    const ptr = this.takeFree(size) ?? this.bump(size);
    this.live.set(ptr, size);
    this.liveBytes += size;
    const dirtyEnd = Math.min(ptr + size, this.dirty);
    if (dirtyEnd > ptr) new Uint8Array(this.memory.buffer, ptr, dirtyEnd - ptr).fill(0);
    this.dirty = Math.max(this.dirty, ptr + size);
    return ptr;
  }

  /** Gives back the block at `ptr` (from `alloc`; a second free of it throws). */
  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`wasm-simd heap: no live block at ${ptr}`);
    this.live.delete(ptr);
    this.liveBytes -= size;
    const list = this.freeList;
    // the first free block after ptr, by binary search
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    const block = { ptr, bytes: size };
    const prev = lo > 0 ? list[lo - 1] : null;
    const next = lo < list.length ? list[lo] : null;
    let at = lo;
    if (prev && prev.ptr + prev.bytes === ptr) {
      block.ptr = prev.ptr;
      block.bytes += prev.bytes;
      at = lo - 1;
      list.splice(at, 1);
    }
    if (next && ptr + size === next.ptr) {
      block.bytes += next.bytes;
      list.splice(at, 1);
    }
    if (block.ptr + block.bytes === this.top) this.top = block.ptr;
    else list.splice(at, 0, block);
  }

  stats(): HeapStats {
    let freeBytes = 0;
    for (const b of this.freeList) freeBytes += b.bytes;
    return {
      memoryBytes: this.memory.buffer.byteLength, top: this.top, liveBytes: this.liveBytes,
      liveBlocks: this.live.size, freeBlocks: this.freeList.length, freeBytes,
    };
  }

  /** The smallest free block of at least `size` bytes, split; null when none fits. */
  private takeFree(size: number): number | null {
    const list = this.freeList;
    let best = -1;
    for (let i = 0; i < list.length; i++) {
      if (list[i].bytes >= size && (best < 0 || list[i].bytes < list[best].bytes)) {
        best = i;
        if (list[i].bytes === size) break;
      }
    }
    if (best < 0) return null;
    const block = list[best];
    const ptr = block.ptr;
    if (block.bytes === size) {
      list.splice(best, 1);
    } else {
      block.ptr += size;
      block.bytes -= size;
    }
    return ptr;
  }

  /** `size` bytes at the top, growing the memory past it when needed. */
  private bump(size: number): number {
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch {
        throw new Error(
          `wasm-simd: out of memory allocating ${size} bytes (${have / 2 ** 20} MiB in use, ` +
          `${(this.liveBytes / 2 ** 20).toFixed(1)} MiB of it live; free what you no longer need, or raise maxMemoryMiB)`,
        );
      }
    }
    this.top = end;
    return ptr;
  }
}

export function align(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}
