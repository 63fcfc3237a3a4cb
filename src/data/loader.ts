import { DarknetError } from '../errors';
import { augment, isIdentity, type Augmentation } from './augment';
import { labelOf } from './dataset';
import { decodeOutcome, DecodePool, type DecodeOutcome } from './decode-pool';
import { ImageError, loadNetworkInput, pngSize } from './images';
import { excerpt, PATH_EXCERPT } from '../errors';
import type { MnistSplit } from './mnist';

/**
 * Where a classifier's images come from: a darknet image list (decoded in worker threads,
 * then cached as bytes) or MNIST straight from its IDX files. Images are channel-planar
 * `[c, h, w]` at the network's size: bytes (the network input is byte / 255), or floats
 * that are the network input itself (darknet's valid preprocessing, see ListSourceOptions).
 */
export type Pixels = Uint8Array | Float32Array;

export interface ImageSource {
  readonly count: number;
  /** class index of image i */
  label(i: number): number;
  /** the image's pixels, or null when it cannot be loaded (the reason is in `problem(i)`) */
  load(i: number): Promise<Pixels | null>;
  /** why image i could not be loaded (without its name: callers put `name(i)` in front) */
  problem(i: number): string | undefined;
  /** a name for messages */
  name(i: number): string;
  /** a hint: images that will be loaded soon, to decode ahead */
  prefetch?(indexes: readonly number[]): void;
  /** frees what the source holds (decode workers); loads after it still work */
  close?(): Promise<void>;
}

export interface ListSourceOptions {
  /** keep decoded images in memory (as bytes); default true */
  cache?: boolean;
  /** decode workers of the source's own pool (default min(2, cores)); 0 decodes on the main thread */
  workers?: number;
  /** a pool shared with other sources instead (close() leaves it open) */
  pool?: DecodePool;
  /**
   * 'center-crop': darknet's `classifier valid` preprocessing (the centred square resized to
   * the net's size, in float; see images.ts loadNetworkInput), decoded on the main thread,
   * loads give floats. Default: the training bytes (sharp `cover`, in the decode workers).
   */
  preprocess?: 'center-crop';
}

/** Images a worker gets in one request: small, so the batch needed first comes back first. */
const REQUEST_IMAGES = 16;

/**
 * A darknet list of image paths, labels found in the paths. Loads asked for in the same
 * tick (a batch) go to the decode workers together; close() ends the workers.
 * @example
 * const source = new ListSource(readImageList('data/mnist/train.list', 'the training list'), labels, { w: 28, h: 28, c: 1 });
 * const first = await source.load(0);
 * await source.close();
 */
export class ListSource implements ImageSource {
  private readonly labels: Int32Array;
  private readonly cache: Array<Pixels | null | undefined>;
  private readonly problems = new Map<number, string>();
  private readonly cacheImages: boolean;
  /** decodes asked for and not yet claimed by load() (claimed ones stay when caching) */
  private readonly inflight = new Map<number, Promise<Pixels | null>>();
  /** indexes to send at the end of this tick, with their promises' resolvers */
  private queued: Array<[number, (data: Pixels | null) => void]> = [];
  private readonly preprocess: 'center-crop' | undefined;
  private pool: DecodePool | null;
  private readonly ownsPool: boolean;
  private readonly workers: number | undefined;
  private closed = false;

  constructor(
    private readonly paths: readonly string[],
    labels: readonly string[],
    private readonly shape: { w: number; h: number; c: number },
    /** options, or (as before) whether to cache decoded images */
    options: boolean | ListSourceOptions = {},
  ) {
    if (shape.c !== 1 && shape.c !== 3) throw new DarknetError(`images can be loaded with 1 or 3 channels, the cfg asks for ${shape.c}`);
    const o = typeof options === 'boolean' ? { cache: options } : options;
    this.cacheImages = o.cache ?? true;
    this.pool = o.pool ?? null;
    this.ownsPool = !o.pool;
    this.workers = o.workers;
    this.preprocess = o.preprocess;
    if (this.workers !== undefined && !(Number.isInteger(this.workers) && this.workers >= 0)) {
      throw new DarknetError(`decode workers must be a whole number >= 0, not ${this.workers}`);
    }
    // Every label is resolved up front, so an ambiguous path fails before training starts.
    this.labels = Int32Array.from(paths, (p) => labelOf(p, labels));
    this.cache = new Array(paths.length);
  }

  get count(): number {
    return this.paths.length;
  }

  label(i: number): number {
    return this.labels[i];
  }

  name(i: number): string {
    return this.paths[i];
  }

  problem(i: number): string | undefined {
    return this.problems.get(i);
  }

  load(i: number): Promise<Pixels | null> {
    const cached = this.cache[i];
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.inflight.get(i) ?? this.request(i);
    if (!this.cacheImages) this.inflight.delete(i);
    return pending;
  }

