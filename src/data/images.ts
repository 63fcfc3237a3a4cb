import * as fs from 'fs';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { DarknetError } from '../errors';
import { excerpt as quote, messageExcerpt as excerpt, PATH_EXCERPT } from '../errors';

/** An image as the network sees it: bytes, channel-planar `[c, h, w]`. */
export interface PlanarImage {
  data: Uint8Array;
  c: number;
  h: number;
  w: number;
}

/**
 * The largest image we decode: 64 megapixels, about 256 MB as the RGBA bytes a decoder
 * holds before the resize. Checked against the file's header before anything is decoded
 * (a 12000x12000 PNG of 420 KB would otherwise cost 1.5 GB and seconds).
 */
export const MAX_IMAGE_PIXELS = 64_000_000;

/** Which decoder reads a PNG that is already at the net's size (anything else goes through sharp). */
export type Decoder = 'pngjs' | 'sharp';

/**
 * An image that cannot be loaded. `reason` does not name the file, so a caller that
 * prefixes its own name for the image (a warning, a problem list) names it once.
 */
export class ImageError extends DarknetError {
  constructor(readonly file: string, readonly reason: string) {
    super(`${quote(file, PATH_EXCERPT)}: ${reason}`);
  }
}

/**
 * Decodes a PNG or JPEG (or anything sharp reads) and resizes it to w x h (a no-op at the
 * same size), 1 channel (grayscale) or 3 (RGB). `cover` scales the shorter side to fit and
 * crops the centre: darknet's resize_min + crop_image for validation. Kept as bytes: 4x
 * less memory than floats; the network input is byte / 255, as darknet's load_image.
 * The dimensions are read from the header first and an image over MAX_IMAGE_PIXELS is
 * refused before it is decoded. Throws ImageError.
 * NOTE: darknet always loads 3 channels (load_image_color); a 1-channel net loads grayscale here.
 * @example const img = await loadImage('data/mnist/train/00000_c5.png', 28, 28, 1); // img.data: [1, 28, 28]
 */
export async function loadImage(
  file: string,
  w: number,
  h: number,
  c: 1 | 3,
  fit: 'fill' | 'cover' = 'cover',
  decoder: Decoder = 'pngjs',
): Promise<PlanarImage> {
  const start = readStart(file);
  const png = pngHeader(file, start.head);
  if (png) {
    checkSize(file, png.width, png.height);
    // colorType: 0 gray, 4 gray + alpha, 2 RGB, 6 RGBA, 3 palette
    const gray = png.colorType === 0 || png.colorType === 4;
    // NOTE: only 8-bit samples: pngjs and sharp scale other depths differently.
    if (decoder === 'pngjs' && png.width === w && png.height === h && png.bitDepth === 8 && (c === 3 || gray)) {
      const fast = decodePngAtSize(start.whole ?? file, w, h, c);
      if (fast) return fast;
    }
  }
  // NOTE: start.whole is the shared scratch buffer: copied before anything async.
  const input = start.whole ? Buffer.from(start.whole) : file;
  if (!png) {
    // metadata() reads the header only; our limit, not sharp's, then applies.
    const meta = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata().catch((e: Error) => {
      throw new ImageError(file, `cannot load image (${libraryExcerpt(e, file)})`);
    });
    if (meta.width !== undefined && meta.height !== undefined) checkSize(file, meta.width, meta.height);
  }
  return decodeWithSharp(file, input, w, h, c, fit);
}

/**
 * Files are read into this in one go: a file shorter than it is read whole (one open, no
 * stat, no allocation; the decoder reads memory), a longer one is left to sharp after its
 * header. Decoding MNIST, the system calls cost as much as pngjs.
 */
const scratch = Buffer.allocUnsafe(1 << 20);

/**
 * The start of a file in `scratch`: all of it as `whole` when it fits, else just `head`.
 * Both are views valid until the next call.
 */
