import * as path from 'path';
import * as readline from 'readline';
import type { NetworkSpec } from '../cfg/config';
import { augmentationOf } from '../data/augment';
import { TrainBatches, type ImageSource } from '../data/loader';
import { evaluate, rankRow, withHierarchy, type Evaluation } from '../engine/evaluate';
import type { SparseMode } from '../engine/layer';
import { applyMasks, countMasked, masksFromZeros } from '../engine/masks';
import type { Network } from '../engine/network';
import { mulberry32 } from '../engine/random';
import { silentReporter, type Reporter } from '../engine/reporter';
import { train, type TrainOutcome } from '../engine/train';
import { DarknetError } from '../errors';
import { atomicWrite } from '../io/files';
import type { WeightsFile } from '../io/weights';
import type { BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { batchNormScales, gammaChart, gammaSummary } from '../report/gamma';
import { renderLineChart } from '../report/plot';
import { integer, MAX_COUNT, real } from './args';
import { checkOutputDir } from '../io/files';
import { Interrupted, withInterrupt } from './interrupt';
import {
  buildNetwork, classNames, closeSource, loadClassifierSpec, loadKernels, loadWeights, readDataConfig, requireFinite, saveNetwork, shapeOf, trainSource,
  validSource, withBatch,
} from './load';
import { reporterOf, verb, type Group } from './verb';

/**
 * darknet's classifier verbs (examples/classifier.c): train, valid, predict. Each reads
 * its files once, hands objects to the engine (src/engine: train, evaluate) and writes
 * its results once.
 */

export interface TrainCommand {
  dataFile: string;
  cfgFile: string;
  weights?: string;
  backend?: BackendChoice;
  /** start from seen = 0 (darknet's -clear) */
  clear?: boolean;
  seed?: number;
  /** save `<cfg>.backup` every this many batches (darknet: 1000) */
  backupEvery?: number;
  /** darknet's per-iteration line every this many batches */
  logEvery?: number;
  /**
   * stop when the network's batch (optimizer steps, counted from `seen`) reaches this,
   * before max_batches; the learning-rate schedule is unchanged. At most the schedule's end.
   */
  maxBatches?: number;
  /** end the cfg's learning-rate schedule here instead (sets max_batches; poly decays to 0 here) */
  scheduleBatches?: number;
  /** where weights go (default: the .data file's backup) */
  backupDir?: string;
  /** random horizontal flips (darknet always flips) */
  flip?: boolean;
  /** multiply the cfg's learning_rate (retraining after pruning uses about 0.1) */
  lrScale?: number;
  /** keep the loaded weights' zeros (and their momentum) exactly 0 */
  freezeZeros?: boolean;
  /** network slimming: L1 strength on every batch-norm scale (0 = off) */
  slim?: number;
  /** with --freeze-zeros, skip the frozen zeros in connected layers (default auto) */
  sparse?: SparseMode;
  /** an already-made source of training images (tests, benchmarks) */
  source?: ImageSource;
  kernels?: Kernels;
  reporter?: Reporter;
  /** aborting stops after the batch in progress and saves a backup */
  signal?: AbortSignal;
}

export interface TrainResult extends TrainOutcome {
  network: Network;
  /** the network's batch at the end */
  batches: number;
  seen: number;
  /** the file written last: `<cfg>.weights`, or `<cfg>.backup` when interrupted */
  finalWeights: string;
  skippedImages: number;
}

/**
 * `classifier train`: trains until max_batches, saving `<cfg>_<epoch>.weights` each epoch,
 * `<cfg>.backup` every `backupEvery` batches and `<cfg>.weights` at the end, plus a
 * loss-curve PNG beside it. A loss that goes NaN stops training before anything is saved.
 */
export async function trainClassifier(o: TrainCommand): Promise<TrainResult> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const parsed = loadClassifierSpec(o.cfgFile, data.classes, reporter);
  // --schedule-batches and --lr-scale change the schedule itself (poly decays to max_batches);
  // --max-batches only stops training earlier.
  const spec: NetworkSpec = {
    ...parsed,
    net: { ...parsed.net, maxBatches: o.scheduleBatches ?? parsed.net.maxBatches, learningRate: parsed.net.learningRate * (o.lrScale ?? 1) },
  };
  if (spec.net.maxBatches <= 0) throw new DarknetError(`${o.cfgFile}: max_batches is ${spec.net.maxBatches}; set it in [net] or pass --schedule-batches`);
  if (o.maxBatches !== undefined && o.maxBatches > spec.net.maxBatches) {
    throw new DarknetError(`--max-batches ${o.maxBatches} is past the end of the learning-rate schedule (max_batches ${spec.net.maxBatches}` +
      `${o.scheduleBatches === undefined ? ` in ${o.cfgFile}` : ', --schedule-batches'}); to train longer, move the schedule's end with --schedule-batches`);
  }
  const stopAt = o.maxBatches ?? spec.net.maxBatches;
  if (o.freezeZeros && !o.weights) throw new DarknetError('--freeze-zeros needs weights to take the zeros from');
  const backupDir = o.backupDir ?? data.backup;
  // Checked before training starts: a bad backup folder must not cost a training run.
  checkOutputDir(backupDir);
  const start = o.weights ? loadWeights(o.weights, spec) : undefined;
  if (start && o.weights) requireFinite(start, spec, o.weights);
  const source = o.source ?? trainSource(data, spec);
  try {
    return await trainOn(o, spec, stopAt, source, start, backupDir, data.classes, reporter);
  } finally {
    if (!o.source) await closeSource(source);
  }
}

