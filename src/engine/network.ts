import type { NetConfig, NetworkSpec } from '../cfg/config';
import { checkNetworkBudget } from '../cfg/memory';
import { DarknetError } from '../errors';
import type { Layer, NetState, SparseMode } from './layer';
import { definitionOf } from '../layers';
import type { FloatArray, Kernels, Tensor } from '../kernels/types';
import { mulberry32 } from './random';
import { DARKNET_HEADER, type WeightsFile, type WeightsHeader } from '../io/weights';

/**
 * A network built on a backend: darknet's network.c. forward runs the layers in order,
 * backward in reverse (each adds into the delta of the layer before it), update applies
 * darknet's SGD once every `subdivisions` passes.
 *
 * @example
 *   const net = new Network(readCfg('cfg/lenet.cfg'), await createKernels('webasm'));
 *   const loss = net.trainBatch(images, oneHotLabels); // [batch, inputs], [batch, classes]
 */
/** A spec with another batch size and no subdivisions (every per-image shape is unchanged), e.g. for inference. */
export function withBatch(spec: NetworkSpec, batch: number): NetworkSpec {
  return {
    ...spec,
    net: { ...spec.net, batch, subdivisions: 1 },
    layers: spec.layers.map((l) => ({ ...l, batch })),
  };
}

/**
 * The same kernels with every `alloc` recorded in `owned` (and every `free` struck off), so
 * a network can free exactly what it still holds (layers allocate through the kernels they
 * are given).
 */
