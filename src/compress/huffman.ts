import { BitReader, BitWriter, StreamError } from './bits';

/**
 * Canonical Huffman coding of symbol streams (Deep Compression's third stage, applied to
 * the codebook indices and to the relative positions of a layer's non-zero weights).
 *
 * A coded stream is self-contained bytes:
 *   alphabet  17 bits      n = largest symbol + 1 (0 for an empty stream)
 *   lengths   n entries    each symbol's code length (0 = unused), coded against the
 *                          previous entry: `0` same, `10`+b previous +1 (b=0) or -1 (b=1),
 *                          `11`+5 bits the length itself
 *   symbols   the codes, most significant bit first, padded with 0 bits to a byte
 * Codes are canonical (RFC 1951 §3.2.2): shorter codes first, equal lengths by symbol, so
 * the lengths alone define the code. The symbol count is stored by the caller.
 */

/** Longest code; limits the decoder's work per symbol and keeps codes in one int32. */
export const MAX_CODE_LENGTH = 24;
/** Largest alphabet: symbols are 0 .. 65535. */
export const MAX_ALPHABET = 65536;
const ALPHABET_BITS = 17;
const LITERAL_BITS = 5;

/**
 * Code lengths for symbol frequencies: optimal Huffman lengths, limited to `maxLength`.
 * A single used symbol gets length 1 (one bit per symbol); unused symbols get 0.
 * Deterministic: ties are broken by symbol.
 * @example huffmanLengths([5, 1, 1, 0]); // Uint8Array [1, 2, 2, 0]
 */
export function huffmanLengths(freqs: ArrayLike<number>, maxLength = MAX_CODE_LENGTH): Uint8Array {
  const lengths = new Uint8Array(freqs.length);
  const used: number[] = [];
  for (let s = 0; s < freqs.length; s++) if (freqs[s] > 0) used.push(s);
  if (used.length === 0) return lengths;
  if (used.length === 1) {
    lengths[used[0]] = 1;
    return lengths;
  }
  // Two-queue construction: leaves sorted by (frequency, symbol); internal nodes are made
  // in non-decreasing weight order, so the two smallest are always at the queue fronts.
  used.sort((a, b) => freqs[a] - freqs[b] || a - b);
  const n = used.length;
  const weight = new Float64Array(2 * n - 1);
  const parent = new Int32Array(2 * n - 1);
  for (let i = 0; i < n; i++) weight[i] = freqs[used[i]];
  let leaf = 0;
  let inner = n;
  let made = n;
  const takeSmallest = (): number => {
    if (leaf < n && (inner >= made || weight[leaf] <= weight[inner])) return leaf++;
    return inner++;
  };
  while (made < 2 * n - 1) {
    const a = takeSmallest();
    const b = takeSmallest();
    weight[made] = weight[a] + weight[b];
    parent[a] = made;
    parent[b] = made;
    made++;
  }
  // Depths from the root (the last node) down: a node's parent always has a larger index.
  const depth = new Int32Array(2 * n - 1);
  for (let i = 2 * n - 3; i >= 0; i--) depth[i] = depth[parent[i]] + 1;
  let longest = 0;
  for (let i = 0; i < n; i++) longest = Math.max(longest, depth[i]);
  if (longest <= maxLength) {
    for (let i = 0; i < n; i++) lengths[used[i]] = depth[i];
    return lengths;
  }
  // Too long (only for extremely skewed counts): clamp, then restore the Kraft sum by
  // lengthening the shortest codes that can take it (miniz's tdefl_huffman_enforce_max_code_size).
  const count = new Int32Array(maxLength + 1);
  for (let i = 0; i < n; i++) count[Math.min(depth[i], maxLength)]++;
  let kraft = 0;
  for (let l = 1; l <= maxLength; l++) kraft += count[l] * 2 ** (maxLength - l);
  while (kraft > 2 ** maxLength) {
    count[maxLength]--;
    for (let l = maxLength - 1; l > 0; l--) {
      if (count[l] > 0) {
        count[l]--;
        count[l + 1] += 2;
        break;
      }
    }
    kraft--;
  }
  // Shortest codes to the most frequent symbols (used[] is ascending by frequency).
  let i = n - 1;
  for (let l = 1; l <= maxLength; l++) for (let c = 0; c < count[l]; c++) lengths[used[i--]] = l;
  return lengths;
}

/** Canonical codes from lengths: code[s] is the `lengths[s]`-bit code of symbol s. */
export function canonicalCodes(lengths: ArrayLike<number>): Uint32Array {
  const codes = new Uint32Array(lengths.length);
  const order = sortedByLength(lengths);
  let code = 0;
  let previous = 0;
  for (const s of order) {
    code <<= lengths[s] - previous;
    previous = lengths[s];
    codes[s] = code++;
  }
  return codes;
}

