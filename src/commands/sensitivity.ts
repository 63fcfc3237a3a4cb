import * as path from 'path';
import type { Reporter } from '../engine/reporter';
import { silentReporter } from '../engine/reporter';
import type { ImageSource } from '../data/loader';
import { atomicWrite, checkOutputDir } from '../io/files';
import type { BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { formatSensitivityCsv } from '../prune/scan';
import { sensitivityChart, sensitivityScan, type SensitivityResult } from '../prune/sensitivity';
import { integer, MAX_COUNT, parseLevels } from './args';
import { withInterrupt, Interrupted } from './interrupt';
import { buildNetwork, closeSource, loadClassifierSpec, loadKernels, loadWeights, readDataConfig, requireFinite, validSource, withBatch } from './load';
import { reporterOf, verb } from './verb';

/** `sensitivity`: reads its files once, scans on one evaluation network, writes the CSV and the PNG. */
export interface SensitivityCommand {
  dataFile: string;
  cfgFile: string;
  weights: string;
  levels: number[];
  /** CSV and PNG go here (default: beside the weights) */
  out?: string;
  backend?: BackendChoice;
  evalImages?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  kernels?: Kernels;
  evalSource?: ImageSource;
}

export async function sensitivityCommand(o: SensitivityCommand): Promise<SensitivityResult & { csv: string; png: string }> {
  const reporter = o.reporter ?? silentReporter;
  const data = readDataConfig(o.dataFile);
  const spec = loadClassifierSpec(o.cfgFile, data.classes, silentReporter);
  const out = o.out ?? path.dirname(o.weights);
  checkOutputDir(out);
  const dense = loadWeights(o.weights, spec);
  requireFinite(dense, spec, o.weights);
  const source = o.evalSource ?? validSource(data, spec, o.evalImages);
  const net = buildNetwork(withBatch(spec, spec.net.batch), o.kernels ?? (await loadKernels(o.backend, reporter)));
  try {
    const r = await sensitivityScan(spec, net, dense, source, { levels: o.levels, reporter, signal: o.signal });
    const base = path.basename(o.weights).replace(/\.weights$/, '');
    const csv = path.join(out, `${base}.sensitivity.csv`);
    const png = path.join(out, `${base}.sensitivity.png`);
    atomicWrite(csv, formatSensitivityCsv(r.scan));
    atomicWrite(png, sensitivityChart(spec, r.scan, `${path.basename(o.cfgFile)}: sensitivity (one layer pruned, no retraining)`));
    reporter.info(`wrote ${csv} and ${png}`);
    return { ...r, csv, png };
  } finally {
    net.dispose();
    if (!o.evalSource) await closeSource(source);
  }
}

export const sensitivity = verb({
  command: 'sensitivity <data> <cfg> <weights>',
  describe: 'prune each layer alone to each level (no retraining) and report which layers are fragile',
  builder: (y) =>
    y
      .positional('data', { type: 'string', demandOption: true, describe: 'darknet .data file' })
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', demandOption: true, describe: 'the dense model' })
      .option('levels', { type: 'string', default: '0:0.95:0.05', coerce: (t: string) => parseLevels(t), describe: 'start:stop:step or a comma list of sparsities' })
      .option('out', { type: 'string', describe: 'folder for the CSV and PNG (default: beside the weights)' })
      .option('eval-images', { type: 'string', coerce: integer('eval-images', { min: 1, max: MAX_COUNT }), describe: 'evaluate on the first N valid images (default: all)' }),
  async run(args, io) {
    const r = await withInterrupt((l) => io.err(`${l}\n`), async (i) => {
      try {
        return await sensitivityCommand({
          dataFile: args.data, cfgFile: args.cfg, weights: args.weights, levels: args.levels, out: args.out, backend: args.backend,
          evalImages: args['eval-images'], reporter: reporterOf(io), signal: i.signal,
        });
      } catch (e) {
        if (i.received) throw new Interrupted('interrupted: the scan was not finished and nothing was written', i.received);
        throw e;
      }
    });
    io.out(`${r.csv}\n${r.png}\n`);
  },
});
