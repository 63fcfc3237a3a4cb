import { DarknetError, excerpt } from '../errors';

/**
 * Numeric command-line options, checked once where yargs reads them: every numeric flag
 * of every verb goes through `integer` or `real`, so NaN, a fraction where a count is
 * meant, a negative or absurd size is refused by name before any work starts
 * (`--rounds 100000000` once ran V8 out of memory; `--batch 2.5` said "undefined").
 */

export interface Range {
  min: number;
  max: number;
  /** the minimum itself is not allowed (e.g. a rate > 0) */
  exclusiveMin?: boolean;
  /** the maximum itself is not allowed (e.g. a sparsity < 1) */
  exclusiveMax?: boolean;
}

function parseNumber(flag: string, raw: unknown): number {
  const text = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (typeof text === 'number') return text;
  const s = String(text ?? '').trim();
  const v = s === '' ? NaN : Number(s);
  if (!Number.isFinite(v)) throw new Error(`--${flag} ${excerpt(s, 20)}: not a number`);
  return v;
}

function checkRange(flag: string, v: number, r: Range, what: string): number {
  const low = r.exclusiveMin ? v <= r.min : v < r.min;
  const high = r.exclusiveMax ? v >= r.max : v > r.max;
  if (!Number.isFinite(v) || low || high) {
    const lo = `${r.exclusiveMin ? '>' : '>='} ${r.min}`;
    const hi = `${r.exclusiveMax ? '<' : '<='} ${r.max}`;
    throw new Error(`--${flag} ${v}: must be ${what} ${lo} and ${hi}`);
  }
  return v;
}

/** A yargs `coerce` for a whole number in a range. */
export function integer(flag: string, r: Range): (raw: unknown) => number {
  return (raw) => {
    const v = parseNumber(flag, raw);
    if (!Number.isInteger(v)) throw new Error(`--${flag} ${v}: must be a whole number`);
    return checkRange(flag, v, r, 'a whole number');
  };
}

/** A yargs `coerce` for a finite real number in a range. */
export function real(flag: string, r: Range): (raw: unknown) => number {
  return (raw) => checkRange(flag, parseNumber(flag, raw), r, 'a number');
}

/** Largest count a loop or a list may take from a flag (rounds, batches, levels). */
export const MAX_COUNT = 1_000_000_000;

/** A sensitivity scan evaluates every layer at every level: more than this is a typo. */
export const MAX_LEVELS = 1000;

/**
 * The sparsity levels of a scan, `start:stop:step` (stop included) or a comma list, each in
 * [0, 1); float noise is rounded away (0:0.95:0.05 gives 0.15, not 0.15000000000000002).
 * @example parseLevels('0:0.2:0.05'); // [0, 0.05, 0.1, 0.15, 0.2]
 */
export function parseLevels(text: string, what = '--levels'): number[] {
  const clean = (x: number) => Math.round(x * 1e9) / 1e9;
  const num = (s: string) => {
    const v = s.trim() === '' ? NaN : Number(s);
    if (!Number.isFinite(v)) throw new DarknetError(`${what}: '${excerpt(s.trim(), 20)}' is not a number (expected e.g. 0:0.95:0.05 or 0,0.5,0.9)`);
    return v;
  };
  let levels: number[];
  if (text.includes(':')) {
    const parts = text.split(':');
    if (parts.length !== 3) throw new DarknetError(`${what}: '${excerpt(text, 40)}' is not start:stop:step (e.g. 0:0.95:0.05)`);
    const [start, stop, step] = parts.map(num);
    if (!(step > 0)) throw new DarknetError(`${what}: step ${step} must be > 0`);
    if (stop < start) throw new DarknetError(`${what}: stop ${stop} is below start ${start}`);
    const count = Math.floor((stop - start) / step + 1e-9) + 1;
    if (count > MAX_LEVELS) throw new DarknetError(`${what}: '${excerpt(text, 40)}' makes ${count} levels; at most ${MAX_LEVELS}`);
    levels = Array.from({ length: count }, (_, i) => clean(start + i * step));
  } else {
    levels = text.split(',').map(num);
    if (levels.length > MAX_LEVELS) throw new DarknetError(`${what}: ${levels.length} levels; at most ${MAX_LEVELS}`);
  }
  for (const l of levels) if (!(l >= 0 && l < 1)) throw new DarknetError(`${what}: level ${l} must be in [0, 1)`);
  return levels;
}
