/**
 * darknet's own deep classifiers, number for number: reduced-width copies of darknet.cfg
 * (darknet reference), resnet18.cfg, darknet19.cfg and densenet201.cfg (same layers, routes
 * and shortcuts, 2-8 filters a layer, 64 px; densenet 128 px), weights made by darknet-ts
 * with batch-norm rolling statistics taken from the image itself and a quarter of the
 * filters scaled down 1e2-1e4 times (channels of variance down to 3e-9, where darknet's
 * sqrt(var) + 1e-6 and sqrt(var + 1e-5) differ up to 50x), and an 80 x 52 picture that
 * predict letterboxes. `<net>.darknet.txt` is darknet's `classifier predict` output for
 * them (/tmp/darknet-src/darknet, pjreddie/darknet, single-threaded). See README.md there.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { predictImages, validClassifier, type Prediction } from '../../src/commands/classifier';
import { readCfg } from '../../src/cfg/parser';
import { Network } from '../../src/engine/network';
import { loadNetworkInput } from '../../src/data/images';
import { readWeights } from '../../src/io/weights';
import { ReferenceKernels } from '../../src/kernels/reference';
import { main } from '../../src/commands/cli';
import { describeEachBackend } from '../backends';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'darknet-deep');
const NETS = ['darknet', 'resnet18', 'darknet19', 'densenet201'] as const;
const IMAGE = path.join(FIXTURES, 'image.png');
/** darknet prints 2 decimals of a percentage: its numbers are within 5e-5 of its own */
const TOLERANCE = 1e-4;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-darknet-match-'));
const dataFile = path.join(dir, 'deep.data');
fs.writeFileSync(dataFile, `classes=10\nnames=${path.join(FIXTURES, 'names.txt')}\ntop=5\n`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** darknet's lines `%5.2f%%: name` */
function darknetTop(net: string): Array<{ name: string; probability: number }> {
  return fs.readFileSync(path.join(FIXTURES, `${net}.darknet.txt`), 'utf8').trim().split('\n').map((line) => {
    const m = /^\s*(\d+\.\d\d)%: (\S+)$/.exec(line);
    if (!m) throw new Error(`${net}.darknet.txt: not darknet's line: ${line}`);
    return { name: m[2], probability: Number(m[1]) / 100 };
  });
}

function probabilities(cfg: string, weights: ReturnType<typeof readWeights>, x: Float32Array): number[] {
  const spec = readCfg(cfg);
  const net = new Network(spec, new ReferenceKernels(), { seed: 1 });
  net.loadWeights(weights);
  const out = Array.from(net.predict(x));
  net.dispose();
  return out;
}

describeEachBackend('classifier predict matches darknet on its deep nets', (_backend, get) => {
  test.each(NETS)('%s: the top 5 and their probabilities', async (net) => {
    const seen: Prediction[] = [];
    await predictImages(
      { dataFile, cfgFile: path.join(FIXTURES, `${net}.cfg`), weights: path.join(FIXTURES, `${net}.weights`), kernels: get() },
      [IMAGE],
      (p) => void seen.push(p),
    );
    expect(seen).toHaveLength(1);
    const want = darknetTop(net);
    expect(seen[0].top.map((t) => t.name)).toEqual(want.map((t) => t.name));
    seen[0].top.forEach((t, i) => expect(Math.abs(t.probability - want[i].probability)).toBeLessThanOrEqual(TOLERANCE));
  });
});

/** darknet's `classifier valid` lines for the image saved as class<label>.png: `path, label, pred[0], pred[1], ` then `0: top 1: a, top 5: b` */
function darknetValid(net: string): { label: number; p0: number; p1: number; top1: number; top5: number } {
  const text = fs.readFileSync(path.join(FIXTURES, `${net}.valid.txt`), 'utf8');
  const a = /^\S+, (\d+), (\d\.\d+), (\d\.\d+), $/m.exec(text);
  const b = /^0: top 1: (\d\.\d+), top 5: (\d\.\d+)$/m.exec(text);
  if (!a || !b) throw new Error(`${net}.valid.txt: not darknet's valid output`);
  return { label: Number(a[1]), p0: Number(a[2]), p1: Number(a[3]), top1: Number(b[1]), top5: Number(b[2]) };
}

describe("classifier valid matches darknet's (the centred square, resized)", () => {
  test.each(NETS)('%s: the probabilities darknet prints, and its top 1 / top 5', async (net) => {
    const want = darknetValid(net);
    const folder = path.join(dir, `valid-${net}`);
    fs.mkdirSync(folder, { recursive: true });
    const image = path.join(folder, `class${want.label}.png`);
    fs.copyFileSync(IMAGE, image);
    fs.writeFileSync(path.join(folder, 'valid.list'), `${image}\n`);
    const data = path.join(folder, 'valid.data');
    const names = path.join(FIXTURES, 'names.txt');
    fs.writeFileSync(data, `classes=10\nlabels=${names}\nnames=${names}\nvalid=${path.join(folder, 'valid.list')}\ntop=5\n`);
    const cfg = path.join(FIXTURES, `${net}.cfg`);
    const weights = path.join(FIXTURES, `${net}.weights`);
    const r = await validClassifier({ dataFile: data, cfgFile: cfg, weights, kernels: new ReferenceKernels() });
    expect([r.top1, r.topK]).toEqual([want.top1, want.top5]);
    const spec = readCfg(cfg);
    const p = probabilities(cfg, readWeights(weights, spec), await loadNetworkInput(IMAGE, spec.net.w, spec.net.h, 3, 'center-crop'));
    expect(Math.abs(p[0] - want.p0)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(p[1] - want.p1)).toBeLessThanOrEqual(TOLERANCE);
    expect(r.predictions[0]).toBe(p.indexOf(Math.max(...p)));
  });
});

describe('the fixtures pin what they are meant to', () => {
  test.each(NETS)("%s: darknet's batch-norm epsilon and predict's letterbox both change the answer", async (net) => {
    const cfg = path.join(FIXTURES, `${net}.cfg`);
    const spec = readCfg(cfg);
    const weights = readWeights(path.join(FIXTURES, `${net}.weights`), spec);
    const boxed = await loadNetworkInput(IMAGE, spec.net.w, spec.net.h, 3, 'letterbox');
    const now = probabilities(cfg, weights, boxed);
    const want = darknetTop(net);
    // (the names are class0 .. class9)
    want.forEach((t) => expect(Math.abs(now[Number(t.name.slice(5))] - t.probability)).toBeLessThanOrEqual(TOLERANCE));
    const gap = (p: number[]) => Math.max(...want.map((t) => Math.abs(p[Number(t.name.slice(5))] - t.probability)));
    // the old inference, (x - mean) / sqrt(var + 1e-5), through the same code: var -> (sqrt(var + 1e-5) - 1e-6)^2
    for (const l of weights.layers) {
      if (l.rolling_variance) l.rolling_variance = l.rolling_variance.map((v) => (Math.sqrt(v + 1e-5) - 1e-6) ** 2);
    }
    expect(gap(probabilities(cfg, weights, boxed))).toBeGreaterThan(0.02);
    // the centre crop (valid's preparation) instead of the letterbox
    const original = readWeights(path.join(FIXTURES, `${net}.weights`), spec);
    const cropped = probabilities(cfg, original, await loadNetworkInput(IMAGE, spec.net.w, spec.net.h, 3, 'center-crop'));
    expect(gap(cropped)).toBeGreaterThan(0.002);
    // and the other way round: darknet's valid numbers are not the letterbox's
    const valid = darknetValid(net);
    expect(Math.max(Math.abs(now[0] - valid.p0), Math.abs(now[1] - valid.p1))).toBeGreaterThan(1e-4);
  });

  test("the CLI prints darknet's lines", async () => {
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: () => undefined };
    expect(await main(['classifier', 'predict', dataFile, path.join(FIXTURES, 'resnet18.cfg'), path.join(FIXTURES, 'resnet18.weights'), IMAGE, '--backend', 'wasm-simd'], io)).toBe(0);
    const lines = out.join('').trim().split('\n');
    expect(lines[0]).toBe(IMAGE);
    expect(lines.slice(1).map((l) => l.trim())).toEqual(fs.readFileSync(path.join(FIXTURES, 'resnet18.darknet.txt'), 'utf8').trim().split('\n').map((l) => l.trim()));
  });
});
