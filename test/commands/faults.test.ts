/**
 * Nothing lost, tried as a user meets it: the real CLI (bin/darknet-ts.js, built by
 * `npm test`) in a child process, real signals, real files. Ctrl-C / SIGTERM during
 * `classifier train`, `prune` and `prune --structure channel`, resuming, a weights file whose `seen` is not a multiple
 * of the batch, NaN training, prune resume against a stale or broken report, saving
 * through a symlink and refusing what is not a regular file, `prune channels --layers`
 * writing a smaller model and refusing without writing.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readCfg } from '../../src/cfg/parser';
import { exportMnist } from '../../src/data/mnist-export';
import { readWeights, serializeWeights } from '../../src/io/weights';
import { RESIDUAL } from '../prune/channels/cases';
import { randomWeights } from '../prune/channels/nets';
import { smallCfg, smallResidualCfg } from '../small-net';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'darknet-ts.js');

const CFG = smallCfg(100000);

// (a fixed name: a random mkdtemp suffix could contain a label such as 'c3')
const dir = path.join(os.tmpdir(), `dts-faults-${process.pid}`);
let dataFile: string;
let cfgFile: string;

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  /** ms from the signal to the exit */
  afterSignal: number;
}

/**
 * Runs the CLI; with `signal`, sends it once stderr matches `when` and measures how long
 * the process takes to exit after it.
 */
function cli(args: string[], o: { signal?: NodeJS.Signals; when?: RegExp; timeoutMs?: number } = {}): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--backend', 'wasm-simd'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sentAt = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`darknet-ts ${args.join(' ')} did not end in time; stderr: ${err.slice(-500)}`));
    }, o.timeoutMs ?? 60_000);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (o.signal && !sentAt && o.when && o.when.test(err)) {
        sentAt = Date.now();
        child.kill(o.signal);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, afterSignal: sentAt ? Date.now() - sentAt : -1 });
    });
  });
}

beforeAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  ({ dataFile } = exportMnist(path.join(dir, 'mnist'), { limit: 400 }));
  cfgFile = path.join(dir, 'small.cfg');
  fs.writeFileSync(cfgFile, CFG);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('signals', () => {
  test('SIGINT during classifier train stops within a second of the batch, saves a backup, says how to resume; the backup resumes', async () => {
    const backup = path.join(dir, 'sigint');
    const r = await cli(['classifier', 'train', dataFile, cfgFile, '--backup', backup, '--log-every', '5'], { signal: 'SIGINT', when: /\n20, /, timeoutMs: 120_000 });
    expect(r.code).toBe(130);
    expect(r.afterSignal).toBeLessThan(3000);
    expect(r.err).toMatch(/interrupted at batch (\d+): saved .*small\.backup; resume with: darknet-ts classifier train/);
    const stoppedAt = Number(/interrupted at batch (\d+)/.exec(r.err)![1]);
    expect(stoppedAt).toBeGreaterThanOrEqual(20);
    expect(stoppedAt).toBeLessThan(100000);
    const spec = readCfg(cfgFile);
    const saved = readWeights(path.join(backup, 'small.backup'), spec);
    expect(saved.header.seen).toBe(stoppedAt * 16);
    expect(fs.existsSync(path.join(backup, 'small.weights'))).toBe(false);

    // The same command with the backup: seen and the schedule continue.
    const more = await cli(['classifier', 'train', dataFile, cfgFile, path.join(backup, 'small.backup'), '--backup', backup, '--max-batches', String(stoppedAt + 5)]);
    expect(more.code).toBe(0);
    expect(more.err).toContain(`(seen ${stoppedAt * 16})`);
    expect(readWeights(path.join(backup, 'small.weights'), spec).header.seen).toBe((stoppedAt + 5) * 16);
  });

  test('SIGTERM during prune keeps finished rounds and the round in progress; the same command resumes', async () => {
    const dense = path.join(dir, 'dense');
    expect((await cli(['classifier', 'train', dataFile, cfgFile, '--backup', dense, '--max-batches', '30'])).code).toBe(0);
    const out = path.join(dir, 'prune-term');
    const args = ['prune', dataFile, cfgFile, path.join(dense, 'small.weights'), '--out', out, '--rounds', '3', '--target', '0.7', '--retrain-batches', '2000', '--eval-images', '100'];
    const r = await cli(args, { signal: 'SIGTERM', when: /round 2: pruned top-1/, timeoutMs: 120_000 });
    expect(r.code).toBe(143);
    expect(r.afterSignal).toBeLessThan(3000);
    expect(r.err).toMatch(/interrupted: 1 of 3 rounds done .*round 2's retraining saved in .*small_round2\.backup; run the same command to resume/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.history).toHaveLength(1);
    expect(report.inProgress.round).toBe(2);
    const partial = readWeights(report.inProgress.backup, readCfg(cfgFile)).header.seen;
    expect(partial).toBeGreaterThan(0);

    // Resume with fewer retraining batches would be another run: refused, nothing touched.
    const other = await cli([...args.slice(0, -4), '--retrain-batches', '10', '--eval-images', '100']);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/report\.json belongs to another run/);

    // The same command finishes rounds 2 and 3 from where round 2 stopped (a short retraining: SIGINT again, then resume).
    const again = await cli(args, { signal: 'SIGINT', when: /resuming .*round 2 part-retrained[\s\S]*\n\s+\d+, /, timeoutMs: 120_000 });
    expect(again.code).toBe(130);
    expect(again.err).toMatch(/resuming .*: 1 of 3 rounds done, round 2 part-retrained/);
    expect(again.err).toMatch(/resuming retraining at batch \d+ of 2000/);
  });
});

