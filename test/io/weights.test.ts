/**
 * .weights read/write against a file darknet itself wrote
 * (test/fixtures/darknet-lenet/lenet.weights): byte round trip, header versions,
 * and clear errors for files of the wrong size or kind.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCfg, readCfg } from '../../src/cfg/parser';
import { DarknetError } from '../../src/errors';
import { expectedFloats, parseWeights, readWeights, serializeWeights, writeWeights } from '../../src/io/weights';

const FIXTURE = path.resolve(__dirname, '../fixtures/darknet-lenet');
const cfgFile = path.join(FIXTURE, 'lenet.cfg');
const weightsFile = path.join(FIXTURE, 'lenet.weights');

describe('[reference] .weights', () => {
  const spec = readCfg(cfgFile);
  const bytes = fs.readFileSync(weightsFile);

  test('[reference] reads darknet\'s LeNet-5 file: header 0.2.0, seen 300160, 432,080 floats', () => {
    const w = parseWeights(bytes, spec, weightsFile);
    expect(w.header).toEqual({ major: 0, minor: 2, revision: 0, seen: 300160 });
    expect(expectedFloats(spec, true)).toBe(432080);
    expect(bytes.length).toBe(20 + 4 * 432080);
    // conv1: 20 biases then 20 * 3 * 5 * 5 weights, as darknet lays them out
    expect(w.layers[0].biases!.length).toBe(20);
    expect(w.layers[0].weights!.length).toBe(1500);
    expect(w.layers[0].biases![0]).toBe(bytes.readFloatLE(20));
    expect(w.layers[0].weights![0]).toBe(bytes.readFloatLE(20 + 4 * 20));
    expect(w.layers[1]).toEqual({}); // maxpool
  });

  test('[reference] loading and saving unchanged gives identical bytes', () => {
    const again = serializeWeights(parseWeights(bytes, spec, weightsFile), spec);
    expect(Buffer.compare(again, bytes)).toBe(0);
  });

  test('[reference] old headers (int32 seen) and transposed connected weights round-trip', () => {
    const w = parseWeights(bytes, spec, weightsFile);
    for (const header of [
      { major: 0, minor: 1, revision: 0, seen: 1234 },
      { major: 1001, minor: 0, revision: 0, seen: 77 },
    ]) {
      const buf = serializeWeights({ ...w, header }, spec);
      expect(buf.length).toBe(16 + 4 * 432080); // both headers store seen as int32
      const back = parseWeights(buf, spec, 'x.weights');
      expect(back.header).toEqual(header);
      expect(Buffer.compare(Buffer.from(back.layers[4].weights!.buffer), Buffer.from(w.layers[4].weights!.buffer))).toBe(0);
      expect(Buffer.compare(serializeWeights(back, spec), buf)).toBe(0);
    }
    // In the transposed layout the first stored connected weight row is input 0 of every output.
    const t = serializeWeights({ ...w, header: { major: 1001, minor: 0, revision: 0, seen: 0 } }, spec);
    const fcOffset = 16 + 4 * (20 + 1500 + 50 + 25000 + 500);
    expect(t.readFloatLE(fcOffset + 4)).toBe(w.layers[4].weights![800]); // [in 0][out 1] = W[1][0]
  });

  test('[reference] truncated and oversized files are errors naming both sizes', () => {
    expect(() => parseWeights(bytes.subarray(0, bytes.length - 4), spec, 'short.weights')).toThrow(
      /short\.weights: too short .*needs 432080 floats \(1728340 bytes\), the file has 432079 \(1728336 bytes\)/,
    );
    expect(() => parseWeights(Buffer.concat([bytes, Buffer.alloc(8)]), spec, 'long.weights')).toThrow(/long\.weights: too long/);
    expect(() => parseWeights(bytes.subarray(0, 10), spec, 'tiny.weights')).toThrow(/tiny\.weights: 10 bytes is too short/);
    expect(() => parseWeights(bytes.subarray(0, 18), spec, 'cut.weights')).toThrow(
      'cut.weights: truncated header: version 0.2.0 needs 20 bytes, the file has 18',
    );
    expect(() => parseWeights(bytes.subarray(0, 20), spec, 'header.weights')).toThrow(
      /header\.weights: too short .*needs 432080 floats \(1728340 bytes\), the file has 0 \(20 bytes\)/,
    );
    expect(() => parseWeights(bytes.subarray(0, 23), spec, 'odd.weights')).toThrow(/the file has 0\.75 \(23 bytes\)/);
  });

  test('[reference] seen up to 2^53 - 1 is read exactly; above it, or negative, the header is refused as corrupt', () => {
    const withSeen = (write: (b: Buffer) => void) => {
      const b = Buffer.from(bytes);
      write(b);
      return b;
    };
    const max = withSeen((b) => b.writeBigUInt64LE(BigInt(Number.MAX_SAFE_INTEGER), 12));
    expect(parseWeights(max, spec, 'max.weights').header.seen).toBe(Number.MAX_SAFE_INTEGER);
    expect(Buffer.compare(serializeWeights(parseWeights(max, spec, 'max.weights'), spec), max)).toBe(0);

    const huge = withSeen((b) => b.writeBigUInt64LE(2n ** 64n - 1n, 12));
    expect(() => parseWeights(huge, spec, 'huge.weights')).toThrow(DarknetError);
    expect(() => parseWeights(huge, spec, 'huge.weights')).toThrow(
      'huge.weights: corrupt header: seen = 18446744073709551615 images is more than 9007199254740991 (2^53 - 1), the most this program counts',
    );
    const old = serializeWeights({ ...parseWeights(bytes, spec, 'x'), header: { major: 0, minor: 1, revision: 0, seen: 0 } }, spec);
    old.writeInt32LE(-1, 12);
    expect(() => parseWeights(old, spec, 'neg.weights')).toThrow('neg.weights: corrupt header: seen = -1 images is negative');
  });

  test('[reference] a header that cannot be written is a DarknetError naming the file', () => {
    const w = parseWeights(bytes, spec, weightsFile);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-weights-'));
    try {
      const target = path.join(dir, 'x.weights');
      expect(() => writeWeights(target, { ...w, header: { major: 0, minor: 1, revision: 0, seen: 2 ** 31 } }, spec)).toThrow(
        `${target}: cannot save seen = 2147483648 images in a version 0.1.0 header: it holds an int up to 2147483647`,
      );
      expect(() => serializeWeights({ ...w, header: { major: 0, minor: 2, revision: 0, seen: 2 ** 64 } }, spec)).toThrow(DarknetError);
      expect(() => serializeWeights({ ...w, header: { major: 0, minor: 2, revision: 0, seen: 1.5 } }, spec)).toThrow(DarknetError);
      expect(() => serializeWeights({ ...w, header: { major: -1, minor: 2, revision: 0, seen: 1 } }, spec)).toThrow(
        /header version -1\.2\.0: each part must be an int from 0 to 2147483647/,
      );
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('[reference] a file that is not darknet weights is refused', () => {
    const junk = Buffer.alloc(bytes.length);
    junk.writeInt32LE(-5, 0);
    expect(() => parseWeights(junk, spec, 'junk.weights')).toThrow(/junk\.weights: not a darknet \.weights file/);
    expect(() => readWeights('/nonexistent/x.weights', spec)).toThrow(/\/nonexistent\/x\.weights: cannot read weights/);
  });

  test('[reference] dontload / dontsave / dontloadscales change the expected layout', () => {
    const base = fs.readFileSync(cfgFile, 'utf8');
    const skipFirst = parseCfg(base.replace('filters=20', 'filters=20\ndontload=1'), 'a.cfg');
    expect(expectedFloats(skipFirst, true)).toBe(432080 - 1520);
    expect(expectedFloats(skipFirst, false)).toBe(432080);
    const bn = parseCfg(base.replace('filters=20', 'filters=20\nbatch_normalize=1\ndontloadscales=1'), 'b.cfg');
    expect(expectedFloats(bn, false)).toBe(432080 + 60);
    expect(expectedFloats(bn, true)).toBe(432080);
  });

  test('[reference] a file read with dontloadscales saves darknet\'s initial batch-norm values; a dontload layer cannot be saved', () => {
    const base = fs.readFileSync(cfgFile, 'utf8');
    const bn = parseCfg(base.replace('filters=20', 'filters=20\nbatch_normalize=1\ndontloadscales=1'), 'b.cfg');
    const saved = serializeWeights(parseWeights(bytes, bn, 'x.weights'), bn);
    expect(saved.length).toBe(bytes.length + 4 * 60);
    const floats = (from: number, n: number) => Array.from({ length: n }, (_, i) => saved.readFloatLE(20 + 4 * (from + i)));
    // conv1: biases, then scales (1), rolling mean (0) and rolling variance (0), then weights
    expect(floats(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => bytes.readFloatLE(20 + 4 * i)));
    expect(floats(20, 20)).toEqual(new Array(20).fill(1));
    expect(floats(40, 40)).toEqual(new Array(40).fill(0));
    expect(Buffer.compare(saved.subarray(20 + 4 * 80), bytes.subarray(20 + 4 * 20))).toBe(0);

    const skipFirst = parseCfg(base.replace('filters=20', 'filters=20\ndontload=1'), 'a.cfg');
    const file = Buffer.concat([bytes.subarray(0, 20), bytes.subarray(20 + 4 * 1520)]);
    const w = parseWeights(file, skipFirst, 'x.weights');
    expect(() => serializeWeights(w, skipFirst)).toThrow(DarknetError);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-weights-'));
    try {
      expect(() => writeWeights(path.join(dir, 'out.weights'), w, skipFirst)).toThrow(
        `${path.join(dir, 'out.weights')}: layer 0 convolutional (line 16) has dontload=1, so its biases were never read: there is nothing to save for them`,
      );
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('[reference] saving is atomic: a failed write leaves the old file and no temporary', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-weights-'));
    const target = path.join(dir, 'lenet.weights');
    fs.writeFileSync(target, bytes);
    const w = parseWeights(bytes, spec, weightsFile);
    w.layers[0].weights = new Float32Array(3); // wrong size: serialising throws before anything is written
    expect(() => writeWeights(target, w, spec)).toThrow(/layer 0 convolutional: weights has 3 floats, the cfg needs 1500/);
    expect(Buffer.compare(fs.readFileSync(target), bytes)).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['lenet.weights']);
    fs.rmSync(dir, { recursive: true });
  });
});
