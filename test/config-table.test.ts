/**
 * One configuration loader (src/platform/config.ts) and its documentation:
 * the README's "Configuration" table names exactly the environment variables
 * the loader reads, so an operator can rely on the table, a new variable
 * cannot ship undocumented, and a removed one cannot linger in the README.
 *
 * The loader's variables are found twice: by the helpers' calls in its source
 * (`read('NAME')`, `integer('NAME', …)`, `key('NAME', …)`, …), and by running
 * loadConfig on an environment that records every name asked for. The second
 * only sees the names read on that run, so it must be a subset of the first:
 * a variable read some new way, which the source pattern would miss, fails
 * here instead of slipping past the comparison.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../src/platform/config.ts';

const source = readFileSync(new URL('../src/platform/config.ts', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Names passed as the first argument to the loader's helpers. */
function namesInSource(): Set<string> {
  const names = new Set<string>();
  for (const match of source.matchAll(/\b(?:read|integer|oneOf|boolean|list|key)(?:<[^>(]*>)?\(\s*'([A-Z][A-Z0-9_]*)'/g)) names.add(match[1]!);
  return names;
}

/** Names loadConfig asks the environment for, on a development and a production run. */
function namesRead(): Set<string> {
  const names = new Set<string>();
  for (const base of [{}, { NODE_ENV: 'production' }, { JWT_ALGORITHM: 'HS256' }] as Array<Record<string, string>>) {
    const env = new Proxy(base, {
      get(target, name) {
        if (typeof name === 'string') names.add(name);
        return Reflect.get(target, name);
      },
    });
    try {
      loadConfig(env);
    } catch {
      // Production without keys is refused; the names were read before that.
    }
  }
  return names;
}

/** The backticked names in the first column of the README's Configuration table. */
function namesInReadme(): Set<string> {
  const start = readme.indexOf('## Configuration');
  assert.ok(start >= 0, 'the README has a "## Configuration" section');
  const rest = readme.slice(start + 1);
  const section = rest.slice(0, rest.search(/^#{2,3} /m));
  const names = new Set<string>();
  for (const row of section.matchAll(/^\|([^|\n]*)\|/gm)) {
    for (const name of row[1]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(name[1]!);
  }
  return names;
}

const minus = (a: Set<string>, b: Set<string>) => [...a].filter((name) => !b.has(name)).sort();

test('every variable loadConfig reads is one its source names (the pattern below misses none)', () => {
  const unseen = minus(namesRead(), namesInSource());
  assert.deepEqual(unseen, [], `loadConfig reads ${unseen.join(', ')}, which the source pattern of this test does not find: extend it`);
});

test('the README configuration table and the config loader name the same variables', () => {
  const code = namesInSource();
  const documented = namesInReadme();
  assert.ok(code.size > 20 && documented.size > 20, `found ${code.size} variables in config.ts and ${documented.size} in the README`);
  const undocumented = minus(code, documented);
  const unread = minus(documented, code);
  assert.deepEqual(
    { undocumented, unread },
    { undocumented: [], unread: [] },
    [
      undocumented.length > 0 ? `read by src/platform/config.ts but missing from the README table: ${undocumented.join(', ')}` : '',
      unread.length > 0 ? `in the README table but not read by src/platform/config.ts: ${unread.join(', ')}` : '',
    ].filter(Boolean).join('; '),
  );
});
