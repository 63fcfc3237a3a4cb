/**
 * The wasm-simd allocator on its own, over a small plain WebAssembly.Memory: alignment,
 * zero-filled blocks (also reused ones), best fit, coalescing back to the top, and a seeded
 * random run of allocs and frees that checks no two live blocks overlap.
 */
import { mulberry32 } from '../../../src/engine/random';
import { WebAssemblyApi } from '../../../src/kernels/wasm/api';
import { ALIGN, Heap } from '../../../src/kernels/wasm/heap';

const BASE = 1000;

function heap(maximumPages = 1024) {
  const memory = new WebAssemblyApi.Memory({ initial: 1, maximum: maximumPages });
  return { memory, heap: new Heap(memory, BASE), bytes: (ptr: number, n: number) => new Uint8Array(memory.buffer, ptr, n) };
}

describe('[wasm-simd] heap', () => {
  test('blocks are aligned, at least ALIGN long, and zero, also when reused', () => {
    const { heap: h, bytes } = heap();
    const a = h.alloc(10);
    const b = h.alloc(0);
    expect(a % ALIGN).toBe(0);
    expect(a).toBeGreaterThanOrEqual(BASE);
    expect(b - a).toBe(ALIGN);
    bytes(a, ALIGN).fill(7);
    h.free(a);
    expect(h.alloc(10)).toBe(a);
    expect(bytes(a, ALIGN).every((v) => v === 0)).toBe(true);
    expect(() => h.free(a + 1)).toThrow('wasm-simd heap: no live block');
  });

  test('best fit: the smallest free block that fits, split', () => {
    const { heap: h } = heap();
    const big = h.alloc(5000);
    h.alloc(64); // keeps big and small apart
    const small = h.alloc(1000);
    h.alloc(64);
    h.free(big);
    h.free(small);
    expect(h.alloc(900)).toBe(small);
    expect(h.alloc(4000)).toBe(big);
    // what is left of each: 1024 - 960 and 5056 - 4032 bytes (sizes round up to ALIGN)
    expect(h.stats()).toMatchObject({ freeBlocks: 2, freeBytes: 64 + 1024 });
  });

  test('freed neighbours coalesce, and a free block at the top lowers it', () => {
    const { heap: h } = heap();
    const top = h.stats().top;
    const [a, b, c] = [h.alloc(100), h.alloc(200), h.alloc(300)];
    const d = h.alloc(400);
    h.free(a);
    h.free(c);
    expect(h.stats()).toMatchObject({ freeBlocks: 2, liveBlocks: 2 });
    h.free(b);
    expect(h.stats()).toMatchObject({ freeBlocks: 1, freeBytes: d - a });
    expect(h.alloc(d - a)).toBe(a); // the merged block fits exactly
    h.free(a);
    h.free(d);
    expect(h.stats()).toMatchObject({ top, freeBlocks: 0, freeBytes: 0, liveBytes: 0, liveBlocks: 0 });
  });

  test('2000 random allocs and frees: live blocks never overlap, new ones are zero, all of it returns', () => {
    const { heap: h, bytes, memory } = heap();
    const random = mulberry32(3);
    const top = h.stats().top;
    const live: { ptr: number; n: number; mark: number }[] = [];
    let peak = 0;
    for (let step = 0; step < 2000; step++) {
      if (live.length < 40 && (live.length === 0 || random() < 0.55)) {
        const n = Math.floor(Math.exp(random() * Math.log(200000)));
        const ptr = h.alloc(n);
        const block = bytes(ptr, n);
        if (!block.every((v) => v === 0)) throw new Error(`step ${step}: a new block of ${n} bytes is not zero`);
        const mark = (step % 250) + 1;
        block.fill(mark);
        live.push({ ptr, n, mark });
      } else {
        const [gone] = live.splice(Math.floor(random() * live.length), 1);
        if (!bytes(gone.ptr, gone.n).every((v) => v === gone.mark)) throw new Error(`step ${step}: a live block was overwritten`);
        h.free(gone.ptr);
      }
      peak = Math.max(peak, h.stats().liveBytes);
    }
    for (const b of live) h.free(b.ptr);
    expect(h.stats()).toMatchObject({ top, freeBlocks: 0, liveBytes: 0 });
    // fragmentation: the memory stayed within a small multiple of the most ever live
    expect(memory.buffer.byteLength).toBeLessThan(3 * peak + 2 ** 20);
  });

  test('past the maximum, alloc says how much is live and what to do', () => {
    const { heap: h } = heap(2);
    h.alloc(1000);
    expect(() => h.alloc(200000)).toThrow(/out of memory allocating 200000 bytes .* free what you no longer need, or raise maxMemoryMiB/);
  });
});
