/**
 * `npm run bench`: training and inference speed and peak memory of LeNet-5 and
 * LeNet-300-100 on every backend of ours that starts, side by side in the same run with
 * the same nets in tfjs (wasm and pure-JS backends) and convnetjs, and with darknet's C
 * when pointed at a darknet binary (`--darknet PATH`). One table, then ratios.
 *
 *   npm run bench                       # ~10 minutes
 *   npm run bench -- --quick            # ~2 minutes, one run each
 *   npm run bench -- --nets lenet --backends wasm-simd,tfjs-wasm,convnetjs --repeats 5
 *   npm run bench -- --darknet ~/darknet/darknet --darknet ~/darknet-omp/darknet
 *
 * Every measurement runs in its own child process (this file with --child), so peak RSS
 * is per configuration; configurations alternate (ours, each peer, darknet, ours, ...)
 * `--repeats` times and the table shows medians, since the machine may be shared.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeBackends } from '../src/kernels/backend';
import type { BackendName } from '../src/kernels/types';
import {
  darknetVariants, inspectDarknet, prepareDarknetData, runDarknetTrain, runDarknetValid, runOursValid, spawnMeasured,
  writeDarknetFiles, type DarknetBinary, type DarknetData, type DarknetFiles, type DarknetTrain, type DarknetVariant, type ValidRun,
} from './bench-darknet';
import {
  BATCH, firstLine, NETS, PEERS, runChild, WASM_SIMD_1T, type ChildJob, type ChildResult, type NetName, type PhaseBudget, type PhaseResult,
} from './bench-runners';

const ROOT = path.resolve(__dirname, '..', '..');
const OURS: readonly BackendName[] = ['wasm-simd', 'webasm', 'headlessgl', 'cpu', 'reference'];
/** Where ours runs the darknet-shaped (3-channel) net and `classifier valid`: the first of these selected and ok. */
const PRIMARY_ORDER: readonly BackendName[] = ['wasm-simd', 'webasm', 'cpu', 'reference'];

interface Options {
  quick: boolean;
  repeats: number;
  nets: NetName[];
  backends: string[] | null;
  darknet: string[];
  validImages: number;
  validRepeats: number;
  json?: string;
  verbose: boolean;
}

const HELP = `npm run bench -- [options]

Training (forward + backward + update) and inference images/s at batch 64, batch-1
latency and peak RSS for LeNet-5 and LeNet-300-100 on real MNIST, for our backends and
for tfjs-wasm, tfjs-cpu and convnetjs, each in its own process, alternated --repeats
times; medians.

  --quick              one run each, shorter timings (~2 minutes)
  --repeats N          runs of each configuration, alternated (default 3; --quick 1)
  --nets LIST          lenet,mlp (default both)
  --backends LIST      any of ${[...OURS, WASM_SIMD_1T, ...PEERS].join(', ')}, darknet (default all;
                       ${WASM_SIMD_1T} is wasm-simd on one thread)
  --darknet PATH       a darknet binary you built (repeat the flag for several, e.g. a
                       1-thread build and an OpenMP build); runs its classifier train and
                       classifier valid on the same nets (channels=3: darknet's classifier
                       always loads 3 channels)
  --valid-images N     test images for the classifier valid comparison (default 1000;
                       --quick 300; the issue's figure is 10000)
  --valid-repeats N    alternated runs of the classifier valid comparison (default 1)
  --json FILE          also write every raw result as JSON
  --verbose            show each child's stderr
`;

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, repeats: NaN, nets: ['lenet', 'mlp'], backends: null, darknet: [], validImages: NaN, validRepeats: 1, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    switch (name) {
      case '--quick': o.quick = true; break;
      case '--repeats': o.repeats = Number(value()); break;
      case '--nets': o.nets = value().split(',').map((s) => s.trim()) as NetName[]; break;
      case '--backends': o.backends = value().split(',').map((s) => s.trim()); break;
      case '--darknet': o.darknet.push(...value().split(',').map((s) => s.trim()).filter(Boolean)); break;
      case '--valid-images': o.validImages = Number(value()); break;
      case '--valid-repeats': o.validRepeats = Number(value()); break;
      case '--json': o.json = value(); break;
      case '--verbose': o.verbose = true; break;
      case '--help': case '-h': process.stdout.write(HELP); process.exit(0); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (Number.isNaN(o.repeats)) o.repeats = o.quick ? 1 : 3;
  if (Number.isNaN(o.validImages)) o.validImages = o.quick ? 300 : 1000;
  if (!(o.repeats >= 1)) throw new Error('--repeats must be at least 1');
  for (const n of o.nets) if (!(n in NETS)) throw new Error(`--nets: unknown net '${n}' (lenet, mlp)`);
  const known = new Set<string>([...OURS, WASM_SIMD_1T, ...PEERS, 'darknet']);
  for (const b of o.backends ?? []) if (!known.has(b)) throw new Error(`--backends: unknown '${b}' (${[...known].join(', ')})`);
  return o;
}

