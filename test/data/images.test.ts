/**
 * Image loading: the pngjs fast path (a PNG already at the net's size) gives exactly
 * the bytes sharp gives, channel-planar; other sizes go through sharp's resize; a corrupt
 * or missing file is a clear error naming it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { loadImage } from '../../src/data/images';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-images-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writePng(file: string, w: number, h: number, colorType: 0 | 2, pixel: (x: number, y: number) => [number, number, number]) {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = pixel(x, y);
      png.data.set([r, g, b, 255], 4 * (y * w + x));
    }
  }
  fs.writeFileSync(file, PNG.sync.write(png, { colorType, inputHasAlpha: true }));
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

  test('a corrupt or missing image is an error naming the file', async () => {
    const bad = path.join(dir, 'bad.png');
    fs.writeFileSync(bad, 'not a png');
    await expect(loadImage(bad, 28, 28, 1)).rejects.toThrow(/bad\.png: cannot load image/);
    await expect(loadImage(path.join(dir, 'none.png'), 28, 28, 1)).rejects.toThrow(/none\.png: cannot load image/);
  });
});
