/** Small image files for the data tests, written with pngjs and sharp into a folder. */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { PNG } from 'pngjs';
import sharp from 'sharp';

export function writePng(file: string, w: number, h: number, colorType: 0 | 2, pixel: (x: number, y: number) => [number, number, number]): string {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = pixel(x, y);
      png.data.set([r, g, b, 255], 4 * (y * w + x));
    }
  }
  fs.writeFileSync(file, PNG.sync.write(png, { colorType, inputHasAlpha: true }));
  return file;
}

/** A gray 8-bit PNG of w x h with a pattern that depends on `seed`. */
export function grayPng(dir: string, name: string, w: number, h: number, seed = 0): string {
  return writePng(path.join(dir, name), w, h, 0, (x, y) => {
    const v = (x * 37 + y * 11 + seed * 53) % 256;
    return [v, v, v];
  });
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(8 + body.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(zlib.crc32(body), 4 + body.length);
  return out;
}

/** A PNG of a few hundred bytes whose IHDR claims w x h (8-bit gray): its rows are zeros, deflated. */
export function claimedPng(file: string, w: number, h: number): string {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // gray
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const idat = zlib.deflateSync(Buffer.alloc(4 * (w + 1))); // a few rows; a decoder would want far more
  fs.writeFileSync(file, Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]));
  return file;
}

/** A JPEG of w x h (colour, smooth pattern), as sharp writes it. */
export async function writeJpeg(file: string, w: number, h: number): Promise<string> {
  const rgb = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set([(i * 7) % 256, (i * 3) % 256, 128], 3 * i);
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
  return file;
}

/** A JPEG whose frame header (SOF0) claims w x h; the data behind it is a small image's. */
export async function claimedJpeg(file: string, w: number, h: number): Promise<string> {
  await writeJpeg(file, 16, 16);
  const bytes = fs.readFileSync(file);
  const sof = bytes.indexOf(Buffer.from([0xff, 0xc0]));
  if (sof < 0) throw new Error('no SOF0 marker in the JPEG sharp wrote');
  bytes.writeUInt16BE(h, sof + 5);
  bytes.writeUInt16BE(w, sof + 7);
  fs.writeFileSync(file, bytes);
  return file;
}
