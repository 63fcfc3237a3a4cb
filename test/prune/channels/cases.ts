/**
 * The graphs of the channel-surgery proof (surgery.test.ts, backends.test.ts): each a small
 * cfg, the filters to remove, and how to make their removal exact (zero the filters'
 * weights so they output act(bias), set a batch-norm scale to 0, or zero a reader's slices).
 */
import type { NetworkSpec } from '../../../src/cfg/config';
import type { WeightsFile } from '../../../src/io/weights';
import type { ChannelGraph } from '../../../src/prune/channels/graph';
import { cfgText, zeroFilter } from './nets';

export interface Case {
  name: string;
  text: string;
  /** filters to remove, by producer layer */
  remove: Array<[number, number[]]>;
  /** makes the removal exact: zero the filters' weights, a gamma, or a reader's slice */
  prepare(spec: NetworkSpec, w: WeightsFile, g: ChannelGraph): void;
  /** the readers' slices are zeroed: nothing to fold */
  nothingToFold?: boolean;
}

/** Zeroes every removed filter's weights: each then outputs act(bias), which surgery folds. */
function zeroRemoved(remove: Array<[number, number[]]>) {
  return (spec: NetworkSpec, w: WeightsFile) => {
    for (const [layer, fs] of remove) for (const f of fs) zeroFilter(spec, w, layer, f);
  };
}

/** Sets the removed filters' batch-norm scales to 0: each then outputs act(bias). */
function zeroGamma(spec: NetworkSpec, w: WeightsFile, layer: number, fs: number[]): void {
  for (const f of fs) w.layers[layer].scales![f] = 0;
}

/** Zeroes the kernel slices [:, j, :, :] of a conv layer for input channels js. */
function zeroInputSlices(spec: NetworkSpec, w: WeightsFile, layer: number, js: number[]): void {
  const l = spec.layers[layer];
  const taps = (l.params.find((p) => p.name === 'weights')!.size / l.outC) / l.c;
  const a = w.layers[layer].weights!;
  for (let f = 0; f < l.outC; f++) for (const j of js) a.fill(0, (f * l.c + j) * taps, (f * l.c + j + 1) * taps);
}

const convConv: Array<[number, number[]]> = [[0, [1, 4, 6]], [1, [0, 5]]];
const flatten: Array<[number, number[]]> = [[0, [0, 3]], [2, [2, 5]]];
const routed: Array<[number, number[]]> = [[0, [2, 7]], [1, [0, 3, 5]]];
const fcfc: Array<[number, number[]]> = [[0, [0, 9]], [2, [3]]];

