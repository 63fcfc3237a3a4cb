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
  reporters: ['default', '<rootDir>/test/backend-reporter.js'],
};
