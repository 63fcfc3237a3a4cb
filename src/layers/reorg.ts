import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[reorg]`: darknet's reorg_layer.c. Every mode is a fixed rearrangement of each image's
 * values (plus zeros for `extra`), so the layer keeps one index map and runs on the host
 * (k.read / k.upload). Host-side.
 *
 * NOTE: darknet's forward reorg (reverse=0) calls reorg_cpu with forward=0, so it reads
 * with the index pattern meant for the reverse direction; the result is a permutation
 * but not the space-to-depth the shapes suggest. We reproduce darknet's indexing exactly,
 * so a darknet-trained net sees the same values.
 */
export interface ReorgSpec extends LayerSpec {
  type: 'reorg';
  stride: number;
  reverse: boolean;
  flatten: boolean;
  /** zeros appended after each image's values (outputs = inputs + extra, a flat output) */
  extra: number;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): ReorgSpec {
  const stride = o.int('stride', 1);
  const reverse = o.flag('reverse');
  const flatten = o.flag('flatten');
  const extra = o.int('extra', 0);
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before [reorg] must output an image (h, w, c > 0)');
  if (stride < 1) throw o.error(`reorg stride=${stride} must be at least 1`, 'stride');
  if (extra < 0) throw o.error(`reorg extra=${extra} must not be negative`, 'extra');
  // darknet's combinations that read or write past its buffers, or whose forward and
  // backward disagree, are refused rather than reproduced
  if (extra && (flatten || reverse)) throw o.error('reorg extra= cannot be combined with flatten or reverse (darknet mixes them inconsistently)', 'extra');
  const s2 = stride * stride;
  // reorg_cpu indexes channels by c / stride^2 in both directions; the forward direction
  // also divides width and height
  if (!extra && (c % s2 !== 0 || (!reverse && (w % stride !== 0 || h % stride !== 0)))) {
    const what = reverse ? `its channels divisible by ${s2}` : `its width and height divisible by ${stride} and its channels by ${s2}`;
    throw o.error(`reorg stride=${stride} needs ${what} (input ${w} x ${h} x ${c})`, 'stride');
  }
  const out = extra
    ? { outH: 0, outW: 0, outC: 0, outputs: ctx.inputs + extra }
    : reverse
      ? { outH: h * stride, outW: w * stride, outC: c / s2 }
      : { outH: h / stride, outW: w / stride, outC: c * s2 };
  const n4 = (x: number) => String(x).padStart(4);
  const describe = extra
    ? `reorg              ${n4(ctx.inputs)}   ->  ${n4(ctx.inputs + extra)}`
    : `reorg              /${String(stride).padStart(2)}  ${n4(w)} x${n4(h)} x${n4(c)}   ->  ${n4(out.outW)} x${n4(out.outH)} x${n4(out.outC)}`;
  return {
    ...baseSpec('reorg', o, ctx, common, out),
    type: 'reorg',
    stride, reverse, flatten, extra,
    params: [],
    flops: 0,
    describe,
  };
}

/**
 * For one image: source[o] = the input index that output o copies, or -1 for a zero.
 * The batch repeats it with the image's offset.
 */
export function reorgSources(s: ReorgSpec): Int32Array {
  const { w, h, c, stride } = s;
  const source = new Int32Array(s.outputs).fill(-1);
  if (s.extra) {
    for (let i = 0; i < s.inputs; i++) source[i] = i;
    return source;
  }
  if (s.flatten) {
    // darknet's flatten(x, w*h, c, ..., forward): [c, w*h] <-> [w*h, c]
    const size = w * h;
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < size; i++) {
        const planar = ch * size + i;
        const interleaved = i * c + ch;
        if (s.reverse) source[planar] = interleaved;
        else source[interleaved] = planar;
      }
    }
    return source;
  }
  // darknet's reorg_cpu(x, w, h, c, batch, stride, forward, out) with the input's w, h, c:
  // forward=1 writes out[outIndex] = x[inIndex], forward=0 writes out[inIndex] = x[outIndex].
  const outC = c / (stride * stride);
  for (let k = 0; k < c; k++) {
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) {
        const inIndex = i + w * (j + h * k);
        const c2 = k % outC;
        const offset = Math.floor(k / outC);
        const w2 = i * stride + (offset % stride);
        const h2 = j * stride + Math.floor(offset / stride);
        const outIndex = w2 + w * stride * (h2 + h * stride * c2);
        if (s.reverse) source[outIndex] = inIndex; // reverse runs reorg_cpu(forward=1)
        else source[inIndex] = outIndex; // reorg runs reorg_cpu(forward=0)
      }
    }
  }
  return source;
}

function create(spec: ReorgSpec, k: Kernels): Layer {
  const source = reorgSources(spec);
  const { batch, inputs, outputs } = spec;
  return {
    spec,
    output: k.alloc(batch * outputs),
    delta: k.alloc(batch * outputs),
    params: [],

    forward(net: NetState) {
      const x = net.k.read(net.input);
      const out = new Float64Array(batch * outputs);
      for (let b = 0; b < batch; b++) {
        for (let o = 0; o < outputs; o++) if (source[o] >= 0) out[b * outputs + o] = x[b * inputs + source[o]];
      }
      net.k.upload(this.output, out);
    },

    // NOTE: darknet's backward overwrites net.delta; we add into it, like every layer here.
    backward(net: NetState) {
      if (!net.delta) return;
      const delta = net.k.read(this.delta);
      const inputDelta = net.k.read(net.delta);
      for (let b = 0; b < batch; b++) {
        for (let o = 0; o < outputs; o++) if (source[o] >= 0) inputDelta[b * inputs + source[o]] += delta[b * outputs + o];
      }
      net.k.upload(net.delta, inputDelta);
    },
  };
}

export const reorg: LayerDefinition<ReorgSpec> = { type: 'reorg', names: ['reorg'], parse, create };
