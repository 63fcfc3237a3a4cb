import type { Activation, Kernels, ShortcutShape } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext,
} from '../engine/layer';
import type { Options } from '../cfg/options';

/**
 * `[shortcut]`: darknet's shortcut_layer.c, a residual connection:
 * output = act(alpha * input + beta * from.output), where `from` is an earlier layer whose
 * shape may differ (it is subsampled or spread out; extra channels are left alone).
 */
export interface ShortcutSpec extends LayerSpec {
  type: 'shortcut';
  /** absolute index of the `from` layer */
  from: number;
  fromW: number;
  fromH: number;
  fromC: number;
  activation: Activation;
  alpha: number;
  beta: number;
}

/**
 * darknet's shortcut_cpu asserts that w1/w2 == h1/h2 and w2/w1 == h2/h1 (integer
 * division); we also ask each side to be a whole multiple of the other, without which
 * the sampled positions do not line up.
 */
function compatible(w1: number, h1: number, w2: number, h2: number): boolean {
  const multiples = (a: number, b: number) => a % b === 0 || b % a === 0;
  return multiples(w1, w2) && multiples(h1, h2)
    && Math.floor(w1 / w2) === Math.floor(h1 / h2) && Math.floor(w2 / w1) === Math.floor(h2 / h1);
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): ShortcutSpec {
  o.required('from');
  const given = o.int('from', 0);
  const from = given < 0 ? ctx.index + given : given;
  if (from < 0 || from >= ctx.index) {
    throw o.error(`shortcut from=${given} is out of range: layer ${ctx.index} can add only earlier layers${ctx.index ? ` (0..${ctx.index - 1})` : ', and it has none'}`, 'from');
  }
  const f = ctx.previous[from];
  const shape = (w: number, h: number, c: number) => `${w} x ${h} x ${c}`;
  if (!(ctx.w && ctx.h && ctx.c && f.outW && f.outH && f.outC)) {
    throw o.error(`shortcut needs images: its input is ${shape(ctx.w, ctx.h, ctx.c)}, layer ${from} outputs ${shape(f.outW, f.outH, f.outC)}`);
  }
  if (!compatible(f.outW, f.outH, ctx.w, ctx.h)) {
    throw o.error(`shortcut from layer ${from} (${shape(f.outW, f.outH, f.outC)}) does not fit its input (${shape(ctx.w, ctx.h, ctx.c)}): `
      + 'width and height must scale by the same whole factor', 'from');
  }
  const activation = activationOption(o, 'linear', false);
  const alpha = o.float('alpha', 1);
  const beta = o.float('beta', 1);
  const n4 = (x: number) => String(x).padStart(4);
  return {
    ...baseSpec('shortcut', o, ctx, common, { outH: ctx.h, outW: ctx.w, outC: ctx.c }),
    type: 'shortcut',
    from,
    fromW: f.outW,
    fromH: f.outH,
    fromC: f.outC,
    activation,
    alpha,
    beta,
    params: [],
    flops: 0,
    describe: `res  ${String(from).padStart(3)}                ${n4(f.outW)} x${n4(f.outH)} x${n4(f.outC)}   ->  ${n4(ctx.w)} x${n4(ctx.h)} x${n4(ctx.c)}`,
  };
}

function create(spec: ShortcutSpec, k: Kernels): Layer {
  const { batch, w, h, c, fromW, fromH, fromC } = spec;
  // Forward adds `from` into the output; backward adds this delta into from's delta.
  const addFrom: ShortcutShape = { batch, w1: fromW, h1: fromH, c1: fromC, w2: w, h2: h, c2: c };
  const addToFrom: ShortcutShape = { batch, w1: w, h1: h, c1: c, w2: fromW, h2: fromH, c2: fromC };
  return {
    spec,
    output: k.alloc(batch * spec.outputs), // [batch, c, h, w]
    delta: k.alloc(batch * spec.outputs), // [batch, c, h, w]
    params: [],

    forward(net: NetState) {
      net.k.copy(this.output, net.input);
      net.k.shortcut(this.output, net.layers[spec.from].output, spec.alpha, spec.beta, addFrom);
      net.k.activate(this.output, this.output, spec.activation);
    },

    // NOTE: alpha scales the input only where `from` lands (elsewhere the input passes
    // unscaled), yet darknet passes alpha * delta everywhere. That is the exact gradient
    // when alpha = 1 or when `from` covers every output value; we keep darknet's rule.
    backward(net: NetState) {
      net.k.gradient(this.delta, this.output, spec.activation);
      if (net.delta) net.k.axpby(net.delta, spec.alpha, this.delta, 1);
      net.k.shortcut(net.layers[spec.from].delta, this.delta, 1, spec.beta, addToFrom);
    },
  };
}

export const shortcut: LayerDefinition<ShortcutSpec> = { type: 'shortcut', names: ['shortcut'], parse, create };