async function trainOn(
  o: TrainCommand, spec: NetworkSpec, stopAt: number, source: ImageSource, start: WeightsFile | undefined, backupDir: string, classes: number, reporter: Reporter,
): Promise<TrainResult> {
  const k = o.kernels ?? (await loadKernels(o.backend, reporter));
  const net = buildNetwork(spec, k, start, o.seed);
  if (o.weights) reporter.info(`loaded ${o.weights} (seen ${net.seen})`);
  if (o.clear) net.seen = 0;
  if (o.freezeZeros && start) {
    const masks = masksFromZeros(net, start);
    applyMasks(net, masks);
    const { zeros, weights } = countMasked(masks);
    reporter.info(`frozen zeros: ${zeros} of ${weights} weights (${((100 * zeros) / weights).toFixed(2)}%) stay 0`);
    useSparse(net, o.sparse ?? 'auto', reporter);
  }
  const slimming = (o.slim ?? 0) > 0 ? startSlimming(net, o.slim!, reporter) : null;
  const random = mulberry32((o.seed ?? 1) + 7919);
  const batches = new TrainBatches(source, net.batch, classes, shapeOf(spec), random, augmentationOf(spec.net, o.flip ?? false), (m) =>
    reporter.warn(m),
  );
  const base = path.basename(o.cfgFile).replace(/\.cfg$/, '');
  const save = (name: string) => {
    const file = path.join(backupDir, name);
    saveNetwork(file, net);
    return file;
  };
  reporter.info(`training ${base}: ${source.count} images, batch ${net.batch * spec.net.subdivisions} (${spec.net.subdivisions} subdivisions), ` +
    `learning rate ${spec.net.learningRate}, momentum ${spec.net.momentum}, decay ${spec.net.decay}, to ${stopAt} batches` +
    (stopAt < spec.net.maxBatches ? ` (the schedule runs to ${spec.net.maxBatches})` : ''));
  const backupEvery = o.backupEvery ?? 1000;
  let epoch = Math.floor(net.seen / source.count);
  const outcome = await train(net, batches, {
    maxBatches: stopAt,
    epochSize: source.count,
    signal: o.signal,
    logEvery: o.logEvery ?? 10,
    reporter,
    afterBatch(step) {
      if (step.epoch > epoch) {
        epoch = step.epoch;
        save(`${base}_${epoch}.weights`);
        slimming?.snapshot(`epoch ${epoch}`);
      }
      if (step.batch % backupEvery === 0) save(`${base}.backup`);
    },
  });
  const finalWeights = save(outcome.interrupted ? `${base}.backup` : `${base}.weights`);
  if (outcome.losses.length > 1) atomicWrite(path.join(backupDir, `${base}.loss.png`), lossChart(base, outcome.losses, outcome.firstBatch));
  if (slimming) {
    slimming.snapshot(`batch ${net.currentBatch()}`);
    atomicWrite(path.join(backupDir, `${base}.gamma.png`), gammaChart(`${base}: batch-norm scales, --slim ${o.slim}`, slimming.snapshots));
  }
  reporter.info(`${outcome.interrupted ? 'stopped at' : 'trained to'} batch ${net.currentBatch()} (${net.seen} images), ` +
    `${outcome.imagesPerSecond.toFixed(0)} images/s; weights: ${finalWeights}` +
    (batches.skipped.size ? `; skipped ${batches.skipped.size} images that could not be loaded` : ''));
  return { ...outcome, network: net, batches: net.currentBatch(), seen: net.seen, finalWeights, skippedImages: batches.skipped.size };
}

