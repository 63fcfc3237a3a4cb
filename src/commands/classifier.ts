import * as fs from 'fs';
import * as path from 'path';
import type { NetworkSpec } from './config';
import { augmentationOf } from './data/augment';
import { readDataConfig, readLabels, readLines, type DataConfig } from './data/dataset';
import { fillInputs, ListSource, TrainBatches, type ImageSource } from './data/loader';
import { DarknetError } from './errors';
import { createKernels } from './kernels/backend';
import type { Kernels } from './kernels/types';
import { Network } from './network';
import { readCfg } from './parser';
import { renderLineChart } from './plot';
import { formatDuration, Progress } from './progress';
import { mulberry32 } from './random';
import { atomicWrite, readWeights, writeWeights } from './weights';

/**
 * darknet's classifier verbs (examples/classifier.c) as library functions:
 * train, validate and predict. The CLI only parses arguments and calls these.
 */

export type Log = (line: string) => void;

/** A spec with another batch size (every per-image shape is unchanged). */
export function withBatch(spec: NetworkSpec, batch: number): NetworkSpec {
  return {
    ...spec,
    net: { ...spec.net, batch, subdivisions: 1 },
    layers: spec.layers.map((l) => ({ ...l, batch })),
  };
}

/** Parses the cfg, prints its warnings, checks it ends in `classes` outputs. */
export function loadClassifierSpec(cfgFile: string, classes: number | undefined, log: Log): NetworkSpec {
  const spec = readCfg(cfgFile);
  for (const w of spec.warnings) log(`warning: ${w}`);
  const outputs = spec.layers[spec.layers.length - 1].outputs;
  if (classes !== undefined && outputs !== classes) {
    throw new DarknetError(`${cfgFile}: the last layer has ${outputs} outputs but the .data file says classes=${classes}`);
  }
  if (spec.net.c !== 1 && spec.net.c !== 3) {
    throw new DarknetError(`${cfgFile}: channels=${spec.net.c}; classifiers load images with 1 or 3 channels`);
  }
  return spec;
}

/** A network on a backend, with weights if given; says which backend really runs. */
export async function buildNetwork(
  spec: NetworkSpec,
  opts: { backend?: string; weights?: string; seed?: number; kernels?: Kernels },
  log: Log,
): Promise<Network> {
  const k = opts.kernels ?? (await createKernels(opts.backend as never));
  log(`backend: ${k.description}`);
  const net = new Network(spec, k, { seed: opts.seed });
  if (opts.weights) {
    net.loadWeights(readWeights(opts.weights, spec));
    log(`loaded ${opts.weights} (seen ${net.seen})`);
  }
  return net;
}

export interface TrainOptions {
  dataFile: string;
  cfgFile: string;
  weights?: string;
  backend?: string;
  /** start from seen = 0 (darknet's -clear) */
  clear?: boolean;
  seed?: number;
  /** save `<cfg>.backup` every this many batches (darknet: 1000) */
  backupEvery?: number;
  /** darknet's per-iteration line every this many batches */
  logEvery?: number;
  /** stop after this many batches instead of max_batches */
  maxBatches?: number;
  /** where weights go (default: the .data file's backup) */
  backupDir?: string;
  /** random horizontal flips (darknet always flips) */
  flip?: boolean;
  /** multiply the cfg's learning_rate (retraining after pruning uses about 0.1) */
  learningRateScale?: number;
  /**
   * Freeze the loaded weights' zeros: every zero weight and its momentum stay exactly 0.
   * The mask is made from the zeros on load, so it survives save, resume and restart.
   */
  freezeZeros?: boolean;
  /** an already-made source of training images (tests, benchmarks) */
  source?: ImageSource;
  kernels?: Kernels;
  log?: Log;
  /** no progress bar */
  quiet?: boolean;
  /** checked between batches; true = save a backup and stop */
  shouldStop?: () => boolean;
}

export interface TrainResult {
  network: Network;
  batches: number;
  seen: number;
  /** loss per batch (per image, darknet's `loss`) */
  losses: number[];
  finalWeights: string;
  seconds: number;
  imagesPerSecond: number;
  skippedImages: number;
  interrupted: boolean;
}

/**
 * darknet's train_classifier: trains until max_batches, printing darknet's line
 * `batch, epoch: loss, avg avg, rate rate, seconds seconds, seen images`, saving
 * `<cfg>_<epoch>.weights` each epoch, `<cfg>.backup` every `backupEvery` batches and
 * `<cfg>.weights` at the end, plus a loss-curve PNG beside it.
 */
