/**
 * docs/security.md (no input answers 500; input is taken as typed) and issue 10: a property-based HTTP fuzz driven by
 * the service's own /openapi.json. Per database: 2,000 generated requests
 * spread over every operation (each field of the documented body replaced,
 * dropped or joined by wrong types, odd strings, unicode with lone
 * surrogates, huge and non-finite numbers, extra fields; query and path
 * values of every shape), then 300 raw, mostly malformed HTTP requests over
 * a real socket. Asserted for every answer: no 5xx, every error in the
 * envelope with a catalogue code, no-store and nosniff; at the end the
 * process still answers.
 *
 * Then the login's own inputs (docs/security.md, known devices and the
 * hashing lanes): device tokens (valid, retired, another account's, random,
 * junk), device proofs (valid, spent, foreign, junk), forwarded addresses
 * (IPv4, IPv6, junk) behind TRUST_PROXY, with the rate limits on, sent in
 * parallel batches so both lanes of the hashing line are in use: no 5xx.
 *
 * The seed is printed on failure by fast-check; set FUZZ_SEED to replay.
 */
import assert from 'node:assert/strict';
import type { webcrypto as WebCrypto } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS } from '../../src/platform/errors.ts';
import { call, createTestApp, databaseKinds, enableMfa, laptop, loginWithMfa, PASSWORD, signupAndLogin, type TestApp, type TestUser, uniqueEmail } from '../helpers/app.ts';
import { createPasswordHasher } from '../../src/platform/crypto/passwords.ts';
import { generateToken } from '../../src/platform/crypto/tokens.ts';
import { makeDeviceKey, proofHeader } from '../helpers/device-keys.ts';

const RUNS = 2000;
const RAW_RUNS = 300;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;

interface Operation {
  method: string;
  path: string;
  secured: boolean;
  body: { properties: Record<string, unknown>; required: string[] } | null;
  query: string[];
}

// Values that have broken services before: types, numbers JSON can spell but JS cannot hold, text edge cases.
const HUGE_NUMBERS = ['1e400', '-1e400', '1e308', '9007199254740993', '-0', '0.0000001', '123456', '135258', '1E2'];
const oddStrings = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u3000',
    '\ud800',
    'a\udc00b',
    '\udbff\udfff',
    '😀',
    '\u202eevil',
    '\u0000',
    'x\u001by',
    '__proto__',
    'constructor',
    "' or 1=1 --",
    '%00',
    '../../etc/passwd',
    'tdr_x',
    'tda_x',
    'tdm_x',
    'NaN',
    'Infinity',
    '00000000-0000-4000-8000-000000000000',
    'a'.repeat(5000),
    'é'.repeat(200),
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  // Any UTF-16 code units, lone surrogates included.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
);
/** A JSON value placeholder for numbers JSON.stringify cannot write (1e400); replaced in the text afterwards. */
const hugeNumber = fc.constantFrom(...HUGE_NUMBERS).map((text) => ({ __raw: text }));
const wrongType = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
  fc.constant({ $ne: null }),
  hugeNumber,
);
const extraFields = fc.dictionary(
  fc.constantFrom('__proto__', 'constructor', 'user_id', 'is_active', 'expires_at', 'status', 'mfa_enabled', 'x'),
  fc.oneof(wrongType, oddStrings, fc.constant({ isAdmin: true })),
  { maxKeys: 2 },
);

function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && '__raw' in v ? `@@RAW:${v.__raw}@@` : v)).replace(/"@@RAW:([^@]+)@@"/g, '$1');
}

