#!/usr/bin/env node
// `npm start` runs this first: one esbuild pass (well under a second) turns
// src/ into dist/server/main.mjs, with every package left external. Running
// the bundle instead of the tsx loader saves about 45 MB of resident memory
// in production (docs/performance.md); tests and development keep using tsx.
import { copyFileSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/server/main.mjs', // two levels down, like src/web/: '../../public/' still finds the web app
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});

// The SQLite checkpointer's worker is plain JavaScript loaded by URL next to the code that starts it.
copyFileSync('src/db/sqlite-checkpointer.worker.mjs', 'dist/server/sqlite-checkpointer.worker.mjs');
