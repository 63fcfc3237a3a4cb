import type { Argv } from 'yargs';
import { streamReporter, type Reporter } from '../engine/reporter';
import type { BackendChoice } from '../kernels/backend';

/** Where the CLI writes; tests pass their own to capture it. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal (progress bars redraw in place) */
  tty?: boolean;
}

/** Options every verb accepts (declared once, on the top-level parser). */
export interface GlobalArgs {
  backend: BackendChoice;
}

/** One verb: its yargs command line, its arguments, and the handler that does the work. */
export interface Verb<A> {
  /** yargs syntax, e.g. 'summary <cfg> [weights]'; the first word is the verb */
  command: string;
  describe: string;
  builder(y: Argv<GlobalArgs>): Argv<A>;
  run(args: A & GlobalArgs, io: Io): Promise<void> | void;
}

/** A verb that only groups others, darknet style: `classifier train|valid|predict ...`. */
export interface Group {
  command: string;
  describe: string;
  verbs: readonly Verb<any>[];
}

/** Infers a verb's argument type from its builder. */
export function verb<A>(v: Verb<A>): Verb<A> {
  return v;
}

/** The reporter of a command: every human line to stderr; no bars when `quiet`. */
export function reporterOf(io: Io, quiet = false): Reporter {
  return streamReporter((t) => io.err(t), { tty: Boolean(io.tty), bars: !quiet });
}