export async function trainClassifier(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const data = readDataConfig(o.dataFile);
  const parsed = loadClassifierSpec(o.cfgFile, data.classes, log);
  // --max-batches and --lr-scale change the schedule itself (poly decays to max_batches).
  const spec: NetworkSpec = {
    ...parsed,
    net: {
      ...parsed.net,
      maxBatches: o.maxBatches ?? parsed.net.maxBatches,
      learningRate: parsed.net.learningRate * (o.learningRateScale ?? 1),
    },
  };
  const net = await buildNetwork(spec, o, log);
  if (o.clear) net.seen = 0;
  if (o.freezeZeros) {
    if (!o.weights) throw new DarknetError('--freeze-zeros needs weights to take the zeros from');
    const frozen = freezeZeros(net);
    log(`frozen zeros: ${frozen.zeros} of ${frozen.weights} weights (${((100 * frozen.zeros) / frozen.weights).toFixed(2)}%) stay 0`);
  }
  const shape = { w: spec.net.w, h: spec.net.h, c: spec.net.c };
  const source = o.source ?? new ListSource(readLines(data.train, 'the training list'), readLabels(data.labels, data.classes), shape);
  const random = mulberry32((o.seed ?? 1) + 7919);
  const batches = new TrainBatches(source, net.batch, data.classes, shape, random, augmentationOf(spec.net, o.flip ?? false), (m) =>
    log(`warning: ${m}`),
  );
  const maxBatches = spec.net.maxBatches;
  if (maxBatches <= 0) throw new DarknetError(`${o.cfgFile}: max_batches is ${maxBatches}; set it in [net] or pass --max-batches`);
  const base = path.basename(o.cfgFile).replace(/\.cfg$/, '');
  const backupDir = o.backupDir ?? data.backup;
  const save = (name: string) => {
    const file = path.join(backupDir, name);
    writeWeights(file, net.exportWeights(), spec);
    return file;
  };
  log(`training ${base}: ${source.count} images, batch ${net.batch * spec.net.subdivisions} (${spec.net.subdivisions} subdivisions), ` +
    `learning rate ${spec.net.learningRate}, momentum ${spec.net.momentum}, decay ${spec.net.decay}, to ${maxBatches} batches`);

  const logEvery = o.logEvery ?? 10;
  const backupEvery = o.backupEvery ?? 1000;
  const progress = o.quiet ? null : new Progress('train', maxBatches, 'batch');
  const losses: number[] = [];
  let avg = -1;
  let epoch = Math.floor(net.seen / source.count);
  const start = Date.now();
  const startSeen = net.seen;
  let interrupted = false;
  while (net.currentBatch() < maxBatches) {
    if (o.shouldStop?.()) {
      interrupted = true;
      break;
    }
    const t0 = Date.now();
    let loss = 0;
    for (let s = 0; s < spec.net.subdivisions; s++) {
      const b = await batches.next();
      loss += net.trainBatch(b.x, b.y);
    }
    loss /= spec.net.subdivisions;
    losses.push(loss);
    avg = avg < 0 ? loss : avg * 0.9 + loss * 0.1;
    const batch = net.currentBatch();
    if (batch % logEvery === 0 || batch === maxBatches) {
      const seconds = (Date.now() - t0) / 1000;
      log(`${batch}, ${(net.seen / source.count).toFixed(3)}: ${loss.toFixed(6)}, ${avg.toFixed(6)} avg, ` +
        `${net.currentRate().toFixed(6)} rate, ${seconds.toFixed(6)} seconds, ${net.seen} images`);
    }
    progress?.update(batch, `loss ${avg.toFixed(4)}`);
    if (Math.floor(net.seen / source.count) > epoch) {
      epoch = Math.floor(net.seen / source.count);
      save(`${base}_${epoch}.weights`);
    }
    if (batch % backupEvery === 0) save(`${base}.backup`);
  }
  progress?.finish(net.currentBatch());
  const seconds = (Date.now() - start) / 1000;
  let finalWeights: string;
  if (interrupted) {
    finalWeights = save(`${base}.backup`);
    log(`interrupted at batch ${net.currentBatch()}: saved ${finalWeights}; resume with it as the weights argument`);
  } else {
    finalWeights = save(`${base}.weights`);
  }
  if (losses.length > 1) {
    const png = path.join(backupDir, `${base}.loss.png`);
    atomicWrite(png, lossChart(base, losses, net.currentBatch() - losses.length));
  }
  const imagesPerSecond = (net.seen - startSeen) / Math.max(seconds, 1e-9);
  log(`trained ${net.currentBatch()} batches (${net.seen} images) in ${formatDuration(seconds)}, ` +
    `${imagesPerSecond.toFixed(0)} images/s; weights: ${finalWeights}` +
    (batches.skipped.size ? `; skipped ${batches.skipped.size} images that could not be loaded` : ''));
  return {
    network: net,
    batches: net.currentBatch(),
    seen: net.seen,
    losses,
    finalWeights,
    seconds,
    imagesPerSecond,
    skippedImages: batches.skipped.size,
    interrupted,
  };
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

/**
 * Masks every prunable layer's weights where they are 0 now (conv, connected): the
 * masked update keeps them and their momentum exactly 0.
 * NOTE: darknet's update adds momentum and decay to every weight, so without the mask a
 * pruned weight comes back after one step; this is the most reported bug in pruning tools.
 */
export function freezeZeros(net: Network): { zeros: number; weights: number } {
  let zeros = 0;
  let weights = 0;
  for (const l of net.layers) {
    const w = l.params.find((p) => p.name === 'weights');
    if (!w || !l.setMask) continue;
    const values = net.k.read(w.tensor);
    const mask = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      mask[i] = values[i] !== 0 ? 1 : 0;
      if (values[i] === 0) zeros++;
    }
    weights += values.length;
    l.setMask(mask);
  }
  return { zeros, weights };
}