  prefetch(indexes: readonly number[]): void {
    for (const i of indexes) {
      if (i >= 0 && i < this.count && this.cache[i] === undefined && !this.inflight.has(i)) this.request(i);
    }
  }

  /** Ends the source's own decode workers (after the decodes already asked for). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pool && this.ownsPool) await this.pool.close();
  }

  private request(i: number): Promise<Pixels | null> {
    const pending = new Promise<Pixels | null>((resolve) => {
      if (this.queued.length === 0) queueMicrotask(() => this.send());
      this.queued.push([i, resolve]);
    });
    this.inflight.set(i, pending);
    return pending;
  }

  /** Sends this tick's requests: to the workers in small requests, or decoded here. */
  private send(): void {
    const queued = this.queued;
    this.queued = [];
    const shape = { w: this.shape.w, h: this.shape.h, c: this.shape.c as 1 | 3 };
    let toDecode = queued;
    if (this.preprocess) {
      // A square PNG at the (square) net's size crops and resizes to itself: its bytes, decoded
      // in the workers, are the same input. Anything else is preprocessed here, in float.
      const atSize = (file: string) => {
        if (shape.w !== shape.h) return false;
        const size = pngSize(file);
        return size !== null && size.w === shape.w && size.h === shape.h;
      };
      toDecode = [];
      for (const q of queued) {
        if (atSize(this.paths[q[0]])) toDecode.push(q);
        else void cropOutcome(this.paths[q[0]], shape).then((o) => q[1](this.settle(q[0], o)));
      }
    }
    const pool = this.decodePool();
    for (let k = 0; k < toDecode.length; k += REQUEST_IMAGES) {
      const part = toDecode.slice(k, k + REQUEST_IMAGES);
      const files = part.map(([i]) => this.paths[i]);
      const outcomes = pool ? pool.decode(files, shape) : Promise.all(files.map((f) => decodeOutcome(f, { ...shape, fit: 'cover', decoder: 'pngjs' })));
      void outcomes.then((o) => part.forEach(([i, resolve], n) => resolve(this.settle(i, o[n]))));
    }
  }

  private decodePool(): DecodePool | null {
    if (this.pool) return this.pool.closed ? null : this.pool;
    if (this.closed || this.workers === 0) return null;
    this.pool = new DecodePool({ workers: this.workers });
    return this.pool;
  }

  private settle(i: number, outcome: DecodeOutcome | { data: Float32Array }): Pixels | null {
    const data = 'data' in outcome ? outcome.data : null;
    if (!('data' in outcome)) this.problems.set(i, outcome.problem);
    if (this.cacheImages) {
      this.cache[i] = data;
      this.inflight.delete(i);
    }
    return data;
  }
}

/** darknet's valid preprocessing of one file as an outcome (an ImageError gives its reason). */
async function cropOutcome(file: string, shape: { w: number; h: number; c: 1 | 3 }): Promise<{ data: Float32Array } | { problem: string }> {
  try {
    return { data: await loadNetworkInput(file, shape.w, shape.h, shape.c, 'center-crop') };
  } catch (e) {
    return { problem: e instanceof ImageError ? e.reason : `cannot load image (${excerpt(e instanceof Error ? e.message : String(e))})` };
  }
}

/** MNIST from the IDX files, replicated to 3 channels when the net wants them (as darknet saw the digits). */
export class MnistSource implements ImageSource {
  constructor(private readonly split: MnistSplit, private readonly channels: 1 | 3) {}

  get count(): number {
    return this.split.count;
  }

  label(i: number): number {
    return this.split.labels[i];
  }

  name(i: number): string {
    return `mnist image ${i}`;
  }

  problem(): string | undefined {
    return undefined;
  }

  async load(i: number): Promise<Uint8Array> {
    const pixels = this.split.rows * this.split.cols;
    const plane = this.split.images.subarray(i * pixels, (i + 1) * pixels);
    if (this.channels === 1) return plane;
    const out = new Uint8Array(3 * pixels);
    out.set(plane, 0);
    out.set(plane, pixels);
    out.set(plane, 2 * pixels);
    return out;
  }
}

export interface Batch {
  /** `[batch, inputs]`, byte / 255 */
  x: Float32Array;
  /** `[batch, classes]`, one-hot */
  y: Float32Array;
  /** source indexes of the rows */
  indexes: number[];
}

/** Batches TrainBatches keeps decoding ahead of the one being trained, unless told otherwise. */
export const BATCHES_AHEAD = 4;

/** A batch whose images are being loaded. */
interface Started {
  picks: number[];
  images: Promise<Array<Pixels | null>>;
}

