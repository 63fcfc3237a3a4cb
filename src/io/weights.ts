import * as fs from 'fs';
import * as path from 'path';
import type { NetworkSpec } from './config';
import { DarknetError } from './errors';
import type { LayerSpec, ParamSpec } from './layer';

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
  /** images seen in training */
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

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/** Parses a .weights buffer against a network spec; any size mismatch is an error with both sizes. */
export function parseWeights(buf: Buffer, spec: NetworkSpec, file: string): WeightsFile {
  if (buf.length < 16) {
    throw new DarknetError(`${file}: ${buf.length} bytes is too short for a .weights header (16 or 20 bytes)`);
  }
  const major = buf.readInt32LE(0);
  const minor = buf.readInt32LE(4);
  const revision = buf.readInt32LE(8);
  if (major < 0 || minor < 0 || revision < 0) {
    throw new DarknetError(`${file}: not a darknet .weights file (header version ${major}.${minor}.${revision})`);
  }
  const wide = seenIs64({ major, minor });
  const headerBytes = wide ? 20 : 16;
  if (buf.length < headerBytes) throw new DarknetError(`${file}: truncated header (${buf.length} bytes)`);
  const seen = wide ? Number(buf.readBigUInt64LE(12)) : buf.readInt32LE(12);
  const need = expectedFloats(spec, true);
  const have = (buf.length - headerBytes) / 4;
  if (have !== need) {
    const what = have < need ? 'too short' : 'too long';
    throw new DarknetError(
      `${file}: ${what} for ${spec.file}: the cfg needs ${need} floats (${headerBytes + 4 * need} bytes), the file has ${Number.isInteger(have) ? have : have.toFixed(2)} (${buf.length} bytes)`,
    );
  }
  const transposed = isTransposed({ major, minor });
  let offset = headerBytes;
  const layers: LayerWeights[] = spec.layers.map((l) => {
    const out: LayerWeights = {};
    if (l.dontload) return out;
    for (const p of loadLayout(l)) {
      // Copy out of the Buffer: its offset need not be 4-aligned.
      let a: Float32Array = new Float32Array(p.size);
      for (let i = 0; i < p.size; i++) a[i] = buf.readFloatLE(offset + 4 * i);
      offset += 4 * p.size;
      if (transposed && l.type === 'connected' && p.name === 'weights') a = transpose(a, l.inputs, l.outputs);
      out[p.name] = a;
    }
    return out;
  });
  return { header: { major, minor, revision, seen }, layers };
}

export function readWeights(file: string, spec: NetworkSpec): WeightsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DarknetError(`${file}: cannot read weights (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseWeights(buf, spec, file);
}

/** Serialises in darknet's layout, keeping the header's version (and so its seen width and transposition). */
export function serializeWeights(w: WeightsFile, spec: NetworkSpec): Buffer {
  const wide = seenIs64(w.header);
  const headerBytes = wide ? 20 : 16;
  const buf = Buffer.alloc(headerBytes + 4 * expectedFloats(spec, false));
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
      let a = w.layers[i]?.[p.name];
      if (!a || a.length !== p.size) {
        throw new Error(`layer ${i} ${l.type}: ${p.name} has ${a?.length ?? 0} floats, the cfg needs ${p.size}`);
      }
      if (transposed && l.type === 'connected' && p.name === 'weights') a = transpose(a, l.outputs, l.inputs);
      for (let j = 0; j < a.length; j++) buf.writeFloatLE(a[j], offset + 4 * j);
      offset += 4 * a.length;
    }
  });
  return buf;
}

/**
 * Writes atomically: a temporary file in the same folder, then a rename, so an
 * interrupted save never leaves a partial file where the weights were.
 */
export function writeWeights(file: string, w: WeightsFile, spec: NetworkSpec): void {
  atomicWrite(file, serializeWeights(w, spec));
}

export function atomicWrite(file: string, data: Buffer | string): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new DarknetError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}
