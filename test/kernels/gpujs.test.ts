/**
 * What only the gpu.js backend has: its storage on headlessgl is GL textures, which the
 * garbage collector never reclaims. Counted here through the GL context's createTexture
 * and deleteTexture: networks' tensors alloc'd and freed leave no more textures behind
 * than the first one did, and dispose has gpu.js delete every texture and release the
 * context. On every gpu.js mode, dispose and `released()` complete without error.
 */
import { probeBackends } from '../../src/kernels/backend';
import { GpuJsKernels, type GpuJsMode } from '../../src/kernels/gpujs';
import { GPUJS_BACKENDS } from '../backends';
import { LENET_TENSORS } from './compare';

const modes = probeBackends(GPUJS_BACKENDS).filter((p) => p.ok).map((p) => p.name as GpuJsMode);

for (const mode of modes) {
  test(`[${mode}] free and dispose run, and gpu.js releases its kernels`, async () => {
    const k = new GpuJsKernels(mode);
    const t = k.alloc(100);
    k.fill(t, 1);
    k.activate(t, t, 'relu');
    expect(k.read(t)[99]).toBe(1);
    k.free(t);
    k.dispose();
    await expect(k.released()).resolves.toBeUndefined();
  });
}

if (modes.includes('headlessgl')) {
  test('[headlessgl] freed tensors give their textures back; dispose deletes every texture the backend made', async () => {
    const { WebGLRenderingContext: Context } = require('gl') as { WebGLRenderingContext: { prototype: object } };
    const live = new Set<unknown>();
    const proto = Context.prototype as { createTexture(): unknown; deleteTexture(t: unknown): void };
    const create = proto.createTexture;
    const remove = proto.deleteTexture;
    const created = jest.spyOn(proto, 'createTexture').mockImplementation(function (this: unknown) {
      const texture = create.call(this);
      live.add(texture);
      return texture;
    });
    const deleted = jest.spyOn(proto, 'deleteTexture').mockImplementation(function (this: unknown, texture: unknown) {
      live.delete(texture);
      return remove.call(this, texture);
    });
    try {
      const k = new GpuJsKernels('headlessgl');
      const network = (cycle: number): void => {
        const tensors = LENET_TENSORS.map((n) => k.alloc(n));
        for (const t of tensors) k.fill(t, cycle);
        for (const t of tensors) k.axpby(t, 2, t, 1); // one more texture each, the old one deleted
        for (const t of tensors) k.free(t);
      };
      network(1);
      const afterFirst = live.size;
      expect(created).toHaveBeenCalled();
      for (let cycle = 2; cycle <= 6; cycle++) network(cycle);
      // each kernel keeps at most its own last output; no tensor's texture is left
      expect(live.size).toBe(afterFirst);
      expect(live.size).toBeLessThan(LENET_TENSORS.length);
      k.dispose();
      await k.released();
      expect(deleted).toHaveBeenCalled();
      expect(live.size).toBe(0);
    } finally {
      created.mockRestore();
      deleted.mockRestore();
    }
  });
}
