import { constants } from 'buffer';
import * as fs from 'fs';
import * as os from 'os';
import type { NetworkSpec } from '../cfg/config';
import { DarknetError, excerpt, PATH_EXCERPT } from '../errors';
import type { LayerSpec, ParamSpec } from '../engine/layer';
import { atomicWrite } from './files';

// NOTE: atomicWrite moved to ./files; re-exported until every importer uses ./files.
export { atomicWrite };

const MAX_LENGTH = constants.MAX_LENGTH;

/**
 * darknet's .weights files (parser.c save_weights_upto / load_weights_upto), read into
 * and written from plain host arrays, so that summaries, thresholding and pruning reports
 * work on the saved file itself, with no backend.
 *
 * Layout, little-endian: int32 major, minor, revision; `seen` as uint64 when
 * major * 10 + minor >= 2 and both are below 1000, else int32; then each layer's arrays
 * in cfg order (LayerSpec.params), skipping layers marked dontload / dontsave.
 */

export interface WeightsHeader {
  major: number;
  minor: number;
  revision: number;
  /**
   * images seen in training; a file whose uint64 seen is above Number.MAX_SAFE_INTEGER
   * (2^53 - 1, some 10^15 images) is refused as corrupt rather than rounded
   */
  seen: number;
}

/** One layer's arrays by darknet name, connected weights always as [out, in]. */
export type LayerWeights = Partial<Record<ParamSpec['name'], Float32Array>>;

export interface WeightsFile {
  header: WeightsHeader;
  /** indexed like spec.layers; empty objects for layers without parameters */
  layers: LayerWeights[];
}

/** The header pjreddie's darknet writes. */
export const DARKNET_HEADER: Omit<WeightsHeader, 'seen'> = { major: 0, minor: 2, revision: 0 };

function seenIs64(h: { major: number; minor: number }): boolean {
  return h.major * 10 + h.minor >= 2 && h.major < 1000 && h.minor < 1000;
}

/** NOTE: darknet stores connected weights transposed ([in, out]) when major or minor > 1000. */
function isTransposed(h: { major: number; minor: number }): boolean {
  return h.major > 1000 || h.minor > 1000;
}

/** The arrays a layer has in a file being loaded: dontloadscales drops the batch-norm ones. */
function loadLayout(l: LayerSpec): ParamSpec[] {
  if (!l.dontloadscales) return l.params;
  return l.params.filter((p) => p.name === 'biases' || p.name === 'weights');
}

