/**
 * Verifiable access tokens (docs/integration.md): the JWK set, jose as
 * a relying service would use it, key rotation through JWT_SIGNING_KEY /
 * JWT_PREVIOUS_KEYS, and every way a token with the wrong key, kid or alg is
 * refused. The crafted-token attacks against the current key are in
 * test/http/conventions.test.ts ("crafted JWTs"); here the same attacks are
 * aimed at the keys rotation adds.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { generateSigningKeyPem, parseSigningKey } from '../../src/platform/crypto/signing-keys.ts';
import { call, createTestApp, databaseKinds, signupAndLogin, type TestApp } from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';

const ISSUER = 'trusted-devices';
const AUDIENCE = 'trusted-devices-api';

const me = (t: TestApp, token: string) => call(t.app, 'GET', '/api/v1/auth/me', undefined, { token });
const jwks = async (t: TestApp) => {
  const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  assert.equal(res.statusCode, 200);
  return { res, body: res.json() as { keys: Array<Record<string, string>> } };
};
const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));

for (const kind of databaseKinds()) {
  describe(`JWKS and key rotation (${kind.name})`, () => {
    // One database shared by the "instances" of one deployment before and after a rotation.
    let db: TestDatabase;
    const oldPem = generateSigningKeyPem('ES256');
    const newPem = generateSigningKeyPem('ES256');
    const oldKey = parseSigningKey(oldPem);
    const newKey = parseSigningKey(newPem);
    const apps: TestApp[] = [];
    const start = async (env: Record<string, string>) => {
      const t = await createTestApp(kind, { db, env });
      apps.push(t);
      return t;
    };
    before(async () => {
      db = await kind.create();
    });
    after(async () => {
      for (const t of apps) await t.close();
      await db.drop();
    });

    test('the JWK set publishes the signing key, cacheable, public half only; jose verifies tokens with it', async () => {
      const t = await start({ JWT_SIGNING_KEY: oldPem });
      const user = await signupAndLogin(t.app);
      const header = decodeProtectedHeader(user.accessToken);
      assert.deepEqual(header, { alg: 'ES256', typ: 'at+jwt', kid: oldKey.kid });

      const { res, body } = await jwks(t);
      assert.equal(res.headers['cache-control'], 'public, max-age=300');
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', 'the security headers are still there');
      assert.equal(body.keys.length, 1);
      const [jwk] = body.keys;
      assert.deepEqual(Object.keys(jwk!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      assert.deepEqual({ kty: jwk!.kty, crv: jwk!.crv, alg: jwk!.alg, use: jwk!.use, kid: jwk!.kid }, { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: oldKey.kid });
      assert.ok(!('d' in jwk!), 'no private key material');
      assert.ok(!res.body.includes(JSON.stringify(oldKey.privateKey.export({ format: 'jwk' }).d)));

      const { payload, protectedHeader } = await jwtVerify(user.accessToken, createLocalJWKSet(body as never), {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['ES256'],
        typ: 'at+jwt',
        currentDate: new Date(t.clock.now()),
      });
      assert.equal(payload.sub, user.userId);
      assert.equal(protectedHeader.kid, oldKey.kid);
      // Another audience is refused by the relying service (jose), as it should be.
      await assert.rejects(
        jwtVerify(user.accessToken, createLocalJWKSet(body as never), { audience: 'another-service', currentDate: new Date(t.clock.now()) }),
        /aud/,
      );
    });

    test('revalidation: ETag and Last-Modified, 304 on If-None-Match or If-Modified-Since, and the same tag on another instance with the same keys', async () => {
      const t = await start({ JWT_SIGNING_KEY: oldPem });
      const { res } = await jwks(t);
      const etag = String(res.headers.etag);
      const lastModified = String(res.headers['last-modified']);
      assert.match(etag, /^"[A-Za-z0-9_-]{43}"$/, 'a strong tag');
      assert.equal(new Date(lastModified).toUTCString(), lastModified, 'an HTTP date');
      assert.ok(Date.parse(lastModified) <= t.clock.now());
      const get = (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers });

      for (const headers of <Array<Record<string, string>>>[{ 'if-none-match': etag }, { 'if-none-match': `"other", W/${etag}` }, { 'if-none-match': '*' }, { 'if-modified-since': lastModified }, { 'if-modified-since': new Date(t.clock.now() + 60_000).toUTCString() }]) {
        const again = await get(headers);
        assert.equal(again.statusCode, 304, JSON.stringify(headers));
        assert.equal(again.body, '');
        assert.equal(again.headers.etag, etag);
        assert.equal(again.headers['cache-control'], 'public, max-age=300');
        assert.equal(again.headers['access-control-allow-origin'], '*');
      }
      for (const headers of <Array<Record<string, string>>>[
        { 'if-none-match': '"something-else"' },
        { 'if-modified-since': new Date(Date.parse(lastModified) - 1000).toUTCString() },
        { 'if-modified-since': 'not a date' },
        // If-None-Match wins: a stale tag with a recent date is a full answer.
        { 'if-none-match': '"stale"', 'if-modified-since': lastModified },
      ]) {
        const full = await get(headers);
        assert.equal(full.statusCode, 200, JSON.stringify(headers));
        assert.deepEqual(full.json(), res.json());
      }

      // Another instance with the same keys: the same tag (a relying service behind a load balancer revalidates anywhere).
      const twin = await start({ JWT_SIGNING_KEY: oldPem });
      assert.equal((await twin.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } })).statusCode, 304);
      // Other keys: another tag, and the old tag no longer matches.
      const rotated = await start({ JWT_SIGNING_KEY: newPem });
      const other = await rotated.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } });
      assert.equal(other.statusCode, 200);
      assert.notEqual(other.headers.etag, etag);
    });

    test('CORS: the JWK set answers any origin with "*" and no credentials; the API keeps CORS_ORIGINS', async () => {
      const t = await start({ JWT_SIGNING_KEY: oldPem, CORS_ORIGINS: 'https://app.example.com' });
      for (const origin of ['https://elsewhere.example', 'https://app.example.com']) {
        const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { origin } });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['access-control-allow-origin'], '*', origin);
        assert.equal(res.headers['access-control-allow-credentials'], undefined, 'never "*" with credentials');
      }
      const api = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { origin: 'https://elsewhere.example' } });
      assert.notEqual(api.headers['access-control-allow-origin'], '*');
      assert.equal(api.headers['access-control-allow-origin'], undefined, 'a stranger origin gets nothing from the API');
      const health = await t.app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://elsewhere.example' } });
      assert.equal(health.headers['access-control-allow-origin'], undefined, 'only the JWK set is open to every origin');
    });

    test('createRemoteJWKSet against the live /.well-known/jwks.json verifies a token (EdDSA here: both algorithms work)', async () => {
      const t = await start({ JWT_ALGORITHM: 'EdDSA' });
      const user = await signupAndLogin(t.app);
      assert.equal(decodeProtectedHeader(user.accessToken).alg, 'EdDSA');
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = t.app.server.address() as AddressInfo;
      const remote = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`));
      const { payload } = await jwtVerify(user.accessToken, remote, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA'], currentDate: new Date(t.clock.now()) });
      assert.equal(payload.sub, user.userId);
      assert.equal(payload.sid !== undefined, true);
      // A token signed by a key the set does not hold is refused by jose too.
      const stranger = parseSigningKey(generateSigningKeyPem('EdDSA'));
      const forged = await new SignJWT(payloadOf(user.accessToken)).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: stranger.kid }).sign(stranger.privateKey);
      await assert.rejects(jwtVerify(forged, remote, { currentDate: new Date(t.clock.now()) }), /no applicable key|JWKSNoMatchingKey/i);
    });

    test('rotation: the previous key still works while in JWT_PREVIOUS_KEYS, and stops when removed; refresh tokens survive every step', async () => {
      // Step 0: the old key signs.
      const before = await start({ JWT_SIGNING_KEY: oldPem });
      const user = await signupAndLogin(before.app);
      const oldToken = user.accessToken;
      assert.equal(decodeProtectedHeader(oldToken).kid, oldKey.kid);

      // Step 1: the new key signs, the old one is previous (given here as its public PEM).
      const oldPublic = createPublicKey(oldPem).export({ format: 'pem', type: 'spki' }).toString();
      const during = await start({ JWT_SIGNING_KEY: newPem, JWT_PREVIOUS_KEYS: oldPublic });
      const stillValid = await me(during, oldToken);
      assert.equal(stillValid.res.statusCode, 200, stillValid.res.body);
      assert.equal(stillValid.body.data.user_id, user.userId);
      const { body } = await jwks(during);
      assert.deepEqual(body.keys.map((k) => k.kid), [newKey.kid, oldKey.kid], 'current first, then previous');
      const refreshed = await call(during.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(refreshed.res.statusCode, 200, 'nobody is logged out by the rotation');
      const newToken = refreshed.body.data.access_token as string;
      assert.equal(decodeProtectedHeader(newToken).kid, newKey.kid);
      for (const token of [oldToken, newToken]) {
        await jwtVerify(token, createLocalJWKSet(body as never), { issuer: ISSUER, audience: AUDIENCE, currentDate: new Date(during.clock.now()) });
      }
      // The previous key is pinned too: HS256 keyed with its public PEM under its kid, or none, is refused.
      const claims = payloadOf(oldToken);
      for (const forged of [
        await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: oldKey.kid }).sign(new TextEncoder().encode(oldPublic)),
        `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: oldKey.kid })).toString('base64url')}.${oldToken.split('.')[1]}.`,
      ]) {
        assert.equal((await me(during, forged)).res.statusCode, 401);
      }

      // Step 2: the old key leaves JWT_PREVIOUS_KEYS: its tokens stop at once, the new ones work.
      const afterwards = await start({ JWT_SIGNING_KEY: newPem });
      const rotatedOut = await me(afterwards, oldToken);
      assert.equal(rotatedOut.res.statusCode, 401);
      assert.equal(rotatedOut.res.headers['www-authenticate'], 'Bearer');
      assert.equal(rotatedOut.body.error.code, 'UNAUTHORIZED');
      assert.equal((await me(afterwards, newToken)).res.statusCode, 200);
      assert.deepEqual((await jwks(afterwards)).body.keys.map((k) => k.kid), [newKey.kid]);
      const again = await call(afterwards.app, 'POST', '/api/v1/auth/refresh', { refresh_token: refreshed.body.data.refresh_token });
      assert.equal(again.res.statusCode, 200, 'the refresh token still works after the old key is gone');
    });

    test('an unknown kid, a kid of another type, no kid, or a token of another deployment → 401', async () => {
      const t = await start({ JWT_SIGNING_KEY: newPem, JWT_PREVIOUS_KEYS: oldPem });
      const user = await signupAndLogin(t.app);
      const claims = payloadOf(user.accessToken);
      const stranger = parseSigningKey(generateSigningKeyPem('ES256'));
      const other = await start({ JWT_SIGNING_KEY: generateSigningKeyPem('ES256') });
      const foreign = (await signupAndLogin(other.app)).accessToken;
      for (const [why, token] of [
        ['unknown kid', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: stranger.kid }).sign(stranger.privateKey)],
        ['a stranger key under the current kid', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: newKey.kid }).sign(stranger.privateKey)],
        ['a stranger key under the previous kid', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: oldKey.kid }).sign(stranger.privateKey)],
        ['the right key, kid as a number', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 1 as never }).sign(newKey.privateKey)],
        ['the right key, no kid', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).sign(newKey.privateKey)],
        ['the right key, kid "__proto__"', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: '__proto__' }).sign(newKey.privateKey)],
        ['a token of another deployment (same issuer and audience, its own key)', foreign],
      ] as const) {
        const { res } = await me(t, token);
        assert.equal(res.statusCode, 401, why);
      }
      assert.equal((await me(t, user.accessToken)).res.statusCode, 200, 'the harness is right: the real token passes');
      // The same claims re-signed with the previous key under its kid pass: that key is still configured.
      const byPrevious = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: oldKey.kid }).sign(oldKey.privateKey);
      assert.equal((await me(t, byPrevious)).res.statusCode, 200);
    });

    test('HS256, chosen explicitly: no kid, no published secret, asymmetric tokens refused', async () => {
      const t = await start({ JWT_ALGORITHM: 'HS256' });
      const user = await signupAndLogin(t.app);
      assert.deepEqual(decodeProtectedHeader(user.accessToken), { alg: 'HS256', typ: 'at+jwt' });
      assert.equal((await me(t, user.accessToken)).res.statusCode, 200);
      assert.deepEqual((await jwks(t)).body, { keys: [] }, 'an HMAC secret is never published');
      const claims = payloadOf(user.accessToken);
      const secret = new Uint8Array(t.keys.jwtSecret!);
      for (const [why, token] of [
        ['ES256 by a key the service does not hold', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: newKey.kid }).sign(newKey.privateKey)],
        ['HS256 with the right secret but a kid', await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'x' }).sign(secret)],
        ['HS512 with the right secret', await new SignJWT(claims).setProtectedHeader({ alg: 'HS512', typ: 'at+jwt' }).sign(secret)],
        ['none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${user.accessToken.split('.')[1]}.`],
      ] as const) {
        assert.equal((await me(t, token)).res.statusCode, 401, why);
      }
      // Moving from HS256 to a signing key: previous asymmetric keys are honoured in HS256 mode too (a way back).
      const back = await start({ JWT_ALGORITHM: 'HS256', JWT_PREVIOUS_KEYS: newPem });
      const byNew = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: newKey.kid }).sign(newKey.privateKey);
      assert.equal((await me(back, byNew)).res.statusCode, 200);
      assert.deepEqual((await jwks(back)).body.keys.map((k) => k.kid), [newKey.kid]);
    });
  });
}
