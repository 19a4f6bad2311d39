#!/usr/bin/env node
// `npm start` runs this first: one esbuild pass (well under a second) turns
// src/ into dist/server/main.mjs, with every package left external. Running
// the bundle instead of the tsx loader saves about 45 MB of resident memory
// in production (docs/performance.md); tests and development keep using tsx.
import { copyFileSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: ['src/app/main.ts'],
  outfile: 'dist/server/main.mjs', // the web plugin finds public/ by walking up to package.json
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});

// The SQLite checkpointer's worker is plain JavaScript loaded by URL next to the code that starts it.
copyFileSync('src/store/sqlite-checkpointer.worker.mjs', 'dist/server/sqlite-checkpointer.worker.mjs');
