/**
 * darknet's model zoo, cfg by cfg: does each classifier cfg in a darknet `cfg/` folder
 * load, does `summary` print darknet's layer table (every row, and a BFLOPs total equal to
 * darknet's operation count), does a forward and backward pass run, and (with --darknet)
 * does `classifier predict` print darknet's top 5 on the same weights and image?
 *
 *   npm run build && node dist/scripts/darknet-zoo.js --cfgs ~/darknet/cfg --darknet ~/darknet/darknet
 *   node dist/scripts/darknet-zoo.js --cfgs ~/darknet/cfg --max-inputs 0   # load and compare only
 *
 * A classifier is a cfg whose last layer is [softmax], [cost] or [logistic] and that has
 * no detection layer ([region], [yolo], [detection], [iseg]); every cfg is loaded and its
 * table compared, only classifiers are run. darknet's table comes from
 * `darknet ops <cfg>` (it parses the cfg and prints the table on stderr, no weights
 * needed), run from the folder above `cfg/`, as darknet's cfgs expect (tree=data/9k.tree).
 * Forward and backward run at batch 1 (training mode, a one-hot truth) on `--backend`
 * (default reference), with the cfg's input size
 * (`--max-inputs N` skips the run, and the predict comparison, for nets with more than N
 * activation floats, e.g. for a small machine; default 60M).
 *
 * "forward matches" (with --darknet, for every classifier that runs; `--no-predict` skips it):
 * do darknet-ts and darknet predict the same top 5 on the same weights and image? The net is
 * built at batch 1 with darknet-ts's seeded initialisation (darknet's), which leaves a deep
 * net's outputs near-uniform (each layer shrinks the signal; batch norm's fresh statistics
 * are mean 0, variance 1), so the weights are first made informative, layer by layer in
 * inference on the test image: every batch-norm scale, bias and rolling mean / variance and
 * every bias is set at random (so each array of the weights file matters), then the layer's
 * weights are scaled until its output has RMS 1 (where its activation is linear, relu, leaky,
 * ramp or relie), and the last weighted layer's until the input of the last [softmax] (or
 * [logistic]) layer has standard deviation 2.5. Those weights are written with
 * darknet-ts's writer (src/io/weights.ts) beside a .data file (classes, one name per class:
 * its index, top=5) and a 333x217 PNG (non-square, so letterboxing counts; grey for a
 * 1-channel net, as darknet feeds such a net the first of the RGB planes). darknet runs
 * `classifier predict` from the folder above `cfg/` (`--predict-timeout S`, default 120 s);
 * darknet-ts runs predictImages (src/commands/classifier.ts) in-process. They match when the
 * 5 names agree in order (a swap only where darknet printed equal values) and every value
 * darknet printed ("%5.2f%%") is within 0.005 (its rounding) + 0.005 (5e-5 of probability)
 * percentage points of ours. For a tree softmax (darknet9000) both predicts multiply each
 * output by its parents' and zero the inner nodes (darknet's hierarchy_predictions).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { readCfg } from '../src/cfg/parser';
import { predictImages } from '../src/commands/classifier';
import { loadNetworkInput } from '../src/data/images';
import type { Layer, LayerSpec, NetState } from '../src/engine/layer';
import { Network, withBatch } from '../src/engine/network';
import { gaussian, mulberry32 } from '../src/engine/random';
import { writeWeights } from '../src/io/weights';
import { createKernels } from '../src/kernels/backend';
import type { BackendName, Kernels } from '../src/kernels/types';
import type { NetworkSpec } from '../src/cfg/config';

const DETECTION = ['[region]', '[yolo]', '[detection]', '[iseg]'];
const LOSS = ['[softmax]', '[soft]', '[cost]', '[logistic]'];

interface Args {
  cfgs: string;
  darknet: string | null;
  maxInputs: number;
  only: string[] | null;
  backend: BackendName;
  /** compare `classifier predict` with darknet's (needs --darknet) */
  predict: boolean;
  /** seconds darknet may take for one predict */
  predictTimeout: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { cfgs: '', darknet: null, maxInputs: 60e6, only: null, backend: 'reference', predict: true, predictTimeout: 120 };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    if (argv[i] === '--cfgs') args.cfgs = next();
    else if (argv[i] === '--darknet') args.darknet = next();
    else if (argv[i] === '--max-inputs') args.maxInputs = Number(next());
    else if (argv[i] === '--only') args.only = next().split(',');
    else if (argv[i] === '--backend') args.backend = next() as BackendName;
    else if (argv[i] === '--no-predict') args.predict = false;
    else if (argv[i] === '--predict-timeout') args.predictTimeout = Number(next());
    else {
      throw new Error(`unknown option ${argv[i]} (options: --cfgs DIR, --darknet PATH, --max-inputs N, --only a.cfg,b.cfg, --backend NAME, ` +
        '--no-predict, --predict-timeout S)');
    }
  }
  if (!args.cfgs) throw new Error('give --cfgs /path/to/darknet/cfg');
  if (!(args.predictTimeout > 0)) throw new Error('--predict-timeout needs a number of seconds above 0');
  return args;
}