describe('signals: the channel loop', () => {
  test('SIGINT once round 1 of prune --structure channel is written: exit 130, round 1 intact and loadable, nothing half-written', async () => {
    const spec = readCfg(cfgFile);
    const start = path.join(dir, 'channel-start.weights');
    fs.writeFileSync(start, serializeWeights(randomWeights(spec, 3), spec));
    const out = path.join(dir, 'channel-sigint');
    const round1 = path.join(out, 'small_round1.weights');
    const args = ['prune', dataFile, cfgFile, start, '--structure', 'channel', '--keep', '0.3', '--rounds', '4', '--retrain-batches', '300',
      '--eval-images', '50', '--no-speed', '--out', out];
    const child = spawn(process.execPath, [BIN, ...args, '--backend', 'wasm-simd'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // as a user does: Ctrl-C once the first round's files are there
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(round1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(round1)).toBe(true);
    const sentAt = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    expect(code).toBe(130);
    expect(Date.now() - sentAt).toBeLessThan(5000);
    expect(err).toMatch(/SIGINT: stopping after this batch/);
    expect(err).toMatch(/interrupted: 1 of 4 rounds done in .*channel-sigint; the last finished model is .*small_round1\.cfg \+ .*small_round1\.weights/);

    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.interrupted).toBe(true);
    expect(report.history.map((h: { round: number }) => h.round)).toEqual([1]);
    const h = report.history[0];
    const small = readCfg(h.cfgFile);
    expect(small.layers[0].outC).toBe(4); // round 1 of 4 towards keep 0.3: round(6 x 0.3^(1/4)) = 4 filters
    const w = readWeights(h.weightsFile, small);
    expect(fs.statSync(h.weightsFile).size).toBe(h.bytes);
    for (const l of w.layers) for (const a of Object.values(l)) expect(a!.every(Number.isFinite)).toBe(true);
    // nothing half-written: no temporary files, no file of round 2
    expect(fs.readdirSync(out).sort()).toEqual(['accuracy.png', 'filters.png', 'report.csv', 'report.json', 'small_round1.cfg', 'small_round1.weights', 'speed.png']);
  });
});

describe('resume and bad numbers', () => {
  test('a weights file whose seen is not a multiple of the batch still trains', async () => {
    const spec = readCfg(cfgFile);
    const base = path.join(dir, 'seen5');
    expect((await cli(['classifier', 'train', dataFile, cfgFile, '--backup', base, '--max-batches', '2'])).code).toBe(0);
    const w = readWeights(path.join(base, 'small.weights'), spec);
    w.header.seen = 5;
    const start = path.join(dir, 'seen5.weights');
    fs.writeFileSync(start, serializeWeights(w, spec));
    const r = await cli(['classifier', 'train', dataFile, cfgFile, start, '--backup', base, '--max-batches', '4']);
    expect(r.code).toBe(0);
    const after = fs.readFileSync(path.join(base, 'small.weights'));
    const before = fs.readFileSync(start);
    expect(after.subarray(20).equals(before.subarray(20))).toBe(false); // the weights moved
    expect(readWeights(path.join(base, 'small.weights'), spec).header.seen).toBe(5 + 4 * 16);
  });

  test('a training that goes NaN stops naming the batch and never replaces a good weights file', async () => {
    const hot = path.join(dir, 'hot.cfg');
    fs.writeFileSync(hot, CFG.replace('learning_rate=0.05', 'learning_rate=1e9'));
    const backup = path.join(dir, 'nan');
    fs.mkdirSync(backup, { recursive: true });
    const good = path.join(backup, 'hot.weights');
    fs.writeFileSync(good, 'a good model (stand-in bytes)');
    const r = await cli(['classifier', 'train', dataFile, hot, '--backup', backup, '--max-batches', '200', '--backup-every', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/training diverged at batch \d+: the loss is (NaN|Infinity)/);
    expect(r.err).not.toMatch(/internal error/);
    expect(fs.readFileSync(good, 'utf8')).toBe('a good model (stand-in bytes)');
    for (const f of fs.readdirSync(backup).filter((x) => x !== 'hot.weights' && (x.endsWith('.backup') || x.endsWith('.weights')))) {
      const w = readWeights(path.join(backup, f), readCfg(hot));
      for (const l of w.layers) for (const a of Object.values(l)) expect(a!.every(Number.isFinite)).toBe(true);
    }
  });

  test('classifier valid on NaN weights says so', async () => {
    const spec = readCfg(cfgFile);
    const base = path.join(dir, 'nanvalid');
    expect((await cli(['classifier', 'train', dataFile, cfgFile, '--backup', base, '--max-batches', '1'])).code).toBe(0);
    const w = readWeights(path.join(base, 'small.weights'), spec);
    w.layers[0].weights![3] = NaN;
    const bad = path.join(dir, 'nan.weights');
    fs.writeFileSync(bad, serializeWeights(w, spec));
    const r = await cli(['classifier', 'valid', dataFile, cfgFile, bad]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nan\.weights: layer 0 \(convolutional\) weights\[3\] is NaN: the weights are not finite/);
  });
});

describe('files', () => {
  test('a cfg asking for mish where its gradient cannot be computed ([shortcut]) is one line naming the file and line', async () => {
    const cfg = path.join(dir, 'mish.cfg');
    fs.writeFileSync(cfg, RESIDUAL.replace('[shortcut]\nfrom=-3\nactivation=linear', '[shortcut]\nfrom=-3\nactivation=mish'));
    const line = fs.readFileSync(cfg, 'utf8').split('\n').indexOf('activation=mish') + 1;
    const r = await cli(['summary', cfg]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`darknet-ts: ${cfg}:${line}: activation=mish is not supported in [shortcut]`);
  });

  test('prune channels --layers writes a smaller cfg and weights that load; a refusal exits 1 in one line and writes nothing', async () => {
    const cfg = path.join(dir, 'residual.cfg');
    fs.writeFileSync(cfg, RESIDUAL);
    const spec = readCfg(cfg);
    const weights = path.join(dir, 'residual.weights');
    fs.writeFileSync(weights, serializeWeights(randomWeights(spec, 5), spec));
    const before = fs.readFileSync(weights);
    const out = path.join(dir, 'minus-block');
    const ok = await cli(['prune', 'channels', cfg, weights, out, '--layers', '1', '--criterion', 'bn']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^removed 1 residual block \(--layers 1, lowest score first\): layers \d+-\d+/m);
    const small = readCfg(`${out}.cfg`);
    expect(small.layers).toHaveLength(spec.layers.length - 3);
    readWeights(`${out}.weights`, small); // loads: sizes match the smaller cfg
    // more blocks than the net has: one line naming the option, exit 1, nothing written, the input untouched
    const refused = path.join(dir, 'minus-three');
    const r = await cli(['prune', 'channels', cfg, weights, refused, '--layers', '3']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/--layers 3: .*residual\.cfg has 2 residual blocks that can be removed/);
    expect(fs.existsSync(`${refused}.cfg`) || fs.existsSync(`${refused}.weights`)).toBe(false);
    expect(fs.readFileSync(weights).equals(before)).toBe(true);
  });

  test('prune --structure channel --layers 1 --tie group removes a block in round 1 and writes rounds that load; with --structure weight it is refused', async () => {
    const cfg = path.join(dir, 'residual-mnist.cfg');
    fs.writeFileSync(cfg, smallResidualCfg());
    const spec = readCfg(cfg);
    const start = path.join(dir, 'residual-mnist.weights');
    fs.writeFileSync(start, serializeWeights(randomWeights(spec, 9), spec));
    const before = fs.readFileSync(start);
    const out = path.join(dir, 'loop-minus-block');
    const ok = await cli(['prune', dataFile, cfg, start, '--structure', 'channel', '--keep', '0.5', '--rounds', '2', '--layers', '1',
      '--criterion', 'bn', '--tie', 'group', '--retrain-batches', '5', '--eval-images', '50', '--no-speed', '--out', out]);
    expect(ok.code).toBe(0);
    expect(ok.err).toMatch(/^round 1\/2: removed 1 residual block \(lowest bn score first\): layers [14]-[36]/m);
    expect(ok.out).toMatch(/^\d+\.\dx fewer parameters, .*; 2\/2 rounds in /);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.layers).toBe(1);
    expect(report.tie).toBe('group');
    // --tie group: the stem, tied to the remaining block, keeps round(8 x 0.5^(r/2)) like any layer
    expect(report.history.map((h: { cfgFile: string }) => readCfg(h.cfgFile).layers[0].outC)).toEqual([6, 4]);
    expect(report.history.map((h: { blocks?: unknown[] }) => h.blocks?.length ?? 0)).toEqual([1, 0]);
    for (const h of report.history) {
      const small = readCfg(h.cfgFile);
      expect(small.layers).toHaveLength(spec.layers.length - 3);
      readWeights(h.weightsFile, small); // loads: sizes match its cfg
    }
    // an option of the channel loop with the weight recipe: one line, exit 1, the start untouched
    const refused = await cli(['prune', dataFile, cfg, start, '--layers', '1', '--out', path.join(dir, 'refused')]);
    expect(refused.code).toBe(1);
    expect(refused.err.trim().split('\n')).toEqual([expect.stringMatching(/--layers is for --structure channel$/)]);
    expect(fs.existsSync(path.join(dir, 'refused'))).toBe(false);
    expect(fs.readFileSync(start).equals(before)).toBe(true);
  });

  test('a truncated report.json is a clear error, not an internal one', async () => {
    const out = path.join(dir, 'prune-broken');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'report.json'), '{"version": 2, "finger');
    const base = path.join(dir, 'dense-b');
    expect((await cli(['classifier', 'train', dataFile, cfgFile, '--backup', base, '--max-batches', '2'])).code).toBe(0);
    const r = await cli(['prune', dataFile, cfgFile, path.join(base, 'small.weights'), '--out', out, '--rounds', '1', '--retrain-batches', '1', '--eval-images', '20']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/report\.json: not a readable prune report .*delete it to start over/);
  });

  test('a deleted round file is redone, never reported as rounds [2, 3, 3]', async () => {
    const base = path.join(dir, 'dense-d');
    expect((await cli(['classifier', 'train', dataFile, cfgFile, '--backup', base, '--max-batches', '5'])).code).toBe(0);
    const out = path.join(dir, 'prune-deleted');
    const args = ['prune', dataFile, cfgFile, path.join(base, 'small.weights'), '--out', out, '--rounds', '3', '--retrain-batches', '3', '--eval-images', '40'];
    expect((await cli(args)).code).toBe(0);
    fs.rmSync(path.join(out, 'small_round2.weights'));
    const again = await cli(args);
    expect(again.code).toBe(0);
    expect(again.err).toMatch(/round 2's weights are missing; redoing rounds 2-3/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.history.map((r: { round: number }) => r.round)).toEqual([1, 2, 3]);
    expect(fs.existsSync(path.join(out, 'small_round2.weights'))).toBe(true);
  });

  test('a network or a cfg beyond what memory can hold is refused before anything is allocated', async () => {
    const huge = path.join(dir, 'huge.cfg');
    fs.writeFileSync(huge, CFG.replace('output=10', 'output=2147483647'));
    const r = await cli(['classifier', 'train', dataFile, huge, '--backup', path.join(dir, 'huge')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/huge\.cfg/);
    expect(r.err).not.toMatch(/internal error|backend:/);
    const wide = path.join(dir, 'wide.cfg');
    fs.writeFileSync(wide, CFG.replace('height=28\nwidth=28', 'height=100000\nwidth=100000').replace('filters=6', 'filters=100000'));
    const s = await cli(['summary', wide]);
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/wide\.cfg:\d+: /);
    expect(s.err.trim().split('\n')).toHaveLength(1);
  });

  test('backup= naming /dev/null is refused before training (the device is only looked at)', async () => {
    const d = path.join(dir, 'devnull.data');
    fs.writeFileSync(d, fs.readFileSync(dataFile, 'utf8').replace(/^backup=.*$/m, 'backup=/dev/null'));
    const r = await cli(['classifier', 'train', d, cfgFile, '--max-batches', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\/dev\/null/);
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  test('saving through a symlink updates its target and keeps the link; a FIFO or a folder as the output is refused and left alone', async () => {
    const base = path.join(dir, 'links');
    fs.mkdirSync(base, { recursive: true });
    const real = path.join(dir, 'real-target.weights');
    fs.writeFileSync(real, 'old');
    fs.symlinkSync(real, path.join(base, 'small.weights'));
    const r = await cli(['classifier', 'train', dataFile, cfgFile, '--backup', base, '--max-batches', '2']);
    expect(r.code).toBe(0);
    expect(fs.lstatSync(path.join(base, 'small.weights')).isSymbolicLink()).toBe(true);
    expect(readWeights(real, readCfg(cfgFile)).header.seen).toBe(32);

    const fifo = path.join(dir, 'pipe.weights');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const t = await cli(['prune', 'threshold', cfgFile, real, fifo, '--sparsity', '0.5']);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/pipe\.weights.*(FIFO|not a regular file)/i);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);

    const asFolder = await cli(['classifier', 'train', dataFile, cfgFile, '--backup', real, '--max-batches', '2']);
    expect(asFolder.code).toBe(1);
    expect(asFolder.err).toMatch(/real-target\.weights.*(not a folder|is a file)/);
    expect(asFolder.err).not.toMatch(/internal error|backend:/); // refused before any work started
  });
});
