import * as fs from 'fs';
import * as path from 'path';
import { readCfg } from '../../src/cfg/parser';
import { Network } from '../../src/engine/network';
import { parseWeights, serializeWeights } from '../../src/io/weights';
import { ReferenceKernels } from '../../src/kernels/reference';

// weights-order.weights was written by darknet (`darknet partial weights-order.cfg ""
// out 100`: its random initial values, no file loaded) for our weights-order.cfg: two
// [local] layers and a batch-normalized [deconvolutional]. darknet's initial values mark
// each array (local biases 0, only the first location's weights set; deconv biases 0,
// scales 1, rolling statistics 0), so the test sees the arrays in darknet's order.
const DIR = path.join(__dirname, '..', 'fixtures', 'darknet-tables');

test("[local] and [deconvolutional] arrays load and save in darknet's .weights order", () => {
  const spec = readCfg(path.join(DIR, 'weights-order.cfg'));
  const file = fs.readFileSync(path.join(DIR, 'weights-order.weights'));
  const w = parseWeights(file, spec, 'weights-order.weights');

  const nonZero = (a: Float32Array | undefined) => Array.from(a!).filter((v) => v !== 0).length;
  const [local0, deconv, local2] = w.layers;
  expect(Array.from(local0.biases!)).toEqual(new Array(8).fill(0)); // [2 filters, 2 x 2]
  expect(local0.weights!.length).toBe(4 * 2 * 2 * 9); // [4 locations, 2 filters, 2 channels, 3 x 3]
  expect(nonZero(local0.weights!.subarray(0, 36))).toBe(36);
  expect(nonZero(local0.weights!.subarray(36))).toBe(0);
  expect(Array.from(deconv.biases!)).toEqual([0, 0, 0]);
  expect(Array.from(deconv.scales!)).toEqual([1, 1, 1]);
  expect(Array.from(deconv.rolling_mean!)).toEqual([0, 0, 0]);
  expect(Array.from(deconv.rolling_variance!)).toEqual([0, 0, 0]);
  expect(deconv.weights!.length).toBe(2 * 3 * 2 * 2); // [c, filters, size, size]
  expect(nonZero(deconv.weights)).toBe(24);
  expect(local2.biases!.length).toBe(4);
  expect(nonZero(local2.weights!.subarray(0, 27))).toBe(27);

  // through a network and back: byte for byte darknet's file
  const k = new ReferenceKernels();
  const net = new Network(spec, k);
  net.loadWeights(w);
  expect(serializeWeights(net.exportWeights({ major: 0, minor: 2, revision: 0 }), spec).equals(file)).toBe(true);
  net.dispose();
});
