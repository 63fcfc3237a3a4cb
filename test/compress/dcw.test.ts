/**
 * The .dcw file: a round trip gives back exactly the quantised WeightsFile (header, shared
 * values, zeros, raw biases and batch norm), files are told apart from .weights by their
 * magic bytes, and every truncated, bit-flipped, crafted or mismatched file is a one-line
 * DarknetError naming the file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCfg } from '../../src/cfg/parser';
import type { NetworkSpec } from '../../src/cfg/config';
import { crc32 } from '../../src/compress/crc32';
import { decodeDcw, isDcw, parseDcw, readWeightsOrDcw, serializeDcw, writeDcw } from '../../src/compress/dcw';
import { compressedModel, kmeansModel, parseWidths, sharedWeights } from '../../src/compress/quantize';
import { compressionReport, formatCompression } from '../../src/compress/report';
import { mulberry32 } from '../../src/engine/random';
import { DarknetError } from '../../src/errors';
import { writeWeights, type WeightsFile } from '../../src/io/weights';

const CFG = `
[net]
batch=4
height=10
width=10
channels=1

[convolutional]
batch_normalize=1
filters=6
size=3
stride=1
pad=1
activation=relu

[maxpool]
size=2
stride=2

[connected]
output=40
activation=relu

[connected]
output=10
activation=linear

[softmax]
`;
const spec = parseCfg(CFG, 'tiny.cfg');
const dir = path.join(os.tmpdir(), `dts-dcw-${process.pid}`);
beforeAll(() => fs.mkdirSync(dir, { recursive: true }));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Random weights for `s`, weights pruned to `sparsity`. */
function randomPruned(s: NetworkSpec, sparsity: number, seed = 1): WeightsFile {
  const r = mulberry32(seed);
  return {
    header: { major: 0, minor: 2, revision: 0, seen: 2 ** 40 + 3 },
    layers: s.layers.map((l) => Object.fromEntries(l.params.map((p) => [
      p.name,
      Float32Array.from({ length: p.size }, () => {
        if (p.name === 'rolling_variance') return 0.5 + r();
        const v = (r() - 0.5) * 0.4;
        return p.name === 'weights' && r() < sparsity ? 0 : v;
      }),
    ]))),
  };
}

function bitsOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function expectSameWeights(a: WeightsFile, b: WeightsFile): void {
  expect(a.header).toEqual(b.header);
  expect(a.layers.length).toBe(b.layers.length);
  a.layers.forEach((l, i) => {
    expect(Object.keys(l).sort()).toEqual(Object.keys(b.layers[i]).sort());
    for (const [name, x] of Object.entries(l)) expect(bitsOf(x).equals(bitsOf(b.layers[i][name as keyof typeof l]!))).toBe(true);
  });
}

const widths = parseWidths('conv=4,fc=3', 'conv=3,fc=2', spec);
const pruned = randomPruned(spec, 0.8);
const codes = kmeansModel(spec, pruned, widths);
const quantized = sharedWeights(pruned, codes);
const { bytes, sections } = serializeDcw(compressedModel(spec, quantized, codes, widths), spec);

/** Every way a parse can end: a WeightsFile or a DarknetError; anything else fails the test. */
function parseOutcome(buf: Buffer, s = spec): 'ok' | DarknetError {
  try {
    parseDcw(buf, s, 'm.dcw');
    return 'ok';
  } catch (e) {
    if (e instanceof DarknetError) return e;
    throw e;
  }
}

describe('.dcw round trip', () => {
  test('decoding gives back exactly the quantised weights: shared values, zeros, raw arrays, header', () => {
    const back = parseDcw(bytes, spec, 'm.dcw');
    expectSameWeights(back, quantized);
    // the quantised model has the pruned zeros and at most 2^bits - 1 values per layer
    for (const [i, code] of codes) {
      const w = back.layers[i].weights!;
      for (let j = 0; j < w.length; j++) if ((w[j] === 0) !== (pruned.layers[i].weights![j] === 0)) throw new Error(`layer ${i}: zero ${j} moved`);
      expect(new Set(w).size).toBeLessThanOrEqual(2 ** widths.get(i)!.bits);
      expect(code.centroids.length).toBeLessThanOrEqual(2 ** widths.get(i)!.bits - 1);
    }
    expect(bytes.length).toBeLessThan(4 * spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0) / 2);
  });

  test('a very sparse layer (long zero runs, fillers) and an all-zero layer round-trip', () => {
    const sparse = randomPruned(spec, 0.995, 9);
    sparse.layers[3].weights!.fill(0);
    const c = kmeansModel(spec, sparse, widths);
    const q = sharedWeights(sparse, c);
    const { bytes: b, sections } = serializeDcw(compressedModel(spec, q, c, widths), spec);
    expect(sections.find((s) => s.layer === 2 && s.coded)!.coded!.fillers).toBeGreaterThan(0);
    expectSameWeights(parseDcw(b, spec, 's.dcw'), q);
  });

  test('readWeightsOrDcw tells the formats apart by their bytes, not their names', () => {
    const dcwNamedWeights = path.join(dir, 'model.weights');
    const weightsNamedDcw = path.join(dir, 'model.dcw');
    writeDcw(dcwNamedWeights, compressedModel(spec, quantized, codes, widths), spec);
    writeWeights(weightsNamedDcw, pruned, spec);
    expect(isDcw(fs.readFileSync(dcwNamedWeights))).toBe(true);
    expect(isDcw(fs.readFileSync(weightsNamedDcw))).toBe(false);
    expectSameWeights(readWeightsOrDcw(dcwNamedWeights, spec), quantized);
    expectSameWeights(readWeightsOrDcw(weightsNamedDcw, spec), pruned);
    expect(() => readWeightsOrDcw(path.join(dir, 'missing.dcw'), spec)).toThrow(DarknetError);
    expect(() => decodeDcw(fs.readFileSync(weightsNamedDcw), spec, 'w.dcw')).toThrow(/w\.dcw: not a \.dcw file/);
  });
});

