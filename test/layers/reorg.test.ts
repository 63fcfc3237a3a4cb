import { ReferenceKernels } from '../../src/kernels/reference';
import { reorg } from '../../src/layers/reorg';
import { mulberry32 } from '../../src/engine/random';
import { build, COMMON, context, gradientErrors, netState, randomValues, section } from './gradcheck';

// Tolerances: every mode copies values, so forward is exact; gradients by central
// differences (step 1e-6) to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });

function forward(keys: Record<string, number>, shape: { batch: number; h: number; w: number; c: number }, x: number[]): number[] {
  const { layer } = build(reorg, k, 'reorg', keys, context(shape));
  const input = k.alloc(x.length);
  k.upload(input, x);
  layer.forward(netState(k, input, null));
  return Array.from(k.read(layer.output));
}

describe('reorg parse', () => {
  test("darknet's layer-table lines", () => {
    const s = reorg.parse(section('reorg', { stride: 2 }), context({ batch: 1, h: 26, w: 26, c: 64 }), COMMON);
    expect(s.describe).toBe('reorg              / 2    26 x  26 x  64   ->    13 x  13 x 256');
    const r = reorg.parse(section('reorg', { stride: 2, reverse: 1 }), context({ batch: 1, h: 4, w: 4, c: 8 }), COMMON);
    expect([r.outW, r.outH, r.outC]).toEqual([8, 8, 2]);
    // go.cfg's: one extra value, a flat output
    const e = reorg.parse(section('reorg', { extra: 1, stride: 1 }), context({ batch: 1, h: 19, w: 19, c: 1 }), COMMON);
    expect(e.describe).toBe('reorg               361   ->   362');
    expect([e.outputs, e.outW, e.outH, e.outC]).toEqual([362, 0, 0, 0]);
  });

  test.each([
    [{ stride: 2 }, { h: 3, w: 4, c: 4 }, 't.cfg:4: reorg stride=2 needs its width and height divisible by 2'],
    [{ stride: 2 }, { h: 4, w: 4, c: 2 }, 't.cfg:4: reorg stride=2 needs its width'],
    [{ stride: 2, reverse: 1 }, { h: 3, w: 5, c: 2 }, 't.cfg:4: reorg stride=2 needs its channels divisible by 4 (input 5 x 3 x 2)'],
    [{ extra: 2, reverse: 1 }, { h: 4, w: 4, c: 4 }, 't.cfg:4: reorg extra= cannot be combined'],
  ])('%j on %j is refused', (keys, shape, message) => {
    expect(() => reorg.parse(section('reorg', keys), context({ batch: 1, ...shape }), COMMON)).toThrow(message);
  });
});

describe('reorg forward and backward (reference, float64)', () => {
  test("stride 2 on 2 x 2 x 4 (hand-computed from darknet's reorg_cpu, forward=0)", () => {
    // out[i + 2*(j + 2*k)] = x[w2 + 4*(h2 + 4*c2)], c2 = k % 1 = 0, offset = k:
    // w2 = 2i + k % 2, h2 = 2j + floor(k / 2)
    const x = Array.from({ length: 16 }, (_, i) => i);
    const want: number[] = [];
    for (let kk = 0; kk < 4; kk++) {
      for (let j = 0; j < 2; j++) for (let i = 0; i < 2; i++) want.push(2 * i + (kk % 2) + 4 * (2 * j + Math.floor(kk / 2)));
    }
    expect(want.slice(0, 8)).toEqual([0, 2, 8, 10, 1, 3, 9, 11]);
    expect(forward({ stride: 2 }, { batch: 1, h: 2, w: 2, c: 4 }, x)).toEqual(want);
  });

  test('reverse inverts the same index map (reorg_cpu forward=1)', () => {
    const x = Array.from({ length: 32 }, (_, i) => i * 0.5);
    const out = forward({ stride: 2, reverse: 1 }, { batch: 2, h: 2, w: 2, c: 4 }, x);
    // every value once per image
    expect([...out.slice(0, 16)].sort((a, b) => a - b)).toEqual(x.slice(0, 16));
    expect(out.slice(16).map((v) => v - 8)).toEqual(out.slice(0, 16));
  });

  test('extra appends zeros; flatten interleaves channels', () => {
    expect(forward({ extra: 2 }, { batch: 2, h: 1, w: 2, c: 1 }, [1, 2, 3, 4])).toEqual([1, 2, 0, 0, 3, 4, 0, 0]);
    // [c=2, spatial=3] -> [spatial, c]
    expect(forward({ flatten: 1 }, { batch: 1, h: 1, w: 3, c: 2 }, [1, 2, 3, 4, 5, 6])).toEqual([1, 4, 2, 5, 3, 6]);
    expect(forward({ flatten: 1, reverse: 1 }, { batch: 1, h: 1, w: 3, c: 2 }, [1, 4, 2, 5, 3, 6])).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test.each([
    ['stride 2', { stride: 2 }],
    ['reverse', { stride: 2, reverse: 1 }],
    ['extra', { extra: 3 }],
    ['flatten', { flatten: 1 }],
  ])('gradient by finite differences (%s)', (_name, keys) => {
    const shape = { batch: 2, h: 4, w: 2, c: 8 };
    const { layer } = build(reorg, k, 'reorg', keys, context(shape));
    const x = randomValues(2 * 64, mulberry32(2));
    expect(gradientErrors(k, layer, x, []).input).toBeLessThan(1e-6);
  });
});
