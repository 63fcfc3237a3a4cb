import * as fs from 'fs';
import type { NetworkSpec } from '../cfg/config';
import { readCfg } from '../cfg/parser';
import { decodeDcw, modelToWeights, readDcw, readWeightsOrDcw, writeDcw } from '../compress/dcw';
import { finetuneCentroids } from '../compress/finetune';
import type { LayerCode } from '../compress/kmeans';
import { compressedModel, kmeansModel, parseWidths, sharedWeights } from '../compress/quantize';
import { compressionReport, formatCompression, type CompressionReport } from '../compress/report';
import { augmentationOf } from '../data/augment';
import type { DataConfig } from '../data/dataset';
import { TrainBatches, type ImageSource } from '../data/loader';
import { evaluate } from '../engine/evaluate';
import { applyMasks, masksFromZeros } from '../engine/masks';
import { mulberry32 } from '../engine/random';
import { indented, silentReporter, type Reporter } from '../engine/reporter';
import { DarknetError } from '../errors';
import { checkWritableFile } from '../io/files';
import { serializeWeights, type WeightsFile } from '../io/weights';
import type { BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { integer, MAX_COUNT, real } from './args';
import { Interrupted, withInterrupt } from './interrupt';
import {
  buildNetwork, loadClassifierSpec, loadKernels, readDataConfig, requireFinite, saveWeights, shapeOf, trainSource, validSource, withBatch,
} from './load';
import { reporterOf, verb } from './verb';

/**
 * `compress`: Deep Compression of a pruned model into a .dcw file (k-means weight sharing,
 * optional fine-tuning of the shared values, Huffman-coded storage), with the paper's
 * per-layer table and top-1 after each stage; `decompress`: a .dcw back to a darknet
 * .weights. The command reads its files once; the work is src/compress on objects.
 */
export interface CompressCommand {
  dataFile: string;
  cfgFile: string;
  /** the pruned model (.weights, or a .dcw to compress again) */
  weights: string;
  out: string;
  /** codebook index bits per layer, e.g. `conv=8,fc=5` */
  bits: string;
  /** relative index bits per layer, e.g. `conv=8,fc=5` */
  indexBits: string;
  /** batches of centroid fine-tuning on the .data file's train list (0: none) */
  finetuneBatches: number;
  /** the fine-tuning learning rate = this x the cfg's learning_rate */
  lrScale: number;
  /** evaluate on the first N valid images (default: all) */
  evalImages?: number;
  /** Lloyd iterations of k-means after the linear initialisation (default 300: converged) */
  kmeansIterations?: number;
  /** evaluate top-1 after each stage (default true) */
  evaluate?: boolean;
  seed?: number;
  backend?: BackendChoice;
  kernels?: Kernels;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** tests: images to evaluate / fine-tune on instead of the .data file's lists */
  evalSource?: ImageSource;
  trainSource?: ImageSource;
}

export const DEFAULT_BITS = 'conv=8,fc=5';
export const DEFAULT_INDEX_BITS = 'conv=8,fc=5';

export async function compressCommand(o: CompressCommand): Promise<CompressionReport> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const spec = loadClassifierSpec(o.cfgFile, data.classes, reporter);
  // Every option and path is checked before any work.
  const widths = parseWidths(o.bits, o.indexBits, spec);
  checkWritableFile(o.out);
  const pruned = readWeightsOrDcw(o.weights, spec);
  requireFinite(pruned, spec, o.weights);

  let codes = kmeansModel(spec, pruned, widths, { maxIterations: o.kmeansIterations });
  const quantized = sharedWeights(pruned, codes);
  reporter.info(`k-means: ${[...codes].map(([i, c]) => `${i}: ${c.centroids.length} shared values`).join(', ')}`);

  const evaluating = o.evaluate ?? true;
  const needsKernels = evaluating || o.finetuneBatches > 0;
  const k = needsKernels ? (o.kernels ?? (await loadKernels(o.backend, reporter))) : undefined;
  const evalNet = k && evaluating ? buildNetwork(withBatch(spec, spec.net.batch), k, undefined, o.seed) : undefined;
  try {
    const evalSource = evalNet ? (o.evalSource ?? validSource(data, spec, o.evalImages)) : undefined;
    const top1 = async (w: WeightsFile, stage: string): Promise<number | undefined> => {
      if (!evalNet || !evalSource) return undefined;
      evalNet.loadWeights(w);
      const r = (await evaluate(evalNet, evalSource, { reporter, label: stage, signal: o.signal })).top1;
      reporter.info(`${stage}: top-1 ${(100 * r).toFixed(2)}%`);
      return r;
    };
    const report: CompressionReport['top1'] = {};
    report.pruned = await top1(pruned, 'pruned (input)');
    report.quantized = await top1(quantized, 'quantised');

    let final = quantized;
    if (o.finetuneBatches > 0) {
      const tuned = await finetune(spec, data, k!, pruned, codes, o, reporter);
      codes = tuned.codes;
      final = tuned.weights;
      report.finetuned = await top1(final, 'fine-tuned');
    }

    const model = compressedModel(spec, final, codes, widths);
    const written = writeDcw(o.out, model, spec);
    // The file as written, read back: it must hold exactly the model evaluated above.
    const back = readDcw(o.out, spec);
    checkSame(back, modelToWeights(model, spec), o.out);
    report.dcw = await top1(back, '.dcw');
    const result = compressionReport(spec, pruned, written.sections, { weights: serializeWeights(pruned, spec).length, dcw: written.bytes }, widths);
    result.top1 = report;
    result.evalImages = evalSource?.count;
    return result;
  } finally {
    evalNet?.dispose();
  }
}

