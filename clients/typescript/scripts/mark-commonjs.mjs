// The CommonJS build (dist/cjs, from tsconfig.cjs.json) sits inside a
// "type": "module" package: this nested package.json tells Node (and
// TypeScript) that the .js and .d.ts files under it are CommonJS.
import { writeFileSync } from 'node:fs';

writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), `${JSON.stringify({ type: 'commonjs' })}\n`);