/** Network slimming: the L1 pull on every batch-norm scale, and |gamma| watched per epoch. */
function startSlimming(net: Network, strength: number, reporter: Reporter) {
  if (batchNormScales(net).length === 0) throw new DarknetError('--slim pulls batch-norm scales towards 0, but this cfg has no batch_normalize=1 layer');
  net.slim = strength;
  const snapshots: Array<{ label: string; scales: Float32Array }> = [];
  const snapshot = (label: string) => {
    const scales = batchNormScales(net);
    snapshots.push({ label, scales });
    reporter.info(`${label}: ${gammaSummary(scales)}`);
  };
  snapshot('start');
  return { snapshots, snapshot };
}

function lossChart(base: string, losses: number[], firstBatch: number): Buffer {
  let avg = -1;
  const smooth = losses.map((l, i) => {
    avg = avg < 0 ? l : avg * 0.9 + l * 0.1;
    return [firstBatch + i + 1, avg] as [number, number];
  });
  return renderLineChart({
    title: `${base}: training loss`,
    xLabel: 'batch',
    yLabel: 'loss per image',
    series: [
      { name: 'loss', points: losses.map((l, i) => [firstBatch + i + 1, l]), color: [170, 200, 235] },
      { name: 'avg (darknet, 0.9)', points: smooth, color: [20, 80, 170] },
    ],
  });
}

export interface ValidCommand {
  dataFile: string;
  cfgFile: string;
  weights: string;
  backend?: BackendChoice;
  /** images per forward pass (default: the cfg's batch / subdivisions) */
  batch?: number;
  /** skip zero weights where a layer has a sparse path (default auto) */
  sparse?: SparseMode;
  kernels?: Kernels;
  reporter?: Reporter;
}

/** Turns the sparse path on as asked and says where it runs. */
function useSparse(net: Network, mode: SparseMode, reporter: Reporter): void {
  const layers = net.setSparse(mode);
  if (layers.length) reporter.info(`sparse: layers ${layers.join(', ')} skip their zero weights (--sparse ${mode})`);
}

/** `classifier valid`: top-1 and top-k over the .data file's valid list; every image must load. */
export async function validClassifier(o: ValidCommand): Promise<Evaluation> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const parsed = loadClassifierSpec(o.cfgFile, data.classes, reporter);
  const spec = withBatch(parsed, o.batch ?? parsed.net.batch);
  const weights = loadWeights(o.weights, spec);
  requireFinite(weights, spec, o.weights);
  const source = validSource(data, spec);
  try {
    const net = buildNetwork(spec, o.kernels ?? (await loadKernels(o.backend, reporter)), weights);
    useSparse(net, o.sparse ?? 'auto', reporter);
    try {
      return await evaluate(net, source, { k: data.top || 1, reporter, label: 'valid' });
    } finally {
      net.dispose();
    }
  } finally {
    await closeSource(source);
  }
}

export interface Prediction {
  image: string;
  top: Array<{ class: number; name: string; probability: number }>;
}

