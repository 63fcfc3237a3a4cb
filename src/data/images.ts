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
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    png = PNG.sync.read(typeof input === 'string' ? fs.readFileSync(input) : input);
  } catch {
    return null;
  }
  if (png.width !== w || png.height !== h) return null;
  const plane = w * h;
  const data = new Uint8Array(c * plane);
  // pngjs gives RGBA bytes whatever the file held (gray is copied to R, G and B).
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < c; ch++) data[ch * plane + i] = png.data[4 * i + ch];
  }
  return { data, c, h, w };
}
