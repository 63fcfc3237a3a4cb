/**
 * The darknet half of `npm run bench -- --darknet PATH`: a darknet binary the user built
 * is run on the same nets, and its own per-iteration times are read back. Nothing of
 * darknet is in this repository; this file only writes the inputs darknet's
 * `classifier train` / `classifier valid` read, runs the binary, and parses its output.
 *
 * - darknet's classifier always loads images as 3 channels (load_image_color), so its
 *   cfg is ours with channels=3; the PNGs are MNIST digits with R = G = B.
 * - `classifier train` prints, per batch,
 *   `%ld, %.3f: %f, %f avg, %f rate, %lf seconds, %ld images`; the seconds are
 *   train_network() alone (forward + backward + update; images are loaded by another
 *   thread meanwhile). The first few batches are dropped; images/s = 64 / median seconds.
 * - `classifier valid` is batch 1 and decodes each PNG (stb_image): it is timed as a
 *   whole process, wall clock.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exportMnist } from '../src/data/mnist-export';
import { BATCH, benchSpec, NETS, setNetKey, type NetName } from './bench-runners';

export interface DarknetBinary {
  path: string;
  label: string;
  openmp: boolean;
}

/** One way of running a binary: the 1-thread build, or an OpenMP build with OMP_NUM_THREADS. */
export interface DarknetVariant {
  binary: DarknetBinary;
  /** OMP_NUM_THREADS for an OpenMP build; 1 for a build without */
  threads: number;
  label: string;
}

/** Checks the binary exists and runs, and whether it was linked with OpenMP (libgomp). */
export function inspectDarknet(file: string): DarknetBinary {
  const abs = path.resolve(file);
  let bytes: Buffer;
  try {
    fs.accessSync(abs, fs.constants.X_OK);
    bytes = fs.readFileSync(abs);
  } catch (e) {
    throw new Error(`--darknet ${file}: not an executable file`);
  }
  // A build with -fopenmp calls GOMP_parallel (gcc's OpenMP runtime) or __kmpc_fork_call (clang's).
  const openmp = bytes.includes('GOMP_parallel') || bytes.includes('__kmpc_fork_call');
  return { path: abs, label: path.basename(abs), openmp };
}

export function darknetVariants(bins: DarknetBinary[]): DarknetVariant[] {
  const out: DarknetVariant[] = [];
  for (const b of bins) {
    if (b.openmp) out.push({ binary: b, threads: 1, label: `${b.label} OMP=1` }, { binary: b, threads: 2, label: `${b.label} OMP=2` });
    else out.push({ binary: b, threads: 1, label: b.label });
  }
  return out;
}

export interface DarknetData {
  /** cached PNG export (3-channel), reused across runs: exportMnist is idempotent */
  dir: string;
  trainList: string;
  validList: string;
  labels: string;
  names: string;
  validImages: number;
}

/**
 * Writes (or reuses) the first `limit` MNIST images of each split as 3-channel PNGs with
 * c0..c9 in their names, in a cache folder under the system temp directory.
 */
export function prepareDarknetData(tmp: string, trainImages: number, validImages: number): DarknetData {
  const limit = Math.max(trainImages, validImages);
  const dir = path.join(os.tmpdir(), 'darknet-ts-bench', 'mnist-rgb');
  const e = exportMnist(dir, { limit, channels: 3 });
  // The export's lists hold `limit` images each; valid gets the first validImages of test.
  const test = fs.readFileSync(path.join(e.out, 'test.list'), 'utf8').split('\n').filter(Boolean);
  const validList = path.join(tmp, 'valid.list');
  fs.writeFileSync(validList, test.slice(0, validImages).join('\n') + '\n');
  return {
    dir: e.out,
    trainList: path.join(e.out, 'train.list'),
    validList,
    labels: path.join(e.out, 'labels.txt'),
    names: path.join(e.out, 'names.txt'),
    validImages: Math.min(validImages, test.length),
  };
}

export interface DarknetFiles {
  cfgFile: string;
  dataFile: string;
  backupDir: string;
  /** what `classifier train` leaves at the end (max_batches reached) */
  weightsFile: string;
  /** a copy of the first run's weights, for the classifier valid runs */
  validWeights: string;
  maxBatches: number;
}