/** `classifier predict`: the top classes of each image (letterboxed, as darknet's), with names. */
export async function predictImages(
  o: { dataFile: string; cfgFile: string; weights: string; backend?: BackendChoice; top?: number; sparse?: SparseMode; reporter?: Reporter; kernels?: Kernels },
  images: AsyncIterable<string> | Iterable<string>,
  onPrediction: (p: Prediction) => void,
): Promise<void> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const spec = withBatch(loadClassifierSpec(o.cfgFile, data.classes, reporter), 1);
  const names = classNames(data);
  const weights = loadWeights(o.weights, spec);
  requireFinite(weights, spec, o.weights);
  if (o.top !== undefined && o.top > data.classes) throw new DarknetError(`--top ${o.top}: the model has only ${data.classes} classes`);
  const net = buildNetwork(spec, o.kernels ?? (await loadKernels(o.backend, reporter)), weights);
  useSparse(net, o.sparse ?? 'auto', reporter);
  const top = Math.min(o.top ?? (data.top || 1), data.classes);
  const { loadNetworkInput } = await import('../data/images');
  if (spec.net.c !== 1 && spec.net.c !== 3) throw new DarknetError(`${o.cfgFile}: images can be loaded with 1 or 3 channels, the cfg asks for ${spec.net.c}`);
  try {
    for await (const image of images) {
      // darknet's predict_classifier letterboxes the image to the net's size
      const x = await loadNetworkInput(image, spec.net.w, spec.net.h, spec.net.c, 'letterbox');
      const out = withHierarchy(net, net.predict(x), 1);
      const ranked = rankRow(out, 0, data.classes).slice(0, top);
      onPrediction({ image, top: ranked.map((c) => ({ class: c, name: names[c] ?? String(c), probability: out[c] })) });
    }
  } finally {
    net.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// The verbs

const SPARSE_OPTION = {
  choices: ['auto', 'on', 'off'] as const,
  default: 'auto' as const,
  describe: 'skip zero weights in connected and convolutional layers (wasm-simd): auto from 50% (connected) and 70% (convolutional) zeros up, on, off',
};

/** Options shared by the classifier verbs. */
function classifierArgs<T>(y: import('yargs').Argv<T>) {
  return y
    .positional('data', { type: 'string', demandOption: true, describe: 'darknet .data file' })
    .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' });
}

const trainVerb = verb({
  command: 'train <data> <cfg> [weights]',
  describe: 'train a classifier (darknet: classifier train)',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', describe: 'start from these weights (a darknet .weights or .backup)' })
      .option('clear', { type: 'boolean', default: false, describe: 'reset seen to 0 (start the schedule over)' })
      .option('seed', { type: 'string', default: '1', coerce: integer('seed', { min: 0, max: 2 ** 32 - 1 }), describe: 'seed for initial weights, shuffling, dropout and augmentation' })
      .option('max-batches', { type: 'string', coerce: integer('max-batches', { min: 1, max: MAX_COUNT }), describe: "stop when the network's batch count reaches N (before the cfg's max_batches); the learning-rate schedule is unchanged" })
      .option('schedule-batches', { type: 'string', coerce: integer('schedule-batches', { min: 1, max: MAX_COUNT }), describe: "end the cfg's learning-rate schedule at N batches (sets max_batches: training stops there, poly decays to 0 there)" })
      .option('backup-every', { type: 'string', default: '1000', coerce: integer('backup-every', { min: 1, max: MAX_COUNT }), describe: 'save <cfg>.backup every N batches' })
      .option('log-every', { type: 'string', default: '10', coerce: integer('log-every', { min: 1, max: MAX_COUNT }), describe: "print darknet's per-iteration line every N batches" })
      .option('backup', { type: 'string', describe: "where weights are saved (default: the .data file's backup)" })
      .option('flip', { type: 'boolean', default: false, describe: 'random horizontal flips (darknet always flips)' })
      .option('lr-scale', { type: 'string', default: '1', coerce: real('lr-scale', { min: 0, max: 100, exclusiveMin: true }), describe: "multiply the cfg's learning_rate (about 0.1 to retrain a pruned model)" })
      .option('freeze-zeros', { type: 'boolean', default: false, describe: "keep the loaded weights' zeros (and their momentum) exactly 0 while training" })
      .option('sparse', { ...SPARSE_OPTION, describe: 'with --freeze-zeros: skip the frozen zeros in connected and convolutional layers (wasm-simd): auto from 50% and 70% zeros up, on, off' })
      .option('slim', { type: 'string', coerce: real('slim', { min: 0, max: 1 }), describe: 'network slimming: add S * sign(gamma) to every batch-norm scale\'s gradient (darknet forks: -sr --s); prints |gamma| per epoch and draws <cfg>.gamma.png' }),
  async run(args, io) {
    const reporter = reporterOf(io);
    const r = await withInterrupt((l) => io.err(`${l}\n`), async (i) => {
      const result = await trainClassifier({
        dataFile: args.data,
        cfgFile: args.cfg,
        weights: args.weights,
        backend: args.backend,
        clear: args.clear,
        seed: args.seed,
        maxBatches: args['max-batches'],
        scheduleBatches: args['schedule-batches'],
        backupEvery: args['backup-every'],
        logEvery: args['log-every'],
        backupDir: args.backup,
        flip: args.flip,
        lrScale: args['lr-scale'],
        freezeZeros: args['freeze-zeros'],
        slim: args.slim,
        sparse: args.sparse,
        reporter,
        signal: i.signal,
      });
      if (result.interrupted) {
        throw new Interrupted(
          `interrupted at batch ${result.batches}: saved ${result.finalWeights}; resume with: ` +
            `darknet-ts classifier train ${args.data} ${args.cfg} ${result.finalWeights}${args['freeze-zeros'] ? ' --freeze-zeros' : ''} (and the same options)`,
          i.received,
        );
      }
      return result;
    });
    io.out(`done: ${r.batches} batches, ${r.seen} images, ${r.imagesPerSecond.toFixed(0)} images/s, weights ${r.finalWeights}\n`);
  },
});

const validVerb = verb({
  command: 'valid <data> <cfg> <weights>',
  describe: "top-1 and top-k accuracy over the valid list, each image's centred square resized to the net (darknet: classifier valid)",
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .option('batch', { type: 'string', coerce: integer('batch', { min: 1, max: 4096 }), describe: 'images per forward pass (default: the cfg batch)' })
      .option('sparse', SPARSE_OPTION)
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
  async run(args, io) {
    const r = await validClassifier({
      dataFile: args.data, cfgFile: args.cfg, weights: args.weights, backend: args.backend, batch: args.batch, sparse: args.sparse, reporter: reporterOf(io, args.json),
    });
    if (args.json) {
      io.out(`${JSON.stringify({ images: r.count, top1: r.top1, [`top${r.k}`]: r.topK, seconds: r.seconds })}\n`);
    } else {
      io.out(`top 1: ${r.top1.toFixed(6)}, top ${r.k}: ${r.topK.toFixed(6)} (${r.count} images, ${(r.count / r.seconds).toFixed(0)} images/s)\n`);
    }
  },
});

/** Image paths from stdin, one a line. */
async function* stdinLines(): AsyncIterable<string> {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) if (line.trim() !== '') yield line.trim();
}