function readStart(file: string): { head: Buffer; whole?: Buffer } {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    // One read: short only at the end of a regular file.
    const got = fs.readSync(fd, scratch, 0, scratch.length, 0);
    return got < scratch.length ? { head: scratch.subarray(0, got), whole: scratch.subarray(0, got) } : { head: scratch };
  } catch (e) {
    throw new ImageError(file, `cannot load image (${(e as NodeJS.ErrnoException).code ?? libraryExcerpt(e, file)})`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG's IHDR (always the first chunk: bytes 8..33), or null when the file is not a PNG. */
function pngHeader(file: string, head: Buffer): { width: number; height: number; bitDepth: number; colorType: number } | null {
  if (head.length < 8 || !head.subarray(0, 8).equals(PNG_SIGNATURE)) return null;
  if (head.length < 26 || head.toString('latin1', 12, 16) !== 'IHDR') throw new ImageError(file, 'cannot load image (PNG without an IHDR header)');
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20), bitDepth: head[24], colorType: head[25] };
}

function checkSize(file: string, width: number, height: number): void {
  if (width === 0 || height === 0) throw new ImageError(file, `cannot load image (header says ${width}x${height})`);
  const pixels = width * height;
  if (pixels > MAX_IMAGE_PIXELS) {
    throw new ImageError(file, `image is ${width}x${height} (${(pixels / 1e6).toFixed(0)} megapixels), over the limit of ` +
      `${MAX_IMAGE_PIXELS / 1e6} megapixels (MAX_IMAGE_PIXELS, about ${(4 * MAX_IMAGE_PIXELS) / 1e6} MB decoded); shrink it first`);
  }
}

/** A library's message about `file`, without the path it usually repeats, short and printable. */
function libraryExcerpt(e: unknown, file: string): string {
  const message = e instanceof Error ? e.message : String(e);
  return excerpt(message.split(file).join('').replace(/[\s:,'"]+$/, '').replace(/^[\s:,]+/, '')) || 'unknown error';
}

async function decodeWithSharp(file: string, input: string | Buffer, w: number, h: number, c: 1 | 3, fit: 'fill' | 'cover'): Promise<PlanarImage> {
  let raw: { data: Buffer; info: { channels: number } };
  try {
    let img = sharp(input, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS }).removeAlpha();
    img = c === 1 ? img.grayscale() : img.toColourspace('srgb');
    raw = await img.resize(w, h, { fit }).raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageError(file, `cannot load image (${libraryExcerpt(e, file)})`);
  }
  const got = raw.info.channels;
  const data = new Uint8Array(c * h * w);
  const plane = h * w;
  // sharp gives interleaved HWC; darknet wants planar CHW.
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < c; ch++) data[ch * plane + i] = raw.data[i * got + Math.min(ch, got - 1)];
  }
  return { data, c, h, w };
}

/**
 * The fast path for what datasets like MNIST hold: an 8-bit PNG already at the net's
 * size, in gray (any c) or colour (c = 3), decoded by pngjs without a resize. On the main
 * thread sharp costs about 1.5 ms an image in per-call overhead here, pngjs about
 * 0.25 ms (measured on the MNIST PNGs), and the bytes are the same. A PNG that pngjs
 * cannot read returns null and goes to sharp, which says what is wrong with it.
 */
function decodePngAtSize(input: string | Buffer, w: number, h: number, c: 1 | 3): PlanarImage | null {
  const img = decodePng(input, c);
  return img && img.w === w && img.h === h ? img : null;
}

/** An 8-bit PNG by pngjs at its own size, or null when pngjs cannot read it. */
function decodePng(input: string | Buffer, c: 1 | 3): PlanarImage | null {
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(typeof input === 'string' ? fs.readFileSync(input) : input);
  } catch {
    return null;
  }
  const { width: w, height: h } = png;
  const plane = w * h;
  const data = new Uint8Array(c * plane);
  // pngjs gives RGBA bytes whatever the file held (gray is copied to R, G and B).
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < c; ch++) data[ch * plane + i] = png.data[4 * i + ch];
  }
  return { data, c, h, w };
}

/**
 * The width and height a PNG's header states, or null for anything else (or a file that
 * cannot be read: the decoder then says why). Reads 24 bytes.
 */
