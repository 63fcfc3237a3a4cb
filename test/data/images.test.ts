/**
 * Image loading: the pngjs fast path (a PNG already at the net's size) gives exactly
 * the bytes sharp gives, channel-planar; other sizes and JPEGs go through sharp's resize;
 * a corrupt or missing file is a one-line error naming it once; an image whose header is
 * over MAX_IMAGE_PIXELS is refused before it is decoded.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { loadImage, MAX_IMAGE_PIXELS } from '../../src/data/images';
import { claimedJpeg, claimedPng, writeJpeg, writePng } from './image-files';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-images-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** How often `needle` occurs in `text`. */
const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** sharp's planar bytes, the slow path's answer. */
async function viaSharp(file: string, w: number, h: number, c: 1 | 3): Promise<Uint8Array> {
  let img = sharp(file).removeAlpha();
  img = c === 1 ? img.grayscale() : img.toColourspace('srgb');
  const { data, info } = await img.resize(w, h, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
  const out = new Uint8Array(c * w * h);
  for (let i = 0; i < w * h; i++) for (let ch = 0; ch < c; ch++) out[ch * w * h + i] = data[i * info.channels + Math.min(ch, info.channels - 1)];
  return out;
}

describe('images', () => {
  test('a gray PNG at the net size: fast path equals sharp, as 1 and as 3 channels', async () => {
    const file = path.join(dir, 'gray.png');
    writePng(file, 7, 5, 0, (x, y) => { const v = (x * 37 + y * 11) % 256; return [v, v, v]; });
    for (const c of [1, 3] as const) {
      const img = await loadImage(file, 7, 5, c);
      expect(img).toMatchObject({ c, h: 5, w: 7 });
      expect(Array.from(img.data)).toEqual(Array.from(await viaSharp(file, 7, 5, c)));
    }
  });

  test('a colour PNG at the net size loads planar R, G, B', async () => {
    const file = path.join(dir, 'rgb.png');
    writePng(file, 4, 3, 2, (x, y) => [x * 60, y * 100, 200]);
    const img = await loadImage(file, 4, 3, 3);
    expect(Array.from(img.data.subarray(0, 4))).toEqual([0, 60, 120, 180]);
    expect(Array.from(img.data.subarray(12, 16))).toEqual([0, 0, 0, 0]);
    expect(img.data[24]).toBe(200);
    expect(Array.from(img.data)).toEqual(Array.from(await viaSharp(file, 4, 3, 3)));
  });

  test('another size is resized by sharp (shorter side to fit, centre crop)', async () => {
    const file = path.join(dir, 'big.png');
    writePng(file, 56, 40, 0, () => [128, 128, 128]);
    const img = await loadImage(file, 28, 28, 1);
    expect(img.data.length).toBe(28 * 28);
    expect(img.data.every((v) => v === 128)).toBe(true);
  });

  test('a corrupt or missing image is an error naming the file once', async () => {
    const bad = path.join(dir, 'bad.png');
    fs.writeFileSync(bad, 'not a png');
    const truncated = path.join(dir, 'truncated.png');
    fs.writeFileSync(truncated, fs.readFileSync(writePng(path.join(dir, 'whole.png'), 28, 28, 0, () => [9, 9, 9])).subarray(0, 60));
    const none = path.join(dir, 'none.png');
    for (const [file, pattern] of [[bad, /bad\.png: cannot load image \(/], [truncated, /truncated\.png: cannot load image \(/], [none, /none\.png: cannot load image \(ENOENT\)/]] as const) {
      for (const decoder of ['pngjs', 'sharp'] as const) {
        const e = await errorOf(loadImage(file, 28, 28, 1, 'cover', decoder));
        expect(e.message).toMatch(pattern);
        expect(occurrences(e.message, file)).toBe(1);
        expect(e.message).not.toMatch(/[\u0000-\u001f\n]/);
        expect(e.message.length).toBeLessThan(file.length + 120);
      }
    }
  });

  test('a JPEG loads through sharp, resized and cropped to the net', async () => {
    const file = await writeJpeg(path.join(dir, 'photo.jpg'), 40, 30);
    for (const c of [1, 3] as const) {
      const img = await loadImage(file, 20, 20, c);
      expect(img.data.length).toBe(c * 20 * 20);
      expect(Array.from(img.data)).toEqual(Array.from(await viaSharp(file, 20, 20, c)));
    }
  });

  test('pngjs and sharp give the same bytes for a PNG at the net size', async () => {
    const gray = writePng(path.join(dir, 'g.png'), 9, 6, 0, (x, y) => {
      const v = (x * 28 + y * 9) % 256;
      return [v, v, v];
    });
    const rgb = writePng(path.join(dir, 'c.png'), 9, 6, 2, (x, y) => [x * 28, y * 40, (x * y * 5) % 256]);
    for (const [file, cs] of [[gray, [1, 3]], [rgb, [3]]] as const) {
      for (const c of cs) {
        const fast = await loadImage(file, 9, 6, c, 'cover', 'pngjs');
        const slow = await loadImage(file, 9, 6, c, 'cover', 'sharp');
        expect(Array.from(fast.data)).toEqual(Array.from(slow.data));
      }
    }
  });

  test('an image whose header is over the limit is refused before decoding, in one line', async () => {
    const png = claimedPng(path.join(dir, 'huge.png'), 20000, 20000);
    const jpeg = await claimedJpeg(path.join(dir, 'huge.jpg'), 20000, 20000);
    expect(fs.statSync(png).size).toBeLessThan(1000);
    for (const file of [png, jpeg]) {
      for (const decoder of ['pngjs', 'sharp'] as const) {
        const t0 = Date.now();
        const e = await errorOf(loadImage(file, 28, 28, 1, 'cover', decoder));
        expect(Date.now() - t0).toBeLessThan(500);
        expect(e.message).toMatch(/: image is 20000x20000 \(400 megapixels\), over the limit of 64 megapixels \(MAX_IMAGE_PIXELS/);
        expect(occurrences(e.message, file)).toBe(1);
        expect(e.message).not.toContain('\n');
      }
    }
    expect(MAX_IMAGE_PIXELS).toBe(64_000_000);
  });

  test('a PNG just inside the limit is not refused for its size', async () => {
    // 8000 x 8000 = 64 megapixels claimed; its data is short, so decoding fails, but not on the limit.
    const e = await errorOf(loadImage(claimedPng(path.join(dir, 'edge.png'), 8000, 8000), 28, 28, 1));
    expect(e.message).not.toMatch(/limit/);
    expect(e.message).toMatch(/edge\.png: cannot load image/);
  });
});
