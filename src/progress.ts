/**
 * A progress bar on stderr: `label [#####.....] 1234/60000 2.1%  950 img/s  ETA 1m02s`.
 * On a terminal it redraws in place a few times a second; elsewhere (CI, pipes) it prints
 * a plain line every `logEvery` seconds, so logs stay readable.
 */
export class Progress {
  private readonly start = Date.now();
  private lastDraw = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'it',
    private readonly logEvery = 10,
  ) {}

  /** Redraws if enough time has passed; `extra` is appended (e.g. a loss). */
  update(done: number, extra = ''): void {
    const now = Date.now();
    const interval = this.tty ? 200 : this.logEvery * 1000;
    if (now - this.lastDraw < interval || done >= this.total) return;
    this.lastDraw = now;
    const line = this.format(done, extra);
    if (this.tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  /** Final state, and a newline on a terminal. */
  finish(done = this.total, extra = ''): void {
    const line = this.format(done, extra);
    process.stderr.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  private format(done: number, extra: string): string {
    const seconds = (Date.now() - this.start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    const eta = rate > 0 ? formatDuration((this.total - done) / rate) : '?';
    const pct = (100 * frac).toFixed(1);
    return `${this.label} [${bar}] ${done}/${this.total} ${pct}%  ${rate.toFixed(0)} ${this.unit}/s  ETA ${eta}${extra ? '  ' + extra : ''}`;
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