export interface ValidResult {
  count: number;
  top1: number;
  topK: number;
  k: number;
  /** predicted class of each image (top-1) */
  predictions: Int32Array;
  seconds: number;
}

/** Top-1 and top-k of a [batch, classes] output row block. */
function rankRow(out: ArrayLike<number>, offset: number, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => c).sort((a, b) => out[offset + b] - out[offset + a]);
}

/**
 * darknet's validate_classifier_single over a source: batched inference (the last batch
 * padded), top-1 and top-k accuracy.
 */
export async function validate(net: Network, source: ImageSource, classes: number, k: number, quiet = false): Promise<ValidResult> {
  const inputs = net.config.inputs;
  const x = new Float32Array(net.batch * inputs);
  const predictions = new Int32Array(source.count);
  let top1 = 0;
  let topK = 0;
  const start = Date.now();
  const progress = new Progress('valid', source.count, 'img');
  // The next batch is decoded while this one runs (two input buffers, one in flight).
  const buffers = [x, new Float32Array(x.length)];
  const load = (s: number) => fillInputs(source, s, Math.min(net.batch, source.count - s), buffers[(s / net.batch) % 2], inputs);
  let pending = source.count > 0 ? load(0) : Promise.resolve();
  for (let s = 0; s < source.count; s += net.batch) {
    const n = Math.min(net.batch, source.count - s);
    await pending;
    if (s + net.batch < source.count) {
      pending = load(s + net.batch);
      pending.catch(() => undefined); // surfaces at its await
    }
    const out = net.predict(buffers[(s / net.batch) % 2]);
    for (let j = 0; j < n; j++) {
      const ranked = rankRow(out, j * classes, classes);
      const truth = source.label(s + j);
      predictions[s + j] = ranked[0];
      if (ranked[0] === truth) top1++;
      if (ranked.slice(0, k).includes(truth)) topK++;
    }
    if (!quiet) progress.update(s + n, `top 1: ${(top1 / (s + n)).toFixed(4)}`);
  }
  if (!quiet) progress.finish(source.count);
  return { count: source.count, top1: top1 / source.count, topK: topK / source.count, k, predictions, seconds: (Date.now() - start) / 1000 };
}

export interface ValidOptions {
  dataFile: string;
  cfgFile: string;
  weights: string;
  backend?: string;
  /** images per forward pass (default: the cfg's batch / subdivisions) */
  batch?: number;
  kernels?: Kernels;
  log?: Log;
  quiet?: boolean;
}

/** `classifier valid`: every image of the .data file's valid list must load. */
export async function validClassifier(o: ValidOptions): Promise<ValidResult & { data: DataConfig }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const data = readDataConfig(o.dataFile);
  let spec = loadClassifierSpec(o.cfgFile, data.classes, log);
  spec = withBatch(spec, o.batch ?? spec.net.batch);
  const net = await buildNetwork(spec, o, log);
  const paths = readLines(data.valid, 'the validation list');
  const source = new ListSource(paths, readLabels(data.labels, data.classes), { w: spec.net.w, h: spec.net.h, c: spec.net.c }, false);
  const result = await validate(net, source, data.classes, Math.min(data.top || 1, data.classes), o.quiet);
  return { ...result, data };
}

export interface Prediction {
  image: string;
  top: Array<{ class: number; name: string; probability: number }>;
}

/** `classifier predict`: the top classes of each image, with names. */
export async function predictImages(
  o: { dataFile: string; cfgFile: string; weights: string; backend?: string; top?: number; log?: Log; kernels?: Kernels },
  images: AsyncIterable<string> | Iterable<string>,
  onPrediction: (p: Prediction) => void,
): Promise<void> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const data = readDataConfig(o.dataFile);
  const spec = withBatch(loadClassifierSpec(o.cfgFile, data.classes, log), 1);
  const names = fs.existsSync(data.names) ? readLines(data.names, 'names') : readLines(data.labels, 'labels');
  const net = await buildNetwork(spec, o, log);
  const top = Math.min(o.top ?? (data.top || 1), data.classes);
  const { loadImage } = await import('./data/images');
  const x = new Float32Array(spec.net.inputs);
  for await (const image of images) {
    const img = await loadImage(image, spec.net.w, spec.net.h, spec.net.c as 1 | 3);
    for (let i = 0; i < x.length; i++) x[i] = img.data[i] / 255;
    const out = net.predict(x);
    const ranked = rankRow(out, 0, data.classes).slice(0, top);
    onPrediction({ image, top: ranked.map((c) => ({ class: c, name: names[c] ?? String(c), probability: out[c] })) });
  }
}
