#!/usr/bin/env node
// Runs every test file through node:test + tsx (Node 20's --test takes paths,
// not globs) and says plainly which parts of the matrix ran.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    if (statSync(path).isDirectory()) return find(path);
    return path.endsWith('.test.ts') ? [path] : [];
  });
}

const only = process.argv.slice(2);
// The service's suites, then the TypeScript client's and the relying-service example's own tests.
const files = only.length > 0 ? only : ['test', 'clients', 'examples'].filter((dir) => existsSync(dir)).flatMap((dir) => find(dir).sort());
const pg = process.env.TEST_DATABASE_URL;
const redis = process.env.TEST_REDIS_URL;
const chromium = existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium');

console.log(`Storage matrix: SQLite${pg ? ' + PostgreSQL (TEST_DATABASE_URL)' : ''}`);
if (!pg) console.log('NOTE: TEST_DATABASE_URL is not set: the PostgreSQL runs and multi-instance tests are NOT run.');
if (!redis) console.log('NOTE: TEST_REDIS_URL is not set: the Redis rate-limit tests are NOT run.');
if (!chromium) console.log('NOTE: /usr/bin/chromium is missing: the browser test is NOT run (apt-get install chromium).');

const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
