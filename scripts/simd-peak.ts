/**
 * The wasm-SIMD arithmetic limit of this CPU, measured: a tiny WebAssembly module (built
 * here byte by byte, no toolchain) runs independent f32x4 chains acc = acc * a + b in a
 * loop, so nothing but multiply and add throughput bounds it. Plain wasm SIMD has no fused
 * multiply-add: a mul and an add are 8 FLOPs per f32x4.
 *
 * @example
 *   const { gflops } = await measureSimdPeak(); // e.g. 60 GFLOP/s on one thread
 */

import { WebAssemblyApi } from '../src/kernels/wasm/api';

/** unsigned LEB128 */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

const SIMD = 0xfd;
const F32X4_ADD = [SIMD, ...leb(228)];
const F32X4_MUL = [SIMD, ...leb(230)];
const V128_CONST = [SIMD, ...leb(12)];
const F32X4_EXTRACT_LANE = [SIMD, ...leb(31)];
const UNROLL = 4;

function f32x4Const(v: number): number[] {
  const b = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) b.writeFloatLE(v, i * 4);
  return [...V128_CONST, ...b];
}

/**
 * (func (export "peak") (param $n i32) (param $a f32) (param $b f32) (result f32)): n loops
 * of UNROLL rounds of acc = acc * a + b over `chains` f32x4 chains, as a gemm tile does
 * (a mul feeding an add), 8 FLOPs each. Called with a = 0.5, b = 0.5 (parameters, so the
 * compiler cannot fold them): every chain stays at 1, no overflow, no denormals.
 */
function peakModule(chains: number): Uint8Array {
  const a = 3; // locals after the parameters (n, a, b): the splats, then the chains
  const b = 4;
  const first = 5;
  const last = chains + 4;
  const F32X4_SPLAT = [SIMD, ...leb(19)];
  const code: number[] = [];
  code.push(0x20, 1, ...F32X4_SPLAT, 0x21, ...leb(a));
  code.push(0x20, 2, ...F32X4_SPLAT, 0x21, ...leb(b));
  for (let i = first; i <= last; i++) code.push(...f32x4Const(1), 0x21, ...leb(i));
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  for (let u = 0; u < UNROLL; u++) {
    for (let i = first; i <= last; i++) {
      code.push(0x20, ...leb(i), 0x20, a, ...F32X4_MUL, 0x20, b, ...F32X4_ADD, 0x21, ...leb(i));
    }
  }
  // n -= 1; br_if loop (n != 0)
  code.push(0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0);
  code.push(0x0b, 0x0b); // end loop, end block
  // the sum of every chain's lane 0, so none is dead code
  code.push(0x20, first, ...F32X4_EXTRACT_LANE, 0);
  for (let i = first + 1; i <= last; i++) code.push(0x20, ...leb(i), ...F32X4_EXTRACT_LANE, 0, 0x92);
  code.push(0x0b);
  const body = [1, ...leb(chains + 2), 0x7b, ...code];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7d, 0x7d, 1, 0x7d]),
    ...section(3, [1, 0]),
    ...section(7, [1, 4, ...Buffer.from('peak'), 0, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ];
  return new Uint8Array(bytes);
}

/** GFLOP/s of one chain count: the best of a few ~0.1 s runs after a warm-up. */
async function measureChains(chains: number): Promise<number> {
  const module = await WebAssemblyApi.compile(peakModule(chains));
  const { exports } = await WebAssemblyApi.instantiate(module, {});
  const peak = exports.peak as (n: number, a: number, b: number) => number;
  peak(10_000, 0.5, 0.5); // tier up
  let loops = 10_000;
  let best = 0;
  for (let run = 0; run < 6; run++) {
    const t0 = performance.now();
    peak(loops, 0.5, 0.5);
    const seconds = (performance.now() - t0) / 1000;
    best = Math.max(best, (loops * UNROLL * chains * 8) / seconds / 1e9);
    if (seconds < 0.05) loops *= 4;
  }
  return best;
}

export interface SimdPeak {
  /** the best GFLOP/s of one thread */
  gflops: number;
  /** the chain count that reached it */
  chains: number;
  tried: number[];
}

/** The best of 12, 16 and 20 chains (a chain waits on a mul and an add; more chains than registers spill). */
export async function measureSimdPeak(): Promise<SimdPeak> {
  const tried = [12, 16, 20];
  let best: SimdPeak = { gflops: 0, chains: 0, tried };
  for (const chains of tried) {
    const g = await measureChains(chains);
    if (g > best.gflops) best = { gflops: g, chains, tried };
  }
  return best;
}
