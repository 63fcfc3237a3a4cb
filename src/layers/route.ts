import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';
import { excerpt } from '../errors';

/** `[route]`: darknet's route_layer.c, concatenating earlier layers' outputs along channels. */
export interface RouteSpec extends LayerSpec {
  type: 'route';
  /** absolute indexes of the routed layers, in cfg order */
  layers: number[];
  /** each routed layer's outputs per image */
  sizes: number[];
}

/** Resolves darknet's `layers=` (negative = relative to this layer) against the layers parsed so far. */
function routedLayers(o: Options, ctx: ParseContext): LayerSpec[] {
  const raw = o.required('layers');
  return o.intList('layers')!.map((given) => {
    const index = given < 0 ? ctx.index + given : given;
    if (index < 0 || index >= ctx.index) {
      throw o.error(`route layer ${given} (from 'layers=${excerpt(raw)}') is out of range: layer ${ctx.index} can route only earlier layers${ctx.index ? ` (0..${ctx.index - 1})` : ', and it has none'}`, 'layers');
    }
    return ctx.previous[index];
  });
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): RouteSpec {
  const routed = routedLayers(o, ctx);
  const outputs = routed.reduce((sum, l) => sum + l.outputs, 0);
  // darknet's parse_route: channels add up when every layer matches the first's w and h;
  // otherwise the output is a flat vector (0 x 0 x 0) of all the values.
  const first = routed[0];
  const sameSize = routed.every((l) => l.outW === first.outW && l.outH === first.outH);
  const out = sameSize
    ? { outH: first.outH, outW: first.outW, outC: routed.reduce((sum, l) => sum + l.outC, 0), outputs }
    : { outH: 0, outW: 0, outC: 0, outputs };
  return {
    ...baseSpec('route', o, ctx, common, out),
    type: 'route',
    inputs: outputs, // darknet: a route's inputs are its outputs
    layers: routed.map((l) => l.index),
    sizes: routed.map((l) => l.outputs),
    params: [],
    flops: 0,
    describe: `route ${routed.map((l) => ` ${l.index}`).join('')}`,
  };
}

function create(spec: RouteSpec, k: Kernels): Layer {
  const { batch, outputs } = spec;
  // Where each routed layer's values start inside one image's row of the output.
  const offsets = spec.sizes.map((_, i) => spec.sizes.slice(0, i).reduce((a, b) => a + b, 0));
  return {
    spec,
    output: k.alloc(batch * outputs), // [batch, outputs]: image b is the routed layers' rows for b, in order
    delta: k.alloc(batch * outputs), // [batch, outputs]
    params: [],

    forward(net: NetState) {
      spec.layers.forEach((index, i) => {
        const n = spec.sizes[i];
        net.k.copyRows(this.output, net.layers[index].output, {
          batch, n, srcStride: n, srcOffset: 0, dstStride: outputs, dstOffset: offsets[i], accumulate: false,
        });
      });
    },

    // Adds into the routed layers' deltas (not net.delta, unless the previous layer is routed).
    backward(net: NetState) {
      spec.layers.forEach((index, i) => {
        const n = spec.sizes[i];
        net.k.copyRows(net.layers[index].delta, this.delta, {
          batch, n, srcStride: outputs, srcOffset: offsets[i], dstStride: n, dstOffset: 0, accumulate: true,
        });
      });
    },
  };
}

export const route: LayerDefinition<RouteSpec> = { type: 'route', names: ['route'], parse, create };
