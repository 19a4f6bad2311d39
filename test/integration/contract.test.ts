/**
 * The document and the server agree, both ways (docs/integration.md "What the
 * document guarantees"). For every operation of GET /openapi.json:
 *
 * - the document's own example body (or, without one, a body sampled from its
 *   schema by openapi-sampler) is accepted: never 422 VALIDATION_ERROR;
 * - bodies made invalid from the schema (an unknown field, a required field
 *   left out, a value of another type, a string over maxLength, a value off an
 *   enum or pattern, another JSON type at the root) are refused with 422
 *   VALIDATION_ERROR in the envelope, never 5xx, the unknown field named;
 * - fast-check mutates the example at random (any JSON value at any member,
 *   added, replaced or removed) and an independent validator (ajv 2020-12 on
 *   the document's schema, plus the document's well-formed-Unicode rule)
 *   decides whether the mutant is valid; the server must answer
 *   VALIDATION_ERROR exactly when it is not;
 * - every status the server answers is one the operation documents
 *   explicitly, with a code its enum lists.
 *
 * The document does not depend on the storage: SQLite only.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { sample } from 'openapi-sampler';
import { runAdminCommand } from '../../src/app/admin-cli.ts';
import { createTestApp, databaseKinds, deviceHeaders, laptop, signupAndLogin, type TestApp } from '../helpers/app.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = Record<string, any>;
interface Operation {
  operationId: string;
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema; example?: Json }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const hasLoneSurrogate = (value: unknown): boolean =>
  typeof value === 'string'
    ? LONE_SURROGATE.test(value)
    : Array.isArray(value)
      ? value.some(hasLoneSurrogate)
      : value !== null && typeof value === 'object'
        ? Object.entries(value).some(([k, v]) => LONE_SURROGATE.test(k) || hasLoneSurrogate(v))
        : false;

const [sqlite] = databaseKinds();

describe('contract: the server agrees with its OpenAPI document', () => {
  let t: TestApp;
  let doc: Document;
  let adminKey = '';
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);

  /** `#/components/schemas/X` → the schema, inlined (the document has no cycles in request schemas). */
  const inline = (schema: unknown): any => {
    if (Array.isArray(schema)) return schema.map(inline);
    if (schema === null || typeof schema !== 'object') return schema;
    const ref = (schema as Schema).$ref;
    if (typeof ref === 'string') return inline(doc.components.schemas[ref.split('/').pop()!]);
    return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, inline(v)]));
  };

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, operation]) => ({ path, method, operation })),
    );

  /** A signed-in user's headers for a bearer operation, the admin key for the admin API, a device's headers always. */
  const headersFor = async (operation: Operation): Promise<Record<string, string>> => {
    const headers = deviceHeaders(laptop());
    const scheme = Object.keys(operation.security?.[0] ?? {})[0];
    if (scheme === 'bearerAuth') headers.authorization = `Bearer ${(await signupAndLogin(t.app)).accessToken}`;
    if (scheme === 'adminKey') headers.authorization = `Bearer ${adminKey}`;
    return headers;
  };

  const urlFor = (path: string, operation: Operation, query: Record<string, unknown>) => {
    const url = path.replace(/\{\w+\}/g, () => randomUUID());
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return qs ? `${url}?${qs}` : url;
  };

  /** The documented statuses (explicit ones: the `4XX` range is for refusals of the request itself) and their codes. */
  const documented = (operation: Operation) =>
    new Map(
      Object.entries(operation.responses)
        .filter(([status]) => /^\d{3}$/.test(status))
        .map(([status, response]) => {
          const schema = inline(response.content?.['application/json']?.schema ?? {});
          const codes: string[] | undefined = schema.allOf?.[1]?.properties?.error?.properties?.code?.enum;
          return [Number(status), codes];
        }),
    );

  let context: { method: string; path: string; operation: Operation; headers: Record<string, string>; query: Record<string, unknown> };

  /** Sends a body; checks the status and code are documented; re-signs in once if an earlier request ended the session. */
  const send = async (body: Json | undefined) => {
    const { method, path, operation, query } = context;
    const go = () =>
      t.app.inject({
        method: method.toUpperCase() as 'POST',
        url: urlFor(path, operation, query),
        headers: { ...context.headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      });
    let res = await go();
    if (res.statusCode === 401 && res.json().error?.code === 'UNAUTHORIZED' && context.headers.authorization) {
      context.headers = await headersFor(operation);
      res = await go();
    }
    const label = `${method.toUpperCase()} ${path} ${JSON.stringify(body)?.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    assert.ok(res.statusCode < 500, `never 5xx: ${label}`);
    const statuses = documented(operation);
    assert.ok(statuses.has(res.statusCode), `status ${res.statusCode} is documented: ${label}`);
    if (res.statusCode >= 400) {
      const error = res.json().error;
      assert.equal(res.json().success, false, label);
      assert.ok(statuses.get(res.statusCode)?.includes(error.code), `${error.code} is listed under ${res.statusCode}: ${label}`);
      return { status: res.statusCode, code: error.code as string, details: error.details as Array<{ field: string }> | undefined, label };
    }
    return { status: res.statusCode, code: undefined, details: undefined, label };
  };

  const assertAccepted = (result: Awaited<ReturnType<typeof send>>) => assert.notEqual(result.code, 'VALIDATION_ERROR', `valid per the document, refused: ${result.label}`);
  const assertRefused = (result: Awaited<ReturnType<typeof send>>) => {
    assert.equal(result.status, 422, `invalid per the document, accepted: ${result.label}`);
    assert.equal(result.code, 'VALIDATION_ERROR', result.label);
  };

  before(async () => {
    t = await createTestApp(sqlite!);
    doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const out: string[] = [];
    const code = await runAdminCommand(['create-key', '--name', 'contract', '--scopes', 'users:read,devices:read,devices:write,sessions:read,sessions:write,events:read,ssf:streams'], t.db.handle.db, { out: (l) => out.push(l), err: () => undefined }, t.clock);
    assert.equal(code, 0);
    adminKey = out[0]!;
  });
  after(() => t.close());

  test('every operation: its example is accepted, invalid bodies refused, every answer documented', async () => {
    const all = operations();
    assert.ok(all.length >= 45, `${all.length} operations`);
    let bodies = 0;
    for (const { path, method, operation } of all) {
      // Required query parameters: a sample of each (adminFindUser's email).
      const query: Record<string, unknown> = {};
      for (const p of operation.parameters ?? []) if (p.in === 'query' && p.required) query[p.name] = sample(inline(p.schema), { skipNonRequired: true });
      context = { method, path, operation, headers: await headersFor(operation), query };

      const media = operation.requestBody?.content['application/json'];
      if (!media) {
        await send(undefined);
        continue;
      }
      bodies++;
      const schema = inline(media.schema);
      const validate = ajv.compile(schema);
      const isValid = (body: Json) => validate(body) && !hasLoneSurrogate(body);
      assert.ok(media.example !== undefined, `${method} ${path} has an example body`);
      assert.ok(isValid(media.example!), `${method} ${path}: its example is valid per its own schema`);
      assertAccepted(await send(media.example!));
      const sampled = sample(schema, { skipReadOnly: true }) as Json;
      if (isValid(sampled)) assertAccepted(await send(sampled));

      // Invalid bodies from the schema.
      const object = [schema, ...(schema.anyOf ?? [])].find((s: Schema) => s.type === 'object' && s.properties);
      const example = (typeof media.example === 'object' && media.example !== null && !Array.isArray(media.example) ? media.example : {}) as Record<string, Json>;
      assertRefused(await send([example]));
      assertRefused(await send('text'));
      if (object) {
        if (object.additionalProperties === false) {
          const unknown = await send({ ...example, displayName: 'Ann' });
          assertRefused(unknown);
          assert.ok(unknown.details?.some((d) => d.field === 'displayName'), `the unknown field is named: ${unknown.label}`);
        }
        for (const name of object.required ?? []) {
          const { [name]: _left, ...rest } = example;
          assertRefused(await send(rest));
        }
        for (const [name, property] of Object.entries<Schema>(object.properties)) {
          // A wrong type only where the property has one type (a union such as aud's string-or-array has none to be wrong against).
          if (property.type !== undefined || property.enum) {
            const wrongType = property.type === 'string' || property.enum ? 12345 : 'a string';
            assertRefused(await send({ ...example, [name]: wrongType }));
          }
          if (property.type === 'string' && typeof property.maxLength === 'number') assertRefused(await send({ ...example, [name]: 'x'.repeat(property.maxLength + 1) }));
          if (property.type === 'string' && property.pattern) assertRefused(await send({ ...example, [name]: 'a\u0001b' }));
          if (property.type === 'string') assertRefused(await send({ ...example, [name]: 'x\ud800y' }));
          if (property.type === 'object' && property.properties?.kty?.enum) assertRefused(await send({ ...example, [name]: { ...(example[name] as object), kty: 'RSA' } }));
        }
      }

      // Random mutants of the example; ajv (2020-12, the document's schema) is the judge.
      const keys = Object.keys(object?.properties ?? {});
      const mutant = fc.oneof(
        fc.record({ kind: fc.constant('set' as const), key: keys.length > 0 ? fc.constantFrom(...keys, 'extra_field') : fc.constant('extra_field'), value: fc.jsonValue({ maxDepth: 2 }) }),
        fc.record({ kind: fc.constant('drop' as const), key: keys.length > 0 ? fc.constantFrom(...keys) : fc.constant('none'), value: fc.constant(null) }),
        fc.record({ kind: fc.constant('root' as const), key: fc.constant(''), value: fc.jsonValue({ maxDepth: 2 }) }),
      );
      await fc.assert(
        fc.asyncProperty(mutant, async ({ kind, key, value }) => {
          let body: Json;
          if (kind === 'root') body = value as Json;
          else if (kind === 'drop') body = Object.fromEntries(Object.entries(example).filter(([k]) => k !== key));
          else body = { ...example, [key]: value as Json };
          const result = await send(body);
          if (isValid(body)) assertAccepted(result);
          else assertRefused(result);
        }),
        { numRuns: 25, seed: 26 },
      );
    }
    assert.ok(bodies >= 20, `${bodies} operations with a body`);
  });
});
