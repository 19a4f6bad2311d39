/**
 * The HTTP conventions (README "API overview", docs/security.md):
 * parsing and validation errors, the error envelope, headers, the bearer
 * check against crafted JWTs, unknown fields, the operations endpoints,
 * the OpenAPI document, and property-based fuzzing of every route.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { totpCode } from '../../src/features/mfa/totp.ts';
import type { DevicesRepository } from '../../src/store/devices.repository.ts';
import {
  call,
  createTestApp,
  databaseKinds,
  enableMfa,
  laptop,
  loginStep,
  loginWithMfa,
  PASSWORD,
  SIGNALS,
  signupAndLogin,
  type TestApp,
  trustDevice,
  uniqueEmail,
} from '../helpers/app.ts';

const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

/** Every non-2xx body must be exactly the error envelope of README "API overview". */
function assertErrorEnvelope(res: LightMyRequestResponse, context = ''): any {
  const where = `${context} ${res.statusCode} ${res.body.slice(0, 300)}`;
  assert.match(String(res.headers['content-type']), /^application\/json/, `content-type: ${where}`);
  let body: any;
  try {
    body = JSON.parse(res.body);
  } catch {
    assert.fail(`not JSON: ${where}`);
  }
  assert.deepEqual(Object.keys(body).sort(), ['error', 'success'], where);
  assert.equal(body.success, false, where);
  assert.equal(typeof body.error, 'object', where);
  for (const key of Object.keys(body.error)) assert.ok(['code', 'message', 'details', 'request_id'].includes(key), `error.${key}: ${where}`);
  assert.match(body.error.code, UPPER_SNAKE, where);
  assert.equal(typeof body.error.message, 'string', where);
  assert.ok(body.error.message.length > 0, where);
  assert.equal(typeof body.error.request_id, 'string', where);
  assert.ok(body.error.request_id.length > 0, where);
  return body;
}

function assertApiHeaders(res: LightMyRequestResponse, context = '') {
  assert.equal(res.headers['cache-control'], 'no-store', `cache-control ${context} ${res.statusCode}`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `nosniff ${context} ${res.statusCode}`);
  assert.equal(res.headers['x-frame-options'], 'DENY', `x-frame-options ${context} ${res.statusCode}`);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decodePayload = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));

/** The /api/v1 operations the README's API overview lists (device list and revoke-all may be documented with or without the trailing slash). */
const API_OPERATIONS: Array<[string, string]> = [
  ['post', '/api/v1/auth/signup'],
  ['post', '/api/v1/auth/login'],
  ['post', '/api/v1/auth/mfa/verify'],
  ['post', '/api/v1/auth/refresh'],
  ['post', '/api/v1/auth/logout'],
  ['get', '/api/v1/auth/me'],
  ['post', '/api/v1/auth/password/change'],
  ['post', '/api/v1/mfa/totp/setup'],
  ['post', '/api/v1/mfa/totp/verify'],
  ['get', '/api/v1/mfa/status'],
  ['post', '/api/v1/mfa/backup-codes/regenerate'],
  ['post', '/api/v1/mfa/deactivate'],
  ['post', '/api/v1/devices/activate'],
  ['post', '/api/v1/devices/skip'],
  ['get', '/api/v1/devices'],
  ['delete', '/api/v1/devices'],
  ['delete', '/api/v1/devices/{device_id}'],
  ['patch', '/api/v1/devices/{device_id}'],
  ['get', '/api/v1/devices/events'],
];

