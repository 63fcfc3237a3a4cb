import * as fs from 'fs';
import * as path from 'path';
import type { NetworkSpec } from '../cfg/config';
import { parseCfg, readCfg } from '../cfg/parser';
import { augmentationOf } from '../data/augment';
import { TrainBatches, type ImageSource } from '../data/loader';
import { mulberry32 } from '../engine/random';
import { silentReporter, type Reporter } from '../engine/reporter';
import type { BatchSource } from '../engine/train';
import { DarknetError } from '../errors';
import { atomicWrite, checkOutputDir, checkWritableFile } from '../io/files';
import type { WeightsFile } from '../io/weights';
import type { BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import {
  CRITERIA, formatChannelReport, hostScores, modelSize, parseLayerKeep, pruneChannels, taylorScores, TIE_RULES,
  type ChannelScores, type Criterion, type KeepRule, type PruneChannelsResult, type TieRule,
} from '../prune/channels';
import { blockLayers, lowestBlocks, removeBlocks, residualBlocks, scoreBlocks, type BlockScore, type RemovedBlock } from '../prune/channels/blocks';
import { evaluatorOn, formatBudget, planForBudget, type BudgetResult } from '../prune/channels/budget';
import { channelGraph } from '../prune/channels/graph';
import { layerName } from '../prune/channels/layers';
import { channelLoop, formatChannelRound, type ChannelRoundResult, type ChannelTarget } from '../prune/channels/loop';
import {
  channelAccuracyChart, channelFiltersChart, channelReportCsv, channelSpeedChart, type ChannelPruneReport, type Side,
} from '../prune/channels/report';
import { Interrupted } from './interrupt';
import { integer, MAX_COUNT, real } from './args';
import {
  buildNetwork, closeSource, loadClassifierSpec, loadKernels, loadWeights, readDataConfig, requireFinite, saveWeights, shapeOf, trainSource, validSource,
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
  /** remove this many residual blocks (a [shortcut] and its branch), lowest-scored first, before any filter */
  layers?: number;
  /** exactly one of (or, with `layers`, at most one): the fraction every layer keeps, per-layer fractions (`conv1=0.5,fc1=0.25`), a FLOPs budget */
  keep?: number;
  layerKeep?: string;
  flops?: number;
  /** batch-1 latency budget in ms (greedy, measured) */
  latencyMs?: number;
  /** --flops: the same fraction for every layer instead of greedy per-layer ratios */
  uniform?: boolean;
  /** greedy budgets: validation images the sensitivity scan evaluates on (default 1000) */
  scanImages?: number;
  criterion: Criterion;
  roundTo?: number;
  /** filters tied by a [shortcut]: see planChannels (default union) */
  tie?: TieRule;
  /** taylor: the .data file whose training images are scored on; greedy budgets: its validation images */
  dataFile?: string;
  /** taylor: training batches (of the cfg's batch) to average over */
  batches?: number;
  seed?: number;
  backend?: BackendChoice;
  reporter?: Reporter;
  /** tests: kernels and training / validation images instead of --backend and the .data file's lists */
  kernels?: Kernels;
  trainSource?: ImageSource;
  evalSource?: ImageSource;
}

export interface ChannelsOutcome {
  result: PruneChannelsResult;
  rule: KeepRule;
  /** --layers: the residual blocks removed (layer numbers of the input cfg), their scores and whether the fold was exact */
  blocks?: Array<BlockScore & { removed: RemovedBlock }>;
  /** when layers were removed: per layer of the input cfg, its index in the written one, or -1 */
  layerMap?: number[];
  /** greedy budgets: the scan and the ratios chosen */
  budget?: BudgetResult;
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
  const given = ([['keep', o.keep], ['layer-keep', o.layerKeep], ['flops', o.flops], ['latency-ms', o.latencyMs]] as const).filter(([, v]) => v !== undefined).map(([k]) => `--${k}`);
  if (o.layers !== undefined ? given.length > 1 : given.length !== 1) {
    throw new DarknetError(`prune channels: give ${o.layers !== undefined ? 'at most one of --keep, --layer-keep, --flops, --latency-ms with --layers' : 'exactly one of --keep, --layer-keep, --flops, --latency-ms, or --layers'} (got ${given.length ? given.join(', ') : 'none'})`);
  }
  if (o.uniform && o.flops === undefined) throw new DarknetError('--uniform goes with --flops (the same fraction for every layer)');
  const greedy = o.latencyMs !== undefined || (o.flops !== undefined && !o.uniform);
  if (greedy && o.dataFile === undefined && !o.evalSource) {
    throw new DarknetError(`${given[0]} picks per-layer ratios from a sensitivity scan on validation images: add --data <.data file>` +
      (o.flops !== undefined ? ', or --uniform for the same fraction in every layer' : ''));
  }
  if (o.criterion === 'taylor' && o.dataFile === undefined && !o.trainSource) {
    throw new DarknetError('--criterion taylor scores filters on training images: add --data <.data file>');
  }
  if (o.criterion !== 'taylor' && !greedy && o.dataFile !== undefined) {
    throw new DarknetError(`--data is read by --criterion taylor and by the greedy budgets (--flops without --uniform, --latency-ms) only`);
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
  const layerKeep = o.layerKeep !== undefined ? parseLayerKeep(o.layerKeep, spec) : new Map<number, number>();
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

  // --layers: the blocks go first; the filters are then chosen in the network without them
  const denseFlops = spec.layers.reduce((s, l) => s + l.flops, 0);
  let model = { cfgText, spec, weights, scores, layerKeep, flops: o.flops };
  let blocks: ChannelsOutcome['blocks'];
  let blockMap: number[] | undefined;
  if (o.layers !== undefined) {
    const chosen = lowestBlocks(spec, scoreBlocks(spec, weights, residualBlocks(spec), o.criterion, scores), o.layers);
    const cut = removeBlocks(cfgText, spec, weights, chosen.map((c) => ({ block: c.block })), { file: files.cfg });
    for (const n of cut.notes) reporter.warn(n);
    blocks = chosen.map((c, k) => ({ ...c, removed: cut.removed[k] }));
    blockMap = cut.layerMap;
    const moved = new Map<number, number>();
    for (const [l, keep] of layerKeep) {
      if (cut.layerMap[l] < 0) throw new DarknetError(`--layer-keep: ${layerName(spec, l)} is inside a residual block --layers ${o.layers} removes`);
      moved.set(cut.layerMap[l], keep);
    }
    const cutFlops = cut.spec.layers.reduce((s, l) => s + l.flops, 0);
    model = {
      cfgText: cut.cfgText, spec: cut.spec, weights: cut.weights, layerKeep: moved,
      scores: new Map([...scores].filter(([l]) => cut.layerMap[l] >= 0).map(([l, v]) => [cut.layerMap[l], v])),
      // --flops is of the dense model: what is left of it after the blocks
      flops: o.flops === undefined ? undefined : Math.min(1, (o.flops * denseFlops) / cutFlops),
    };
  }
  let rule: KeepRule = o.keep !== undefined ? { kind: 'uniform', keep: o.keep }
    : model.flops !== undefined && o.uniform ? { kind: 'flops', fraction: model.flops }
      : { kind: 'layers', keep: model.layerKeep };

  let budget: BudgetResult | undefined;
  if (greedy) {
    budget = await greedyBudget(model.cfgText, model.spec, model.weights, model.scores, { ...o, flops: model.flops }, reporter, () => validSource(data!, spec, o.scanImages ?? 1000));
    rule = { kind: 'layers', keep: budget.ratios };
  }
  const result = pruneChannels(model.cfgText, model.spec, model.weights, { rule, scores: model.scores, roundTo: o.roundTo, tie: o.tie, file: files.cfg });
  for (const n of result.notes) reporter.warn(n);
  if (result.changes.length === 0 && !blocks && !result.layerMap) reporter.warn('no filter was removed: the shrunk model is the dense one');
  const layerMap = composeLayerMaps(blockMap, result.layerMap);
  if (blockMap) {
    // the changes as layers of the input cfg
    const back: number[] = [];
    blockMap.forEach((to, from) => { if (to >= 0) back[to] = from; });
    result.changes = result.changes.map((c) => ({ ...c, index: back[c.index], name: layerName(spec, back[c.index]) }));
    result.blocks = result.blocks?.map((b) => ({ ...b, from: back[b.from], shortcut: back[b.shortcut] }));
  }
  atomicWrite(files.cfg, result.cfgText);
  saveWeights(files.weights, result.weights, result.spec);
  // The report counts the files as written: the new cfg parsed again, the weights read back.
  const written = readCfg(files.cfg);
  const writtenWeights = loadWeights(files.weights, written);
  return {
    result,
    rule,
    blocks,
    layerMap,
    budget,
    dense: { spec, size: { ...modelSize(spec, weights), bytes: fs.statSync(o.weightsFile).size } },
    shrunk: { spec: written, size: { ...modelSize(written, writtenWeights), bytes: fs.statSync(files.weights).size } },
    cfgOut: files.cfg,
    weightsOut: files.weights,
  };
}

/** input -> middle -> output layer indexes (-1: removed), or undefined when no layer was removed. */
function composeLayerMaps(first: number[] | undefined, second: number[] | undefined): number[] | undefined {
  if (!first) return second;
  if (!second) return first;
  return first.map((i) => (i < 0 ? -1 : second[i]));
}

/** The greedy per-layer ratios for --flops / --latency-ms, from a scan on the first validation images. */
async function greedyBudget(
  cfgText: string, spec: NetworkSpec, weights: WeightsFile, scores: ChannelScores, o: ChannelsCommand, reporter: Reporter, listSource: () => ImageSource,
): Promise<BudgetResult> {
  const k = o.kernels ?? (await loadKernels(o.backend, reporter));
  const source = o.evalSource ?? listSource();
  try {
    reporter.info(`sensitivity scan: each layer alone at each keep level, top-1 on ${Math.min(source.count, o.scanImages ?? 1000)} validation images`);
    return await planForBudget(cfgText, spec, weights, channelGraph(spec), {
      flops: o.latencyMs === undefined ? o.flops : undefined, latencyMs: o.latencyMs, scores, kernels: k, roundTo: o.roundTo, tie: o.tie, reporter,
      evaluator: evaluatorOn(k, o.evalSource ? firstImages(source, o.scanImages ?? 1000) : source),
    });
  } finally {
    if (!o.evalSource) await closeSource(source);
    if (!o.kernels) k.dispose();
  }
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
      .option('layers', { type: 'string', coerce: integer('layers', { min: 1, max: MAX_COUNT }), describe: 'remove this many whole residual blocks (a [shortcut] and the layers it bypasses), lowest --criterion score first (bn: mean |gamma|; l1: mean L1 of the filters), renumbering routes and shortcuts; the blocks\' constant output is folded into their readers. Alone or with one of --keep, --layer-keep, --flops' })
      .option('keep', { type: 'string', coerce: real('keep', { min: 0, max: 1, exclusiveMin: true }), describe: 'keep this fraction of the filters of every conv and connected layer but the last' })
      .option('layer-keep', { type: 'string', describe: 'per-layer fractions to keep, by index or name, e.g. conv1=0.5,fc1=0.25; 0 removes a conv inside a residual branch with its block (refused, with the reason, elsewhere)' })
      .option('flops', { type: 'string', coerce: real('flops', { min: 0, max: 1, exclusiveMin: true }), describe: 'FLOPs at most this x dense: per-layer ratios from a sensitivity scan on --data\'s validation images (greedy: least top-1 lost per FLOP saved)' })
      .option('uniform', { type: 'boolean', default: false, describe: 'with --flops: the same fraction for every layer (no scan, no --data)' })
      .option('latency-ms', { type: 'string', coerce: real('latency-ms', { min: 0, max: 1e6, exclusiveMin: true }), describe: 'measured batch-1 latency at most this many ms (greedy, like --flops; needs --data)' })
      .option('scan-images', { type: 'string', default: '1000', coerce: integer('scan-images', { min: 1, max: MAX_COUNT }), describe: 'greedy budgets: validation images the scan evaluates on' })
      .option('criterion', { choices: CRITERIA, default: 'l1' as Criterion, describe: 'rank filters by L1 of their weights, batch-norm |gamma|, or Taylor |activation x gradient| (needs --data)' })
      .option('round-to', { type: 'string', default: '1', coerce: integer('round-to', { min: 1, max: 1024 }), describe: 'kept filters a multiple of this (4 or 8 suit SIMD kernels)' })
      .option('tie', { choices: TIE_RULES, default: 'union' as TieRule, describe: 'filters tied by a [shortcut]: union keeps a channel any tied layer keeps (the slimming forks, NNI); group ranks the channels of the tied layers together and keeps the fraction asked of them (torch-pruning), so residual streams shrink too' })
      .option('data', { type: 'string', describe: 'the .data file: --criterion taylor scores on its training images, --flops / --latency-ms scan on its validation images' })
      .option('batches', { type: 'string', default: '10', coerce: integer('batches', { min: 1, max: MAX_COUNT }), describe: 'with --criterion taylor: training batches to average over' })
      .option('seed', { type: 'string', default: '1', coerce: integer('seed', { min: 0, max: 2 ** 32 - 1 }) }),
  async run(args, io) {
    const r = await channelsCommand({
      cfgFile: args.cfg, weightsFile: args.weights, out: args.out, layers: args.layers, keep: args.keep, layerKeep: args['layer-keep'], flops: args.flops,
      criterion: args.criterion as Criterion, roundTo: args['round-to'], tie: args.tie as TieRule, dataFile: args.data, batches: args.batches, seed: args.seed,
      backend: args.backend, reporter: reporterOf(io), latencyMs: args['latency-ms'], uniform: args.uniform, scanImages: args['scan-images'],
    });
    const how = r.rule.kind === 'flops'
      ? `, every layer keeping ${(100 * r.result.keep!).toFixed(1)}% (uniform, the most that fits --flops ${args.flops})`
      : '';
    io.out(formatChannelReport(r.dense, r.shrunk, r.layerMap));
    if (r.blocks) io.out(formatBlocks(r.blocks, args.layers!));
    if (r.result.blocks) io.out(`removed with the layers kept at 0: ${r.result.blocks.map((b) => `layers ${b.from + 1}-${b.shortcut}${b.exact ? '' : ' (approximate)'}`).join(', ')}\n`);
    if (r.budget) io.out(formatBudget(r.dense.spec, r.budget));
    io.out(`criterion ${args.criterion}${how}\nwrote ${r.cfgOut} and ${r.weightsOut}\n`);
  },
});

/** `removed 1 residual block (--layers 1, lowest mean |gamma| first): layers 4-6 (mean |gamma| 0.0123, exact)`. */
function formatBlocks(blocks: NonNullable<ChannelsOutcome['blocks']>, n: number): string {
  const what = (by: string) => (by === 'bn' ? 'mean |gamma|' : by === 'l1' ? 'mean L1' : 'mean taylor');
  return `removed ${blocks.length} residual block${blocks.length === 1 ? '' : 's'} (--layers ${n}, lowest score first): ` +
    blocks.map((b) => `${blockLayers(b.block)} (${what(b.by)} ${b.score.toPrecision(3)}, ${b.removed.exact ? 'exact' : 'approximate'})`).join(', ') + '\n';
}

// ---------------------------------------------------------------------------------------
// `prune <data> <cfg> <weights> --structure channel`: the iterative loop (prune/channels/loop.ts)

export interface ChannelPruneCommand {
  dataFile: string;
  cfgFile: string;
  weights: string;
  /** folder for `<cfg>_round<N>.cfg` + `.weights` and the reports */
  out: string;
  target: ChannelTarget;
  allocation: 'greedy' | 'uniform';
  criterion: Criterion;
  /** filters tied by a [shortcut]: see planChannels (default union) */
  tie?: TieRule;
  /** whole residual blocks to remove over the rounds (`--layers N`) */
  layers?: number;
  rounds: number;
  retrainBatches: number;
  lrScale: number;
  roundTo?: number;
  /** evaluate on the first N valid images (default all) */
  evalImages?: number;
  /** greedy scan on the first N valid images (default 1000) */
  scanImages?: number;
  taylorBatches?: number;
  /** false: skip the speed measurements */
  speed?: boolean;
  backend?: BackendChoice;
  seed?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** tests: kernels and images instead of --backend and the .data file's lists */
  kernels?: Kernels;
  evalSource?: ImageSource;
  trainSource?: ImageSource;
}

const LOOP_REPORT = 'report.json';

function saveLoopReport(out: string, report: ChannelPruneReport): void {
  atomicWrite(path.join(out, LOOP_REPORT), JSON.stringify(report, null, 2) + '\n');
  atomicWrite(path.join(out, 'report.csv'), channelReportCsv(report));
  if (report.history.length === 0) return;
  atomicWrite(path.join(out, 'accuracy.png'), channelAccuracyChart(report));
  atomicWrite(path.join(out, 'speed.png'), channelSpeedChart(report));
  atomicWrite(path.join(out, 'filters.png'), channelFiltersChart(report));
}

/** The first `n` images of a source (the greedy scan's quick evaluation set). */
function firstImages(source: ImageSource, n: number): ImageSource {
  if (n >= source.count) return source;
  return {
    count: n, label: (i) => source.label(i), load: (i) => source.load(i), problem: (i) => source.problem(i), name: (i) => source.name(i),
    prefetch: (ix) => source.prefetch?.(ix),
  };
}

export async function channelPruneCommand(o: ChannelPruneCommand): Promise<ChannelPruneReport> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const cfgText = readText(o.cfgFile);
  const spec = loadClassifierSpec(o.cfgFile, data.classes, silentReporter);
  if (o.target.kind === 'keep' && o.allocation === 'greedy') {
    throw new DarknetError('--keep sets the same final fraction for every layer; greedy per-layer ratios come with --target-flops');
  }
  checkOutputDir(o.out);
  const dense = loadWeights(o.weights, spec);
  requireFinite(dense, spec, o.weights);
  const base = path.basename(o.cfgFile).replace(/\.cfg$/, '');
  const k = o.kernels ?? (await loadKernels(o.backend, reporter));
  let evalSource: ImageSource | undefined;
  let train: ImageSource | undefined;
  try {
    evalSource = o.evalSource ?? validSource(data, spec, o.evalImages);
    train = o.trainSource ?? trainSource(data, spec);
    const batches = new TrainBatches(train, spec.net.batch, data.classes, shapeOf(spec), mulberry32((o.seed ?? 1) + 7919), augmentationOf(spec.net, false), (m) => reporter.warn(m));
    const report: ChannelPruneReport = {
      version: 1, structure: 'channel', cfg: o.cfgFile, data: o.dataFile, start: o.weights, criterion: o.criterion, target: o.target,
      allocation: o.allocation, tie: o.tie ?? 'union', layers: o.layers, rounds: o.rounds, retrainBatches: o.retrainBatches, lrScale: o.lrScale, roundTo: o.roundTo ?? 1,
      dense: undefined as unknown as ChannelPruneReport['dense'], history: [],
    };
    const result = await channelLoop({
      cfgText, spec, weights: dense, kernels: k, target: o.target, rounds: o.rounds, allocation: o.allocation, criterion: o.criterion, tie: o.tie, layers: o.layers,
      roundTo: o.roundTo, retrainBatches: o.retrainBatches, lrScale: o.lrScale, batches, epochSize: train.count, evalSource,
      scanSource: firstImages(evalSource, o.scanImages ?? 1000), taylorBatches: o.taylorBatches, speed: o.speed === false ? false : undefined,
      seed: o.seed, signal: o.signal, reporter,
      onRound(r, model) {
        const cfgFile = path.join(o.out, `${base}_round${r.round}.cfg`);
        const weightsFile = path.join(o.out, `${base}_round${r.round}.weights`);
        atomicWrite(cfgFile, model.cfgText);
        saveWeights(weightsFile, model.weights, model.spec);
        // Every size in the report is counted again from the files as written.
        const written = readCfg(cfgFile);
        const params = written.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0);
        const flops = written.layers.reduce((s, l) => s + l.flops, 0);
        const bytes = fs.statSync(weightsFile).size;
        loadWeights(weightsFile, written);
        if (params !== r.params || flops !== r.flops || bytes !== r.bytes) {
          throw new Error(`${cfgFile}: written ${params} params, ${flops} FLOPs, ${bytes} bytes; the round counted ${r.params}, ${r.flops}, ${r.bytes}`);
        }
        report.history.push({ ...r, cfgFile, weightsFile });
        saveLoopReport(o.out, report);
        reporter.info(formatChannelRound(report.dense, o.rounds, r));
        if (r.budget) reporter.info(formatRoundBudget(written, r));
      },
      onDense(d) {
        report.dense = d;
        saveLoopReport(o.out, report);
      },
    });
    report.dense = result.dense;
    if (result.interrupted) {
      report.interrupted = true;
      saveLoopReport(o.out, report);
      const last = report.history[report.history.length - 1];
      throw new Interrupted(`interrupted: ${report.history.length} of ${o.rounds} rounds done in ${o.out}` +
        (last ? `; the last finished model is ${last.cfgFile} + ${last.weightsFile} (start a new run from it to go on)` : ''), null);
    }
    return report;
  } finally {
    for (const [source, given] of [[evalSource, o.evalSource], [train, o.trainSource]] as const) if (source && !given) await closeSource(source);
    if (!o.kernels) k.dispose();
  }
}

/** The greedy allocation of a round: keep fractions (of the round's input) per layer against uniform. */
function formatRoundBudget(spec: NetworkSpec, r: ChannelRoundResult): string {
  const b = r.budget!;
  return `  per-layer keep this round (sensitivity scan, greedy)${b.uniformKeep !== undefined ? `; uniform would keep ${(100 * b.uniformKeep).toFixed(1)}% everywhere` : ''}: ` +
    b.ratios.map(([l, keep]) => `${layerName(spec, l)} ${(100 * keep).toFixed(0)}%`).join(', ');
}