/** Centroid fine-tuning on the train list; the weights that come back are the shared values. */
async function finetune(
  spec: NetworkSpec,
  data: DataConfig,
  k: Kernels,
  pruned: WeightsFile,
  codes: Map<number, LayerCode>,
  o: CompressCommand,
  reporter: Reporter,
): Promise<{ codes: Map<number, LayerCode>; weights: WeightsFile }> {
  const trainSpec: NetworkSpec = { ...spec, net: { ...spec.net, learningRate: spec.net.learningRate * o.lrScale, maxBatches: o.finetuneBatches } };
  const net = buildNetwork(trainSpec, k, undefined, o.seed);
  try {
    net.loadWeights(pruned);
    applyMasks(net, masksFromZeros(net, pruned));
    net.seen = 0; // the schedule (poly decays to max_batches) runs over the fine-tuning alone
    const source = o.trainSource ?? trainSource(data, spec);
    const batches = new TrainBatches(source, net.batch, data.classes, shapeOf(spec), mulberry32((o.seed ?? 1) + 7919), augmentationOf(spec.net, false), (m) =>
      reporter.warn(m),
    );
    reporter.info(`fine-tuning the shared values: ${o.finetuneBatches} batches at learning rate ${trainSpec.net.learningRate}`);
    const r = await finetuneCentroids(net, codes, batches, {
      maxBatches: o.finetuneBatches,
      epochSize: source.count,
      signal: o.signal,
      logEvery: Math.max(1, Math.floor(o.finetuneBatches / 5)),
      reporter: indented(reporter),
      label: 'fine-tune',
    });
    if (r.outcome.interrupted) throw new Interrupted(`interrupted while fine-tuning at batch ${r.outcome.lastBatch} of ${o.finetuneBatches}; nothing was written`, null);
    const weights = net.exportWeights(pruned.header);
    weights.header = { ...pruned.header };
    return { codes: r.codes, weights };
  } finally {
    net.dispose();
  }
}

/** Bit-for-bit equality of two weights files (NOTE: -0 and +0 differ here, as in the file). */
function checkSame(a: WeightsFile, b: WeightsFile, file: string): void {
  a.layers.forEach((l, i) => {
    for (const [name, x] of Object.entries(l)) {
      const y = b.layers[i][name as keyof typeof l];
      const same = y !== undefined && x.length === y.length && Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
      if (!same) throw new Error(`${file}: layer ${i} ${name} read back differs from what was written`);
    }
  });
}

// ---------------------------------------------------------------------------------------
// The verbs

