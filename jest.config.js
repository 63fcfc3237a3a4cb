/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Type errors (src and tests) are caught by `tsc -p tsconfig.check.json` in `npm test`; transpiling alone is faster.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 120000,
  // gpu.js contexts and worker pools are per process; two workers match the two cores.
  maxWorkers: 2,
  // NOTE: gpu.js's webasm mode makes one WebAssembly memory per compiled kernel (10 GiB of
  // address space reserved each); a worker that ran the kernel suites took 200-560 ms to
  // unmap them at exit, past jest's 500 ms, which printed "A worker process has failed to
  // exit gracefully". A worker past this size is replaced between test files instead.
  workerIdleMemoryLimit: '600MB',
  reporters: ['default', '<rootDir>/test/backend-reporter.js'],
};