function budgets(quick: boolean): Pick<ChildJob, 'train' | 'infer' | 'latency'> {
  const p = (warm: number, warmSeconds: number, minCalls: number, minSeconds: number): PhaseBudget => ({ warm, warmSeconds, minCalls, minSeconds });
  return quick
    ? { train: p(2, 2, 2, 1), infer: p(2, 1, 2, 0.5), latency: p(3, 0.5, 5, 0.3) }
    : { train: p(3, 3, 2, 2.5), infer: p(2, 1.5, 2, 1.2), latency: p(5, 1, 5, 0.6) };
}

/** darknet batches per run (the first DARKNET_DROP are dropped): ~3 s at its known speed. */
const DARKNET_DROP = 5;
function darknetBatches(net: NetName, quick: boolean): number {
  const timed = net === 'lenet' ? (quick ? 15 : 35) : (quick ? 40 : 80);
  return DARKNET_DROP + timed;
}

// ---------------------------------------------------------------------------------------
// Child processes

const RESULT_TAG = '@@BENCH ';

function childArgs(job: ChildJob): string[] {
  return [__filename, '--child', Buffer.from(JSON.stringify(job)).toString('base64')];
}

interface ChildRun {
  result: ChildResult;
  wallSeconds: number;
}

async function runInChild(job: ChildJob, xvfb: boolean, verbose: boolean, timeoutSeconds: number): Promise<ChildRun> {
  const [cmd, args] = xvfb ? ['xvfb-run', ['-a', process.execPath, ...childArgs(job)]] : [process.execPath, childArgs(job)];
  const r = await spawnMeasured(cmd, args, {
    cwd: ROOT,
    timeoutSeconds,
    onStderr: verbose ? (d) => process.stderr.write(d.replace(/^/gm, '    | ')) : undefined,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith(RESULT_TAG));
  if (line) return { result: JSON.parse(line.slice(RESULT_TAG.length)) as ChildResult, wallSeconds: r.wallSeconds };
  const why = r.timedOut
    ? `timed out after ${timeoutSeconds} s`
    : `child exited ${r.code ?? r.signal} without a result: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 200)}`;
  return { result: { ok: false, error: why, description: job.name, peakRssMB: r.peakRssMB, baseRssMB: 0 }, wallSeconds: r.wallSeconds };
}

async function childMain(encoded: string): Promise<void> {
  const job = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as ChildJob;
  const result = await runChild(job);
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** headlessgl: probed in a child under xvfb-run when this process has no display. */
function probeMain(name: string): void {
  const [p] = probeBackends([name as BackendName]);
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(p)}\n`, () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// The plan

interface Config {
  net: NetName;
  /** column name in the ratio tables */
  id: string;
  label: string;
  kind: 'ours' | 'peer' | 'darknet';
  channels: 1 | 3;
  backend?: string;
  xvfb?: boolean;
  variant?: DarknetVariant;
  runs: ChildRun[];
  darknetRuns: DarknetTrain[];
  /** ran slower than the limit once: not repeated */
  slow: boolean;
  skipped?: string;
}

interface ValidConfig {
  net: NetName;
  label: string;
  variant?: DarknetVariant;
  backend?: string;
  batch?: number;
  runs: ValidRun[];
}

interface Availability {
  ours: Array<{ name: BackendName; xvfb: boolean }>;
  notes: string[];
}

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function probeOurs(selected: (n: string) => boolean): Availability {
  const out: Availability = { ours: [], notes: [] };
  for (const name of OURS) {
    if (!selected(name)) continue;
    const [p] = probeBackends([name]);
    if (p.ok) {
      out.ours.push({ name, xvfb: false });
      continue;
    }
    if (name === 'headlessgl' && !process.env.DISPLAY && hasCommand('xvfb-run')) {
      const r = spawnSync('xvfb-run', ['-a', process.execPath, __filename, '--probe', name], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith(RESULT_TAG));
      const q = line ? JSON.parse(line.slice(RESULT_TAG.length)) : { ok: false, reason: `xvfb-run probe failed: ${firstLine(r.stderr ?? r.error)}` };
      if (q.ok) {
        out.ours.push({ name, xvfb: true });
        out.notes.push('headlessgl runs under xvfb-run -a (no DISPLAY here): Mesa software GL on the CPU, so its speed here says nothing about a GPU');
        continue;
      }
      out.notes.push(`${name}: does not start here: ${q.reason}`);
      continue;
    }
    out.notes.push(`${name}: does not start here: ${p.reason}`);
  }
  return out;
}

function peerAvailable(name: string): string | null {
  const pkgs = name === 'convnetjs' ? ['convnetjs'] : ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', name === 'tfjs-wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu'];
  for (const p of pkgs) {
    try {
      require.resolve(p);
    } catch {
      return `${p} is not installed (it is a devDependency: npm install)`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Numbers and formatting

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function isPhase(p: PhaseResult | { na: string } | undefined): p is PhaseResult {
  return !!p && 'median' in p;
}

interface Figures {
  train: number;
  infer: number;
  latencyMs: number;
  rss: number;
  runs: number;
  trainNa?: string;
  inferNa?: string;
  latencyNa?: string;
  error?: string;
  readbacks?: number;
  description?: string;
  loss?: { first: number; last: number; batches: number };
}

function figures(c: Config): Figures {
  if (c.kind === 'darknet') {
    const ok = c.darknetRuns.filter((r) => r.ok);
    const err = c.darknetRuns.find((r) => !r.ok)?.error;
    return {
      train: median(ok.map((r) => BATCH / r.medianSeconds)),
      infer: NaN,
      latencyMs: NaN,
      rss: median(ok.map((r) => r.peakRssMB)),
      runs: ok.length,
      inferNa: 'see classifier valid',
      latencyNa: 'see classifier valid',
      error: ok.length ? undefined : err ?? c.skipped,
    };
  }
  const ok = c.runs.map((r) => r.result).filter((r) => r.ok);
  const perImage = (p: (r: ChildResult) => PhaseResult | { na: string } | undefined) =>
    median(ok.map(p).filter(isPhase).map((x) => BATCH / x.median));
  const na = (p: (r: ChildResult) => PhaseResult | { na: string } | undefined) => {
    const x = ok.map(p).find((v) => v && 'na' in v) as { na: string } | undefined;
    return x?.na;
  };
  return {
    train: perImage((r) => r.train),
    infer: perImage((r) => r.infer),
    latencyMs: median(ok.map((r) => r.latency).filter(isPhase).map((x) => x.median * 1000)),
    rss: median(ok.map((r) => r.peakRssMB)),
    runs: ok.length,
    trainNa: na((r) => r.train),
    error: ok.length ? undefined : c.runs.find((r) => !r.result.ok)?.result.error ?? c.skipped,
    readbacks: median(ok.map((r) => r.readbacksPerStep).filter((v): v is number => v !== undefined)),
    description: ok[0]?.description ?? c.runs[0]?.result.description,
    loss: ok.find((r) => r.loss)?.loss,
  };
}

function fmt(v: number, digits?: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const d = digits ?? (v >= 100 ? 0 : v >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

function ratio(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}x`;
}

function table(header: string[], rows: string[][], right: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function loadLine(): string {
  const [a, b, c] = os.loadavg();
  return `load average ${a.toFixed(2)}, ${b.toFixed(2)}, ${c.toFixed(2)} (1, 5, 15 min) on ${os.cpus().length} CPUs`;
}

// ---------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') return childMain(argv[1]);
  if (argv[0] === '--probe') return probeMain(argv[1]);
  const o = parseArgs(argv);
  const started = performance.now();
  const startLoad = loadLine();
  const log = (s: string) => process.stderr.write(s + '\n');
  const selected = (n: string) => !o.backends || o.backends.includes(n);
  const b = budgets(o.quick);
  const childTimeout = o.quick ? 240 : 480;
  const slowSeconds = o.quick ? 20 : 30;
  /** a darknet run (train or valid) longer than this is stopped and judged on what it finished */
  const darknetCap = o.quick ? 15 : 20;

  const avail = probeOurs(selected);
  const notes = [...avail.notes];
  const peers = PEERS.filter(selected).filter((p) => {
    const why = peerAvailable(p);
    if (why) notes.push(`${p}: ${why}`);
    return !why;
  });
  let bins: DarknetBinary[] = [];
  if (o.darknet.length && selected('darknet')) bins = o.darknet.map(inspectDarknet);
  const variants = darknetVariants(bins);
  const primary = PRIMARY_ORDER.find((n) => avail.ours.some((a) => a.name === n));
  if (variants.length && !primary) notes.push('no non-GL backend of ours selected: the 3-channel and classifier valid rows of ours are skipped');

  let tmp = '';
  let data: DarknetData | null = null;
  const dnFiles = new Map<NetName, DarknetFiles>();
  if (variants.length) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'darknet-ts-bench-'));
    log(`darknet: writing 3-channel MNIST PNGs (cached in ${path.join(os.tmpdir(), 'darknet-ts-bench')}) and cfgs into ${tmp}`);
    data = prepareDarknetData(tmp, Math.max(1024, o.validImages), o.validImages);
    for (const net of o.nets) {
      dnFiles.set(net, writeDarknetFiles(ROOT, path.join(tmp, `run-${net}`), net, darknetBatches(net, o.quick), data));
    }
  }

  // Configurations per net, in the order they alternate.
  const configs: Config[] = [];
  const valids: ValidConfig[] = [];
  for (const net of o.nets) {
    const mk = (c: Omit<Config, 'net' | 'runs' | 'darknetRuns' | 'slow'>): Config => ({ net, runs: [], darknetRuns: [], slow: false, ...c });
    for (const a of avail.ours) {
      configs.push(mk({ id: a.name, label: `ours ${a.name}`, kind: 'ours', channels: 1, backend: a.name, xvfb: a.xvfb }));
      if (a.name === 'wasm-simd' && selected(WASM_SIMD_1T)) {
        configs.push(mk({ id: WASM_SIMD_1T, label: 'ours wasm-simd, 1 thread', kind: 'ours', channels: 1, backend: WASM_SIMD_1T }));
      }
    }
    if (variants.length && primary) {
      configs.push(mk({ id: `${primary} rgb`, label: `ours ${primary}, channels=3`, kind: 'ours', channels: 3, backend: primary }));
    }
    for (const p of peers) {
      if (o.quick && p === 'tfjs-cpu' && net === 'lenet' && !o.backends?.includes(p)) {
        notes.push('tfjs-cpu LeNet-5 is left out of --quick (about 3 images/s: one run takes a minute); name it in --backends, or run without --quick');
        continue;
      }
      configs.push(mk({ id: p, label: p, kind: 'peer', channels: 1, backend: p }));
    }
    const dn = (v: DarknetVariant) => (v.label.startsWith('darknet') ? v.label : `darknet ${v.label}`);
    for (const v of variants) configs.push(mk({ id: v.label, label: `${dn(v)}, channels=3`, kind: 'darknet', channels: 3, variant: v }));
    if (variants.length) {
      for (const v of variants) valids.push({ net, label: `${dn(v)} (batch 1)`, variant: v, runs: [] });
      if (primary) {
        valids.push({ net, label: `ours ${primary} --batch 1`, backend: primary, batch: 1, runs: [] });
        valids.push({ net, label: `ours ${primary} (batch 64)`, backend: primary, runs: [] });
      }
    }
  }
  const total = configs.length * o.repeats + valids.length * Math.min(o.repeats, o.validRepeats);
  log(`bench: ${configs.length} configurations, ${o.repeats} alternated run(s) each${valids.length ? `, and ${valids.length} classifier valid runs x ${Math.min(o.repeats, o.validRepeats)}` : ''}; ${startLoad}`);

  // A baseline: what node + MNIST + the batches cost before any network exists.
  const baseline = await runInChild({ kind: 'baseline', name: 'baseline', net: 'lenet', channels: 1, root: ROOT, ...b }, false, o.verbose, 60);

  let maxLoad = os.loadavg()[0];
  const sampleLoad = () => (maxLoad = Math.max(maxLoad, os.loadavg()[0]));
  let step = 0;
  for (let r = 0; r < o.repeats; r++) {
    for (const net of o.nets) {
      const list = configs.filter((c) => c.net === net);
      const rot = r % list.length;
      for (const c of [...list.slice(rot), ...list.slice(0, rot)]) {
        step++;
        sampleLoad();
        const tag = `[${String(step).padStart(3)}/${total}] ${NETS[net].title} ${c.label}`;
        if (c.slow) {
          log(`${tag}: not repeated (one run took over ${slowSeconds} s)`);
          continue;
        }
        if (c.kind === 'darknet') {
          const f = dnFiles.get(net)!;
          const t = await runDarknetTrain(c.variant!, f, DARKNET_DROP, darknetCap);
          c.darknetRuns.push(t);
          log(`${tag}: ${t.ok ? `train ${fmt(BATCH / t.medianSeconds)} img/s (${t.kept.length} batches kept of ${f.maxBatches}${t.note ? `; ${t.note}` : ''})` : `failed: ${t.error}`} [${t.wallSeconds.toFixed(1)} s]`);
          continue;
        }
        const job: ChildJob = { kind: c.kind === 'ours' ? 'ours' : 'peer', name: c.backend!, net, channels: c.channels, root: ROOT, ...b };
        const run = await runInChild(job, !!c.xvfb, o.verbose, childTimeout);
        c.runs.push(run);
        if (run.wallSeconds > slowSeconds) c.slow = true;
        const res = run.result;
        const show = (p: PhaseResult | { na: string } | undefined, unit: 'img/s' | 'ms') =>
          isPhase(p) ? (unit === 'ms' ? `${fmt(p.median * 1000)} ms` : `${fmt(BATCH / p.median)} img/s`) : 'n/a';
        log(`${tag}: ${res.ok ? `train ${show(res.train, 'img/s')}, infer ${show(res.infer, 'img/s')}, latency ${show(res.latency, 'ms')}, peak ${fmt(res.peakRssMB, 0)} MB` : `failed: ${res.error}`} [${run.wallSeconds.toFixed(1)} s]`);
      }
      for (const v of valids.filter((x) => x.net === net)) {
        if (r >= o.validRepeats) continue;
        step++;
        const tag = `[${String(step).padStart(3)}/${total}] ${NETS[net].title} classifier valid, ${v.label}`;
        const f = dnFiles.get(net)!;
        if (!fs.existsSync(f.validWeights)) {
          log(`${tag}: skipped: no darknet training run of this net ended with weights`);
          continue;
        }
        const run = v.variant
          ? await runDarknetValid(v.variant, f, data!.validImages, darknetCap)
          : await runOursValid(ROOT, v.backend!, f, data!.validImages, v.batch, childTimeout);
        v.runs.push(run);
        log(`${tag}: ${run.ok ? `${fmt(run.images / run.wallSeconds)} img/s wall, top-1 ${run.top1.toFixed(4)}${run.note ? `; ${run.note}` : ''}` : `failed: ${run.error}`} [${run.wallSeconds.toFixed(1)} s]`);
      }
    }
  }
  sampleLoad();
  const totalSeconds = (performance.now() - started) / 1000;

  // ------------------------------------------------------------------- the report
  const out: string[] = [];
  const cpus = os.cpus();
  out.push('');
  out.push(`darknet-ts benchmark, ${new Date().toISOString()}`);
  out.push(`machine: ${cpus[0]?.model ?? 'unknown CPU'} x ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}; node ${process.version}`);
  out.push(`load: at start ${startLoad}; at end ${loadLine()}; highest 1-min load seen ${maxLoad.toFixed(2)}`);
  const busy = maxLoad > os.cpus().length - 0.5;
  if (busy) {
    out.push(`NOTE: the machine was busy (other processes wanted the CPUs): every figure is lower and noisier than on a quiet machine${variants.some((v) => v.threads > 1) && !process.env.OMP_WAIT_POLICY ? ',\n      and an OpenMP build with a thread per core collapses (its threads spin at barriers while descheduled; OMP_WAIT_POLICY=passive avoids the collapse)' : ''}`);
  }
  out.push(`batch ${BATCH}, real MNIST training images (16 batches cycled); ${o.repeats} alternated run(s) per configuration, each in its own process; medians`);
  out.push('');
  const header = ['net', 'implementation', 'train img/s', 'infer img/s (b64)', 'latency ms (b1)', 'peak RSS MB', 'runs'];
  const rows: string[][] = [];
  const figs = new Map<Config, Figures>();
  for (const c of configs) {
    const f = figures(c);
    figs.set(c, f);
    rows.push([
      NETS[c.net].title,
      c.label,
      f.error ? 'failed' : f.trainNa ? 'n/a (1)' : fmt(f.train),
      f.error ? '' : c.kind === 'darknet' ? 'n/a (2)' : fmt(f.infer),
      f.error ? '' : c.kind === 'darknet' ? 'n/a (2)' : fmt(f.latencyMs, 2),
      f.error ? '' : fmt(f.rss, 0),
      String(f.runs),
    ]);
  }
  out.push(table(header, rows, [false, false, true, true, true, true, true]));
  out.push('');
  const foot: string[] = [];
  if (configs.some((c) => figs.get(c)!.trainNa)) foot.push(`(1) ${configs.map((c) => figs.get(c)!.trainNa).find(Boolean)}; its inference runs`);
  if (variants.length) foot.push('(2) darknet has no batch-64 inference command; its batch-1 inference is `classifier valid`, compared below');
  foot.push(`peak RSS includes node and the MNIST training file as loadMnist reads it: a process that only loads it and makes the batches peaks at ${fmt(baseline.result.peakRssMB, 0)} MB`);
  out.push(...foot);

  // What ran, exactly.
  out.push('');
  out.push('implementations:');
  const rank = (c: Config) => ({ ours: 0, peer: 1, darknet: 2 })[c.kind] * 2 + (c.channels === 3 && c.kind === 'ours' ? 1 : 0);
  const unique = configs.filter((x, i, all) => all.findIndex((y) => y.id === x.id) === i);
  unique.sort((a, b) => rank(a) - rank(b) || configs.indexOf(a) - configs.indexOf(b));
  for (const c of unique) {
    const f = figs.get(c)!;
    if (c.kind === 'darknet') {
      const v = c.variant!;
      const policy = process.env.OMP_WAIT_POLICY ? `, OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}` : '';
      out.push(`  ${c.label}: ${v.binary.path} (${v.binary.openmp ? `OpenMP build, OMP_NUM_THREADS=${v.threads}${policy}` : 'built without OpenMP: one compute thread'})`);
    } else {
      const rb = Number.isFinite(f.readbacks ?? NaN) ? `; ${fmt(f.readbacks!, 0)} read-back(s) per training step` : '';
      const loss = f.loss ? `; loss ${f.loss.first.toFixed(3)} -> ${f.loss.last.toFixed(3)} over ${f.loss.batches} batches` : '';
      out.push(`  ${c.label}: ${f.description ?? '?'}${rb}${loss}`);
    }
  }
  for (const c of configs) {
    const f = figs.get(c)!;
    if (f.error) {
      out.push(`  failed: ${NETS[c.net].title} ${c.label}: ${f.error}`);
      continue;
    }
    const bad = [...c.runs.map((r) => r.result.error), ...c.darknetRuns.map((r) => r.error)].filter((e): e is string => !!e);
    if (bad.length) out.push(`  note: ${NETS[c.net].title} ${c.label}: ${bad.length} run(s) failed and are left out of the median (${bad[0]})`);
  }
  for (const n of notes) out.push(`  note: ${n}`);
  for (const c of configs) {
    const capped = c.darknetRuns.filter((r) => r.note).length;
    if (capped) out.push(`  note: ${NETS[c.net].title} ${c.label}: ${capped} of ${c.darknetRuns.length} run(s) stopped at the ${darknetCap} s cap, judged on the batches they finished`);
  }
  const slow = configs.filter((c) => c.slow && o.repeats > 1);
  if (slow.length) out.push(`  note: run once only (one run took over ${slowSeconds} s): ${slow.map((c) => `${NETS[c.net].title} ${c.label}`).join(', ')}`);
  out.push('  our nets: the shipped cfgs (1 channel) with decay 0.0005; peers: conv 20 5x5 valid, maxpool 2/2, conv 50 5x5, maxpool 2/2, fc 500 relu, fc 10 / 784-300-100-10 relu, softmax cross-entropy, SGD lr 0.01 momentum 0.9');

  if (variants.length) {
    out.push('');
    out.push('how the darknet figures were obtained:');
    out.push(`  darknet's classifier always loads images as 3 channels, so darknet trains our cfg with channels=3 (conv1 sees 3x the input; the MLP's first layer is 2352x300, not 784x300);`);
    out.push(`  the "ours ..., channels=3" row runs that same cfg, each gray digit copied into all three planes, for a like-for-like ratio.`);
    out.push(`  files: ${tmp} (cfg, .data), PNGs: ${data!.dir} (first ${Math.max(1024, o.validImages)} train and test images, R=G=B, c0..c9 in the names)`);
    for (const net of o.nets) {
      const f = dnFiles.get(net)!;
      out.push(`  ${NETS[net].title}: \`${'PATH'} classifier train ${f.dataFile} ${f.cfgFile} -nogpu\`, max_batches=${f.maxBatches}, batch ${BATCH};`);
    }
    out.push(`  each batch's "seconds" (train_network: forward + backward + update; its loader thread reads the next batch meanwhile) is parsed;`);
    out.push(`  the first ${DARKNET_DROP} are dropped; train img/s = ${BATCH} / median seconds per batch; peak RSS is VmHWM polled from /proc;`);
    out.push(`  a darknet run still going after ${darknetCap} s is stopped and judged on the batches (or images) it finished, or counted as failed if too few.`);
    out.push(`  classifier valid: \`PATH classifier valid DATA CFG WEIGHTS\` (batch 1, decodes each PNG) on ${data!.validImages} test images with the weights darknet's run saved,`);
    out.push('  timed as a whole process; ours runs `darknet-ts classifier valid` on the same files and weights (wall clock, and its own loop time).');
  }

  // Ratios: ours / peer (train and infer), peer ms / our ms (latency); > 1 means ours is faster.
  out.push('');
  out.push('ratios, ours / peer (latency: peer ms / our ms); above 1 = ours faster');
  for (const net of o.nets) {
    const ours = configs.filter((c) => c.net === net && c.kind === 'ours');
    const others = configs.filter((c) => c.net === net && c.kind !== 'ours');
    if (!ours.length || !others.length) continue;
    for (const [metric, get, inverse] of [
      ['train', (f: Figures) => (f.trainNa ? NaN : f.train), false],
      ['infer b64', (f: Figures) => f.infer, false],
      ['latency b1', (f: Figures) => f.latencyMs, true],
    ] as Array<[string, (f: Figures) => number, boolean]>) {
      const cols = others.filter((p) => Number.isFinite(get(figs.get(p)!)));
      if (!cols.length) continue;
      const rws = ours.map((c) => [
        c.id,
        ...cols.map((p) => {
          const a = get(figs.get(c)!);
          const bb = get(figs.get(p)!);
          return ratio(inverse ? bb / a : a / bb);
        }),
      ]);
      out.push('');
      out.push(`${NETS[net].title}, ${metric}:`);
      out.push(table([`ours \\ vs`, ...cols.map((p) => p.id)], rws, [false, ...cols.map(() => true)]).replace(/^/gm, '  '));
    }
  }
  const why = configs.find((c) => figs.get(c)!.trainNa);
  if (why) out.push(`  (${why.id} ${NETS[why.net].title} training: n/a, ${figs.get(why)!.trainNa})`);
  if (variants.length) out.push('  (darknet columns ran channels=3; compare them with the "rgb" row for the same input)');

  if (valids.length) {
    out.push('');
    out.push(`classifier valid, ${data!.validImages} MNIST test images (PNG decode included), same cfg (channels=3) and weights:`);
    const vr = valids.map((v) => {
      const ok = v.runs.filter((x) => x.ok);
      const err = v.runs.find((x) => !x.ok)?.error;
      return [
        NETS[v.net].title,
        v.label,
        ok.length ? fmt(median(ok.map((x) => x.images / x.wallSeconds))) : err ? 'failed' : 'n/a',
        ok.length && v.variant === undefined ? fmt(median(ok.map((x) => x.images / x.loopSeconds))) : ok.length ? '(= wall)' : '',
        ok.length ? fmt(median(ok.map((x) => x.top1)), 4) : '',
        ok.length ? fmt(median(ok.map((x) => x.peakRssMB)), 0) : '',
        String(ok.length),
      ];
    });
    out.push(table(['net', 'run', 'img/s (wall)', 'img/s (loop)', 'top-1', 'peak RSS MB', 'runs'], vr, [false, false, true, true, true, true, true]));
    out.push('  wall = whole process (node start, backend start, weights, decode, inference); loop = our validation loop alone');
    const rate = (v: ValidConfig, loop: boolean) => median(v.runs.filter((x) => x.ok).map((x) => x.images / (loop ? x.loopSeconds : x.wallSeconds)));
    for (const net of o.nets) {
      const dns = valids.filter((v) => v.net === net && v.variant && Number.isFinite(rate(v, false)));
      for (const v of valids.filter((x) => x.net === net && !x.variant && Number.isFinite(rate(x, false)))) {
        const parts = dns.map((d) => `${ratio(rate(v, false) / rate(d, false))} ${d.variant!.label} (loop: ${ratio(rate(v, true) / rate(d, false))})`);
        if (parts.length) out.push(`  ${NETS[net].title}, ${v.label} / darknet, wall: ${parts.join(', ')}`);
      }
    }
    const failures = valids.flatMap((v) => v.runs.filter((x) => !x.ok).map((x) => `${NETS[v.net].title} ${v.label}: ${x.error}`));
    for (const f of failures.slice(0, 6)) out.push(`  failed: ${f}`);
    for (const v of valids) {
      for (const x of v.runs.filter((y) => y.note)) out.push(`  note: ${NETS[v.net].title} ${v.label}: ${x.note} (img/s over those)`);
    }
  }

  out.push('');
  out.push(`bench took ${(totalSeconds / 60).toFixed(1)} minutes`);
  process.stdout.write(out.join('\n') + '\n');

  if (o.json) {
    fs.writeFileSync(o.json, JSON.stringify({ date: new Date().toISOString(), options: o, baseline, configs, valids, totalSeconds }, null, 2));
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