/** Floats the file must hold after its header, for loading (`forLoad`) or saving. */
export function expectedFloats(spec: NetworkSpec, forLoad: boolean): number {
  let n = 0;
  for (const l of spec.layers) {
    if (forLoad ? l.dontload : l.dontsave) continue;
    for (const p of forLoad ? loadLayout(l) : l.params) n += p.size;
  }
  return n;
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** `n` float32s from `offset`, copied (a Buffer's offset need not be 4-aligned), bit for bit. */
function readFloats(buf: Buffer, offset: number, n: number): Float32Array {
  const a = new Float32Array(n);
  if (LITTLE_ENDIAN) new Uint8Array(a.buffer).set(buf.subarray(offset, offset + 4 * n));
  else for (let i = 0; i < n; i++) a[i] = buf.readFloatLE(offset + 4 * i);
  return a;
}

function writeFloats(buf: Buffer, offset: number, a: Float32Array): void {
  if (LITTLE_ENDIAN) buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
  else for (let j = 0; j < a.length; j++) buf.writeFloatLE(a[j], offset + 4 * j);
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * Parses a .weights buffer against a network spec. Every malformed file is a one-line
 * DarknetError: a short or unknown header, a `seen` too large to be true, and any size
 * mismatch (with both sizes).
 */
export function parseWeights(buf: Buffer, spec: NetworkSpec, file: string): WeightsFile {
  const name = excerpt(file, PATH_EXCERPT);
  if (buf.length < 16) {
    throw new DarknetError(`${name}: ${buf.length} bytes is too short for a .weights header (16 or 20 bytes)`);
  }
  const major = buf.readInt32LE(0);
  const minor = buf.readInt32LE(4);
  const revision = buf.readInt32LE(8);
  if (major < 0 || minor < 0 || revision < 0) {
    throw new DarknetError(`${name}: not a darknet .weights file (header version ${major}.${minor}.${revision})`);
  }
  const wide = seenIs64({ major, minor });
  const headerBytes = wide ? 20 : 16;
  if (buf.length < headerBytes) {
    throw new DarknetError(`${name}: truncated header: version ${major}.${minor}.${revision} needs ${headerBytes} bytes, the file has ${buf.length}`);
  }
  const seen = readSeen(buf, wide, name);
  const need = expectedFloats(spec, true);
  const have = (buf.length - headerBytes) / 4;
  if (have !== need) {
    const what = have < need ? 'too short' : 'too long';
    throw new DarknetError(
      `${name}: ${what} for ${excerpt(spec.file, PATH_EXCERPT)}: the cfg needs ${need} floats (${headerBytes + 4 * need} bytes), the file has ${Number.isInteger(have) ? have : have.toFixed(2)} (${buf.length} bytes)`,
    );
  }
  const transposed = isTransposed({ major, minor });
  let offset = headerBytes;
  const layers: LayerWeights[] = spec.layers.map((l) => {
    const out: LayerWeights = {};
    if (l.dontload) return out;
    for (const p of loadLayout(l)) {
      let a = readFloats(buf, offset, p.size);
      offset += 4 * p.size;
      if (transposed && l.type === 'connected' && p.name === 'weights') a = transpose(a, l.inputs, l.outputs);
      out[p.name] = a;
    }
    return out;
  });
  return { header: { major, minor, revision, seen }, layers };
}

/**
 * The header's `seen`. NOTE: darknet stores it as size_t (uint64) or int; a count above
 * 2^53 - 1 cannot be a real image count and would not survive as a JS number, so it is
 * refused (not clamped: a clamped count would silently change the learning-rate schedule).
 * So is a negative int32 seen, which darknet would turn into a huge size_t.
 */
function readSeen(buf: Buffer, wide: boolean, name: string): number {
  if (!wide) {
    const seen = buf.readInt32LE(12);
    if (seen < 0) throw new DarknetError(`${name}: corrupt header: seen = ${seen} images is negative`);
    return seen;
  }
  const seen = buf.readBigUInt64LE(12);
  if (seen > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new DarknetError(`${name}: corrupt header: seen = ${seen} images is more than ${Number.MAX_SAFE_INTEGER} (2^53 - 1), the most this program counts`);
  }
  return Number(seen);
}

export function readWeights(file: string, spec: NetworkSpec): WeightsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DarknetError(`${excerpt(file, PATH_EXCERPT)}: cannot read weights (${(e as NodeJS.ErrnoException).code ?? excerpt(String(e))})`);
  }
  return parseWeights(buf, spec, file);
}

/** Serialises in darknet's layout, keeping the header's version (and so its seen width and transposition). */
export function serializeWeights(w: WeightsFile, spec: NetworkSpec): Buffer {
  checkHeader(w.header);
  const wide = seenIs64(w.header);
  const headerBytes = wide ? 20 : 16;
  const bytes = headerBytes + 4 * expectedFloats(spec, false);
  if (bytes > MAX_LENGTH) {
    throw new DarknetError(`${excerpt(spec.file, PATH_EXCERPT)}: its weights would be ${bytes} bytes, more than one buffer holds (${MAX_LENGTH})`);
  }
  const buf = Buffer.alloc(bytes);
  buf.writeInt32LE(w.header.major, 0);
  buf.writeInt32LE(w.header.minor, 4);
  buf.writeInt32LE(w.header.revision, 8);
  if (wide) buf.writeBigUInt64LE(BigInt(w.header.seen), 12);
  else buf.writeInt32LE(w.header.seen, 12);
  const transposed = isTransposed(w.header);
  let offset = headerBytes;
  spec.layers.forEach((l, i) => {
    if (l.dontsave) return;
    for (const p of l.params) {
      let a = w.layers[i]?.[p.name] ?? notLoaded(l, p);
      if (!a || a.length !== p.size) {
        throw new Error(`layer ${i} ${l.type}: ${p.name} has ${a?.length ?? 0} floats, the cfg needs ${p.size}`);
      }
      if (transposed && l.type === 'connected' && p.name === 'weights') a = transpose(a, l.outputs, l.inputs);
      writeFloats(buf, offset, a);
      offset += 4 * a.length;
    }
  });
  return buf;
}

/**
 * An array a parsed file does not have, because the cfg told the loader to skip it:
 * - dontloadscales: the batch-norm arrays get darknet's initial values (scales 1, rolling
 *   mean and variance 0), which is what darknet saves after loading such a file;
 * - dontload: darknet would save the layer's random initial weights, which a file-to-file
 *   operation cannot know, so it is an error.
 * Anything else missing is left to the caller's size check (a programming error).
 */
function notLoaded(l: LayerSpec, p: ParamSpec): Float32Array | undefined {
  if (l.dontload) {
    throw new DarknetError(
      `layer ${l.index} ${l.type} (line ${l.line}) has dontload=1, so its ${p.name} were never read: there is nothing to save for them`,
    );
  }
  if (l.dontloadscales && p.name !== 'biases' && p.name !== 'weights') {
    return new Float32Array(p.size).fill(p.name === 'scales' ? 1 : 0);
  }
  return undefined;
}

/** A header serializeWeights can write: what the file's int32 and uint64 fields hold. */
function checkHeader(h: WeightsHeader): void {
  const int32 = (x: number) => Number.isInteger(x) && x >= 0 && x <= 2 ** 31 - 1;
  if (!int32(h.major) || !int32(h.minor) || !int32(h.revision)) {
    throw new DarknetError(`cannot save weights with header version ${h.major}.${h.minor}.${h.revision}: each part must be an int from 0 to ${2 ** 31 - 1}`);
  }
  const wide = seenIs64(h);
  const most = wide ? Number.MAX_SAFE_INTEGER : 2 ** 31 - 1;
  if (!Number.isSafeInteger(h.seen) || h.seen < 0 || h.seen > most) {
    throw new DarknetError(
      `cannot save seen = ${h.seen} images in a version ${h.major}.${h.minor}.${h.revision} header: it holds ${wide ? 'a whole number' : 'an int'} up to ${most}`,
    );
  }
}

/**
 * Writes atomically (see ./files): a temporary file in the target's folder, then a
 * rename, so an interrupted save never leaves a partial file where the weights were.
 */
export function writeWeights(file: string, w: WeightsFile, spec: NetworkSpec): void {
  let buf: Buffer;
  try {
    buf = serializeWeights(w, spec);
  } catch (e) {
    if (e instanceof DarknetError) throw new DarknetError(`${excerpt(file, PATH_EXCERPT)}: ${e.message}`);
    throw e;
  }
  atomicWrite(file, buf);
}