export function pngSize(file: string): { w: number; h: number } | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(24);
    const got = fs.readSync(fd, head, 0, 24, 0);
    if (got < 24 || !head.subarray(0, 8).equals(PNG_SIGNATURE) || head.toString('latin1', 12, 16) !== 'IHDR') return null;
    return { w: head.readUInt32BE(16), h: head.readUInt32BE(20) };
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** An image as darknet holds one: floats in [0, 1], channel-planar `[c, h, w]`. */
export interface FloatImage {
  data: Float32Array;
  c: number;
  h: number;
  w: number;
}

/**
 * How darknet's classifier verbs bring an image to the net's size:
 * - `letterbox` (classifier predict): scaled to fit inside, aspect kept, centred on grey 0.5
 *   (image.c letterbox_image);
 * - `center-crop` (classifier valid, validate_classifier_single): the centred square of the
 *   shorter side, resized to the net's size, aspect not kept (center_crop_image).
 */
export type Preprocess = 'letterbox' | 'center-crop';

/**
 * An image as darknet's classifier predict / valid feed it to the network: decoded at its
 * own size, bytes / 255 as floats (load_image_stb), then letterboxed or centre-cropped with
 * darknet's bilinear resize in float arithmetic, so the values agree with darknet's to the
 * last bit for a PNG. Returns `[c, h, w]` floats. Throws ImageError.
 * NOTE: darknet decodes with stb_image; PNG bytes are the same from any decoder, JPEG bytes
 * from sharp's libjpeg may differ from stb's by a level here and there. darknet always loads
 * 3 channels; a 1-channel net loads the image in grayscale here.
 */
export async function loadNetworkInput(file: string, w: number, h: number, c: 1 | 3, how: Preprocess): Promise<Float32Array> {
  const img = toFloats(await decodeAtOwnSize(file, c));
  return (how === 'letterbox' ? letterboxImage(img, w, h) : centerCropImage(img, w, h)).data;
}

/** Decodes an image at its own size: pngjs for an 8-bit PNG, sharp for anything else. */
async function decodeAtOwnSize(file: string, c: 1 | 3): Promise<PlanarImage> {
  const start = readStart(file);
  const png = pngHeader(file, start.head);
  if (png) {
    checkSize(file, png.width, png.height);
    const gray = png.colorType === 0 || png.colorType === 4;
    if (png.bitDepth === 8 && (c === 3 || gray)) {
      const img = decodePng(start.whole ?? file, c);
      if (img) return img;
    }
  }
  const input = start.whole ? Buffer.from(start.whole) : file;
  let raw: { data: Buffer; info: { channels: number; width: number; height: number } };
  try {
    const meta = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata();
    if (meta.width !== undefined && meta.height !== undefined) checkSize(file, meta.width, meta.height);
    let img = sharp(input, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS }).removeAlpha();
    img = c === 1 ? img.grayscale() : img.toColourspace('srgb');
    raw = await img.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(file, `cannot load image (${libraryExcerpt(e, file)})`);
  }
  const { channels: got, width: w, height: h } = raw.info;
  const plane = w * h;
  const data = new Uint8Array(c * plane);
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < c; ch++) data[ch * plane + i] = raw.data[i * got + Math.min(ch, got - 1)];
  }
  return { data, c, h, w };
}

/** byte / 255 as darknet's load_image_stb computes it: in double, rounded to float. */
const BYTE_TO_FLOAT = Float32Array.from({ length: 256 }, (_, b) => b / 255);

/** Bytes to darknet's floats in [0, 1]. */
export function toFloats(img: PlanarImage): FloatImage {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = BYTE_TO_FLOAT[img.data[i]];
  return { data, c: img.c, h: img.h, w: img.w };
}

const f32 = Math.fround;

/**
 * darknet's resize_image: bilinear, first along rows into a `[c, im.h, w]` image, then
 * along columns, every step in float (Math.fround after each operation, as C's float
 * arithmetic rounds). Its quirks are kept: the last column copies the last source column,
 * and the last row takes only (1 - dy) of its source row when (h - 1) * h_scale falls
 * short of im.h - 1 in float.
 * NOTE: for h = 1 darknet's h_scale is (im.h - 1) / 0 and its row index undefined; we take
 * the first row (a letterbox of an image over w times wider than high).
 */