/** Used symbols ordered by (length, symbol): the canonical order. */
function sortedByLength(lengths: ArrayLike<number>): number[] {
  const order: number[] = [];
  for (let s = 0; s < lengths.length; s++) if (lengths[s] > 0) order.push(s);
  return order.sort((a, b) => lengths[a] - lengths[b] || a - b);
}

/**
 * Huffman-codes a stream of symbols (each 0 .. 65535) into self-contained bytes.
 * @example decodeHuffman(encodeHuffman([3, 3, 1]), 3); // Uint16Array [3, 3, 1]
 */
export function encodeHuffman(symbols: ArrayLike<number>): Uint8Array {
  let alphabet = 0;
  for (let i = 0; i < symbols.length; i++) {
    const s = symbols[i];
    if (!Number.isInteger(s) || s < 0 || s >= MAX_ALPHABET) throw new RangeError(`Huffman symbol ${s} is not in 0..${MAX_ALPHABET - 1}`);
    if (s >= alphabet) alphabet = s + 1;
  }
  const freqs = new Float64Array(alphabet);
  for (let i = 0; i < symbols.length; i++) freqs[symbols[i]]++;
  const lengths = huffmanLengths(freqs);
  const codes = canonicalCodes(lengths);
  const w = new BitWriter();
  w.write(alphabet, ALPHABET_BITS);
  writeLengths(w, lengths);
  for (let i = 0; i < symbols.length; i++) w.write(codes[symbols[i]], lengths[symbols[i]]);
  return w.finish();
}

function writeLengths(w: BitWriter, lengths: Uint8Array): void {
  let previous = 0;
  for (const l of lengths) {
    if (l === previous) w.write(0, 1);
    else if (l === previous + 1) w.write(0b100, 3);
    else if (l === previous - 1) w.write(0b101, 3);
    else w.write((0b11 << LITERAL_BITS) | l, 2 + LITERAL_BITS);
    previous = l;
  }
}

function readLengths(r: BitReader, alphabet: number): Uint8Array {
  const lengths = new Uint8Array(alphabet);
  let previous = 0;
  for (let s = 0; s < alphabet; s++) {
    let l = previous;
    if (r.readBit() === 1) {
      if (r.readBit() === 0) l = r.readBit() === 0 ? previous + 1 : previous - 1;
      else l = r.read(LITERAL_BITS);
    }
    if (l < 0 || l > MAX_CODE_LENGTH) throw new StreamError(`a Huffman code length of ${l} bits (at most ${MAX_CODE_LENGTH})`);
    lengths[s] = l;
    previous = l;
  }
  return lengths;
}

/**
 * Decodes `count` symbols from bytes made by encodeHuffman. Throws StreamError when the
 * bytes cannot be such a stream (too short, an over-full code, a code no symbol has).
 */
export function decodeHuffman(bytes: Uint8Array, count: number): Uint16Array {
  const r = new BitReader(bytes);
  const alphabet = r.read(ALPHABET_BITS);
  if (alphabet > MAX_ALPHABET) throw new StreamError(`a Huffman alphabet of ${alphabet} symbols (at most ${MAX_ALPHABET})`);
  const lengths = readLengths(r, alphabet);
  const out = new Uint16Array(count);
  if (count === 0) return out;
  // Canonical decoding tables: per length, how many codes, the first code and where its
  // symbols start in the canonical order.
  const order = sortedByLength(lengths);
  if (order.length === 0) throw new StreamError(`a Huffman stream of ${count} symbols has no codes`);
  const perLength = new Int32Array(MAX_CODE_LENGTH + 1);
  for (const s of order) perLength[lengths[s]]++;
  let kraft = 0;
  for (let l = 1; l <= MAX_CODE_LENGTH; l++) kraft += perLength[l] * 2 ** (MAX_CODE_LENGTH - l);
  if (kraft > 2 ** MAX_CODE_LENGTH) throw new StreamError('Huffman code lengths that no prefix code has (over-full)');
  const firstCode = new Int32Array(MAX_CODE_LENGTH + 2);
  const firstIndex = new Int32Array(MAX_CODE_LENGTH + 2);
  let code = 0;
  let index = 0;
  for (let l = 1; l <= MAX_CODE_LENGTH; l++) {
    firstCode[l] = code;
    firstIndex[l] = index;
    code = (code + perLength[l]) << 1;
    index += perLength[l];
  }
  for (let i = 0; i < count; i++) {
    let c = 0;
    let l = 1;
    for (; l <= MAX_CODE_LENGTH; l++) {
      c = c | r.readBit();
      const offset = c - firstCode[l];
      if (offset < perLength[l]) {
        out[i] = order[firstIndex[l] + offset];
        break;
      }
      c <<= 1;
    }
    if (l > MAX_CODE_LENGTH) throw new StreamError(`symbol ${i} of a Huffman stream has a code no symbol has`);
  }
  if (r.remaining >= 8) throw new StreamError(`a Huffman stream of ${count} symbols has ${Math.floor(r.remaining / 8)} bytes left over`);
  return out;
}
