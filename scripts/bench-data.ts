/**
 * Images/s of feeding TrainBatches LeNet-300-100-shaped inputs (28x28x1, batch 64) from
 * the real MNIST PNG list: the first epoch (every image decoded) and the second (from
 * the byte cache), and their ratio. One row per way of decoding: on the main thread
 * (as before issue 8) and in the decode workers with pngjs or with sharp. Each row is then
 * run again with the main thread busy for as long as the training loop would take for
 * each batch (--train-rate images/s), since the workers must keep up while it computes.
 * Every file is read once before the clock starts, so each row finds the page cache warm.
 *
 *   node bin/darknet-ts.js data mnist      # writes data/mnist once
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-data.js --images 10000
 *
 * Options: --images N (first N of the list, default 10000), --list FILE (default
 * data/mnist/train.list), --workers N (default min(2, cores)), --batch N (default 64),
 * --train-rate N (images/s of the simulated training loop, default 19000; 0 skips it),
 * --decoders pngjs,sharp (the worker rows; sharp is slow on a full epoch).
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import type { Augmentation } from '../src/data/augment';
import { readImageList } from '../src/data/dataset';
import { DecodePool, DEFAULT_DECODE_WORKERS } from '../src/data/decode-pool';
import type { Decoder } from '../src/data/images';
import { ListSource, TrainBatches } from '../src/data/loader';

const SHAPE = { w: 28, h: 28, c: 1 };
const CLASSES = 10;
const NO_AUGMENTATION: Augmentation = { angle: 0, aspect: 1, minCrop: 28, maxCrop: 28, saturation: 1, exposure: 1, hue: 0, flip: false };

interface Setup {
  name: string;
  workers: number;
  decoder: Decoder;
}

interface Row {
  setup: string;
  firstEpoch: number;
  laterEpoch: number;
}

/** A small seeded generator (the shuffle only needs to be repeatable). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Keeps the main thread busy for `ms`, as a synchronous training step does. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

async function run(paths: string[], labels: string[], setup: Setup, batch: number, trainRate: number): Promise<Row> {
  const pool = setup.workers > 0 ? new DecodePool({ workers: setup.workers, decoder: setup.decoder }) : undefined;
  const source = new ListSource(paths, labels, SHAPE, pool ? { pool } : { workers: 0 });
  const batches = new TrainBatches(source, batch, CLASSES, SHAPE, lcg(1), NO_AUGMENTATION, (m) => console.warn(`warning: ${m}`));
  const perEpoch = Math.floor(paths.length / batch);
  const stepMs = trainRate > 0 ? (1000 * batch) / trainRate : 0;
  const epoch = async () => {
    const t0 = performance.now();
    for (let b = 0; b < perEpoch; b++) {
      await batches.next();
      if (stepMs) busy(stepMs);
    }
    return (perEpoch * batch) / ((performance.now() - t0) / 1000);
  };
  const firstEpoch = await epoch();
  const laterEpoch = await epoch();
  await source.close();
  await pool?.close();
  return { setup: setup.name + (trainRate > 0 ? `, training at ${trainRate}/s` : ''), firstEpoch, laterEpoch };
}

function print(rows: Row[]): void {
  const width = Math.max(...rows.map((r) => r.setup.length), 5);
  console.log(`${'setup'.padEnd(width)}  first epoch img/s  later epoch img/s  later/first`);
  for (const r of rows) {
    console.log(`${r.setup.padEnd(width)}  ${r.firstEpoch.toFixed(0).padStart(17)}  ${r.laterEpoch.toFixed(0).padStart(17)}  ` +
      `${(r.laterEpoch / r.firstEpoch).toFixed(2).padStart(11)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '10000' },
      list: { type: 'string', default: 'data/mnist/train.list' },
      workers: { type: 'string', default: String(DEFAULT_DECODE_WORKERS) },
      batch: { type: 'string', default: '64' },
      'train-rate': { type: 'string', default: '19000' },
      decoders: { type: 'string', default: 'pngjs,sharp' },
    },
  });
  const images = parseInt(values.images!, 10);
  const workers = parseInt(values.workers!, 10);
  const batch = parseInt(values.batch!, 10);
  const trainRate = parseInt(values['train-rate']!, 10);
  if (!fs.existsSync(values.list!)) {
    console.error(`${values.list}: not found; write MNIST first with: node bin/darknet-ts.js data mnist`);
    process.exitCode = 1;
    return;
  }
  const paths = readImageList(values.list!, 'the image list').slice(0, images);
  const labels = fs.readFileSync(path.join(path.dirname(values.list!), 'labels.txt'), 'utf8').split('\n').filter((l) => l);
  for (const p of paths) fs.readFileSync(p); // page cache warm for every row
  console.log(`${paths.length} images of ${values.list}, ${SHAPE.w}x${SHAPE.h}x${SHAPE.c}, batch ${batch}, ${workers} decode workers`);
  const decoders = values.decoders!.split(',').filter((d): d is Decoder => d === 'pngjs' || d === 'sharp');
  const setups: Setup[] = [
    { name: 'main thread, pngjs', workers: 0, decoder: 'pngjs' },
    ...decoders.map((decoder): Setup => ({ name: `${workers} workers, ${decoder}`, workers, decoder })),
  ];
  const rows: Row[] = [];
  for (const rate of trainRate > 0 ? [0, trainRate] : [0]) {
    for (const s of setups) rows.push(await run(paths, labels, s, batch, rate));
  }
  print(rows);
}

void main();
