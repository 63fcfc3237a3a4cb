/**
 * darknet's own LeNet-5 (test/fixtures/darknet-lenet: conv 20 -> conv 50 -> fc 500 -> fc 10),
 * shrunk by removing the filters with the smallest L1 norm: the smaller model is a plain
 * darknet model that loads, and its top-1 on the first 1,000 MNIST test images stays within
 * a point of the dense one's. On wasm-simd when it starts (fast), else the reference kernels.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseCfg } from '../../../src/cfg/parser';
import { MnistSource } from '../../../src/data/loader';
import { loadMnist } from '../../../src/data/mnist';
import { evaluate } from '../../../src/engine/evaluate';
import { Network, withBatch } from '../../../src/engine/network';
import { readWeights, type WeightsFile } from '../../../src/io/weights';
import { createKernels, probeBackends } from '../../../src/kernels/backend';
import type { Kernels } from '../../../src/kernels/types';
import type { NetworkSpec } from '../../../src/cfg/config';
import { l1Scores, modelSize, pruneChannels } from '../../../src/prune/channels';
import { roundTrip } from './nets';

const FIXTURE = path.resolve(__dirname, '../../fixtures/darknet-lenet');
const backend = probeBackends(['wasm-simd'])[0].ok ? 'wasm-simd' : 'reference';

describe(`[${backend}] darknet's LeNet-5, shrunk by L1`, () => {
  let k: Kernels;
  beforeAll(async () => {
    k = await createKernels(backend);
  });
  afterAll(() => k?.dispose());

  async function top1(spec: NetworkSpec, w: WeightsFile): Promise<number> {
    const net = new Network(withBatch(spec, 100), k);
    try {
      net.loadWeights(w);
      return (await evaluate(net, new MnistSource(loadMnist('t10k', 1000), 3))).top1;
    } finally {
      net.dispose();
    }
  }

  test(`[${backend}] 10% fewer filters per layer: loads as darknet files, top-1 within a point on 1,000 test images`, async () => {
    const text = fs.readFileSync(path.join(FIXTURE, 'lenet.cfg'), 'utf8');
    const spec = parseCfg(text, 'lenet.cfg');
    const w = readWeights(path.join(FIXTURE, 'lenet.weights'), spec);
    const small = pruneChannels(text, spec, w, { rule: { kind: 'uniform', keep: 0.9 }, scores: l1Scores(spec, w) });
    expect(small.changes.map((c) => `${c.name}: ${c.filtersBefore} -> ${c.filtersAfter}`))
      .toEqual(['layer 0 (conv1): 20 -> 18', 'layer 2 (conv2): 50 -> 45', 'layer 4 (fc1): 500 -> 450']);
    // only the three filters= / output= values changed in the cfg text
    const changedLines = text.split('\n').filter((line, i) => small.cfgText.split('\n')[i] !== line);
    expect(changedLines).toEqual(['filters=20', 'filters=50', 'output=500']);

    const loaded = roundTrip(small.cfgText, small.weights);
    const dense = modelSize(spec, w);
    const shrunk = modelSize(loaded.spec, loaded.weights);
    expect(shrunk.bytes).toBe(loaded.bytes);
    // conv1 18*(1 + 75); conv2 45*(1 + 18*25); fc1 450*(1 + 45*16); fc2 10*(1 + 450)
    expect(shrunk.params).toBe(18 * 76 + 45 * (1 + 18 * 25) + 450 * (1 + 45 * 16) + 10 * 451);
    expect(shrunk.flops).toBeLessThan(0.85 * dense.flops);

    const before = await top1(spec, w);
    const after = await top1(loaded.spec, loaded.weights);
    expect(before).toBeCloseTo(0.982, 3); // darknet's own: 0.982 over the first 1,000
    expect(Math.abs(after - before)).toBeLessThanOrEqual(0.01);
  });
});
