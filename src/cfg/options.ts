import { excerpt, fileError } from '../errors';

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/** `'key=value'` for an error, the value cut to a short excerpt. */
function quote(key: string, value: string): string {
  return `'${excerpt(`${key}=${value}`)}'`;
}

/** One `key=value` line of a cfg section, with where it came from. */
export interface OptionLine {
  key: string;
  value: string;
  line: number;
}

/**
 * Typed look-ups over one cfg section, darknet's option_list.c: every look-up marks its
 * key as read, so `unused()` can name what nothing read ("Unused field"). A value of the
 * wrong type is an error naming file:line.
 *
 * @example
 *   const filters = o.int('filters', 1);          // darknet: option_find_int
 *   const pad = o.int('pad', 0);                  // option_find_int_quiet has the same result
 */
export class Options {
  private readonly used = new Set<string>();
  private readonly byKey = new Map<string, OptionLine>();

  constructor(
    readonly file: string,
    /** the section name as written, e.g. "conv" */
    readonly section: string,
    /** line of the `[section]` header */
    readonly line: number,
    lines: OptionLine[],
  ) {
    // NOTE: darknet keeps every line and finds the first match; a repeated key is almost
    // always a mistake, so the first wins (as in darknet) and the rest are reported unused.
    for (const l of lines) {
      if (!this.byKey.has(l.key)) this.byKey.set(l.key, l);
    }
    this.lines = lines;
  }

  private readonly lines: OptionLine[];

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** The raw string, or undefined; marks the key read. */
  raw(key: string): string | undefined {
    const l = this.byKey.get(key);
    if (l) this.used.add(key);
    return l?.value;
  }

  /** The line a key was given on (for errors about its value), else the section's. */
  lineOf(key: string): number {
    return this.byKey.get(key)?.line ?? this.line;
  }

  str(key: string, fallback: string): string {
    return this.raw(key) ?? fallback;
  }

  /**
   * One of a fixed set of names (policy, activation, cost type); anything else is an error
   * that lists them and quotes only an excerpt of what was given.
   * @example const policy = o.choice('policy', 'constant', POLICIES); // "unknown policy 'cosine'; known: constant, step, ..."
   */
  choice<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const v = this.str(key, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      throw this.error(`unknown ${key} '${excerpt(v)}'; known: ${allowed.join(', ')}`, key);
    }
    return v as T;
  }

  /** A string that must be present. */
  required(key: string): string {
    const v = this.raw(key);
    if (v === undefined || v === '') throw this.error(`[${this.section}] needs '${key}='`);
    return v;
  }

  /**
   * An integer in C's `int` range, as darknet's atoi reads it; a value outside that range
   * would wrap in darknet and is an error here.
   */
  int(key: string, fallback: number): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    return this.toInt(key, v, v, 'an integer');
  }

  float(key: string, fallback: number): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    const x = Number(v);
    if (v === '' || !Number.isFinite(x)) throw this.error(`${quote(key, v)} is not a number`, key);
    return x;
  }

  /** darknet's comma lists (`layers=-1,-4`, `steps=100,200`). */
  intList(key: string): number[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return v.split(',').map((s) => this.toInt(key, s, v, 'a list of integers'));
  }

  floatList(key: string): number[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return v.split(',').map((s) => {
      const x = Number(s);
      if (s === '' || !Number.isFinite(x)) throw this.error(`${quote(key, v)} is not a list of numbers`, key);
      return x;
    });
  }

  /** 0/1 flags as darknet reads them (any non-zero integer is true). */
  flag(key: string, fallback = false): boolean {
    return this.int(key, fallback ? 1 : 0) !== 0;
  }

  /** Keys given but never read, with their lines, in file order. */
  unused(): OptionLine[] {
    const seen = new Set<string>();
    return this.lines.filter((l) => {
      const dup = seen.has(l.key);
      seen.add(l.key);
      return dup || !this.used.has(l.key);
    });
  }

  /** One integer `text` of `key=value`, or an error saying the value is not `what`. */
  private toInt(key: string, text: string, value: string, what: string): number {
    if (!/^[+-]?\d+$/.test(text)) throw this.error(`${quote(key, value)} is not ${what}`, key);
    const x = parseInt(text, 10);
    if (x < INT_MIN || x > INT_MAX) {
      throw this.error(`${quote(key, value)} is out of range: darknet reads an int (${INT_MIN} to ${INT_MAX})`, key);
    }
    return x;
  }

  /** An error pointing at a key's line (or the section header). */
  error(message: string, key?: string) {
    return fileError(this.file, key ? this.lineOf(key) : this.line, message);
  }
}
