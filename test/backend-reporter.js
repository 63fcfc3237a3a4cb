// Counts tests per backend from the "[backend]" tag in their names and prints one line
// per backend at the end of the run, so a reader of CI output sees what really ran.
const BACKENDS = ['reference', 'cpu', 'webasm', 'headlessgl', 'webgpu', 'wasm-simd'];

class BackendReporter {
  constructor() {
    this.counts = new Map();
  }
  onTestResult(_test, result) {
    for (const t of result.testResults) {
      const tags = [...t.fullName.matchAll(/\[([\w-]+)\]/g)].map((m) => m[1]).filter((n) => BACKENDS.includes(n));
      const name = tags[0] ?? 'no-backend';
      const c = this.counts.get(name) ?? { passed: 0, failed: 0 };
      if (t.status === 'passed') c.passed++;
      else if (t.status === 'failed') c.failed++;
      this.counts.set(name, c);
    }
  }
  onRunComplete() {
    const lines = [...this.counts.entries()].sort().map(([n, c]) => `  ${n.padEnd(12)} ${c.passed} passed, ${c.failed} failed`);
    process.stdout.write(`\nTests per backend (from [backend] tags in test names):\n${lines.join('\n')}\n`);
  }
}
module.exports = BackendReporter;
