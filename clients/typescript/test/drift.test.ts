/**
 * Drift check: the committed generated files are what the current code
 * generates (`npm run client:generate`):
 * - the OpenAPI document and the client's types: a route schema changed
 *   without regenerating fails here, so the client never lags the API;
 * - the web app's copy of the browser helper
 *   (public/js/vendor/trusted-devices-browser.js): src/browser.ts changed
 *   without regenerating fails here, so the web app and the client collect
 *   and encode the fingerprint, and keep device keys, alike (they run the
 *   same code);
 * - the web app makes no request of its own (no fetch wrapper in public/js
 *   outside the vendor bundle): it uses the client, so the two cannot grow
 *   apart again.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BROWSER_MODULE_FILE, generateBrowserModule } from '../scripts/browser-module.ts';
import { DOCUMENT_FILE, generate, OPERATIONS_FILE, TYPES_FILE } from '../scripts/generate.ts';

test('clients/typescript/openapi.json and src/generated/api.ts match the current app (run npm run client:generate)', async () => {
  const { document, types, operations } = await generate();
  assert.ok(operations === readFileSync(OPERATIONS_FILE, 'utf8'), 'src/generated/operations.ts is stale: run npm run client:generate');
  assert.ok(document === readFileSync(DOCUMENT_FILE, 'utf8'), 'openapi.json is stale: run npm run client:generate');
  assert.ok(types === readFileSync(TYPES_FILE, 'utf8'), 'src/generated/api.ts is stale: run npm run client:generate');
  // The generated types carry the named schemas.
  for (const name of ['Device', 'DeviceEvent', 'PendingDevice', 'LoginSession', 'MfaChallenge', 'ErrorEnvelope']) {
    assert.match(types, new RegExp(`\\b${name}: \\{`), name);
  }
});

test('public/js/vendor/trusted-devices-browser.js is src/browser.ts as generated now (run npm run client:generate)', async () => {
  const module = await generateBrowserModule();
  assert.ok(module === readFileSync(BROWSER_MODULE_FILE, 'utf8'), 'public/js/vendor/trusted-devices-browser.js is stale: run npm run client:generate');
  // Every name the web app imports from it is exported (a missing one would stop the whole app loading).
  const exported = await import(BROWSER_MODULE_FILE);
  const imported = webAppModules().flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/import\s*\{([^}]*)\}\s*from\s*'[./]+vendor\/trusted-devices-browser\.js'/g)].flatMap((m) => m[1]!.split(',').map((name) => name.trim().split(/\s+as\s+/)[0]!).filter(Boolean)),
  );
  for (const name of ['fingerprintHeader', 'collectFingerprint', 'indexedDbDeviceKeyStore', 'createTrustedDevicesClient', 'webStorageTokenStore']) assert.ok(imported.includes(name), `the web app uses the helper's ${name}: ${imported.join(', ')}`);
  for (const name of imported) assert.equal(typeof exported[name], 'function', name);
});

test('the web app has no API client of its own: every request goes through the TypeScript client (the vendor bundle)', () => {
  const vendor = BROWSER_MODULE_FILE;
  for (const file of webAppModules().filter((f) => f !== vendor)) {
    // Comments may talk about requests; code may not make them.
    const code = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
    for (const [pattern, what] of [
      [/\bfetch\s*\(/, 'fetch('],
      [/\bXMLHttpRequest\b/, 'XMLHttpRequest'],
      [/\bsendBeacon\b/, 'navigator.sendBeacon'],
      [/\bEventSource\b/, 'EventSource'],
      [/['"`]\/api\/v1/, 'an /api/v1 URL'],
      [/x-refresh-cookie|x-device-fingerprint/i, 'a header the client sets'],
    ] as const) {
      assert.doesNotMatch(code, pattern, `${file} uses ${what}: requests belong to clients/typescript (regenerate the vendor bundle)`);
    }
  }
  // The client is created once, in cookie-refresh mode.
  const creators = webAppModules().filter((f) => f !== vendor && /createTrustedDevicesClient\s*\(/.test(readFileSync(f, 'utf8')));
  assert.equal(creators.length, 1, `one module creates the client: ${creators.join(', ')}`);
  assert.match(readFileSync(creators[0]!, 'utf8'), /refreshCookie:\s*true/);
});

function webAppModules(dir = fileURLToPath(new URL('../../../public/js/', import.meta.url))): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? webAppModules(join(dir, entry.name)) : entry.name.endsWith('.js') ? [join(dir, entry.name)] : [],
  );
}
