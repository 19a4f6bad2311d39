/**
 * One catalogue of error codes (src/platform/errors.ts) and its documentation: the
 * README's table lists exactly the catalogue's codes with their statuses, so
 * a client can rely on the list, and a new code cannot ship undocumented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS } from '../../src/platform/errors.ts';

test('the README error table and the catalogue list the same codes with the same statuses', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('### Error codes'));
  const documented = new Map<string, number>();
  for (const match of table.matchAll(/^\| (\d{3}) \| `([A-Z_]+)` \|/gm)) documented.set(match[2]!, Number(match[1]));
  const catalogue = new Map(Object.entries(ERRORS).map(([code, { status }]) => [code, status]));
  for (const [code, status] of documented) assert.equal(catalogue.get(code), status, `README documents ${code} as ${status}`);
  for (const [code] of catalogue) assert.ok(documented.has(code), `${code} is in the catalogue but not in the README`);
});
