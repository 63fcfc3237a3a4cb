/**
 * Fuzz campaign over the cfgs we ship: seeded mutations (byte flips, lost and repeated
 * lines, absurd numbers, strange section names, CR / LF / NUL / ESC bytes) must each end
 * in a spec or a DarknetError of one short line, never another exception. Specs that
 * parse must also have a finite memory estimate and .weights layout.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { DarknetError } from '../../src/errors';
import { parseCfg } from '../../src/cfg/parser';
import { estimateNetworkMemory } from '../../src/cfg/memory';
import { mulberry32 } from '../../src/engine/random';
import { expectedFloats } from '../../src/io/weights';

const ROOT = join(__dirname, '..', '..');
const SOURCES = ['cfg/lenet.cfg', 'cfg/lenet-300-100.cfg', 'test/fixtures/darknet-lenet/lenet.cfg'];
/** Not shipped, but every section type, so that mutations reach route, shortcut, cost, ... */
const EVERY_LAYER = [
  '[net]', 'batch=8', 'subdivisions=2', 'height=12', 'width=12', 'channels=2', 'policy=steps', 'steps=10,20', 'scales=.1,.1',
  '[convolutional]', 'filters=4', 'size=3', 'pad=1', 'groups=2', 'batch_normalize=1', 'activation=leaky',
  '[batchnorm]',
  '[shortcut]', 'from=-2', 'activation=linear',
  '[route]', 'layers=-1,-3',
  '[maxpool]', 'size=2', 'stride=2',
  '[dropout]', 'probability=.5',
  '[avgpool]',
  '[connected]', 'output=10', 'batch_normalize=1', 'activation=relu',
  '[softmax]', 'groups=1', 'temperature=1',
  '[cost]', 'type=sse',
].join('\n');
/** a few seconds on one core */
const CASES = 4000;
/** the longest message a person should have to read */
const MAX_MESSAGE = 300;

type Random = () => number;
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Random, n: number) => Math.floor(r() * n);

const NUMBERS = [
  '0', '-1', '-2147483648', '2147483647', '2147483648', '4294967296', '99999999999999999999', '1e309', '-1e309',
  'NaN', 'Infinity', '-Infinity', '0.5', '1e-320', '0x10', '+7', '--1', '', '100000', '65536', '3.0',
];
const SECTIONS = [
  'net', 'network', 'conv', 'convolutional', 'connected', 'conn', 'maxpool', 'max', 'avgpool', 'avg', 'softmax', 'soft',
  'dropout', 'cost', 'route', 'shortcut', 'batchnorm', 'yolo', '', '[', ']', '__proto__', 'constructor', 'toString', 'ñ',
];
const KEYS = [
  'filters', 'size', 'stride', 'pad', 'padding', 'groups', 'output', 'batch', 'subdivisions', 'height', 'width', 'channels',
  'inputs', 'layers', 'from', 'probability', 'groups', 'temperature', 'batch_normalize', 'policy', 'steps', 'scales',
  'activation', 'type', 'learning_rate', 'dontload', 'dontloadscales', '__proto__',
];
const BYTES = ['\r', '\n', '\r\n', '\0', '\x1b', '\x1b[31m', '\x1b]0;title\x07', '\t', '\u2028', '\ufeff', '\x85', '\x7f', '\ufffd'];


