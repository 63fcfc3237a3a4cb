import * as fs from 'fs';
import type { NetworkSpec } from '../cfg/config';
import type { LayerSpec, ParamSpec } from '../engine/layer';
import { DarknetError, excerpt, PATH_EXCERPT } from '../errors';
import { atomicWrite } from '../io/files';
import { parseWeights, type LayerWeights, type WeightsFile, type WeightsHeader } from '../io/weights';
import { StreamError } from './bits';
import { crc32 } from './crc32';
import { decodeHuffman, encodeHuffman } from './huffman';
import { decodeLayer, MAX_BITS, type LayerCode } from './kmeans';
import { fillerCount, fromRelative, MAX_INDEX_BITS, toRelative } from './sparse';

/**
 * The .dcw file: a model after Deep Compression (pruned, weight-shared, Huffman-coded),
 * specified byte for byte in docs/dcw-format.md. Reading one gives back a WeightsFile
 * that is exactly the quantised model: every weight its shared value, every zero 0.
 * Anything wrong with a file (truncated, corrupt, another version, made for another cfg)
 * is a one-line DarknetError naming it.
 */

/** A layer's weights after weight sharing, with the widths they are stored in. */
export interface CodedWeights {
  code: LayerCode;
  /** codebook index width: the codebook holds at most 2^bits - 1 values */
  bits: number;
  /** width of a relative position (zeros skipped before an entry) */
  indexBits: number;
}

/** A model as a .dcw holds it. */
export interface CompressedModel {
  header: WeightsHeader;
  /** indexed like spec.layers: arrays stored as float32 (biases, batch norm), and the coded weights */
  layers: Array<{ raw: LayerWeights; coded?: CodedWeights }>;
}

/** What one array cost in the file, for the report. */
export interface SectionSize {
  layer: number;
  name: ParamSpec['name'];
  /** bytes of its section, encoding byte and lengths included */
  bytes: number;
  coded?: {
    /** entries stored (non-zeros and fillers) */
    entries: number;
    fillers: number;
    codebook: number;
    /** the Huffman-coded relative positions and codebook indices */
    skipBytes: number;
    codeBytes: number;
  };
}

/** "DCW" and a byte with the high bit set: read as a .weights header, major would be negative, which no .weights has. */
export const DCW_MAGIC: readonly number[] = [0x44, 0x43, 0x57, 0x89];
export const DCW_VERSION = 1;

const NAMES: readonly ParamSpec['name'][] = ['biases', 'scales', 'rolling_mean', 'rolling_variance', 'weights'];
const RAW = 0;
const DEEP = 1;
/** magic, version, reserved, major, minor, revision, seen, layer count */
const HEADER_BYTES = 32;
const CHECKSUM_BYTES = 4;

/** Whether bytes start like a .dcw file (the magic only). */
export function isDcw(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && DCW_MAGIC.every((b, i) => bytes[i] === b);
}

// ---------------------------------------------------------------------------------------
// Writing