export const compress = verb({
  command: 'compress <data> <cfg> <weights> <out>',
  describe: 'Deep Compression of a pruned model: k-means weight sharing, fine-tuning of the shared values, Huffman coding, into a .dcw file',
  builder: (y) =>
    y
      .positional('data', { type: 'string', demandOption: true, describe: 'darknet .data file (train list for fine-tuning, valid list for top-1)' })
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', demandOption: true, describe: 'the pruned model (.weights or .dcw)' })
      .positional('out', { type: 'string', demandOption: true, describe: 'the .dcw file to write' })
      .option('bits', { type: 'string', default: DEFAULT_BITS, describe: 'codebook index bits (2^bits - 1 shared values + zero) per layer type or layer: conv=8,fc=5,fc3=6' })
      .option('index-bits', { type: 'string', default: DEFAULT_INDEX_BITS, describe: 'bits of a relative position (zeros skipped; filler zeros bridge longer gaps), same keys' })
      .option('finetune-batches', { type: 'string', default: '0', coerce: integer('finetune-batches', { min: 0, max: MAX_COUNT }), describe: 'batches of fine-tuning the shared values on the train list (0: none)' })
      .option('lr-scale', { type: 'string', default: '0.01', coerce: real('lr-scale', { min: 0, max: 100, exclusiveMin: true }), describe: "fine-tuning learning rate = this x the cfg's learning_rate (a centroid moves by the sum of its weights' steps)" })
      .option('eval-images', { type: 'string', coerce: integer('eval-images', { min: 1, max: MAX_COUNT }), describe: 'evaluate top-1 on the first N valid images (default: all)' })
      .option('kmeans-iterations', { type: 'string', default: '300', coerce: integer('kmeans-iterations', { min: 0, max: 100000 }), describe: 'Lloyd iterations after the linear initialisation (0: linear spacing kept)' })
      .option('eval', { type: 'boolean', default: true, describe: 'evaluate top-1 after each stage (--no-eval skips it)' })
      .option('seed', { type: 'string', default: '1', coerce: integer('seed', { min: 0, max: 2 ** 32 - 1 }) }),
  async run(args, io) {
    const report = await withInterrupt((l) => io.err(`${l}\n`), async (i) => {
      try {
        return await compressCommand({
          dataFile: args.data, cfgFile: args.cfg, weights: args.weights, out: args.out, bits: args.bits, indexBits: args['index-bits'],
          finetuneBatches: args['finetune-batches'], lrScale: args['lr-scale'], evalImages: args['eval-images'], evaluate: args.eval, kmeansIterations: args['kmeans-iterations'],
          seed: args.seed, backend: args.backend, reporter: reporterOf(io), signal: i.signal,
        });
      } catch (e) {
        if (e instanceof Interrupted) throw new Interrupted(e.message, i.received);
        throw e;
      }
    });
    io.out(formatCompression(report));
    io.out(`wrote ${args.out}\n`);
  },
});

export const decompress = verb({
  command: 'decompress <cfg> <in> <out>',
  describe: 'a .dcw back to a darknet .weights (every weight its shared value, zeros exact)',
  builder: (y) =>
    y
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file the .dcw was made for' })
      .positional('in', { type: 'string', demandOption: true, describe: 'the .dcw file' })
      .positional('out', { type: 'string', demandOption: true, describe: 'the .weights file to write' }),
  run(args, io) {
    const spec = readCfg(args.cfg);
    for (const w of spec.warnings) io.err(`warning: ${w}\n`);
    checkWritableFile(args.out);
    const bytes = readFile(args.in);
    const model = decodeDcw(bytes, spec, args.in);
    const weights = modelToWeights(model, spec);
    saveWeights(args.out, weights, spec);
    let nonzero = 0;
    let total = 0;
    for (const l of weights.layers) {
      if (!l.weights) continue;
      total += l.weights.length;
      for (const w of l.weights) if (w !== 0) nonzero++;
    }
    io.out(`wrote ${args.out}: ${spec.layers.length} layers, seen ${weights.header.seen}, ${nonzero} non-zero weights of ${total} ` +
      `(${bytes.length} bytes -> ${fs.statSync(args.out).size} bytes)\n`);
  },
});

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new DarknetError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}
