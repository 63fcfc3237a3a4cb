/**
 * `prune --structure channel` (the iterative channel loop) and `summary --compare`: each
 * round's network is the one its files hold (same outputs, same params and FLOPs, same
 * top-1 as the report says), the reports are written, Ctrl-C keeps the finished rounds, and
 * the mistakes are one line each. A tiny conv net on real MNIST images, reference kernels.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCfg, readCfg } from '../../src/cfg/parser';
import { channelPruneCommand } from '../../src/commands/channels';
import { Interrupted } from '../../src/commands/interrupt';
import { prune } from '../../src/commands/prune';
import { summary } from '../../src/commands/summary';
import { augmentationOf } from '../../src/data/augment';
import { MnistSource } from '../../src/data/loader';
import { loadMnist } from '../../src/data/mnist';
import { evaluate } from '../../src/engine/evaluate';
import { Network, withBatch } from '../../src/engine/network';
import { mulberry32 } from '../../src/engine/random';
import { collectingReporter } from '../../src/engine/reporter';
import { TrainBatches } from '../../src/data/loader';
import { parseWeights, readWeights, serializeWeights, writeWeights } from '../../src/io/weights';
import { ReferenceKernels } from '../../src/kernels/reference';
import { channelLoop, type ChannelModel, type ChannelRoundResult } from '../../src/prune/channels/loop';
import type { ChannelPruneReport } from '../../src/prune/channels/report';
import { RESIDUAL } from '../prune/channels/cases';
import { runVerb } from '../run-verb';
import { smallNet, smallResidualCfg } from '../small-net';
import { randomWeights } from '../prune/channels/nets';

/** conv 8 5x5/2 -> connected 24 -> connected 10: two layers with filters to remove. */
const CFG = `${smallNet(40)}
[convolutional]
filters=8
size=5
stride=2
pad=0
activation=relu

[connected]
output=24
activation=relu

[connected]
output=10
activation=linear

[softmax]
`;

let dir: string;
let cfgFile: string;
let weightsFile: string;
let dataFile: string;
const k = new ReferenceKernels();
const trainImages = () => new MnistSource(loadMnist('train', 320), 1);
const testImages = () => new MnistSource(loadMnist('t10k', 64), 1);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dts-prune-channels-'));
  cfgFile = path.join(dir, 'tiny.cfg');
  fs.writeFileSync(cfgFile, CFG);
  // a start model: 40 batches of training, enough to be well above chance
  const spec = parseCfg(CFG, cfgFile);
  const net = new Network(spec, k, { seed: 1 });
  const batches = new TrainBatches(trainImages(), 16, 10, { w: 28, h: 28, c: 1 }, mulberry32(5), augmentationOf(spec.net, false), () => {});
  for (let b = 0; b < 40; b++) {
    const { x, y } = await batches.next();
    net.trainBatch(x, y);
  }
  weightsFile = path.join(dir, 'tiny.weights');
  writeWeights(weightsFile, net.exportWeights(), spec);
  net.dispose();
  // a .data file naming lists is needed by the command; the tests hand it images directly
  fs.writeFileSync(path.join(dir, 'labels.txt'), '0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n');
  fs.writeFileSync(path.join(dir, 'empty.list'), '');
  dataFile = path.join(dir, 'tiny.data');
  fs.writeFileSync(dataFile, `classes=10\ntrain=${dir}/empty.list\nvalid=${dir}/empty.list\nlabels=${dir}/labels.txt\n`);
}, 60000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Top-1 of a spec + weights on the test images. */
async function top1(spec: ReturnType<typeof parseCfg>, w: ReturnType<typeof readWeights>): Promise<number> {
  const net = new Network(withBatch(spec, 64), k);
  try {
    net.loadWeights(w);
    return (await evaluate(net, testImages())).top1;
  } finally {
    net.dispose();
  }
}

/**
 * Each round's model as the command writes it (the cfg text and the .weights bytes, read
 * back) has the params, FLOPs and bytes the round counted, computes what the loop's model
 * does on 4 random images, and has the round's top-1.
 */
