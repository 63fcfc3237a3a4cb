/**
 * Fuzz campaign over .weights buffers: darknet's own LeNet file and a small file for
 * every layer type, truncated, extended, and with mutated headers (seen = 2^64 - 1
 * included). Each must parse or fail with a DarknetError of one short line; what parses
 * must serialise again (to a file of the size the cfg saves).
 */
import * as fs from 'fs';
import * as path from 'path';
import { DarknetError } from '../../src/errors';
import type { NetworkSpec } from '../../src/cfg/config';
import { parseCfg, readCfg } from '../../src/cfg/parser';
import { mulberry32 } from '../../src/engine/random';
import { expectedFloats, parseWeights, serializeWeights } from '../../src/io/weights';

const FIXTURE = path.resolve(__dirname, '../fixtures/darknet-lenet');
/** a few seconds on one core */
const CASES = 3000;
const MAX_MESSAGE = 300;

type Random = () => number;
const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[int(r, xs.length)];

/** A small network with batch norm in conv and connected layers, and a dontloadscales layer. */
const SMALL = parseCfg([
  '[net]', 'height=6', 'width=6', 'channels=2',
  '[conv]', 'filters=3', 'size=3', 'batch_normalize=1',
  '[max]', 'size=2', 'stride=2',
  '[conn]', 'output=5', 'batch_normalize=1', 'dontloadscales=1',
  '[conn]', 'output=4',
  '[softmax]',
].join('\n'), 'small.cfg');

/** A file for `spec` with header version major.minor and random floats. */
function weightsFor(spec: NetworkSpec, r: Random, major: number, minor: number): Buffer {
  const wide = major * 10 + minor >= 2 && major < 1000 && minor < 1000;
  const header = wide ? 20 : 16;
  const b = Buffer.alloc(header + 4 * expectedFloats(spec, true));
  b.writeInt32LE(major, 0);
  b.writeInt32LE(minor, 4);
  for (let o = header; o < b.length; o += 4) b.writeFloatLE(r() * 2 - 1, o);
  return b;
}

const INT32S = [0, 1, 2, 999, 1000, 1001, 2 ** 31 - 1, -1, -(2 ** 31)];
const UINT64S = [0n, 1n, 2n ** 31n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** One mutation of a .weights buffer. */
const MUTATIONS: ((b: Buffer, r: Random) => Buffer)[] = [
  (b, r) => b.subarray(0, int(r, b.length + 1)), // truncate anywhere
  (b, r) => b.subarray(0, pick(r, [0, 4, 12, 15, 16, 19, 20, 21])), // a header, or part of one
  (b, r) => Buffer.concat([b, Buffer.alloc(1 + int(r, 8), int(r, 256))]), // appended bytes
  (b, r) => { // a header field set to an edge value
    const c = Buffer.from(b);
    if (c.length >= 12) c.writeInt32LE(pick(r, INT32S), 4 * int(r, 3));
    return c;
  },
  (b, r) => { // seen set to an edge value, 64 or 32 bits wide
    const c = Buffer.from(b);
    if (c.length >= 20 && r() < 0.7) c.writeBigUInt64LE(pick(r, UINT64S), 12);
    else if (c.length >= 16) c.writeInt32LE(pick(r, INT32S), 12);
    return c;
  },
  (b, r) => { // flip a bit in the header
    const c = Buffer.from(b);
    if (c.length > 0) c[int(r, Math.min(20, c.length))] ^= 1 << int(r, 8);
    return c;
  },
  (b, r) => { // flip a bit anywhere (NaN and infinite floats included)
    const c = Buffer.from(b);
    if (c.length > 0) c[int(r, c.length)] ^= 1 << int(r, 8);
    return c;
  },
];

/** What went wrong with one buffer, or undefined. */
function check(buf: Buffer, spec: NetworkSpec): string | undefined {
  try {
    const w = parseWeights(buf, spec, 'fuzz.weights');
    if (!Number.isSafeInteger(w.header.seen) || w.header.seen < 0) return `seen = ${w.header.seen}`;
    const again = serializeWeights(w, spec);
    // dontloadscales arrays are not read but are saved (with darknet's initial values)
    const saved = buf.length + 4 * (expectedFloats(spec, false) - expectedFloats(spec, true));
    if (again.length !== saved) return `saved ${again.length} bytes from ${buf.length}, expected ${saved}`;
    if (saved === buf.length && !again.equals(buf)) return 'saved different bytes';
    return undefined;
  } catch (e) {
    if (!(e instanceof DarknetError)) return `${(e as Error)?.name}: ${(e as Error)?.stack ?? String(e)}`;
    if (/[\x00-\x1f\x7f-\x9f]/.test(e.message)) return `message not one clean line: ${JSON.stringify(e.message)}`;
    if (e.message.length > MAX_MESSAGE) return `message of ${e.message.length} characters: ${e.message.slice(0, 200)}…`;
    return undefined;
  }
}

test(`fuzz: ${CASES} mutated .weights buffers parse or fail with one short DarknetError line`, () => {
  const lenet = readCfg(path.join(FIXTURE, 'lenet.cfg'));
  const darknetFile = fs.readFileSync(path.join(FIXTURE, 'lenet.weights'));
  const random = mulberry32(0x5eed);
  const failures: string[] = [];
  const outcomes = { parsed: 0, refused: 0 };
  for (let i = 0; i < CASES; i++) {
    // darknet's own file in one case in 20 (it is 1.7 MB); small files of every header kind otherwise
    const big = i % 20 === 0;
    const spec = big ? lenet : SMALL;
    let buf = big ? darknetFile : weightsFor(SMALL, random, pick(random, [0, 0, 1, 1001]), pick(random, [1, 2, 1001]));
    const rounds = int(random, 3); // 0 to 2 mutations: unmutated files must parse
    for (let k = 0; k < rounds; k++) buf = pick(random, MUTATIONS)(buf, random);
    const problem = check(buf, spec);
    if (problem) failures.push(`case ${i}: ${problem}`);
    else {
      try {
        parseWeights(buf, spec, 'fuzz.weights');
        outcomes.parsed++;
      } catch {
        outcomes.refused++;
      }
    }
  }
  expect(failures.slice(0, 5)).toEqual([]);
  expect(outcomes.parsed).toBeGreaterThan(CASES / 10);
  expect(outcomes.refused).toBeGreaterThan(CASES / 10);
});

test('seen = 2^64 - 1 in darknet\'s file is refused in one line, and every header-only file is too', () => {
  const spec = readCfg(path.join(FIXTURE, 'lenet.cfg'));
  const b = Buffer.from(fs.readFileSync(path.join(FIXTURE, 'lenet.weights')));
  b.writeBigUInt64LE(2n ** 64n - 1n, 12);
  expect(check(b, spec)).toBeUndefined();
  expect(() => parseWeights(b, spec, 'x.weights')).toThrow(/^x\.weights: corrupt header: seen = 18446744073709551615/);
  for (let n = 0; n <= 24; n++) {
    const header = b.subarray(0, n);
    expect(() => parseWeights(header, spec, 'x.weights')).toThrow(DarknetError);
    expect(check(header, spec)).toBeUndefined();
  }
});
