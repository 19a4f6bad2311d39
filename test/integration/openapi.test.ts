/**
 * The OpenAPI document (docs/integration.md): an operationId on every operation, named
 * component schemas reused by $ref, `security: []` exactly on the operations
 * that need no token, and a clean run of a standard linter (Redocly's
 * recommended rules, the same run as `npm run lint:openapi`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { documentText, lintOpenApi, openApiDocument } from '../../scripts/openapi.ts';
import { createTestApp, databaseKinds, type TestApp } from '../helpers/app.ts';

type Operation = { operationId?: string; security?: unknown[]; tags?: string[]; responses: Record<string, unknown> };
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
  servers?: unknown[];
  info: { license?: { name: string } };
};
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ path, method, operation })),
  );

// The document does not depend on the storage: one run on SQLite is enough.
const [sqlite] = databaseKinds();

describe('OpenAPI document', () => {
  let t: TestApp;
  let doc: Document;
  before(async () => {
    t = await createTestApp(sqlite!);
    doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  });
  after(() => t.close());

  test('every route has a unique operationId', () => {
    const all = operations(doc);
    assert.ok(all.length >= 22, `${all.length} operations`);
    const missing = all.filter(({ operation }) => typeof operation.operationId !== 'string' || operation.operationId === '');
    assert.deepEqual(missing.map(({ method, path }) => `${method} ${path}`), []);
    const ids = all.map(({ operation }) => operation.operationId);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const id of ids) assert.match(id!, /^[a-z][A-Za-z0-9]+$/, 'camelCase, usable as a method name');
    // Every route Fastify serves (except the hidden /openapi.json and the docs UI) is in the document.
    for (const { method, path } of all) {
      assert.ok(t.app.hasRoute({ method: method.toUpperCase() as 'GET', url: path.replace(/\{(\w+)\}/g, ':$1') }), `${method} ${path} is a real route`);
    }
  });

  test('named component schemas, reused by $ref; no anonymous def-N names', () => {
    const names = Object.keys(doc.components.schemas);
    for (const name of ['ErrorEnvelope', 'Device', 'DeviceEvent', 'PendingDevice', 'LoginSession', 'MfaChallenge', 'TokenPair', 'User', 'JwkSet']) {
      assert.ok(names.includes(name), `components.schemas.${name}`);
    }
    assert.deepEqual(names.filter((name) => /^def-\d+$/.test(name)), []);
    const text = JSON.stringify(doc.paths);
    for (const name of ['ErrorEnvelope', 'Device', 'DeviceEvent', 'PendingDevice', 'LoginSession', 'MfaChallenge', 'TokenPair', 'User']) {
      assert.ok(text.includes(`"#/components/schemas/${name}"`), `${name} is referenced from an operation`);
    }
    // The device list's items are the Device component, not an inline copy.
    const list = doc.paths['/api/v1/devices']!.get!.responses['200'] as any;
    assert.deepEqual(list.content['application/json'].schema.properties.data.properties.devices.items, { $ref: '#/components/schemas/Device' });
    assert.ok(doc.servers && doc.servers.length > 0, 'servers');
    assert.ok(doc.info.license?.name, 'licence');
  });

  test('security: [] exactly on the operations that answer without a token', async () => {
    for (const { method, path, operation } of operations(doc)) {
      const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
      // An access token, or (the admin API, docs/integration.md) an admin API key: both answer 401 without one.
      const requiresBearer = [[{ bearerAuth: [] }], [{ adminKey: [] }]].some((s) => JSON.stringify(operation.security) === JSON.stringify(s));
      assert.ok(isPublic || requiresBearer, `${method} ${path} declares its security`);
      const res = await t.app.inject({
        method: method.toUpperCase() as 'GET',
        url: path.replace(/\{\w+\}/g, randomUUID()),
        ...(method === 'get' || method === 'delete' ? {} : { payload: {} }),
      });
      const code = res.statusCode === 401 ? res.json().error.code : undefined;
      if (requiresBearer) assert.deepEqual([res.statusCode, code], [401, 'UNAUTHORIZED'], `${method} ${path} without a token`);
      // A public operation may refuse the credential its body names (refresh with no refresh token: INVALID_TOKEN), never ask for an access token.
      else assert.notEqual(code, 'UNAUTHORIZED', `${method} ${path} is public`);
    }
  });

  test('Redocly lint (recommended rules): 0 errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'td-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      // The document of scripts/openapi.ts (what `npm run lint:openapi` lints) is the one the app serves.
      const built = await openApiDocument();
      assert.deepEqual(built, doc);
      writeFileSync(file, documentText(built));
      const { status, output } = lintOpenApi(file);
      assert.equal(status, 0, output);
      assert.match(output, /valid/i);
      assert.doesNotMatch(output, /\berror\b/i, output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
