/**
 * Dense against channel-pruned, side by side in one process: the same random batch through
 * both networks, runs alternating (dense, shrunk, dense, ...), medians of `--reps`, for
 * inference (cfg batch), training (forward + backward + update, cfg batch) and batch-1
 * latency. No image is decoded: this is the networks' own speed. Then a profile per layer
 * and per kernel of one training batch of each model, to show what dominates once the
 * convolutions are small.
 *
 *   npm run build && node dist/scripts/bench-channels.js cfg/lenet.cfg weights/lenet.weights \
 *     weights/prune-lenet/lenet_round3.cfg weights/prune-lenet/lenet_round3.weights [--reps 7] [--backend wasm-simd]
 */
import { readCfg } from '../src/cfg/parser';
import type { NetworkSpec } from '../src/cfg/config';
import { Network } from '../src/engine/network';
import { mulberry32 } from '../src/engine/random';
import { readWeights, type WeightsFile } from '../src/io/weights';
import { createKernels, type BackendChoice } from '../src/kernels/backend';
import type { Kernels } from '../src/kernels/types';
import { measureSpeed, type Speed } from '../src/prune/channels/speed';

interface Model {
  name: string;
  spec: NetworkSpec;
  weights: WeightsFile;
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

/** Milliseconds per training batch spent in each layer (forward, backward, update) and each kernel. */
function profile(m: Model, k: Kernels, batches: number): { layers: Array<[string, number, number, number]>; kernels: Array<[string, number]>; total: number } {
  const kernelMs = new Map<string, number>();
  const timed = new Proxy(k, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'alloc' || prop === 'free') return v.bind(target);
      return (...a: unknown[]) => {
        const t0 = process.hrtime.bigint();
        const r = (v as (...x: unknown[]) => unknown).apply(target, a);
        kernelMs.set(String(prop), (kernelMs.get(String(prop)) ?? 0) + Number(process.hrtime.bigint() - t0) / 1e6);
        return r;
      };
    },
  });
  const net = new Network(m.spec, timed, { seed: 1 });
  const perLayer = net.layers.map(() => [0, 0, 0]);
  net.layers.forEach((l, i) => {
    for (const [j, verb] of (['forward', 'backward', 'update'] as const).entries()) {
      const f = (l as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>)[verb];
      if (!f) continue;
      (l as unknown as Record<string, unknown>)[verb] = (...a: unknown[]) => {
        const t0 = process.hrtime.bigint();
        const r = f.apply(l, a);
        perLayer[i][j] += Number(process.hrtime.bigint() - t0) / 1e6;
        return r;
      };
    }
  });
  try {
    net.loadWeights(m.weights);
    const random = mulberry32(3);
    const classes = net.outputs;
    const x = Float32Array.from({ length: net.batch * m.spec.net.inputs }, () => random());
    const y = new Float32Array(net.batch * classes);
    for (let b = 0; b < net.batch; b++) y[b * classes + (b % classes)] = 1;
    net.trainBatch(x, y);
    for (const row of perLayer) row.fill(0);
    kernelMs.clear();
    const t0 = process.hrtime.bigint();
    for (let b = 0; b < batches; b++) net.trainBatch(x, y);
    const total = Number(process.hrtime.bigint() - t0) / 1e6 / batches;
    return {
      layers: perLayer.map((r, i) => [`${i} ${m.spec.layers[i].type}`, r[0] / batches, r[1] / batches, r[2] / batches]),
      kernels: [...kernelMs].map(([name, ms]) => [name, ms / batches] as [string, number]).sort((a, b) => b[1] - a[1]),
      total,
    };
  } finally {
    net.dispose();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const reps = Number(flag(args, '--reps', '7'));
  const backend = flag(args, '--backend', 'wasm-simd') as BackendChoice;
  if (args.length !== 4) throw new Error('usage: bench-channels <dense.cfg> <dense.weights> <small.cfg> <small.weights> [--reps N] [--backend B]');
  const load = (name: string, cfg: string, w: string): Model => {
    const spec = readCfg(cfg);
    return { name, spec, weights: readWeights(w, spec) };
  };
  const models = [load('dense', args[0], args[1]), load('shrunk', args[2], args[3])];
  const k = await createKernels(backend);
  console.log(`backend: ${k.description}; batch ${models[0].spec.net.batch}; ${reps} alternating runs, medians`);
  const runs: Speed[][] = models.map(() => []);
  for (let r = 0; r < reps; r++) {
    models.forEach((m, i) => runs[i].push(measureSpeed(m.spec, m.weights, k, { passes: 10, seconds: 0.5 })));
  }
  const med = runs.map((rs) => ({
    infer: median(rs.map((s) => s.inferImagesPerSecond)),
    train: median(rs.map((s) => s.trainImagesPerSecond)),
    latency: median(rs.map((s) => s.latencyMs)),
  }));
  const flops = models.map((m) => m.spec.layers.reduce((s, l) => s + l.flops, 0));
  const params = models.map((m) => m.spec.layers.reduce((s, l) => s + l.params.reduce((t, p) => t + p.size, 0), 0));
  console.log('model    params     MFLOPs  infer img/s  train img/s  latency ms (batch 1)');
  models.forEach((m, i) => {
    console.log(`${m.name.padEnd(7)} ${String(params[i]).padStart(7)}  ${(flops[i] / 1e6).toFixed(3).padStart(9)}  ${med[i].infer.toFixed(0).padStart(11)}  ` +
      `${med[i].train.toFixed(0).padStart(11)}  ${med[i].latency.toFixed(3).padStart(10)}`);
  });
  console.log(`ratio   ${(params[0] / params[1]).toFixed(1).padStart(6)}x ${(flops[0] / flops[1]).toFixed(1).padStart(9)}x  ${(med[1].infer / med[0].infer).toFixed(2).padStart(10)}x  ` +
    `${(med[1].train / med[0].train).toFixed(2).padStart(10)}x  ${(med[0].latency / med[1].latency).toFixed(2).padStart(9)}x`);

  for (const m of models) {
    const p = profile(m, k, 50);
    console.log(`\n${m.name}: one training batch ${p.total.toFixed(3)} ms; per layer (ms): forward  backward  update`);
    for (const [name, f, b, u] of p.layers) {
      if (f + b + u < 0.0005) continue;
      console.log(`  ${name.padEnd(18)} ${f.toFixed(3).padStart(7)}  ${b.toFixed(3).padStart(8)}  ${u.toFixed(3).padStart(6)}  (${((100 * (f + b + u)) / p.total).toFixed(1)}%)`);
    }
    console.log(`  kernels (ms per batch): ${p.kernels.slice(0, 10).map(([n, ms]) => `${n} ${ms.toFixed(3)}`).join(', ')}`);
  }
  k.dispose();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
