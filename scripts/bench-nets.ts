/**
 * `npm run bench:nets -- --cfgs DIR`: speed on real-size nets. darknet's reference model
 * (darknet.cfg) at 256x256 and ResNet-18 (resnet18.cfg) at 224x224, read from the user's
 * darknet `cfg/` folder (nothing of darknet is in this repository): batch-1 inference
 * latency, batch-16 inference images/s and batch-16 training images/s of wasm-simd on 1
 * and 2 threads, beside darknet's C when pointed at its binaries (`--darknet PATH`, once
 * per build: a 1-thread build, an OpenMP build run with OMP_NUM_THREADS=2). Also the
 * GFLOP/s reached against the wasm-SIMD limit of this CPU (measured here), and the peak
 * RSS of every run.
 *
 *   npm run bench:nets -- --cfgs ~/darknet/cfg
 *   npm run bench:nets -- --cfgs ~/darknet/cfg --darknet ~/darknet/darknet --darknet ~/darknet-omp/darknet
 *   npm run bench:nets -- --cfgs ~/darknet/cfg --quick --nets darknet
 *
 * How each number is obtained (printed with the table):
 * - ours: each (net, threads, inference | training) runs in its own process (this file
 *   with --child); inference times 20 single-image calls of Network.predict (median
 *   latency; 8 with --quick) and 16-image calls (images/s = 16 / median seconds); training times
 *   Network.trainBatch at batch 16 (forward + backward + update; images/s = 16 / median
 *   seconds). Inputs are random; the weights are the cfg's random initialisation.
 * - darknet latency: `darknet speed CFG TICS` (darknet.c: batch 1, TICS forward passes of
 *   a zero image, timed by itself; we read its `Speed: S sec/eval`, a mean).
 * - darknet training: `darknet classifier train` on generated PNGs at batch 16, max_batches
 *   small; its per-batch `... S seconds ...` lines time train_network() alone (images
 *   load on another thread); the first batch is dropped, images/s = 16 / median seconds.
 * - darknet batch-16 inference: darknet has no verb that times it; its convolutional
 *   forward loops over the batch's images (im2col + gemm per image), so its batch-16
 *   rate is its batch-1 rate, shown as `~1000 / latency`.
 * Runs alternate (ours 1 thread, ours 2 threads, each darknet, again) `--repeats` times
 * and the table shows medians: the machine may be shared, ratios are measured side by side.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { readCfg } from '../src/cfg/parser';
import {
  inspectDarknet, runDarknetTrain, spawnMeasured, type DarknetBinary, type DarknetFiles, type DarknetVariant,
} from './bench-darknet';
import { setNetKey } from './bench-runners';
import { measureSimdPeak } from './simd-peak';

const ROOT = path.resolve(__dirname, '..', '..');
const RESULT_TAG = '@@NETS ';
/** images per batch for batch inference and training, ours and darknet's */
const BATCH = 16;

type NetId = 'darknet' | 'resnet18';
const NETS: Record<NetId, { title: string; cfg: string; size: number }> = {
  darknet: { title: 'darknet reference', cfg: 'darknet.cfg', size: 256 },
  resnet18: { title: 'ResNet-18', cfg: 'resnet18.cfg', size: 224 },
};

interface Options {
  cfgs: string;
  darknet: string[];
  nets: NetId[];
  threads: number[];
  repeats: number;
  quick: boolean;
  json?: string;
  verbose: boolean;
}

const HELP = `npm run bench:nets -- --cfgs DIR [options]

Batch-1 inference latency, batch-${BATCH} inference images/s and batch-${BATCH} training
images/s of darknet.cfg (256x256) and resnet18.cfg (224x224) from darknet's cfg folder,
on wasm-simd with 1 and 2 threads, beside darknet's C; GFLOP/s against the wasm-SIMD
limit of this CPU; peak RSS. Each run in its own process, alternated, medians.

  --cfgs DIR        darknet's cfg/ folder (darknet.cfg and resnet18.cfg are read from it)
  --darknet PATH    a darknet binary you built (repeat for several); an OpenMP build
                    runs with OMP_NUM_THREADS=2
  --nets LIST       darknet,resnet18 (default both)
  --threads LIST    wasm-simd thread counts (default 1,2)
  --repeats N       alternated runs of each configuration (default 3: a median that one
                    slow process on a shared machine does not move; --quick 1)
  --quick           one run each, fewer timed calls (~3 minutes with darknet)
  --json FILE       also write every raw result as JSON
  --verbose         show each child's stderr
`;

