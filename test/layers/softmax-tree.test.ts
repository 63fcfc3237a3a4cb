import * as path from 'path';
import { ReferenceKernels } from '../../src/kernels/reference';
import { hierarchyPredictions, networkHierarchy, parseTree, parseTreeGroups, SECRET_NUM, softmax } from '../../src/layers/softmax';
import { mulberry32 } from '../../src/engine/random';
import { Options } from '../../src/cfg/options';
import { build, COMMON, context, minusNumericalGradient, netState, randomValues, relativeError } from './gradcheck';

// Hierarchical (tree=) and spatial softmax. Tolerances: probabilities and losses to
// 1e-12 (float64); the delta against -d(loss)/d(input) by central differences (step 1e-6)
// to a relative L2 error below 1e-6.
const k = new ReferenceKernels({ float64: true });
// tiny.tree: animal, plant (roots) | dog, cat, bird (children of 0) | tree, flower (of 1)
const TREE = path.join(__dirname, '..', 'fixtures', 'darknet-tables', 'tiny.tree');

/** A [softmax] section of a cfg in test/layers (so tree= resolves like a cfg-relative path). */
function treeSection(keys: Record<string, string>): Options {
  const lines = Object.entries(keys).map(([key, value], i) => ({ key, value, line: 4 + i }));
  return new Options(path.join(__dirname, 't.cfg'), 'softmax', 3, lines);
}

function softmaxOf(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

describe('softmax tree=', () => {
  test("groups as darknet's read_tree makes them: runs of the same parent", () => {
    expect(parseTreeGroups('a -1\nb -1\nc 0\nd 0\ne 1\n', (l, m) => new Error(`${l}: ${m}`))).toEqual([2, 2, 1]);
    expect(() => parseTreeGroups('a -1\nb 5\n', (l, m) => new Error(`x.tree:${l}: ${m}`))).toThrow('x.tree:2: parent 5 must be -1 or an earlier line');
    expect(() => parseTreeGroups('a\n', (l, m) => new Error(`x.tree:${l}: ${m}`))).toThrow("x.tree:1: expected 'name parent'");
  });

  test("darknet's hierarchy_predictions (classifier predict and valid): path products, inner entries 0", () => {
    const { parents } = parseTree('animal -1\nplant -1\ndog 0\ncat 0\nbird 0\ntree 1\nflower 1\n', (l, m) => new Error(`${l}: ${m}`));
    expect(parents).toEqual([-1, -1, 0, 0, 0, 1, 1]);
    const rows = Float64Array.from([0.6, 0.4, 0.5, 0.3, 0.2, 0.9, 0.1, /* row 2 */ 0.1, 0.9, 0.2, 0.2, 0.6, 0.5, 0.5]);
    hierarchyPredictions(rows, parents, 2);
    const want = [0, 0, 0.3, 0.18, 0.12, 0.36, 0.04, 0, 0, 0.02, 0.02, 0.06, 0.45, 0.45];
    want.forEach((v, i) => expect(rows[i]).toBeCloseTo(v, 12));
    // a deeper path: c's parent b's parent a
    const deep = Float64Array.from([0.5, 0.8, 0.25]);
    hierarchyPredictions(deep, [-1, 0, 1]);
    expect(Array.from(deep)).toEqual([0, 0, 0.1]);
    const spec = softmax.parse(treeSection({ tree: TREE }), context({ batch: 1, h: 1, w: 1, c: 7 }), COMMON);
    expect(networkHierarchy([spec])).toEqual(parents);
    expect(networkHierarchy([softmax.parse(treeSection({}), context({ batch: 1, h: 1, w: 1, c: 7 }), COMMON)])).toBeNull();
  });

  test('the file is found relative to the cfg; its size must match the inputs', () => {
    const spec = softmax.parse(treeSection({ tree: TREE }), context({ batch: 1, h: 1, w: 1, c: 7 }), COMMON);
    expect(spec.tree).toEqual([2, 3, 2]);
    expect(spec.describe).toBe('softmax                                           7');
    const rel = softmax.parse(treeSection({ tree: '../fixtures/darknet-tables/tiny.tree' }), context({ batch: 1, h: 1, w: 1, c: 7 }), COMMON);
    expect(rel.tree).toEqual([2, 3, 2]);
    expect(() => softmax.parse(treeSection({ tree: TREE }), context({ batch: 1, h: 1, w: 1, c: 8 }), COMMON))
      .toThrow(/t\.cfg:4: softmax tree=.*tiny\.tree has 7 entries but the layer has 8 inputs/);
  });

  test('one softmax per sibling group; SECRET_NUM truths give no loss and no delta', () => {
    const spec = softmax.parse(treeSection({ tree: TREE }), context({ batch: 2, h: 1, w: 1, c: 7 }), COMMON);
    const layer = softmax.create(spec, k);
    const x = randomValues(14, mulberry32(4), -2, 2);
    const input = k.alloc(14);
    k.upload(input, x);
    // image 0: a dog (animal, dog); plant's children are off the path (SECRET_NUM).
    // image 1: a plant only (its children unknown). darknet's loader masks every group
    // with no label in it, which is what makes delta = t - p the exact gradient.
    const S = SECRET_NUM;
    const t = [1, 0, 1, 0, 0, S, S, 0, 1, S, S, S, S, S];
    const net = { ...netState(k, input, null), truth: k.alloc(14) };
    k.upload(net.truth, t);
    layer.forward(net);
    const want = [0, 7].flatMap((b) => [...softmaxOf(x.slice(b, b + 2)), ...softmaxOf(x.slice(b + 2, b + 5)), ...softmaxOf(x.slice(b + 5, b + 7))]);
    const out = k.read(layer.output);
    want.forEach((v, i) => expect(Math.abs(out[i] - v)).toBeLessThan(1e-12));
    const loss = -Math.log(want[0]) - Math.log(want[2]) - Math.log(want[8]);
    expect(Math.abs(layer.cost! - loss)).toBeLessThan(1e-12);
    const delta = Array.from(k.read(layer.delta));
    t.forEach((v, i) => { if (v === S) expect(delta[i]).toBe(0); });
    const numerical = minusNumericalGradient(k, input, () => {
      layer.forward(net);
      return layer.cost!;
    }, 1e-6);
    expect(relativeError(delta, numerical)).toBeLessThan(1e-6);
  });
});

describe('softmax spatial=1', () => {
  test('a softmax over the channels at every pixel', () => {
    const { layer } = build(softmax, k, 'softmax', { spatial: 1 }, context({ batch: 2, h: 1, w: 3, c: 4 }));
    const x = randomValues(24, mulberry32(5));
    const input = k.alloc(24);
    k.upload(input, x);
    layer.forward(netState(k, input, null));
    const out = k.read(layer.output);
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < 3; p++) {
        const at = [0, 1, 2, 3].map((ch) => b * 12 + ch * 3 + p);
        const want = softmaxOf(at.map((i) => x[i]));
        at.forEach((i, j) => expect(Math.abs(out[i] - want[j])).toBeLessThan(1e-12));
      }
    }
  });

  test('spatial with groups, or on a flat input, is refused', () => {
    expect(() => build(softmax, k, 'softmax', { spatial: 1, groups: 2 }, context({ batch: 1, h: 1, w: 2, c: 4 })))
      .toThrow('t.cfg:4: softmax spatial=1 cannot be combined with groups or temperature');
    expect(() => build(softmax, k, 'softmax', { spatial: 1 }, { ...context({ batch: 1, h: 0, w: 0, c: 0 }), inputs: 4 }))
      .toThrow('t.cfg:4: softmax spatial=1 needs an image input');
  });
});
