/**
 * The one error class for user mistakes: a malformed cfg, a bad option, a truncated
 * weights file. The CLI prints its message once, on one line, and exits non-zero;
 * anything else that escapes is a bug and is printed with its stack.
 */
export class DarknetError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'DarknetError';
  }
}

/** `file:line: message`, the shape of every error that points into a file. */
export function fileError(file: string, line: number | undefined, message: string): DarknetError {
  const where = excerpt(file, PATH_EXCERPT);
  return new DarknetError(line === undefined ? `${where}: ${message}` : `${where}:${line}: ${message}`);
}

/** How much of a path an error quotes (paths are user content too, but a short cut hides the file). */
export const PATH_EXCERPT = 200;

/**
 * User content made safe to quote in a one-line error: every control character (C0, DEL,
 * C1, and the Unicode line, paragraph and bidi controls) is shown as an escape, so an
 * ESC sequence prints as the text `\x1b[31m` and colours nothing; the result is one line
 * of at most `max` characters, cut with an ellipsis. Only the first `max` characters of
 * `text` are looked at, so quoting an 18 KB line costs nothing.
 * @example excerpt('filters=\x1b[31m2\r\n'); // 'filters=\\x1b[31m2\\r\\n'
 * @example excerpt('x'.repeat(100), 10);     // 'xxxxxxxxx…'
 */
export function excerpt(text: string, max = 60): string {
  const shown: string[] = [];
  let length = 0;
  for (const ch of text) {
    const s = escapeControl(ch);
    shown.push(s);
    length += s.length;
    if (length > max) break; // it does not fit: no need to look further
  }
  if (length <= max) return shown.join('');
  let out = '';
  for (const s of shown) {
    if (out.length + s.length > max - 1) break; // never cut an escape in half
    out += s;
  }
  return out + '…';
}

/**
 * Characters an error never prints raw: C0 and C1 controls, DEL, and the Unicode line,
 * paragraph and bidi controls (which can hide or reorder the text around them).
 */
export const CONTROL_CHARACTER = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeControl(ch: string): string {
  if (!CONTROL_CHARACTER.test(ch)) return ch;
  const code = ch.codePointAt(0)!;
  return NAMED[ch] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/**
 * A library's error message (sharp, the file system) for one of ours: its first line,
 * whitespace collapsed, as an excerpt.
 * @example messageExcerpt('Input file is missing\n  at ...'); // 'Input file is missing'
 */
export function messageExcerpt(text: string, max = 80): string {
  return excerpt(text.split(/\r?\n/)[0].replace(/[ \t]+/g, ' ').trim(), max);
}
