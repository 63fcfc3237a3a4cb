import { StreamError } from './bits';

/**
 * Deep Compression's sparse positions (Han et al. 2016 §2, Figure 2): a layer's non-zero
 * weights in layout order, each stored as the number of zeros skipped since the previous
 * entry, in a fixed width of `indexBits` bits, beside its codebook index. A run of zeros
 * longer than the width holds is bridged by filler entries: a filler skips the most the
 * width allows (2^indexBits - 1) and stores codebook index 0, an explicit zero. Zeros after
 * the last non-zero need no entry: the layer's size is known.
 *
 * @example
 *   toRelative(Uint16Array.of(0, 0, 0, 0, 0, 2, 1), 2);
 *   // 2-bit skips hold 0..3: { skips: [3, 1, 0], codes: [0, 2, 1] } (one filler, at position 3)
 */
export interface RelativeEntries {
  /** zeros before each entry since the previous one, each < 2^indexBits */
  skips: Uint16Array;
  /** each entry's codebook index; 0 only for fillers */
  codes: Uint16Array;
}

/** Largest relative index width: skips are Uint16. */
export const MAX_INDEX_BITS = 16;

/** The entries of a layer's codebook indices (0 = pruned), fillers included. */
export function toRelative(indices: Uint16Array, indexBits: number): RelativeEntries {
  if (!Number.isInteger(indexBits) || indexBits < 1 || indexBits > MAX_INDEX_BITS) {
    throw new RangeError(`relative index width ${indexBits} is not in 1..${MAX_INDEX_BITS}`);
  }
  const maxSkip = 2 ** indexBits - 1;
  const skips: number[] = [];
  const codes: number[] = [];
  let gap = 0;
  for (let i = 0; i < indices.length; i++) {
    if (indices[i] === 0) {
      gap++;
      continue;
    }
    while (gap > maxSkip) {
      skips.push(maxSkip);
      codes.push(0);
      gap -= maxSkip + 1; // the filler itself takes one position
    }
    skips.push(gap);
    codes.push(indices[i]);
    gap = 0;
  }
  return { skips: Uint16Array.from(skips), codes: Uint16Array.from(codes) };
}

/** Entries back to `size` codebook indices. Throws StreamError if an entry lies past the end. */
export function fromRelative(e: RelativeEntries, size: number): Uint16Array {
  if (e.skips.length !== e.codes.length) throw new StreamError(`${e.skips.length} relative positions for ${e.codes.length} codebook indices`);
  const indices = new Uint16Array(size);
  let position = 0;
  for (let i = 0; i < e.skips.length; i++) {
    position += e.skips[i];
    if (position >= size) throw new StreamError(`entry ${i} of ${e.skips.length} lies at position ${position}, past the layer's ${size} weights`);
    indices[position++] = e.codes[i];
  }
  return indices;
}

/** Filler entries among a layer's entries (codebook index 0). */
export function fillerCount(e: RelativeEntries): number {
  let n = 0;
  for (const c of e.codes) if (c === 0) n++;
  return n;
}
