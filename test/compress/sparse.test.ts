/**
 * Relative positions with a fixed index width: round trips, filler zeros where a gap
 * overflows the width (the paper's Figure 2), and entries past the end refused.
 */
import { StreamError } from '../../src/compress/bits';
import { fillerCount, fromRelative, toRelative } from '../../src/compress/sparse';
import { mulberry32 } from '../../src/engine/random';

describe('relative index encoding', () => {
  test("the paper's Figure 2: a 3-bit index bridges a gap of 8 or more zeros with a filler", () => {
    // non-zeros at positions 1, 4 and 15: gaps 1, 2 and 10 (> 7, the most 3 bits hold)
    const indices = new Uint16Array(16);
    indices[1] = 3;
    indices[4] = 1;
    indices[15] = 2;
    const e = toRelative(indices, 3);
    expect(Array.from(e.skips)).toEqual([1, 2, 7, 2]);
    expect(Array.from(e.codes)).toEqual([3, 1, 0, 2]);
    expect(fillerCount(e)).toBe(1);
    expect(Array.from(fromRelative(e, 16))).toEqual(Array.from(indices));
  });

  test('gaps of exactly the width, one more, many times more, and trailing zeros', () => {
    for (const gap of [7, 8, 9, 15, 16, 17, 100]) {
      const indices = new Uint16Array(gap + 1 + 20);
      indices[gap] = 5;
      const e = toRelative(indices, 3);
      expect(e.skips.every((s) => s <= 7)).toBe(true);
      expect(fillerCount(e)).toBe(Math.floor(gap / 8));
      expect(Array.from(fromRelative(e, indices.length))).toEqual(Array.from(indices));
    }
    expect(toRelative(new Uint16Array(50), 4).skips.length).toBe(0); // all zeros: no entries
  });

  test('round-trips random sparse layers at every width', () => {
    const r = mulberry32(3);
    for (const bits of [1, 2, 4, 5, 8, 16]) {
      for (const density of [0.01, 0.1, 0.7]) {
        const indices = Uint16Array.from({ length: 3000 }, () => (r() < density ? 1 + Math.floor(r() * 30) : 0));
        const e = toRelative(indices, bits);
        expect(Math.max(0, ...e.skips)).toBeLessThan(2 ** bits);
        expect(Array.from(fromRelative(e, indices.length))).toEqual(Array.from(indices));
      }
    }
  });

  test('an entry past the layer end is a StreamError', () => {
    expect(() => fromRelative({ skips: Uint16Array.of(3, 5), codes: Uint16Array.of(1, 1) }, 8)).toThrow(StreamError);
    expect(() => fromRelative({ skips: Uint16Array.of(3), codes: Uint16Array.of(1, 1) }, 8)).toThrow(StreamError);
  });
});
