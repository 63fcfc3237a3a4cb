/**
 * Canonical Huffman coding: round trips on random, skewed, single-symbol and empty streams,
 * optimal lengths, the length limit, and corrupt streams refused with StreamError.
 */
import { StreamError } from '../../src/compress/bits';
import { canonicalCodes, decodeHuffman, encodeHuffman, huffmanLengths, MAX_CODE_LENGTH } from '../../src/compress/huffman';
import { mulberry32 } from '../../src/engine/random';

function roundTrip(symbols: number[]): Uint8Array {
  const bytes = encodeHuffman(symbols);
  expect(Array.from(decodeHuffman(bytes, symbols.length))).toEqual(symbols);
  return bytes;
}

/** Shannon entropy of a stream in bits per symbol. */
function entropy(symbols: number[]): number {
  const f = new Map<number, number>();
  for (const s of symbols) f.set(s, (f.get(s) ?? 0) + 1);
  let h = 0;
  for (const c of f.values()) h -= (c / symbols.length) * Math.log2(c / symbols.length);
  return h;
}

describe('Huffman coding', () => {
  test('round-trips uniform random streams over small and large alphabets', () => {
    const r = mulberry32(5);
    for (const alphabet of [2, 3, 17, 256, 65536]) {
      const symbols = Array.from({ length: 5000 }, () => Math.floor(r() * alphabet));
      roundTrip(symbols);
    }
  });

  test('round-trips a skewed stream in within a bit of its entropy per symbol', () => {
    const r = mulberry32(7);
    // geometric: 0 half the time, 1 a quarter, ...
    const symbols = Array.from({ length: 20000 }, () => Math.min(40, Math.floor(-Math.log2(1 - r()))));
    const bytes = roundTrip(symbols);
    const bitsPerSymbol = (8 * bytes.length) / symbols.length;
    expect(bitsPerSymbol).toBeGreaterThanOrEqual(entropy(symbols));
    expect(bitsPerSymbol).toBeLessThan(entropy(symbols) + 0.1); // dyadic probabilities: nearly exact
  });

  test('a single-symbol stream costs one bit a symbol; an empty one only its header', () => {
    const one = roundTrip(new Array(800).fill(9));
    expect(one.length).toBeLessThan(800 / 8 + 8);
    expect(roundTrip([0])).toBeDefined();
    const empty = roundTrip([]);
    expect(empty.length).toBeLessThanOrEqual(3);
  });

  test('lengths are optimal Huffman lengths, canonical codes are prefix-free and ordered', () => {
    expect(Array.from(huffmanLengths([5, 1, 1, 0]))).toEqual([1, 2, 2, 0]);
    expect(Array.from(huffmanLengths([1, 1, 1, 1]))).toEqual([2, 2, 2, 2]);
    const lengths = huffmanLengths([10, 6, 2, 1, 1, 0, 4]);
    const codes = canonicalCodes(lengths);
    const words = Array.from(lengths).flatMap((l, s) => (l ? [codes[s].toString(2).padStart(l, '0')] : []));
    for (const a of words) for (const b of words) if (a !== b) expect(b.startsWith(a)).toBe(false);
    // Kraft equality for a complete code
    expect(Array.from(lengths).reduce((s, l) => s + (l ? 2 ** -l : 0), 0)).toBe(1);
  });

  test('Fibonacci frequencies deeper than the limit are clamped to a valid code', () => {
    const fib = [1, 1];
    while (fib.length < 40) fib.push(fib[fib.length - 1] + fib[fib.length - 2]);
    const lengths = huffmanLengths(fib);
    expect(Math.max(...lengths)).toBe(MAX_CODE_LENGTH);
    expect(Array.from(lengths).reduce((s, l) => s + 2 ** -l, 0)).toBeLessThanOrEqual(1);
    // and the stream still round-trips
    const symbols = fib.flatMap((f, s) => new Array(Math.min(f, 50)).fill(s));
    roundTrip(symbols);
  });

  test('a truncated or altered stream is a StreamError, never a wrong answer or another error', () => {
    const r = mulberry32(11);
    const symbols = Array.from({ length: 300 }, () => Math.floor(r() * 20));
    const bytes = encodeHuffman(symbols);
    expect(() => decodeHuffman(bytes.subarray(0, bytes.length - 1), symbols.length)).toThrow(StreamError);
    expect(() => decodeHuffman(bytes, symbols.length + 50)).toThrow(StreamError);
    // Over-full code lengths: alphabet 3, all lengths 1 (literal 11 00001 each)
    const bad = Uint8Array.of(0b00000000, 0b00000001, 0b11110000, 0b11111000, 0b01111100, 0b00100000);
    expect(() => decodeHuffman(bad, 4)).toThrow(StreamError);
    for (let i = 0; i < 200; i++) {
      const flipped = Uint8Array.from(bytes);
      flipped[Math.floor(r() * flipped.length)] ^= 1 << Math.floor(r() * 8);
      try {
        decodeHuffman(flipped, symbols.length);
      } catch (e) {
        expect(e).toBeInstanceOf(StreamError);
      }
    }
  });
});
