/**
 * Tensor and backend lifetimes, the same on every backend (types.ts, `free` and `dispose`;
 * the messages come from checks.ts): a network-sized set of tensors alloc'd, dirtied and
 * freed reads zero when alloc'd again; a freed tensor is refused by every op and by a
 * second free; a disposed backend refuses alloc and ops but not free. Memory and texture
 * counts are backend-specific: wasm-simd.test.ts and gpujs.test.ts.
 */
import { createKernels } from '../../src/kernels/backend';
import { ReferenceKernels } from '../../src/kernels/reference';
import type { BackendName, Kernels } from '../../src/kernels/types';
import { describeEachBackend } from '../backends';
import { LENET_TENSORS } from './compare';

/** Networks built and dropped per backend here (wasm-simd.test.ts runs 200). */
const CYCLES = 3;

function lifetimeTests(backend: BackendName, get: () => Kernels, create: () => Promise<Kernels>): void {
  test(`${CYCLES} networks' tensors alloc'd, dirtied and freed: each alloc reads zero, reused storage too`, () => {
    const k = get();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const tensors = LENET_TENSORS.map((n) => k.alloc(n));
      tensors.forEach((t, i) => {
        const values = k.read(t);
        if (values.some((v) => v !== 0)) throw new Error(`cycle ${cycle}, tensor ${i} (${t.size} values): not zero`);
      });
      for (const t of tensors) k.fill(t, cycle + 1);
      for (const t of tensors.reverse()) k.free(t);
    }
  });

  test('a freed tensor is refused by every op, as input or destination, and by a second free', () => {
    const k = get();
    const t = k.alloc(16);
    const u = k.alloc(16);
    k.upload(u, new Float32Array(16).fill(3));
    k.free(t);
    expect(() => k.read(t)).toThrow('read: this tensor (16 values) was freed; alloc another');
    expect(() => k.fill(t, 1)).toThrow('fill: this tensor (16 values) was freed');
    expect(() => k.upload(t, new Float32Array(16))).toThrow('upload: this tensor (16 values) was freed');
    expect(() => k.copy(u, t)).toThrow('copy: this tensor (16 values) was freed');
    expect(() => k.axpby(t, 1, u, 1)).toThrow('axpby: this tensor (16 values) was freed');
    expect(() => k.activate(u, t, 'relu')).toThrow('activate: this tensor (16 values) was freed');
    expect(() => k.free(t)).toThrow('free: this tensor (16 values) was freed already (a double free)');
    expect(Array.from(k.read(u))).toEqual(new Array(16).fill(3));
    // a new tensor may reuse t's storage; t stays refused
    const v = k.alloc(16);
    expect(Array.from(k.read(v))).toEqual(new Array(16).fill(0));
    expect(() => k.read(t)).toThrow(/was freed/);
    k.free(u);
    k.free(v);
  });

  test('free refuses a tensor it did not make', () => {
    expect(() => get().free({ size: 4 })).toThrow(/^free: not a (reference tensor|tensor of this)/);
  });

  test('dispose: alloc and ops are refused afterwards, free is not, a second dispose does nothing', async () => {
    const k = await create();
    const t = k.alloc(8);
    const u = k.alloc(8);
    k.fill(t, 1);
    k.free(u);
    k.dispose();
    expect(() => k.alloc(1)).toThrow(`alloc: the ${backend} backend was disposed; create another`);
    expect(() => k.read(t)).toThrow(`read: the ${backend} backend was disposed`);
    expect(() => k.fill(t, 0)).toThrow(`fill: the ${backend} backend was disposed`);
    k.free(t); // networks and their backend may be dropped in either order
    expect(() => k.free(t)).toThrow(/double free/);
    expect(() => k.free(u)).toThrow(/double free/);
    k.dispose();
  });
}

describeEachBackend('free and dispose', (backend, get) => {
  lifetimeTests(backend, get, () => createKernels(backend));
});

describe('[reference] free and dispose', () => {
  const k = new ReferenceKernels();
  afterAll(() => k.dispose());
  lifetimeTests('reference', () => k, async () => new ReferenceKernels());
});
