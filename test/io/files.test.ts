/**
 * Atomic saves over real files: new and existing files, symlinks (kept as links), and
 * refusals of anything that is not a regular file. NOTE: tests run as root; none of
 * them writes to a device. The only device touched is /dev/null, by the pure check.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DarknetError } from '../../src/errors';
import { atomicWrite, checkOutputDir, checkWritableFile } from '../../src/io/files';
import { atomicWrite as reexported } from '../../src/io/weights';

/** The fs module object itself (the `* as fs` namespace has read-only bindings), for spies. */
const fsModule: typeof fs = require('fs');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-files-'));
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every entry under `root`, recursively, as relative paths (temporary files included). */
function tree(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).sort();
}

/** The DarknetError `f` throws; its message must be one line. */
function errorOf(f: () => unknown): DarknetError {
  try {
    f();
  } catch (e) {
    if (!(e instanceof DarknetError)) throw e;
    expect(e.message).not.toMatch(/[\r\n]/);
    return e;
  }
  throw new Error('did not throw');
}

describe('atomicWrite', () => {
  test('writes a new file (and its folders) and leaves no temporary file', () => {
    const file = path.join(dir, 'a', 'b', 'out.txt');
    atomicWrite(file, 'hello');
    expect(fs.readFileSync(file, 'utf8')).toBe('hello');
    expect(tree(dir)).toEqual(['a', path.join('a', 'b'), path.join('a', 'b', 'out.txt')]);
  });

  test('replaces a regular file and keeps its permissions', () => {
    const file = path.join(dir, 'out.weights');
    fs.writeFileSync(file, 'old');
    fs.chmodSync(file, 0o640);
    atomicWrite(file, Buffer.from('new'));
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.statSync(file).mode & 0o777).toBe(0o640);
    expect(tree(dir)).toEqual(['out.weights']);
  });

  test('weights.ts re-exports the same atomicWrite', () => {
    expect(reexported).toBe(atomicWrite);
  });

  test('a symlink to a regular file stays a link; the target gets the data, via a temporary in its own folder', () => {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.mkdirSync(path.join(dir, 'links'));
    const target = path.join(dir, 'data', 'real.weights');
    const link = path.join(dir, 'links', 'out.weights');
    fs.writeFileSync(target, 'old');
    fs.symlinkSync('../data/real.weights', link);
    const open = jest.spyOn(fsModule, 'openSync');
    const fsync = jest.spyOn(fsModule, 'fsyncSync');
    const rename = jest.spyOn(fsModule, 'renameSync');

    atomicWrite(link, 'new');

    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe('../data/real.weights');
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
    const tmp = String(open.mock.calls[0][0]);
    expect(path.dirname(tmp)).toBe(path.join(dir, 'data'));
    expect(rename).toHaveBeenCalledWith(tmp, target);
    // the data is on disk before the rename makes it the file
    expect(fsync.mock.invocationCallOrder[0]).toBeLessThan(rename.mock.invocationCallOrder[0]);
    expect(tree(dir)).toEqual(['data', path.join('data', 'real.weights'), 'links', path.join('links', 'out.weights')]);
  });

  test('a dangling symlink: its target is created, the link kept', () => {
    const link = path.join(dir, 'out.weights');
    fs.symlinkSync('made-later.weights', link);
    atomicWrite(link, 'data');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'made-later.weights'), 'utf8')).toBe('data');
  });

  test('a chain of links is followed to the end', () => {
    const target = path.join(dir, 'real');
    fs.writeFileSync(target, 'old');
    fs.symlinkSync(target, path.join(dir, 'one'));
    fs.symlinkSync('one', path.join(dir, 'two'));
    atomicWrite(path.join(dir, 'two'), 'new');
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
    expect(fs.lstatSync(path.join(dir, 'one')).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(path.join(dir, 'two')).isSymbolicLink()).toBe(true);
  });

  test('a symlink loop is refused', () => {
    fs.symlinkSync('b', path.join(dir, 'a'));
    fs.symlinkSync('a', path.join(dir, 'b'));
    expect(errorOf(() => atomicWrite(path.join(dir, 'a'), 'x')).message).toMatch(/a: cannot write \(more than 40 symbolic links/);
  });

  test('a FIFO is refused and left a FIFO, directly or through a link', () => {
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(errorOf(() => atomicWrite(fifo, 'x')).message).toBe(
      `${fifo} is a FIFO (named pipe), not a regular file: refusing to replace it`,
    );
    const link = path.join(dir, 'out.weights');
    fs.symlinkSync('pipe', link);
    expect(errorOf(() => atomicWrite(link, 'x')).message).toBe(
      `${link} (a link to ${fifo}) is a FIFO (named pipe), not a regular file: refusing to replace it`,
    );
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(tree(dir)).toEqual(['out.weights', 'pipe']);
  });

  test('a directory is refused and left as it was', () => {
    const sub = path.join(dir, 'out.weights');
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, 'keep'), 'k');
    expect(errorOf(() => atomicWrite(sub, 'x')).message).toBe(
      `${sub} is a directory, not a regular file: refusing to replace it`,
    );
    expect(tree(dir)).toEqual(['out.weights', path.join('out.weights', 'keep')]);
  });

  test('a failure after the temporary is made removes it and keeps the old file', () => {
    const file = path.join(dir, 'out.weights');
    fs.writeFileSync(file, 'old');
    jest.spyOn(fsModule, 'fsyncSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    });
    expect(errorOf(() => atomicWrite(file, 'new')).message).toBe(`${file}: cannot write (no space left on the device)`);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(tree(dir)).toEqual(['out.weights']);
  });

  test('a path under a regular file is refused before anything is written', () => {
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'p');
    expect(errorOf(() => atomicWrite(path.join(file, 'out.weights'), 'x')).message).toMatch(
      /plain \(the folder for .*plain\/out\.weights\) is a regular file, not a folder$/,
    );
    expect(tree(dir)).toEqual(['plain']);
  });
});

