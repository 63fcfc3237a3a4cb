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
  return new DarknetError(line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message}`);
}