/**
 * Training batches: a seeded shuffle per epoch (every image once per epoch; darknet draws
 * with replacement), augmentation, and the next `ahead` batches decoding (in the decode
 * workers) while the current one trains. An image that cannot be loaded is skipped with
 * one warning and counted.
 * NOTE: the random generator is only drawn from inside next(), in call order (the picks
 * of the batch started, then the augmentation and replacement picks of the batch
 * returned), never when a decode happens to finish, so a seed gives the same batches
 * whatever the decode timing.
 */
export class TrainBatches {
  private order: Int32Array;
  private cursor = 0;
  private readonly ahead: Started[] = [];
  private readonly depth: number;
  /** images skipped because they could not be loaded */
  readonly skipped = new Set<number>();

  constructor(
    private readonly source: ImageSource,
    private readonly batch: number,
    private readonly classes: number,
    private readonly shape: { w: number; h: number; c: number },
    private readonly random: () => number,
    private readonly aug: Augmentation,
    private readonly warn: (message: string) => void,
    options: { ahead?: number } = {},
  ) {
    if (source.count === 0) throw new DarknetError('the training list is empty');
    this.depth = options.ahead ?? BATCHES_AHEAD;
    if (!Number.isInteger(this.depth) || this.depth < 1) throw new DarknetError(`batches ahead must be at least 1, not ${this.depth}`);
    this.order = this.shuffled();
  }

  private shuffled(): Int32Array {
    const order = Int32Array.from({ length: this.source.count }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }

  private nextIndex(): number {
    if (this.cursor >= this.order.length) {
      this.order = this.shuffled();
      this.cursor = 0;
    }
    return this.order[this.cursor++];
  }

  private start(want: number): Started {
    const picks = Array.from({ length: want }, () => this.nextIndex());
    const images = Promise.all(picks.map((i) => this.source.load(i)));
    // A failed load surfaces when its batch is taken, not as an unhandled rejection.
    images.catch(() => undefined);
    return { picks, images };
  }

  /** The batch at the head of the queue, with replacements for images that cannot be loaded. */
  private async finish(first: Started): Promise<Batch> {
    const inputs = this.shape.w * this.shape.h * this.shape.c;
    const x = new Float32Array(this.batch * inputs);
    const y = new Float32Array(this.batch * this.classes);
    const indexes: number[] = [];
    const identity = isIdentity(this.aug, this.shape.w);
    let started = first;
    for (;;) {
      const images = await started.images;
      started.picks.forEach((i, n) => {
        const img = images[n];
        if (!img) {
          if (!this.skipped.has(i)) {
            this.skipped.add(i);
            this.warn(`skipping ${excerpt(this.source.name(i), PATH_EXCERPT)}: ${this.source.problem(i) ?? 'cannot load image'}`);
          }
          return;
        }
        const row = indexes.length;
        if (img instanceof Float32Array) {
          if (!identity) throw new DarknetError(`${excerpt(this.source.name(i), PATH_EXCERPT)}: augmentation needs the image as bytes, the source gives floats`);
          x.set(img.subarray(0, inputs), row * inputs);
        } else {
          const pixels = identity ? img : augment(img, this.shape, this.aug, this.random);
          for (let j = 0; j < inputs; j++) x[row * inputs + j] = pixels[j] / 255;
        }
        y[row * this.classes + this.source.label(i)] = 1;
        indexes.push(i);
      });
      if (indexes.length === this.batch) return { x, y, indexes };
      if (this.skipped.size >= this.source.count) throw new DarknetError('no training image could be loaded');
      started = this.start(this.batch - indexes.length);
    }
  }

  /** The next batch; the `ahead` batches after it keep decoding. */
  async next(): Promise<Batch> {
    while (this.ahead.length < this.depth) this.ahead.push(this.start(this.batch));
    const batch = await this.finish(this.ahead.shift()!);
    this.ahead.push(this.start(this.batch));
    return batch;
  }
}

/** Fills `x` with images [start, start + n) of a source, for inference; rows past n stay 0. */
export async function fillInputs(source: ImageSource, start: number, n: number, x: Float32Array, inputs: number): Promise<void> {
  x.fill(0);
  const loads = Array.from({ length: n }, (_, j) => source.load(start + j));
  // The range after this one is the next asked for: it decodes while this one runs.
  source.prefetch?.(Array.from({ length: Math.max(0, Math.min(n, source.count - start - n)) }, (_, j) => start + n + j));
  const images = await Promise.all(loads);
  images.forEach((img, j) => {
    if (!img) throw new DarknetError(`${excerpt(source.name(start + j), PATH_EXCERPT)}: ${source.problem(start + j) ?? 'cannot load image'}`);
    if (img instanceof Float32Array) x.set(img.subarray(0, inputs), j * inputs);
    else for (let p = 0; p < inputs; p++) x[j * inputs + p] = img[p] / 255;
  });
}