for (const kind of databaseKinds()) {
  describe(`HTTP conventions (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      // trace: the strictest setting for "never logged" checks below.
      t = await createTestApp(kind, { env: { LOG_LEVEL: 'trace' } });
    });
    after(() => t.close());

    const raw = (method: string, url: string, payload?: string | Buffer, headers: Record<string, string> = {}) =>
      t.app.inject({ method: method as 'POST', url, headers, ...(payload !== undefined ? { payload } : {}) });

    describe('request parsing (malformed or unsupported bodies are refused cleanly)', () => {
      for (const [name, payload] of [
        ['truncated object', '{"email": "a@b.co", "password": '],
        ['single quotes', "{'email': 'a@b.co'}"],
        ['trailing comma', '{"email": "a@b.co",}'],
        ['bare word', 'hello'],
        ['empty body', ''],
        ['NaN', '{"email": NaN}'],
      ] as const) {
        test(`malformed JSON (${name}) → 400 MALFORMED_REQUEST`, async () => {
          const res = await raw('POST', '/api/v1/auth/login', payload, { 'content-type': 'application/json' });
          assert.equal(res.statusCode, 400, res.body);
          assert.equal(assertErrorEnvelope(res).error.code, 'MALFORMED_REQUEST');
          assertApiHeaders(res);
        });
      }

      for (const contentType of [
        'text/plain',
        'text/plain; charset=utf-8',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=xyz',
        'application/xml',
        'application/octet-stream',
        'text/html',
        'application/jsonx',
      ]) {
        test(`a ${contentType} body → 415 UNSUPPORTED_MEDIA_TYPE`, async () => {
          const res = await raw('POST', '/api/v1/auth/login', JSON.stringify({ email: 'a@b.co', password: PASSWORD }), { 'content-type': contentType });
          assert.equal(res.statusCode, 415, res.body);
          assert.equal(assertErrorEnvelope(res).error.code, 'UNSUPPORTED_MEDIA_TYPE');
          assertApiHeaders(res);
        });
      }

      test('application/json with a charset parameter is accepted', async () => {
        const res = await raw('POST', '/api/v1/auth/login', JSON.stringify({ email: uniqueEmail(), password: PASSWORD }), {
          'content-type': 'application/json; charset=utf-8',
        });
        assert.equal(res.statusCode, 401);
        assert.equal(assertErrorEnvelope(res).error.code, 'INVALID_CREDENTIALS');
      });

      test('a body over 16 KiB → 413 PAYLOAD_TOO_LARGE; 16 KiB exactly is read', async () => {
        const big = JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(16 * 1024) });
        const res = await raw('POST', '/api/v1/auth/login', big, { 'content-type': 'application/json' });
        assert.equal(res.statusCode, 413);
        assert.equal(assertErrorEnvelope(res).error.code, 'PAYLOAD_TOO_LARGE');
        assertApiHeaders(res);

        const base = JSON.stringify({ email: 'a@b.co', password: '' });
        const exact = JSON.stringify({ email: 'a@b.co', password: '', pad: 'y'.repeat(16 * 1024 - base.length - 9) });
        assert.equal(Buffer.byteLength(exact), 16 * 1024);
        const ok = await raw('POST', '/api/v1/auth/login', exact, { 'content-type': 'application/json' });
        assert.notEqual(ok.statusCode, 413);
        assertErrorEnvelope(ok); // 422: empty password
      });

      test('a schema failure → 422 VALIDATION_ERROR whose details name every bad field', async () => {
        const res = await raw('POST', '/api/v1/auth/login', JSON.stringify({ email: { not: 'a string' }, password: '' }), { 'content-type': 'application/json' });
        assert.equal(res.statusCode, 422, res.body);
        const body = assertErrorEnvelope(res);
        assert.equal(body.error.code, 'VALIDATION_ERROR');
        assert.ok(Array.isArray(body.error.details));
        for (const d of body.error.details) {
          assert.equal(typeof d.field, 'string');
          assert.equal(typeof d.message, 'string');
        }
        assert.deepEqual([...new Set(body.error.details.map((d: any) => d.field))].sort(), ['email', 'password']);

        const missing = await call(t.app, 'POST', '/api/v1/auth/signup', {});
        assert.equal(missing.res.statusCode, 422);
        assert.deepEqual([...new Set(missing.body.error.details.map((d: any) => d.field))].sort(), ['email', 'password']);

        const notObject = await call(t.app, 'POST', '/api/v1/auth/refresh', [1, 2]);
        assert.equal(notObject.res.statusCode, 422);
        assert.equal(assertErrorEnvelope(notObject.res).error.code, 'VALIDATION_ERROR');
      });

      test('a NUL or control character in stored text is a 4xx, never a 500', async () => {
        for (const [url, body, field] of [
          ['/api/v1/auth/signup', { email: `a\u0000${uniqueEmail()}`, password: PASSWORD }, 'email'],
          ['/api/v1/auth/signup', { email: uniqueEmail(), password: PASSWORD, display_name: 'Ada\u0000' }, 'display_name'],
          ['/api/v1/auth/signup', { email: uniqueEmail(), password: PASSWORD, display_name: 'Ada\u001b[31m' }, 'display_name'],
          ['/api/v1/auth/login', { email: 'ghost\u0000@example.com', password: PASSWORD }, 'email'],
        ] as const) {
          const { res, body: answer } = await call(t.app, 'POST', url, body);
          assert.equal(res.statusCode, 422, `${url} ${field}: ${res.body}`);
          assert.equal(assertErrorEnvelope(res).error.code, 'VALIDATION_ERROR');
          assert.deepEqual(answer.error.details.map((d: any) => d.field), [field]);
        }
        // Device names (validated by the devices module): whatever the answer, never a 500.
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const verified = await loginWithMfa(t, user, laptop());
        const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, device_name: 'My\u0000Mac' }, { token: verified.access_token, device: laptop() });
        assert.ok(activate.res.statusCode < 500, activate.res.body);
        if (activate.res.statusCode >= 400) assertErrorEnvelope(activate.res);
        const rename = await call(t.app, 'PATCH', `/api/v1/devices/${verified.trusted_device.id}`, { device_name: 'My\u0000Mac' }, { token: verified.access_token });
        assert.ok(rename.res.statusCode < 500, rename.res.body);
        if (rename.res.statusCode >= 400) assertErrorEnvelope(rename.res);
      });

      test('an invalid x-device-fingerprint header → 422 INVALID_FINGERPRINT, values never echoed', async () => {
        const user = await signupAndLogin(t.app);
        for (const header of ['not json', '[1,2]', '"str"', 'null', JSON.stringify({ timezone: { nested: 'secret-value-x1' } }), JSON.stringify({ a: 'x'.repeat(5000) })]) {
          const { res } = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { headers: { 'x-device-fingerprint': header } });
          assert.equal(res.statusCode, 422, header);
          const body = assertErrorEnvelope(res);
          assert.equal(body.error.code, 'INVALID_FINGERPRINT');
          assert.ok(!res.body.includes('secret-value-x1'));
        }
      });
    });

    describe('errors and headers (README "API overview")', () => {
      for (const [method, url] of [
        ['GET', '/api/v1/nope'],
        ['POST', '/api/v1/auth/nope'],
        ['GET', '/api/v2/auth/me'],
        ['GET', '/nothing-here'],
        ['OPTIONS', '/api/v1/auth/nope'],
        // (Another method on a known path is 405 with Allow: test/http/protocol.test.ts.)
      ] as const) {
        test(`${method} ${url} → 404 NOT_FOUND envelope`, async () => {
          const res = await raw(method, url);
          assert.equal(res.statusCode, 404);
          assert.equal(assertErrorEnvelope(res).error.code, 'NOT_FOUND');
          assertApiHeaders(res);
        });
      }

      // Errors Fastify raises before routing: they reach the envelope only through its frameworkErrors option.
      test('an undecodable URL or an over-long path parameter is answered with the error envelope, not a framework body', async () => {
        for (const [method, url, status, code] of [
          ['GET', '/api/v1/%zz', 400, 'MALFORMED_REQUEST'],
          ['DELETE', '/api/v1/devices/%E0%A4%A', 400, 'MALFORMED_REQUEST'],
          ['DELETE', `/api/v1/devices/${'a'.repeat(300)}`, 404, 'NOT_FOUND'],
          ['PATCH', `/api/v1/devices/${'b'.repeat(101)}?access_token=secret-in-query`, 404, 'NOT_FOUND'],
        ] as const) {
          const res = await raw(method, url);
          assert.equal(res.statusCode, status, `${url.slice(0, 40)}: ${res.body}`);
          assert.equal(assertErrorEnvelope(res, url).error.code, code);
          assertApiHeaders(res, url.slice(0, 40));
          assert.ok(!res.body.includes('secret-in-query'));
        }
      });

      test('success responses carry no-store, nosniff and X-Frame-Options: DENY', async () => {
        const user = await signupAndLogin(t.app);
        for (const [method, url, body] of [
          ['GET', '/api/v1/auth/me', undefined],
          ['GET', '/api/v1/mfa/status', undefined],
          ['GET', '/api/v1/devices', undefined],
          ['POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken }],
        ] as const) {
          const { res } = await call(t.app, method, url, body, { token: user.accessToken });
          assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
          assertApiHeaders(res, url);
        }
        const out = await call(t.app, 'POST', '/api/v1/auth/logout', undefined, { token: user.accessToken });
        assert.equal(out.res.statusCode, 204);
        assert.equal(out.res.body, '');
        assertApiHeaders(out.res, 'logout');
      });

      test('the request id differs per request', async () => {
        const a = assertErrorEnvelope(await raw('GET', '/api/v1/nope'));
        const b = assertErrorEnvelope(await raw('GET', '/api/v1/nope'));
        assert.notEqual(a.error.request_id, b.error.request_id);
      });

      test('a client-supplied request id is not echoed into the envelope', async () => {
        const res = await raw('GET', '/api/v1/nope', undefined, { 'request-id': 'attacker-chosen', 'x-request-id': 'attacker-chosen' });
        assert.notEqual(assertErrorEnvelope(res).error.request_id, 'attacker-chosen');
      });

      test('a 500 is the INTERNAL_ERROR envelope and leaks nothing; a storage outage is 503', async () => {
        for (const [error, status, code] of [
          [new Error('boom at /srv/secret/path.ts: SELECT password_hash FROM users'), 500, 'INTERNAL_ERROR'],
          [Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' }), 503, 'SERVICE_UNAVAILABLE'],
        ] as const) {
          const faulty = await createTestApp(kind, {
            deps: {
              wrapDevicesRepository: (repository: DevicesRepository) => ({
                ...repository,
                listActive: async () => {
                  throw error;
                },
              }),
            },
          });
          try {
            const user = await signupAndLogin(faulty.app);
            const { res } = await call(faulty.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken });
            assert.equal(res.statusCode, status);
            const body = assertErrorEnvelope(res);
            assert.equal(body.error.code, code);
            assert.equal(body.error.details, undefined);
            for (const leak of ['boom', '/srv', 'password_hash', 'SELECT', 'ECONNREFUSED', '10.0.0.5', 'stack']) {
              assert.ok(!res.body.includes(leak), `${leak} leaked`);
            }
            assertApiHeaders(res);
          } finally {
            await faulty.close();
          }
        }
      });

      test('429 RATE_LIMITED uses the envelope and sends Retry-After', async () => {
        const limited = await createTestApp(kind, { env: { RATE_LIMITS: 'on' } });
        try {
          const statuses: number[] = [];
          let last: LightMyRequestResponse | undefined;
          for (let i = 0; i < 4; i++) {
            last = (await call(limited.app, 'POST', '/api/v1/auth/signup', { email: uniqueEmail(), password: PASSWORD })).res;
            statuses.push(last.statusCode);
          }
          assert.deepEqual(statuses, [201, 201, 201, 429]);
          assert.equal(assertErrorEnvelope(last!).error.code, 'RATE_LIMITED');
          assert.ok(Number(last!.headers['retry-after']) > 0);
          assertApiHeaders(last!);
        } finally {
          await limited.close();
        }
      });

      test('HSTS only when cookies are secure; CORS only for CORS_ORIGINS', async () => {
        const plain = await raw('GET', '/healthz');
        assert.equal(plain.headers['strict-transport-security'], undefined);
        assert.equal((await raw('GET', '/api/v1/nope', undefined, { origin: 'https://evil.example' })).headers['access-control-allow-origin'], undefined);

        const secure = await createTestApp(kind, { env: { COOKIE_SECURE: 'true', CORS_ORIGINS: 'https://app.example.com' } });
        try {
          const res = await secure.app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://app.example.com' } });
          assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
          assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
          const evil = await secure.app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://evil.example' } });
          assert.notEqual(evil.headers['access-control-allow-origin'], 'https://evil.example');
          assert.notEqual(evil.headers['access-control-allow-origin'], '*');
        } finally {
          await secure.close();
        }
      });
    });

    describe('bearer tokens (only a valid access token in the Authorization header authenticates)', () => {
      const me = (token: string) => call(t.app, 'GET', '/api/v1/auth/me', undefined, { token });

      function assertUnauthorized(res: LightMyRequestResponse, why: string) {
        assert.equal(res.statusCode, 401, `${why}: ${res.body}`);
        assert.equal(assertErrorEnvelope(res, why).error.code, 'UNAUTHORIZED', why);
        assert.equal(res.headers['www-authenticate'], 'Bearer', why);
        assertApiHeaders(res, why);
      }

      test('no Authorization → 401 UNAUTHORIZED with WWW-Authenticate, and no side effect', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const device = laptop();
        const { deviceToken } = await trustDevice(t, user, device);
        const verified = await loginWithMfa(t, user, laptop({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0' }));
        const pending = verified.trusted_device.activation_token;

        for (const [method, url, body] of [
          ['GET', '/api/v1/auth/me', undefined],
          ['POST', '/api/v1/auth/logout', { refresh_token: user.refreshToken }],
          ['POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Another-Pass-3' }],
          ['POST', '/api/v1/mfa/deactivate', { password: PASSWORD }],
          ['POST', '/api/v1/mfa/totp/setup', {}],
          ['GET', '/api/v1/mfa/status', undefined],
          ['GET', '/api/v1/devices', undefined],
          ['DELETE', '/api/v1/devices', undefined],
          ['POST', '/api/v1/devices/activate', { activation_token: pending }],
          ['POST', '/api/v1/devices/skip', { activation_token: pending }],
          ['GET', '/api/v1/devices/events', undefined],
        ] as const) {
          const { res } = await call(t.app, method, url, body, { device: laptop({ deviceToken }) });
          assertUnauthorized(res, `${method} ${url}`);
        }
        for (const header of ['', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `Token ${user.accessToken}`, `Bearer ${user.accessToken} extra`]) {
          const res = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: header } });
          assertUnauthorized(res, `Authorization: ${header.slice(0, 20)}`);
        }
        // Nothing happened: the session, the password, MFA and the trusted device are intact.
        assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken })).res.statusCode, 200);
        const login = await loginStep(t, user, laptop({ deviceToken }));
        assert.equal(login.body.data.mfa_bypassed, true, 'the trusted device still bypasses MFA');
        const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: pending }, {
          token: verified.access_token,
          device: laptop({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0' }),
        });
        assert.equal(activate.res.statusCode, 200, 'the activation token was not consumed');
      });

      test('crafted JWTs: only a correctly signed, current, well-typed access token passes', async () => {
        const user = await signupAndLogin(t.app);
        const other = await signupAndLogin(t.app);
        const valid = decodePayload(user.accessToken);
        // The app signs with ES256 (the default) under the kid of its key.
        const signingKey = t.keys.jwtSigningKey!;
        const kid = signingKey.kid;
        const now = Math.floor(t.clock.now() / 1000);
        const sign = (
          claims: Record<string, unknown>,
          header: Record<string, unknown> = { alg: 'ES256', typ: 'at+jwt', kid },
          secret: KeyObject | Uint8Array = signingKey.privateKey,
        ) => new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(secret);
        const publicPem = new TextEncoder().encode(signingKey.publicKey.export({ format: 'pem', type: 'spki' }).toString());
        const publicDer = new Uint8Array(signingKey.publicKey.export({ format: 'der', type: 'spki' }));
        const otherEs256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
        const ed25519 = generateKeyPairSync('ed25519').privateKey;
        const without = (name: string) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== name));

        // The harness itself is right: the same claims re-signed with the real key pass.
        const resigned = await me(await sign({ ...valid, jti: randomUUID() }));
        assert.equal(resigned.res.statusCode, 200, resigned.res.body);
        assert.equal(resigned.body.data.user_id, user.userId);
        assert.equal((await me(user.accessToken)).res.statusCode, 200);

        const [h, p, s] = user.accessToken.split('.') as [string, string, string];
        const attacks: Array<[string, string]> = [
          ['alg none, no signature', `${b64url({ alg: 'none', typ: 'at+jwt' })}.${p}.`],
          ['alg none, old signature', `${b64url({ alg: 'none', typ: 'at+jwt' })}.${p}.${s}`],
          ['alg NONE', `${b64url({ alg: 'NONE', typ: 'at+jwt' })}.${p}.`],
          ['payload changed (other sub), old signature', `${h}.${b64url({ ...valid, sub: other.userId })}.${s}`],
          ['payload changed (later exp), old signature', `${h}.${b64url({ ...valid, exp: now + 86_400 })}.${s}`],
          ['signature stripped', `${h}.${p}.`],
          ['two segments', `${h}.${p}`],
          ['garbage', 'not.a.jwt'],
          ['alg none under our kid', `${b64url({ alg: 'none', typ: 'at+jwt', kid })}.${p}.`],
          ['signed with another ES256 key under our kid', await sign(valid, undefined, otherEs256)],
          ['EdDSA under our kid', await sign(valid, { alg: 'EdDSA', typ: 'at+jwt', kid }, ed25519)],
          ['HS256 keyed with the public key PEM, our kid', await sign(valid, { alg: 'HS256', typ: 'at+jwt', kid }, publicPem)],
          ['HS256 keyed with the public key PEM, no kid', await sign(valid, { alg: 'HS256', typ: 'at+jwt' }, publicPem)],
          ['HS256 keyed with the public key DER, our kid', await sign(valid, { alg: 'HS256', typ: 'at+jwt', kid }, publicDer)],
          ['HS256 keyed with the JWT_SECRET of this app', await sign(valid, { alg: 'HS256', typ: 'at+jwt' }, new Uint8Array(t.keys.jwtSecret!))],
          ['HS256 keyed with random bytes', await sign(valid, { alg: 'HS256', typ: 'at+jwt', kid }, new Uint8Array(randomBytes(32)))],
          ['the right key, no kid', await sign(valid, { alg: 'ES256', typ: 'at+jwt' })],
          ['the right key, unknown kid', await sign(valid, { alg: 'ES256', typ: 'at+jwt', kid: 'not-a-key' })],
          ['the right key, kid of another type', await sign(valid, { alg: 'ES256', typ: 'at+jwt', kid: 7 })],
          ['expired', await sign({ ...valid, iat: now - 1000, nbf: now - 1000, exp: now - 1 })],
          ['expires right now', await sign({ ...valid, exp: now })],
          ['not yet valid (nbf in the future)', await sign({ ...valid, nbf: now + 3600, exp: now + 7200 })],
          ['wrong iss', await sign({ ...valid, iss: 'someone-else' })],
          ['wrong aud', await sign({ ...valid, aud: 'another-api' })],
          ['aud list without ours', await sign({ ...valid, aud: ['another-api'] })],
          ['no iss', await sign(without('iss'))],
          ['no aud', await sign(without('aud'))],
          ['no exp', await sign(without('exp'))],
          ['no nbf', await sign(without('nbf'))],
          ['no sub', await sign(without('sub'))],
          ['no jti', await sign(without('jti'))],
          ['no sid', await sign(without('sid'))],
          ['no typ claim', await sign(without('typ'))],
          ['typ refresh', await sign({ ...valid, typ: 'refresh' })],
          ['typ activation', await sign({ ...valid, typ: 'activation' })],
          ['header typ JWT', await sign(valid, { alg: 'ES256', typ: 'JWT', kid })],
          ['header without typ', await sign(valid, { alg: 'ES256', kid })],
          ['sub of another type', await sign({ ...valid, sub: 12345 })],
        ];
        for (const [why, token] of attacks) assertUnauthorized((await me(token)).res, why);
        // The legitimate token still works after all that.
        assert.equal((await me(user.accessToken)).res.statusCode, 200);
      });

      test('other kinds of token used as the Bearer token → 401', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const device = laptop();
        const challenge = await loginStep(t, user, device);
        const temporary = challenge.body.data.temporary_token as string;
        const verified = await loginWithMfa(t, user, device);
        const activation = verified.trusted_device.activation_token as string;
        const { deviceToken } = await trustDevice(t, user, device);
        for (const [why, token] of [
          ['refresh', verified.refresh_token],
          ['temporary', temporary],
          ['activation', activation],
          ['device', deviceToken],
          ['TOTP secret', user.totpSecret!],
        ] as const) {
          assertUnauthorized((await me(token)).res, why);
          assertUnauthorized((await call(t.app, 'GET', '/api/v1/devices', undefined, { token })).res, why);
        }
        // The access token as an activation token → 404, like an unknown token.
        const asActivation = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.access_token }, { token: verified.access_token, device });
        assert.equal(asActivation.res.statusCode, 404);
        assert.equal(assertErrorEnvelope(asActivation.res).error.code, 'ACTIVATION_TOKEN_NOT_FOUND');
        const stillPending = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: activation }, { token: verified.access_token, device });
        assert.equal(stillPending.res.statusCode, 200, 'the real activation token was not touched');
      });

      test('a token in the query string is not accepted and never logged', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const device = laptop();
        const { deviceToken } = await trustDevice(t, user, device);
        for (const name of ['access_token', 'token', 'authorization', 'bearer']) {
          const res = await raw('GET', `/api/v1/auth/me?${name}=${encodeURIComponent(user.accessToken)}`);
          assertUnauthorized(res, `?${name}=`);
          assert.ok(!res.body.includes(user.accessToken));
        }
        // A device token in the query string does not bypass MFA.
        const login = await t.app.inject({
          method: 'POST',
          url: `/api/v1/auth/login?device_token=${deviceToken}&x-device-token=${deviceToken}&td_device=${deviceToken}`,
          headers: { 'content-type': 'application/json', 'user-agent': device.userAgent, 'x-device-fingerprint': JSON.stringify(SIGNALS) },
          remoteAddress: device.ip,
          payload: JSON.stringify({ email: user.email, password: PASSWORD }),
        });
        assert.equal(login.statusCode, 200);
        assert.equal(JSON.parse(login.body).data.mfa_required, true);
        // An unknown route with a token in its query: the 404 message shows the path only.
        const notFound = await raw('GET', `/api/v1/nope?access_token=${user.accessToken}`);
        assert.ok(!notFound.body.includes(user.accessToken));

        const logs = t.logs.text;
        assert.ok(logs.length > 0, 'logs were captured');
        assert.ok(!logs.includes(user.accessToken), 'access token in the logs');
        assert.ok(!logs.includes(deviceToken), 'device token in the logs');
        assert.ok(!logs.includes(encodeURIComponent(user.accessToken)));
      });
    });

    describe('unknown body fields (refused, never ignored)', () => {
      /** 422 VALIDATION_ERROR whose details name exactly these unknown fields. */
      const assertUnknown = (res: { statusCode: number; body: string }, fields: string[]) => {
        assert.equal(res.statusCode, 422, res.body);
        const error = JSON.parse(res.body).error;
        assert.equal(error.code, 'VALIDATION_ERROR');
        assert.deepEqual(error.details.map((d: { field: string }) => d.field).sort(), [...fields].sort(), res.body);
        for (const detail of error.details) assert.equal(detail.message, 'is not a known field');
      };

      test('signup: a misspelt displayName is 422 naming it, and no account is created', async () => {
        const email = uniqueEmail();
        const res = await raw('POST', '/api/v1/auth/signup', JSON.stringify({ email, password: PASSWORD, displayName: 'Ann' }), { 'content-type': 'application/json' });
        assertUnknown(res, ['displayName']);
        assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD })).res.statusCode, 401, 'no account was created');
        const fixed = await raw('POST', '/api/v1/auth/signup', JSON.stringify({ email, password: PASSWORD, display_name: 'Ann' }), { 'content-type': 'application/json' });
        assert.equal(fixed.statusCode, 201, fixed.body);
        assert.equal(JSON.parse(fixed.body).data.display_name, 'Ann');
      });

      test('signup: user_id, is_active, expires_at, created_at and mfa_enabled are each named; __proto__ and constructor pollute nothing', async () => {
        const email = uniqueEmail();
        const chosenId = randomUUID();
        const body = `{"email":"${email}","password":"${PASSWORD}","user_id":"${chosenId}","id":"${chosenId}","is_active":false,"expires_at":"2100-01-01T00:00:00.000Z","created_at":"1999-01-01T00:00:00.000Z","mfa_enabled":true,"__proto__":{"polluted":"yes","admin":true},"constructor":{"prototype":{"polluted":"yes"}}}`;
        const res = await raw('POST', '/api/v1/auth/signup', body, { 'content-type': 'application/json' });
        // __proto__ and constructor.prototype are removed by the JSON parser (onProtoPoisoning/onConstructorPoisoning: 'remove') before validation; the rest are named.
        assertUnknown(res, ['user_id', 'id', 'is_active', 'expires_at', 'created_at', 'mfa_enabled']);
        assert.equal(({} as any).polluted, undefined, 'Object.prototype polluted');
        assert.equal(({} as any).admin, undefined, 'Object.prototype polluted');
        assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD })).res.statusCode, 401, 'no account was created');
      });

      test('login and mfa/verify: a user_id naming another user is refused, not ignored', async () => {
        const victim = await signupAndLogin(t.app);
        const attacker = await signupAndLogin(t.app);
        const login = await raw('POST', '/api/v1/auth/login', JSON.stringify({ email: attacker.email, password: PASSWORD, user_id: victim.userId, sub: victim.userId }), { 'content-type': 'application/json' });
        assertUnknown(login, ['user_id', 'sub']);

        await enableMfa(t, attacker);
        const device = laptop();
        const challenge = await loginStep(t, attacker, device);
        const fields = { temporary_token: challenge.body.data.temporary_token, code: totpCode(attacker.totpSecret!, t.clock.now()) };
        const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { ...fields, user_id: victim.userId, is_active: true, expires_at: '2100-01-01T00:00:00.000Z' }, { device });
        assertUnknown({ statusCode: verify.res.statusCode, body: verify.res.body }, ['user_id', 'is_active', 'expires_at']);
        // Refused before anything was used: the same temporary token and code still work.
        const ok = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', fields, { device });
        assert.equal(ok.res.statusCode, 200, ok.res.body);
        assert.equal(ok.body.data.user_id, attacker.userId);
      });

      test('activate and rename: trust fields are refused and the device is unchanged', async () => {
        const owner = await signupAndLogin(t.app);
        await enableMfa(t, owner);
        const device = laptop();
        const verified = await loginWithMfa(t, owner, device);
        const extra = { user_id: randomUUID(), expires_at: '2100-01-01T00:00:00.000Z', trusted_at: '1999-01-01T00:00:00.000Z', is_active: false, status: 'revoked', id: randomUUID() };
        const refused = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, ...extra }, { token: verified.access_token, device });
        assertUnknown({ statusCode: refused.res.statusCode, body: refused.res.body }, Object.keys(extra));
        // The activation token was not consumed by the refused request.
        const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token }, { token: verified.access_token, device });
        assert.equal(activate.res.statusCode, 200, activate.res.body);
        const dev = activate.body.data.device;

        const rename = await call(t.app, 'PATCH', `/api/v1/devices/${dev.id}`, { device_name: 'Work laptop', is_active: false }, { token: verified.access_token });
        assertUnknown({ statusCode: rename.res.statusCode, body: rename.res.body }, ['is_active']);
        const list = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: verified.access_token });
        assert.equal(list.body.data.devices[0].device_name, dev.device_name, 'not renamed');
        assert.equal(list.body.data.devices[0].is_active, true);
      });

      test('password change: a user_id naming another user is refused and no password changes', async () => {
        const victim = await signupAndLogin(t.app);
        const attacker = await signupAndLogin(t.app);
        const change = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Taken-Over-7', user_id: victim.userId }, { token: attacker.accessToken });
        assertUnknown({ statusCode: change.res.statusCode, body: change.res.body }, ['user_id']);
        assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: victim.email, password: PASSWORD })).res.statusCode, 200);
        assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: attacker.email, password: PASSWORD })).res.statusCode, 200);
      });

      test('a query string is not a body: an unknown parameter (a link\'s utm_source) is dropped, not refused', async () => {
        const user = await signupAndLogin(t.app);
        const events = await call(t.app, 'GET', '/api/v1/devices/events?limit=5&utm_source=mail', undefined, { token: user.accessToken });
        assert.equal(events.res.statusCode, 200, events.res.body);
      });
    });

    describe('operations and documentation', () => {
      test('/healthz and /readyz answer 200', async () => {
        const health = await call(t.app, 'GET', '/healthz');
        assert.equal(health.res.statusCode, 200);
        assert.deepEqual(health.body.data, { status: 'ok' });
        const ready = await call(t.app, 'GET', '/readyz');
        assert.equal(ready.res.statusCode, 200);
        assert.deepEqual(ready.body.data, { status: 'ready' });
      });

      test('/metrics is Prometheus text with the request-duration histogram', async () => {
        await call(t.app, 'GET', '/healthz');
        const res = await raw('GET', '/metrics');
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/plain/);
        assert.match(res.body, /# TYPE http_request_duration_seconds histogram/);
        assert.match(res.body, /http_request_duration_seconds_bucket\{[^}]*route="\/healthz"[^}]*\} \d+/);
        assert.match(res.body, /http_request_duration_seconds_count\{[^}]*status_code="200"[^}]*\} \d+/);
      });

      test('/openapi.json is OpenAPI 3 with every documented /api/v1 operation and a response schema per status', async () => {
        const { res, body: doc } = await call(t.app, 'GET', '/openapi.json');
        assert.equal(res.statusCode, 200);
        assert.match(doc.openapi, /^3\./);
        assert.equal(typeof doc.info.title, 'string');
        const resolve = (schema: any): any => {
          if (schema?.$ref) {
            const name = String(schema.$ref).split('/').pop()!;
            const found = doc.components?.schemas?.[name];
            assert.ok(found, `unresolved ${schema.$ref}`);
            return found;
          }
          return schema;
        };
        for (const [method, path] of API_OPERATIONS) {
          const item = doc.paths[path] ?? doc.paths[`${path}/`];
          const op = item?.[method];
          assert.ok(op, `${method.toUpperCase()} ${path} is not documented`);
          assert.ok(Object.keys(op.responses).length >= 2, `${method} ${path}: success and error responses`);
          for (const [status, response] of Object.entries<any>(op.responses)) {
            if (status === '204') continue;
            const schema = response.content?.['application/json']?.schema;
            assert.ok(schema, `${method.toUpperCase()} ${path} ${status} has no response schema`);
            if (/^[45]/.test(status)) {
              // The ErrorEnvelope, narrowed to the codes of this status (allOf).
              const envelope = resolve(schema.allOf?.[0] ?? schema);
              assert.deepEqual([...envelope.required].sort(), ['error', 'success'], `${path} ${status} is the error envelope`);
            }
          }
          assert.ok(Object.keys(op.responses).some((s) => /^2/.test(s)), `${path} documents its success`);
          assert.ok(Object.keys(op.responses).some((s) => /^4/.test(s)), `${path} documents its errors`);
        }
        // The request schema is the one that validates: login documents its required fields.
        const login = doc.paths['/api/v1/auth/login'].post.requestBody.content['application/json'].schema;
        assert.deepEqual([...login.required].sort(), ['email', 'password']);
        assert.ok(doc.components.securitySchemes.bearerAuth);
        assert.ok(doc.paths['/api/v1/auth/me'].get.security);
      });

      test('/docs serves the Swagger UI', async () => {
        let res = await raw('GET', '/docs');
        if (res.statusCode >= 300 && res.statusCode < 400) res = await raw('GET', String(res.headers.location));
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/html/);
        assert.match(res.body, /swagger-ui/i);
      });
    });

    describe('fuzzing (no input makes the service answer 500)', () => {
      let routes: Array<{ method: string; path: string; fields: string[] }> = [];
      let accessToken = '';
      let refreshToken = '';
      let deviceToken = '';
    
      before(async () => {
        const doc = (await call(t.app, 'GET', '/openapi.json')).body;
        routes = Object.entries<any>(doc.paths).flatMap(([path, item]) =>
          Object.entries<any>(item).map(([method, op]) => ({
            method: method.toUpperCase(),
            path,
            fields: Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {}),
          })),
        );
        assert.ok(routes.length >= 20, `routes from the OpenAPI document: ${routes.length}`);
        const user = await signupAndLogin(t.app, laptop());
        await enableMfa(t, user);
        const trusted = await trustDevice(t, user, laptop());
        accessToken = trusted.accessToken;
        deviceToken = trusted.deviceToken;
        refreshToken = user.refreshToken;
      });

      // Printable ASCII only: a header value with control characters cannot be sent at all.
      const headerText = fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCXYZabcxyz[\\]^_`{|}~'.split('')), maxLength: 60 });
      // Well-formed percent-encoding of at most 100 characters (Fastify's maxParamLength): undecodable
      // and over-long paths are answered before routing and have their own test above.
      const segment = fc.oneof(
        fc.constant('00000000-0000-4000-8000-000000000000'),
        fc.uuid(),
        fc.string({ maxLength: 80 }).map((s) => (encodeURIComponent(s) || 'x').slice(0, 100).replace(/%[0-9A-F]?$/, '')),
        fc.constantFrom('..', '%2e%2e', 'null', 'undefined', '__proto__', 'constructor', "' or 1=1 --", '0', '-1', 'a'.repeat(100)).map(encodeURIComponent),
      );
      const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }));
      const value = fc.oneof(jsonish, fc.string(), fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ minLength: 200, maxLength: 2000 }), fc.constantFrom('tdm_x', 'tda_x', `tdr_${'A'.repeat(43)}`, `tda_${'A'.repeat(43)}`, '123456', 'aaaaa-bbbbb', '', PASSWORD, 'nul\u0000byte', '\u0000', 'x\u001by'));

      const request = (withFields: boolean) =>
        fc.record({
          route: fc.constantFrom(...routes),
          method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'), { freq: 3 }),
          param: segment,
          query: fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 })),
          body: withFields
            ? fc.option(fc.oneof(jsonish, fc.string({ maxLength: 200 }), fc.constantFrom('{', '[', 'null', '{"a":}', '"\\ud800"', '[]'.repeat(500), '['.repeat(3000) + ']'.repeat(3000))), { nil: undefined })
            : fc.constant(undefined),
          fieldValues: fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 4 }),
          useFields: fc.boolean(),
          contentType: fc.option(
            fc.oneof(
              fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/xml', 'application/json; charset=latin1', '*/*', ';', 'application/', 'application/json, text/plain'),
              headerText,
            ),
            { freq: 4 },
          ),
          auth: fc.constantFrom('none', 'valid', 'garbage', 'refresh', 'device', 'basic'),
          fingerprint: fc.option(fc.oneof(jsonish.map((v) => JSON.stringify(v)), headerText, fc.dictionary(fc.string({ maxLength: 12 }), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.double())).map((v) => JSON.stringify(v)))),
          userAgent: fc.option(fc.oneof(headerText, fc.constantFrom(laptop().userAgent, ''))),
          deviceTokenHeader: fc.option(fc.oneof(fc.constant('device'), headerText)),
          cookie: fc.option(fc.oneof(headerText, fc.constant('td_device=tdd_garbage'))),
          extraHeaders: fc.dictionary(fc.constantFrom('accept', 'x-forwarded-for', 'accept-encoding', 'origin', 'x-http-method-override', 'content-encoding'), headerText, { maxKeys: 3 }),
        });

      async function send(r: any): Promise<LightMyRequestResponse> {
        const method: string = r.method ?? r.route.method;
        let url: string = r.route.path.replace('{device_id}', r.param);
        if (r.query) url += `?${new URLSearchParams(r.query).toString()}`;
        const headers: Record<string, string> = { ...r.extraHeaders };
        if (r.contentType !== null) headers['content-type'] = r.contentType;
        if (r.auth === 'valid') headers.authorization = `Bearer ${accessToken}`;
        if (r.auth === 'garbage') headers.authorization = 'Bearer eyJhbGciOiJub25lIn0.e30.';
        if (r.auth === 'refresh') headers.authorization = `Bearer ${refreshToken}`;
        if (r.auth === 'device') headers.authorization = `Bearer ${deviceToken}`;
        if (r.auth === 'basic') headers.authorization = 'Basic Zm9vOmJhcg==';
        if (r.fingerprint !== null) headers['x-device-fingerprint'] = r.fingerprint;
        if (r.userAgent !== null) headers['user-agent'] = r.userAgent;
        if (r.deviceTokenHeader !== null) headers['x-device-token'] = r.deviceTokenHeader === 'device' ? deviceToken : r.deviceTokenHeader;
        if (r.cookie !== null) headers.cookie = r.cookie;
        let payload: string | undefined;
        if (r.useFields && r.route.fields.length > 0) {
          const object: Record<string, unknown> = { ...r.fieldValues };
          r.route.fields.forEach((field: string, i: number) => {
            const values = Object.values(r.fieldValues);
            if (values.length > 0) object[field] = values[i % values.length];
          });
          payload = JSON.stringify(object);
        } else if (r.body !== undefined) {
          payload = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
        }
        return t.app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}), remoteAddress: '198.51.100.7' });
      }

      function check(r: any, res: LightMyRequestResponse) {
        const where = `${r.method ?? r.route.method} ${r.route.path}`;
        assert.ok(res.statusCode < 500, `${where} → ${res.statusCode} ${res.body.slice(0, 300)}`);
        const method = r.method ?? r.route.method;
        if (res.statusCode >= 400 && method !== 'HEAD') assertErrorEnvelope(res, where);
        if (r.route.path.startsWith('/api/v1')) assert.equal(res.headers['cache-control'], 'no-store', where);
      }

      test('random requests to every route: never 5xx, every error is the envelope', async () => {
        const started = Date.now();
        await fc.assert(
          fc.asyncProperty(request(true), async (r) => check(r, await send(r))),
          { numRuns: kind.name === 'sqlite' ? 2500 : 1500, endOnFailure: true },
        );
        // Budget ~30 s for the whole fuzz; the margin absorbs a loaded machine (the runner runs two files at once).
        assert.ok(Date.now() - started < 45_000, `the fuzz run took ${Date.now() - started} ms`);
      });

      test('valid tokens, random JSON values and headers on the authenticated routes', async () => {
        await fc.assert(
          fc.asyncProperty(
            request(true).map((r) => ({ ...r, auth: 'valid', contentType: 'application/json', method: null })),
            async (r) => check(r, await send(r)),
          ),
          { numRuns: 1000, endOnFailure: true },
        );
      });
    });
  });
}
