/**
 * Drift check: the committed OpenAPI document and generated types are what
 * the current code generates (`npm run client:generate`). A route schema
 * changed without regenerating fails here, so the client never lags the API.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DOCUMENT_FILE, generate, TYPES_FILE } from '../scripts/generate.ts';

test('clients/typescript/openapi.json and src/generated/api.ts match the current app (run npm run client:generate)', async () => {
  const { document, types } = await generate();
  assert.ok(document === readFileSync(DOCUMENT_FILE, 'utf8'), 'openapi.json is stale: run npm run client:generate');
  assert.ok(types === readFileSync(TYPES_FILE, 'utf8'), 'src/generated/api.ts is stale: run npm run client:generate');
  // The generated types carry the named schemas.
  for (const name of ['Device', 'DeviceEvent', 'PendingDevice', 'LoginSession', 'MfaChallenge', 'ErrorEnvelope']) {
    assert.match(types, new RegExp(`\\b${name}: \\{`), name);
  }
});
