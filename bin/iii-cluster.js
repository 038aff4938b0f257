#!/usr/bin/env node
'use strict';

// The `iii-cluster` command; the code lives in src/cli.ts (built to dist/ by `npm run build`).
require('../dist/src/cli.js')
  .main(process.argv.slice(2))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
