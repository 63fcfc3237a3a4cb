import { DarknetError } from '../errors';
import type { ImageSource } from '../data/loader';
import { fillInputs } from '../data/loader';
import type { Network } from './network';
import { silentReporter, type Reporter } from './reporter';
import { hierarchyPredictions, networkHierarchy } from '../layers/softmax';
import type { FloatArray } from '../kernels/types';

/**
 * Accuracy of a network over labelled images: darknet's validate_classifier_single,
 * batched (the last batch padded), top-1 and top-k. Works on objects only.
 */
export interface EvaluateOptions {
  /** top-k besides top-1 (default 1) */
  k?: number;
  reporter?: Reporter;
  /** the progress bar's label; no bar without one */
  label?: string;
  /** checked between batches */
  signal?: AbortSignal;
}

export interface Evaluation {
  count: number;
  top1: number;
  topK: number;
  k: number;
  /** predicted class of each image (top-1) */
  predictions: Int32Array;
  seconds: number;
}

/** Classes of one `[classes]` row, best first. */
export function rankRow(out: ArrayLike<number>, offset: number, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => c).sort((a, b) => out[offset + b] - out[offset + a]);
}

/**
 * The network's output as darknet's classifier verbs rank it: for a tree softmax
 * (darknet9000.cfg) the path products with inner entries zeroed (hierarchy_predictions),
 * on a copy of the first `rows` rows; else `out` itself.
 */
export function withHierarchy(net: Network, out: FloatArray, rows: number): FloatArray {
  const parents = networkHierarchy(net.spec.layers);
  if (!parents || parents.length !== net.outputs) return out;
  const copy = Float32Array.from(out);
  hierarchyPredictions(copy, parents, rows);
  return copy;
}

export async function evaluate(net: Network, source: ImageSource, o: EvaluateOptions = {}): Promise<Evaluation> {
  if (source.count === 0) throw new DarknetError('nothing to evaluate: the image list is empty');
  const classes = net.outputs;
  const k = Math.max(1, Math.min(o.k ?? 1, classes));
  const reporter = o.reporter ?? silentReporter;
  const inputs = net.config.inputs;
  const batch = net.batch;
  const predictions = new Int32Array(source.count);
  let top1 = 0;
  let topK = 0;
  const start = Date.now();
  const progress = o.label ? reporter.progress(o.label, source.count, 'img') : null;
  // The next batch is decoded while this one runs (two input buffers, one in flight).
  const buffers = [new Float32Array(batch * inputs), new Float32Array(batch * inputs)];
  const load = (s: number) => fillInputs(source, s, Math.min(batch, source.count - s), buffers[(s / batch) % 2], inputs);
  let pending = load(0);
  for (let s = 0; s < source.count; s += batch) {
    const n = Math.min(batch, source.count - s);
    await pending;
    if (s + batch < source.count) {
      pending = load(s + batch);
      pending.catch(() => undefined); // surfaces at its await
    }
    if (o.signal?.aborted) throw new DarknetError('evaluation interrupted');
    const out = withHierarchy(net, net.predict(buffers[(s / batch) % 2]), n);
    for (let j = 0; j < n; j++) {
      const ranked = rankRow(out, j * classes, classes);
      const truth = source.label(s + j);
      predictions[s + j] = ranked[0];
      if (ranked[0] === truth) top1++;
      if (ranked.slice(0, k).includes(truth)) topK++;
    }
    for (let j = 0; j < n * classes; j++) {
      if (!Number.isFinite(out[j])) throw new DarknetError(`the network's output is ${out[j]} for image ${source.name(s + Math.floor(j / classes))}: the weights hold NaN or infinite values`);
    }
    progress?.update(s + n, `top 1: ${(top1 / (s + n)).toFixed(4)}`);
  }
  progress?.finish(source.count);
  return { count: source.count, top1: top1 / source.count, topK: topK / source.count, k, predictions, seconds: (Date.now() - start) / 1000 };
}
