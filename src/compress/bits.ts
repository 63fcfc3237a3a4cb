/**
 * Bit-level streams for the Huffman-coded parts of a .dcw file, most significant bit
 * first within each byte (the order a reader of a hex dump expects).
 *
 * A reader that runs out of bits or meets an impossible value throws `StreamError`; the
 * .dcw reader turns it into a one-line DarknetError naming the file.
 */

/** A malformed stream: truncated, or holding a value no writer produces. */
export class StreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StreamError';
  }
}

export class BitWriter {
  private bytes = new Uint8Array(256);
  private length = 0;
  /** bits waiting to fill the next byte, and how many */
  private pending = 0;
  private pendingBits = 0;

  /** Appends the low `bits` bits of `value` (0 <= bits <= 32), most significant first. */
  write(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.pending = (this.pending << 1) | ((value >>> i) & 1);
      if (++this.pendingBits === 8) {
        this.push(this.pending);
        this.pending = 0;
        this.pendingBits = 0;
      }
    }
  }

  /** Bits written so far. */
  get bitLength(): number {
    return 8 * this.length + this.pendingBits;
  }

  /** The bytes, the last one padded with zero bits. The writer must not be used afterwards. */
  finish(): Uint8Array {
    if (this.pendingBits > 0) this.push(this.pending << (8 - this.pendingBits));
    this.pendingBits = 0;
    return this.bytes.slice(0, this.length);
  }

  private push(byte: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(2 * this.bytes.length);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = byte;
  }
}

export class BitReader {
  private position = 0;
  private readonly end: number;

  constructor(private readonly bytes: Uint8Array) {
    this.end = 8 * bytes.length;
  }

  readBit(): number {
    if (this.position >= this.end) throw new StreamError(`a bit stream of ${this.bytes.length} bytes ends early`);
    const p = this.position++;
    return (this.bytes[p >>> 3] >>> (7 - (p & 7))) & 1;
  }

  /** `bits` bits (at most 32) as an unsigned number. */
  read(bits: number): number {
    let v = 0;
    for (let i = 0; i < bits; i++) v = v * 2 + this.readBit();
    return v;
  }

  /** Bits left, padding included. */
  get remaining(): number {
    return this.end - this.position;
  }
}
