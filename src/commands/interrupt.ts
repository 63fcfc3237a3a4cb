import { DarknetError } from '../errors';

/**
 * Ctrl-C and kill for long commands. The first SIGINT or SIGTERM aborts the returned
 * signal: the engine stops after the batch in progress (it yields to the event loop
 * between batches, so the handler runs), the command saves a backup and exits with
 * 128 + the signal's number. A second signal quits at once.
 */
export interface Interruptible {
  signal: AbortSignal;
  /** the signal that aborted, if any */
  readonly received: NodeJS.Signals | null;
  /** removes the handlers */
  close(): void;
}

const EXIT_CODE: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function onInterrupt(say: (line: string) => void): Interruptible {
  const controller = new AbortController();
  let received: NodeJS.Signals | null = null;
  const handler = (sig: NodeJS.Signals) => {
    if (received) {
      say(`\n${sig} again: quitting now`);
      process.exit(EXIT_CODE[sig] ?? 1);
    }
    received = sig;
    say(`\n${sig}: stopping after this batch and saving a backup (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again to quit now)`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    close() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** The error a command ends with after an interrupt: its message says what was saved and how to resume. */
export class Interrupted extends DarknetError {
  constructor(message: string, sig: NodeJS.Signals | null) {
    super(message, (sig && EXIT_CODE[sig]) || 130);
    this.name = 'Interrupted';
  }
}

/** Runs `job` with signals turned into an abort; the handlers are removed afterwards. */
export async function withInterrupt<T>(say: (line: string) => void, job: (i: Interruptible) => Promise<T>): Promise<T> {
  const i = onInterrupt(say);
  try {
    return await job(i);
  } finally {
    i.close();
  }
}
