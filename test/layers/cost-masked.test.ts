import { ReferenceKernels } from '../../src/kernels/reference';
import { cost } from '../../src/layers/cost';
import { SECRET_NUM } from '../../src/layers/softmax';
import { build, context, netState } from './gradcheck';

// darknet's `masked` cost: sse except where the truth is SECRET_NUM (-1234). Exact values.
const k = new ReferenceKernels({ float64: true });

test('masked cost: sse on labelled entries, nothing where the truth is SECRET_NUM', () => {
  const { layer, spec } = build(cost, k, 'cost', { type: 'masked', scale: 2 }, context({ batch: 1, h: 1, w: 1, c: 4 }));
  expect([spec.costType, spec.masked]).toEqual(['sse', true]);
  const pred = [0.5, 0.25, 3, -1];
  const truth = [1, SECRET_NUM, 0, SECRET_NUM];
  const input = k.alloc(4);
  k.upload(input, pred);
  const inputDelta = k.alloc(4);
  const net = { ...netState(k, input, inputDelta), truth: k.alloc(4) };
  k.upload(net.truth, truth);
  layer.forward(net);
  expect(layer.cost).toBeCloseTo(0.25 + 9, 12);
  expect(Array.from(k.read(layer.delta))).toEqual([0.5, 0, -3, 0]);
  expect(Array.from(k.read(layer.output))).toEqual(pred); // the prediction passes through unchanged
  expect(Array.from(k.read(input))).toEqual(pred); // and is not overwritten (darknet writes SECRET_NUM into it)
  layer.backward(net);
  expect(Array.from(k.read(inputDelta))).toEqual([1, 0, -6, 0]);
});

test.each([['ratio', 0.5], ['thresh', 0.1], ['noobj', 2]])('cost %s=%s (darknet GPU-only) is refused at its line', (key, value) => {
  expect(() => build(cost, k, 'cost', { type: 'sse', [key]: value }, context({ batch: 1, h: 1, w: 1, c: 4 })))
    .toThrow(`t.cfg:5: cost ${key}=${value} is not supported (darknet applies it on its GPU only)`);
});
