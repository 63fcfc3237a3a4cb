import type { Argv } from 'yargs';
import yargs from 'yargs/yargs';
import type { GlobalArgs, Io, Verb } from '../src/commands/verb';

/**
 * Parses argv with a verb's builder, as src/commands/cli.ts registers it (strict, the
 * reference backend by default), runs it, and returns what it printed. A parse error or
 * the verb's error is thrown.
 */
export async function runVerb(verb: Verb<any>, argv: string[]): Promise<{ out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
  let picked: (() => Promise<void> | void) | undefined;
  const y = (yargs() as unknown as Argv<GlobalArgs>).option('backend', { default: 'reference' as const }).strict().fail(false).exitProcess(false);
  y.command(verb.command, verb.describe, verb.builder, (args) => {
    picked = () => verb.run(args as never, io);
  });
  let failure: unknown;
  y.parse(argv, {}, (e) => {
    failure = e;
  });
  if (failure) throw failure;
  await picked!();
  return { out: out.join(''), err: err.join('') };
}
