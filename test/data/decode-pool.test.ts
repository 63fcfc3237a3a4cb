/**
 * The decode workers: the same bytes as the main thread's loadImage for every kind of
 * image, per-image problems that name nothing twice, and a pool that never keeps a
 * process alive and ends with close().
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DecodePool, type DecodeOutcome } from '../../src/data/decode-pool';
import { loadImage } from '../../src/data/images';
import { claimedPng, grayPng, writeJpeg, writePng } from './image-files';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-pool-'));
const pools: DecodePool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function pool(options: ConstructorParameters<typeof DecodePool>[0]): DecodePool {
  const p = new DecodePool(options);
  pools.push(p);
  return p;
}

const bytesOf = (o: DecodeOutcome) => ('data' in o ? Array.from(o.data) : o.problem);

describe('DecodePool', () => {
  let files: string[];
  beforeAll(async () => {
    files = [
      grayPng(dir, 'gray.png', 28, 28, 1),
      writePng(path.join(dir, 'rgb.png'), 28, 28, 2, (x, y) => [x * 9, y * 9, (x * y) % 256]),
      grayPng(dir, 'wide.png', 56, 40, 2), // resized by sharp
      await writeJpeg(path.join(dir, 'photo.jpg'), 40, 30),
    ];
  });

  test.each(['pngjs', 'sharp'] as const)('workers decode (%s) byte for byte as the main thread', async (decoder) => {
    const workers = pool({ workers: 2, decoder });
    for (const c of [1, 3] as const) {
      const outcomes = await workers.decode(files, { w: 28, h: 28, c });
      expect(outcomes).toHaveLength(files.length);
      for (let k = 0; k < files.length; k++) {
        const here = await loadImage(files[k], 28, 28, c, 'cover', decoder);
        expect(bytesOf(outcomes[k])).toEqual(Array.from(here.data));
      }
    }
    expect(workers.running).toBe(2);
  });

  test('a corrupt, a missing and an oversized file each give their own problem, without the path', async () => {
    const bad = path.join(dir, 'corrupt.png');
    fs.writeFileSync(bad, Buffer.concat([fs.readFileSync(files[0]).subarray(0, 50), Buffer.from('\x1b[2Jgarbage')]));
    const huge = claimedPng(path.join(dir, 'huge.png'), 20000, 20000);
    const t0 = Date.now();
    const outcomes = await pool({ workers: 1 }).decode([bad, files[0], path.join(dir, 'none.png'), huge], { w: 28, h: 28, c: 1 });
    expect(Date.now() - t0).toBeLessThan(10000); // includes the worker's start
    expect(outcomes[0]).toEqual({ problem: expect.stringMatching(/^cannot load image \(/) });
    expect('data' in outcomes[1]).toBe(true);
    expect(outcomes[2]).toEqual({ problem: 'cannot load image (ENOENT)' });
    expect(outcomes[3]).toEqual({ problem: expect.stringMatching(/^image is 20000x20000 .*limit of 64 megapixels/) });
    for (const o of [outcomes[0], outcomes[2], outcomes[3]]) {
      const problem = (o as { problem: string }).problem;
      expect(problem).not.toContain(dir);
      expect(problem).not.toMatch(/[\u0000-\u001f]/);
    }
  });

  test('close() ends the workers; a decode after it runs on the main thread', async () => {
    const workers = new DecodePool({ workers: 2 });
    await workers.decode(files.slice(0, 1), { w: 28, h: 28, c: 1 });
    expect(workers.running).toBe(2);
    await workers.close();
    expect(workers.running).toBe(0);
    expect(workers.closed).toBe(true);
    const [after] = await workers.decode(files.slice(0, 1), { w: 28, h: 28, c: 1 });
    expect(bytesOf(after)).toEqual(Array.from((await loadImage(files[0], 28, 28, 1)).data));
    expect(workers.running).toBe(0);
  });

  test('a process awaiting a decode waits for it, and exits on its own with the pool left open', () => {
    // A plain node process (no jest) running the TypeScript sources, as the pool itself does in tests.
    const hook = path.join(dir, 'ts-hook.js');
    fs.writeFileSync(hook, `
      const fs = require('fs');
      const ts = require(${JSON.stringify(require.resolve('typescript'))});
      require.extensions['.ts'] = (m, f) => m._compile(ts.transpileModule(fs.readFileSync(f, 'utf8'),
        { fileName: f, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, f);
    `);
    const script = `
      const { DecodePool } = require(${JSON.stringify(path.resolve(__dirname, '../../src/data/decode-pool.ts'))});
      new DecodePool({ workers: 2 }).decode([${JSON.stringify(files[0])}], { w: 28, h: 28, c: 1 })
        .then(([o]) => console.log('decoded', o.data.length));
    `;
    const t0 = Date.now();
    const child = spawnSync(process.execPath, ['-r', hook, '-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('decoded 784');
    expect(child.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30000);
  });

  test('an idle worker ends by itself and starts again when needed', async () => {
    const workers = pool({ workers: 1, idleMs: 200 });
    const [first] = await workers.decode(files.slice(0, 1), { w: 28, h: 28, c: 1 });
    for (let t = 0; t < 100 && workers.running > 0; t++) await new Promise((r) => setTimeout(r, 50));
    expect(workers.running).toBe(0);
    const [again] = await workers.decode(files.slice(0, 1), { w: 28, h: 28, c: 1 });
    expect(bytesOf(again)).toEqual(bytesOf(first));
  });

  test('the requests of a worker that dies are decoded on the main thread', async () => {
    const workers = pool({ workers: 1 });
    await workers.decode(files.slice(0, 1), { w: 28, h: 28, c: 1 }); // started
    const pending = workers.decode(files, { w: 28, h: 28, c: 3 });
    // Reaching in: nothing public kills a worker, which is the point.
    void (workers as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots[0].worker.terminate();
    const outcomes = await pending;
    for (let k = 0; k < files.length; k++) expect(bytesOf(outcomes[k])).toEqual(Array.from((await loadImage(files[k], 28, 28, 3)).data));
  });

  test('refuses a pool without workers', () => {
    expect(() => new DecodePool({ workers: 0 })).toThrow(/at least 1 worker/);
  });
});