/** The net's cfg with channels=3 and max_batches, and a .data file, in `dir`. */
export function writeDarknetFiles(root: string, dir: string, net: NetName, maxBatches: number, data: DarknetData): DarknetFiles {
  fs.mkdirSync(dir, { recursive: true });
  const base = `${net}-rgb`; // no c0..c9 in it (darknet matches labels as substrings of paths)
  let text = fs.readFileSync(path.join(root, NETS[net].cfg), 'utf8');
  text = setNetKey(text, 'channels', '3');
  text = setNetKey(text, 'max_batches', String(maxBatches));
  text = setNetKey(text, 'batch', String(BATCH));
  text = setNetKey(text, 'subdivisions', '1');
  const cfgFile = path.join(dir, `${base}.cfg`);
  fs.writeFileSync(cfgFile, text);
  benchSpec(root, net, 3); // the same cfg must parse for us too
  const backupDir = path.join(dir, 'backup');
  fs.mkdirSync(backupDir, { recursive: true });
  const dataFile = path.join(dir, `${base}.data`);
  fs.writeFileSync(
    dataFile,
    [
      'classes=10',
      `train=${data.trainList}`,
      `valid=${data.validList}`,
      `labels=${data.labels}`,
      `names=${data.names}`,
      `backup=${backupDir}`,
      'top=2',
      '',
    ].join('\n'),
  );
  return { cfgFile, dataFile, backupDir, weightsFile: path.join(backupDir, `${base}.weights`), validWeights: path.join(dir, 'valid.weights'), maxBatches };
}

export interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallSeconds: number;
  /** VmHWM of the spawned process, polled from /proc (Linux); 0 where unreadable */
  peakRssMB: number;
  timedOut: boolean;
}

/** Spawns a command, collects its output, and polls its peak RSS (VmHWM) from /proc. */
export function spawnMeasured(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutSeconds: number; onStderr?: (chunk: string) => void },
): Promise<Measured> {
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakKB = 0;
    let timedOut = false;
    const poll = () => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        if (m) peakKB = Math.max(peakKB, Number(m[1]));
      } catch {
        // gone already, or not Linux
      }
    };
    const timer = setInterval(poll, 50);
    const killer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutSeconds * 1000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      stdout += d;
      poll();
    });
    child.stderr.on('data', (d: string) => {
      stderr += d;
      opts.onStderr?.(d);
      poll();
    });
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, wallSeconds: (performance.now() - start) / 1000, peakRssMB: peakKB / 1024, timedOut });
    });
  });
}

const ITERATION = /^(\d+), ([\d.]+): (\S+), (\S+) avg, (\S+) rate, ([\d.]+) seconds, (\d+) images/;

/** darknet's per-iteration lines: [batch number, seconds]. */
export function parseDarknetIterations(stdout: string): Array<{ batch: number; seconds: number; loss: number }> {
  const out: Array<{ batch: number; seconds: number; loss: number }> = [];
  for (const line of stdout.split('\n')) {
    const m = ITERATION.exec(line.trim());
    if (m) out.push({ batch: Number(m[1]), seconds: Number(m[6]), loss: Number(m[3]) });
  }
  return out;
}

function envFor(v: DarknetVariant): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: String(v.threads) };
}

export interface DarknetTrain {
  ok: boolean;
  error?: string;
  /** set when the run was stopped at the time cap but kept enough batches */
  note?: string;
  /** seconds of the batches kept */
  kept: number[];
  medianSeconds: number;
  peakRssMB: number;
  wallSeconds: number;
  lastLoss: number;
}

function tail(text: string): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.slice(-2).join(' | ').slice(0, 300);
}

/**
 * `darknet classifier train data cfg -nogpu` for max_batches; drops the first `drop` batches.
 * A run still going after `capSeconds` (an OpenMP build on a busy machine can slow down
 * 30-fold) is stopped and judged on the batches it finished, if at least 3 are kept.
 * The first run that ends normally leaves its weights as `validWeights` for `classifier valid`.
 */
