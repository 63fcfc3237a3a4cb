/**
 * Inference images/s of a pruned network on the sparse path against the dense one, side by
 * side in one process (runs alternate, medians of 5): LeNet-300-100 pruned as Han et al.
 * (fc1 92%, fc2 91%, fc3 74% zeros, 12x fewer weights) at batch 1 and batch 64, wasm-simd.
 * Then LeNet-5 pruned as Han et al. (conv1 34%, conv2 88%, fc1 92%, fc2 81% zeros, 12x) at
 * batch 1 and 64 with `--sparse auto` (conv1 stays dense) against dense. Then retraining
 * with frozen zeros (masks on), batch 64: LeNet-300-100 with every layer 90% sparse, and the
 * pruned LeNet-5 with `--sparse auto`. The weights are random
 * (a trained model's zeros sit elsewhere; the work is the same). BENCH_ONLY=lenet5 stops
 * after LeNet-5.
 *
 *   npm run build && node dist/scripts/bench-sparse-nets.js
 */
import * as path from 'path';
import { readCfg } from '../src/cfg/parser';
import { Network, withBatch } from '../src/engine/network';
import { mulberry32 } from '../src/engine/random';
import { createKernels } from '../src/kernels/backend';
import { applyMasks, masksFromZeros } from '../src/engine/masks';
import { applyThreshold } from '../src/prune/threshold';
import { sparsityOf } from '../src/prune/stats';

const median = (a: number[]): number => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

async function main(): Promise<void> {
  const k = await createKernels('wasm-simd');
  console.log(`backend: ${k.description}`);
  const base = readCfg(path.resolve(__dirname, '..', '..', 'cfg', 'lenet-300-100.cfg'));
  const lenet5 = readCfg(path.resolve(__dirname, '..', '..', 'cfg', 'lenet.cfg'));

  /** Inference images/s of `cfg` pruned by `rules` (layer -> fraction of zeros), dense against `mode`, runs alternating. */
  const inference = (cfg: typeof base, rules: [number, number][], mode: 'on' | 'auto', seed: number, images: Record<number, number>, warmup: number) => {
    const rows: string[] = [];
    for (const batch of [1, 64]) {
      const spec = withBatch(cfg, batch);
      const net = new Network(spec, k, { seed: 1 });
      const ruleMap = new Map(rules.map(([i, sp]) => [i, { kind: 'fraction' as const, sparsity: sp }]));
      const pruned = applyThreshold(spec, net.exportWeights(), { scope: 'map', rules: ruleMap }).weights;
      net.loadWeights(pruned);
      const compression = sparsityOf(spec, pruned).total.compression;
      const random = mulberry32(seed);
      const x = Float32Array.from({ length: batch * spec.net.inputs }, () => random());
      let sparseLayers: number[] = [];
      const time = (m: 'on' | 'auto' | 'off') => {
        const on = net.setSparse(m);
        if (m !== 'off') sparseLayers = on;
        for (let i = 0; i < warmup; i++) net.predict(x);
        const t0 = process.hrtime.bigint();
        for (let n = 0; n < images[batch]; n += batch) net.predict(x);
        return images[batch] / (Number(process.hrtime.bigint() - t0) / 1e9);
      };
      const dense: number[] = [];
      const sparse: number[] = [];
      for (let r = 0; r < 5; r++) {
        dense.push(time('off'));
        sparse.push(time(mode));
      }
      const d = median(dense);
      const sp = median(sparse);
      rows.push(`${String(batch).padStart(5)}  ${compression.toFixed(1).padStart(11)}x  ${d.toFixed(0).padStart(13)}  ${sp.toFixed(0).padStart(14)}  ${(sp / d).toFixed(2).padStart(6)}x  ${sparseLayers.join(',')}`);
      net.dispose();
    }
    return rows;
  };

  const rows = inference(base, [[0, 0.92], [1, 0.91], [2, 0.74]], 'on', 2, { 1: 4000, 64: 40000 }, 20);
  console.log('LeNet-300-100, inference (network alone), images/s, medians of 5 alternating runs');
  console.log('batch  compression  dense img/s  sparse img/s   ratio  sparse layers');
  for (const r of rows) console.log(r);

  // LeNet-5 pruned as Han et al. (conv1 34%, conv2 88%, fc1 92%, fc2 81% zeros): sparse
  // where `auto` puts it (conv1 stays dense) against every layer dense.
  const rows5 = inference(lenet5, [[0, 0.34], [2, 0.88], [4, 0.92], [5, 0.81]], 'auto', 4, { 1: 1000, 64: 6400 }, 5);
  console.log('LeNet-5, inference (network alone), images/s, medians of 5 alternating runs, sparse = --sparse auto');
  console.log('batch  compression  dense img/s  sparse img/s   ratio  sparse layers');
  for (const r of rows5) console.log(r);
  if (process.env.BENCH_ONLY === 'lenet5') {
    k.dispose();
    return;
  }

  // Retraining with frozen zeros, batch 64, masks on: LeNet-300-100 with every layer 90%
  // sparse (all sparse), and LeNet-5 pruned as above (--sparse auto: conv1 dense).
  const retrain = (cfg: typeof base, rules: Map<number, number>, mode: 'on' | 'auto', what: string) => {
    const spec = withBatch(cfg, 64);
    const net = new Network(spec, k, { seed: 1 });
    const ruleMap = new Map([...rules].map(([i, sp]) => [i, { kind: 'fraction' as const, sparsity: sp }]));
    const pruned = applyThreshold(spec, net.exportWeights(), { scope: 'map', rules: ruleMap }).weights;
    net.loadWeights(pruned);
    applyMasks(net, masksFromZeros(net, pruned));
    const random = mulberry32(3);
    const x = Float32Array.from({ length: 64 * spec.net.inputs }, () => random());
    const y = new Float32Array(64 * 10);
    for (let i = 0; i < 64; i++) y[i * 10 + (i % 10)] = 1;
    const steps = cfg === base ? 300 : 60;
    let layers: number[] = [];
    const trainRate = (m: 'on' | 'auto' | 'off') => {
      const on = net.setSparse(m);
      if (m !== 'off') layers = on;
      for (let i = 0; i < 5; i++) net.trainBatch(x, y);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < steps; i++) net.trainBatch(x, y);
      return (steps * 64) / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    const d: number[] = [];
    const s: number[] = [];
    for (let r = 0; r < 5; r++) {
      d.push(trainRate('off'));
      s.push(trainRate(mode));
    }
    console.log(`retraining with frozen zeros, ${what}, batch 64: dense ${median(d).toFixed(0)} img/s, sparse ${median(s).toFixed(0)} img/s, ` +
      `${(median(s) / median(d)).toFixed(2)}x (sparse layers ${layers.join(',')})`);
    net.dispose();
  };
  retrain(base, new Map([[0, 0.9], [1, 0.9], [2, 0.9]]), 'on', 'LeNet-300-100 90% sparse');
  retrain(lenet5, new Map([[0, 0.34], [2, 0.88], [4, 0.92], [5, 0.81]]), 'auto', 'LeNet-5 pruned 12x');
  k.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