/** One mutation of cfg text. */
const MUTATIONS: ((text: string, r: Random) => string)[] = [
  // flip random bits of a random byte (as a file read with readFileSync(..., 'utf8') would decode it)
  (t, r) => {
    const b = Buffer.from(t, 'utf8');
    if (b.length === 0) return t;
    b[int(r, b.length)] ^= 1 << int(r, 8);
    return b.toString('utf8');
  },
  // delete a line
  (t, r) => {
    const lines = t.split('\n');
    lines.splice(int(r, lines.length), 1);
    return lines.join('\n');
  },
  // duplicate a line somewhere else
  (t, r) => {
    const lines = t.split('\n');
    lines.splice(int(r, lines.length + 1), 0, pick(r, lines));
    return lines.join('\n');
  },
  // replace a number with an absurd one
  (t, r) => {
    const numbers = [...t.matchAll(/-?\d+(\.\d+)?/g)];
    if (numbers.length === 0) return t;
    const m = pick(r, numbers);
    return t.slice(0, m.index) + pick(r, NUMBERS) + t.slice(m.index! + m[0].length);
  },
  // rename a section
  (t, r) => {
    const headers = [...t.matchAll(/\[[^\]\n]*\]/g)];
    if (headers.length === 0) return t;
    const m = pick(r, headers);
    return `${t.slice(0, m.index)}[${pick(r, SECTIONS)}]${t.slice(m.index! + m[0].length)}`;
  },
  // insert a new section or key line
  (t, r) => {
    const lines = t.split('\n');
    const line = r() < 0.4 ? `[${pick(r, SECTIONS)}]` : `${pick(r, KEYS)}=${r() < 0.7 ? pick(r, NUMBERS) : pick(r, ['-1,-2', '0,99', '-1', 'leaky', 'x'])}`;
    lines.splice(int(r, lines.length + 1), 0, line);
    return lines.join('\n');
  },
  // insert CR / LF / NUL / ESC and other odd bytes
  (t, r) => {
    const at = int(r, t.length + 1);
    return t.slice(0, at) + pick(r, BYTES) + t.slice(at);
  },
  // change every line ending
  (t, r) => t.replace(/\n/g, pick(r, ['\r', '\r\n', '\n\r', '\r\r\n'])),
  // cut the file short
  (t, r) => t.slice(0, int(r, t.length + 1)),
  // a value repeated into a very long one
  (t, r) => {
    const values = [...t.matchAll(/^([^=\r\n]*)=([^\r\n]+)/gm)];
    if (values.length === 0) return t;
    const m = pick(r, values);
    const long = Array(200).fill(m[2]).join(pick(r, ['', ',']));
    return `${t.slice(0, m.index)}${m[1]}=${long}${t.slice(m.index! + m[0].length)}`;
  },
  // swap two lines
  (t, r) => {
    const lines = t.split('\n');
    const i = int(r, lines.length);
    const j = int(r, lines.length);
    [lines[i], lines[j]] = [lines[j], lines[i]];
    return lines.join('\n');
  },
];

/** Runs one mutated cfg; returns a description of what went wrong, or undefined. */
function check(text: string): string | undefined {
  try {
    const spec = parseCfg(text, 'fuzz.cfg');
    const m = estimateNetworkMemory(spec);
    if (!Object.values(m).every((x) => Number.isFinite(x) && x >= 0)) return `estimate not finite: ${JSON.stringify(m)}`;
    for (const forLoad of [true, false]) {
      const n = expectedFloats(spec, forLoad);
      if (!Number.isSafeInteger(n) || n < 0) return `expectedFloats(${forLoad}) = ${n}`;
    }
    return undefined;
  } catch (e) {
    if (!(e instanceof DarknetError)) return `${(e as Error)?.name}: ${(e as Error)?.stack ?? String(e)}`;
    if (/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(e.message)) return `message not one clean line: ${JSON.stringify(e.message)}`;
    if (e.message.length > MAX_MESSAGE) return `message of ${e.message.length} characters: ${e.message.slice(0, 200)}…`;
    return undefined;
  }
}

test(`fuzz: ${CASES} mutated cfgs parse or fail with one short DarknetError line`, () => {
  const sources = [...SOURCES.map((p) => readFileSync(join(ROOT, p), 'utf8')), EVERY_LAYER];
  expect(sources.map((t) => check(t))).toEqual(sources.map(() => undefined));
  expect(parseCfg(EVERY_LAYER, 'every.cfg').layers).toHaveLength(10);
  const random = mulberry32(0x8fa1);
  const failures: string[] = [];
  let parsed = 0;
  for (let i = 0; i < CASES; i++) {
    let text = pick(random, sources);
    const rounds = 1 + int(random, 4);
    for (let k = 0; k < rounds; k++) text = pick(random, MUTATIONS)(text, random);
    const problem = check(text);
    if (problem) failures.push(`case ${i}: ${problem}\n  input: ${JSON.stringify(text).slice(0, 2000)}`);
    else {
      try {
        parseCfg(text, 'fuzz.cfg');
        parsed++;
      } catch {
        // a DarknetError, already checked
      }
    }
  }
  expect(failures.slice(0, 5)).toEqual([]);
  // the campaign must exercise both outcomes
  expect(parsed).toBeGreaterThan(CASES / 20);
  expect(parsed).toBeLessThan(CASES);
});
