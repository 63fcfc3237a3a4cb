/**
 * Fine-tuning of the shared values: one step moves each centroid by exactly the sum of its
 * members' changes under the same step of plain training; many steps keep every layer at
 * <= 2^bits distinct values with its zeros exact, and the network holds the codes' values.
 */
import { parseCfg } from '../../src/cfg/parser';
import { finetuneCentroids } from '../../src/compress/finetune';
import { decodeLayer, kmeansLayer, type LayerCode } from '../../src/compress/kmeans';
import { applyMasks, masksFromZeros } from '../../src/engine/masks';
import { Network } from '../../src/engine/network';
import { mulberry32 } from '../../src/engine/random';
import type { BatchSource } from '../../src/engine/train';
import { createKernels } from '../../src/kernels/backend';
import type { Kernels } from '../../src/kernels/types';
import type { WeightsFile } from '../../src/io/weights';

const spec = parseCfg(`
[net]
batch=8
height=4
width=4
channels=1
learning_rate=0.05
momentum=0.9
decay=0.0005
policy=constant
max_batches=100

[connected]
output=12
activation=relu

[connected]
output=3
activation=linear

[softmax]
`, 'mlp.cfg');

const BITS = 2;
let k: Kernels;
beforeAll(async () => {
  k = await createKernels('reference');
});
afterAll(() => k?.dispose());

/** Three classes of 4x4 inputs, each a bright quadrant plus noise. */
function batches(seed: number): BatchSource & { fixed(): { x: Float32Array; y: Float32Array } } {
  const r = mulberry32(seed);
  const make = () => {
    const x = new Float32Array(8 * 16);
    const y = new Float32Array(8 * 3);
    for (let b = 0; b < 8; b++) {
      const c = Math.floor(r() * 3);
      y[b * 3 + c] = 1;
      for (let i = 0; i < 16; i++) x[b * 16 + i] = r() * 0.3 + ((i >> 2) < 2 && (i & 3) >> 1 === c % 2 && c < 2 ? 0.7 : c === 2 && i >= 8 ? 0.7 : 0);
    }
    return { x, y };
  };
  return { next: async () => make(), fixed: make };
}

/** A trained, pruned (half the weights zero) model and its k-means codes. */
function prunedModel(): { pruned: WeightsFile; codes: Map<number, LayerCode> } {
  const net = new Network(spec, k, { seed: 3 });
  const src = batches(1);
  for (let i = 0; i < 40; i++) {
    const b = src.fixed();
    net.trainBatch(b.x, b.y);
  }
  const pruned = net.exportWeights();
  net.dispose();
  const codes = new Map<number, LayerCode>();
  for (const i of [0, 1]) {
    const w = pruned.layers[i].weights!;
    const t = [...w].map(Math.abs).sort((a, b) => a - b)[Math.floor(w.length / 2)];
    for (let j = 0; j < w.length; j++) if (Math.abs(w[j]) < t) w[j] = 0;
    codes.set(i, kmeansLayer(w, BITS));
  }
  return { pruned, codes };
}

function loaded(pruned: WeightsFile): Network {
  const net = new Network(spec, k, { seed: 3 });
  net.loadWeights(pruned);
  applyMasks(net, masksFromZeros(net, pruned));
  net.seen = 0;
  return net;
}

describe('[reference] centroid fine-tuning', () => {
  test('[reference] one step moves each centroid by the sum of its members\' changes', async () => {
    const { pruned, codes } = prunedModel();
    const batch = batches(9).fixed();
    // Plain training from the shared values, for the members' changes.
    const plain = loaded(pruned);
    for (const [i, code] of codes) plain.k.upload(plain.layers[i].params.find((p) => p.name === 'weights')!.tensor, decodeLayer(code));
    plain.trainBatch(batch.x, batch.y);
    const after = plain.exportWeights();
    plain.dispose();

    const net = loaded(pruned);
    const r = await finetuneCentroids(net, codes, { next: async () => batch }, { maxBatches: 1, epochSize: 8, logEvery: 0 });
    net.dispose();
    expect(r.outcome.losses).toHaveLength(1);
    for (const [i, code] of codes) {
      const before = decodeLayer(code);
      const expected = Array.from(code.centroids, (c) => c);
      code.indices.forEach((j, m) => {
        if (j > 0) expected[j - 1] += after.layers[i].weights![m] - before[m];
      });
      const moved = r.codes.get(i)!.centroids;
      expected.forEach((e, j) => expect(moved[j]).toBeCloseTo(e, 6));
      expect(Array.from(moved)).not.toEqual(Array.from(code.centroids));
    }
  });

  test('[reference] many steps keep <= 2^bits values per layer, zeros exact, the network on the codes', async () => {
    const { pruned, codes } = prunedModel();
    const net = loaded(pruned);
    const steps: number[] = [];
    const r = await finetuneCentroids(net, codes, batches(5), {
      maxBatches: 30, epochSize: 80, logEvery: 0, afterBatch: (s) => void steps.push(s.batch),
    });
    expect(steps).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const w = net.exportWeights();
    net.dispose();
    for (const [i, code] of r.codes) {
      const weights = w.layers[i].weights!;
      expect(new Set(weights).size).toBeLessThanOrEqual(2 ** BITS);
      let moved = 0;
      for (let j = 0; j < weights.length; j++) if ((weights[j] === 0) !== (pruned.layers[i].weights![j] === 0)) moved++;
      expect(moved).toBe(0);
      expect(Buffer.from(decodeLayer(code).buffer).equals(Buffer.from(weights.buffer))).toBe(true);
      expect(code.indices).toBe(codes.get(i)!.indices); // assignments never change
    }
  });
});