/** Section names in order, as darknet's read_cfg sees them (spaces stripped). */
function sections(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\s+/g, '')).filter((l) => l.startsWith('[')).map((l) => l.toLowerCase());
}

/** Which cfgs are classifiers, and why the others are not. */
export function classify(text: string): { classifier: boolean; why: string } {
  const s = sections(text);
  const detection = s.find((x) => DETECTION.includes(x));
  if (detection) return { classifier: false, why: `detector (${detection})` };
  const last = s[s.length - 1];
  if (!LOSS.includes(last)) return { classifier: false, why: `ends in ${last ?? 'nothing'}, not a loss` };
  return { classifier: true, why: '' };
}

/** darknet's note for a key it did not find ("type: Using default 'sse'"), not part of the table. */
const DEFAULT_NOTE = /^\S+: Using default /;

/**
 * The layer rows of darknet's table (`%5d ` + describe), from its stderr. darknet prints
 * the index before parsing the section, so a default-value note can sit between the index
 * and the layer's line: the index is joined to the next line that is not such a note.
 */
export function darknetRows(stderr: string): string[] {
  const rows: string[] = [];
  let pending: string | null = null;
  for (const line of stderr.split('\n')) {
    const m = /^( {0,4}\d+ )(.*)$/.exec(line);
    if (m) {
      if (DEFAULT_NOTE.test(m[2])) pending = m[1];
      else rows.push(line.trimEnd());
    } else if (pending !== null && !DEFAULT_NOTE.test(line)) {
      rows.push((pending + line).trimEnd());
      pending = null;
    }
  }
  return rows;
}

function ourRows(spec: NetworkSpec): string[] {
  return spec.layers.map((l) => `${String(l.index).padStart(5)} ${l.describe}`.trimEnd());
}

