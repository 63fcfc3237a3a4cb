/**
 * `darknet-ts prune channels`: parsed by yargs as the CLI does, it writes <out>.cfg and
 * <out>.weights that load, prints old -> new filters, parameters, FLOPs and bytes, and
 * refuses bad combinations with one line each.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { channels, channelsCommand } from '../../../src/commands/channels';
import { readCfg } from '../../../src/cfg/parser';
import { MnistSource } from '../../../src/data/loader';
import { loadMnist } from '../../../src/data/mnist';
import { collectingReporter } from '../../../src/engine/reporter';
import { readWeights } from '../../../src/io/weights';
import { ReferenceKernels } from '../../../src/kernels/reference';
import { runVerb } from '../../run-verb';

const FIXTURE = path.resolve(__dirname, '../../fixtures/darknet-lenet');
const cfg = path.join(FIXTURE, 'lenet.cfg');
const weights = path.join(FIXTURE, 'lenet.weights');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-channels-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The verb, parsed by yargs as the CLI does. */
const run = (argv: string[]) => runVerb(channels, argv);

describe('[reference] prune channels', () => {
  test('[reference] --keep writes a smaller darknet model and prints what it gained', async () => {
    const out = path.join(dir, 'half');
    const r = await run(['channels', cfg, weights, out, '--keep', '0.5', '--round-to', '4']);
    const spec = readCfg(`${out}.cfg`);
    expect(spec.layers.map((l) => l.outC)).toEqual([12, 12, 28, 28, 252, 10, 0]);
    expect(readWeights(`${out}.weights`, spec).layers[4].weights).toHaveLength(252 * 28 * 16);
    expect(r.out).toMatch(/^ *0 +conv1 +20 -> 12 +1,520 -> 912 +1\.728 -> 1\.037$/m);
    expect(r.out).toMatch(/^ *5 +fc2 +10 +5,010 -> 2,530/m);
    expect(r.out).toMatch(/^parameters: 432,080 -> 125,018 \(3\.5x fewer\)$/m);
    expect(r.out).toMatch(/^FLOPs: +5\.738 -> 2\.343 MFLOPs \(2\.4x fewer\)$/m);
    expect(r.out).toMatch(/^on disk: +1\.6 MiB -> 488 KiB \(3\.5x smaller\)$/m);
    expect(r.out).toContain(`wrote ${out}.cfg and ${out}.weights`);
  });

  test('[reference] --flops --uniform says the fraction it kept; --layer-keep by name', async () => {
    const r = await run(['channels', cfg, weights, path.join(dir, 'budget.cfg'), '--flops', '0.25', '--uniform']);
    expect(r.out).toMatch(/every layer keeping \d+\.\d% \(uniform, the most that fits --flops 0\.25\)/);
    const spec = readCfg(path.join(dir, 'budget.cfg'));
    expect(spec.layers.reduce((s, l) => s + l.flops, 0)).toBeLessThanOrEqual(0.25 * 5738000) // the fixture reads 3 channels: 5.738 MFLOPs dense;
    await run(['channels', cfg, weights, path.join(dir, 'fc'), '--layer-keep', 'fc1=0.1']);
    expect(readCfg(path.join(dir, 'fc.cfg')).layers.map((l) => l.outputs)).toEqual([11520, 2880, 3200, 800, 50, 10, 10]);
  });

  test('[reference] mistakes are one line each', async () => {
    await expect(run(['channels', cfg, weights, path.join(dir, 'x')])).rejects.toThrow(/give exactly one of --keep, --layer-keep, --flops, --latency-ms, or --layers \(got none\)/);
    await expect(run(['channels', cfg, weights, path.join(dir, 'x'), '--keep', '0.5', '--flops', '0.5'])).rejects.toThrow(/got --keep, --flops/);
    await expect(run(['channels', cfg, weights, path.join(dir, 'x'), '--keep', '0'])).rejects.toThrow(/--keep 0: must be a number > 0/);
    await expect(run(['channels', cfg, weights, path.join(dir, 'x'), '--keep', '0.5', '--criterion', 'taylor'])).rejects.toThrow(/add --data/);
    await expect(run(['channels', cfg, weights, path.join(dir, 'x'), '--layer-keep', 'conv2=0'])).rejects.toThrow(/layer 2 \(conv2\): keeping 0 of 50 filters removes the layer/);
    await expect(run(['channels', cfg, weights, path.join(dir, 'x'), '--layer-keep', 'fc2=0.5'])).rejects.toThrow(/fc2\): its filters cannot be removed: read by layer 6 \(softmax\)/);
    await expect(run(['channels', cfg, weights, cfg, '--keep', '0.5'])).rejects.toThrow(/would overwrite an input/);
    const r = await run(['channels', cfg, weights, path.join(dir, 'bn'), '--keep', '0.8', '--criterion', 'bn']);
    expect(r.err).toMatch(/layers 0, 2, 4, 5 have no batch norm; their filters are ranked by L1/);
  });

  test('[reference] --criterion taylor scores on training batches', async () => {
    const reporter = collectingReporter();
    const r = await channelsCommand({
      cfgFile: cfg, weightsFile: weights, out: path.join(dir, 'taylor'), keep: 0.75, criterion: 'taylor',
      batches: 1, kernels: new ReferenceKernels(), trainSource: new MnistSource(loadMnist('train', 64), 3), reporter,
    });
    expect(reporter.lines.join('\n')).toMatch(/taylor: scoring filters on 1 batches of 64 training images/);
    expect(r.result.changes.map((c) => c.filtersAfter)).toEqual([15, 38, 375]);
    expect(r.shrunk.size.bytes).toBe(fs.statSync(r.weightsOut).size);
  });
});
