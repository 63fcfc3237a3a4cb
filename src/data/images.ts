import sharp from 'sharp';
import { DarknetError } from '../errors';

/** An image as the network sees it: bytes, channel-planar `[c, h, w]`. */
export interface PlanarImage {
  data: Uint8Array;
  c: number;
  h: number;
  w: number;
}

/**
 * Decodes a PNG or JPEG with sharp and resizes it to w x h (a no-op at the same size),
 * 1 channel (grayscale) or 3 (RGB). `cover` scales the shorter side to fit and crops the
 * centre: darknet's resize_min + crop_image for validation. Kept as bytes: 4x less memory than floats; the
 * network input is byte / 255, as darknet's load_image.
 * NOTE: darknet always loads 3 channels (load_image_color); a 1-channel net loads grayscale here.
 */
export async function loadImage(file: string, w: number, h: number, c: 1 | 3, fit: 'fill' | 'cover' = 'cover'): Promise<PlanarImage> {
  let raw: { data: Buffer; info: { channels: number } };
  try {
    let img = sharp(file, { failOn: 'error' }).removeAlpha();
    img = c === 1 ? img.grayscale() : img.toColourspace('srgb');
    raw = await img.resize(w, h, { fit }).raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DarknetError(`${file}: cannot load image (${(e as Error).message.split('\n')[0]})`);
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
