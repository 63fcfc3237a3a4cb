import type { Activation, Kernels, Tensor } from '../kernels/types';
import {
  activationOption, baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec,
  type NetState, type ParamTensor, type ParseContext, type UpdateArgs,
} from '../engine/layer';
import type { Options } from '../cfg/options';
import { initialWeights } from './weighted';

/**
 * `[local]`: darknet's local_layer.c, a convolution whose filters are not shared: every
 * output location has its own `filters x (c * size * size)` weights, and every output
 * value its own bias. The products run on the host (k.read / k.upload); the activation
 * and the SGD step run as kernels. Host-side.
 */
export interface LocalSpec extends LayerSpec {
  type: 'local';
  filters: number;
  size: number;
  stride: number;
  /** darknet passes its pad FLAG (0 or 1) to im2col as the padding */
  pad: number;
  activation: Activation;
}

function parse(o: Options, ctx: ParseContext, common: CommonSpec): LocalSpec {
  const filters = o.int('filters', 1);
  const size = o.int('size', 1);
  const stride = o.int('stride', 1);
  const pad = o.int('pad', 0);
  const activation = activationOption(o, 'logistic', false);
  const { h, w, c } = ctx;
  if (!(h && w && c)) throw o.error('the layer before [local] must output an image (h, w, c > 0)');
  if (filters < 1 || size < 1 || stride < 1 || (pad !== 0 && pad !== 1)) {
    throw o.error(`local filters, size and stride must be >= 1 and pad 0 or 1 (filters=${filters} size=${size} stride=${stride} pad=${pad})`);
  }
  // darknet's local_out_height: (h - (pad ? 1 : size)) / stride + 1
  const outH = Math.trunc((h - (pad ? 1 : size)) / stride) + 1;
  const outW = Math.trunc((w - (pad ? 1 : size)) / stride) + 1;
  // NOTE: with pad=1 darknet pads by 1 pixel whatever the size, but sizes its output as if
  // it padded size/2; the two agree only where the im2col grid has exactly outH x outW cells.
  const gridH = Math.trunc((h + 2 * pad - size) / stride) + 1;
  const gridW = Math.trunc((w + 2 * pad - size) / stride) + 1;
  if (outH < 1 || outW < 1 || gridH !== outH || gridW !== outW) {
    throw o.error(`local ${size} x ${size} / ${stride} with pad=${pad} does not fit the ${w} x ${h} input consistently (darknet would read past its workspace)`);
  }
  const locations = outH * outW;
  const perLocation = filters * c * size * size;
  const p = (x: number) => String(x);
  return {
    ...baseSpec('local', o, ctx, common, { outH, outW, outC: filters }),
    type: 'local',
    filters, size, stride, pad, activation,
    params: [
      { name: 'biases', size: locations * filters },
      { name: 'weights', size: locations * perLocation },
    ],
    // NOTE: darknet counts no FLOPs for local layers (its `ops` total has only conv and
    // connected), so neither do we: the summary's total stays darknet's number.
    flops: 0,
    describe: `Local Layer: ${p(h)} x ${p(w)} x ${p(c)} image, ${p(filters)} filters -> ${p(outH)} x ${p(outW)} x ${p(filters)} image`,
  };
}

export class LocalLayer implements Layer {
  /** `[batch, filters, outH, outW]` */
  readonly output: Tensor;
  readonly delta: Tensor;
  /** `[filters, outH, outW]`: one bias per output value */
  readonly biases: Tensor;
  readonly biasUpdates: Tensor;
  /** `[outH * outW, filters, c, size, size]` */
  readonly weights: Tensor;
  readonly weightUpdates: Tensor;
  readonly params: readonly ParamTensor[];
  private readonly k: Kernels;

