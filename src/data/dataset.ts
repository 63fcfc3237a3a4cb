import * as fs from 'fs';
import { DarknetError, fileError } from '../errors';
import { messageExcerpt as excerpt } from '../errors';

/**
 * darknet's .data files and image lists (option_list.c read_data_cfg, data.c
 * fill_truth), with darknet's defaults for the keys classifiers read.
 */
export interface DataConfig {
  file: string;
  classes: number;
  train: string;
  valid: string;
  labels: string;
  /** class names for predictions; darknet falls back to the labels file */
  names: string;
  backup: string;
  top: number;
}

/** `key=value` lines with darknet's whitespace stripping and comments; returns key -> [value, line]. */
function readKeyValues(file: string): Map<string, [string, number]> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DarknetError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const out = new Map<string, [string, number]>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/\s+/g, '');
    if (line === '' || line[0] === '#' || line[0] === ';') return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw fileError(file, i + 1, `malformed line '${raw.trim()}' (expected key=value)`);
    const key = line.slice(0, eq);
    if (!out.has(key)) out.set(key, [line.slice(eq + 1), i + 1]);
  });
  return out;
}

export function readDataConfig(file: string): DataConfig {
  const kv = readKeyValues(file);
  const str = (key: string, fallback: string) => kv.get(key)?.[0] ?? fallback;
  const int = (key: string, fallback: number) => {
    const v = kv.get(key);
    if (!v) return fallback;
    if (!/^\d+$/.test(v[0])) throw fileError(file, v[1], `'${key}=${v[0]}' is not a positive integer`);
    return parseInt(v[0], 10);
  };
  const labels = str('labels', 'data/labels.list');
  const config: DataConfig = {
    file,
    classes: int('classes', 2),
    train: str('train', 'data/train.list'),
    valid: str('valid', 'data/train.list'),
    labels,
    names: str('names', labels),
    backup: str('backup', '/backup/'),
    top: int('top', 1),
  };
  if (config.classes < 1) throw fileError(file, kv.get('classes')?.[1], 'classes must be at least 1');
  return config;
}

/**
 * Non-empty lines of a list file (image paths, labels, names). An empty list is an
 * error naming the file, and so is a binary file (its bytes are not printed).
 */
export function readLines(file: string, what: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DarknetError(`${file}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? excerpt(String(e))})`);
  }
  if (text.includes('\0')) throw new DarknetError(`${file}: ${what} is not a text file`);
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new DarknetError(`${file}: ${what} is empty`);
  return lines;
}

/** File endings of the images sharp reads. */
const IMAGE_PATH = /\.(png|jpe?g|jfif|bmp|gif|tiff?|webp|avif|heic|ppm|pgm|pnm|svg)$/i;

/**
 * A list of image paths (train=, valid=): readLines, and a list none of whose first
 * lines ends like an image (say /etc/passwd given by mistake) is refused, quoting a
 * short excerpt of its first line only.
 */
export function readImageList(file: string, what: string): string[] {
  const lines = readLines(file, what);
  if (!lines.slice(0, 100).some((l) => IMAGE_PATH.test(l))) {
    throw new DarknetError(`${file}: ${what} does not look like a list of image paths (line 1: '${excerpt(lines[0], 60)}')`);
  }
  return lines;
}

/** The labels file, checked against `classes` and for labels that contain one another. */
export function readLabels(file: string, classes: number): string[] {
  const labels = readLines(file, 'labels');
  if (labels.length !== classes) {
    throw new DarknetError(`${file}: ${labels.length} labels but the .data file says classes=${classes}`);
  }
  return labels;
}

/**
 * The class of a training image: the one label that occurs in its path.
 * NOTE: darknet matches labels as SUBSTRINGS of the whole path (data.c fill_truth), so
 * a label like "1" also matches "mnist/10.png" and the folder names around it; it prints
 * "Too many or too few labels" and trains on a wrong truth. We refuse instead.
 */
export function labelOf(imagePath: string, labels: readonly string[]): number {
  let found = -1;
  const matched: string[] = [];
  labels.forEach((l, i) => {
    if (imagePath.includes(l)) {
      found = i;
      matched.push(l);
    }
  });
  if (matched.length !== 1) {
    const which = matched.length ? `matches ${matched.length} labels (${excerpt(matched.join(', '))})` : 'matches no label';
    // The path is quoted short: a list that is not a list of paths must not be printed.
    throw new DarknetError(`${excerpt(imagePath, 120)}: ${which}; darknet needs exactly one label as a substring of each path`);
  }
  return found;
}
