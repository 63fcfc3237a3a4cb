import { join } from 'path';
import { main, type Io } from '../../src/commands/cli';

const FIXTURE = join(__dirname, '..', 'fixtures', 'darknet-lenet', 'lenet.cfg');

/** Runs the CLI with captured output. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(argv, io);
  return { code, out, err };
}

describe('darknet-ts CLI', () => {
  const savedBackend = process.env.DARKNET_TS_BACKEND;
  afterEach(() => {
    if (savedBackend === undefined) delete process.env.DARKNET_TS_BACKEND;
    else process.env.DARKNET_TS_BACKEND = savedBackend;
  });

  test('summary prints the layer table', async () => {
    const { code, out, err } = await run('summary', FIXTURE);
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).toMatch(/^layer     filters    size              input                output/);
    expect(out).toContain('    0 conv     20  5 x 5 / 1    28 x  28 x   3   ->    24 x  24 x  20  0.002 BFLOPs');
    expect(out).toContain('total parameters  432,080');
  });

  test('a bad option fails with one line', async () => {
    const { code, out, err } = await run('summary', FIXTURE, '--bogus');
    expect(code).not.toBe(0);
    expect(out).toBe('');
    expect(err).toBe('darknet-ts: Unknown argument: bogus (see darknet-ts --help)\n');
  });

  test('a bad backend fails with one line', async () => {
    const { code, err } = await run('summary', FIXTURE, '--backend', 'gpu');
    expect(code).toBe(1);
    expect(err.trimEnd().split('\n')).toHaveLength(1);
    expect(err).toMatch(/^darknet-ts: Invalid values: Argument: backend, Given: "gpu"/);
  });

  test('a bad DARKNET_TS_BACKEND is named', async () => {
    process.env.DARKNET_TS_BACKEND = 'gpu';
    const { code, err } = await run('summary', FIXTURE);
    expect(code).toBe(1);
    expect(err).toMatch(/^darknet-ts: DARKNET_TS_BACKEND=gpu is not a backend; choose one of auto, /);
  });

  test('a missing argument or command fails with one line', async () => {
    for (const argv of [['summary'], []]) {
      const { code, err } = await run(...argv);
      expect(code).toBe(1);
      expect(err).toMatch(/^darknet-ts: .+\n$/);
    }
  });

  test('a missing cfg file is named', async () => {
    const { code, out, err } = await run('summary', 'no/such.cfg');
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toBe('darknet-ts: no/such.cfg: cannot read cfg file (no such file)\n');
  });

  test('cfg errors are printed once, with file:line', async () => {
    const { code, err } = await run('summary', join(__dirname, '..', '..', 'package.json'));
    expect(code).toBe(1);
    expect(err).toMatch(/^darknet-ts: .*package\.json:1: malformed line/);
    expect(err.trimEnd().split('\n')).toHaveLength(1);
  });

  test('summary with weights adds non-zeros, sparsity and effective BFLOPs counted from the file', async () => {
    const { code, out } = await run('summary', FIXTURE, FIXTURE.replace(/\.cfg$/, '.weights'));
    expect(code).toBe(0);
    expect(out).toMatch(/seen\s+300,160/);
    expect(out).toMatch(/weights \(conv, connected\)\s+431,500/);
    expect(out).toMatch(/sparsity\s+0\.0%/);
  });

  test('summary with a missing weights file is one clear error', async () => {
    const { code, out, err } = await run('summary', FIXTURE, 'x.weights');
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toBe('darknet-ts: x.weights: cannot read weights (ENOENT)\n');
  });

  test('--help prints usage and succeeds', async () => {
    const { code, out, err } = await run('--help');
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).toContain('summary <cfg> [weights]');
    expect(out).toContain('--backend');
  });
});
