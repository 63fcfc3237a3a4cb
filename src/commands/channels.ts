import * as fs from 'fs';
import type { NetworkSpec } from '../cfg/config';
import { parseCfg, readCfg } from '../cfg/parser';
import { augmentationOf } from '../data/augment';
import { TrainBatches, type ImageSource } from '../data/loader';
import { mulberry32 } from '../engine/random';
import { silentReporter, type Reporter } from '../engine/reporter';
import type { BatchSource } from '../engine/train';
import { DarknetError } from '../errors';
import { atomicWrite, checkWritableFile } from '../io/files';
import type { WeightsFile } from '../io/weights';
import type { BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import {
  CRITERIA, formatChannelReport, hostScores, modelSize, parseLayerKeep, pruneChannels, taylorScores,
  type ChannelScores, type Criterion, type KeepRule, type PruneChannelsResult,
} from '../prune/channels';
import type { Side } from '../prune/channels/report';
import { integer, MAX_COUNT, real } from './args';
import {
  buildNetwork, loadKernels, loadWeights, readDataConfig, requireFinite, saveWeights, shapeOf, trainSource,
} from './load';
import { reporterOf, verb } from './verb';

/**
 * `prune channels`: one-shot structured pruning that writes a smaller darknet model,
 * `<out>.cfg` (the original text with only filters= / output= changed) and `<out>.weights`.
 * The command reads the files once, scores the filters (l1 and bn from the weights alone;
 * taylor from a few training batches of the .data file's images), plans, cuts, writes, and
 * prints dense -> shrunk per layer with parameters, FLOPs and bytes on disk.
 */
export interface ChannelsCommand {
  cfgFile: string;
  weightsFile: string;
  /** `<out>.cfg` and `<out>.weights` are written */
  out: string;
  /** exactly one of: the fraction every layer keeps, per-layer fractions (`conv1=0.5,fc1=0.25`), a FLOPs budget */
  keep?: number;
  layerKeep?: string;
  flops?: number;
  criterion: Criterion;
  roundTo?: number;
  /** taylor: the .data file whose training images are scored on */
  dataFile?: string;
  /** taylor: training batches (of the cfg's batch) to average over */
  batches?: number;
  seed?: number;
  backend?: BackendChoice;
  reporter?: Reporter;
  /** tests: kernels and training images instead of --backend and the .data file's list */
  kernels?: Kernels;
  trainSource?: ImageSource;
}

export interface ChannelsOutcome {
  result: PruneChannelsResult;
  rule: KeepRule;
  dense: Side;
  shrunk: Side;
  cfgOut: string;
  weightsOut: string;
}

/** `small`, `small.cfg` or `small.weights` -> the two files written. */
export function outputFiles(out: string): { cfg: string; weights: string } {
  const stem = out.replace(/\.(cfg|weights)$/, '');
  return { cfg: `${stem}.cfg`, weights: `${stem}.weights` };
}

export async function channelsCommand(o: ChannelsCommand): Promise<ChannelsOutcome> {
  const reporter = o.reporter ?? silentReporter;
  const given = ([['keep', o.keep], ['layer-keep', o.layerKeep], ['flops', o.flops]] as const).filter(([, v]) => v !== undefined).map(([k]) => `--${k}`);
  if (given.length !== 1) throw new DarknetError(`prune channels: give exactly one of --keep, --layer-keep, --flops (got ${given.length ? given.join(', ') : 'none'})`);
  if (o.criterion === 'taylor' && o.dataFile === undefined && !o.trainSource) {
    throw new DarknetError('--criterion taylor scores filters on training images: add --data <.data file>');
  }
  if (o.criterion !== 'taylor' && o.dataFile !== undefined) {
    throw new DarknetError(`--data is read by --criterion taylor only (now --criterion ${o.criterion})`);
  }
  const files = outputFiles(o.out);
  for (const f of [files.cfg, files.weights]) {
    if (f === o.cfgFile || f === o.weightsFile) throw new DarknetError(`${f}: the output would overwrite an input; choose another <out>`);
    checkWritableFile(f);
  }
  const cfgText = readText(o.cfgFile);
  const spec = parseCfg(cfgText, o.cfgFile);
  for (const w of spec.warnings) reporter.warn(w);
  const classes = spec.layers[spec.layers.length - 1].outputs;
  const data = o.dataFile !== undefined ? readDataConfig(o.dataFile) : undefined;
  if (data && data.classes !== classes) {
    throw new DarknetError(`${o.cfgFile}: the last layer has ${classes} outputs but ${o.dataFile} says classes=${data.classes}`);
  }
  const rule: KeepRule = o.keep !== undefined ? { kind: 'uniform', keep: o.keep }
    : o.flops !== undefined ? { kind: 'flops', fraction: o.flops }
      : { kind: 'layers', keep: parseLayerKeep(o.layerKeep!, spec) };
  const weights = loadWeights(o.weightsFile, spec);
  requireFinite(weights, spec, o.weightsFile);

  let scores: ChannelScores;
  if (o.criterion === 'taylor') {
    scores = await taylorOnData(spec, weights, o, classes, reporter, () => trainSource(data!, spec));
  } else {
    const h = hostScores(o.criterion, spec, weights);
    for (const n of h.notes) reporter.warn(n);
    scores = h.scores;
  }

  const result = pruneChannels(cfgText, spec, weights, { rule, scores, roundTo: o.roundTo, file: files.cfg });
  for (const n of result.notes) reporter.warn(n);
  if (result.changes.length === 0) reporter.warn('no filter was removed: the shrunk model is the dense one');
  atomicWrite(files.cfg, result.cfgText);
  saveWeights(files.weights, result.weights, result.spec);
  // The report counts the files as written: the new cfg parsed again, the weights read back.
  const written = readCfg(files.cfg);
  const writtenWeights = loadWeights(files.weights, written);
  return {
    result,
    rule,
    dense: { spec, size: { ...modelSize(spec, weights), bytes: fs.statSync(o.weightsFile).size } },
    shrunk: { spec: written, size: { ...modelSize(written, writtenWeights), bytes: fs.statSync(files.weights).size } },
    cfgOut: files.cfg,
    weightsOut: files.weights,
  };
}

/** Taylor scores from `batches` training batches, on a network built on the chosen backend. */
async function taylorOnData(
  spec: NetworkSpec, weights: WeightsFile, o: ChannelsCommand, classes: number, reporter: Reporter, listSource: () => ImageSource,
): Promise<ChannelScores> {
  const k = o.kernels ?? (await loadKernels(o.backend, reporter));
  const net = buildNetwork(spec, k, weights, o.seed);
  const source = o.trainSource ?? listSource();
  try {
    const seed = o.seed ?? 1;
    const batches: BatchSource = new TrainBatches(source, net.batch, classes, shapeOf(spec), mulberry32(seed + 7919), augmentationOf(spec.net, false), (m) => reporter.warn(m));
    const count = o.batches ?? 10;
    reporter.info(`taylor: scoring filters on ${count} batches of ${net.batch} training images`);
    return (await taylorScores(net, batches, count)).scores;
  } finally {
    net.dispose();
    if (!o.trainSource) await source.close?.();
    if (!o.kernels) k.dispose();
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DarknetError(`${file}: cannot read cfg file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

export const channels = verb({
  command: 'channels <cfg> <weights> <out>',
  describe: 'remove whole filters and neurons: write a smaller darknet model, <out>.cfg and <out>.weights',
  builder: (y) =>
    y
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .positional('out', { type: 'string', demandOption: true, describe: 'writes <out>.cfg and <out>.weights' })
      .option('keep', { type: 'string', coerce: real('keep', { min: 0, max: 1, exclusiveMin: true }), describe: 'keep this fraction of the filters of every conv and connected layer but the last' })
      .option('layer-keep', { type: 'string', describe: 'per-layer fractions to keep, by index or name, e.g. conv1=0.5,fc1=0.25' })
      .option('flops', { type: 'string', coerce: real('flops', { min: 0, max: 1, exclusiveMin: true }), describe: 'keep the same fraction of every layer, the largest whose FLOPs are at most this x dense' })
      .option('criterion', { choices: CRITERIA, default: 'l1' as Criterion, describe: 'rank filters by L1 of their weights, batch-norm |gamma|, or Taylor |activation x gradient| (needs --data)' })
      .option('round-to', { type: 'string', default: '1', coerce: integer('round-to', { min: 1, max: 1024 }), describe: 'kept filters a multiple of this (4 or 8 suit SIMD kernels)' })
      .option('data', { type: 'string', describe: 'with --criterion taylor: the .data file whose training images are scored on' })
      .option('batches', { type: 'string', default: '10', coerce: integer('batches', { min: 1, max: MAX_COUNT }), describe: 'with --criterion taylor: training batches to average over' })
      .option('seed', { type: 'string', default: '1', coerce: integer('seed', { min: 0, max: 2 ** 32 - 1 }) }),
  async run(args, io) {
    const r = await channelsCommand({
      cfgFile: args.cfg, weightsFile: args.weights, out: args.out, keep: args.keep, layerKeep: args['layer-keep'], flops: args.flops,
      criterion: args.criterion as Criterion, roundTo: args['round-to'], dataFile: args.data, batches: args.batches, seed: args.seed,
      backend: args.backend, reporter: reporterOf(io),
    });
    const how = r.rule.kind === 'flops'
      ? `, every layer keeping ${(100 * r.result.keep!).toFixed(1)}% (uniform, the most that fits --flops ${r.rule.fraction})`
      : '';
    io.out(formatChannelReport(r.dense, r.shrunk));
    io.out(`criterion ${args.criterion}${how}\nwrote ${r.cfgOut} and ${r.weightsOut}\n`);
  },
});