class ByteWriter {
  private parts: Buffer[] = [];
  length = 0;

  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u8(v: number): void {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.push(b);
  }
  u16(v: number): void {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.push(b);
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  floats(a: Float32Array): void {
    const b = Buffer.alloc(4 * a.length);
    for (let i = 0; i < a.length; i++) b.writeFloatLE(a[i], 4 * i);
    this.push(b);
  }
  bytes(a: Uint8Array): void {
    this.push(Buffer.from(a));
  }
  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/**
 * A model as .dcw bytes, with what each array cost. The model must hold every array of every
 * layer of `spec`, at the cfg's sizes; a prunable layer's weights may be coded.
 */
export function serializeDcw(model: CompressedModel, spec: NetworkSpec): { bytes: Buffer; sections: SectionSize[] } {
  if (model.layers.length !== spec.layers.length) {
    throw new DarknetError(`the model has ${model.layers.length} layers, ${excerpt(spec.file, PATH_EXCERPT)} has ${spec.layers.length}`);
  }
  checkHeader(model.header);
  const w = new ByteWriter();
  for (const b of DCW_MAGIC) w.u8(b);
  w.u16(DCW_VERSION);
  w.u16(0);
  w.i32(model.header.major);
  w.i32(model.header.minor);
  w.i32(model.header.revision);
  w.u64(model.header.seen);
  w.u32(spec.layers.length);
  for (const l of spec.layers) {
    w.u8(l.params.length);
    for (const p of l.params) {
      w.u8(NAMES.indexOf(p.name));
      w.u32(p.size);
    }
  }
  const sections: SectionSize[] = [];
  spec.layers.forEach((l, i) => {
    const layer = model.layers[i];
    for (const p of l.params) {
      const start = w.length;
      const coded = p.name === 'weights' ? layer.coded : undefined;
      if (coded) {
        sections.push({ layer: i, name: p.name, bytes: 0, coded: writeCoded(w, coded, l, p) });
      } else {
        const a = layer.raw[p.name];
        if (!a || a.length !== p.size) {
          throw new DarknetError(`layer ${i} ${l.type}: ${p.name} has ${a?.length ?? 0} floats, the cfg needs ${p.size}`);
        }
        w.u8(RAW);
        w.floats(a);
        sections.push({ layer: i, name: p.name, bytes: 0 });
      }
      sections[sections.length - 1].bytes = w.length - start;
    }
  });
  const body = w.finish();
  const bytes = Buffer.alloc(body.length + CHECKSUM_BYTES);
  body.copy(bytes);
  bytes.writeUInt32LE(crc32(body), body.length);
  return { bytes, sections };
}

function writeCoded(w: ByteWriter, c: CodedWeights, l: LayerSpec, p: ParamSpec): SectionSize['coded'] {
  const where = `layer ${l.index} ${l.type}`;
  if (c.code.indices.length !== p.size) throw new DarknetError(`${where}: coded weights have ${c.code.indices.length} indices, the cfg needs ${p.size}`);
  if (!Number.isInteger(c.bits) || c.bits < 1 || c.bits > MAX_BITS) throw new DarknetError(`${where}: ${c.bits} bits per weight is not in 1..${MAX_BITS}`);
  if (!Number.isInteger(c.indexBits) || c.indexBits < 1 || c.indexBits > MAX_INDEX_BITS) {
    throw new DarknetError(`${where}: ${c.indexBits} bits per relative index is not in 1..${MAX_INDEX_BITS}`);
  }
  const k = c.code.centroids.length;
  if (k > 2 ** c.bits - 1) throw new DarknetError(`${where}: ${k} shared values do not fit ${c.bits}-bit indices (at most ${2 ** c.bits - 1})`);
  for (const v of c.code.centroids) {
    if (v === 0 || !Number.isFinite(v)) throw new DarknetError(`${where}: a shared value is ${v}; shared values must be finite and non-zero`);
  }
  for (const j of c.code.indices) if (j > k) throw new DarknetError(`${where}: codebook index ${j} with ${k} shared values`);
  const entries = toRelative(c.code.indices, c.indexBits);
  const skips = encodeHuffman(entries.skips);
  const codes = encodeHuffman(entries.codes);
  w.u8(DEEP);
  w.u8(c.bits);
  w.u8(c.indexBits);
  w.u16(k);
  w.u32(entries.skips.length);
  w.floats(c.code.centroids);
  w.u32(skips.length);
  w.bytes(skips);
  w.u32(codes.length);
  w.bytes(codes);
  return { entries: entries.skips.length, fillers: fillerCount(entries), codebook: k, skipBytes: skips.length, codeBytes: codes.length };
}

function checkHeader(h: WeightsHeader): void {
  const int32 = (x: number) => Number.isInteger(x) && x >= 0 && x <= 2 ** 31 - 1;
  if (!int32(h.major) || !int32(h.minor) || !int32(h.revision) || !Number.isSafeInteger(h.seen) || h.seen < 0) {
    throw new DarknetError(`cannot store header version ${h.major}.${h.minor}.${h.revision}, seen ${h.seen}`);
  }
}

/** Writes a .dcw atomically (a temporary file, then a rename). Returns what each array cost. */
export function writeDcw(file: string, model: CompressedModel, spec: NetworkSpec): { bytes: number; sections: SectionSize[] } {
  let out: { bytes: Buffer; sections: SectionSize[] };
  try {
    out = serializeDcw(model, spec);
  } catch (e) {
    if (e instanceof DarknetError) throw new DarknetError(`${excerpt(file, PATH_EXCERPT)}: ${e.message}`);
    throw e;
  }
  atomicWrite(file, out.bytes);
  return { bytes: out.bytes.length, sections: out.sections };
}

// ---------------------------------------------------------------------------------------
// Reading

/** Bounds-checked little-endian reads; running off the end is a StreamError. */
class ByteReader {
  offset = 0;
  constructor(private readonly buf: Buffer, readonly end: number) {}

  private take(n: number, what: string): number {
    if (this.offset + n > this.end) throw new StreamError(`ends inside ${what} (byte ${this.offset}, needs ${n} more, ${this.end - this.offset} left)`);
    const at = this.offset;
    this.offset += n;
    return at;
  }
  u8(what: string): number {
    return this.buf.readUInt8(this.take(1, what));
  }
  u16(what: string): number {
    return this.buf.readUInt16LE(this.take(2, what));
  }
  u32(what: string): number {
    return this.buf.readUInt32LE(this.take(4, what));
  }
  i32(what: string): number {
    return this.buf.readInt32LE(this.take(4, what));
  }
  u64(what: string): bigint {
    return this.buf.readBigUInt64LE(this.take(8, what));
  }
  floats(n: number, what: string): Float32Array {
    const at = this.take(4 * n, what);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.buf.readFloatLE(at + 4 * i);
    return a;
  }
  bytes(n: number, what: string): Uint8Array {
    const at = this.take(n, what);
    return this.buf.subarray(at, at + n);
  }
}

/**
 * Parses .dcw bytes against a cfg into the model it stores (codes and raw arrays). Every
 * problem is a one-line DarknetError naming `file`.
 */
export function decodeDcw(buf: Buffer, spec: NetworkSpec, file: string): CompressedModel {
  const name = excerpt(file, PATH_EXCERPT);
  if (!isDcw(buf)) throw new DarknetError(`${name}: not a .dcw file (it does not start with the .dcw magic bytes 44 43 57 89)`);
  if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) {
    throw new DarknetError(`${name}: truncated .dcw: ${buf.length} bytes, the header alone is ${HEADER_BYTES + CHECKSUM_BYTES}`);
  }
  const version = buf.readUInt16LE(4);
  if (version !== DCW_VERSION) {
    throw new DarknetError(`${name}: .dcw format version ${version}; this darknet-ts reads version ${DCW_VERSION}${version > DCW_VERSION ? ' (made by a newer darknet-ts?)' : ''}`);
  }
  const end = buf.length - CHECKSUM_BYTES;
  const stored = buf.readUInt32LE(end);
  const actual = crc32(buf, 0, end);
  if (stored !== actual) {
    throw new DarknetError(`${name}: truncated or corrupt .dcw: its checksum is ${hex(stored)}, its ${end} bytes give ${hex(actual)}`);
  }
  try {
    return decodeBody(new ByteReader(buf, end), spec, name);
  } catch (e) {
    if (e instanceof StreamError) throw new DarknetError(`${name}: corrupt .dcw: ${e.message}`);
    throw e;
  }
}

function decodeBody(r: ByteReader, spec: NetworkSpec, name: string): CompressedModel {
  r.offset = 8;
  const major = r.i32('the header');
  const minor = r.i32('the header');
  const revision = r.i32('the header');
  const seen = r.u64('the header');
  if (major < 0 || minor < 0 || revision < 0) throw new StreamError(`header version ${major}.${minor}.${revision} is negative`);
  if (seen > BigInt(Number.MAX_SAFE_INTEGER)) throw new StreamError(`seen = ${seen} images is more than ${Number.MAX_SAFE_INTEGER}`);
  const layerCount = r.u32('the header');
  const cfgName = excerpt(spec.file, PATH_EXCERPT);
  if (layerCount !== spec.layers.length) {
    throw new DarknetError(`${name}: made for a cfg of ${layerCount} layers; ${cfgName} has ${spec.layers.length}`);
  }
  // The layer table: each array's name and size, checked against the cfg before any is read.
  for (const l of spec.layers) {
    const count = r.u8('the layer table');
    const arrays: string[] = [];
    for (let j = 0; j < count; j++) {
      const code = r.u8('the layer table');
      const size = r.u32('the layer table');
      arrays.push(`${NAMES[code] ?? `array#${code}`}[${size}]`);
    }
    const needs = l.params.map((p) => `${p.name}[${p.size}]`);
    if (arrays.join(' ') !== needs.join(' ')) {
      throw new DarknetError(`${name}: layer ${l.index} (${l.type}, line ${l.line} of ${cfgName}) holds ${arrays.join(' ') || 'no arrays'} in the .dcw; the cfg needs ${needs.join(' ') || 'none'}`);
    }
  }
  const layers = spec.layers.map((l) => {
    const layer: CompressedModel['layers'][number] = { raw: {} };
    for (const p of l.params) {
      const where = `layer ${l.index} ${p.name}`;
      const encoding = r.u8(where);
      if (encoding === RAW) layer.raw[p.name] = r.floats(p.size, where);
      else if (encoding === DEEP && p.name === 'weights') layer.coded = readCoded(r, p.size, where);
      else throw new StreamError(`${where}: unknown encoding ${encoding}`);
    }
    return layer;
  });
  if (r.offset !== r.end) throw new StreamError(`bytes left over after the last layer`);
  return { header: { major, minor, revision, seen: Number(seen) }, layers };
}

function readCoded(r: ByteReader, size: number, where: string): CodedWeights {
  const bits = r.u8(where);
  const indexBits = r.u8(where);
  const k = r.u16(where);
  const entries = r.u32(where);
  if (bits < 1 || bits > MAX_BITS || indexBits < 1 || indexBits > MAX_INDEX_BITS) {
    throw new StreamError(`${where}: widths of ${bits} bits per weight and ${indexBits} per index`);
  }
  if (k > 2 ** bits - 1) throw new StreamError(`${where}: ${k} shared values for ${bits}-bit indices`);
  // Each entry takes at least one position: more entries than weights cannot be.
  if (entries > size) throw new StreamError(`${where}: ${entries} entries for ${size} weights`);
  const centroids = r.floats(k, `${where}'s codebook`);
  for (const v of centroids) if (v === 0 || !Number.isFinite(v)) throw new StreamError(`${where}: a shared value is ${v}`);
  const skipBytes = r.bytes(r.u32(where), `${where}'s positions`);
  const codeBytes = r.bytes(r.u32(where), `${where}'s codebook indices`);
  const skips = decodeHuffman(skipBytes, entries);
  const codes = decodeHuffman(codeBytes, entries);
  const maxSkip = 2 ** indexBits - 1;
  for (let i = 0; i < entries; i++) {
    if (skips[i] > maxSkip) throw new StreamError(`${where}: relative index ${skips[i]} does not fit ${indexBits} bits`);
    if (codes[i] > k) throw new StreamError(`${where}: codebook index ${codes[i]} with ${k} shared values`);
  }
  const indices = fromRelative({ skips, codes }, size);
  return { code: { centroids, indices }, bits, indexBits };
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, '0')}`;
}

/**
 * The dense weights a model stands for, as a loader sees them: coded weights decoded to their
 * shared values; layers the cfg marks dontload come back empty and dontloadscales drops the
 * batch-norm arrays, as parseWeights does for a .weights file.
 */
export function modelToWeights(model: CompressedModel, spec: NetworkSpec): WeightsFile {
  return {
    header: { ...model.header },
    layers: spec.layers.map((l, i) => {
      const out: LayerWeights = {};
      if (l.dontload) return out;
      const layer = model.layers[i];
      for (const p of l.params) {
        if (l.dontloadscales && p.name !== 'biases' && p.name !== 'weights') continue;
        const coded = p.name === 'weights' ? layer.coded : undefined;
        const a = coded ? decodeLayer(coded.code) : layer.raw[p.name];
        if (a) out[p.name] = a;
      }
      return out;
    }),
  };
}

/** Parses .dcw bytes into the quantised WeightsFile they store. */
export function parseDcw(buf: Buffer, spec: NetworkSpec, file: string): WeightsFile {
  return modelToWeights(decodeDcw(buf, spec, file), spec);
}

function readBytes(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new DarknetError(`${excerpt(file, PATH_EXCERPT)}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? excerpt(String(e))})`);
  }
}

/** Reads a .dcw file into the quantised WeightsFile it stores. */
export function readDcw(file: string, spec: NetworkSpec): WeightsFile {
  return parseDcw(readBytes(file, 'a .dcw file'), spec, file);
}

/**
 * Reads weights from a darknet .weights or a .dcw file, told apart by their first bytes
 * (never by the file's name), so every verb that loads weights takes either.
 * @example const w = readWeightsOrDcw('lenet.dcw', readCfg('cfg/lenet.cfg'));
 */
export function readWeightsOrDcw(file: string, spec: NetworkSpec): WeightsFile {
  const buf = readBytes(file, 'weights');
  return isDcw(buf) ? parseDcw(buf, spec, file) : parseWeights(buf, spec, file);
}
