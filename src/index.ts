/**
 * darknet-ts as a library: parse a darknet cfg, build a network on a backend, train,
 * validate, predict, and read and write darknet .weights.
 *
 * @example
 *   import { readCfg, createKernels, Network, readWeights } from 'darknet-ts';
 *   const spec = readCfg('cfg/lenet.cfg');
 *   const net = new Network(spec, await createKernels('auto'));
 *   net.loadWeights(readWeights('weights/lenet.weights', spec));
 */
export { readCfg, parseCfg } from './parser';
export { Network } from './network';
export { createKernels, probeBackends } from './kernels/backend';
export type { Kernels, Tensor, BackendName } from './kernels/types';
export { readWeights, writeWeights, parseWeights, serializeWeights } from './weights';
export type { WeightsFile, WeightsHeader } from './weights';
export { trainClassifier, validClassifier, predictImages, validate } from './classifier';
export { formatSummary } from './summary';
export { DarknetError } from './errors';