export const CASES: Case[] = [
  {
    name: 'conv -> conv -> connected (weights zeroed, act(bias) folded into biases)',
    text: cfgText(['height=8', 'width=8', 'channels=2'],
      ['[convolutional]', 'filters=8', 'size=3', 'stride=1', 'pad=0', 'activation=leaky'],
      ['[convolutional]', 'filters=6', 'size=3', 'stride=1', 'pad=0', 'activation=logistic'],
      ['[connected]', 'output=5', 'activation=linear']),
    remove: convConv,
    prepare: zeroRemoved(convConv),
  },
  {
    name: 'conv(BN) -> conv(BN) -> connected (gamma 0, folded into the rolling mean)',
    text: cfgText(['height=7', 'width=7', 'channels=3'],
      ['[convolutional]', 'batch_normalize=1', 'filters=8', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[convolutional]', 'batch_normalize=1', 'filters=6', 'size=3', 'stride=2', 'pad=0', 'activation=tanh'],
      ['[connected]', 'output=4', 'activation=linear']),
    remove: [[0, [0, 2, 3]], [1, [4]]],
    prepare: (spec, w) => {
      zeroGamma(spec, w, 0, [0, 2, 3]);
      zeroGamma(spec, w, 1, [4]);
    },
  },
  {
    name: 'conv -> conv with padding (the reader\'s slices zeroed)',
    text: cfgText(['height=6', 'width=6', 'channels=2'],
      ['[convolutional]', 'filters=7', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[convolutional]', 'batch_normalize=1', 'filters=5', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[convolutional]', 'filters=3', 'size=1', 'stride=1', 'pad=0', 'activation=linear']),
    remove: [[0, [1, 2, 6]], [1, [0]]],
    prepare: (spec, w) => {
      zeroInputSlices(spec, w, 1, [1, 2, 6]);
      zeroInputSlices(spec, w, 2, [0]);
    },
    nothingToFold: true,
  },
  {
    name: 'conv -> maxpool -> connected (flatten: h*w columns per channel) -> connected',
    text: cfgText(['height=6', 'width=6', 'channels=3'],
      ['[convolutional]', 'filters=6', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[maxpool]', 'size=2', 'stride=2'],
      ['[connected]', 'output=7', 'activation=elu'],
      ['[connected]', 'output=3', 'activation=linear'],
      ['[softmax]']),
    remove: flatten,
    prepare: zeroRemoved(flatten),
  },
  {
    name: 'conv -> conv, [route] of both -> conv(BN) -> connected',
    text: cfgText(['height=6', 'width=6', 'channels=3'],
      ['[convolutional]', 'filters=8', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[convolutional]', 'filters=6', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
      ['[route]', 'layers=-2,-1'],
      ['[convolutional]', 'batch_normalize=1', 'filters=5', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
      ['[connected]', 'output=4', 'activation=linear']),
    remove: routed,
    prepare: zeroRemoved(routed),
  },
  {
    name: 'conv(BN) -> conv(BN) -> [shortcut] -> conv(BN) -> avgpool -> connected (tied channels)',
    text: cfgText(['height=5', 'width=5', 'channels=3'],
      ['[convolutional]', 'batch_normalize=1', 'filters=6', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
      ['[convolutional]', 'batch_normalize=1', 'filters=6', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
      ['[shortcut]', 'from=-2', 'activation=leaky'],
      ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
      ['[avgpool]'],
      ['[connected]', 'output=3', 'activation=linear']),
    remove: [[0, [1, 4]]],
    prepare: (spec, w) => {
      // both sides of the add are act(bias); the padded conv 1 does not read them
      zeroGamma(spec, w, 0, [1, 4]);
      zeroGamma(spec, w, 1, [1, 4]);
      zeroInputSlices(spec, w, 1, [1, 4]);
    },
  },
  {
    name: 'connected(BN) -> dropout -> connected -> connected (flat input)',
    text: cfgText(['inputs=12'],
      ['[connected]', 'batch_normalize=1', 'output=10', 'activation=logistic'],
      ['[dropout]', 'probability=0.3'],
      ['[connected]', 'output=8', 'activation=leaky'],
      ['[connected]', 'output=3', 'activation=linear']),
    remove: fcfc,
    prepare: (spec, w) => {
      zeroGamma(spec, w, 0, [0, 9]);
      zeroFilter(spec, w, 2, 3);
    },
  },
  {
    name: 'conv -> [batchnorm] -> dropout -> avgpool -> connected',
    text: cfgText(['height=5', 'width=5', 'channels=2'],
      ['[convolutional]', 'filters=5', 'size=3', 'stride=1', 'pad=1', 'activation=linear'],
      ['[batchnorm]'],
      ['[dropout]', 'probability=0.5'],
      ['[avgpool]'],
      ['[connected]', 'output=3', 'activation=linear']),
    remove: [[0, [1, 2]]],
    prepare: zeroRemoved([[0, [1, 2]]]),
  },
];

/**
 * Two residual blocks (layers 1-3 and 4-6, shortcuts linear, the second's from= absolute), a
 * [route] of the second block's output and layer 0 (relative), a 1x1 conv, global average, a
 * connected head and softmax. 1x1 convs where a constant is folded, so every fold is exact.
 */
export const RESIDUAL = cfgText(['height=6', 'width=6', 'channels=2'],
  ['# stem', '[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
  ['# block A', '[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
  ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=1', 'stride=1', 'pad=0', 'activation=linear'],
  ['[shortcut]', 'from=-3', 'activation=linear'],
  ['# block B', '[convolutional]', 'batch_normalize=1', 'filters=4', 'size=3', 'stride=1', 'pad=1', 'activation=leaky'],
  ['[convolutional]', 'batch_normalize=1', 'filters=4', 'size=1', 'stride=1', 'pad=0', 'activation=linear'],
  ['[shortcut]', 'from=3', 'activation=linear'],
  ['# the head', '[route]', 'layers=-1,-7'],
  ['[convolutional]', 'batch_normalize=1', 'filters=5', 'size=1', 'stride=1', 'pad=0', 'activation=leaky'],
  ['[avgpool]'],
  ['[connected]', 'output=3', 'activation=linear'],
  ['[softmax]']);
