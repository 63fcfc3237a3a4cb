#!/usr/bin/env bash
# The test command: build (the CLI tests run bin/darknet-ts.js in child processes, so
# dist/ must be this tree's), type-check, then one jest run on every backend this machine
# can start. headlessgl needs an X display, so the run goes under xvfb-run when there is
# none. test/backend-reporter.js prints how many tests ran on each backend.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
npx tsc -p tsconfig.check.json
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a npx jest "$@"
fi
exec npx jest "$@"
