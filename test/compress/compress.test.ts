/**
 * `compress` and `decompress` end to end on a tiny conv net and real MNIST PNGs: train,
 * prune, compress (k-means, fine-tuning, Huffman, the table), decompress, and the
 * decompressed .weights give the same predictions as the .dcw. User mistakes are one line
 * and exit code 1.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main, type Io } from '../../src/commands/cli';
import { trainClassifier } from '../../src/commands/classifier';
import { validSource, withBatch } from '../../src/commands/load';
import { readCfg } from '../../src/cfg/parser';
import { readDataConfig } from '../../src/data/dataset';
import { readWeightsOrDcw } from '../../src/compress/dcw';
import { evaluate } from '../../src/engine/evaluate';
import { Network } from '../../src/engine/network';
import { exportMnist } from '../../src/data/mnist-export';
import { readWeights } from '../../src/io/weights';
import { createKernels } from '../../src/kernels/backend';
import { smallCfg } from '../small-net';

/** the command tests' small net with a hidden connected layer, so fc1 and fc2 both compress */
const SMALL = smallCfg(40).replace('[connected]\noutput=10', '[connected]\noutput=24\nactivation=relu\n\n[connected]\noutput=10');

// (a fixed name: a random suffix could contain a class label such as 'c3')
const dir = path.join(os.tmpdir(), `dts-compress-${process.pid}`);
let dataFile: string;
let cfgFile: string;
let pruned: string;

