import * as path from 'path';
import { ReferenceKernels } from '../../src/kernels/reference';
import type { LayerDefinition } from '../../src/engine/layer';
import { crop } from '../../src/layers/crop';
import { deconvolutional } from '../../src/layers/deconvolutional';
import { l2norm } from '../../src/layers/l2norm';
import { local } from '../../src/layers/local';
import { logistic } from '../../src/layers/logistic';
import { normalization } from '../../src/layers/normalization';
import { reorg } from '../../src/layers/reorg';
import { softmax } from '../../src/layers/softmax';
import { upsample } from '../../src/layers/upsample';
import { describeEachBackend } from '../backends';
import { context, maxBackendError } from './gradcheck';

// The layers added for darknet's cfg folder run on every backend and agree with the
// float32 reference (forward in training and inference, backward, update) to 1e-4
// relative to max(1, |x|), the tolerance of the other layers' backend suites.
const TOLERANCE = 1e-4;
const TREE = path.join(__dirname, '..', 'fixtures', 'darknet-tables', 'tiny.tree');

const CASES: Array<[string, LayerDefinition<any>, string, Record<string, string | number>, { batch: number; h: number; w: number; c: number }]> = [
  ['crop', crop, 'crop', { crop_height: 3, crop_width: 2, flip: 1 }, { batch: 2, h: 4, w: 4, c: 3 }],
  ['reorg', reorg, 'reorg', { stride: 2 }, { batch: 2, h: 4, w: 2, c: 4 }],
  ['local', local, 'local', { filters: 2, size: 3, pad: 1, activation: 'leaky' }, { batch: 2, h: 3, w: 4, c: 2 }],
  ['normalization', normalization, 'lrn', { size: 3, alpha: 0.1 }, { batch: 2, h: 2, w: 2, c: 5 }],
  ['l2norm', l2norm, 'l2norm', {}, { batch: 2, h: 2, w: 2, c: 3 }],
  ['logistic', logistic, 'logistic', {}, { batch: 2, h: 1, w: 1, c: 6 }],
  ['upsample', upsample, 'upsample', { stride: 2 }, { batch: 2, h: 2, w: 3, c: 2 }],
  ['deconvolutional', deconvolutional, 'deconv', { filters: 3, size: 3, stride: 2, pad: 1, batch_normalize: 1, activation: 'leaky' }, { batch: 2, h: 3, w: 2, c: 2 }],
  ['softmax tree', softmax, 'softmax', { tree: TREE }, { batch: 2, h: 1, w: 1, c: 7 }],
  ['softmax spatial', softmax, 'softmax', { spatial: 1 }, { batch: 2, h: 2, w: 2, c: 3 }],
];

describeEachBackend("darknet's other layers: same results as the reference", (_backend, get) => {
  const reference = new ReferenceKernels();
  test.each(CASES)('%s: forward, backward, update, inference', (_name, def, section, keys, shape) => {
    expect(maxBackendError(def, get(), reference, section, keys, context(shape))).toBeLessThan(TOLERANCE);
  });
});
