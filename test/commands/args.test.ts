/**
 * Bad input through the real CLI parser (main(), in process): every numeric flag refuses
 * NaN, negatives, zero where meaningless, fractions where a count is meant and absurd
 * sizes, by name, with exit code 1 and never an internal error; options that would be
 * silently ignored are refused; file-system mistakes are one line, found before work starts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseLevels } from '../../src/commands/args';
import { main, type Io } from '../../src/commands/cli';
import { readCfg } from '../../src/cfg/parser';
import { exportMnist } from '../../src/data/mnist-export';
import { Network } from '../../src/engine/network';
import { serializeWeights } from '../../src/io/weights';
import { ReferenceKernels } from '../../src/kernels/reference';

const dir = path.join(os.tmpdir(), `dts-args-${process.pid}`);
const CFG = path.resolve(__dirname, '..', '..', 'cfg', 'lenet-300-100.cfg');
let dataFile: string;
let weights: string;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main([...argv, '--backend', 'reference'], io);
  return { code, out, err };
}

beforeAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  ({ dataFile } = exportMnist(path.join(dir, 'mnist'), { limit: 50 }));
  const spec = readCfg(CFG);
  const net = new Network(spec, new ReferenceKernels());
  weights = path.join(dir, 'start.weights');
  fs.writeFileSync(weights, serializeWeights(net.exportWeights(), spec));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const train = () => ['classifier', 'train', dataFile, CFG];
const valid = () => ['classifier', 'valid', dataFile, CFG, weights];
const predict = () => ['classifier', 'predict', dataFile, CFG, weights, 'x.png'];
const prune = () => ['prune', dataFile, CFG, weights, '--out', path.join(dir, 'never')];
const threshold = () => ['prune', 'threshold', CFG, weights, path.join(dir, 'never.weights')];
const sensitivity = () => ['sensitivity', dataFile, CFG, weights, '--out', path.join(dir, 'never')];
const CASES: Array<[string, () => string[], string, string[]]> = [
  ['classifier train', train, 'max-batches', ['abc', '-1', '0', '2.5', '1e12']],
  ['classifier train', train, 'backup-every', ['abc', '0', '1.5']],
  ['classifier train', train, 'log-every', ['NaN', '-3']],
  ['classifier train', train, 'seed', ['x', '-1', '0.5', '1e20']],
  ['classifier train', train, 'lr-scale', ['abc', '0', '-1', '1e30', 'Infinity']],
  ['classifier valid', valid, 'batch', ['0', '-1', 'abc', '1e8', '2.5']],
  ['classifier predict', predict, 'top', ['0', 'abc', '1.5']],
  ['prune', prune, 'rounds', ['0', '100000000', '2.5', 'abc']],
  ['prune', prune, 'target', ['0', '1', '1.5', 'abc', '-0.1']],
  ['prune', prune, 'retrain-batches', ['-1', '2.5', 'x']],
  ['prune', prune, 'lr-scale', ['abc', '0', '1e30']],
  ['prune', prune, 'eval-images', ['0', '-5', '1.5']],
  ['prune', prune, 'seed', ['abc']],
  ['prune threshold', threshold, 'sparsity', ['abc', '-0.5', '2']],
  ['prune threshold', threshold, 'absolute', ['abc', '-1']],
  ['prune threshold', threshold, 'std', ['NaN', '-2']],
  ['sensitivity', sensitivity, 'eval-images', ['0', 'abc']],
  ['sensitivity', sensitivity, 'levels', ['0:0.9:0.0000001', 'a:b:c', '0:0.5', '0.5,2', '']],
];
describe('numeric flags', () => {
  test.each(CASES.map(([verb, args, flag, values]) => ({ verb, args, flag, values })))('$verb --$flag refuses $values by name', async ({ args, flag, values }) => {
    for (const v of values) {
      const r = await run(...args(), `--${flag}`, v);
      expect({ value: v, code: r.code }).toEqual({ value: v, code: 1 });
      expect(r.err).toContain(`--${flag}`);
      expect(r.err).not.toMatch(/internal error|undefined/);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
  });

  test('--levels with millions of steps is refused before it is planned', () => {
    expect(() => parseLevels('0:0.9:0.0000001')).toThrow(/9000001 levels; at most 1000/);
    expect(parseLevels('0:0.2:0.05')).toEqual([0, 0.05, 0.1, 0.15, 0.2]);
  });
});

describe('options that would be ignored, and files', () => {
  test('--layer-sparsity without --mode sensitivity is refused, not ignored', async () => {
    const r = await run(...prune(), '--layer-sparsity', 'fc1=0.5');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--layer-sparsity sets per-layer final rates for --mode sensitivity; add --mode sensitivity/);
  });

  test('--sensitivity naming a missing file or a folder is one line', async () => {
    for (const f of [path.join(dir, 'missing.csv'), dir]) {
      const r = await run(...prune(), '--mode', 'sensitivity', '--sensitivity', f);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/--sensitivity .*(cannot read \(ENOENT\)|not a file)/);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
  });

  test('--out naming an existing file is refused by prune, sensitivity and data mnist', async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    for (const argv of [
      ['prune', dataFile, CFG, weights, '--out', file],
      ['sensitivity', dataFile, CFG, weights, '--out', file],
      ['data', 'mnist', '--out', file],
    ]) {
      const r = await run(...argv);
      expect({ argv: argv[0], code: r.code }).toEqual({ argv: argv[0], code: 1 });
      expect(r.err).toMatch(/a-file/);
      expect(r.err).not.toMatch(/internal error/);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });

  test("a .data file whose backup= names a file is refused before training starts", async () => {
    const file = path.join(dir, 'backup-file');
    fs.writeFileSync(file, 'x');
    const d = path.join(dir, 'bad-backup.data');
    fs.writeFileSync(d, fs.readFileSync(dataFile, 'utf8').replace(/^backup=.*$/m, `backup=${file}`));
    const r = await run('classifier', 'train', d, CFG, '--max-batches', '1');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/backup-file/);
    expect(r.err).not.toMatch(/backend:|internal error/);
  });

  test('an empty valid list is an error, not top 1: NaN', async () => {
    const list = path.join(dir, 'empty.list');
    fs.writeFileSync(list, '\n');
    const d = path.join(dir, 'empty-valid.data');
    fs.writeFileSync(d, fs.readFileSync(dataFile, 'utf8').replace(/^valid=.*$/m, `valid=${list}`));
    const r = await run('classifier', 'valid', d, CFG, weights);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/empty/);
    expect(r.out).not.toMatch(/NaN/);
  });
});
