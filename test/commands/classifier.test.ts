/**
 * The classifier verbs end to end on real MNIST PNGs: train (saves, resume, Ctrl-C,
 * frozen zeros, bad images), valid and predict, through the command functions and the CLI.
 * Signals and bad input through a real child process: faults.test.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/commands/cli';
import { predictImages, trainClassifier, validClassifier } from '../../src/commands/classifier';
import { collectingReporter, silentReporter } from '../../src/engine/reporter';
import { buildNetwork, loadKernels } from '../../src/commands/load';
import { exportMnist } from '../../src/data/mnist-export';
import { readCfg } from '../../src/cfg/parser';
import { readWeights, writeWeights } from '../../src/io/weights';
import { smallCfg } from '../small-net';

const SMALL = smallCfg(30);

// (a fixed name: a random mkdtemp suffix could contain a label such as 'c3')
const dir = path.join(os.tmpdir(), `dts-classifier-${process.pid}`);
let dataFile: string;
let cfgFile: string;
const quiet = () => undefined;

beforeAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  ({ dataFile } = exportMnist(path.join(dir, 'mnist'), { limit: 400 }));
  cfgFile = path.join(dir, 'small.cfg');
  fs.writeFileSync(cfgFile, SMALL);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('[webasm] classifier train', () => {
  test('[webasm] trains, saves epoch / backup / final weights and a loss plot, and resumes', async () => {
    const backup = path.join(dir, 'w1');
    const r = await trainClassifier({ dataFile, cfgFile, backend: 'webasm', backupDir: backup, backupEvery: 20 });
    expect(r.batches).toBe(30);
    expect(r.seen).toBe(480);
    expect(fs.readdirSync(backup).sort()).toEqual(['small.backup', 'small.loss.png', 'small.weights', 'small_1.weights']);
    const early = r.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const late = r.losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(late).toBeLessThan(early * 0.8);
    expect(readWeights(path.join(backup, 'small.weights'), readCfg(cfgFile)).header.seen).toBe(480);

    // Resuming from the final weights with a later schedule end continues seen and the schedule.
    const more = await trainClassifier({
      dataFile, cfgFile, backend: 'webasm', weights: path.join(backup, 'small.weights'), scheduleBatches: 35, backupDir: backup,
    });
    expect(more.batches).toBe(35);
    expect(more.losses).toHaveLength(5);
    expect(more.seen).toBe(560);
  });

  test('[webasm] --max-batches stops early without changing the schedule; --schedule-batches moves its end', async () => {
    const rates = async (args: string[]) => {
      let err = '';
      const code = await main(['classifier', 'train', dataFile, cfgFile, '--backend', 'webasm', '--log-every', '1', ...args], { out: quiet, err: (t) => void (err += t) });
      expect(code).toBe(0);
      return new Map([...err.matchAll(/^(\d+), [\d.]+: [\d.]+, [\d.]+ avg, ([\d.]+) rate/gm)].map((m) => [Number(m[1]), m[2]]));
    };
    const full = await rates(['--backup', path.join(dir, 'mb-full')]);
    const three = await rates(['--backup', path.join(dir, 'mb-3'), '--max-batches', '3']);
    const schedule = await rates(['--backup', path.join(dir, 'mb-s3'), '--schedule-batches', '3']);
    expect(full.size).toBe(30);
    expect([...three.keys()]).toEqual([1, 2, 3]);
    // poly, power 1, max_batches 30: rate at batch b = 0.05 (1 - b / 30), with or without --max-batches
    for (const b of [1, 2, 3]) {
      expect(three.get(b)).toBe(full.get(b));
      expect(Number(three.get(b))).toBeCloseTo(0.05 * (1 - b / 30), 6);
    }
    // --schedule-batches 3 is the old meaning: the rate reaches 0 at batch 3
    expect(Number(schedule.get(1))).toBeCloseTo(0.05 * (1 - 1 / 3), 6);
    expect(Number(schedule.get(3))).toBe(0);

    // --max-batches 1: one batch at the cfg's rate, so the weights move from their initial values
    const one = await rates(['--backup', path.join(dir, 'mb-1'), '--max-batches', '1']);
    expect(Number(one.get(1))).toBeCloseTo(0.05 * (1 - 1 / 30), 6);
    const spec = readCfg(cfgFile);
    const initial = buildNetwork(spec, await loadKernels('webasm', silentReporter), undefined, 1).exportWeights();
    const trained = readWeights(path.join(dir, 'mb-1', 'small.weights'), spec);
    expect(trained.header.seen).toBe(16);
    let moved = 0;
    initial.layers[0].weights!.forEach((w, i) => { if (Math.abs(trained.layers[0].weights![i] - w) > 1e-6) moved++; });
    expect(moved).toBeGreaterThan(100);

    let err = '';
    expect(await main(['classifier', 'train', dataFile, cfgFile, '--backup', path.join(dir, 'mb-x'), '--max-batches', '31'], { out: quiet, err: (t) => void (err += t) })).toBe(1);
    expect(err).toMatch(/--max-batches 31 is past the end of the learning-rate schedule \(max_batches 30 in .*small\.cfg\)/);
    err = '';
    expect(await main(['classifier', 'train', dataFile, cfgFile, '--schedule-batches', '0'], { out: quiet, err: (t) => void (err += t) })).toBe(1);
    expect(err).toMatch(/schedule-batches/);
  });

  test('[webasm] --freeze-zeros keeps every zero weight zero through training', async () => {
    const backup = path.join(dir, 'w3');
    const spec = readCfg(cfgFile);
    const start = await trainClassifier({ dataFile, cfgFile, backend: 'webasm', maxBatches: 5, backupDir: backup });
    const w = readWeights(start.finalWeights, spec);
    let zeros = 0;
    for (const l of w.layers) {
      const a = l.weights;
      if (!a) continue;
      for (let i = 0; i < a.length; i += 2) {
        a[i] = 0;
        zeros++;
      }
    }
    const pruned = path.join(dir, 'pruned.weights');
    writeWeights(pruned, w, spec);
    const r = await trainClassifier({
      dataFile, cfgFile, backend: 'webasm', weights: pruned, clear: true, freezeZeros: true, maxBatches: 20, backupDir: backup,
    });
    const after = readWeights(r.finalWeights, spec);
    let stillZero = 0;
    let moved = 0;
    after.layers.forEach((l, li) => {
      const a = l.weights;
      if (!a) return;
      for (let i = 0; i < a.length; i++) {
        if (i % 2 === 0) stillZero += Object.is(a[i], 0) ? 1 : 0;
        else if (a[i] !== w.layers[li].weights![i]) moved++;
      }
    });
    expect(stillZero).toBe(zeros);
    expect(moved).toBeGreaterThan(1000); // the kept weights did train
  });

  test('[webasm] a missing image is skipped with a warning and counted; an ambiguous path is an error', async () => {
    const list = path.join(dir, 'broken.list');
    const good = fs.readFileSync(path.join(dir, 'mnist', 'train.list'), 'utf8').trim().split('\n').slice(0, 40);
    fs.writeFileSync(list, [...good, path.join(dir, 'mnist', 'train', 'gone_c3.png')].join('\n'));
    const brokenData = path.join(dir, 'broken.data');
    fs.writeFileSync(brokenData, fs.readFileSync(dataFile, 'utf8').replace(/^train=.*$/m, `train=${list}`));
    const warnings: string[] = [];
    const r = await trainClassifier({
      dataFile: brokenData, cfgFile, backend: 'webasm', maxBatches: 6, backupDir: path.join(dir, 'w4'), reporter: collectingReporter(warnings),
    });
    expect(r.skippedImages).toBe(1);
    expect(warnings.filter((w) => w.includes('gone_c3.png'))).toHaveLength(1);

    fs.writeFileSync(list, [...good, path.join(dir, 'mnist', 'train', 'x_c3_c4.png')].join('\n'));
    await expect(trainClassifier({ dataFile: brokenData, cfgFile, backend: 'webasm', backupDir: path.join(dir, 'w5') })).rejects.toThrow(
      /x_c3_c4\.png: matches 2 labels \(c3, c4\)/,
    );
  });
});

describe('[webasm] classifier valid and predict', () => {
  test('[webasm] valid reports top-1 / top-2 and predict names the classes, through the CLI', async () => {
    const backup = path.join(dir, 'w6');
    const trained = await trainClassifier({ dataFile, cfgFile, backend: 'webasm', backupDir: backup });
    const v = await validClassifier({ dataFile, cfgFile, weights: trained.finalWeights, backend: 'webasm' });
    expect(v.count).toBe(400);
    expect(v.top1).toBeGreaterThan(0.5);
    expect(v.topK).toBeGreaterThanOrEqual(v.top1);
    expect(v.k).toBe(2);

    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: quiet };
    expect(await main(['classifier', 'valid', dataFile, cfgFile, trained.finalWeights, '--backend', 'webasm', '--json'], io)).toBe(0);
    expect(JSON.parse(out.join('')).top1).toBeCloseTo(v.top1, 6);

    const image = fs.readFileSync(path.join(dir, 'mnist', 'test.list'), 'utf8').split('\n')[0];
    const seen: string[] = [];
    await predictImages({ dataFile, cfgFile, weights: trained.finalWeights, backend: 'webasm' }, [image], (p) => {
      expect(p.top).toHaveLength(2);
      expect(p.top[0].probability).toBeGreaterThanOrEqual(p.top[1].probability);
      seen.push(p.top[0].name);
    });
    expect(seen).toHaveLength(1);
    out.length = 0;
    expect(await main(['classifier', 'predict', dataFile, cfgFile, trained.finalWeights, image, '--backend', 'webasm', '--json'], io)).toBe(0);
    expect(JSON.parse(out.join('')).top[0].name).toBe(seen[0]);
  });

  test('[webasm] a missing image in validation is an error naming it', async () => {
    const list = path.join(dir, 'valid-broken.list');
    fs.writeFileSync(list, path.join(dir, 'mnist', 'test', 'nothere_c1.png') + '\n');
    const d = path.join(dir, 'valid-broken.data');
    fs.writeFileSync(d, fs.readFileSync(dataFile, 'utf8').replace(/^valid=.*$/m, `valid=${list}`));
    const t = await trainClassifier({ dataFile, cfgFile, backend: 'webasm', maxBatches: 1, backupDir: path.join(dir, 'w7') });
    await expect(validClassifier({ dataFile: d, cfgFile, weights: t.finalWeights, backend: 'webasm' })).rejects.toThrow(
      /nothere_c1\.png: cannot load image/,
    );
  });
});

describe('[wasm-simd] classifier train --slim', () => {
  test('[wasm-simd] pulls batch-norm scales towards 0, reports |gamma| per epoch and draws it; a cfg without batch norm is refused', async () => {
    const bnCfg = path.join(dir, 'bn.cfg');
    fs.writeFileSync(bnCfg, smallCfg(60).replace('activation=relu', 'activation=relu\nbatch_normalize=1'));
    const meanGamma = (file: string) => {
      const g = readWeights(file, readCfg(bnCfg)).layers[0].scales!;
      return g.reduce((a, b) => a + Math.abs(b), 0) / g.length;
    };
    const runs: Record<string, { err: string; gamma: number }> = {};
    for (const slim of ['0', '0.05']) {
      const backup = path.join(dir, `slim-${slim}`);
      let err = '';
      const code = await main(['classifier', 'train', dataFile, bnCfg, '--backup', backup, '--slim', slim, '--backend', 'wasm-simd'], { out: quiet, err: (t) => void (err += t) });
      expect(code).toBe(0);
      runs[slim] = { err, gamma: meanGamma(path.join(backup, 'bn.weights')) };
    }
    expect(runs['0.05'].gamma).toBeLessThan(runs['0'].gamma - 0.05);
    expect(runs['0.05'].err).toMatch(/start: \|gamma\|: median 1\.00, 0\.0% below 0\.01 \(of 6 scales\)/);
    expect(runs['0.05'].err).toMatch(/epoch 2: \|gamma\|: median /);
    expect(fs.statSync(path.join(dir, 'slim-0.05', 'bn.gamma.png')).size).toBeGreaterThan(1000);
    expect(runs['0'].err).not.toMatch(/\|gamma\|/);

    let err = '';
    expect(await main(['classifier', 'train', dataFile, cfgFile, '--slim', '0.01', '--backend', 'wasm-simd'], { out: quiet, err: (t) => void (err += t) })).toBe(1);
    expect(err).toMatch(/--slim pulls batch-norm scales towards 0, but this cfg has no batch_normalize=1 layer/);
  });
});
