import type { ChannelShape, Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';

/** `[avgpool]`: darknet's avgpool_layer.c. It has no keys: it is always global. */
export interface AvgpoolSpec extends LayerSpec {
  type: 'avgpool';
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): AvgpoolSpec {
  if (!(ctx.h && ctx.w && ctx.c)) throw o.error('the layer before [avgpool] must output an image (h, w, c > 0)');
  const n4 = (x: number) => String(x).padStart(4);
  return {
    ...baseSpec('avgpool', o, ctx, common, { outH: 1, outW: 1, outC: ctx.c }),
    type: 'avgpool',
    params: [],
    flops: 0, // darknet counts none for pooling
    describe: `avg                     ${n4(ctx.w)} x${n4(ctx.h)} x${n4(ctx.c)}   ->  ${n4(ctx.c)}`,
  };
}

function create(spec: AvgpoolSpec, k: Kernels): Layer {
  const shape: ChannelShape = { batch: spec.batch, channels: spec.c, spatial: spec.h * spec.w };
  return {
    spec,
    output: k.alloc(spec.batch * spec.outputs), // [batch, c]
    delta: k.alloc(spec.batch * spec.outputs), // [batch, c]
    params: [],

    forward(net: NetState) {
      net.k.avgpoolForward(this.output, net.input, shape);
    },

    backward(net: NetState) {
      if (net.delta) net.k.avgpoolBackward(net.delta, this.delta, shape);
    },
  };
}

export const avgpool: LayerDefinition<AvgpoolSpec> = { type: 'avgpool', names: ['avgpool', 'avg'], parse, create };
