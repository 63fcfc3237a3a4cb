import * as fs from 'fs';
import type { NetworkSpec } from '../cfg/config';
import { readCfg } from '../cfg/parser';
import { readDataConfig, readImageList, readLabels, readLines, type DataConfig } from '../data/dataset';
import { ListSource, type ImageSource } from '../data/loader';
import { findNonFinite } from '../engine/finite';
import { Network, withBatch } from '../engine/network';

export { withBatch };
import type { Reporter } from '../engine/reporter';
import { DarknetError } from '../errors';
import { createKernels, type BackendChoice } from '../kernels/backend';
import type { Kernels } from '../kernels/types';
import { readWeightsOrDcw } from '../compress/dcw';
import { writeWeights, type WeightsFile } from '../io/weights';

/**
 * What the commands share: reading a .data file, a cfg and weights once, building the
 * kernels and networks, and saving weights so that a bad model never replaces a good file.
 */

/** Parses the cfg, reports its warnings, checks it ends in `classes` outputs. */
export function loadClassifierSpec(cfgFile: string, classes: number | undefined, reporter: Reporter): NetworkSpec {
  const spec = readCfg(cfgFile);
  for (const w of spec.warnings) reporter.warn(w);
  const outputs = spec.layers[spec.layers.length - 1].outputs;
  if (classes !== undefined && outputs !== classes) {
    throw new DarknetError(`${cfgFile}: the last layer has ${outputs} outputs but the .data file says classes=${classes}`);
  }
  if (spec.net.c !== 1 && spec.net.c !== 3) {
    throw new DarknetError(`${cfgFile}: channels=${spec.net.c}; classifiers load images with 1 or 3 channels`);
  }
  return spec;
}

/** The kernels a command asked for, saying which backend really runs. */
export async function loadKernels(backend: BackendChoice | undefined, reporter: Reporter): Promise<Kernels> {
  const k = await createKernels(backend);
  reporter.info(`backend: ${k.description}`);
  return k;
}

/** Reads a darknet .weights or a Deep Compression .dcw file (told apart by their first bytes) for a spec. */
export function loadWeights(file: string, spec: NetworkSpec): WeightsFile {
  return readWeightsOrDcw(file, spec);
}

/** Refuses weights holding NaN or infinity, naming where (for valid, predict and as a start point). */
export function requireFinite(w: WeightsFile, spec: NetworkSpec, file: string): void {
  const bad = findNonFinite(w, spec);
  if (bad) throw new DarknetError(`${file}: layer ${bad.layer} (${bad.type}) ${bad.param}[${bad.index}] is ${bad.value}: the weights are not finite (a training that diverged?)`);
}

/** A network on `k` with weights (when given) loaded. */
export function buildNetwork(spec: NetworkSpec, k: Kernels, weights?: WeightsFile, seed?: number): Network {
  const net = new Network(spec, k, { seed });
  if (weights) net.loadWeights(weights);
  return net;
}

/**
 * Saves a network's weights, atomically. A network holding NaN or infinity is never
 * written: the file already there (a good model) stays as it was.
 */
export function saveWeights(file: string, w: WeightsFile, spec: NetworkSpec): void {
  const bad = findNonFinite(w, spec);
  if (bad) {
    throw new DarknetError(`not saving ${file}: layer ${bad.layer} (${bad.type}) ${bad.param}[${bad.index}] is ${bad.value}; the file on disk is unchanged`);
  }
  writeWeights(file, w, spec);
}

/** saveWeights of a network's current weights. */
export function saveNetwork(file: string, net: Network): void {
  saveWeights(file, net.exportWeights(), net.spec);
}

/**
 * A .data file's validation images (all must load), optionally the first `limit`, prepared
 * as darknet's `classifier valid` does (the centred square resized to the net's size).
 */
export function validSource(data: DataConfig, spec: NetworkSpec, limit?: number): ListSource {
  const paths = readImageList(data.valid, 'the validation list');
  return new ListSource(limit ? paths.slice(0, limit) : paths, readLabels(data.labels, data.classes), shapeOf(spec), { cache: false, preprocess: 'center-crop' });
}

/** A .data file's training images (decoded once, then cached as bytes). */
export function trainSource(data: DataConfig, spec: NetworkSpec): ListSource {
  const paths = readImageList(data.train, 'the training list');
  return new ListSource(paths, readLabels(data.labels, data.classes), shapeOf(spec));
}

/** Ends a source's decode workers (sources made by tests or callers may have none). */
export async function closeSource(source: ImageSource): Promise<void> {
  await source.close?.();
}

export function shapeOf(spec: NetworkSpec): { w: number; h: number; c: number } {
  return { w: spec.net.w, h: spec.net.h, c: spec.net.c };
}

/** Class names for predictions: the .data file's names, else its labels. */
export function classNames(data: DataConfig): string[] {
  return fs.existsSync(data.names) ? readLines(data.names, 'names') : readLines(data.labels, 'labels');
}

export { readDataConfig };
