/**
 * .weights read/write against a file darknet itself wrote
 * (../shared/fixtures/darknet-lenet/lenet.weights): byte round trip, header versions,
 * and clear errors for files of the wrong size or kind.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCfg, readCfg } from '../src/parser';
import { expectedFloats, parseWeights, readWeights, serializeWeights, writeWeights } from '../src/weights';

const FIXTURE = path.resolve(__dirname, '../../shared/fixtures/darknet-lenet');
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
