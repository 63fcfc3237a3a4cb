/**
 * darknet's image preparation for `classifier predict` (letterbox_image) and `classifier
 * valid` (center_crop_image), both through resize_image, on images not at the net's size.
 * The expected pixels come from a plain re-statement of darknet's image.c arithmetic here
 * (float after every operation); loadNetworkInput must agree bit for bit.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadNetworkInput } from '../../src/data/images';
import { ListSource, fillInputs } from '../../src/data/loader';
import { writePng } from './image-files';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-preprocess-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const f = Math.fround;

/** darknet's image: data[k][y][x], floats */
interface Img { w: number; h: number; c: number; px: (x: number, y: number, k: number) => number }

function fromBytes(bytes: (x: number, y: number) => [number, number, number], w: number, h: number, c: number): Img {
  return { w, h, c, px: (x, y, k) => f(bytes(x, y)[c === 1 ? 0 : k] / 255) };
}

function materialise(w: number, h: number, c: number, value: (x: number, y: number, k: number) => number): Img {
  const data = new Float32Array(w * h * c);
  for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = value(x, y, k);
  return { w, h, c, px: (x, y, k) => data[(k * h + y) * w + x] };
}

/** image.c resize_image, restated */
function resize(im: Img, w: number, h: number): Img {
  const ws = f(f(im.w - 1) / f(w - 1));
  const hs = f(f(im.h - 1) / f(h - 1));
  const part = materialise(w, im.h, im.c, (c, r, k) => {
    if (c === w - 1 || im.w === 1) return im.px(im.w - 1, r, k);
    const sx = f(c * ws);
    const ix = Math.trunc(sx);
    const dx = f(sx - ix);
    return f(f(f(1 - dx) * im.px(ix, r, k)) + f(dx * im.px(ix + 1, r, k)));
  });
  return materialise(w, h, im.c, (c, r, k) => {
    const sy = f(r * hs);
    const iy = Math.trunc(sy);
    const dy = f(sy - iy);
    let val = f(f(1 - dy) * part.px(c, iy, k));
    if (!(r === h - 1 || im.h === 1)) val = f(val + f(dy * part.px(c, iy + 1, k)));
    return val;
  });
}

/** image.c letterbox_image, restated */
function letterbox(im: Img, w: number, h: number): Float32Array {
  let nw = im.w;
  let nh = im.h;
  if (f(w / im.w) < f(h / im.h)) {
    nw = w;
    nh = Math.floor((im.h * w) / im.w);
  } else {
    nh = h;
    nw = Math.floor((im.w * h) / im.h);
  }
  const r = resize(im, nw, nh);
  const dx = Math.floor((w - nw) / 2);
  const dy = Math.floor((h - nh) / 2);
  const out = new Float32Array(w * h * im.c).fill(0.5);
  for (let k = 0; k < im.c; k++) for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) out[(k * h + y + dy) * w + x + dx] = r.px(x, y, k);
  return out;
}

/** image.c center_crop_image, restated */
function centerCrop(im: Img, w: number, h: number): Float32Array {
  const m = Math.min(im.w, im.h);
  const ox = Math.floor((im.w - m) / 2);
  const oy = Math.floor((im.h - m) / 2);
  const r = resize({ w: m, h: m, c: im.c, px: (x, y, k) => im.px(x + ox, y + oy, k) }, w, h);
  return Float32Array.from({ length: w * h * im.c }, (_, i) => {
    const k = Math.floor(i / (w * h));
    const y = Math.floor((i % (w * h)) / w);
    return r.px(i % w, y, k);
  });
}

const pattern = (x: number, y: number): [number, number, number] => [(x * 37 + y * 11) % 256, (x * 7 + y * 53 + 100) % 256, (x * x + 3 * y * y) % 256];

describe('darknet preprocessing, bit for bit', () => {
  test.each([
    ['wide colour 37 x 23 into 16 x 16', 37, 23, 2, 3, 16, 16],
    ['tall colour 23 x 37 into 16 x 16', 23, 37, 2, 3, 16, 16],
    ['wide gray 50 x 9 into 12 x 10 (1 channel)', 50, 9, 0, 1, 12, 10],
    ['small colour 7 x 5 upscaled into 20 x 20', 7, 5, 2, 3, 20, 20],
  ] as const)('%s: letterbox (predict) and centre crop (valid)', async (_name, iw, ih, colorType, c, w, h) => {
    const file = writePng(path.join(dir, `${iw}x${ih}-${c}.png`), iw, ih, colorType, (x, y) => {
      const p = pattern(x, y);
      return colorType === 0 ? [p[0], p[0], p[0]] : p;
    });
    const im = fromBytes(pattern, iw, ih, c);
    const boxed = await loadNetworkInput(file, w, h, c, 'letterbox');
    expect(boxed).toEqual(letterbox(im, w, h));
    // some of the letterbox is the grey border, some the image
    expect(boxed.filter((v) => v === 0.5).length).toBeGreaterThan(0);
    expect(boxed.filter((v) => v !== 0.5).length).toBeGreaterThanOrEqual(2 * w * c);
    const cropped = await loadNetworkInput(file, w, h, c, 'center-crop');
    expect(cropped).toEqual(centerCrop(im, w, h));
  });

  test('an image at the net size is itself in both, byte / 255', async () => {
    const file = writePng(path.join(dir, 'at-size.png'), 8, 8, 2, pattern);
    const want = Float32Array.from({ length: 3 * 64 }, (_, i) => pattern(i % 8, Math.floor((i % 64) / 8))[Math.floor(i / 64)] / 255);
    expect(await loadNetworkInput(file, 8, 8, 3, 'letterbox')).toEqual(want);
    expect(await loadNetworkInput(file, 8, 8, 3, 'center-crop')).toEqual(want);
  });

  test("the valid source gives the centre crop as the network input (a bigger image and one at the net's size)", async () => {
    const big = writePng(path.join(dir, 'big_c1.png'), 30, 20, 2, pattern);
    const small = writePng(path.join(dir, 'small_c0.png'), 16, 16, 2, pattern);
    const source = new ListSource([big, small], ['c0', 'c1'], { w: 16, h: 16, c: 3 }, { cache: false, preprocess: 'center-crop', workers: 0 });
    const inputs = 16 * 16 * 3;
    const x = new Float32Array(2 * inputs);
    await fillInputs(source, 0, 2, x, inputs);
    expect(x.subarray(0, inputs)).toEqual(centerCrop(fromBytes(pattern, 30, 20, 3), 16, 16));
    expect(x.subarray(inputs)).toEqual(centerCrop(fromBytes(pattern, 16, 16, 3), 16, 16));
    expect([source.label(0), source.label(1)]).toEqual([1, 0]);
    await source.close();
  });
});
