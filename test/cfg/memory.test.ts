/**
 * Memory estimates of parsed cfgs, counted by hand for small networks, and the budget
 * check that refuses a network too big to build before anything is allocated.
 */
import * as os from 'os';
import { join } from 'path';
import { DarknetError } from '../../src/errors';
import { parseCfg, readCfg } from '../../src/cfg/parser';
import {
  checkNetworkBudget, estimateNetworkBytes, estimateNetworkMemory, formatBytes, NETWORK_MEMORY_BUDGET,
} from '../../src/cfg/memory';

const cfg = (...lines: string[]) => lines.join('\n');

describe('estimateNetworkMemory', () => {
  test('a connected layer, counted by hand', () => {
    const spec = parseCfg(cfg('[net]', 'batch=2', 'inputs=3', '[connected]', 'output=4'), 't.cfg');
    // parameters: biases 4 + their updates 4, weights 12 + updates 12 + mask 12 = 44 floats
    // activations: input 2 x 3, output and delta 2 x 4 each, truth 2 x 4 = 30 floats
    expect(estimateNetworkMemory(spec)).toEqual({ parameters: 44 * 4, activations: 30 * 4, workspace: 0, total: 74 * 4 });
    expect(estimateNetworkBytes(spec)).toBe(74 * 4);
  });

  test('a convolution adds its workspace; batch norm its statistics and buffers', () => {
    const spec = parseCfg(cfg('[net]', 'height=4', 'width=4', 'channels=1', '[conv]', 'filters=2', 'size=3', 'pad=1'), 't.cfg');
    // parameters: biases 2 + 2, weights 18 x 3 = 58; activations: input 16, output, delta, truth 32 each = 112;
    // workspace: im2col columns 9 x 16 for each of 4 threads = 576, packed weights 18 x 5 = 90
    expect(estimateNetworkMemory(spec)).toEqual({ parameters: 58 * 4, activations: 112 * 4, workspace: 666 * 4, total: 836 * 4 });

    const bn = parseCfg(cfg('[net]', 'height=4', 'width=4', 'channels=1', '[conv]', 'filters=2', 'size=3', 'pad=1', 'batch_normalize=1'), 't.cfg');
    // + scales 2 + updates 2, rolling mean 2 and variance 2, batch mean 2 and variance 2; + x_norm and x_delta 32 each
    expect(estimateNetworkMemory(bn)).toMatchObject({ parameters: (58 + 12) * 4, activations: (112 + 64) * 4 });
  });

  test('LeNet-5 at batch 64 is some 15 MiB', () => {
    const bytes = estimateNetworkBytes(readCfg(join(__dirname, '..', '..', 'cfg', 'lenet.cfg')));
    expect(bytes).toBeGreaterThan(10 * 2 ** 20);
    expect(bytes).toBeLessThan(20 * 2 ** 20);
  });
});

describe('checkNetworkBudget', () => {
  test('the budget is the smaller of 8 GiB and 70% of this machine', () => {
    expect(NETWORK_MEMORY_BUDGET).toBe(Math.min(8 * 2 ** 30, Math.floor(0.7 * os.totalmem())));
  });

  test('a network within the budget passes; one over it is one line naming the cfg, the estimate and the budget', () => {
    const spec = parseCfg(cfg('[net]', 'height=4', 'width=4', 'channels=1', '[conv]', 'filters=2', 'size=3', 'pad=1'), 'small.cfg');
    expect(() => checkNetworkBudget(spec)).not.toThrow();
    expect(() => checkNetworkBudget(spec, 3344)).not.toThrow();
    let error: unknown;
    try {
      checkNetworkBudget(spec, 1000);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DarknetError);
    expect((error as Error).message).toBe(
      'small.cfg: the network needs about 3.3 KiB at batch 1 (parameters 232 bytes, activations 448 bytes, workspace 2.6 KiB), over the budget of 1000 bytes',
    );
  });

  test('output=2147483647 parses (one array can hold it) and is refused by the budget', () => {
    const spec = parseCfg(cfg('[net]', 'inputs=1', '[connected]', 'output=2147483647'), 'big.cfg');
    expect(() => checkNetworkBudget(spec)).toThrow(/^big\.cfg: the network needs about 64\.0 GiB at batch 1 .*over the budget of/);
  });

  test('a big but possible network parses (summary may show it) and is refused for a small budget', () => {
    const spec = parseCfg(cfg('[net]', 'batch=64', 'height=224', 'width=224', 'channels=3', '[conv]', 'filters=512', 'size=3', 'pad=1'), 'big.cfg');
    expect(estimateNetworkBytes(spec)).toBeGreaterThan(2 ** 30);
    expect(() => checkNetworkBudget(spec, 2 ** 30)).toThrow(/over the budget of 1\.0 GiB$/);
  });
});

test('formatBytes picks the unit that fits', () => {
  expect(formatBytes(1000)).toBe('1000 bytes');
  expect(formatBytes(1536)).toBe('1.5 KiB');
  expect(formatBytes(300 * 2 ** 20)).toBe('300 MiB');
  expect(formatBytes(2 ** 70)).toBe('1.1e+12 GiB');
});