export async function runDarknetTrain(v: DarknetVariant, f: DarknetFiles, drop: number, capSeconds: number): Promise<DarknetTrain> {
  fs.rmSync(f.weightsFile, { force: true });
  const r = await spawnMeasured(v.binary.path, ['classifier', 'train', f.dataFile, f.cfgFile, '-nogpu'], {
    cwd: path.dirname(f.cfgFile),
    env: envFor(v),
    timeoutSeconds: capSeconds,
  });
  const its = parseDarknetIterations(r.stdout);
  const kept = its.filter((it) => it.batch > drop).map((it) => it.seconds);
  const s = [...kept].sort((a, b) => a - b);
  const m = s.length >> 1;
  const med = s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  const base = { kept, peakRssMB: r.peakRssMB, wallSeconds: r.wallSeconds, lastLoss: its.length ? its[its.length - 1].loss : NaN, medianSeconds: med };
  if (r.timedOut) {
    const note = `stopped at the ${capSeconds} s cap after ${its.length} of ${f.maxBatches} batches`;
    return kept.length >= 3 ? { ok: true, note, ...base } : { ok: false, error: note, ...base };
  }
  if (kept.length === 0) {
    return { ok: false, error: `no iteration lines parsed (exit ${r.code ?? r.signal}): ${tail(r.stderr + '\n' + r.stdout)}`, ...base };
  }
  if (its.length < f.maxBatches || !fs.existsSync(f.weightsFile)) {
    return { ok: false, error: `only ${its.length} of ${f.maxBatches} batches, or no weights saved (exit ${r.code ?? r.signal}): ${tail(r.stderr)}`, ...base };
  }
  if (!fs.existsSync(f.validWeights)) fs.copyFileSync(f.weightsFile, f.validWeights);
  return { ok: true, ...base };
}

export interface ValidRun {
  ok: boolean;
  error?: string;
  /** set when the run was stopped at the time cap but did enough images */
  note?: string;
  images: number;
  /** whole process, wall clock */
  wallSeconds: number;
  /** the tool's own loop time where it reports one (ours), else the wall time */
  loopSeconds: number;
  top1: number;
  peakRssMB: number;
}

/**
 * `darknet classifier valid data cfg weights` (batch 1, one PNG decode per image), timed
 * whole. A run still going after `capSeconds` is stopped and judged on the images it did
 * (it prints a line per image), if at least 100.
 */
export async function runDarknetValid(v: DarknetVariant, f: DarknetFiles, images: number, capSeconds: number): Promise<ValidRun> {
  const r = await spawnMeasured(v.binary.path, ['classifier', 'valid', f.dataFile, f.cfgFile, f.validWeights, '-nogpu'], {
    cwd: path.dirname(f.cfgFile),
    env: envFor(v),
    timeoutSeconds: capSeconds,
  });
  const lines = r.stdout.trim().split('\n');
  let m: RegExpExecArray | null = null;
  for (let i = lines.length - 1; i >= Math.max(0, lines.length - 3) && !m; i--) m = /^(\d+): top 1: ([\d.]+)/.exec(lines[i]);
  const done = m ? Number(m[1]) + 1 : 0;
  const base = { images: done, wallSeconds: r.wallSeconds, loopSeconds: r.wallSeconds, top1: m ? Number(m[2]) : NaN, peakRssMB: r.peakRssMB };
  if (r.timedOut) {
    const note = `stopped at the ${capSeconds} s cap after ${done} of ${images} images`;
    return done >= 100 ? { ok: true, note, ...base } : { ok: false, error: note, ...base };
  }
  if (done !== images) return { ok: false, error: `validated ${done} of ${images} images (exit ${r.code ?? r.signal}): ${tail(r.stderr)}`, ...base };
  return { ok: true, ...base };
}

/** Our `classifier valid` CLI on the same files and weights (`--batch` as given, default the cfg's). */
export async function runOursValid(
  root: string, backend: string, f: DarknetFiles, images: number, batch: number | undefined, timeoutSeconds: number,
): Promise<ValidRun> {
  const args = [path.join(root, 'bin', 'darknet-ts.js'), 'classifier', 'valid', f.dataFile, f.cfgFile, f.validWeights, '--backend', backend, '--json'];
  if (batch) args.push('--batch', String(batch));
  const r = await spawnMeasured(process.execPath, args, { cwd: root, timeoutSeconds });
  const base = { images: 0, wallSeconds: r.wallSeconds, loopSeconds: NaN, top1: NaN, peakRssMB: r.peakRssMB };
  if (r.timedOut) return { ok: false, error: `timed out after ${timeoutSeconds} s`, ...base };
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    const ok = j.images === images;
    return { ok, error: ok ? undefined : `validated ${j.images} of ${images}`, images: j.images, wallSeconds: r.wallSeconds, loopSeconds: j.seconds, top1: j.top1, peakRssMB: r.peakRssMB };
  } catch {
    return { ok: false, error: `exit ${r.code ?? r.signal}: ${tail(r.stderr + '\n' + r.stdout)}`, ...base };
  }
}
