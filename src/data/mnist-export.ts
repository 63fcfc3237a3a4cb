import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { DarknetError } from '../errors';
import { silentReporter, type Reporter } from '../engine/reporter';
import { atomicWrite } from '../io/files';
import { loadMnist, type MnistName } from './mnist';

/**
 * `darknet-ts data mnist`: the real MNIST written the way darknet's classifier reads a
 * dataset: one PNG per image with its class in the file name, list files, a labels file
 * and a .data file.
 */

/**
 * NOTE: darknet finds a class as a substring of the image path, so labels must not occur
 * anywhere else in it: "c0".."c9" appear once per path, after an underscore.
 */
export const MNIST_LABELS = Array.from({ length: 10 }, (_, i) => `c${i}`);
export const MNIST_NAMES = Array.from({ length: 10 }, (_, i) => String(i));

export interface MnistExport {
  out: string;
  dataFile: string;
  written: number;
  skipped: number;
}

/** The file name of image `index` of a split: `train/00042_c7.png`. */
function imagePath(out: string, split: string, index: number, label: number): string {
  return path.join(out, split, `${String(index).padStart(5, '0')}_${MNIST_LABELS[label]}.png`);
}

function encodePng(pixels: Uint8Array, rows: number, cols: number, channels: 1 | 3): Buffer {
  const png = new PNG({ width: cols, height: rows, colorType: channels === 1 ? 0 : 2, inputHasAlpha: true });
  for (let i = 0; i < rows * cols; i++) {
    const v = pixels[i];
    png.data[4 * i] = v;
    png.data[4 * i + 1] = v;
    png.data[4 * i + 2] = v;
    png.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2, inputHasAlpha: true });
}

/**
 * Writes (or completes) the export in `out` (the first `limit` images of each split, for
 * tests). Idempotent: an image already on disk is not rewritten, and the lists and
 * .data are rewritten only if their content changes.
 */
export function exportMnist(out: string, options: { channels?: 1 | 3; limit?: number; reporter?: Reporter } = {}): MnistExport {
  const { channels = 1, limit, reporter = silentReporter } = options;
  // Only the path as written matters: the lists hold it, and darknet matches against them.
  for (const label of MNIST_LABELS) {
    if (out.includes(label)) {
      throw new DarknetError(`--out ${out}: the path contains '${label}', a class label; darknet would match it in every image path`);
    }
  }
  let written = 0;
  let skipped = 0;
  const splits: Array<[MnistName, string]> = [['train', 'train'], ['t10k', 'test']];
  const lists: Record<string, string[]> = {};
  for (const [name, split] of splits) {
    const data = loadMnist(name, limit);
    fs.mkdirSync(path.join(out, split), { recursive: true });
    const progress = reporter.progress(`mnist ${split}`, data.count, 'img');
    const paths: string[] = [];
    const pixels = data.rows * data.cols;
    for (let i = 0; i < data.count; i++) {
      const file = imagePath(out, split, i, data.labels[i]);
      paths.push(file);
      if (fs.existsSync(file)) {
        skipped++;
      } else {
        // NOTE: the PNG stores the channel count asked for; an RGB copy of a gray digit
        // is what darknet (always 3 channels) reads.
        atomicWrite(file, encodePng(data.images.subarray(i * pixels, (i + 1) * pixels), data.rows, data.cols, channels));
        written++;
      }
      progress.update(i + 1);
    }
    progress.finish(data.count);
    lists[split] = paths;
  }
  const files: Record<string, string> = {
    'train.list': lists.train.join('\n') + '\n',
    'test.list': lists.test.join('\n') + '\n',
    'labels.txt': MNIST_LABELS.join('\n') + '\n',
    'names.txt': MNIST_NAMES.join('\n') + '\n',
    'mnist.data': [
      'classes=10',
      `train=${path.join(out, 'train.list')}`,
      `valid=${path.join(out, 'test.list')}`,
      `labels=${path.join(out, 'labels.txt')}`,
      `names=${path.join(out, 'names.txt')}`,
      'backup=weights/',
      'top=2',
      '',
    ].join('\n'),
  };
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(out, name);
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (old !== content) atomicWrite(file, content);
  }
  return { out, dataFile: path.join(out, 'mnist.data'), written, skipped };
}
