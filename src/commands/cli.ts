// the factory, not the process-wide singleton that `import 'yargs'` also sets up
import type { Argv } from 'yargs';
import yargs from 'yargs/yargs';
import { DarknetError } from '../errors';
import { BACKEND_CHOICES } from '../kernels/backend';
import { classifier } from './classifier';
import { compress, decompress } from './compress';
import { data } from './data';
import { prune } from './prune';
import { sensitivity } from './sensitivity';
import { summary } from './summary';
import type { GlobalArgs, Group, Io, Verb } from './verb';

export type { Io } from './verb';

/**
 * The command line: yargs parses and validates, a table maps each verb to its handler
 * (one file per verb family in src/commands). User mistakes are DarknetErrors, printed
 * once as `darknet-ts: <message>` with their exit code (1, or 130 / 143 after Ctrl-C /
 * SIGTERM); anything else is a bug, printed with its stack, exit code 2.
 */

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  tty: Boolean(process.stderr.isTTY),
};

type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Every verb, in `--help` order. */
const VERBS: readonly (Verb<any> | Group)[] = [data, summary, classifier, prune, sensitivity, compress, decompress];

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