function trackAllocations(k: Kernels, owned: Tensor[]): Kernels {
  return new Proxy(k, {
    get(target, key) {
      if (key === 'alloc') {
        return (size: number) => {
          const t = target.alloc(size);
          owned.push(t);
          return t;
        };
      }
      if (key === 'free') {
        return (t: Tensor) => {
          const i = owned.lastIndexOf(t);
          if (i >= 0) owned.splice(i, 1);
          target.free(t);
        };
      }
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export class Network {
  readonly config: NetConfig;
  readonly layers: Layer[];
  /** images seen in training, darknet's `*net->seen` (saved in .weights headers) */
  seen = 0;
  /** network slimming: the L1 strength on batch-norm scales in every update (0 = off) */
  slim = 0;
  /** `[batch, inputs]` */
  readonly input: Tensor;
  /** `[batch, outputs of the last layer]` */
  readonly truth: Tensor;
  private readonly random: () => number;
  /** passes since the last update: darknet updates after every `subdivisions` passes */
  private passes = 0;
  /** every tensor this network allocated, freed by dispose() */
  private readonly owned: Tensor[] = [];
  private disposed = false;

  constructor(readonly spec: NetworkSpec, readonly k: Kernels, options: { seed?: number } = {}) {
    this.config = spec.net;
    if (spec.layers.length === 0) throw new DarknetError(`${spec.file}: the cfg has no layers after [net]`);
    // Refused before anything is allocated: a cfg with absurd sizes is an error, not an out-of-memory crash.
    checkNetworkBudget(spec);
    this.random = mulberry32(options.seed ?? 1);
    const tracked = trackAllocations(k, this.owned);
    this.layers = spec.layers.map((s) => definitionOf(s.type).create(s, tracked));
    this.input = tracked.alloc(this.batch * this.config.inputs);
    this.truth = tracked.alloc(this.batch * this.outputs);
  }

  /**
   * Where zero weights are skipped (`--sparse`): `on` every layer that has a sparse path
   * (connected, convolutional with groups=1, on a backend with k.sparse), `auto` those with
   * enough zeros, `off` none. Returns the indexes of the layers now running sparsely.
   * Inference runs sparsely there; training too where a mask freezes the zeros. The
   * compressed copies are made again after updates and loads.
   */
  setSparse(mode: SparseMode): number[] {
    const sparse: number[] = [];
    this.layers.forEach((l, i) => {
      if (l.setSparse?.(mode)) sparse.push(i);
    });
    return sparse;
  }

  /**
   * Frees every tensor the network allocated on its backend (the backend itself stays
   * usable for other networks). The network must not be used afterwards.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // sparse copies live outside the tensors (k.sparse): give them back first
    for (const l of this.layers) l.setSparse?.('off');
    for (const t of this.owned) this.k.free(t);
    this.owned.length = 0;
  }

  /** images per forward pass (cfg batch / subdivisions) */
  get batch(): number {
    return this.config.batch;
  }

  get outputs(): number {
    return this.layers[this.layers.length - 1].spec.outputs;
  }

  get output(): Tensor {
    return this.layers[this.layers.length - 1].output;
  }

  /** darknet's get_current_batch: optimizer steps taken */
  currentBatch(): number {
    return Math.floor(this.seen / (this.batch * this.config.subdivisions));
  }

  /** darknet's get_current_rate, every policy with burn_in. */
  currentRate(): number {
    const n = this.config;
    const b = this.currentBatch();
    if (b < n.burnIn) return n.learningRate * Math.pow(b / n.burnIn, n.power);
    switch (n.policy) {
      case 'constant':
        return n.learningRate;
      case 'step':
        return n.learningRate * Math.pow(n.scale, Math.floor(b / n.step));
      case 'steps': {
        let rate = n.learningRate;
        for (let i = 0; i < n.steps.length; i++) {
          if (n.steps[i] > b) return rate;
          rate *= n.scales[i];
        }
        return rate;
      }
      case 'exp':
        return n.learningRate * Math.pow(n.gamma, b);
      case 'poly':
        return n.learningRate * Math.pow(1 - b / n.maxBatches, n.power);
      case 'random':
        return n.learningRate * Math.pow(this.random(), n.power);
      case 'sigmoid':
        return n.learningRate * (1 / (1 + Math.exp(n.gamma * (b - n.step))));
    }
  }

  private state(train: boolean, withTruth: boolean): NetState {
    return {
      k: this.k,
      train,
      input: this.input,
      delta: null,
      truth: withTruth ? this.truth : null,
      layers: this.layers,
      random: this.random,
    };
  }

  /**
   * Runs every layer on `this.input`. With a truth, loss layers compute their cost and
   * delta; returns darknet's network cost (mean over loss layers of their summed loss),
   * or 0 without a truth. Only a training forward (`train`) clears the deltas, so
   * `backward` follows a training forward.
   */
  forward(train: boolean, withTruth: boolean): number {
    const net = this.state(train, withTruth);
    for (const l of this.layers) {
      // backward adds into the deltas; inference never reads them
      if (train) this.k.fill(l.delta, 0);
      l.forward(net);
      net.input = l.output;
    }
    let sum = 0;
    let count = 0;
    for (const l of this.layers) {
      if (l.cost !== undefined) {
        sum += l.cost;
        count++;
      }
    }
    return count ? sum / count : 0;
  }

  /**
   * Reverse pass; a layer with stopbackward ends it (darknet's backward_network).
   * `beforeLayer(i)` runs when layer i's delta is complete (every later layer has added into
   * it) and before layer i's own backward changes it in place: where a criterion reads
   * activation x gradient (prune/channels/criteria.ts).
   */
  backward(beforeLayer?: (i: number) => void): void {
    const net = this.state(true, true);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const l = this.layers[i];
      if (l.spec.stopbackward) break;
      beforeLayer?.(i);
      const prev = i > 0 ? this.layers[i - 1] : null;
      net.input = prev ? prev.output : this.input;
      net.delta = prev ? prev.delta : null;
      l.backward(net);
    }
  }

  /** One SGD step on every layer with the current rate (darknet's update_network). */
  update(): void {
    const args = {
      learningRate: this.currentRate(),
      momentum: this.config.momentum,
      decay: this.config.decay,
      batch: this.batch * this.config.subdivisions,
      scaleL1: this.slim,
    };
    for (const l of this.layers) l.update?.(args);
  }

  /**
   * darknet's train_network_datum for one pass of `batch` images: seen += batch,
   * forward, backward, and an update when a whole batch (all subdivisions) is in.
   * Returns the loss per image.
   * @param x `[batch, inputs]` @param y `[batch, outputs]` (one-hot for classifiers)
   */
  trainBatch(x: ArrayLike<number>, y: ArrayLike<number>): number {
    this.k.upload(this.input, x);
    this.k.upload(this.truth, y);
    this.seen += this.batch;
    const cost = this.forward(true, true);
    this.backward();
    // NOTE: darknet tests (seen / batch) % subdivisions, which never holds again once a
    // loaded file's seen is not a multiple of the batch (seen = 5, or darknet's own
    // lenet.weights at another batch): every pass would run and no update ever apply.
    // Counting passes here updates after every `subdivisions` passes whatever seen is.
    this.passes++;
    if (this.passes >= this.config.subdivisions) {
      this.passes = 0;
      this.update();
    }
    return cost / this.batch;
  }

  /** Inference on `[batch, inputs]`; returns `[batch, outputs]` of the last layer. */
  predict(x: ArrayLike<number>): FloatArray {
    this.k.upload(this.input, x);
    this.forward(false, false);
    return this.k.read(this.output);
  }

  /** Copies a weights file's arrays into the layers (layers it skips keep their values). */
  loadWeights(w: WeightsFile): void {
    if (w.layers.length !== this.layers.length) {
      throw new DarknetError(`weights are for ${w.layers.length} layers, the network has ${this.layers.length}`);
    }
    this.seen = w.header.seen;
    this.passes = 0;
    this.layers.forEach((l, i) => {
      for (const p of l.params) {
        const a = w.layers[i][p.name];
        if (a) this.k.upload(p.tensor, a);
      }
      l.paramsChanged?.();
    });
  }

  /** The network's parameters as a weights file (header: darknet's 0.2.0 unless given). */
  exportWeights(header: Omit<WeightsHeader, 'seen'> = DARKNET_HEADER): WeightsFile {
    return {
      header: { ...header, seen: this.seen },
      layers: this.layers.map((l) => {
        const out: WeightsFile['layers'][number] = {};
        for (const p of l.params) out[p.name] = Float32Array.from(this.k.read(p.tensor));
        return out;
      }),
    };
  }
}