for (const kind of databaseKinds()) {
  describe(`OpenAPI-driven fuzz (${kind.name})`, () => {
    let t: TestApp;
    let user: TestUser;
    let accessToken = '';
    let operations: Operation[] = [];
    let port = 0;
    const hits = new Map<string, number>();

    const relogin = async () => {
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { device: laptop() });
      assert.equal(login.res.statusCode, 200, `re-login: ${login.res.body}`);
      accessToken = login.body.data.access_token;
    };

    before(async () => {
      t = await createTestApp(kind);
      user = await signupAndLogin(t.app, laptop());
      accessToken = user.accessToken;
      const doc = (await call(t.app, 'GET', '/openapi.json')).body;
      operations = Object.entries<any>(doc.paths).flatMap(([path, item]) =>
        Object.entries<any>(item).map(([method, op]) => {
          const schema = op.requestBody?.content?.['application/json']?.schema;
          return {
            method: method.toUpperCase(),
            path,
            secured: Array.isArray(op.security) && op.security.length > 0,
            body: schema?.properties ? { properties: schema.properties, required: schema.required ?? [] } : null,
            query: (op.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name),
          };
        }),
      );
      assert.ok(operations.length >= 20, `operations in /openapi.json: ${operations.length}`);
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      port = (t.app.server.address() as { port: number }).port;
    });
    after(() => t.close());

    /** A plausible value for a documented field (so requests also get past validation). */
    const plausible = (field: string) => {
      if (field.includes('email')) return fc.constantFrom(user.email, uniqueEmail('fuzz'), 'not-an-email', ` ${user.email.toUpperCase()} `);
      // A new password is never a different valid one: the fuzz signs in again with PASSWORD when a request ended its session.
      if (field === 'new_password') return fc.constantFrom(PASSWORD, 'short', 'nouppercase-1');
      if (field.includes('password')) return fc.constantFrom(PASSWORD, 'wrong-Password-1', 'short');
      if (field.includes('token')) return fc.constantFrom(user.refreshToken, 'tdr_' + 'A'.repeat(43), 'tda_' + 'A'.repeat(43), 'tdm_' + 'A'.repeat(43), 'garbage');
      if (field === 'code') return fc.constantFrom('123456', '000000', '999999');
      if (field === 'backup_code') return fc.constantFrom('aaaaa-bbbbb', '1234-5678');
      if (field.includes('name')) return fc.constantFrom('Work laptop', ' Phone ', 'Zoë’s 📱');
      return fc.string({ maxLength: 10 });
    };

    const bodyFor = (op: Operation) => {
      if (!op.body) return fc.option(fc.oneof(fc.jsonValue({ maxDepth: 2 }), extraFields), { nil: undefined, freq: 3 });
      const fields = Object.keys(op.body.properties);
      const entries = fields.map((field) =>
        fc.oneof(
          { weight: 4, arbitrary: plausible(field).map((v) => ({ set: v })) },
          { weight: 2, arbitrary: wrongType.map((v) => ({ set: v })) },
          { weight: 2, arbitrary: oddStrings.map((v) => ({ set: v })) },
          { weight: 1, arbitrary: fc.constant({ drop: true }) },
        ),
      );
      return fc.oneof(
        { weight: 8, arbitrary: fc.tuple(fc.tuple(...entries), extraFields).map(([choices, extra]) => {
          const body: Record<string, unknown> = { ...extra };
          choices.forEach((choice, i) => {
            if ('set' in choice) body[fields[i]!] = choice.set;
          });
          return body as unknown;
        }) },
        { weight: 1, arbitrary: fc.oneof(wrongType, oddStrings, fc.constant([])) as fc.Arbitrary<unknown> },
      );
    };

    const queryValue = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('Infinity', '-Infinity', '1e400', 'NaN', '-1', '0', '1', '20', '100', '101', '2.5', '', 'true', 'false', '00000000-0000-7000-8000-000000000000', '[]', '{}') },
      { weight: 1, arbitrary: oddStrings },
    );
    const queryFor = (op: Operation) => {
      const pair = fc.tuple(
        op.query.length > 0 ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...op.query) }, { weight: 1, arbitrary: fc.constantFrom('x', '__proto__') }) : fc.constantFrom('x', '__proto__'),
        queryValue,
      );
      // Mostly one value per name (so a value reaches the handler); sometimes repeated names (arrays).
      return fc.oneof(
        { weight: 4, arbitrary: fc.uniqueArray(pair, { selector: ([name]) => name, maxLength: 3 }) },
        { weight: 1, arbitrary: fc.array(pair, { maxLength: 3 }) },
      );
    };
    const pathValue = fc.oneof(
      fc.uuid(),
      fc.constantFrom('00000000-0000-4000-8000-000000000000', '%ED%A0%80', '%00', '..', '%2e%2e', 'null', '__proto__', 'a'.repeat(64), 'A'.repeat(101), '%C0%AF'),
      oddStrings.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '')).slice(0, 90) || 'x'),
    );

    const request = fc
      .nat({ max: 10_000 })
      .chain((n) => {
        const op = operations[n % operations.length]!;
        return fc.record({
          op: fc.constant(op),
          body: bodyFor(op),
          auth: fc.constantFrom('valid', 'valid', 'valid', 'none', 'garbage'),
          query: queryFor(op),
          param: pathValue,
          contentType: fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', undefined),
        });
      });

    function assertAnswer(where: string, res: { statusCode: number; headers: Record<string, unknown>; body: string }, method: string) {
      assert.ok(res.statusCode < 500, `${where} → ${res.statusCode} ${res.body.slice(0, 300)}`);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', where);
      if (where.includes('/api/')) assert.equal(res.headers['cache-control'], 'no-store', where);
      if (res.statusCode >= 400 && method !== 'HEAD') {
        assert.match(String(res.headers['content-type']), /^application\/json/, where);
        assert.equal(res.headers['cache-control'], 'no-store', where);
        const body = JSON.parse(res.body);
        assert.equal(body.success, false, where);
        assert.ok(body.error.code in ERRORS, `${where}: ${body.error.code} is not in the catalogue`);
        assert.equal(typeof body.error.message, 'string', where);
        assert.equal(typeof body.error.request_id, 'string', where);
      }
    }

    /** Sends one request (with a live access token when `auth`) and checks the answer. */
    async function sendAndCheck(method: string, url: string, payload: string | undefined, auth: boolean) {
      const headers: Record<string, string> = { 'user-agent': laptop().userAgent };
      if (auth) headers.authorization = `Bearer ${accessToken}`;
      if (payload !== undefined) headers['content-type'] = 'application/json';
      const res = await t.app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
      assertAnswer(`${method} ${url.slice(0, 120)} ${payload?.slice(0, 200) ?? ''}`, res, method);
      if (auth && res.statusCode === 401 && JSON.parse(res.body).error.code === 'UNAUTHORIZED') await relogin();
      return res;
    }

    // Before the random part, every edge value once in every query parameter and body field
    // (a sweep, so the rare values are certain to be sent, not merely likely).
    const EDGE_QUERY = ['Infinity', '-Infinity', '1e400', '-1e400', 'NaN', '-1', '0', '1e2', '2.5', '', '%00', '\ud800', '[]'];
    const EDGE_JSON = [...HUGE_NUMBERS, 'true', 'null', '[]', '{}', '["a@b.c"]', '{"$ne":null}', '"\\ud800"', '" \\t "', '"\\u0000"', `"${'a'.repeat(3000)}"`];

    test('sweep: every edge value in every query parameter and body field', async () => {
      let sent = 0;
      for (const op of operations) {
        const path = op.path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
        for (const name of op.query) {
          for (const value of EDGE_QUERY) {
            await sendAndCheck(op.method, `${path}?${name}=${encodeURIComponent(value.replace(/[\ud800-\udfff]/g, '\ufffd'))}`, undefined, op.secured);
            sent++;
          }
        }
        for (const field of Object.keys(op.body?.properties ?? {})) {
          for (const raw of EDGE_JSON) {
            await sendAndCheck(op.method, path, `{"${field}":${raw}}`, op.secured);
            sent++;
          }
        }
      }
      assert.ok(sent > 200, `sent ${sent}`);
    });

    // docs/sessions.md "Bound sessions": session_key JWKs of every shape, and x-session-proof of every shape on a bound session's refresh.
    const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => Buffer.from(bytes).toString('base64url'));
    const sessionKey = fc.record(
      {
        kty: fc.oneof(fc.constantFrom('EC', 'RSA', 'OKP', 'oct', '', 'ec'), oddStrings, fc.integer()),
        crv: fc.oneof(fc.constantFrom('P-256', 'P-384', 'P-521', 'secp256k1', 'Ed25519', 'X25519', 'p-256'), oddStrings),
        x: fc.oneof(b64(32), b64(48), b64(31), oddStrings, fc.constant(null)),
        y: fc.oneof(b64(32), b64(48), b64(33), oddStrings, fc.integer()),
        d: b64(32),
        alg: fc.constantFrom('ES256', 'ES384', 'RS256', 'none', 'HS256'),
        use: fc.constantFrom('sig', 'enc', ''),
        key_ops: fc.oneof(fc.constant(['verify']), fc.constant(['sign']), fc.constant('verify'), fc.array(oddStrings, { maxLength: 2 })),
        n: b64(256),
        e: fc.constant('AQAB'),
      },
      { requiredKeys: [] },
    );
    test('session_key JWKs of other curves and types, with private parts, malformed: 4xx in the envelope (422 INVALID_PUBLIC_KEY or VALIDATION_ERROR), never 5xx, never bound', async () => {
      const { webcrypto } = await import('node:crypto');
      await fc.assert(
        fc.asyncProperty(sessionKey, fc.constantFrom('/api/v1/auth/login', '/api/v1/auth/mfa/verify', '/api/v1/auth/passkey/verify'), async (jwk, path) => {
          const body = path === '/api/v1/auth/login' ? { email: user.email, password: PASSWORD, session_key: jwk } : path === '/api/v1/auth/mfa/verify' ? { temporary_token: 'tdm_x', code: '123456', session_key: jwk } : { attempt_token: 'x', response: {}, session_key: jwk };
          const res = await t.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json', 'user-agent': laptop().userAgent }, payload: JSON.stringify(body) });
          assertAnswer(`POST ${path} ${JSON.stringify(jwk).slice(0, 200)}`, res, 'POST');
          // A private part, another curve or key type is never accepted (the login answers 200 only for a real public P-256 point).
          if (res.statusCode === 200) assert.ok(!('d' in jwk) && jwk.kty === 'EC' && jwk.crv === 'P-256', `accepted ${JSON.stringify(jwk)}`);
        }),
        { numRuns: 300, seed },
      );
      // And a real P-256 public key with a private part added: refused, the private part not echoed.
      const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const privateJwk = await webcrypto.subtle.exportKey('jwk', pair.privateKey);
      // Only the members of a public key plus `d` (no key_ops to give it away).
      const res = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD, session_key: { kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x, y: privateJwk.y, d: privateJwk.d } });
      assert.equal(res.res.statusCode, 422);
      assert.equal(res.body.error.code, 'INVALID_PUBLIC_KEY');
      assert.ok(!res.res.body.includes(String(privateJwk.d)));
    });

    test('x-session-proof of every shape on a bound session’s refresh: 401 SESSION_PROOF_REQUIRED (or a 4xx) in the envelope, never 5xx', async () => {
      const { webcrypto } = await import('node:crypto');
      const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const { x, y } = (await webcrypto.subtle.exportKey('jwk', pair.publicKey)) as { x: string; y: string };
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD, session_key: { kty: 'EC', crv: 'P-256', x, y } });
      assert.equal(login.res.statusCode, 200, login.res.body);
      const refreshToken = login.body.data.refresh_token;
      const proof = fc.oneof(
        oddStrings,
        fc.tuple(fc.constantFrom('tdc_', 'tdc', ''), oddStrings, fc.constantFrom('.', '..', ''), oddStrings).map((parts) => parts.join('')),
        b64(64).map((sig) => `tdc_${'A'.repeat(43)}.${sig}`),
      );
      await fc.assert(
        fc.asyncProperty(proof, async (header) => {
          const safe = header.replace(/[^\x20-\x7e]/g, '?').slice(0, 600);
          const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', headers: { 'content-type': 'application/json', 'x-session-proof': safe }, payload: JSON.stringify({ refresh_token: refreshToken }) });
          assertAnswer(`refresh x-session-proof: ${safe.slice(0, 100)}`, res, 'POST');
          assert.ok([401, 422].includes(res.statusCode), `${res.statusCode} ${res.body.slice(0, 200)}`);
        }),
        { numRuns: 200, seed },
      );
    });

    test('malformed Secure-Session-Response and Sec-Secure-Session-Id on the DBSC endpoints: 4xx in the envelope, never 5xx', async () => {
      const b64json = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
      const jwtLike = fc
        .tuple(
          fc.oneof(fc.constant({ alg: 'ES256', typ: 'dbsc+jwt' }), fc.record({ alg: fc.constantFrom('ES256', 'none', 'RS256', 'HS256', ''), typ: fc.constantFrom('dbsc+jwt', 'JWT', ''), jwk: fc.oneof(fc.constant(undefined), fc.record({ kty: fc.constantFrom('EC', 'RSA'), crv: fc.constantFrom('P-256', 'P-384'), x: oddStrings, y: oddStrings, d: fc.constant('AAAA') })) }), oddStrings),
          fc.oneof(fc.record({ jti: fc.oneof(oddStrings, fc.integer(), fc.constant(null)), authorization: fc.oneof(oddStrings, fc.constant(undefined)) }), oddStrings, fc.constant('null')),
          fc.oneof(fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64url')), oddStrings, fc.constant('')),
        )
        .map(([header, payload, signature]) => `${b64json(header)}.${b64json(payload)}.${signature}`);
      const value = fc.oneof(jwtLike.map((jwt) => `"${jwt}"`), jwtLike, oddStrings, fc.constantFrom('"', '""', '"\\"', '"a";id=1', '"a"garbage', '?1', '(ES256)'));
      const sessionId = fc.oneof(fc.uuid().map((id) => `"${id}"`), oddStrings, fc.constant(undefined));
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/api/v1/auth/dbsc/register', '/api/v1/auth/dbsc/refresh'), value, sessionId, async (path, response, id) => {
          const clean = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 9000);
          const headers: Record<string, string> = { 'secure-session-response': clean(response), cookie: 'td_refresh=tdr_' + 'A'.repeat(43) };
          if (id !== undefined) headers['sec-secure-session-id'] = clean(id);
          const res = await t.app.inject({ method: 'POST', url: path, headers });
          assertAnswer(`POST ${path} ${clean(response).slice(0, 120)}`, res, 'POST');
          assert.ok(res.statusCode >= 400, `${path}: ${res.statusCode} for a malformed response`);
        }),
        { numRuns: 300, seed },
      );
    });

    test('RS256 DBSC keys too short, too long, malformed or private, and RS256/ES256 proofs on an RSA-bound session: 4xx in the envelope, never 5xx', async () => {
      const { webcrypto } = await import('node:crypto');
      const { subtle } = webcrypto;
      const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const rsaParams = (modulusLength: number) => ({ name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
      const rsa = (await subtle.generateKey(rsaParams(2048), true, ['sign', 'verify'])) as WebCrypto.CryptoKeyPair;
      const small = (await subtle.generateKey(rsaParams(1024), true, ['sign', 'verify'])) as WebCrypto.CryptoKeyPair;
      const ec = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as WebCrypto.CryptoKeyPair;
      const jwkOf = async (key: WebCrypto.CryptoKey) => (await subtle.exportKey('jwk', key)) as Record<string, unknown>;
      const rsaPublic = await jwkOf(rsa.publicKey);
      const rsaPrivate = await jwkOf(rsa.privateKey);
      const smallPublic = await jwkOf(small.publicKey);
      const ecPublic = await jwkOf(ec.publicKey);
      const signers = {
        rsa: (input: string) => subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, rsa.privateKey, Buffer.from(input)),
        small: (input: string) => subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, small.privateKey, Buffer.from(input)),
        ec: (input: string) => subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, ec.privateKey, Buffer.from(input)),
      };
      const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString('base64url'));
      // Keys: the real ones, each member replaced or joined by private parts, moduli of every size (a 2048-bit key's n cut or padded).
      const n = Buffer.from(rsaPublic.n as string, 'base64url');
      const b64jsonless = (buffer: Buffer) => buffer.toString('base64url');
      // Weighted towards what gets past the JWT's own checks (RS256, a signature of an RSA size, a jwk of kty RSA), so the key checks run.
      const weighted = <T,>(likely: fc.Arbitrary<T>, other: fc.Arbitrary<T>) => fc.oneof({ arbitrary: likely, weight: 5 }, { arbitrary: other, weight: 1 });
      const jwk = fc.oneof(
        { arbitrary: fc.constantFrom<unknown>(rsaPublic, rsaPrivate, smallPublic, ecPublic, {}, null, [], 'AQAB', { kty: 'RSA' }), weight: 1 },
        {
          arbitrary: fc.record(
            {
              kty: weighted(fc.constant<unknown>('RSA'), fc.oneof(fc.constantFrom<unknown>('EC', 'oct', 'rsa', '', 1), oddStrings)),
              n: fc.oneof(
                fc.constantFrom<unknown>(undefined, null, 12345, ['AQAB'], rsaPublic.n, b64jsonless(n.subarray(0, 128)), b64jsonless(Buffer.concat([Buffer.from([0]), n])), b64jsonless(Buffer.concat([n, n]))),
                bytes(0, 700),
                oddStrings,
              ),
              e: fc.oneof(fc.constantFrom<unknown>('AQAB', 'Aw', 'AQAB=', 'AAEAAQ', '', 'AQ', undefined, 65537), oddStrings),
              d: fc.oneof(fc.constant(undefined), bytes(1, 300)),
              p: fc.constantFrom(undefined, 'AQAB'),
              alg: fc.constantFrom(undefined, 'RS256', 'RS512', 'PS256', 'ES256', 'none'),
              use: fc.constantFrom(undefined, 'sig', 'enc'),
              key_ops: fc.constantFrom<unknown>(undefined, ['verify'], ['sign'], 'verify', []),
            },
            { requiredKeys: ['kty', 'n', 'e'] },
          ),
          weight: 6,
        },
      );
      const alg = weighted(fc.constant('RS256'), fc.constantFrom('ES256', 'rs256', 'RS384', 'none'));
      const signer = weighted(fc.constantFrom('rsa' as const, 'random256' as const, 'random512' as const), fc.constantFrom('small' as const, 'ec' as const, 'random100' as const));
      const sign = async (how: string, input: string) => {
        if (how === 'random256') return Buffer.alloc(256, 7).toString('base64url');
        if (how === 'random512') return Buffer.alloc(512, 9).toString('base64url');
        if (how === 'random100') return Buffer.alloc(100, 3).toString('base64url');
        return Buffer.from(await signers[how as keyof typeof signers](input)).toString('base64url');
      };

      // A live session bound through DBSC with the 2048-bit key, so the refresh reaches its verification.
      const user = await signupAndLogin(t.app);
      const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json', 'x-refresh-cookie': '1' }, payload: JSON.stringify({ email: user.email, password: PASSWORD }) });
      const refreshCookie = String(login.headers['set-cookie'] instanceof Array ? login.headers['set-cookie'].find((c) => c.startsWith('td_refresh=')) : login.headers['set-cookie']).split(';')[0]!;
      const challenge = /challenge="([^"]+)"/.exec(String(login.headers['secure-session-registration']))![1]!;
      const regInput = `${b64json({ alg: 'RS256', typ: 'dbsc+jwt', jwk: { kty: 'RSA', n: rsaPublic.n, e: rsaPublic.e } })}.${b64json({ jti: challenge })}`;
      const reg = await t.app.inject({ method: 'POST', url: '/api/v1/auth/dbsc/register', headers: { cookie: refreshCookie, 'secure-session-response': `"${regInput}.${await sign('rsa', regInput)}"` } });
      assert.equal(reg.statusCode, 200, reg.body);
      const sessionId: string = JSON.parse(reg.body).session_identifier;

      await fc.assert(
        fc.asyncProperty(
          weighted(fc.constant('/api/v1/auth/dbsc/register'), fc.constant('/api/v1/auth/dbsc/refresh')),
          alg,
          jwk,
          weighted(fc.constant(true), fc.constant(false)),
          signer,
          fc.boolean(),
          async (path, algorithm, key, withJwk, how, realChallenge) => {
            // A real challenge now and then, so the checks after its consumption run too.
            const jti = realChallenge ? JSON.parse((await t.app.inject({ method: 'POST', url: '/api/v1/auth/device-challenge' })).body).data.challenge : `tdc_${'B'.repeat(43)}`;
            // On refresh the draft's proof carries no jwk: send one only at registration (a jwk on refresh is refused before any key check).
            const input = `${b64json({ alg: algorithm, typ: 'dbsc+jwt', ...(withJwk && path.endsWith('/register') ? { jwk: key } : {}) })}.${b64json({ jti })}`;
            const response = `"${input}.${await sign(how, input)}"`.slice(0, 9000);
            const res = await t.app.inject({ method: 'POST', url: path, headers: { cookie: refreshCookie, 'secure-session-response': response, 'sec-secure-session-id': `"${sessionId}"` } });
            assertAnswer(`POST ${path} alg=${algorithm} signer=${how} jwk=${JSON.stringify(key)?.slice(0, 120)}`, res, 'POST');
            // Success only where it is due: a real proof of the bound key refreshes; a valid registration for the already bound session answers continue: false.
            if (res.statusCode < 400) {
              const body = JSON.parse(res.body);
              assert.ok(path.endsWith('/refresh') ? how === 'rsa' && algorithm === 'RS256' && realChallenge : body.continue === false, res.body);
            }
          },
        ),
        { numRuns: 300, seed },
      );
    });

    test(`${RUNS} generated requests over every operation: no 5xx, errors in the envelope with no-store and nosniff`, async () => {
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          try {
            await fuzzOne(r);
          } catch (error) {
            console.error(String(error)); // fast-check's report shows the input; this shows what went wrong
            throw error;
          }
        }),
        { numRuns: RUNS, endOnFailure: true, ...(seed !== undefined ? { seed } : {}) },
      );
      for (const op of operations) assert.ok((hits.get(`${op.method} ${op.path}`) ?? 0) > 0, `${op.method} ${op.path} was never fuzzed`);
    });

    async function fuzzOne(r: any) {
          const op: Operation = r.op;
          hits.set(`${op.method} ${op.path}`, (hits.get(`${op.method} ${op.path}`) ?? 0) + 1);
          let url = op.path.replace(/\{[^}]+\}/g, r.param);
          if (r.query.length > 0) url += `?${r.query.map(([k, v]: [string, string]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\ufffd'))}`).join('&')}`;
          const headers: Record<string, string> = { 'user-agent': laptop().userAgent };
          if (r.auth === 'valid') headers.authorization = `Bearer ${accessToken}`;
          if (r.auth === 'garbage') headers.authorization = 'Bearer eyJhbGciOiJub25lIn0.e30.';
          const payload = r.body === undefined ? undefined : toJson(r.body);
          if (payload !== undefined && r.contentType) headers['content-type'] = r.contentType;
          const res: LightMyRequestResponse = await t.app.inject({ method: op.method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
          assertAnswer(`${op.method} ${url.slice(0, 120)} ${payload?.slice(0, 200) ?? ''}`, res, op.method);
          // A request may legitimately end the session (logout, sign out everywhere, password change): sign in again.
          if (r.auth === 'valid' && res.statusCode === 401 && JSON.parse(res.body).error.code === 'UNAUTHORIZED') await relogin();
    }

    /** Writes the bytes, half-closes, reads until the server closes (or 3 s). */
    const rawExchange = (payload: Buffer) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        const timer = setTimeout(() => socket.destroy(), 3000);
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks).toString('latin1'));
        });
        socket.end(payload);
      });

    const token = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PUT', 'G@T', 'get', '', 'PRI', 'CONNECT', 'TRACE', 'X'.repeat(40));
    const rawPath = fc.oneof(
      fc.constantFrom('/healthz', '/api/v1/auth/login', '/api/v1/devices', '/api/v1/devices/events?limit=1e400', '/%zz', '*', 'http://evil/', '/api/v1/auth/me', '/\u00ff', '/a b', ''),
      fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => `/${s}`),
    );
    const header = fc.oneof(
      fc.constantFrom(
        'Host: x',
        'Host: x',
        'Content-Length: 2',
        'Content-Length: 2, 3',
        'Content-Length: -1',
        'Content-Length: 99999999999999999999',
        'Transfer-Encoding: chunked',
        'Transfer-Encoding: gzip, chunked',
        'Content-Type: application/json',
        'Content-Encoding: gzip',
        'Expect: 100-continue',
        'Expect: something',
        'Connection: upgrade',
        'Upgrade: websocket',
        'Authorization: Bearer x',
        ' leading-space: x',
        'No-Colon',
        `X-Big: ${'a'.repeat(17_000)}`,
        'X-Nul: a\u0000b',
      ),
      fc.tuple(fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 12 }), fc.string({ unit: 'binary-ascii', maxLength: 30 })).map(([k, v]) => `${k}: ${v}`),
    );
    const rawRequest = fc.record({
      method: token,
      path: rawPath,
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'HTTP/9', ''),
      headers: fc.array(header, { maxLength: 6 }),
      body: fc.oneof(fc.constantFrom('', '{}', '{"email":"a@b.c","password":"x"}', '0\r\n\r\n', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n'), fc.string({ unit: 'binary-ascii', maxLength: 60 })),
      lineEnd: fc.constantFrom('\r\n', '\r\n', '\n', '\r'),
    });

    test(`${RAW_RUNS} raw, mostly malformed HTTP requests over a socket: no 5xx, errors in the envelope; the process stays alive`, async () => {
      let answered = 0;
      await fc.assert(
        fc.asyncProperty(rawRequest, async (r) => {
          const head = [`${r.method} ${r.path} ${r.version}`.trim(), ...r.headers].join(r.lineEnd);
          const received = await rawExchange(Buffer.from(`${head}${r.lineEnd}${r.lineEnd}${r.body}`, 'latin1'));
          // Interim answers (100 Continue) come before the final one.
          const text = received.replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
          if (text === '') return; // the server may wait for bytes that never come, then the client gives up: no answer is fine
          assert.match(text, /^HTTP\/1\.[01] \d{3} /, JSON.stringify(text.slice(0, 200)));
          answered++;
          const end = text.indexOf('\r\n\r\n');
          const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
          const headers: Record<string, string> = {};
          for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
          const status = Number(statusLine!.split(' ')[1]);
          let body = text.slice(end + 4);
          // Only the first response of the connection is checked; chunked bodies are decoded enough to read JSON.
          if (headers['transfer-encoding'] === 'chunked') body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n[\s\S]*$/, '');
          if (headers['content-length'] !== undefined) body = Buffer.from(body, 'latin1').subarray(0, Number(headers['content-length'])).toString('utf8');
          try {
            assertAnswer(`raw ${JSON.stringify(head.slice(0, 120))}`, { statusCode: status, headers, body }, r.method === 'HEAD' ? 'HEAD' : 'GET');
          } catch (error) {
            console.error(String(error), JSON.stringify(text.slice(0, 300)));
            throw error;
          }
        }),
        { numRuns: RAW_RUNS, endOnFailure: true, ...(seed !== undefined ? { seed } : {}) },
      );
      assert.ok(answered > RAW_RUNS / 2, `answered ${answered} of ${RAW_RUNS}`);
      // Still alive and serving.
      const health = await rawExchange(Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      assert.match(health, /^HTTP\/1\.1 200 /);
    });
  });
}

const LANE_RUNS = 150;

for (const kind of databaseKinds()) {
  describe(`login device headers and hashing lanes fuzz (${kind.name})`, () => {
    let t: TestApp;
    let owner: TestUser;
    const tokens: string[] = [];
    const proofs: string[] = [];
    before(async () => {
      t = await createTestApp(kind, {
        env: { RATE_LIMITS: 'on', TRUST_PROXY: '127.0.0.1' },
        // One hash at a time, 16 may wait: each batch of 8 uses both lanes, and the line's own refusals are left to their tests.
        deps: { passwordHasher: createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 }, 1, 16, Number.POSITIVE_INFINITY) },
      });
      owner = await signupAndLogin(t.app, laptop());
      await enableMfa(t, owner);
      const key = await makeDeviceKey();
      const verified = await loginWithMfa(t, owner, laptop());
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, public_key: key.publicJwk }, { token: verified.access_token, device: laptop() });
      assert.equal(activate.res.statusCode, 200, activate.res.body);
      tokens.push(activate.body.data.device_token);
      for (let i = 0; i < 12; i++) proofs.push(await proofHeader(t.app, key));
      proofs.push(await proofHeader(t.app, await makeDeviceKey()));
    });
    after(() => t.close());

    const text = fc.oneof(oddStrings, fc.constantFrom('tdd_x', `tdd_${'A'.repeat(43)}`, 'tdc_x.y', '.', 'a.b.c'));
    const loginRequest = fc.record({
      email: fc.oneof(fc.constant('owner'), fc.constantFrom('nobody@example.com', ' OWNER '), oddStrings),
      password: fc.constantFrom(PASSWORD, 'Wrong-Password-1', '', '\ud800'),
      token: fc.oneof(fc.constantFrom('none', 'current', 'first', 'random'), text),
      proof: fc.oneof(fc.constantFrom('none', 'fresh', 'first', 'foreign'), text),
      cookie: fc.boolean(),
      forwarded: fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.constantFrom('2001:db8::1, 10.0.0.1', 'unknown', '', '::ffff:192.0.2.1', 'fe80::1%eth0', '999.1.1.1', '1.2.3.4, ,'),
        oddStrings,
      ),
    });

    test(`${LANE_RUNS} batches of 8 parallel logins with device headers: no 5xx, errors in the envelope`, async () => {
      let proofIndex = 0;
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(loginRequest, { minLength: 8, maxLength: 8 }), async (batch) => {
          try {
            await sendBatch(batch);
          } catch (error) {
            console.error(String(error));
            throw error;
          }
        }),
        { numRuns: LANE_RUNS, endOnFailure: true, ...(seed !== undefined ? { seed } : {}) },
      );
      assert.ok((statuses.get(200) ?? 0) > 0, JSON.stringify(Object.fromEntries(statuses)));

      async function sendBatch(batch: Array<typeof loginRequest extends fc.Arbitrary<infer T> ? T : never>) {
          const answers = await Promise.all(
            batch.map(async (r) => {
              const headers: Record<string, string> = { 'user-agent': laptop().userAgent, 'content-type': 'application/json' };
              const token = r.token === 'none' ? undefined : r.token === 'current' ? tokens.at(-1) : r.token === 'first' ? tokens[0] : r.token === 'random' ? generateToken('device') : r.token;
              const proof = r.proof === 'none' ? undefined : r.proof === 'fresh' ? proofs[Math.min(++proofIndex, proofs.length - 2)] : r.proof === 'first' ? proofs[0] : r.proof === 'foreign' ? proofs.at(-1) : r.proof;
              const clean = (v: string) => v.replace(/[^\x20-\x7e]/g, '?');
              if (token !== undefined && !r.cookie) headers['x-device-token'] = clean(token);
              if (proof !== undefined) headers['x-device-proof'] = clean(proof);
              headers['x-forwarded-for'] = clean(r.forwarded);
              const email = r.email === 'owner' ? owner.email : r.email === ' OWNER ' ? ` ${owner.email.toUpperCase()} ` : r.email;
              const res = await t.app.inject({
                method: 'POST',
                url: '/api/v1/auth/login',
                headers,
                ...(token !== undefined && r.cookie ? { cookies: { td_device: clean(token) } } : {}),
                payload: JSON.stringify({ email, password: r.password }),
              });
              return { r, res };
            }),
          );
          for (const { r, res } of answers) {
            const where = JSON.stringify(r).slice(0, 300);
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body.slice(0, 200)} for ${where}`);
            assert.equal(res.headers['cache-control'], 'no-store', where);
            assert.equal(res.headers['x-content-type-options'], 'nosniff', where);
            const body = JSON.parse(res.body);
            if (res.statusCode >= 400) assert.ok(body.error.code in ERRORS, where);
            // A bypass rotates the token: keep the newest so "current" stays meaningful.
            if (body.data?.device_token) tokens.push(body.data.device_token);
          }
      }
    });
  });
}
