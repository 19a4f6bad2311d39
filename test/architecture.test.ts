/**
 * The floor plan (docs/architecture.md), checked on every import of src/:
 *
 *   app        → anything below
 *   features/X → its own folder, domain, store, platform (never another feature)
 *   domain     → store, platform
 *   store      → platform
 *   platform   → platform only (knows no feature)
 *
 * Imports are read with TypeScript's own pre-processor (every `import`,
 * `export … from`, `import type` and dynamic `import()`), so a type-only
 * import counts as much as a value import.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');
const FLOORS = ['platform', 'store', 'domain', 'features', 'app'] as const;
type Floor = (typeof FLOORS)[number];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(entry.name) ? [path] : [];
  });
}

interface Place {
  floor: Floor;
  /** The feature's folder name, for files under features/. */
  feature?: string;
}

function placeOf(file: string): Place {
  const parts = relative(SRC, file).split(/[\\/]/);
  const floor = parts[0] as Floor;
  if (!FLOORS.includes(floor)) throw new Error(`${relative(ROOT, file)} is on no floor: src/ holds only ${FLOORS.join(', ')}`);
  return floor === 'features' ? { floor, feature: parts[1] } : { floor };
}

/** Why an import from `from` to `to` is not allowed, or undefined when it is. */
export function violation(from: Place, to: Place): string | undefined {
  const rank = (place: Place) => FLOORS.indexOf(place.floor);
  if (rank(to) > rank(from)) return `${from.floor} imports ${to.floor}, a floor above it`;
  if (from.floor === 'features' && to.floor === 'features' && from.feature !== to.feature) {
    return `feature ${from.feature} imports feature ${to.feature}: features talk through the app's wiring, never directly`;
  }
  return undefined;
}

function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((entry) => entry.fileName).filter((name) => name.startsWith('.'));
}

test('every import in src/ points down the floors, and no feature imports another', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of sourceFiles(SRC)) {
    const from = placeOf(file);
    for (const specifier of importsOf(file)) {
      const target = posix.normalize(join(dirname(file), specifier));
      if (!target.startsWith(SRC)) {
        problems.push(`${relative(ROOT, file)} imports ${specifier}, outside src/`);
        continue;
      }
      checked++;
      const why = violation(from, placeOf(target));
      if (why) problems.push(`${relative(ROOT, file)} → ${relative(ROOT, target)}: ${why}`);
    }
  }
  assert.ok(checked > 200, `only ${checked} imports were read: is the parser finding them?`);
  assert.deepEqual(problems, []);
});

test('the rule itself: an upward import and a feature-to-feature import are caught', () => {
  assert.match(violation({ floor: 'platform' }, { floor: 'store' }) ?? '', /floor above/);
  assert.match(violation({ floor: 'store' }, { floor: 'features', feature: 'devices' }) ?? '', /floor above/);
  assert.match(violation({ floor: 'features', feature: 'auth' }, { floor: 'features', feature: 'devices' }) ?? '', /feature auth imports feature devices/);
  assert.equal(violation({ floor: 'features', feature: 'auth' }, { floor: 'features', feature: 'auth' }), undefined);
  assert.equal(violation({ floor: 'app' }, { floor: 'features', feature: 'auth' }), undefined);
  assert.equal(violation({ floor: 'domain' }, { floor: 'store' }), undefined);
});

test('SQL is written only in src/store: no query builder call or sql template elsewhere', () => {
  const QUERY = /\.(selectFrom|insertInto|updateTable|deleteFrom|replaceInto)\(|\bsql`/;
  const offenders = sourceFiles(SRC)
    .filter((file) => placeOf(file).floor !== 'store')
    .flatMap((file) => readFileSync(file, 'utf8').split('\n').flatMap((line, i) => (QUERY.test(line) && !/^\s*(\/\/|\*)/.test(line) ? [`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`] : [])));
  assert.deepEqual(offenders, []);
});
