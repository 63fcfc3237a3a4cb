import { DarknetError } from '../errors';
import type { Network } from './network';
import { formatDuration, silentReporter, type Reporter } from './reporter';

/**
 * The training loop on objects: a network, a source of batches, when to stop, and a
 * reporter. It never reads or writes a file; the caller saves (through `afterBatch` and
 * the outcome), so the same loop serves `classifier train`, prune retraining and tests.
 */

/** Whatever yields training batches: `[batch, inputs]` images and `[batch, classes]` truths. */
export interface BatchSource {
  next(): Promise<{ x: Float32Array; y: Float32Array }>;
}

export interface TrainOptions {
  /** train until the network's current batch (optimizer steps, from `seen`) reaches this */
  maxBatches: number;
  /** images in one epoch of the source (for darknet's epoch column and `afterBatch`) */
  epochSize: number;
  /** aborting stops the loop after the batch in progress (Ctrl-C, SIGTERM) */
  signal?: AbortSignal;
  /** darknet's per-iteration line every this many batches (0: never) */
  logEvery?: number;
  /** called after every optimizer step, e.g. to save epoch weights and backups */
  afterBatch?(step: TrainStep): void;
  reporter?: Reporter;
  /** the progress bar's label */
  label?: string;
}

export interface TrainStep {
  /** optimizer steps so far (darknet's get_current_batch) */
  batch: number;
  seen: number;
  /** whole epochs done, floor(seen / epochSize) */
  epoch: number;
  loss: number;
  avg: number;
}

export interface TrainOutcome {
  /** the network's batch when training began and when it ended */
  firstBatch: number;
  lastBatch: number;
  /** loss per image of each step taken */
  losses: number[];
  seconds: number;
  imagesPerSecond: number;
  /** stopped by the signal before maxBatches */
  interrupted: boolean;
}

/** The loss went NaN or infinite: training stops before anything is saved from it. */
export class TrainingDiverged extends DarknetError {
  constructor(readonly batch: number, loss: number) {
    super(`training diverged at batch ${batch}: the loss is ${loss}; nothing was saved from it (lower the learning rate or --lr-scale)`);
    this.name = 'TrainingDiverged';
  }
}

/** Lets timers and signal handlers run (a loop of awaits on settled promises never does). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * darknet's train_classifier loop: a batch of `subdivisions` passes per optimizer step,
 * until `maxBatches`. Prints darknet's line `batch, epoch: loss, avg avg, rate rate,
 * seconds seconds, seen images` every `logEvery` steps. Between steps it yields to the
 * event loop, so an abort (a signal handler) is seen within one batch.
 * @example
 *   const ac = new AbortController();
 *   process.once('SIGINT', () => ac.abort());
 *   const r = await train(net, batches, { maxBatches: 1000, epochSize: 60000, signal: ac.signal });
 */
export async function train(net: Network, batches: BatchSource, o: TrainOptions): Promise<TrainOutcome> {
  const reporter = o.reporter ?? silentReporter;
  const logEvery = o.logEvery ?? 10;
  const subdivisions = net.config.subdivisions;
  const firstBatch = net.currentBatch();
  const startSeen = net.seen;
  const progress = reporter.progress(o.label ?? 'train', Math.max(0, o.maxBatches - firstBatch), 'batch');
  const losses: number[] = [];
  let avg = -1;
  let interrupted = false;
  const start = Date.now();
  while (net.currentBatch() < o.maxBatches) {
    await yieldToEventLoop();
    if (o.signal?.aborted) {
      interrupted = true;
      break;
    }
    const t0 = Date.now();
    let loss = 0;
    for (let s = 0; s < subdivisions; s++) {
      const b = await batches.next();
      loss += net.trainBatch(b.x, b.y);
    }
    loss /= subdivisions;
    const batch = net.currentBatch();
    if (!Number.isFinite(loss)) throw new TrainingDiverged(batch, loss);
    losses.push(loss);
    avg = avg < 0 ? loss : avg * 0.9 + loss * 0.1;
    if (logEvery > 0 && (batch % logEvery === 0 || batch === o.maxBatches)) {
      reporter.info(`${batch}, ${(net.seen / o.epochSize).toFixed(3)}: ${loss.toFixed(6)}, ${avg.toFixed(6)} avg, ` +
        `${net.currentRate().toFixed(6)} rate, ${((Date.now() - t0) / 1000).toFixed(6)} seconds, ${net.seen} images`);
    }
    progress.update(batch - firstBatch, `loss ${avg.toFixed(4)}`);
    o.afterBatch?.({ batch, seen: net.seen, epoch: Math.floor(net.seen / o.epochSize), loss, avg });
  }
  progress.finish(net.currentBatch() - firstBatch);
  const seconds = (Date.now() - start) / 1000;
  return {
    firstBatch,
    lastBatch: net.currentBatch(),
    losses,
    seconds,
    imagesPerSecond: (net.seen - startSeen) / Math.max(seconds, 1e-9),
    interrupted,
  };
}

/** One line about a finished training, for reports. */
export function describeOutcome(net: Network, r: TrainOutcome): string {
  return `trained to batch ${r.lastBatch} (${net.seen} images) in ${formatDuration(r.seconds)}, ${r.imagesPerSecond.toFixed(0)} images/s`;
}