function parseArgs(argv: string[]): Options {
  const o: Options = { cfgs: '', darknet: [], nets: ['darknet', 'resnet18'], threads: [1, 2], repeats: NaN, quick: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a.includes('=') ? a.slice(0, a.indexOf('=')) : a) {
      case '--cfgs': o.cfgs = value(); break;
      case '--darknet': o.darknet.push(...value().split(',').map((s) => s.trim()).filter(Boolean)); break;
      case '--nets': o.nets = value().split(',').map((s) => s.trim()) as NetId[]; break;
      case '--threads': o.threads = value().split(',').map(Number); break;
      case '--repeats': o.repeats = Number(value()); break;
      case '--quick': o.quick = true; break;
      case '--json': o.json = value(); break;
      case '--verbose': o.verbose = true; break;
      case '--help': case '-h': process.stdout.write(HELP); process.exit(0); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (!o.cfgs) throw new Error('give --cfgs /path/to/darknet/cfg (see --help)');
  if (Number.isNaN(o.repeats)) o.repeats = o.quick ? 1 : 3;
  if (!(o.repeats >= 1)) throw new Error('--repeats must be at least 1');
  for (const n of o.nets) if (!(n in NETS)) throw new Error(`--nets: unknown net '${n}' (${Object.keys(NETS).join(', ')})`);
  for (const t of o.threads) if (!(Number.isInteger(t) && t >= 1)) throw new Error('--threads: positive integers');
  return o;
}

// ---------------------------------------------------------------------------------------
// Our side: one child process per (net, threads, phase)

interface ChildJob {
  cfgFile: string;
  threads: number;
  phase: 'infer' | 'train';
  /** timed calls (at least) of each measurement, after `warm` untimed ones */
  calls: number;
  warm: number;
  /** timed single-image calls for the latency (cheap, and noisier than a batch's) */
  latencyCalls: number;
}

interface ChildResult {
  ok: boolean;
  error?: string;
  description?: string;
  /** forward FLOPs of one image, from the spec (darknet's operation count) */
  flops: number;
  latencyMs?: number;
  inferImagesPerSecond?: number;
  trainImagesPerSecond?: number;
  /** process.resourceUsage().maxRSS, MB */
  peakRssMB: number;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median seconds of `calls` timed calls after `warm` untimed ones. */
function timeCalls(call: () => void, warm: number, calls: number): number {
  for (let i = 0; i < warm; i++) call();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    call();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32;
  }
  return a;
}

async function runChild(job: ChildJob): Promise<ChildResult> {
  const { Network, withBatch } = await import('../src/engine/network');
  const { WasmSimdKernels } = await import('../src/kernels/wasm-simd');
  const spec = readCfg(job.cfgFile);
  const flops = spec.layers.reduce((s, l) => s + l.flops, 0);
  const peak = () => process.resourceUsage().maxRSS / 1024;
  const k = await WasmSimdKernels.create({ threads: job.threads, maxMemoryMiB: 4096 });
  const result: ChildResult = { ok: true, description: k.description, flops, peakRssMB: 0 };
  try {
    const inputs = spec.net.inputs;
    const x = randomArray(BATCH * inputs, 1);
    if (job.phase === 'infer') {
      const net1 = new Network(withBatch(spec, 1), k, { seed: 1 });
      const one = x.subarray(0, inputs);
      result.latencyMs = 1000 * timeCalls(() => void net1.predict(one), 3 * job.warm, job.latencyCalls);
      net1.dispose();
      const net = new Network(withBatch(spec, BATCH), k, { seed: 1 });
      result.inferImagesPerSecond = BATCH / timeCalls(() => void net.predict(x), job.warm, job.calls);
      net.dispose();
    } else {
      const net = new Network(withBatch(spec, BATCH), k, { seed: 1 });
      const classes = net.outputs;
      const y = new Float32Array(BATCH * classes);
      for (let b = 0; b < BATCH; b++) y[b * classes + ((b * 7919) % classes)] = 1;
      result.trainImagesPerSecond = BATCH / timeCalls(() => {
        const loss = net.trainBatch(x, y);
        if (!Number.isFinite(loss)) throw new Error(`training loss is ${loss}`);
      }, job.warm, job.calls);
      net.dispose();
    }
  } catch (e) {
    result.ok = false;
    result.error = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  }
  result.peakRssMB = peak();
  k.dispose();
  return result;
}

async function childMain(encoded: string): Promise<void> {
  const job = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as ChildJob;
  const result = await runChild(job);
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`, () => process.exit(0));
}

async function runOurs(job: ChildJob, verbose: boolean): Promise<ChildResult> {
  const r = await spawnMeasured(process.execPath, [__filename, '--child', Buffer.from(JSON.stringify(job)).toString('base64')], {
    cwd: ROOT,
    timeoutSeconds: 300,
    onStderr: verbose ? (d) => process.stderr.write(d.replace(/^/gm, '    | ')) : undefined,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith(RESULT_TAG));
  if (line) return JSON.parse(line.slice(RESULT_TAG.length)) as ChildResult;
  const why = r.timedOut ? 'timed out after 300 s' : `exited ${r.code ?? r.signal}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 200)}`;
  return { ok: false, error: why, flops: NaN, peakRssMB: r.peakRssMB };
}

// ---------------------------------------------------------------------------------------
// darknet's side

interface DarknetSpeed {
  ok: boolean;
  error?: string;
  latencyMs: number;
  peakRssMB: number;
}

/** `darknet speed CFG TICS`: TICS batch-1 forward passes, timed by darknet itself (a mean). */
async function runDarknetSpeed(v: DarknetVariant, cfgFile: string, tics: number): Promise<DarknetSpeed> {
  const r = await spawnMeasured(v.binary.path, ['speed', cfgFile, String(tics)], {
    cwd: path.dirname(cfgFile),
    env: { ...process.env, OMP_NUM_THREADS: String(v.threads) },
    timeoutSeconds: 300,
  });
  const m = /Speed: ([\d.]+) sec\/eval/.exec(r.stdout);
  if (!m) return { ok: false, error: `no 'Speed:' line (exit ${r.code ?? r.signal})`, latencyMs: NaN, peakRssMB: r.peakRssMB };
  return { ok: true, latencyMs: 1000 * Number(m[1]), peakRssMB: r.peakRssMB };
}

const CLASSES = 1000;
const label = (i: number) => `cls${String(i).padStart(4, '0')}`;

/** PNGs of noise named after labels, a labels file and a train list, for `classifier train`. */
function writeTrainImages(dir: string, count: number): { list: string; labels: string } {
  const img = path.join(dir, 'images');
  fs.mkdirSync(img, { recursive: true });
  const paths: string[] = [];
  const bytes = randomArray(64 * 64 * 4, 7);
  for (let i = 0; i < count; i++) {
    const png = new PNG({ width: 64, height: 64 });
    for (let p = 0; p < png.data.length; p++) png.data[p] = p % 4 === 3 ? 255 : Math.floor(bytes[(p + i * 97) % bytes.length] * 255);
    const file = path.join(img, `img${i}_${label((i * 37) % CLASSES)}.png`);
    fs.writeFileSync(file, PNG.sync.write(png));
    paths.push(file);
  }
  const list = path.join(dir, 'train.list');
  fs.writeFileSync(list, paths.join('\n') + '\n');
  const labels = path.join(dir, 'labels.txt');
  fs.writeFileSync(labels, Array.from({ length: CLASSES }, (_, i) => label(i)).join('\n') + '\n');
  return { list, labels };
}

// ---------------------------------------------------------------------------------------
// The plan, the runs, the table

interface Cfgs {
  /** batch=16: what our children read, and darknet's `speed` (which sets batch 1 itself) */
  ours: string;
  /** darknet's classifier train: batch=16 and max_batches */
  train: DarknetFiles;
}

/** darknet's cfg with our size and batch, and max_batches for darknet's training runs, in tmp. */
function writeCfgs(o: Options, net: NetId, tmp: string, images: { list: string; labels: string }, maxBatches: number): Cfgs {
  const src = path.join(path.resolve(o.cfgs), NETS[net].cfg);
  if (!fs.existsSync(src)) throw new Error(`--cfgs: no ${NETS[net].cfg} in ${o.cfgs}`);
  let text = fs.readFileSync(src, 'utf8');
  for (const [key, value] of [['width', NETS[net].size], ['height', NETS[net].size], ['batch', BATCH], ['subdivisions', 1], ['max_batches', maxBatches]]) {
    text = setNetKey(text, String(key), String(value));
  }
  const dir = path.join(tmp, net);
  fs.mkdirSync(path.join(dir, 'backup'), { recursive: true });
  const cfgFile = path.join(dir, `${net}.cfg`);
  fs.writeFileSync(cfgFile, text);
  const dataFile = path.join(dir, `${net}.data`);
  fs.writeFileSync(dataFile, [`classes=${CLASSES}`, `train=${images.list}`, `labels=${images.labels}`, `backup=${path.join(dir, 'backup')}`, ''].join('\n'));
  return {
    ours: cfgFile,
    train: {
      cfgFile, dataFile, backupDir: path.join(dir, 'backup'), weightsFile: path.join(dir, 'backup', `${net}.weights`),
      validWeights: path.join(dir, 'last.weights'), maxBatches,
    },
  };
}

interface Row {
  net: NetId;
  label: string;
  kind: 'ours' | 'darknet';
  threads: number;
  variant?: DarknetVariant;
  infer: ChildResult[];
  train: ChildResult[];
  speed: DarknetSpeed[];
  dtrain: Array<{ ok: boolean; error?: string; imagesPerSecond: number; peakRssMB: number }>;
}

interface Figures {
  latencyMs: number;
  infer: number;
  inferDerived: boolean;
  train: number;
  inferRss: number;
  trainRss: number;
  errors: string[];
}

function figures(r: Row): Figures {
  const ok = <T extends { ok: boolean }>(xs: T[]) => xs.filter((x) => x.ok);
  const errors = [...r.infer, ...r.train, ...r.speed, ...r.dtrain].filter((x) => !x.ok).map((x) => x.error ?? 'failed');
  if (r.kind === 'darknet') {
    const latencyMs = median(ok(r.speed).map((s) => s.latencyMs));
    return {
      latencyMs, infer: 1000 / latencyMs, inferDerived: true, train: median(ok(r.dtrain).map((t) => t.imagesPerSecond)),
      inferRss: median(ok(r.speed).map((s) => s.peakRssMB)), trainRss: median(ok(r.dtrain).map((t) => t.peakRssMB)), errors,
    };
  }
  return {
    latencyMs: median(ok(r.infer).map((c) => c.latencyMs ?? NaN)),
    infer: median(ok(r.infer).map((c) => c.inferImagesPerSecond ?? NaN)),
    inferDerived: false,
    train: median(ok(r.train).map((c) => c.trainImagesPerSecond ?? NaN)),
    inferRss: median(ok(r.infer).map((c) => c.peakRssMB)),
    trainRss: median(ok(r.train).map((c) => c.peakRssMB)),
    errors,
  };
}

function fmt(v: number, digits?: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const d = digits ?? (v >= 100 ? 0 : v >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

function ratio(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}x` : 'n/a';
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function loadLine(): string {
  const [a, b, c] = os.loadavg();
  return `load average ${a.toFixed(2)}, ${b.toFixed(2)}, ${c.toFixed(2)} (1, 5, 15 min) on ${os.cpus().length} CPUs`;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') return childMain(argv[1]);
  const o = parseArgs(argv);
  const log = (s: string) => process.stderr.write(s + '\n');
  const started = performance.now();
  const startLoad = loadLine();
  const bins: DarknetBinary[] = o.darknet.map(inspectDarknet);
  // named by build, and by position where several builds of a kind are given
  const kinds = bins.map((b) => (b.openmp ? 'OpenMP, OMP_NUM_THREADS=2' : '1-thread build'));
  const variants: DarknetVariant[] = bins.map((b, i) => ({
    binary: b,
    threads: b.openmp ? 2 : 1,
    label: `darknet ${kinds[i]}${kinds.filter((k) => k === kinds[i]).length > 1 ? ` #${i + 1}` : ''}`,
  }));

  log('measuring the wasm-SIMD mul+add limit of this CPU (one thread) ...');
  const simd = await measureSimdPeak();

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'darknet-ts-nets-'));
  const darknetDrop = 1;
  const darknetTimed = o.quick ? 1 : 2;
  const images = variants.length ? writeTrainImages(tmp, 32) : { list: '', labels: '' };
  const cfgs = new Map<NetId, Cfgs>();
  for (const net of o.nets) cfgs.set(net, writeCfgs(o, net, tmp, images, darknetDrop + darknetTimed));
  const tics: Record<NetId, number> = o.quick ? { darknet: 8, resnet18: 3 } : { darknet: 16, resnet18: 6 };
  const calls = o.quick ? { warm: 1, calls: 2, latencyCalls: 8 } : { warm: 1, calls: 3, latencyCalls: 20 };

  const rows: Row[] = [];
  for (const net of o.nets) {
    for (const t of o.threads) rows.push({ net, label: `ours wasm-simd ${t} thread${t > 1 ? 's' : ''}`, kind: 'ours', threads: t, infer: [], train: [], speed: [], dtrain: [] });
    for (const v of variants) rows.push({ net, label: v.label, kind: 'darknet', threads: v.threads, variant: v, infer: [], train: [], speed: [], dtrain: [] });
  }
  let flops: Partial<Record<NetId, number>> = {};
  for (let rep = 0; rep < o.repeats; rep++) {
    for (const row of rows) {
      const c = cfgs.get(row.net)!;
      const tag = `[${rep + 1}/${o.repeats}] ${NETS[row.net].title}, ${row.label}`;
      if (row.kind === 'ours') {
        for (const phase of ['infer', 'train'] as const) {
          const t0 = performance.now();
          const r = await runOurs({ cfgFile: c.ours, threads: row.threads, phase, ...calls }, o.verbose);
          (phase === 'infer' ? row.infer : row.train).push(r);
          if (r.ok) flops = { ...flops, [row.net]: r.flops };
          log(`${tag}, ${phase}: ${r.ok ? 'ok' : r.error} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        }
      } else {
        const v = row.variant!;
        const s = await runDarknetSpeed(v, c.ours, tics[row.net]);
        row.speed.push(s);
        log(`${tag}, speed: ${s.ok ? `${s.latencyMs.toFixed(1)} ms` : s.error}`);
        const tr = await runDarknetTrain(v, c.train, darknetDrop, 600);
        row.dtrain.push({ ok: tr.ok, error: tr.error, imagesPerSecond: BATCH / tr.medianSeconds, peakRssMB: tr.peakRssMB });
        log(`${tag}, classifier train: ${tr.ok ? `${tr.medianSeconds.toFixed(2)} s/batch${tr.note ? ` (${tr.note})` : ''}` : tr.error}`);
      }
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });

  // ---- the report ----
  const out: string[] = [];
  out.push(`# darknet-ts on real-size nets (${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'})`);
  out.push(`wasm-SIMD limit of this CPU: ${fmt(simd.gflops, 1)} GFLOP/s per thread (f32x4 mul + add, ${simd.chains} independent chains, ` +
    `best of ${simd.tried.join('/')} chains; x threads for the limit of several); ours' best gemm tile reaches less (it also loads)`);
  const header = ['net / implementation', 'latency b=1 ms', `infer b=${BATCH} img/s`, `train b=${BATCH} img/s`, 'infer GFLOP/s', '% of limit', 'train GFLOP/s', '% of limit', 'peak RSS infer / train MB'];
  const body: string[][] = [];
  const figs = new Map<Row, Figures>();
  for (const row of rows) {
    const f = figures(row);
    figs.set(row, f);
    const F = flops[row.net] ?? NaN;
    const limit = simd.gflops * row.threads;
    const inferG = (F * f.infer) / 1e9;
    const trainG = (3 * F * f.train) / 1e9;
    body.push([
      `${NETS[row.net].title} ${NETS[row.net].size}: ${row.label}`,
      fmt(f.latencyMs),
      `${f.inferDerived && Number.isFinite(f.infer) ? '~' : ''}${fmt(f.infer)}`,
      fmt(f.train),
      fmt(inferG, 1),
      Number.isFinite(inferG) ? `${((100 * inferG) / limit).toFixed(0)}%` : 'n/a',
      fmt(trainG, 1),
      Number.isFinite(trainG) ? `${((100 * trainG) / limit).toFixed(0)}%` : 'n/a',
      `${fmt(f.inferRss, 0)} / ${fmt(f.trainRss, 0)}`,
    ]);
  }
  out.push('');
  out.push(table(header, body));

  const ratios: string[][] = [];
  for (const net of o.nets) {
    const ours = rows.filter((r) => r.net === net && r.kind === 'ours');
    const one = ours.find((r) => r.threads === 1);
    for (const r of ours) {
      const f = figs.get(r)!;
      if (one && r !== one) {
        const g = figs.get(one)!;
        ratios.push([`${NETS[net].title}: ${r.label} vs 1 thread`, ratio(g.latencyMs / f.latencyMs), ratio(f.infer / g.infer), ratio(f.train / g.train)]);
      }
      for (const d of rows.filter((x) => x.net === net && x.kind === 'darknet')) {
        const g = figs.get(d)!;
        ratios.push([`${NETS[net].title}: ${r.label} vs ${d.label}`, ratio(g.latencyMs / f.latencyMs), ratio(f.infer / g.infer), ratio(f.train / g.train)]);
      }
    }
  }
  if (ratios.length) {
    out.push('');
    out.push(table(['speed-up (higher is faster)', 'latency b=1', `infer b=${BATCH}`, `train b=${BATCH}`], ratios));
  }
  const errors = rows.flatMap((r) => figs.get(r)!.errors.map((e) => `${NETS[r.net].title}, ${r.label}: ${e}`));
  out.push('');
  out.push('How each number was obtained:');
  out.push(`- ours: one process per (net, threads, inference | training); latency = median of ${calls.latencyCalls} single-image Network.predict calls after ${3 * calls.warm} untimed, ` +
    `infer = ${BATCH} / median seconds of ${BATCH}-image predict calls, train = ${BATCH} / median seconds of trainBatch ` +
    `(forward + backward + update) at batch ${BATCH}; random inputs and initial weights; peak RSS = the child's maxRSS`);
  if (variants.length) {
    out.push(`- darknet latency: \`darknet speed CFG ${tics.darknet}|${tics.resnet18}\` (batch 1, its own timer, a mean); ` +
      `infer b=${BATCH} is ~1000 / latency (darknet has no batched-inference timer; its conv forward loops over the images)`);
    out.push(`- darknet train: \`darknet classifier train\` at batch ${BATCH} on ${32} generated PNGs, max_batches ${darknetDrop + darknetTimed}, ` +
      `first ${darknetDrop} dropped; ${BATCH} / median of its per-batch seconds (train_network alone); peak RSS = VmHWM polled from /proc; ` +
      'an OpenMP build runs with OMP_NUM_THREADS=2');
  } else {
    out.push('- no --darknet binary given: darknet rows skipped');
  }
  out.push(`- GFLOP/s = forward FLOPs per image from the cfg (darknet's count: ${o.nets.map((n) => `${NETS[n].title} ${fmt((flops[n] ?? NaN) / 1e9, 2)} BFLOPs`).join(', ')}) ` +
    'x images/s, x3 for training; % of limit = against the wasm-SIMD limit x the row\'s threads');
  out.push(`- ${o.repeats} alternated run(s) of each configuration, medians; ${startLoad} at the start, ${loadLine()} at the end; ` +
    `${((performance.now() - started) / 60000).toFixed(1)} minutes`);
  if (errors.length) {
    out.push('');
    out.push('Errors:');
    for (const e of errors) out.push(`- ${e}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ simd, flops, rows: rows.map((r) => ({ ...r, variant: r.variant?.label })) }, null, 2));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`bench-nets: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