  constructor(readonly spec: LocalSpec, k: Kernels) {
    this.k = k;
    const { batch, outputs, c, size } = spec;
    const nWeights = spec.params[1].size;
    this.output = k.alloc(batch * outputs);
    this.delta = k.alloc(batch * outputs);
    this.biases = k.alloc(outputs);
    this.biasUpdates = k.alloc(outputs);
    this.weights = k.alloc(nWeights);
    this.weightUpdates = k.alloc(nWeights);
    // darknet: scale * uniform(-1, 1), scale = sqrt(2 / (size * size * c)).
    // NOTE: darknet fills only the first location's weights (the rest stay 0); we fill all.
    const scale = Math.sqrt(2 / (size * size * c));
    k.upload(this.weights, initialWeights(spec.index, nWeights, (random) => scale * (2 * random() - 1)));
    this.params = [
      { name: 'biases', tensor: this.biases, updates: this.biasUpdates },
      { name: 'weights', tensor: this.weights, updates: this.weightUpdates },
    ];
  }

  /** Calls visit(inputIndex or -1 for padding, weightIndex, outputIndex) for every product of image b. */
  private taps(visit: (input: number, weight: number, output: number) => void, b: number): void {
    const { c, h, w, size, stride, pad, filters, outH, outW } = this.spec;
    const locations = outH * outW;
    const kk = c * size * size;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const j = y * outW + x;
        for (let ch = 0; ch < c; ch++) {
          for (let ky = 0; ky < size; ky++) {
            const row = y * stride - pad + ky;
            for (let kx = 0; kx < size; kx++) {
              const col = x * stride - pad + kx;
              const inside = row >= 0 && row < h && col >= 0 && col < w;
              const input = inside ? b * c * h * w + (ch * h + row) * w + col : -1;
              const tap = (ch * size + ky) * size + kx;
              for (let f = 0; f < filters; f++) visit(input, (j * filters + f) * kk + tap, b * filters * locations + f * locations + j);
            }
          }
        }
      }
    }
  }

  forward(net: NetState): void {
    const { batch, outputs } = this.spec;
    const x = this.k.read(net.input);
    const wts = this.k.read(this.weights);
    const bias = this.k.read(this.biases);
    const out = new Float64Array(batch * outputs);
    for (let b = 0; b < batch; b++) {
      out.set(bias, b * outputs);
      this.taps((i, wi, o) => { if (i >= 0) out[o] += wts[wi] * x[i]; }, b);
    }
    this.k.upload(this.output, out);
    this.k.activate(this.output, this.output, this.spec.activation);
  }

  backward(net: NetState): void {
    const { batch, outputs } = this.spec;
    this.k.gradient(this.delta, this.output, this.spec.activation);
    const delta = this.k.read(this.delta);
    const x = this.k.read(net.input);
    const wts = this.k.read(this.weights);
    const biasUpdates = this.k.read(this.biasUpdates);
    const weightUpdates = this.k.read(this.weightUpdates);
    const inputDelta = net.delta ? this.k.read(net.delta) : null;
    for (let b = 0; b < batch; b++) {
      for (let o = 0; o < outputs; o++) biasUpdates[o] += delta[b * outputs + o];
      this.taps((i, wi, o) => {
        if (i < 0) return;
        weightUpdates[wi] += delta[o] * x[i];
        if (inputDelta) inputDelta[i] += wts[wi] * delta[o];
      }, b);
    }
    this.k.upload(this.biasUpdates, biasUpdates);
    this.k.upload(this.weightUpdates, weightUpdates);
    if (net.delta && inputDelta) this.k.upload(net.delta, inputDelta);
  }

  /** darknet's update_local_layer: biases without decay, weights with it. */
  update(a: UpdateArgs): void {
    const p = { rate: a.learningRate * this.spec.learningRateScale, momentum: a.momentum, batch: a.batch };
    this.k.sgdUpdate(this.biases, this.biasUpdates, null, { ...p, decay: 0 });
    this.k.sgdUpdate(this.weights, this.weightUpdates, null, { ...p, decay: a.decay });
  }
}

export const local: LayerDefinition<LocalSpec> = {
  type: 'local', names: ['local'], parse, create: (spec, k) => new LocalLayer(spec, k),
};
