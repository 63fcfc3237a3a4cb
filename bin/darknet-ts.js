#!/usr/bin/env node
'use strict';
// The compiled CLI (tsc: src/commands/cli.ts -> dist/src/commands/cli.js); `npm install` builds it.
const { main } = require('../dist/src/commands/cli.js');

main(process.argv.slice(2)).then((code) => {
  // exitCode rather than process.exit(), so buffered stdout is flushed first
  process.exitCode = code;
});
