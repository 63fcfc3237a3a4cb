import * as fs from 'fs';
import * as path from 'path';
import { DarknetError, excerpt, PATH_EXCERPT } from '../errors';

/**
 * Writing output files safely. A save goes to a temporary file in the final file's
 * folder, is fsync'ed, then renamed over the target, so an interrupted save never leaves
 * a partial file. Only regular files are ever replaced: a symlink is followed (the link
 * stays a link and its target gets the new content), and a device, FIFO, socket or
 * directory is refused, so saving "to /dev/null" as root can no longer replace the device.
 *
 * Commands call checkWritableFile / checkOutputDir before long work starts, so a bad
 * output path fails in a second, not after an hour of training.
 */

/** Symlink hops followed before giving up, as Linux's MAXSYMLINKS. */
const MAX_LINKS = 40;

const quote = (p: string) => excerpt(p, PATH_EXCERPT);

/**
 * Writes `data` to `file` atomically. `file` may be new, a regular file, or a symlink
 * (dangling or not) to one; anything else is refused before anything is written.
 * @example atomicWrite('backup/lenet.weights', buffer);
 */
export function atomicWrite(file: string, data: Buffer | string): void {
  const target = checkWritableFile(file);
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    const mode = existingMode(target);
    // 'wx': never open something already at the temporary name (it could be a link)
    fd = fs.openSync(tmp, 'wx', mode ?? 0o666);
    if (mode !== undefined) fs.fchmodSync(fd, mode); // keep the replaced file's permissions (no umask)
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new DarknetError(`${describeTarget(file, target)}: cannot write (${fsReason(e)})`);
  }
  syncFolder(dir);
}

/**
 * The check atomicWrite makes, without writing: `file` (or the file a symlink at `file`
 * points to) must be a regular file or not exist, and its folder must exist or be
 * makeable. Returns the path that a write will replace (the link's target for a link).
 * @example const target = checkWritableFile(args.output); // before training
 */
export function checkWritableFile(file: string): string {
  if (file === '') throw new DarknetError('an empty path is not a file name');
  if (file.endsWith('/') || file.endsWith(path.sep)) throw new DarknetError(`${quote(file)} names a folder, not a file`);
  const target = resolveLinks(file);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(target); // resolveLinks followed every link: this is what a write replaces
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw new DarknetError(`${describeTarget(file, target)}: cannot write (${fsReason(e)})`);
    }
  }
  if (stat && !stat.isFile()) {
    throw new DarknetError(`${describeTarget(file, target)} is ${kindOf(stat)}, not a regular file: refusing to replace it`);
  }
  checkFolderFor(file, path.dirname(target));
  return target;
}

/**
 * An output folder: one that exists, or that can be made (its nearest existing ancestor
 * is a folder we may write in). Makes nothing; atomicWrite makes the folders it needs.
 * @example checkOutputDir('backup'); // before a long prune
 */
export function checkOutputDir(dir: string): void {
  if (dir === '') throw new DarknetError('an empty path is not a folder name');
  checkFolderFor(undefined, dir);
}

/**
 * `dir` is a writable folder, or can be made: walks up to the nearest ancestor that
 * exists, which must be a folder we may write in. `file` is who needs it, for messages.
 */
function checkFolderFor(file: string | undefined, dir: string): void {
  const name = file === undefined ? quote(dir) : `${quote(dir)} (the folder for ${quote(file)})`;
  const wanted = path.resolve(dir);
  let d = wanted;
  let stat = statIfExists(d, name);
  while (!stat && path.dirname(d) !== d) {
    d = path.dirname(d);
    stat = statIfExists(d, name);
  }
  if (!stat) throw new DarknetError(`${name}: cannot make it (no folder above it exists)`);
  if (!stat.isDirectory()) {
    const problem = d === wanted ? `is ${kindOf(stat)}, not a folder` : `cannot be made: ${quote(d)} is ${kindOf(stat)}`;
    throw new DarknetError(`${name} ${problem}`);
  }
  try {
    fs.accessSync(d, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    const action = d === wanted ? 'cannot write in it' : `cannot make it in ${quote(d)}`;
    throw new DarknetError(`${name}: ${action} (${fsReason(e)})`);
  }
}

/** stat (following links), or undefined when nothing is there (or a file is in the way). */
function statIfExists(p: string, name: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new DarknetError(`${name}: cannot use it as a folder (${fsReason(e)})`);
  }
}

/**
 * Follows symlinks at `file` (and only there: folders on the way are resolved by the
 * system) to the path a write replaces; a dangling link resolves to its missing target.
 */
function resolveLinks(file: string): string {
  let current = path.resolve(file);
  for (let hops = 0; hops <= MAX_LINKS; hops++) {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') return current; // checkFolderFor reports a file in the way
      throw new DarknetError(`${quote(file)}: cannot write (${fsReason(e)})`);
    }
    if (!stat.isSymbolicLink()) return current;
    // NOTE: a relative link is relative to the link's real folder, which differs from the
    // lexical one when a folder on the way is itself a link and the link holds '..'.
    current = path.resolve(fs.realpathSync(path.dirname(current)), fs.readlinkSync(current));
  }
  throw new DarknetError(`${quote(file)}: cannot write (more than ${MAX_LINKS} symbolic links in a row, or a loop)`);
}

/** `out.weights`, or `out.weights (a link to /data/x.weights)` when they differ. */
function describeTarget(file: string, target: string): string {
  return target === path.resolve(file) ? quote(file) : `${quote(file)} (a link to ${quote(target)})`;
}

/** "a character device", "a directory", ... for messages. */
function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isFile()) return 'a regular file';
  return 'not a regular file';
}

/** The permission bits of an existing regular file, or undefined when there is none. */
function existingMode(file: string): number | undefined {
  try {
    return fs.statSync(file).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** Makes the rename itself durable; some file systems refuse to fsync a folder, which is fine. */
function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort: the data itself is already on disk
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** An fs error as a few words: `ENOSPC`, `EACCES: permission denied`. */
function fsReason(e: unknown): string {
  const code = errnoCode(e);
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOSPC') return 'no space left on the device';
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'EISDIR') return 'it is a directory';
  if (code) return code;
  return excerpt(e instanceof Error ? e.message : String(e));
}
