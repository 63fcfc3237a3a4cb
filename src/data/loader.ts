import { DarknetError } from '../errors';
import { loadImage } from './images';
import { augment, isIdentity, type Augmentation } from './augment';
import { labelOf } from './dataset';
import type { MnistSplit } from './mnist';

/**
 * Where a classifier's images come from: a darknet image list (decoded with sharp, then
 * cached as bytes) or MNIST straight from its IDX files. Images are bytes, channel-planar
 * `[c, h, w]` at the network's size.
 */
export interface ImageSource {
  readonly count: number;
  /** class index of image i */
  label(i: number): number;
  /** the image's bytes, or null when it cannot be loaded (the reason is in `problem(i)`) */
  load(i: number): Promise<Uint8Array | null>;
  /** why image i could not be loaded */
  problem(i: number): string | undefined;
  /** a name for messages */
  name(i: number): string;
}

/** A darknet list of image paths, labels found in the paths. */
export class ListSource implements ImageSource {
  private readonly labels: Int32Array;
  private readonly cache: Array<Uint8Array | null | undefined>;
  private readonly problems = new Map<number, string>();

  constructor(
    private readonly paths: readonly string[],
    labels: readonly string[],
    private readonly shape: { w: number; h: number; c: number },
    /** keep decoded images in memory (as bytes) */
    private readonly cacheImages = true,
  ) {
    if (shape.c !== 1 && shape.c !== 3) throw new DarknetError(`images can be loaded with 1 or 3 channels, the cfg asks for ${shape.c}`);
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

  async load(i: number): Promise<Uint8Array | null> {
    const cached = this.cache[i];
    if (cached !== undefined) return cached;
    let data: Uint8Array | null;
    try {
      data = (await loadImage(this.paths[i], this.shape.w, this.shape.h, this.shape.c as 1 | 3)).data;
    } catch (e) {
      this.problems.set(i, (e as Error).message);
      data = null;
    }
    if (this.cacheImages) this.cache[i] = data;
    return data;
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

/**
 * Training batches: a seeded shuffle per epoch (every image once per epoch; darknet draws
 * with replacement), augmentation, and the next batch decoded while the current one
 * trains. An image that cannot be loaded is skipped with a warning and counted.
 */
export class TrainBatches {
  private order: Int32Array;
  private cursor = 0;
  private pending: Promise<Batch> | null = null;
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
  ) {
    if (source.count === 0) throw new DarknetError('the training list is empty');
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

  private async assemble(): Promise<Batch> {
    const inputs = this.shape.w * this.shape.h * this.shape.c;
    const x = new Float32Array(this.batch * inputs);
    const y = new Float32Array(this.batch * this.classes);
    const indexes: number[] = [];
    const identity = isIdentity(this.aug, this.shape.w);
    while (indexes.length < this.batch) {
      const want = this.batch - indexes.length;
      const picks = Array.from({ length: want }, () => this.nextIndex());
      const images = await Promise.all(picks.map((i) => this.source.load(i)));
      picks.forEach((i, n) => {
        const img = images[n];
        if (!img) {
          if (!this.skipped.has(i)) {
            this.skipped.add(i);
            this.warn(`skipping ${this.source.name(i)}: ${this.source.problem(i) ?? 'cannot load'}`);
          }
          return;
        }
        const row = indexes.length;
        const pixels = identity ? img : augment(img, this.shape, this.aug, this.random);
        for (let j = 0; j < inputs; j++) x[row * inputs + j] = pixels[j] / 255;
        y[row * this.classes + this.source.label(i)] = 1;
        indexes.push(i);
      });
      if (this.skipped.size >= this.source.count) throw new DarknetError('no training image could be loaded');
    }
    return { x, y, indexes };
  }

  /** The next batch; starts decoding the one after it. */
  async next(): Promise<Batch> {
    const current = this.pending ?? this.assemble();
    const batch = await current;
    this.pending = this.assemble();
    // A failed prefetch surfaces on the next call, not as an unhandled rejection.
    this.pending.catch(() => undefined);
    return batch;
  }
}

/** Fills `x` with images [start, start + n) of a source, for inference; rows past n stay 0. */
export async function fillInputs(source: ImageSource, start: number, n: number, x: Float32Array, inputs: number): Promise<void> {
  x.fill(0);
  const images = await Promise.all(Array.from({ length: n }, (_, j) => source.load(start + j)));
  images.forEach((img, j) => {
    if (!img) throw new DarknetError(`${source.name(start + j)}: ${source.problem(start + j) ?? 'cannot load'}`);
    for (let p = 0; p < inputs; p++) x[j * inputs + p] = img[p] / 255;
  });
}