/** The CLI, in process. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  return { code: await main(argv, io), out, err };
}

beforeAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  ({ dataFile } = exportMnist(path.join(dir, 'mnist'), { limit: 300 }));
  cfgFile = path.join(dir, 'small.cfg');
  fs.writeFileSync(cfgFile, SMALL);
  const r = await trainClassifier({ dataFile, cfgFile, backend: 'wasm-simd', backupDir: path.join(dir, 'dense') });
  pruned = path.join(dir, 'pruned.weights');
  const p = await cli(['prune', 'threshold', cfgFile, r.finalWeights, pruned, '--sparsity', '0.75']);
  expect(p.code).toBe(0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('[wasm-simd] compress and decompress', () => {
  test('[wasm-simd] compress, decompress: the .weights equal the .dcw and predict the same', async () => {
    const dcw = path.join(dir, 'small.dcw');
    const c = await cli([
      'compress', dataFile, cfgFile, pruned, dcw, '--bits', 'conv=4,fc=3', '--index-bits', 'conv=4,fc=3', '--finetune-batches', '5', '--eval-images', '64',
      '--backend', 'wasm-simd',
    ]);
    expect(c.err).not.toMatch(/internal error/);
    expect(c.code).toBe(0);
    // The paper's table: a row per layer, totals, the file ratio and top-1 after each stage.
    expect(c.out).toMatch(/^layer +weights +non-zero +density +bits +index +codebook/m);
    expect(c.out).toMatch(/^conv1 +150 +\d+ +\d+\.\d+% +4 +4 +\d+/m);
    expect(c.out).toMatch(/^fc1 +20,736 /m);
    expect(c.out).toMatch(/^total +/m);
    expect(c.out).toMatch(/\.dcw file +[\d,]+ bytes: \d+\.\dx smaller than the dense \.weights/);
    expect(c.out).toMatch(/top-1 \(64 images\): pruned \(input\) \d+\.\d\d%, quantised \d+\.\d\d%, fine-tuned \d+\.\d\d%, \.dcw as written \d+\.\d\d%/);
    expect(fs.statSync(dcw).size * 4).toBeLessThan(fs.statSync(pruned).size);

    const back = path.join(dir, 'back.weights');
    const d = await cli(['decompress', cfgFile, dcw, back]);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/^wrote .*back\.weights: 4 layers, seen \d+, \d+ non-zero weights of 21126 /);

    const spec = readCfg(cfgFile);
    const fromDcw = readWeightsOrDcw(dcw, spec);
    const fromWeights = readWeights(back, spec);
    expect(fromWeights.header).toEqual(fromDcw.header);
    fromDcw.layers.forEach((l, i) => {
      for (const [name, a] of Object.entries(l)) {
        expect(Buffer.from(a.buffer).equals(Buffer.from(fromWeights.layers[i][name as keyof typeof l]!.buffer))).toBe(true);
      }
    });
    // The zeros of the pruned model are exactly the zeros of the compressed one.
    const start = readWeights(pruned, spec);
    for (const i of [0, 1, 2]) {
      const a = start.layers[i].weights!;
      const b = fromWeights.layers[i].weights!;
      expect(a.every((x, j) => (x === 0) === (b[j] === 0))).toBe(true);
    }

    const k = await createKernels('wasm-simd');
    const net = new Network(withBatch(spec, 16), k);
    try {
      const source = validSource(readDataConfig(dataFile), spec, 200);
      net.loadWeights(fromDcw);
      const a = await evaluate(net, source);
      net.loadWeights(fromWeights);
      const b = await evaluate(net, source);
      expect(Array.from(b.predictions)).toEqual(Array.from(a.predictions));
      expect(a.top1).toBeGreaterThan(0.3);
    } finally {
      net.dispose();
      k.dispose();
    }
    // load.ts reads .dcw: classifier valid prints the same top-1 for both files.
    const v1 = await cli(['classifier', 'valid', dataFile, cfgFile, dcw, '--json', '--backend', 'wasm-simd']);
    const v2 = await cli(['classifier', 'valid', dataFile, cfgFile, back, '--json', '--backend', 'wasm-simd']);
    expect(v1.code).toBe(0);
    expect(JSON.parse(v1.out).top1).toBe(JSON.parse(v2.out).top1);
  });

  test('[wasm-simd] mistakes are one line naming what is wrong, exit code 1', async () => {
    const dcw = path.join(dir, 'e.dcw');
    const badBits = await cli(['compress', dataFile, cfgFile, pruned, dcw, '--bits', 'conv=4', '--backend', 'wasm-simd']);
    expect(badBits.code).toBe(1);
    expect(badBits.err).toMatch(/^darknet-ts: --bits: no width for layer 1 \(fc1\); add fc=N or fc1=N\n$/);
    expect(fs.existsSync(dcw)).toBe(false);

    const ok = await cli(['compress', dataFile, cfgFile, pruned, dcw, '--no-eval', '--backend', 'wasm-simd']);
    expect(ok.code).toBe(0);
    expect(ok.out).not.toMatch(/top-1/);

    const notDcw = await cli(['decompress', cfgFile, pruned, path.join(dir, 'x.weights')]);
    expect(notDcw.code).toBe(1);
    expect(notDcw.err).toMatch(/pruned\.weights: not a \.dcw file/);

    const truncated = path.join(dir, 'cut.dcw');
    fs.writeFileSync(truncated, fs.readFileSync(dcw).subarray(0, 100));
    const cut = await cli(['decompress', cfgFile, truncated, path.join(dir, 'x.weights')]);
    expect(cut.code).toBe(1);
    expect(cut.err).toMatch(/^darknet-ts: .*cut\.dcw: truncated or corrupt \.dcw: its checksum is 0x[0-9a-f]{8}, its 96 bytes give 0x[0-9a-f]{8}\n$/);

    const otherCfg = path.join(dir, 'other.cfg');
    fs.writeFileSync(otherCfg, SMALL.replace('output=24', 'output=25'));
    const mismatch = await cli(['decompress', otherCfg, dcw, path.join(dir, 'x.weights')]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.err).toMatch(/e\.dcw: layer 1 \(connected, line \d+ of .*other\.cfg\) holds biases\[24\] weights\[20736\] in the \.dcw; the cfg needs biases\[25\] weights\[21600\]/);
    expect(fs.existsSync(path.join(dir, 'x.weights'))).toBe(false);
  });
});