describe('the compression report', () => {
  test('counts every byte from what was stored: sections add up to the file', () => {
    const table = spec.layers.reduce((n, l) => n + 1 + 5 * l.params.length, 0);
    expect(32 + table + sections.reduce((n, x) => n + x.bytes, 0) + 4).toBe(bytes.length);
    const r = compressionReport(spec, pruned, sections, { weights: 20 + 4 * 6_528, dcw: bytes.length }, widths);
    expect(r.layers.map((l) => l.name)).toEqual(['conv1', 'fc1', 'fc2']);
    for (const l of r.layers) {
      const s = sections.find((x) => x.layer === l.index && x.coded)!;
      expect(l.nonzero).toBe(pruned.layers[l.index].weights!.filter((w) => w !== 0).length);
      expect(l.entries).toBe(l.nonzero + l.fillers);
      expect(l.bytes.pruned).toBe(Math.ceil((l.entries * (32 + l.indexBits)) / 8));
      expect(l.bytes.quantized).toBe(Math.ceil((l.entries * (l.bits + l.indexBits)) / 8) + 4 * l.codebook);
      expect(l.bytes.huffman).toBe(s.coded!.skipBytes + s.coded!.codeBytes + 4 * l.codebook);
    }
    // biases and batch norm: conv 6 x 4 arrays, fc1 40 biases, fc2 10 biases
    expect(r.other).toEqual({ params: 24 + 40 + 10, bytes: 4 * 74 });
    expect(r.total.dense).toBe(4 * 6_528);
    const text = formatCompression(r);
    expect(text).toMatch(/^total +6,454 +/m);
    expect(text).toContain(`.dcw file      ${bytes.length.toLocaleString('en-US')} bytes`);
  });
});

describe('.dcw refused', () => {
  test('truncated at every length: a one-line DarknetError naming the file', () => {
    for (let n = 0; n < bytes.length; n++) {
      const r = parseOutcome(bytes.subarray(0, n));
      if (r === 'ok') throw new Error(`a file cut to ${n} of ${bytes.length} bytes parsed`);
      expect(r.message).toMatch(/^m\.dcw: /);
      expect(r.message).not.toMatch(/\n/);
    }
  });

  test('every single bit flipped: a DarknetError (the checksum, magic or version catches it)', () => {
    for (let bit = 0; bit < 8 * bytes.length; bit++) {
      const b = Buffer.from(bytes);
      b[bit >> 3] ^= 1 << (bit & 7);
      const r = parseOutcome(b);
      if (r === 'ok') throw new Error(`flipping bit ${bit} went unnoticed`);
      expect(r.message).toMatch(/^m\.dcw: (not a \.dcw|\.dcw format version|truncated or corrupt)/);
    }
  });

  test('bytes changed behind a recomputed checksum: a DarknetError or a valid file, never another error', () => {
    const r = mulberry32(4);
    let refused = 0;
    for (let trial = 0; trial < 3000; trial++) {
      const b = Buffer.from(bytes);
      const changes = 1 + Math.floor(r() * 3);
      for (let c = 0; c < changes; c++) b[8 + Math.floor(r() * (b.length - 12))] = Math.floor(r() * 256);
      b.writeUInt32LE(crc32(b, 0, b.length - 4), b.length - 4);
      if (parseOutcome(b) !== 'ok') refused++;
    }
    expect(refused).toBeGreaterThan(100);
  });

  test('a cfg with other layers or other sizes is refused, naming the layer', () => {
    const other = parseCfg(CFG.replace('output=40', 'output=41'), 'other.cfg');
    expect(() => parseDcw(bytes, other, 'm.dcw')).toThrow(/^m\.dcw: layer 2 \(connected, line \d+ of other\.cfg\) holds biases\[40\] weights\[6000\] in the \.dcw; the cfg needs biases\[41\] weights\[6150\]$/);
    const fewer = parseCfg(CFG.replace('[softmax]', ''), 'fewer.cfg');
    expect(() => parseDcw(bytes, fewer, 'm.dcw')).toThrow(/made for a cfg of 5 layers; fewer\.cfg has 4/);
  });

  test('another format version is named as such', () => {
    const b = Buffer.from(bytes);
    b.writeUInt16LE(2, 4);
    expect(() => parseDcw(b, spec, 'm.dcw')).toThrow(/format version 2; this darknet-ts reads version 1 \(made by a newer darknet-ts\?\)/);
  });
});
