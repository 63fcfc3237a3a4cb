/**
 * List files: an empty or binary list is an error naming the file, and a file that is
 * not a list of image paths is quoted only as a short, printable excerpt.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labelOf, readImageList, readLines } from '../../src/data/dataset';
import { messageExcerpt as excerpt } from '../../src/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-dataset-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'secret-user:x:1000:1000:Secret User,,,:/home/secret-user:/bin/zsh',
].join('\n');

describe('lists', () => {
  test('an empty list (or one of blank lines) is an error naming the list file', () => {
    for (const content of ['', '\n  \n\t\n']) {
      const file = write('empty.list', content);
      expect(() => readLines(file, 'the training list')).toThrow(`${file}: the training list is empty`);
      expect(() => readImageList(file, 'the validation list')).toThrow(`${file}: the validation list is empty`);
    }
  });

  test('a missing list names the file and the code', () => {
    expect(() => readLines(path.join(dir, 'none.list'), 'the training list')).toThrow(/none\.list: cannot read the training list \(ENOENT\)/);
  });

  test('a binary file is refused without printing it', () => {
    const file = write('weights.list', Buffer.from([1, 0, 0x1b, 0x5b, 0x32, 0x4a, 10, 65]));
    expect(() => readLines(file, 'the training list')).toThrow(`${file}: the training list is not a text file`);
  });

  test('a file that is not a list of image paths is refused with a short excerpt of line 1', () => {
    const file = write('passwd', PASSWD);
    let message = '';
    try {
      readImageList(file, 'the training list');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(`${file}: the training list does not look like a list of image paths (line 1: 'root:x:0:0:root:/root:/bin/bash')`);
    expect(message).not.toContain('daemon');
    expect(readImageList(write('ok.list', 'a/b_c1.png\nREADME\n'), 'the training list')).toEqual(['a/b_c1.png', 'README']);
  });

  test('a path matching no label is quoted short and printable', () => {
    const line = `\x1b]0;pwned\x07${'x'.repeat(300)}`;
    let message = '';
    try {
      labelOf(line, ['c0', 'c1']);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^\\x1b\]0;pwned\\x07x+…: matches no label; /);
    expect(message).not.toMatch(/[\u0000-\u001f]/);
    expect(message.length).toBeLessThan(220);
    expect(() => labelOf('d/x_c0_c1.png', ['c0', 'c1'])).toThrow(/x_c0_c1\.png: matches 2 labels \(c0, c1\)/);
  });
});

describe('excerpt', () => {
  test('first line, printable, whitespace collapsed, at most max characters', () => {
    expect(excerpt('Input file is missing\n  at foo')).toBe('Input file is missing');
    expect(excerpt('a\tb   c\x1b[31m')).toBe('a b c\\x1b[31m');
    expect(excerpt('y'.repeat(100))).toBe(`${'y'.repeat(79)}…`);
    expect(excerpt('y'.repeat(80))).toHaveLength(80);
  });
});
