/**
 * darknet-ts as a library: parse a darknet cfg, build a network on a backend, train and
 * evaluate it in memory, and shrink it with the pruning toolkit (thresholds, masks, the
 * prune-retrain loop, the sensitivity scan, sparsity statistics). Nothing here prints:
 * pass a Reporter (`collectingReporter()`, or `silentReporter`, the default).
 *
 * @example
 *   import { readCfg, readWeights, createKernels, Network, applyThreshold, fractionRules,
 *            masksFromZeros, applyMasks, sparsityOf } from 'darknet-ts';
 *   const spec = readCfg('cfg/lenet.cfg');
 *   const dense = readWeights('weights/lenet.weights', spec);
 *   const pruned = applyThreshold(spec, dense, { scope: 'layer', rule: { kind: 'fraction', sparsity: 0.9 } }).weights;
 *   const net = new Network(spec, await createKernels('auto'));
 *   net.loadWeights(pruned);
 *   applyMasks(net, masksFromZeros(net, pruned)); // the zeros stay zero through training
 *   console.log(sparsityOf(spec, pruned).total.compression); // 10
 */
export { readCfg, parseCfg } from './cfg/parser';
export type { NetworkSpec, NetConfig } from './cfg/config';
export { Network } from './engine/network';
export { train, TrainingDiverged, type BatchSource, type TrainOptions, type TrainOutcome, type TrainStep } from './engine/train';
export { evaluate, type Evaluation, type EvaluateOptions } from './engine/evaluate';
export { applyMasks, clearMasks, countMasked, maskFromZeros, masksFromZeros, type Masks } from './engine/masks';
export { silentReporter, collectingReporter, streamReporter, type Reporter, type ProgressBar } from './engine/reporter';
export { createKernels, probeBackends } from './kernels/backend';
export type { Kernels, Tensor, BackendName } from './kernels/types';
export { readWeights, writeWeights, parseWeights, serializeWeights } from './io/weights';
export type { WeightsFile, WeightsHeader } from './io/weights';
export { ListSource, MnistSource, TrainBatches, type ImageSource } from './data/loader';
export { loadMnist } from './data/mnist';
export { applyThreshold, fractionRules, prunableLayers, type ThresholdRule, type ThresholdRules } from './prune/threshold';
export { pruneSchedule, uniformSchedule, agpSchedule, triangleSchedule, sensitivitySchedule, type LayerRates, type ScheduleMode } from './prune/schedule';
export { pruneLoop, denseResult, type PruneLoopOptions, type PruneLoopResult, type RoundResult } from './prune/recipe';
export { sensitivityScan, type SensitivityResult } from './prune/sensitivity';
export { parseSensitivityCsv, formatSensitivityCsv, ratesFromSensitivity, type SensitivityScan } from './prune/scan';
export { sparsityOf, type SparsityReport } from './prune/stats';
export {
  pruneChannels, channelGraph, planChannels, planForFlops, shrink, l1Scores, bnScores, taylorScores, modelSize, parseLayerKeep, type KeepRule,
} from './prune/channels';
export { rewriteCfg } from './cfg/write';
export { readWeightsOrDcw, writeDcw, readDcw, kmeansModel, sharedWeights, compressedModel, finetuneCentroids, compressionReport } from './compress';
export { formatSummary } from './report/summary';
export { checkNetworkBudget, estimateNetworkBytes, NETWORK_MEMORY_BUDGET } from './cfg/memory';
export { DarknetError } from './errors';
