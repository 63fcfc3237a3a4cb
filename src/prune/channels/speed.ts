import type { NetworkSpec } from '../../cfg/config';
import { Network, withBatch } from '../../engine/network';
import { mulberry32 } from '../../engine/random';
import type { WeightsFile } from '../../io/weights';
import type { Kernels } from '../../kernels/types';

/**
 * Measured speed of a model on this machine, in memory: no image is decoded, so the numbers
 * are the network's alone (what `classifier train` and `valid` add on top is the data).
 * Inference runs the cfg's batch forward (inference mode); training runs forward, backward
 * and update on one fixed batch; latency is one image's forward pass at batch 1.
 */
export interface Speed {
  /** images per second of inference at the cfg's batch */
  inferImagesPerSecond: number;
  /** images per second of training (forward + backward + update) at the cfg's batch */
  trainImagesPerSecond: number;
  /** milliseconds of one image's forward pass at batch 1 */
  latencyMs: number;
}

export interface SpeedOptions {
  /** passes timed per measurement at least (after one untimed warm-up pass); default 5 */
  passes?: number;
  /** ... and keep going until this many seconds have passed; default 0.3 */
  seconds?: number;
  /** which measurements to take (the others are NaN); default all three */
  only?: ReadonlyArray<keyof Speed>;
  seed?: number;
}

/** Seconds per call of `f`: one warm-up call, then at least `passes` calls and `seconds` seconds. */
function timePerCall(f: () => void, passes: number, seconds: number): number {
  f();
  const start = process.hrtime.bigint();
  let calls = 0;
  let elapsed = 0;
  while (calls < passes || elapsed < seconds) {
    f();
    calls++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  return elapsed / calls;
}

/**
 * @example
 *   const s = measureSpeed(small.spec, small.weights, kernels);
 *   // { inferImagesPerSecond: 21000, trainImagesPerSecond: 9000, latencyMs: 0.12 }
 */
export function measureSpeed(spec: NetworkSpec, weights: WeightsFile, k: Kernels, o: SpeedOptions = {}): Speed {
  const passes = o.passes ?? 5;
  const seconds = o.seconds ?? 0.3;
  const want = new Set<keyof Speed>(o.only ?? ['inferImagesPerSecond', 'trainImagesPerSecond', 'latencyMs']);
  const random = mulberry32(o.seed ?? 1);
  const batch = spec.net.batch;
  const classes = spec.layers[spec.layers.length - 1].outputs;
  const x = Float32Array.from({ length: batch * spec.net.inputs }, () => random());
  const y = new Float32Array(batch * classes);
  for (let b = 0; b < batch; b++) y[b * classes + Math.floor(random() * classes)] = 1;

  const run = (s: NetworkSpec, f: (net: Network) => () => void): number => {
    const net = new Network(s, k, { seed: o.seed });
    try {
      net.loadWeights(weights);
      return timePerCall(f(net), passes, seconds);
    } finally {
      net.dispose();
    }
  };
  const result: Speed = { inferImagesPerSecond: NaN, trainImagesPerSecond: NaN, latencyMs: NaN };
  if (want.has('inferImagesPerSecond')) {
    result.inferImagesPerSecond = batch / run(spec, (net) => () => net.predict(x));
  }
  if (want.has('trainImagesPerSecond')) {
    // NOTE: the training network changes its own copy of the weights; nothing is read back.
    result.trainImagesPerSecond = batch / run(spec, (net) => () => net.trainBatch(x, y));
  }
  if (want.has('latencyMs')) {
    const one = x.subarray(0, spec.net.inputs);
    result.latencyMs = 1000 * run(withBatch(spec, 1), (net) => () => net.predict(one));
  }
  return result;
}

/** `12,345 img/s`-style text for reports. */
export function formatRate(imagesPerSecond: number): string {
  return Number.isFinite(imagesPerSecond) ? `${Math.round(imagesPerSecond).toLocaleString('en-US')} img/s` : '-';
}