export function resizeImage(im: FloatImage, w: number, h: number): FloatImage {
  const { c } = im;
  const part = new Float32Array(c * im.h * w);
  const wScale = w > 1 ? f32(f32(im.w - 1) / f32(w - 1)) : 0;
  const hScale = h > 1 ? f32(f32(im.h - 1) / f32(h - 1)) : 0;
  for (let k = 0; k < c; k++) {
    for (let r = 0; r < im.h; r++) {
      const src = (k * im.h + r) * im.w;
      const dst = (k * im.h + r) * w;
      for (let x = 0; x < w; x++) {
        let val: number;
        if (x === w - 1 || im.w === 1) {
          val = im.data[src + im.w - 1];
        } else {
          const sx = f32(x * wScale);
          const ix = Math.trunc(sx);
          const dx = f32(sx - ix);
          // (ix + 1 stays inside: sx < im.w - 1 for x < w - 1)
          val = f32(f32(f32(1 - dx) * im.data[src + ix]) + f32(dx * im.data[src + Math.min(ix + 1, im.w - 1)]));
        }
        part[dst + x] = val;
      }
    }
  }
  const out = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) {
    for (let r = 0; r < h; r++) {
      const sy = f32(r * hScale);
      const iy = Math.trunc(sy);
      const dy = f32(sy - iy);
      const dst = (k * h + r) * w;
      const row0 = (k * im.h + iy) * w;
      for (let x = 0; x < w; x++) out[dst + x] = f32(f32(1 - dy) * part[row0 + x]);
      if (r === h - 1 || im.h === 1) continue;
      const row1 = (k * im.h + iy + 1) * w;
      for (let x = 0; x < w; x++) out[dst + x] = f32(out[dst + x] + f32(dy * part[row1 + x]));
    }
  }
  return { data: out, c, h, w };
}

/** darknet's letterbox_image: resized to fit w x h with its aspect kept, centred on 0.5. */
export function letterboxImage(im: FloatImage, w: number, h: number): FloatImage {
  let newW: number;
  let newH: number;
  // darknet compares the two ratios in float
  if (f32(f32(w) / f32(im.w)) < f32(f32(h) / f32(im.h))) {
    newW = w;
    newH = Math.trunc((im.h * w) / im.w);
  } else {
    newH = h;
    newW = Math.trunc((im.w * h) / im.h);
  }
  const out = new Float32Array(im.c * h * w).fill(0.5);
  // an image over w times wider than high scales to 0 rows: darknet embeds nothing
  if (newW < 1 || newH < 1) return { data: out, c: im.c, h, w };
  const resized = resizeImage(im, newW, newH);
  const dx = Math.trunc((w - resized.w) / 2);
  const dy = Math.trunc((h - resized.h) / 2);
  for (let k = 0; k < im.c; k++) {
    for (let y = 0; y < resized.h; y++) {
      const from = (k * resized.h + y) * resized.w;
      out.set(resized.data.subarray(from, from + resized.w), (k * h + dy + y) * w + dx);
    }
  }
  return { data: out, c: im.c, h, w };
}

/** darknet's center_crop_image: the centred square of the shorter side, resized to w x h. */
export function centerCropImage(im: FloatImage, w: number, h: number): FloatImage {
  const m = Math.min(im.w, im.h);
  const dx = Math.trunc((im.w - m) / 2);
  const dy = Math.trunc((im.h - m) / 2);
  const square = new Float32Array(im.c * m * m);
  for (let k = 0; k < im.c; k++) {
    for (let y = 0; y < m; y++) {
      const from = (k * im.h + dy + y) * im.w + dx;
      square.set(im.data.subarray(from, from + m), (k * m + y) * m);
    }
  }
  return resizeImage({ data: square, c: im.c, h: m, w: m }, w, h);
}
