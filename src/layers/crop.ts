import type { Kernels, Tensor } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[crop]`: darknet's crop_layer.c as its CPU path runs it. Inference takes the centre
 * crop; training takes a random crop (and a random left-right flip with flip=1), both
 * drawn per batch. Values are mapped x -> 2x - 1 unless noadjust=1.
 * Host-side: the crop is computed on the host (k.read / k.upload).
 */
export interface CropSpec extends LayerSpec {
  type: 'crop';
  flip: boolean;
  /** darknet's noadjust: keep values as they are instead of 2x - 1 */
  noadjust: boolean;
  /** per-channel random offset (u - 0.5) * shift while training, one draw per batch (3 channels only) */
  shift: number;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): CropSpec {
  const cropHeight = o.int('crop_height', 1);
  const cropWidth = o.int('crop_width', 1);
  const flip = o.flag('flip');
  // NOTE: darknet's GPU crop also jitters angle, saturation and exposure; its CPU crop
  // (what its single-thread binary runs) ignores them. We accept only their no-op values
  // so a cfg never silently trains differently from what it asks for.
  const identity: Array<[string, number]> = [['angle', 0], ['saturation', 1], ['exposure', 1]];
  for (const [key, neutral] of identity) {
    const v = o.float(key, neutral);
    if (v !== neutral) throw o.error(`crop ${key}=${v} (colour/rotation jitter) is not supported; only ${key}=${neutral}`, key);
  }
  const shift = o.float('shift', 0);
  const noadjust = o.flag('noadjust');
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before [crop] must output an image (h, w, c > 0)');
  if (cropHeight < 1 || cropWidth < 1 || cropHeight > h || cropWidth > w) {
    throw o.error(`crop ${cropWidth} x ${cropHeight} must be at least 1 x 1 and fit the ${w} x ${h} input`);
  }
  if (shift !== 0 && c !== 3) throw o.error(`crop shift=${shift} shifts the three colour channels; the input has ${c}`, 'shift');
  return {
    ...baseSpec('crop', o, ctx, common, { outH: cropHeight, outW: cropWidth, outC: c }),
    type: 'crop',
    flip,
    noadjust,
    shift,
    params: [],
    flops: 0,
    // darknet prints h x w first (make_crop_layer's argument order)
    describe: `Crop Layer: ${h} x ${w} -> ${cropHeight} x ${cropWidth} x ${c} image`,
  };
}

/** Where the window starts and whether it is mirrored, darknet's forward_crop_layer draws. */
export interface CropWindow {
  dh: number;
  dw: number;
  flip: boolean;
}

/** The crop maths on host arrays: out[b, c, i, j] = in[b, c, i + dh, col] * scale + trans + offsets. */
export function cropHost(out: Float64Array | Float32Array, input: ArrayLike<number>, s: CropSpec, win: CropWindow, offsets: number[]): void {
  const scale = s.noadjust ? 1 : 2;
  const trans = s.noadjust ? 0 : -1;
  let count = 0;
  for (let b = 0; b < s.batch; b++) {
    for (let ch = 0; ch < s.c; ch++) {
      const add = trans + (offsets[b * s.c + ch] ?? 0);
      for (let i = 0; i < s.outH; i++) {
        for (let j = 0; j < s.outW; j++) {
          const col = win.flip ? s.w - win.dw - j - 1 : j + win.dw;
          out[count++] = input[col + s.w * (i + win.dh + s.h * (ch + s.c * b))] * scale + add;
        }
      }
    }
  }
}

function create(spec: CropSpec, k: Kernels): Layer {
  let last: CropWindow = { dh: 0, dw: 0, flip: false };
  const output: Tensor = k.alloc(spec.batch * spec.outputs); // [batch, c, cropHeight, cropWidth]
  return {
    spec,
    output,
    delta: k.alloc(spec.batch * spec.outputs),
    params: [],

    forward(net: NetState) {
      const offsets: number[] = [];
      if (net.train) {
        // darknet draws flip, then dh, then dw (rand() % range); ours come from the seeded generator
        const flip = spec.flip && net.random() < 0.5;
        const dh = Math.floor(net.random() * (spec.h - spec.outH + 1));
        const dw = Math.floor(net.random() * (spec.w - spec.outW + 1));
        last = { dh, dw, flip };
        if (spec.shift) {
          // darknet's GPU levels_image_kernel: one (u - 0.5) * shift per colour channel, for the whole batch
          const perChannel = Array.from({ length: spec.c }, () => (net.random() - 0.5) * spec.shift);
          for (let b = 0; b < spec.batch; b++) offsets.push(...perChannel);
        }
      } else {
        last = { dh: Math.floor((spec.h - spec.outH) / 2), dw: Math.floor((spec.w - spec.outW) / 2), flip: false };
      }
      const out = new Float64Array(output.size);
      cropHost(out, net.k.read(net.input), spec, last, offsets);
      net.k.upload(output, out);
    },

    // NOTE: darknet's backward_crop_layer does nothing (a crop is the first layer, with no
    // delta to fill). We pass the exact gradient back, so a crop inside a net trains too.
    backward(net: NetState) {
      if (!net.delta) return;
      const scale = spec.noadjust ? 1 : 2;
      const delta = net.k.read(this.delta);
      const inputDelta = net.k.read(net.delta);
      let count = 0;
      for (let b = 0; b < spec.batch; b++) {
        for (let ch = 0; ch < spec.c; ch++) {
          for (let i = 0; i < spec.outH; i++) {
            for (let j = 0; j < spec.outW; j++) {
              const col = last.flip ? spec.w - last.dw - j - 1 : j + last.dw;
              inputDelta[col + spec.w * (i + last.dh + spec.h * (ch + spec.c * b))] += scale * delta[count++];
            }
          }
        }
      }
      net.k.upload(net.delta, inputDelta);
    },
  };
}

export const crop: LayerDefinition<CropSpec> = { type: 'crop', names: ['crop'], parse, create };
