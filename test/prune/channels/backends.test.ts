/**
 * The surgery proof (surgery.test.ts) on every backend that starts, in float32: the shrunk
 * network's outputs equal the whole one's up to float32 rounding, on every graph shape.
 */
import { parseCfg } from '../../../src/cfg/parser';
import { channelGraph } from '../../../src/prune/channels/graph';
import { shrink } from '../../../src/prune/channels/surgery';
import { describeEachBackend } from '../../backends';
import { removeBlocks, residualBlocks } from '../../../src/prune/channels/blocks';
import { CASES, RESIDUAL } from './cases';
import { maxDifference, outputs, randomInputs, randomWeights, removing } from './nets';

describeEachBackend('channel surgery keeps the function', (backend, get) => {
  test(`[${backend}] every graph shape: outputs equal within float32 rounding`, () => {
    for (const c of CASES) {
      const spec = parseCfg(c.text, 'case.cfg');
      const w = randomWeights(spec, 11);
      const g = channelGraph(spec);
      c.prepare(spec, w, g);
      const small = shrink(c.text, spec, w, g, removing(g, c.remove));
      const x = randomInputs(spec, 3, 5);
      const dense = outputs(spec, w, x, 3, get());
      const shrunk = outputs(small.spec, small.weights, x, 3, get());
      const scale = Math.max(1, ...dense.map(Math.abs));
      expect({ name: c.name, difference: maxDifference(shrunk, dense) / scale < 1e-4 }).toEqual({ name: c.name, difference: true });
    }
  });

  test(`[${backend}] both residual blocks removed (branch gamma 0, beta folded): outputs equal within float32 rounding`, () => {
    const spec = parseCfg(RESIDUAL, 'residual.cfg');
    const w = randomWeights(spec, 11);
    for (const l of [2, 5]) w.layers[l].scales!.fill(0);
    const small = removeBlocks(RESIDUAL, spec, w, residualBlocks(spec).map((block) => ({ block })));
    const x = randomInputs(spec, 3, 5);
    const dense = outputs(spec, w, x, 3, get());
    expect(small.spec.layers).toHaveLength(6);
    expect(maxDifference(outputs(small.spec, small.weights, x, 3, get()), dense) / Math.max(1, ...dense.map(Math.abs))).toBeLessThan(1e-4);
  });
});