/** darknet's table rows and its operation count (`Floating Point Operations: N` on stdout), or why not. */
function runDarknet(binary: string, root: string, cfg: string): { rows: string[]; ops: number } | string {
  const r = spawnSync(binary, ['ops', path.join('cfg', cfg)], { cwd: root, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.error) return `darknet failed: ${r.error.message}`;
  const ops = /Floating Point Operations: (\d+)\n/.exec(r.stdout);
  if (!ops) return `darknet printed no operation count (exit ${r.status})`;
  return { rows: darknetRows(r.stderr), ops: Number(ops[1]) };
}

function activationFloats(spec: NetworkSpec): number {
  return spec.layers.reduce((s, l) => s + 2 * l.outputs, spec.net.inputs);
}

function runOnce(spec: NetworkSpec, k: Kernels): string {
  const net = new Network(withBatch(spec, 1), k);
  try {
    const x = new Float32Array(spec.net.inputs).map((_, i) => Math.sin(i));
    k.upload(net.input, x);
    const truth = new Float32Array(net.outputs);
    truth[0] = 1;
    k.upload(net.truth, truth);
    const start = Date.now();
    const cost = net.forward(true, true);
    net.backward();
    const out = k.read(net.output);
    const finite = out.every(Number.isFinite) && Number.isFinite(cost);
    return `${finite ? 'yes' : 'NON-FINITE'} (${((Date.now() - start) / 1000).toFixed(1)} s)`;
  } finally {
    net.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// forward matches: `classifier predict` against darknet's

/** The test image's size: not square, so letterboxing adds bands. */
const IMAGE_W = 333;
const IMAGE_H = 217;
/** classes darknet prints (the .data file's top) */
const TOP = 5;
/** Activations with f(a x) = a f(x) for a > 0: a layer's output RMS scales with its weights. */
const SCALE_INVARIANT = ['linear', 'relu', 'leaky', 'ramp', 'relie'];
/** the standard deviation the softmax (or logistic) input is scaled to */
const LOGIT_STD = 2.5;
/**
 * Percentage points a printed value may differ from ours: darknet's rounding to 2 decimals
 * (0.005) plus 5e-5 of probability (0.005), float noise between two gemm orders included.
 */
const TOLERANCE = 0.01;

/** A smooth colour pattern with seeded noise, as PNG bytes (grey for a 1-channel net). */
function testImage(c: number, random: () => number): Buffer {
  const png = new PNG({ width: IMAGE_W, height: IMAGE_H, colorType: c === 1 ? 0 : 2, inputHasAlpha: true });
  for (let y = 0; y < IMAGE_H; y++) {
    for (let x = 0; x < IMAGE_W; x++) {
      const i = 4 * (y * IMAGE_W + x);
      const noise = 40 * (random() - 0.5);
      const grey = 128 + 60 * Math.sin(x * 0.05) + 40 * Math.cos(y * 0.07) + noise;
      for (let ch = 0; ch < 3; ch++) {
        const v = c === 1 ? grey : 128 + 60 * Math.sin(x * 0.05 * (ch + 1) + ch) + 40 * Math.cos(y * 0.07 * (3 - ch)) + noise;
        png.data[i + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png, { colorType: c === 1 ? 0 : 2, inputHasAlpha: true });
}

function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / a.length);
}

function std(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i];
  m /= a.length;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - m) ** 2;
  return Math.sqrt(s / a.length);
}

/**
 * Makes a freshly initialised network's outputs informative on input `x` (see the header):
 * random batch-norm statistics, scales and biases, then each weighted layer's weights scaled
 * to an output RMS of 1, in inference, layer by layer; last, the last weighted layer's
 * weights scaled so the softmax / logistic input has standard deviation LOGIT_STD.
 */
function makeInformative(net: Network, x: Float32Array, random: () => number): void {
  const { k, layers } = net;
  k.upload(net.input, x);
  const state: NetState = { k, train: false, input: net.input, delta: null, truth: null, layers, random };
  const run = (i: number) => {
    state.input = i > 0 ? layers[i - 1].output : net.input;
    layers[i].forward(state);
  };
  const scaleWeights = (l: Layer, factor: number) => {
    const w = l.params.find((p) => p.name === 'weights')!;
    k.upload(w.tensor, k.read(w.tensor).map((v) => v * factor));
    l.paramsChanged?.();
  };
  const fill: Record<string, () => number> = {
    biases: () => 0.1 * gaussian(random),
    scales: () => 0.5 + random(),
    rolling_mean: () => 0.1 * gaussian(random),
    rolling_variance: () => 0.5 + random(),
  };
  let lastWeighted = -1;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    for (const p of l.params) if (fill[p.name]) k.upload(p.tensor, new Float32Array(p.tensor.size).map(fill[p.name]));
    l.paramsChanged?.();
    run(i);
    if (!l.params.some((p) => p.name === 'weights')) continue;
    lastWeighted = i;
    // a bounded activation (logistic, tanh, ...) cannot reach RMS 1: left as initialised
    const activation = (l.spec as LayerSpec & { activation?: string }).activation;
    if (activation !== undefined && !SCALE_INVARIANT.includes(activation)) continue;
    // two rounds: batch-norm offsets and biases make the output not quite linear in the weights
    for (let round = 0; round < 2; round++) {
      const r = rms(k.read(l.output));
      if (!(r > 0) || !Number.isFinite(r)) break;
      scaleWeights(l, 1 / r);
      run(i);
    }
  }
  const types = layers.map((l) => l.spec.type);
  const squash = types.includes('softmax') ? types.lastIndexOf('softmax') : types.lastIndexOf('logistic');
  if (lastWeighted < 0 || squash < 1) return;
  for (let round = 0; round < 3; round++) {
    const s = std(k.read(layers[squash - 1].output));
    if (!(s > 0) || !Number.isFinite(s)) break;
    scaleWeights(layers[lastWeighted], LOGIT_STD / s);
    for (let i = lastWeighted; i < layers.length; i++) run(i);
  }
}

interface Printed {
  percent: number;
  name: string;
}

/** darknet's `%5.2f%%: %s` lines; a string says why there are none. */
function runDarknetPredict(binary: string, root: string, files: { data: string; cfg: string; weights: string; image: string }, timeout: number): Printed[] | string {
  const r = spawnSync(binary, ['classifier', 'predict', files.data, files.cfg, files.weights, files.image], {
    cwd: root, encoding: 'utf8', timeout: timeout * 1000, maxBuffer: 64 << 20,
  });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') return `darknet too slow (over ${timeout} s; --predict-timeout)`;
  if (r.error) return `darknet failed: ${r.error.message}`;
  const printed = r.stdout.split('\n').map((l) => /^\s*(\S+)%: (.*)$/.exec(l)).filter((m) => m !== null)
    .map((m) => ({ percent: Number(m![1]), name: m![2] }));
  if (r.status !== 0 || printed.length === 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    return `darknet predict failed (exit ${r.status ?? r.signal}${last ? `: ${last.slice(0, 80)}` : ''})`;
  }
  return printed;
}

/** Compares darknet's printed top-k with our outputs (indexed by class; names are indexes). */
function compareTop(theirs: Printed[], ours: Float32Array): string {
  const ranked = Array.from({ length: ours.length }, (_, c) => c).sort((a, b) => ours[b] - ours[a]).slice(0, theirs.length);
  if (theirs.some((t) => !Number.isFinite(t.percent))) return `no: darknet printed ${theirs.map((t) => t.percent).join(', ')}`;
  let maxDiff = 0;
  let swaps = 0;
  let identical = 0;
  for (let i = 0; i < theirs.length; i++) {
    const t = theirs[i];
    const mine = Number(ranked[i]);
    if (!(Number(t.name) >= 0 && Number(t.name) < ours.length)) return `no: darknet printed class '${t.name}'`;
    const value = 100 * ours[Number(t.name)];
    const diff = Math.abs(value - t.percent);
    maxDiff = Math.max(maxDiff, diff);
    if (diff > TOLERANCE) return `no: #${i + 1} '${t.name}' darknet ${t.percent.toFixed(2)}%, ours ${value.toFixed(4)}%`;
    // C's printf and toFixed both round the float's exact value, promoted to double
    if (value.toFixed(2) === t.percent.toFixed(2)) identical++;
    if (String(mine) === t.name) continue;
    // another class here: only where darknet printed the same value for it (or, past its
    // list, for the last places)
    const j = theirs.findIndex((u) => u.name === String(mine));
    const tied = j >= 0 ? theirs[j].percent === t.percent : theirs[theirs.length - 1].percent === t.percent;
    if (!tied || Math.abs(100 * ours[mine] - t.percent) > TOLERANCE) {
      return `no: #${i + 1} darknet '${t.name}' ${t.percent.toFixed(2)}%, ours '${mine}' ${(100 * ours[mine]).toFixed(4)}%`;
    }
    swaps++;
  }
  const ties = theirs.length - new Set(theirs.map((t) => t.percent)).size;
  if (ties === theirs.length - 1 && theirs.length > 1) return `no comparison: darknet's top ${theirs.length} all print ${theirs[0].percent.toFixed(2)}% (outputs near-uniform)`;
  const notes = [`${identical}/${theirs.length} print identically`, `max diff ${maxDiff.toFixed(3)}%`, `top-1 ${theirs[0].percent.toFixed(2)}%`];
  if (ties) notes.push(`${ties} printed tie(s)${swaps ? `, ${swaps} swapped` : ''}`);
  return `yes (top-${theirs.length} same, ${notes.join(', ')})`;
}

/**
 * The "forward matches" column for one classifier: weights made informative and written by
 * darknet-ts, darknet's `classifier predict` and ours on the same files.
 */
async function comparePredict(name: string, dir: string, root: string, spec: NetworkSpec, k: Kernels, args: Args): Promise<string> {
  const c = spec.net.c;
  if (c !== 1 && c !== 3) return `not compared: channels=${c} (predict loads 1 or 3)`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'darknet-zoo-'));
  try {
    const random = mulberry32(2024);
    const files = {
      data: path.join(tmp, 'zoo.data'),
      cfg: path.join('cfg', name),
      weights: path.join(tmp, 'zoo.weights'),
      image: path.join(tmp, `zoo-${IMAGE_W}x${IMAGE_H}.png`),
    };
    fs.writeFileSync(files.image, testImage(c, random));
    const classes = spec.layers[spec.layers.length - 1].outputs;
    fs.writeFileSync(path.join(tmp, 'zoo.names'), Array.from({ length: classes }, (_, i) => `${i}\n`).join(''));
    fs.writeFileSync(files.data, `classes=${classes}\nnames=${path.join(tmp, 'zoo.names')}\ntop=${Math.min(TOP, classes)}\n`);
    const x = await loadNetworkInput(files.image, spec.net.w, spec.net.h, c, 'letterbox');
    const net = new Network(withBatch(spec, 1), k, { seed: 1 });
    try {
      makeInformative(net, x, random);
      writeWeights(files.weights, net.exportWeights(), net.spec);
    } finally {
      net.dispose();
    }
    const theirs = runDarknetPredict(path.resolve(args.darknet!), root, files, args.predictTimeout);
    if (typeof theirs === 'string') return theirs;
    const ours = new Float32Array(classes);
    const cwd = process.cwd();
    process.chdir(root); // tree= paths are relative to darknet's folder
    try {
      await predictImages({ dataFile: files.data, cfgFile: path.join(dir, name), weights: files.weights, top: classes, kernels: k }, [files.image], (p) => {
        for (const t of p.top) ours[t.class] = t.probability;
      });
    } finally {
      process.chdir(cwd);
    }
    // a tree softmax (darknet9000): both predicts print hierarchy_predictions' leaf probabilities
    return compareTop(theirs, ours);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = path.resolve(args.cfgs);
  const root = path.dirname(dir);
  const names = (args.only ?? fs.readdirSync(dir).filter((f) => f.endsWith('.cfg'))).sort();
  const rows: string[][] = [['cfg', 'classifier', 'loads', 'table = darknet', 'forward+backward', 'forward matches', 'missing / note']];
  const cwd = process.cwd();
  const k = await createKernels(args.backend);
  for (const name of names) {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    const kind = classify(text);
    let spec: NetworkSpec;
    process.chdir(root); // tree= paths are relative to darknet's folder
    try {
      spec = readCfg(path.join(dir, name));
    } catch (e) {
      rows.push([name, kind.classifier ? 'yes' : `no: ${kind.why}`, 'no', '', '', '', (e as Error).message.split('\n')[0].replace(/; known: .*/, '')]);
      continue;
    } finally {
      process.chdir(cwd);
    }
    let table = '(no --darknet)';
    if (args.darknet) {
      const theirs = runDarknet(path.resolve(args.darknet), root, name);
      if (typeof theirs === 'string') table = theirs;
      else {
        const ours = ourRows(spec);
        const bad = ours.findIndex((r, i) => r !== theirs.rows[i]);
        const flops = spec.layers.reduce((sum, l) => sum + l.flops, 0);
        table = ours.length !== theirs.rows.length
          ? `no (${ours.length} rows, darknet ${theirs.rows.length})`
          : bad >= 0 ? `no (row ${bad}: '${ours[bad].trim()}' vs '${theirs.rows[bad].trim()}')`
            : flops !== theirs.ops ? `rows yes, total no (${flops} vs darknet ${theirs.ops} FLOPs)`
              : `yes (${ours.length} rows, ${(flops / 1e9).toFixed(3)} BFLOPs)`;
      }
    }
    let run: string;
    let matches = '';
    const floats = activationFloats(spec);
    if (!kind.classifier) run = '(not a classifier)';
    else if (floats > args.maxInputs) run = matches = `skipped (${(floats / 1e6).toFixed(0)}M floats > --max-inputs)`;
    else {
      try {
        run = runOnce(spec, k);
      } catch (e) {
        run = `FAILED: ${(e as Error).message.split('\n')[0]}`;
      }
      if (!args.darknet) matches = '(no --darknet)';
      else if (!args.predict) matches = '(--no-predict)';
      else {
        try {
          matches = await comparePredict(name, dir, root, spec, k, args);
        } catch (e) {
          matches = `FAILED: ${(e as Error).message.split('\n')[0]}`;
        }
      }
    }
    rows.push([name, kind.classifier ? 'yes' : `no: ${kind.why}`, 'yes', table, run, matches, spec.warnings.length ? `${spec.warnings.length} warning(s): ${spec.warnings[0]}` : '']);
    process.stderr.write(`${name}: ${table}; ${run}${matches ? `; ${matches}` : ''}\n`);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c])).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  k.dispose();
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`darknet-zoo: ${(e as Error).message}`);
    process.exit(1);
  });
}