describe('checkWritableFile (no write)', () => {
  test("refuses '/dev/null' as a character device", () => {
    expect(errorOf(() => checkWritableFile('/dev/null')).message).toBe(
      '/dev/null is a character device, not a regular file: refusing to replace it',
    );
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  test('accepts a new file, a regular file and a link to one, and returns what a write replaces', () => {
    const file = path.join(dir, 'f');
    expect(checkWritableFile(path.join(dir, 'new', 'deeper', 'f'))).toBe(path.join(dir, 'new', 'deeper', 'f'));
    fs.writeFileSync(file, 'x');
    fs.symlinkSync('f', path.join(dir, 'l'));
    expect(checkWritableFile(file)).toBe(file);
    expect(checkWritableFile(path.join(dir, 'l'))).toBe(file);
    expect(tree(dir)).toEqual(['f', 'l']); // nothing made
  });

  test('refuses a path ending in a slash and an empty path', () => {
    expect(errorOf(() => checkWritableFile(`${dir}/out/`)).message).toMatch(/out\/ names a folder, not a file$/);
    expect(errorOf(() => checkWritableFile('')).message).toBe('an empty path is not a file name');
  });
});

describe('checkOutputDir (no write)', () => {
  test('an existing folder, or one that can be made, is fine, and nothing is made', () => {
    checkOutputDir(dir);
    checkOutputDir(path.join(dir, 'a', 'b', 'c'));
    expect(tree(dir)).toEqual([]);
  });

  test('a path naming an existing file is an error saying so', () => {
    const file = path.join(dir, 'backup');
    fs.writeFileSync(file, 'x');
    expect(errorOf(() => checkOutputDir(file)).message).toBe(`${file} is a regular file, not a folder`);
    expect(errorOf(() => checkOutputDir(path.join(file, 'sub'))).message).toBe(
      `${path.join(file, 'sub')} cannot be made: ${file} is a regular file`,
    );
  });

  test('a FIFO is not a folder either', () => {
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(errorOf(() => checkOutputDir(fifo)).message).toBe(`${fifo} is a FIFO (named pipe), not a folder`);
  });
});
