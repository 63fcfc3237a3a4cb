import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[upsample]`: darknet's upsample_layer.c. stride > 0: every value repeated in a
 * stride x stride block, times `scale`; stride < 0 (darknet's "downsample"): each
 * |stride| x |stride| block summed, times `scale`. Runs on the host. Host-side.
 */
export interface UpsampleSpec extends LayerSpec {
  type: 'upsample';
  /** |stride| */
  stride: number;
  /** darknet's reverse: a negative stride in the cfg */
  reverse: boolean;
  scale: number;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): UpsampleSpec {
  const given = o.int('stride', 2);
  const scale = o.float('scale', 1);
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before [upsample] must output an image (h, w, c > 0)');
  if (given === 0) throw o.error('upsample stride=0: give a positive (upsample) or negative (downsample) stride', 'stride');
  const reverse = given < 0;
  const stride = Math.abs(given);
  // darknet's downsample indexes the big image as (w / stride) * stride wide: other sizes misread it
  if (reverse && (w % stride !== 0 || h % stride !== 0)) {
    throw o.error(`downsample by ${stride} needs the input's width and height divisible by ${stride} (input ${w} x ${h})`, 'stride');
  }
  const outW = reverse ? w / stride : w * stride;
  const outH = reverse ? h / stride : h * stride;
  const n4 = (x: number) => String(x).padStart(4);
  const name = reverse ? 'downsample' : 'upsample  ';
  return {
    ...baseSpec('upsample', o, ctx, common, { outH, outW, outC: c }),
    type: 'upsample',
    stride, reverse, scale,
    params: [],
    flops: 0,
    describe: `${name}         ${String(stride).padStart(2)}x  ${n4(w)} x${n4(h)} x${n4(c)}   ->  ${n4(outW)} x${n4(outH)} x${n4(c)}`,
  };
}

/**
 * darknet's upsample_cpu over (small image `w x h`, big image `w*stride x h*stride`):
 * visit(smallIndex, bigIndex) for every big pixel.
 */
function pairs(s: UpsampleSpec, visit: (small: number, big: number) => void): void {
  const w = s.reverse ? s.outW : s.w;
  const h = s.reverse ? s.outH : s.h;
  const st = s.stride;
  for (let b = 0; b < s.batch; b++) {
    for (let k = 0; k < s.c; k++) {
      for (let j = 0; j < h * st; j++) {
        for (let i = 0; i < w * st; i++) {
          visit(b * w * h * s.c + k * w * h + Math.floor(j / st) * w + Math.floor(i / st), b * w * h * s.c * st * st + k * w * h * st * st + j * w * st + i);
        }
      }
    }
  }
}

function create(spec: UpsampleSpec, k: Kernels): Layer {
  return {
    spec,
    output: k.alloc(spec.batch * spec.outputs),
    delta: k.alloc(spec.batch * spec.outputs),
    params: [],

    forward(net: NetState) {
      const x = net.k.read(net.input);
      const out = new Float64Array(this.output.size);
      if (spec.reverse) pairs(spec, (small, big) => { out[small] += spec.scale * x[big]; });
      else pairs(spec, (small, big) => { out[big] = spec.scale * x[small]; });
      net.k.upload(this.output, out);
    },

    // NOTE: darknet's downsample backward overwrites net.delta; we add into it.
    backward(net: NetState) {
      if (!net.delta) return;
      const delta = net.k.read(this.delta);
      const inputDelta = net.k.read(net.delta);
      if (spec.reverse) pairs(spec, (small, big) => { inputDelta[big] += spec.scale * delta[small]; });
      else pairs(spec, (small, big) => { inputDelta[small] += spec.scale * delta[big]; });
      net.k.upload(net.delta, inputDelta);
    },
  };
}

export const upsample: LayerDefinition<UpsampleSpec> = { type: 'upsample', names: ['upsample'], parse, create };