async function expectFilesAsMeasured(models: Array<[ChannelRoundResult, ChannelModel]>): Promise<void> {
  const random = mulberry32(3);
  const x = Float32Array.from({ length: 4 * 784 }, () => random());
  const outputs = (s: ReturnType<typeof parseCfg>, w: ReturnType<typeof readWeights>) => {
    const net = new Network(withBatch(s, 4), k);
    net.loadWeights(w);
    const out = Array.from(net.predict(x));
    net.dispose();
    return out;
  };
  for (const [result, model] of models) {
    const spec = parseCfg(model.cfgText, 'round.cfg');
    const w = parseWeights(serializeWeights(model.weights, model.spec), spec, 'round.weights');
    expect(spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0)).toBe(result.params);
    expect(spec.layers.reduce((s, l) => s + l.flops, 0)).toBe(result.flops);
    expect(serializeWeights(w, spec).length).toBe(result.bytes);
    expect(outputs(spec, w)).toEqual(outputs(model.spec, model.weights));
    expect(await top1(spec, w)).toBe(result.top1);
  }
}

describe('[reference] channel loop', () => {
  test('[reference] each round\'s network has the size the report says, and its files give the same outputs', async () => {
    const spec = parseCfg(CFG, cfgFile);
    const models: Array<[ChannelRoundResult, ChannelModel]> = [];
    const r = await channelLoop({
      cfgText: CFG, spec, weights: readWeights(weightsFile, spec), kernels: k, target: { kind: 'keep', fraction: 0.25 }, rounds: 2,
      criterion: 'l1', retrainBatches: 4, lrScale: 0.1, epochSize: 320, evalSource: testImages(), speed: false,
      batches: new TrainBatches(trainImages(), 16, 10, { w: 28, h: 28, c: 1 }, mulberry32(7), augmentationOf(spec.net, false), () => {}),
      onRound: (result, model) => models.push([result, model]),
    });
    expect(r.interrupted).toBe(false);
    expect(r.dense.params).toBe(8 * 25 + 8 + 8 * 12 * 12 * 24 + 24 + 24 * 10 + 10);
    // keep 0.25 in two rounds: 0.5 then 0.25 of the dense filters
    expect(models.map(([m]) => m.layers.map((l) => l.filters))).toEqual([[4, 12, 10], [2, 6, 10]]);
    await expectFilesAsMeasured(models);
    // params: conv 2 x 25 + 2, fc1 2 x 144 inputs -> 6, fc2 6 -> 10
    expect(models[1][0].params).toBe(2 * 25 + 2 + 2 * 144 * 6 + 6 + 6 * 10 + 10);
  }, 60000);

  test('[reference] the command writes round cfgs, weights and reports that agree, with measured speed', async () => {
    const out = path.join(dir, 'loop');
    const reporter = collectingReporter();
    const report = await channelPruneCommand({
      dataFile, cfgFile, weights: weightsFile, out, target: { kind: 'flops', fraction: 0.3 }, allocation: 'uniform', criterion: 'l1',
      rounds: 2, retrainBatches: 3, lrScale: 0.1, kernels: k, trainSource: trainImages(), evalSource: testImages(), reporter,
    });
    expect(report.history).toHaveLength(2);
    for (const h of report.history) {
      expect(h.cfgFile).toBe(path.join(out, `tiny_round${h.round}.cfg`));
      const spec = readCfg(h.cfgFile);
      const w = readWeights(h.weightsFile, spec);
      expect(spec.layers.reduce((s, l) => s + l.flops, 0)).toBe(h.flops);
      expect(fs.statSync(h.weightsFile).size).toBe(h.bytes);
      expect(await top1(spec, w)).toBe(h.top1);
      expect(h.speed.inferImagesPerSecond).toBeGreaterThan(0);
      expect(h.speed.trainImagesPerSecond).toBeGreaterThan(0);
      expect(h.speed.latencyMs).toBeGreaterThan(0);
    }
    expect(report.history[1].flops).toBeLessThanOrEqual(0.3 * report.dense.flops);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as ChannelPruneReport;
    expect(json.history.map((h) => h.params)).toEqual(report.history.map((h) => h.params));
    const csv = fs.readFileSync(path.join(out, 'report.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('round,layer,name,type,filters_dense,filters,params,flops,bytes,top1_pruned,top1,infer_images_per_s,train_images_per_s,latency_ms');
    expect(csv.filter((l) => /^2,total,/.test(l))[0].split(',').slice(6, 9)).toEqual([String(report.history[1].params), String(report.history[1].flops), String(report.history[1].bytes)]);
    for (const png of ['accuracy.png', 'speed.png', 'filters.png']) expect(fs.readFileSync(path.join(out, png)).subarray(1, 4).toString()).toBe('PNG');
    const text = reporter.lines.join('\n');
    expect(text).toMatch(/^round 2\/2: \d+\.\dx fewer parameters, \d+\.\dx fewer FLOPs, \d+ bytes; top-1 /m);
    expect(text).toMatch(/^0 +conv1 +8 -> \d+ /m);
    expect(text).toMatch(/^speed: infer \d+ img\/s \(\d+\.\dx dense\), train \d+ img\/s/m);
  }, 60000);

  test('[reference] Ctrl-C during a round stops cleanly and keeps the finished rounds', async () => {
    const out = path.join(dir, 'stopped');
    const ac = new AbortController();
    const reporter = collectingReporter();
    const stopAtRound2 = { ...reporter, info: (line: string) => {
      reporter.info(line);
      if (line.startsWith('round 2/3: keep')) ac.abort(); // during round 2's fine-tuning
    } };
    const run = channelPruneCommand({
      dataFile, cfgFile, weights: weightsFile, out, target: { kind: 'keep', fraction: 0.3 }, allocation: 'uniform', criterion: 'l1',
      rounds: 3, retrainBatches: 3, lrScale: 0.1, kernels: k, trainSource: trainImages(), evalSource: testImages(), reporter: stopAtRound2,
      signal: ac.signal, speed: false,
    });
    await expect(run).rejects.toThrow(Interrupted);
    await expect(run).rejects.toThrow(/interrupted: 1 of 3 rounds done in .*; the last finished model is .*tiny_round1\.cfg/);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as ChannelPruneReport;
    expect(json.interrupted).toBe(true);
    expect(json.history.map((h) => h.round)).toEqual([1]);
    expect(fs.existsSync(path.join(out, 'tiny_round1.weights'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'tiny_round2.cfg'))).toBe(false);
  }, 60000);
});

describe('[reference] channel loop --layers: whole residual blocks over the rounds', () => {
  test('[reference] one block a round (--layers 2, 2 rounds), numbered as in the dense cfg; each round\'s files compute what the loop measured', async () => {
    const spec = parseCfg(smallResidualCfg(), path.join(dir, 'residual-mnist.cfg'));
    const net = new Network(spec, k, { seed: 2 });
    const batches = () => new TrainBatches(trainImages(), 16, 10, { w: 28, h: 28, c: 1 }, mulberry32(5), augmentationOf(spec.net, false), () => {});
    const start = batches();
    for (let b = 0; b < 30; b++) {
      const { x, y } = await start.next();
      net.trainBatch(x, y);
    }
    const dense = net.exportWeights();
    net.dispose();
    const reporter = collectingReporter();
    const models: Array<[ChannelRoundResult, ChannelModel]> = [];
    const r = await channelLoop({
      cfgText: smallResidualCfg(), spec, weights: dense, kernels: k, target: { kind: 'keep', fraction: 0.5 }, rounds: 2, layers: 2,
      criterion: 'bn', retrainBatches: 3, lrScale: 0.1, epochSize: 320, evalSource: testImages(), speed: false, batches: batches(),
      reporter, onRound: (result, model) => models.push([result, model]),
    });
    expect(r.interrupted).toBe(false);
    // ceil(2 x r / 2): one block in each round, the two blocks between them, in the dense numbering
    expect(models.map(([m]) => m.blocks?.length)).toEqual([1, 1]);
    const gone = models.map(([m]) => [m.blocks![0].from, m.blocks![0].shortcut]).sort((a, b) => a[0] - b[0]);
    expect(gone).toEqual([[0, 3], [3, 6]]);
    expect(models[0][1].spec.layers).toHaveLength(spec.layers.length - 3);
    expect(models[1][1].spec.layers.map((l) => l.type)).toEqual(['convolutional', 'avgpool', 'connected', 'softmax']);
    // rows keep the dense numbering: the stem is 0, the connected layer 8
    expect(models[1][0].layers.map((l) => [l.index, l.name, l.filtersDense])).toEqual([[0, 'conv1', 8], [8, 'fc1', 10]]);
    const first = models[0][0].blocks![0];
    expect(models[0][0].layers.filter((l) => l.index > first.from && l.index <= first.shortcut)).toEqual([]);
    // keep 0.5 in two rounds: the stem (tied to the remaining block in round 1) ends at 4 of 8
    expect(models[1][0].layers[0].filters).toBe(4);
    // the connected layer has no batch norm: said once, in the dense numbering, not every scoring
    expect(reporter.lines.filter((l) => /have no batch norm/.test(l))).toEqual([expect.stringMatching(/bn: layers 8 have no batch norm; their filters are ranked by L1/)]);
    expect(reporter.lines.join('\n')).toMatch(/^round 1\/2: removed 1 residual block \(lowest bn score first\): layers [14]-[36]( \(approximate\))? \(numbered as in the dense cfg\)$/m);
    await expectFilesAsMeasured(models);
    // more blocks than the net has: refused before any round
    await expect(channelLoop({
      cfgText: smallResidualCfg(), spec, weights: dense, kernels: k, target: { kind: 'keep', fraction: 0.5 }, rounds: 2, layers: 3,
      criterion: 'bn', retrainBatches: 3, lrScale: 0.1, epochSize: 320, evalSource: testImages(), speed: false, batches: batches(),
      onRound: () => { throw new Error('no round may run'); },
    })).rejects.toThrow(/^--layers 3: .*residual-mnist\.cfg has 2 residual blocks that can be removed$/);
  }, 60000);
});

describe('[reference] prune --structure channel and summary --compare: the CLI', () => {
  const pruneVerb = () => prune.verbs.find((v) => v.command.startsWith('$0'))!;

  test('[reference] mistakes are one line each', async () => {
    const base = ['x.data', 'x.cfg', 'x.weights', '--structure', 'channel'];
    await expect(runVerb(pruneVerb(), base)).rejects.toThrow(/give exactly one of --target-flops, --keep \(got none\)/);
    await expect(runVerb(pruneVerb(), [...base, '--keep', '0.5', '--target-flops', '0.5'])).rejects.toThrow(/got --target-flops, --keep/);
    await expect(runVerb(pruneVerb(), [...base, '--keep', '0.5', '--mode', 'agp'])).rejects.toThrow(/--mode is for --structure weight/);
    await expect(runVerb(pruneVerb(), [...base, '--keep', '0.5', '--uniform'])).rejects.toThrow(/--uniform goes with --target-flops/);
    await expect(runVerb(pruneVerb(), [...base, '--keep', '0.5', '--target', '0.9'])).rejects.toThrow(/--target is for --structure weight/);
    // and the other way: an option only the channel loop reads is refused, not ignored
    const weight = ['x.data', 'x.cfg', 'x.weights'];
    for (const [option, value] of [['--keep', '0.5'], ['--target-flops', '0.5'], ['--layers', '1'], ['--criterion', 'bn'], ['--round-to', '4'], ['--scan-images', '10']]) {
      await expect(runVerb(pruneVerb(), [...weight, option, value])).rejects.toThrow(new RegExp(`^${option} is for --structure channel$`));
    }
    await expect(runVerb(pruneVerb(), [...weight, '--no-speed'])).rejects.toThrow(/^--speed is for --structure channel$/);
  });

  test('[reference] summary --compare shows old -> new filters per layer', async () => {
    const small = path.join(dir, 'small.cfg');
    fs.writeFileSync(small, CFG.replace('filters=8', 'filters=3').replace('output=24', 'output=7'));
    const r = await runVerb(summary, ['summary', small, '--compare', cfgFile]);
    expect(r.out).toMatch(/^ +0 conv +3 .* +8 -> 3 +208$/m);
    expect(r.out).toMatch(/^ +1 connected +432 +-> +7 .* +24 -> 7 +27,672$/m);
    expect(r.out).toMatch(/^ +2 connected +7 +-> +10 .* +10 +250$/m);
    expect(r.out).toMatch(/^parameters old -> new +28,130 -> 3,189 \(8\.8x fewer\)$/m);
    expect(r.out).toMatch(/^FLOPs old -> new +\d+\.\d{3} MFLOPs -> \d+\.\d{3} MFLOPs \(\d+\.\dx fewer\)$/m);
    const other = path.join(dir, 'other.cfg');
    fs.writeFileSync(other, CFG.replace('[softmax]', ''));
    await expect(runVerb(summary, ['summary', small, '--compare', other])).rejects.toThrow(/--compare .*other\.cfg: its layers differ from .*small\.cfg's \(3 layers there, 4 here\)/);
  });
});

describe('[reference] prune channels --layers: whole residual blocks, through the files', () => {
  const channelsVerb = () => prune.verbs.find((v) => v.command.startsWith('channels'))!;

  test('[reference] the block whose last conv has gamma 0 goes; the written model computes what the whole one did', async () => {
    const cfg = path.join(dir, 'residual.cfg');
    fs.writeFileSync(cfg, RESIDUAL);
    const spec = readCfg(cfg);
    const w = randomWeights(spec, 11);
    w.layers[4].scales!.fill(0);
    w.layers[5].scales!.fill(0); // block B's branch outputs its beta (not 0): folded into the route's reader
    w.layers[1].scales!.set([0.01, 0.02, 0.03, 0.04]); // block A: small |gamma|, but not the smallest
    const weights = path.join(dir, 'residual.weights');
    writeWeights(weights, w, spec);
    const out = path.join(dir, 'residual-small');
    const r = await runVerb(channelsVerb(), ['channels', cfg, weights, out, '--layers', '1', '--criterion', 'bn']);
    expect(r.out).toMatch(/^removed 1 residual block \(--layers 1, lowest score first\): layers 4-6 \(mean \|gamma\| 0\.\d+, exact\)$/m);
    expect(r.out).toMatch(/^ *4 +conv4 +4 -> removed +\d+ -> 0 +[\d.]+ -> 0$/m);
    expect(r.out).toMatch(/^ *8 +conv6 +5 +60 +0\.003$/m);

    const small = readCfg(`${out}.cfg`);
    expect(small.layers).toHaveLength(9);
    expect(fs.readFileSync(`${out}.cfg`, 'utf8')).toContain('# the head\n[route]\nlayers=-1,-4\n');
    const sw = readWeights(`${out}.weights`, small);
    const random = mulberry32(3);
    const x = Float32Array.from({ length: 3 * spec.net.inputs }, () => random());
    const run = (s: typeof spec, weightsFile: typeof w) => {
      const net = new Network(withBatch(s, 3), new ReferenceKernels({ float64: true }));
      net.loadWeights(weightsFile);
      const o = Array.from(net.predict(x));
      net.dispose();
      return o;
    };
    const dense = run(spec, w);
    const shrunk = run(small, sw);
    expect(Math.max(...dense.map((v, i) => Math.abs(v - shrunk[i])))).toBeLessThan(1e-6);

    // with --keep: blocks first, then filters of the rest; more blocks than can go: refused, naming the count
    await runVerb(channelsVerb(), ['channels', cfg, weights, path.join(dir, 'both'), '--layers', '2', '--keep', '0.5']);
    expect(readCfg(path.join(dir, 'both.cfg')).layers.map((l) => l.outC)).toEqual([2, 4, 3, 3, 3, 0]);
    await expect(runVerb(channelsVerb(), ['channels', cfg, weights, path.join(dir, 'x'), '--layers', '3'])).rejects.toThrow(/--layers 3: .*residual\.cfg has 2 residual blocks that can be removed/);
    await expect(runVerb(channelsVerb(), ['channels', cfg, weights, path.join(dir, 'x'), '--layers', '1', '--keep', '0.5', '--flops', '0.5'])).rejects.toThrow(/give at most one of --keep, --layer-keep, --flops, --latency-ms with --layers \(got --keep, --flops\)/);
    await expect(runVerb(channelsVerb(), ['channels', cfg, weights, path.join(dir, 'x'), '--layer-keep', 'conv6=0'])).rejects.toThrow(/layer 8 \(conv6\): keeping 0 of 5 filters removes the layer, which cannot be done here: it is not inside a residual block/);
    // --layer-keep 0 of a branch's conv: its block goes (conv2's gamma is not 0: approximate)
    const k0 = await runVerb(channelsVerb(), ['channels', cfg, weights, path.join(dir, 'k0'), '--layer-keep', 'conv2=0']);
    expect(k0.out).toMatch(/^removed with the layers kept at 0: layers 1-3 \(approximate\)$/m);
    expect(readCfg(path.join(dir, 'k0.cfg')).layers).toHaveLength(9);
  });

  test('[reference] --tie group: the layers tied by shortcuts keep the fraction asked; union keeps what any of them keeps', async () => {
    const cfg = path.join(dir, 'residual.cfg');
    fs.writeFileSync(cfg, RESIDUAL);
    const spec = readCfg(cfg);
    const weights = path.join(dir, 'residual-tie.weights');
    writeWeights(weights, randomWeights(spec, 12), spec);
    const outC = async (tie: string) => {
      const out = path.join(dir, `tie-${tie}`);
      await runVerb(channelsVerb(), ['channels', cfg, weights, out, '--keep', '0.5', '--tie', tie]);
      const small = readCfg(`${out}.cfg`);
      readWeights(`${out}.weights`, small);
      return small.layers.map((l) => l.outC);
    };
    // the stem (0) and the blocks' last convs (2, 5) are tied by the shortcuts (3, 6)
    const group = await outC('group');
    expect([0, 2, 5].map((i) => group[i])).toEqual([2, 2, 2]);
    expect([1, 4, 8].map((i) => group[i])).toEqual([2, 2, 3]);
    const union = await outC('union');
    expect([1, 4, 8].map((i) => union[i])).toEqual([2, 2, 3]);
    expect(union[0]).toBeGreaterThan(2);
    await expect(runVerb(channelsVerb(), ['channels', cfg, weights, path.join(dir, 'x'), '--keep', '0.5', '--tie', 'all'])).rejects.toThrow(/tie.*Choices: "union", "group"/s);
  });

  test('[reference] cfg/resnet-mnist.cfg --layers 1: the lowest-|gamma| stage block goes, the route renumbered, the leaky shortcut said', async () => {
    const cfg = path.resolve(__dirname, '../../cfg/resnet-mnist.cfg');
    const spec = readCfg(cfg);
    const w = randomWeights(spec, 5);
    for (const l of [6, 7]) w.layers[l].scales = w.layers[l].scales!.map((g) => g * 0.01);
    const weights = path.join(dir, 'resnet.weights');
    writeWeights(weights, w, spec);
    const out = path.join(dir, 'resnet-small');
    const r = await runVerb(channelsVerb(), ['channels', cfg, weights, out, '--layers', '1', '--criterion', 'bn']);
    expect(r.out).toMatch(/removed 1 residual block \(--layers 1, lowest score first\): layers 6-8 \(mean \|gamma\| 0\.0\d+, approximate\)/);
    expect(r.err).toMatch(/layers 6-8: layer 8 \(shortcut\) applied leaky to layer 5 \+ the branch/);
    const small = readCfg(`${out}.cfg`);
    expect(small.layers.map((l) => l.type).join(' ')).toBe('convolutional convolutional convolutional shortcut maxpool convolutional route convolutional maxpool convolutional convolutional shortcut avgpool connected softmax');
    expect(small.layers[6].describe).toMatch(/route +5 +4/);
    expect(small.layers[11].describe).toMatch(/res +9 /);
    const text = fs.readFileSync(`${out}.cfg`, 'utf8');
    expect(text).toContain('# stage 2\'s output (32) and stage 1\'s pooled output (16), concatenated\n[route]\nlayers=-1,4\n');
    expect(text.split('\n').length).toBeLessThan(fs.readFileSync(cfg, 'utf8').split('\n').length);
    expect(readWeights(`${out}.weights`, small).layers).toHaveLength(15);
  });
});
