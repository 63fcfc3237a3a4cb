/**
 * ListSource and TrainBatches with the decode workers: the same bytes and the same
 * seeded batches as decoding on the main thread, an unloadable training image skipped
 * with one warning naming it once, an unloadable validation image an error.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Augmentation } from '../../src/data/augment';
import { DecodePool } from '../../src/data/decode-pool';
import { fillInputs, ListSource, TrainBatches, type Batch } from '../../src/data/loader';
import { claimedPng, grayPng } from './image-files';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-loader-'));
const LABELS = ['c0', 'c1', 'c2'];
const SHAPE = { w: 12, h: 10, c: 1 };
const NONE: Augmentation = { angle: 0, aspect: 1, minCrop: 12, maxCrop: 12, saturation: 1, exposure: 1, hue: 0, flip: false };
const JITTER: Augmentation = { ...NONE, angle: 10, exposure: 1.5 };

// One pool for most sources: a worker running the TypeScript sources takes a second to start.
const shared = new DecodePool({ workers: 2 });
const sources: ListSource[] = [];
afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await shared.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function source(paths: string[], options: Exclude<ConstructorParameters<typeof ListSource>[3], boolean> = {}): ListSource {
  const s = new ListSource(paths, LABELS, SHAPE, options.workers === undefined && !options.pool ? { ...options, pool: shared } : options);
  sources.push(s);
  return s;
}

function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

/** 30 images in three classes; a few at another size (decoded by sharp). */
const paths = Array.from({ length: 30 }, (_, i) => (i % 7 === 3 ? grayPng(dir, `big${i}_c${i % 3}.png`, 24, 20, i) : grayPng(dir, `img${i}_c${i % 3}.png`, 12, 10, i)));

async function batchesOf(s: ListSource, aug: Augmentation, count: number, warn: (m: string) => void = () => undefined): Promise<Batch[]> {
  const batches = new TrainBatches(s, 8, 3, SHAPE, lcg(5), aug, warn, { ahead: 3 });
  const out: Batch[] = [];
  for (let b = 0; b < count; b++) out.push(await batches.next());
  return out;
}

describe('ListSource', () => {
  test('workers give the bytes the main thread gives', async () => {
    const here = source(paths, { workers: 0 });
    const there = source(paths);
    const a = await Promise.all(paths.map((_, i) => here.load(i)));
    const b = await Promise.all(paths.map((_, i) => there.load(i)));
    expect(b.map((x) => Array.from(x!))).toEqual(a.map((x) => Array.from(x!)));
    expect(await there.load(3)).toBe(b[3]); // cached
  });

  test('without the cache, a prefetched image is handed out once and then forgotten', async () => {
    const s = source(paths, { cache: false });
    s.prefetch([0, 1, 2]);
    const first = await s.load(1);
    const again = await s.load(1);
    expect(Array.from(again!)).toEqual(Array.from(first!));
    expect(again).not.toBe(first); // decoded again, not kept
  });

  test('a shared pool is left open by close(); loads after close() still work', async () => {
    const pool = new DecodePool({ workers: 1 });
    const s = source(paths, { pool });
    await s.load(0);
    await s.close();
    expect(pool.closed).toBe(false);
    await pool.close();
    const own = source(paths, { workers: 1 });
    await own.load(0);
    await own.close();
    expect(Array.from((await own.load(5))!)).toEqual(Array.from((await source(paths, { workers: 0 }).load(5))!));
  });
});

describe('TrainBatches', () => {
  test.each([['no augmentation', NONE], ['augmentation', JITTER]] as const)(
    'the same seeded batches over two epochs with workers as on the main thread (%s)',
    async (_, aug) => {
      const here = await batchesOf(source(paths, { workers: 0 }), aug, 8);
      const there = await batchesOf(source(paths), aug, 8);
      expect(there.map((b) => b.indexes)).toEqual(here.map((b) => b.indexes));
      there.forEach((b, k) => {
        expect(Array.from(b.x)).toEqual(Array.from(here[k].x));
        expect(Array.from(b.y)).toEqual(Array.from(here[k].y));
      });
      // two epochs of 30 in batches of 8: every image is seen in the first 3 batches and a bit
      expect(new Set(there.slice(0, 4).flatMap((b) => b.indexes)).size).toBe(30);
    },
  );

  test('an image that cannot be loaded is skipped with one warning naming it once', async () => {
    const bad = path.join(dir, 'bad_c1.png');
    fs.writeFileSync(bad, 'not an image');
    const huge = claimedPng(path.join(dir, 'huge_c2.png'), 20000, 20000);
    const list = [...paths, bad, huge];
    const warnings: string[] = [];
    const batches = await batchesOf(source(list), NONE, 12, (m) => warnings.push(m));
    expect(warnings).toHaveLength(2);
    const [forBad] = warnings.filter((w) => w.includes(bad));
    expect(occurrences(forBad, bad)).toBe(1);
    expect(forBad).toMatch(/^skipping .*bad_c1\.png: cannot load image \(/);
    const [forHuge] = warnings.filter((w) => w.includes(huge));
    expect(forHuge).toMatch(/huge_c2\.png: image is 20000x20000 .* over the limit of 64 megapixels/);
    for (const b of batches) {
      expect(b.indexes).toHaveLength(8);
      expect(b.indexes).not.toContain(30);
      expect(b.indexes).not.toContain(31);
    }
  });

  test('no loadable image at all is an error, not a hang', async () => {
    const bad = path.join(dir, 'only_c0.png');
    fs.writeFileSync(bad, 'x');
    await expect(batchesOf(source([bad]), NONE, 1)).rejects.toThrow(/no training image could be loaded/);
  });
});

describe('fillInputs', () => {
  test('fills rows as byte / 255, through the workers', async () => {
    const s = source(paths, { cache: false });
    const inputs = SHAPE.w * SHAPE.h;
    const x = new Float32Array(4 * inputs);
    await fillInputs(s, 2, 3, x, inputs);
    const img = (await source(paths, { workers: 0 }).load(3))!;
    expect(Array.from(x.subarray(inputs, 2 * inputs))).toEqual(Array.from(img, (v) => Math.fround(v / 255)));
    expect(x.subarray(3 * inputs).every((v) => v === 0)).toBe(true);
  });

  test('a validation image that cannot be loaded is an error naming it once', async () => {
    const bad = path.join(dir, 'broken_c0.png');
    fs.writeFileSync(bad, '\x89PNG\r\n\x1a\n garbage');
    const s = source([paths[0], bad], { cache: false });
    const inputs = SHAPE.w * SHAPE.h;
    const error = await fillInputs(s, 0, 2, new Float32Array(2 * inputs), inputs).then(() => null, (e: Error) => e);
    expect(error?.name).toBe('DarknetError');
    expect(occurrences(error!.message, bad)).toBe(1);
    expect(error!.message).toMatch(/broken_c0\.png: cannot load image/);
  });
});
