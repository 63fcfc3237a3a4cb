import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { NetworkSpec } from '../cfg/config';
import { readCfg } from '../cfg/parser';
import { augmentationOf } from '../data/augment';
import { TrainBatches, type ImageSource } from '../data/loader';
import { mulberry32 } from '../engine/random';
import { silentReporter, type Reporter } from '../engine/reporter';
import { DarknetError } from '../errors';
import { atomicWrite, checkOutputDir } from '../io/files';
import { writeWeights } from '../io/weights';
import type { BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { denseResult, formatRound, pruneLoop, type PartialRound } from '../prune/recipe';
import { accuracyChart, reportCsv, sparsityChart, type PruneReport } from '../prune/report';
import { checkScan, parseSensitivityCsv, ratesFromSensitivity } from '../prune/scan';
import { pruneSchedule, SCHEDULE_MODES, type LayerRates, type ScheduleMode } from '../prune/schedule';
import { sparsityOf } from '../prune/stats';
import { applyThreshold, fractionRules, parseLayerSparsity, type ThresholdRule, type ThresholdRules } from '../prune/threshold';
import { formatSummary, weightsColumns } from '../report/summary';
import { integer, MAX_COUNT, real } from './args';
import { CRITERIA, TIE_RULES, type Criterion, type TieRule } from '../prune/channels';
import { channelPruneCommand, channels } from './channels';
import { Interrupted, withInterrupt } from './interrupt';
import {
  buildNetwork, closeSource, loadClassifierSpec, loadKernels, loadWeights, readDataConfig, requireFinite, saveWeights, shapeOf, trainSource, validSource, withBatch,
} from './load';
import { reporterOf, verb, type Group, type Io } from './verb';

/**
 * `prune` (the prune-retrain recipe) and `prune threshold`. The command reads the .data,
 * cfg, start weights and any scan once, builds one retraining and one evaluation network,
 * runs the recipe (src/prune/recipe.ts) and writes one weights file per round plus the
 * report. report.json carries a fingerprint of the run, so the same command resumes it and
 * another run is never mistaken for it.
 */
export interface PruneCommand {
  dataFile: string;
  cfgFile: string;
  weights: string;
  /** final total sparsity of the prunable layers' weights, e.g. 0.92 */
  target: number;
  rounds: number;
  retrainBatches: number;
  /** multiplies the cfg's learning_rate while retraining */
  lrScale: number;
  mode: ScheduleMode;
  /** sensitivity mode: a scan CSV ... */
  sensitivityFile?: string;
  /** ... with the accuracy drop a layer may take (fraction) */
  maxDrop?: number;
  /** or per-layer final rates (`--layer-sparsity`, key text as given) */
  layerSparsity?: string;
  out: string;
  backend?: BackendChoice;
  seed?: number;
  evalImages?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  kernels?: Kernels;
  /** tests: images to evaluate / retrain on instead of the .data file's lists */
  evalSource?: ImageSource;
  trainSource?: ImageSource;
}

const REPORT = 'report.json';

function readText(file: string, what: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    throw new DarknetError(`${what} ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!stat.isFile()) throw new DarknetError(`${what} ${file}: not a file`);
  return fs.readFileSync(file, 'utf8');
}

/** The final per-layer rates of each round, from the mode and its inputs. */
function scheduleOf(spec: NetworkSpec, o: PruneCommand, reporter: Reporter): { schedule: LayerRates[]; scanText: string } {
  if (o.layerSparsity !== undefined && o.mode !== 'sensitivity') {
    throw new DarknetError(`--layer-sparsity sets per-layer final rates for --mode sensitivity; add --mode sensitivity (now --mode ${o.mode})`);
  }
  if (o.sensitivityFile !== undefined && o.mode !== 'sensitivity') {
    throw new DarknetError(`--sensitivity is read by --mode sensitivity; add --mode sensitivity (now --mode ${o.mode})`);
  }
  let rates = o.layerSparsity !== undefined ? parseLayerSparsity(o.layerSparsity, spec) : undefined;
  let scanText = '';
  if (o.mode === 'sensitivity' && !rates) {
    if (!o.sensitivityFile) throw new DarknetError('--mode sensitivity needs --sensitivity FILE (from darknet-ts sensitivity) or --layer-sparsity');
    scanText = readText(o.sensitivityFile, '--sensitivity');
    const scan = parseSensitivityCsv(scanText, o.sensitivityFile);
    checkScan(spec, scan, o.sensitivityFile);
    const maxDrop = o.maxDrop ?? 0.005;
    const r = ratesFromSensitivity(scan, maxDrop, o.target);
    if (!r.reached) reporter.warn(`the scan tolerates at most ${(100 * r.total).toFixed(1)}% total sparsity at a ${(100 * maxDrop).toFixed(2)} point drop; pruning to that`);
    rates = r.rates;
  }
  return { schedule: pruneSchedule(spec, { mode: o.mode, target: o.target, rounds: o.rounds, rates }), scanText };
}

/** sha256 of what makes a run: the cfg, the start weights, the data and every option. */
function fingerprintOf(o: PruneCommand, cfgText: string, startBytes: Buffer, scanText: string): string {
  const h = createHash('sha256');
  h.update(cfgText);
  h.update(startBytes);
  h.update(scanText);
  h.update(JSON.stringify({
    data: path.resolve(o.dataFile), mode: o.mode, target: o.target, rounds: o.rounds, retrainBatches: o.retrainBatches, lrScale: o.lrScale,
    maxDrop: o.maxDrop ?? null, layerSparsity: o.layerSparsity ?? null, seed: o.seed ?? 1, evalImages: o.evalImages ?? null,
  }));
  return h.digest('hex');
}

/** report.json of an earlier run, or null; anything unreadable is an error, never a silent restart. */
function readReport(file: string): PruneReport | null {
  if (!fs.existsSync(file)) return null;
  let report: PruneReport;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8')) as PruneReport;
  } catch (e) {
    throw new DarknetError(`${file}: not a readable prune report (${(e as Error).message.split('\n')[0].slice(0, 80)}); delete it to start over, or choose another --out`);
  }
  if (!report || typeof report !== 'object' || report.version !== 2 || typeof report.fingerprint !== 'string' || !Array.isArray(report.history)) {
    throw new DarknetError(`${file}: not a prune report of this version of darknet-ts; delete it to start over, or choose another --out`);
  }
  return report;
}

function saveReport(out: string, report: PruneReport, spec: NetworkSpec): void {
  atomicWrite(path.join(out, REPORT), JSON.stringify(report, null, 2) + '\n');
  atomicWrite(path.join(out, 'report.csv'), reportCsv(report));
  if (report.history.length === 0) return;
  atomicWrite(path.join(out, 'accuracy.png'), accuracyChart(report));
  atomicWrite(path.join(out, 'sparsity.png'), sparsityChart(report, spec));
}

export async function pruneCommand(o: PruneCommand): Promise<PruneReport> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const spec = loadClassifierSpec(o.cfgFile, data.classes, silentReporter);
  const { schedule, scanText } = scheduleOf(spec, o, reporter);
  checkOutputDir(o.out);
  const startBytes = readBytes(o.weights);
  const dense = loadWeights(o.weights, spec);
  requireFinite(dense, spec, o.weights);
  const fingerprint = fingerprintOf(o, fs.readFileSync(o.cfgFile, 'utf8'), startBytes, scanText);
  const reportFile = path.join(o.out, REPORT);
  const previous = readReport(reportFile);
  if (previous && previous.fingerprint !== fingerprint) {
    throw new DarknetError(`${reportFile} belongs to another run (other cfg, start weights, data or options); ` +
      `use another --out, or delete ${o.out} to start over`);
  }
  const base = path.basename(o.cfgFile).replace(/\.cfg$/, '');

  // Resume: the finished rounds whose files are all there, in order; the first missing one is redone.
  let start = dense;
  let resume: PartialRound | undefined;
  if (previous) {
    const kept: PruneReport['history'] = [];
    for (const r of previous.history) {
      if (r.round !== kept.length + 1 || !fs.existsSync(r.weights)) break;
      kept.push(r);
    }
    if (kept.length < previous.history.length) {
      reporter.warn(`${reportFile}: round ${kept.length + 1}'s weights are missing; redoing rounds ${kept.length + 1}-${o.rounds}`);
      delete previous.inProgress;
    }
    previous.history = kept;
    const last = kept[kept.length - 1];
    if (last) start = loadWeights(last.weights, spec);
    const ip = previous.inProgress;
    if (ip && ip.round === kept.length + 1 && fs.existsSync(ip.backup)) {
      resume = { round: ip.round, top1Pruned: ip.top1Pruned, weights: loadWeights(ip.backup, spec) };
    }
    reporter.info(`resuming ${o.out}: ${kept.length} of ${o.rounds} rounds done` + (resume ? `, round ${resume.round} part-retrained` : ''));
  }

  const k = o.kernels ?? (await loadKernels(o.backend, reporter));
  const retrainSpec: NetworkSpec = { ...spec, net: { ...spec.net, learningRate: spec.net.learningRate * o.lrScale, maxBatches: o.retrainBatches } };
  const trainNet = buildNetwork(retrainSpec, k, undefined, o.seed);
  const evalNet = buildNetwork(withBatch(spec, spec.net.batch), k, undefined, o.seed);
  let evalSource: ImageSource | undefined;
  let train: ImageSource | undefined;
  try {
    evalSource = o.evalSource ?? validSource(data, spec, o.evalImages);
    train = o.trainSource ?? trainSource(data, spec);
    const batches = new TrainBatches(train, trainNet.batch, data.classes, shapeOf(spec), mulberry32((o.seed ?? 1) + 7919), augmentationOf(spec.net, false), (m) =>
      reporter.warn(m),
    );
    let report: PruneReport;
    if (previous) {
      report = previous;
    } else {
      const d = await denseResult(spec, evalNet, dense, evalSource);
      report = {
        version: 2, fingerprint, cfg: o.cfgFile, data: o.dataFile, start: o.weights, mode: o.mode, target: o.target, rounds: o.rounds,
        retrainBatches: o.retrainBatches, lrScale: o.lrScale, dense: d, history: [],
      };
      reporter.info(`dense: top-1 ${(100 * d.top1).toFixed(2)}%, ${d.nonzero} non-zero weights of ${d.totalWeights}`);
      saveReport(o.out, report, spec);
    }
    const result = await pruneLoop({
      spec, start, done: report.history.length, schedule, trainNet, evalNet, batches, epochSize: train.count, evalSource, resume,
      signal: o.signal, reporter,
      onRound(r, weights) {
        const file = path.join(o.out, `${base}_round${r.round}.weights`);
        saveWeights(file, weights, spec);
        // Every number in the report is counted again from the file as saved.
        const saved = sparsityOf(spec, loadWeights(file, spec));
        if (saved.total.nonzero !== r.nonzero) throw new Error(`${file}: saved ${saved.total.nonzero} non-zeros, the round counted ${r.nonzero}`);
        if (report.inProgress) {
          fs.rmSync(report.inProgress.backup, { force: true });
          delete report.inProgress;
        }
        report.history.push({ ...r, weights: file });
        saveReport(o.out, report, spec);
        reporter.info(formatRound(report.dense, o.rounds, r));
      },
    });
    if (result.interrupted) {
      const done = report.history.length;
      let where = '';
      if (result.partial) {
        const backup = path.join(o.out, `${base}_round${result.partial.round}.backup`);
        saveWeights(backup, result.partial.weights, spec);
        report.inProgress = { round: result.partial.round, top1Pruned: result.partial.top1Pruned, backup };
        saveReport(o.out, report, spec);
        where = `; round ${result.partial.round}'s retraining saved in ${backup}`;
      }
      throw new Interrupted(`interrupted: ${done} of ${o.rounds} rounds done in ${o.out}${where}; run the same command to resume`, null);
    }
    return report;
  } finally {
    trainNet.dispose();
    evalNet.dispose();
    for (const [source, given] of [[evalSource, o.evalSource], [train, o.trainSource]] as const) if (source && !given) await closeSource(source);
  }
}

function readBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new DarknetError(`${file}: cannot read weights (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

// ---------------------------------------------------------------------------------------
// The verbs

const thresholdVerb = verb({
  command: 'threshold <cfg> <weights> <out>',
  describe: 'write a copy of the weights with small weights set to exactly 0 (a plain darknet .weights file)',
  builder: (y) =>
    y
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .positional('out', { type: 'string', demandOption: true, describe: 'the thresholded .weights to write' })
      .option('absolute', { type: 'string', coerce: real('absolute', { min: 0, max: Number.MAX_VALUE }), describe: 'zero every weight with |w| below this' })
      .option('std', { type: 'string', coerce: real('std', { min: 0, max: 1e6 }), describe: "Han's rule: zero |w| below this many standard deviations of the layer's weights" })
      .option('sparsity', { type: 'string', coerce: real('sparsity', { min: 0, max: 1 }), describe: 'zero this fraction of weights (the smallest magnitudes)' })
      .option('global', { type: 'boolean', default: false, describe: 'one threshold for all layers pooled (with --sparsity or --std)' })
      .option('layer-sparsity', { type: 'string', describe: 'per-layer fractions by index or name, e.g. 0=0.3,fc1=0.9' }),
  run(args, io) {
    const spec = readCfg(args.cfg);
    const given = (['absolute', 'std', 'sparsity', 'layer-sparsity'] as const).filter((key) => args[key] !== undefined);
    if (given.length !== 1) throw new DarknetError(`prune threshold: give exactly one of --absolute, --std, --sparsity, --layer-sparsity (got ${given.length ? given.join(', ') : 'none'})`);
    const rule: ThresholdRule | undefined =
      args.absolute !== undefined ? { kind: 'absolute', value: args.absolute }
        : args.std !== undefined ? { kind: 'std', quality: args.std }
          : args.sparsity !== undefined ? { kind: 'fraction', sparsity: args.sparsity } : undefined;
    const rules: ThresholdRules = rule ? { scope: args.global ? 'global' : 'layer', rule } : fractionRules(parseLayerSparsity(args['layer-sparsity']!, spec));
    const before = loadWeights(args.weights, spec);
    requireFinite(before, spec, args.weights);
    const result = applyThreshold(spec, before, rules);
    writeWeights(args.out, result.weights, spec);
    // The report is counted from the file as written.
    io.out(formatSummary(spec, weightsColumns(spec, loadWeights(args.out, spec))));
    io.out(`thresholds: ${result.thresholds.map((t) => `${t.index}: |w| < ${t.threshold.toPrecision(4)}`).join(', ')}\nwrote ${args.out}\n`);
  },
});

const pruneVerb = verb({
  command: '$0 <data> <cfg> <weights>',
  describe: 'the prune-retrain recipe: threshold, evaluate, retrain with frozen zeros, evaluate, save; round after round (--structure channel: remove whole filters, a smaller model per round)',
  builder: (y) =>
    y
      .positional('data', { type: 'string', demandOption: true, describe: 'darknet .data file' })
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', demandOption: true, describe: 'the dense model' })
      .option('target', { type: 'string', coerce: real('target', { min: 0, max: 1, exclusiveMin: true, exclusiveMax: true }), describe: 'final sparsity of all conv + connected weights (default 0.92)' })
      .option('rounds', { type: 'string', default: '4', coerce: integer('rounds', { min: 1, max: 1000 }), describe: 'prune-retrain rounds' })
      .option('retrain-batches', { type: 'string', default: '1000', coerce: integer('retrain-batches', { min: 0, max: MAX_COUNT }), describe: 'retraining batches per round' })
      .option('lr-scale', { type: 'string', default: '0.1', coerce: real('lr-scale', { min: 0, max: 100, exclusiveMin: true }), describe: "retraining learning rate = this x the cfg's learning_rate" })
      .option('mode', { choices: SCHEDULE_MODES, default: 'uniform' as const, describe: 'uniform: same rate per layer; sensitivity: per-layer rates; triangle: rising to the output; agp: cubic schedule' })
      .option('sensitivity', { type: 'string', describe: 'a scan CSV from darknet-ts sensitivity (with --mode sensitivity)' })
      .option('max-drop', { type: 'string', default: '0.005', coerce: real('max-drop', { min: 0, max: 1 }), describe: 'with --sensitivity: top-1 a layer may lose in the scan (fraction)' })
      .option('layer-sparsity', { type: 'string', describe: 'final per-layer rates for --mode sensitivity, e.g. conv1=0.3,fc1=0.95' })
      .option('out', { type: 'string', describe: 'folder for round weights and reports (default: weights/prune-<cfg>)' })
      .option('eval-images', { type: 'string', coerce: integer('eval-images', { min: 1, max: MAX_COUNT }), describe: 'evaluate on the first N valid images (default: all)' })
      .option('seed', { type: 'string', default: '1', coerce: integer('seed', { min: 0, max: 2 ** 32 - 1 }) })
      .option('structure', { choices: ['weight', 'channel'] as const, default: 'weight' as const, describe: 'weight: zero single weights (the recipe above); channel: remove whole filters, a smaller cfg + weights per round' })
      .option('target-flops', { type: 'string', coerce: real('target-flops', { min: 0, max: 1, exclusiveMin: true }), describe: '--structure channel: final FLOPs at most this x dense' })
      .option('keep', { type: 'string', coerce: real('keep', { min: 0, max: 1, exclusiveMin: true }), describe: '--structure channel: every layer keeps this fraction of its filters at the end (uniform)' })
      .option('uniform', { type: 'boolean', describe: '--structure channel with --target-flops: the same fraction per layer instead of greedy per-layer ratios from a sensitivity scan' })
      .option('layers', { type: 'string', coerce: integer('layers', { min: 1, max: MAX_COUNT }), describe: '--structure channel: also remove this many whole residual blocks over the rounds (ceil(N x round / rounds) by each round), lowest --criterion score first' })
      .option('criterion', { choices: CRITERIA, describe: '--structure channel: rank filters by L1, batch-norm |gamma| or Taylor (default l1)' })
      .option('tie', { choices: TIE_RULES, describe: '--structure channel: filters tied by a [shortcut]: union keeps a channel any tied layer keeps (the slimming forks, NNI); group ranks the channels of the tied layers together and keeps the fraction asked of them (torch-pruning), so residual streams shrink too (default union)' })
      .option('round-to', { type: 'string', coerce: integer('round-to', { min: 1, max: 1024 }), describe: '--structure channel: kept filters a multiple of this (default 1)' })
      .option('scan-images', { type: 'string', coerce: integer('scan-images', { min: 1, max: MAX_COUNT }), describe: '--structure channel, greedy: validation images per scan evaluation (default 1000)' })
      .option('speed', { type: 'boolean', describe: '--structure channel: measure each round\'s images/s and latency (default; --no-speed to skip)' }),
  async run(args, io) {
    const out = args.out ?? path.join('weights', `prune-${path.basename(args.cfg).replace(/\.cfg$/, '')}`);
    if (args.structure === 'channel') return runChannelLoop(args, out, io);
    for (const key of CHANNEL_ONLY) if (args[key] !== undefined) throw new DarknetError(`--${key} is for --structure channel`);
    const report = await withInterrupt((l) => io.err(`${l}\n`), async (i) => {
      try {
        return await pruneCommand({
          dataFile: args.data, cfgFile: args.cfg, weights: args.weights, target: args.target ?? 0.92, rounds: args.rounds, retrainBatches: args['retrain-batches'],
          lrScale: args['lr-scale'], mode: args.mode as ScheduleMode, sensitivityFile: args.sensitivity,
          maxDrop: args.sensitivity !== undefined ? args['max-drop'] : undefined, layerSparsity: args['layer-sparsity'], out,
          backend: args.backend, seed: args.seed, evalImages: args['eval-images'], reporter: reporterOf(io), signal: i.signal,
        });
      } catch (e) {
        if (e instanceof Interrupted) throw new Interrupted(e.message, i.received);
        throw e;
      }
    });
    const last = report.history[report.history.length - 1];
    io.out(last
      ? `${last.compression.toFixed(1)}x fewer weights (${(100 * last.sparsity).toFixed(2)}% sparse), top-1 ${(100 * last.top1Retrained).toFixed(2)}% ` +
        `(dense ${(100 * report.dense.top1).toFixed(2)}%); ${report.history.length}/${report.rounds} rounds in ${out}\n`
      : `no round finished; ${out}\n`);
  },
});

/** The options only `prune --structure channel` reads: refused with --structure weight. */
const CHANNEL_ONLY = ['target-flops', 'keep', 'uniform', 'layers', 'criterion', 'tie', 'round-to', 'scan-images', 'speed'] as const;

/** The parsed arguments `prune --structure channel` reads. */
interface ChannelLoopArgs {
  data: string; cfg: string; weights: string; backend?: BackendChoice; seed: number; rounds: number; 'retrain-batches': number; 'lr-scale': number;
  mode: string; target?: number; sensitivity?: string; 'layer-sparsity'?: string; 'eval-images'?: number;
  'target-flops'?: number; keep?: number; uniform?: boolean; layers?: number; criterion?: string; tie?: string; 'round-to'?: number; 'scan-images'?: number; speed?: boolean;
}

/** `prune --structure channel`: the options the weight recipe reads are refused, the loop runs, a last line sums it up. */
async function runChannelLoop(args: ChannelLoopArgs, out: string, io: Io): Promise<void> {
  const given = (['target-flops', 'keep'] as const).filter((key) => args[key] !== undefined).map((key) => `--${key}`);
  if (given.length !== 1) throw new DarknetError(`prune --structure channel: give exactly one of --target-flops, --keep (got ${given.length ? given.join(', ') : 'none'})`);
  for (const key of ['mode', 'target', 'sensitivity', 'layer-sparsity'] as const) {
    if (key === 'mode' ? args.mode !== 'uniform' : args[key] !== undefined) throw new DarknetError(`--${key} is for --structure weight`);
  }
  if (args.uniform && args['target-flops'] === undefined) throw new DarknetError('--uniform goes with --target-flops');
  const report = await withInterrupt((l) => io.err(`${l}\n`), async (i) => {
    try {
      return await channelPruneCommand({
        dataFile: args.data, cfgFile: args.cfg, weights: args.weights, out,
        target: args.keep !== undefined ? { kind: 'keep', fraction: args.keep } : { kind: 'flops', fraction: args['target-flops']! },
        allocation: args.keep !== undefined || args.uniform ? 'uniform' : 'greedy', criterion: (args.criterion ?? 'l1') as Criterion, tie: (args.tie ?? 'union') as TieRule,
        layers: args.layers, rounds: args.rounds, retrainBatches: args['retrain-batches'], lrScale: args['lr-scale'], roundTo: args['round-to'] ?? 1,
        evalImages: args['eval-images'], scanImages: args['scan-images'] ?? 1000, speed: args.speed ?? true, backend: args.backend, seed: args.seed,
        reporter: reporterOf(io), signal: i.signal,
      });
    } catch (e) {
      if (e instanceof Interrupted) throw new Interrupted(e.message, i.received);
      throw e;
    }
  });
  const d = report.dense;
  const last = report.history[report.history.length - 1];
  const x = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  io.out(last
    ? `${x(d.params, last.params)} fewer parameters, ${x(d.flops, last.flops)} fewer FLOPs, top-1 ${(100 * last.top1).toFixed(2)}% (dense ${(100 * d.top1).toFixed(2)}%)` +
      (Number.isFinite(last.speed.inferImagesPerSecond)
        ? `, ${x(last.speed.inferImagesPerSecond, d.speed.inferImagesPerSecond)} inference and ${x(last.speed.trainImagesPerSecond, d.speed.trainImagesPerSecond)} training images/s`
        : '') + `; ${report.history.length}/${report.rounds} rounds in ${out} (${last.cfgFile})\n`
    : `no round finished; ${out}\n`);
}

export const prune: Group = {
  command: 'prune',
  describe: 'shrink a model: the prune-retrain recipe, `prune threshold` alone, or `prune channels` (a smaller cfg + weights)',
  verbs: [thresholdVerb, channels, pruneVerb],
};
