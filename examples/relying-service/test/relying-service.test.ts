/**
 * The relying-service example against a live Trusted Devices service (both
 * listening on 127.0.0.1, port 0): a valid access token is accepted through
 * the JWK set alone; a forged one (another key, a tampered payload, HS256
 * keyed with the public key, none), a token for another audience, and a token
 * whose key was rotated out are refused. It reads auth_time, amr and acr,
 * and its own sensitive action asks for a step-up the RFC 9470 way.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { decodeProtectedHeader, SignJWT } from 'jose';
import { generateSigningKeyPem, parseSigningKey } from '../../../src/platform/crypto/signing-keys.ts';
import { parse as parseAuthHeader } from 'auth-header';
import { call, createTestApp, databaseKinds, laptop, loginStep, signupAndLogin, type TestApp } from '../../../test/helpers/app.ts';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.ts';
import { closeAtEnd, closeQuietly } from '../../../test/helpers/teardown.ts';
import { buildRelyingService, MULTI_FACTOR_ACR } from '../src/app.ts';

const [sqlite] = databaseKinds();
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('relying-service example', () => {
  const signingPem = generateSigningKeyPem('ES256');
  const signingKey = parseSigningKey(signingPem);
  let auth: TestApp;
  let relying: FastifyInstance;
  const others: TestApp[] = [];
  const whoami = (token?: string) =>
    relying.inject({ method: 'GET', url: '/whoami', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  before(async () => {
    // The auth service keeps real time here: jose in the relying service checks exp against the wall clock.
    auth = await createTestApp(sqlite!, { env: { JWT_SIGNING_KEY: signingPem } });
    await auth.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = auth.app.server.address() as AddressInfo;
    relying = await buildRelyingService({
      jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      issuer: 'trusted-devices',
      audience: 'trusted-devices-api',
    });
  });
  after(() => closeQuietly('the relying service', () => relying?.close()));
  after(async () => {
    for (const other of others) await closeQuietly('an auth instance', () => other.close());
  });
  after(() => closeQuietly('the auth service', () => auth?.close()));

  test('a valid access token is accepted: the relying service knows the user and the session', async () => {
    const user = await signupAndLogin(auth.app);
    const res = await whoami(user.accessToken);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().user_id, user.userId);
    assert.equal(typeof res.json().session_id, 'string');
    assert.equal(decodeProtectedHeader(user.accessToken).kid, signingKey.kid);
  });

  test('it reads how the person signed in, and its sensitive action asks for a step-up (RFC 9470) until a second factor is fresh', async () => {
    const sensitive = (token: string) => relying.inject({ method: 'POST', url: '/sensitive', headers: { authorization: `Bearer ${token}` } });
    const user = await signupAndLogin(auth.app, laptop());
    const me = (await whoami(user.accessToken)).json();
    assert.deepEqual(me.amr, ['pwd']);
    assert.equal(me.acr, 'urn:trusted-devices:acr:single-factor');
    assert.ok(Math.abs(me.auth_time - Date.now() / 1000) < 60, 'auth_time is the sign-in');

    const refused = await sensitive(user.accessToken);
    assert.equal(refused.statusCode, 401);
    const challenge = parseAuthHeader(String(refused.headers['www-authenticate']));
    assert.equal(challenge.params.error, 'insufficient_user_authentication');
    assert.equal(challenge.params.max_age, '600');
    assert.equal(challenge.params.acr_values, MULTI_FACTOR_ACR);

    // A passkey (the account's second factor): a passwordless sign-in is multi-factor.
    const key = new SoftAuthenticator();
    const options = await call(auth.app, 'POST', '/api/v1/mfa/webauthn/register/options', {}, { token: user.accessToken });
    const registered = await call(auth.app, 'POST', '/api/v1/mfa/webauthn/register/verify', { response: key.register(options.body.data.options).response }, { token: user.accessToken });
    assert.equal(registered.res.statusCode, 200, registered.res.body);
    const attempt = await call(auth.app, 'POST', '/api/v1/auth/passkey/options', {}, { device: laptop() });
    const passkey = await call(auth.app, 'POST', '/api/v1/auth/passkey/verify', { attempt_token: attempt.body.data.attempt_token, response: key.assert(attempt.body.data.options) }, { device: laptop() });
    assert.equal(passkey.res.statusCode, 200, passkey.res.body);
    assert.ok((await whoami(passkey.body.data.access_token)).json().amr.includes('mfa'));
    assert.equal((await sensitive(passkey.body.data.access_token)).statusCode, 200);

    // Trust this device, then sign in on it with the password: the device stands in for the second factor.
    const activated = await call(auth.app, 'POST', '/api/v1/devices/activate', { activation_token: passkey.body.data.trusted_device.activation_token }, { token: passkey.body.data.access_token, device: laptop() });
    const bypass = await loginStep(auth, user, laptop({ deviceToken: activated.body.data.device_token }));
    assert.equal(bypass.body.data.mfa_bypassed, true, bypass.res.body);
    assert.deepEqual((await whoami(bypass.body.data.access_token)).json().amr, ['pwd', 'device']);
    assert.equal((await sensitive(bypass.body.data.access_token)).statusCode, 401, 'a trusted device never counts as the second factor');

    // Step up at the service with the passkey: the new token of the same session passes.
    const stepUpOptions = await call(auth.app, 'POST', '/api/v1/auth/step-up/webauthn/options', undefined, { token: bypass.body.data.access_token });
    const stepped = await call(auth.app, 'POST', '/api/v1/auth/step-up', { webauthn: key.assert(stepUpOptions.body.data.options) }, { token: bypass.body.data.access_token });
    assert.equal(stepped.res.statusCode, 200, stepped.res.body);
    const after = (await whoami(stepped.body.data.access_token)).json();
    assert.equal(after.session_id, (await whoami(bypass.body.data.access_token)).json().session_id);
    assert.equal(after.acr, MULTI_FACTOR_ACR);
    assert.equal((await sensitive(stepped.body.data.access_token)).statusCode, 200);
  });

  test('forged tokens are refused', async () => {
    const user = await signupAndLogin(auth.app);
    const victim = await signupAndLogin(auth.app);
    const claims = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString('utf8'));
    const [h, , s] = user.accessToken.split('.');
    const stranger = parseSigningKey(generateSigningKeyPem('ES256'));
    const publicPem = new TextEncoder().encode(signingKey.publicKey.export({ format: 'pem', type: 'spki' }).toString());
    for (const [why, token] of [
      ['no token', undefined],
      ['another key under its own kid', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: stranger.kid }).sign(stranger.privateKey)],
      ['another key under the real kid', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: signingKey.kid }).sign(stranger.privateKey)],
      ['payload changed to another user, old signature', `${h}.${b64({ ...claims, sub: victim.userId })}.${s}`],
      ['HS256 keyed with the public key', await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: signingKey.kid }).sign(publicPem)],
      ['alg none', `${b64({ alg: 'none', typ: 'at+jwt', kid: signingKey.kid })}.${b64(claims)}.`],
      ['the real key, but typ JWT (not an access token)', await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: signingKey.kid }).sign(signingKey.privateKey)],
      ['the real key, but expired', await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: signingKey.kid }).sign(signingKey.privateKey)],
    ] as const) {
      const res = await whoami(token);
      assert.equal(res.statusCode, 401, why);
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    }
    // The harness is right: the same claims signed by the real key pass.
    const resigned = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: signingKey.kid }).sign(signingKey.privateKey);
    assert.equal((await whoami(resigned)).statusCode, 200);
  });

  test('a token of another audience (same issuer, same key, published in the same JWK set) is refused', async () => {
    const otherAudience = await createTestApp(sqlite!, { env: { JWT_SIGNING_KEY: signingPem, JWT_AUDIENCE: 'billing-api' } });
    others.push(otherAudience);
    const user = await signupAndLogin(otherAudience.app);
    assert.equal((await whoami(user.accessToken)).statusCode, 401);
    // …which that audience's own service accepts: the signature is fine, the audience is not ours.
    assert.equal((await otherAudience.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${user.accessToken}` } })).statusCode, 200);
  });

  test('after a rotation the running relying service picks up the new key by itself (unknown kid → JWK set refetched)', async (t) => {
    // The relying service reads the JWK set at one stable URL; behind it, the auth service is replaced.
    let upstream = `http://127.0.0.1:${(auth.app.server.address() as AddressInfo).port}`;
    const front = createServer((req, res) => {
      fetch(`${upstream}${req.url}`)
        .then(async (answer) => {
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(await answer.text());
        })
        .catch(() => res.writeHead(502).end());
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    closeAtEnd(t, front, (server) => new Promise((resolve) => server.close(resolve)));
    const relyingService = closeAtEnd(t, await buildRelyingService({
      jwksUrl: `http://127.0.0.1:${(front.address() as AddressInfo).port}/.well-known/jwks.json`,
      issuer: 'trusted-devices',
      audience: 'trusted-devices-api',
      jwksCooldownMs: 0,
    }), (service) => service.close());
    const check = async (token: string) =>
      (await relyingService.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } })).statusCode;
    {
      const before = await signupAndLogin(auth.app);
      assert.equal(await check(before.accessToken), 200, 'the old key, fetched and cached');

      const rotated = await createTestApp(sqlite!, { db: auth.db, env: { JWT_SIGNING_KEY: generateSigningKeyPem('ES256'), JWT_PREVIOUS_KEYS: signingPem } });
      others.push(rotated);
      await rotated.app.listen({ host: '127.0.0.1', port: 0 });
      upstream = `http://127.0.0.1:${(rotated.app.server.address() as AddressInfo).port}`;
      const after = await signupAndLogin(rotated.app);
      assert.notEqual(decodeProtectedHeader(after.accessToken).kid, signingKey.kid);
      assert.equal(await check(after.accessToken), 200, 'the new kid made the relying service refetch the set');
      assert.equal(await check(before.accessToken), 200, 'the previous key is still in the set');

      // The old key leaves JWT_PREVIOUS_KEYS: once the relying service refetches, its tokens are refused.
      const retired = await createTestApp(sqlite!, { db: auth.db, env: { JWT_SIGNING_KEY: generateSigningKeyPem('ES256') } });
      others.push(retired);
      await retired.app.listen({ host: '127.0.0.1', port: 0 });
      upstream = `http://127.0.0.1:${(retired.app.server.address() as AddressInfo).port}`;
      const newest = await signupAndLogin(retired.app);
      assert.equal(await check(newest.accessToken), 200, 'another unknown kid → refetch');
      assert.equal(await check(before.accessToken), 401, 'the rotated-out key is gone from the refetched set');
    }
  });
});
