import type { Kernels, PoolShape } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/** `[maxpool]`: darknet's maxpool_layer.c. */
export interface MaxpoolSpec extends LayerSpec {
  type: 'maxpool';
  size: number;
  stride: number;
  /** total padding, split floor(padding / 2) before the image (see PoolShape) */
  padding: number;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): MaxpoolSpec {
  // darknet's parse_maxpool: size defaults to stride, padding to size - 1.
  const stride = o.int('stride', 1);
  const size = o.int('size', stride);
  const padding = o.int('padding', size - 1);
  if (!(ctx.h && ctx.w && ctx.c)) throw o.error('the layer before [maxpool] must output an image (h, w, c > 0)');
  if (stride < 1) throw o.error(`maxpool stride=${stride} must be at least 1`, 'stride');
  if (size < 1) throw o.error(`maxpool size=${size} must be at least 1`, 'size');
  if (padding < 0) throw o.error(`maxpool padding=${padding} must not be negative`, 'padding');
  const outW = Math.floor((ctx.w + padding - size) / stride) + 1;
  const outH = Math.floor((ctx.h + padding - size) / stride) + 1;
  if (outW < 1 || outH < 1) {
    throw o.error(`maxpool ${size} x ${size} / ${stride} with padding ${padding} leaves nothing of a ${ctx.w} x ${ctx.h} input`);
  }
  const n4 = (x: number) => String(x).padStart(4);
  return {
    ...baseSpec('maxpool', o, ctx, common, { outH, outW, outC: ctx.c }),
    type: 'maxpool',
    size,
    stride,
    padding,
    params: [],
    // darknet counts no FLOPs for pooling (comparisons are not multiply-adds), so the
    // summary's BFLOPs total matches darknet's.
    flops: 0,
    describe: `max          ${size} x ${size} / ${stride}  ${n4(ctx.w)} x${n4(ctx.h)} x${n4(ctx.c)}   ->  ${n4(outW)} x${n4(outH)} x${n4(ctx.c)}`,
  };
}

function create(spec: MaxpoolSpec, k: Kernels): Layer {
  const shape: PoolShape = {
    batch: spec.batch, c: spec.c, h: spec.h, w: spec.w,
    size: spec.size, stride: spec.stride, padding: spec.padding, outH: spec.outH, outW: spec.outW,
  };
  return {
    spec,
    output: k.alloc(spec.batch * spec.outputs), // [batch, c, outH, outW]
    delta: k.alloc(spec.batch * spec.outputs), // [batch, c, outH, outW]
    params: [],

    forward(net: NetState) {
      net.k.maxpoolForward(this.output, net.input, shape);
    },

    // NOTE: darknet keeps the argmax indexes from forward; the kernel recomputes them
    // from the input (same ties rule), which is why backward needs net.input.
    backward(net: NetState) {
      if (net.delta) net.k.maxpoolBackward(net.delta, this.delta, net.input, shape);
    },
  };
}

export const maxpool: LayerDefinition<MaxpoolSpec> = { type: 'maxpool', names: ['maxpool', 'max'], parse, create };
