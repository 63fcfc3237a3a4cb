/**
 * The one seam for human output. Library code (training, evaluation, pruning) reports
 * through a Reporter and never writes to process.stdout / stderr itself, so a library
 * user can silence it (`silentReporter`) or capture it (`collectingReporter`), and the
 * CLI prints it (`streamReporter` over its output seam).
 */
export interface Reporter {
  /** a line of information: darknet's per-iteration line, a round's table, a summary */
  info(line: string): void;
  /** something the user should act on; printed with a `warning: ` prefix by the CLI */
  warn(line: string): void;
  /** a progress bar over `total` steps of `unit` */
  progress(label: string, total: number, unit: string): ProgressBar;
}

export interface ProgressBar {
  /** redraws when enough time has passed; `extra` is appended (e.g. a loss) */
  update(done: number, extra?: string): void;
  /** the final state */
  finish(done?: number, extra?: string): void;
}

const NO_BAR: ProgressBar = { update: () => undefined, finish: () => undefined };

/** Says nothing. */
export const silentReporter: Reporter = {
  info: () => undefined,
  warn: () => undefined,
  progress: () => NO_BAR,
};

/** Keeps every line (`warning: ` prefixed for warnings); no progress bars. For tests and library users. */
export function collectingReporter(lines: string[] = []): Reporter & { lines: string[] } {
  return {
    lines,
    info: (l) => void lines.push(l),
    warn: (l) => void lines.push(`warning: ${l}`),
    progress: () => NO_BAR,
  };
}

/** The same reporter with every line indented (a retraining inside a prune round). */
export function indented(r: Reporter, prefix = '  '): Reporter {
  return {
    info: (l) => r.info(prefix + l),
    warn: (l) => r.warn(prefix + l),
    progress: (label, total, unit) => r.progress(label, total, unit),
  };
}

/**
 * Lines to a writer (the CLI's stderr), progress bars redrawn in place on a terminal and
 * as a plain line every `logEverySeconds` elsewhere, so CI logs stay readable.
 */
export function streamReporter(write: (text: string) => void, opts: { tty: boolean; bars?: boolean; logEverySeconds?: number }): Reporter {
  const bars = opts.bars ?? true;
  return {
    info: (l) => write(`${l}\n`),
    warn: (l) => write(`warning: ${l}\n`),
    progress: (label, total, unit) => (bars ? new TextBar(write, opts.tty, label, total, unit, opts.logEverySeconds ?? 10) : NO_BAR),
  };
}

/** `label [#####.....] 1234/60000 2.1%  950 img/s  ETA 1m02s` */
class TextBar implements ProgressBar {
  private readonly start = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
    private readonly label: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly logEverySeconds: number,
  ) {}

  update(done: number, extra = ''): void {
    const now = Date.now();
    const interval = this.tty ? 200 : this.logEverySeconds * 1000;
    if (now - this.lastDraw < interval || done >= this.total) return;
    this.lastDraw = now;
    const line = this.format(done, extra);
    this.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }

  finish(done = this.total, extra = ''): void {
    const line = this.format(done, extra);
    this.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  private format(done: number, extra: string): string {
    const seconds = (Date.now() - this.start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    const eta = rate > 0 ? formatDuration((this.total - done) / rate) : '?';
    return `${this.label} [${bar}] ${done}/${this.total} ${(100 * frac).toFixed(1)}%  ${rate.toFixed(0)} ${this.unit}/s  ETA ${eta}${extra ? '  ' + extra : ''}`;
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}
