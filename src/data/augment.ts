import type { NetConfig } from '../cfg/config';

/**
 * Training-time augmentation from the [net] keys darknet's classifier uses
 * (data.c load_image_augment_paths, image.c random_augment_image and
 * random_distort_image): a random rotation, scale and shift in one bilinear resample,
 * an optional horizontal flip, and exposure / saturation / hue changes.
 *
 * Differences on purpose: the source image is the cached one already scaled to the
 * net's size (so min_crop/max_crop act relative to it), flip is off unless asked for
 * (darknet always flips at random, which hurts digits), and a 1-channel image only gets
 * the exposure change.
 */
export interface Augmentation {
  /** degrees, drawn in [-angle, angle] */
  angle: number;
  /** aspect ratio jitter (1 = none) */
  aspect: number;
  minCrop: number;
  maxCrop: number;
  saturation: number;
  exposure: number;
  hue: number;
  flip: boolean;
}

export function augmentationOf(net: NetConfig, flip: boolean): Augmentation {
  return {
    angle: net.angle,
    aspect: net.aspect,
    minCrop: net.minCrop,
    maxCrop: net.maxCrop,
    saturation: net.saturation,
    exposure: net.exposure,
    hue: net.hue,
    flip,
  };
}

/** True when augmentation would return the image unchanged (the common MNIST case). */
export function isIdentity(a: Augmentation, w?: number): boolean {
  const cropFixed = a.minCrop === a.maxCrop && (w === undefined || a.minCrop === w);
  return a.angle === 0 && a.aspect === 1 && cropFixed && a.saturation === 1 && a.exposure === 1 && a.hue === 0 && !a.flip;
}

/** darknet's rand_scale: a factor in [1, s], inverted half the time. */
function randScale(s: number, random: () => number): number {
  const scale = 1 + random() * (s - 1);
  return random() < 0.5 ? scale : 1 / scale;
}

function uniform(lo: number, hi: number, random: () => number): number {
  return lo + random() * (hi - lo);
}

/** Bilinear sample of plane `c` at (x, y); outside the image reads 0. */
function sample(img: Uint8Array, w: number, h: number, c: number, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const dx = x - x0;
  const dy = y - y0;
  const at = (xx: number, yy: number) => (xx < 0 || yy < 0 || xx >= w || yy >= h ? 0 : img[(c * h + yy) * w + xx]);
  return (
    (1 - dy) * (1 - dx) * at(x0, y0) + (1 - dy) * dx * at(x0 + 1, y0) + dy * (1 - dx) * at(x0, y0 + 1) + dy * dx * at(x0 + 1, y0 + 1)
  );
}

/** One augmented copy of a `[c, h, w]` byte image (bytes out, clamped). */
export function augment(img: Uint8Array, shape: { w: number; h: number; c: number }, a: Augmentation, random: () => number): Uint8Array {
  const { w, h, c } = shape;
  const aspect = randScale(a.aspect, random);
  const r = Math.floor(uniform(a.minCrop, a.maxCrop + 1, random));
  const shorter = Math.min(h, w * aspect);
  const scale = r / shorter;
  const rad = (uniform(-a.angle, a.angle, random) * Math.PI) / 180;
  const dxMax = (w * scale / aspect - w) / 2;
  const dyMax = (h * scale - h) / 2;
  const dx = uniform(-dxMax, dxMax, random);
  const dy = uniform(-dyMax, dyMax, random);
  const flip = a.flip && random() < 0.5;
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const out = new Float32Array(c * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Output pixel -> source coordinates: undo the shift, scale and rotation about the centre.
      const u = ((x - w / 2) / scale) * aspect + (dx / scale) * aspect;
      const v = (y - h / 2) / scale + dy / scale;
      const sx = cos * u - sin * v + w / 2;
      const sy = sin * u + cos * v + h / 2;
      const ox = flip ? w - 1 - x : x;
      for (let ch = 0; ch < c; ch++) out[(ch * h + y) * w + ox] = sample(img, w, h, ch, sx - 0.5, sy - 0.5);
    }
  }
  distort(out, shape, a, random);
  return Uint8Array.from(out, (v) => Math.max(0, Math.min(255, Math.round(v))));
}

/** Exposure (value), saturation and hue changes; gray images get exposure only. */
function distort(px: Float32Array, shape: { w: number; h: number; c: number }, a: Augmentation, random: () => number): void {
  const exposure = randScale(a.exposure, random);
  const plane = shape.w * shape.h;
  if (shape.c !== 3) {
    for (let i = 0; i < px.length; i++) px[i] *= exposure;
    return;
  }
  const saturation = randScale(a.saturation, random);
  const hue = uniform(-a.hue, a.hue, random);
  for (let i = 0; i < plane; i++) {
    const [hh, s, v] = rgbToHsv(px[i] / 255, px[plane + i] / 255, px[2 * plane + i] / 255);
    let nh = hh + hue;
    nh -= Math.floor(nh);
    const [r, g, b] = hsvToRgb(nh, Math.min(1, s * saturation), v * exposure);
    px[i] = r * 255;
    px[plane + i] = g * 255;
    px[2 * plane + i] = b * 255;
  }
}

/** h, s, v in [0, 1]. */
function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) h = ((g - b) / d) % 6;
    else if (max === g) h = (b - r) / d + 2;
    else h = (r - g) / d + 4;
    h /= 6;
    if (h < 0) h += 1;
  }
  return [h, max === 0 ? 0 : d / max, max];
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  switch (((i % 6) + 6) % 6) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}
