import { fileError } from './errors';

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

  /** A string that must be present. */
  required(key: string): string {
    const v = this.raw(key);
    if (v === undefined || v === '') throw this.error(`[${this.section}] needs '${key}='`);
    return v;
  }

  int(key: string, fallback: number): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (!/^[+-]?\d+$/.test(v)) throw this.error(`'${key}=${v}' is not an integer`, key);
    return parseInt(v, 10);
  }

  float(key: string, fallback: number): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    const x = Number(v);
    if (v === '' || !Number.isFinite(x)) throw this.error(`'${key}=${v}' is not a number`, key);
    return x;
  }

  /** darknet's comma lists (`layers=-1,-4`, `steps=100,200`). */
  intList(key: string): number[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return v.split(',').map((s) => {
      if (!/^[+-]?\d+$/.test(s)) throw this.error(`'${key}=${v}' is not a list of integers`, key);
      return parseInt(s, 10);
    });
  }

  floatList(key: string): number[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return v.split(',').map((s) => {
      const x = Number(s);
      if (s === '' || !Number.isFinite(x)) throw this.error(`'${key}=${v}' is not a list of numbers`, key);
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

  /** An error pointing at a key's line (or the section header). */
  error(message: string, key?: string) {
    return fileError(this.file, key ? this.lineOf(key) : this.line, message);
  }
}