const predictVerb = verb({
  command: 'predict <data> <cfg> <weights> [image]',
  describe: 'top classes of an image (letterboxed to the net), or of each path read from stdin (darknet: classifier predict)',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .positional('image', { type: 'string', describe: 'an image (PNG or JPEG); without it, paths are read from stdin' })
      .option('top', { type: 'string', coerce: integer('top', { min: 1, max: 100000 }), describe: "classes to show (default: the .data file's top)" })
      .option('sparse', SPARSE_OPTION)
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object per image' }),
  async run(args, io) {
    const images = args.image !== undefined ? [args.image] : stdinLines();
    await predictImages(
      { dataFile: args.data, cfgFile: args.cfg, weights: args.weights, backend: args.backend, top: args.top, sparse: args.sparse, reporter: reporterOf(io, true) },
      images,
      (p) => {
        if (args.json) io.out(`${JSON.stringify(p)}\n`);
        else io.out(`${p.image}\n${p.top.map((t) => `${(100 * t.probability).toFixed(2).padStart(6)}%: ${t.name}`).join('\n')}\n`);
      },
    );
  },
});

export const classifier: Group = {
  command: 'classifier',
  describe: "train, validate and predict with a classifier (darknet's verbs and argument order)",
  verbs: [trainVerb, validVerb, predictVerb],
};
