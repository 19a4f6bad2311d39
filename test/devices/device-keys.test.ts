/**
 * docs/trust-model.md: device-bound keys (proof of possession) and
 * device-token rotation with reuse detection, on SQLite and PostgreSQL.
 * Keys are ES256 pairs made here with node:crypto's WebCrypto, non-extractable,
 * the way the web app makes them.
 */
import { createHistory } from '../../src/store/history.ts';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  call,
  createTestApp,
  databaseKinds,
  type Device,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  loginWithMfa,
  twoInstances,
  type TwoInstances,
  signupAndLogin,
  type TestApp,
  type TestUser,
} from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';
import { fetchChallenge, makeDeviceKey, proofHeader, type TestDeviceKey } from '../helpers/device-keys.ts';

const SECOND = 1000;

async function mfaUser(t: TestApp): Promise<TestUser> {
  const user = await signupAndLogin(t.app, laptop());
  await enableMfa(t, user);
  return user;
}

/** MFA, then activate with (or without) a public key. */
async function trust(t: TestApp, user: TestUser, device: Device, key?: TestDeviceKey) {
  const verified = await loginWithMfa(t, user, device);
  const body: Record<string, unknown> = { activation_token: verified.trusted_device.activation_token };
  if (key) body.public_key = key.publicJwk;
  const activate = await call(t.app, 'POST', '/api/v1/devices/activate', body, { token: verified.access_token, device });
  assert.equal(activate.res.statusCode, 200, activate.res.body);
  return { deviceToken: activate.body.data.device_token as string, device: activate.body.data.device, accessToken: verified.access_token as string };
}

const login = (t: TestApp, user: TestUser, device: Device, proof?: string) =>
  call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device, headers: proof === undefined ? {} : { 'x-device-proof': proof } });

async function history(t: TestApp, token: string): Promise<any[]> {
  const res = await call(t.app, 'GET', '/api/v1/devices/events?limit=100', undefined, { token });
  assert.equal(res.res.statusCode, 200, res.res.body);
  return res.body.data.events;
}

/** A live access token of the user, from a fresh MFA sign-in on another browser. */
const freshToken = async (t: TestApp, user: TestUser) => (await loginWithMfa(t, user, laptop({ userAgent: FIREFOX_WINDOWS, ip: '198.51.100.40' }))).access_token as string;

/** The security alerts queued for the user (the mail outbox). */
const alertKinds = async (t: TestApp, user: TestUser) =>
  (await t.db.handle.db.selectFrom('mail_outbox').innerJoin('users', 'users.id', 'mail_outbox.user_id').select('mail_outbox.kind').where('users.email', '=', user.email).execute())
    .map((r) => r.kind)
    .filter((k) => k.startsWith('alert_') && k !== 'alert_device_trusted')
    .sort();

const deviceStatus = async (t: TestApp, id: string) =>
  (await t.db.handle.db.selectFrom('trusted_devices').select(['status', 'revoked_at']).where('id', '=', id).executeTakeFirstOrThrow()).status;

for (const kind of databaseKinds()) {
  describe(`device-bound keys: proof of possession (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('POST /auth/device-challenge: no auth, 256 random bits behind tdc_, 60 s, stored only as SHA-256', async () => {
      const res = await call(t.app, 'POST', '/api/v1/auth/device-challenge');
      assert.equal(res.res.statusCode, 200, res.res.body);
      assert.equal(res.body.success, true);
      assert.deepEqual(Object.keys(res.body.data).sort(), ['challenge', 'expires_in']);
      assert.equal(res.body.data.expires_in, 60);
      assert.match(res.body.data.challenge, /^tdc_[A-Za-z0-9_-]{43}$/);
      const other = await fetchChallenge(t.app);
      assert.notEqual(other, res.body.data.challenge);
      const rows = await t.db.handle.db.selectFrom('device_challenges').selectAll().execute();
      const text = JSON.stringify(rows);
      assert.ok(!text.includes(res.body.data.challenge) && !text.includes(res.body.data.challenge.slice(4)), 'raw challenge stored');
      const { hashToken } = await import('../../src/platform/crypto/tokens.ts');
      const row = rows.find((r) => r.challenge_hash === hashToken(res.body.data.challenge))!;
      assert.equal(row.consumed_at, null);
      assert.equal(Number(row.expires_at) - Number(row.created_at), 60 * SECOND);
    });

    test('activate with a public key → key_bound true (list too); without → false; the real browser bypasses with a proof', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const bound = await trust(t, user, laptop(), key);
      assert.equal(bound.device.key_bound, true);
      const plain = await trust(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      assert.equal(plain.device.key_bound, false);
      const list = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: plain.accessToken });
      const byId = new Map(list.body.data.devices.map((d: any) => [d.id, d.key_bound]));
      assert.equal(byId.get(bound.device.id), true);
      assert.equal(byId.get(plain.device.id), false);

      const ok = await login(t, user, laptop({ deviceToken: bound.deviceToken }), await proofHeader(t.app, key));
      assert.equal(ok.res.statusCode, 200);
      assert.equal(ok.body.data.mfa_bypassed, true, ok.res.body);
      assert.equal(ok.body.data.trusted_device_id, bound.device.id);
      // A non-key-bound device works as before (no proof needed).
      const plainLogin = await login(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: plain.deviceToken }));
      assert.equal(plainLogin.body.data.mfa_bypassed, true);
    });

    test('a copied cookie without the private key → MFA, proof_failed; the real browser still bypasses', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const real = await trust(t, user, laptop(), key);
      // Another browser profile: same user agent and signals, the copied token, no key (or its own key).
      const thief = laptop({ deviceToken: real.deviceToken, ip: '192.0.2.66' });
      const noProof = await login(t, user, thief);
      assert.equal(noProof.res.statusCode, 200);
      assert.equal(noProof.body.data.mfa_required, true);
      const ownKey = await makeDeviceKey();
      const wrongKey = await login(t, user, thief, await proofHeader(t.app, ownKey));
      assert.equal(wrongKey.body.data.mfa_required, true);
      const events = (await history(t, real.accessToken)).filter((e) => e.type === 'proof_failed');
      assert.equal(events.length, 2);
      assert.equal(events[0].device_id, real.device.id);
      assert.equal(events[0].ip_address, '192.0.2.66');
      // A failed proof rotates nothing: the real browser's token and key still bypass.
      const realLogin = await login(t, user, laptop({ deviceToken: real.deviceToken }), await proofHeader(t.app, key));
      assert.equal(realLogin.body.data.mfa_bypassed, true, realLogin.res.body);
      assert.equal(await deviceStatus(t, real.device.id), 'active');
    });

    test('missing, malformed, reused, expired, unknown, over another challenge, by another key → MFA and proof_failed, never 500', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const other = await makeDeviceKey();
      const real = await trust(t, user, laptop(), key);
      const device = laptop({ deviceToken: real.deviceToken });
      const sign = async (challenge: string, by = key) => `${challenge}.${await by.sign(challenge)}`;

      const reusable = await sign(await fetchChallenge(t.app));
      const first = await login(t, user, device, reusable);
      assert.equal(first.body.data.mfa_bypassed, true, first.res.body);
      device.deviceToken = first.body.data.device_token;

      const expiring = await fetchChallenge(t.app);
      const a = await fetchChallenge(t.app);
      const b = await fetchChallenge(t.app);
      const goodSig = await key.sign(a);
      const unknown = `tdc_${randomBytes(32).toString('base64url')}`;
      const cases: Array<[string, () => Promise<string | undefined>]> = [
        ['no proof', async () => undefined],
        ['empty header', async () => ''],
        ['garbage', async () => 'not a proof'],
        ['no signature', async () => `${a}.`],
        ['no dot', async () => a],
        ['signature not base64url', async () => `${a}.${'!'.repeat(86)}`],
        ['signature too short', async () => `${a}.${goodSig.slice(0, 40)}`],
        ['signature too long', async () => `${a}.${goodSig}AA`],
        ['DER instead of P1363', async () => `${a}.${Buffer.concat([Buffer.from([0x30, 0x44]), Buffer.from(goodSig, 'base64url')]).toString('base64url')}`],
        ['challenge of another kind', async () => `tdd_${randomBytes(32).toString('base64url')}.${goodSig}`],
        ['many dots', async () => `${a}.${goodSig}.${goodSig}`],
        ['reused challenge', async () => reusable],
        ['expired challenge', async () => {
          t.clock.advance(61 * SECOND);
          return sign(expiring);
        }],
        ['unknown challenge', () => sign(unknown)],
        ['signature over another challenge', async () => `${b}.${await key.sign(a)}`],
        ['by another key', () => sign(a, other)],
        // `a` was consumed by the checks above: the right signature no longer passes.
        ['a challenge used up by a failed proof', () => sign(a)],
      ];
      for (const [name, make] of cases) {
        const proof = await make();
        const res = await login(t, user, device, proof);
        assert.equal(res.res.statusCode, 200, `${name}: ${res.res.body}`);
        assert.equal(res.body.data.mfa_required, true, `${name}: ${res.res.body}`);
        assert.equal(res.body.data.device_token, undefined, name);
      }
      const failures = (await history(t, first.body.data.access_token)).filter((e) => e.type === 'proof_failed');
      assert.equal(failures.length, cases.length);
      assert.ok(failures.every((e) => e.device_id === real.device.id && e.device_name === real.device.device_name));
      // Still the real device, still bypassing with a fresh proof.
      const last = await login(t, user, device, await sign(await fetchChallenge(t.app)));
      assert.equal(last.body.data.mfa_bypassed, true, last.res.body);
    });

    test('a proof is checked only for a key-bound device: a non-bound login leaves the challenge unused', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const bound = await trust(t, user, laptop(), key);
      const plain = await trust(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      const challenge = await fetchChallenge(t.app);
      const proof = `${challenge}.${await key.sign(challenge)}`;
      assert.equal((await login(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: plain.deviceToken }), proof)).body.data.mfa_bypassed, true);
      assert.equal((await login(t, user, laptop({ deviceToken: bound.deviceToken }), proof)).body.data.mfa_bypassed, true);
    });

    test('after a failed proof, the second factor offers to trust this browser again (a new key)', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const real = await trust(t, user, laptop(), key);
      const verified = await loginWithMfa(t, user, laptop({ deviceToken: real.deviceToken }));
      assert.notEqual(verified.trusted_device, null, 'a key-bound device without a proof is not "already trusted"');
      const fresh = await makeDeviceKey();
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, public_key: fresh.publicJwk }, { token: verified.access_token, device: laptop() });
      assert.equal(activate.res.statusCode, 200);
      const again = await login(t, user, laptop({ deviceToken: activate.body.data.device_token }), await proofHeader(t.app, fresh));
      assert.equal(again.body.data.mfa_bypassed, true);
    });

    test('public_key is checked strictly: a private key, another curve or type, bad coordinates, a point off the curve → 422; the token stays usable', async () => {
      const user = await mfaUser(t);
      const { webcrypto } = await import('node:crypto');
      const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const privateJwk = await webcrypto.subtle.exportKey('jwk', pair.privateKey);
      const publicJwk = await webcrypto.subtle.exportKey('jwk', pair.publicKey);
      const p384 = await webcrypto.subtle.exportKey('jwk', (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])).publicKey);
      const offCurve = { ...publicJwk, y: publicJwk.x };
      const cases: Array<[string, unknown, string]> = [
        ['private key', privateJwk, 'INVALID_PUBLIC_KEY'],
        ['private part only added', { ...publicJwk, d: privateJwk.d }, 'INVALID_PUBLIC_KEY'],
        ['P-384', p384, 'VALIDATION_ERROR'],
        ['RSA', { kty: 'RSA', crv: 'P-256', x: publicJwk.x, y: publicJwk.y, n: 'AQAB', e: 'AQAB' }, 'VALIDATION_ERROR'],
        ['short x', { ...publicJwk, x: publicJwk.x!.slice(0, 42) }, 'VALIDATION_ERROR'],
        ['padded y', { ...publicJwk, y: `${publicJwk.y}=` }, 'VALIDATION_ERROR'],
        ['off the curve', offCurve, 'INVALID_PUBLIC_KEY'],
        ['alg RS256', { ...publicJwk, alg: 'RS256' }, 'INVALID_PUBLIC_KEY'],
        ['key_ops sign', { ...publicJwk, key_ops: ['sign'] }, 'INVALID_PUBLIC_KEY'],
        ['a string', 'not a key', 'VALIDATION_ERROR'],
        ['an array', [publicJwk], 'VALIDATION_ERROR'],
        ['missing y', { kty: 'EC', crv: 'P-256', x: publicJwk.x }, 'VALIDATION_ERROR'],
      ];
      const device = laptop();
      const verified = await loginWithMfa(t, user, device);
      for (const [name, publicKey, code] of cases) {
        const res = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, public_key: publicKey }, { token: verified.access_token, device });
        assert.equal(res.res.statusCode, 422, `${name}: ${res.res.body}`);
        assert.equal(res.body.error.code, code, name);
        assert.ok(!res.res.body.includes(String(privateJwk.d)), 'the private part is not echoed');
      }
      // What WebCrypto exports for a public key (ext, key_ops: ['verify']) is accepted, and only {kty, crv, x, y} is stored.
      const ok = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, public_key: publicJwk }, { token: verified.access_token, device });
      assert.equal(ok.res.statusCode, 200, ok.res.body);
      assert.equal(ok.body.data.device.key_bound, true);
      const row = await t.db.handle.db.selectFrom('trusted_devices').select('public_key_jwk').where('id', '=', ok.body.data.device.id).executeTakeFirstOrThrow();
      assert.deepEqual(JSON.parse(row.public_key_jwk!), { kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y });
    });
  });

  describe(`device tokens: rotation and reuse detection (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('every bypass issues a new token (answer + cookie) and retires the old one; within the grace it still works, once, without rotating', async () => {
      const user = await mfaUser(t);
      const trusted = await trust(t, user, laptop());
      const t0 = trusted.deviceToken;
      const first = await login(t, user, laptop({ deviceToken: t0 }));
      assert.equal(first.body.data.mfa_bypassed, true);
      const t1: string = first.body.data.device_token;
      assert.match(t1, /^tdd_[A-Za-z0-9_-]{43}$/);
      assert.notEqual(t1, t0);
      const cookie = String(first.res.headers['set-cookie']);
      assert.match(cookie, new RegExp(`^td_device=${t1};`));
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      assert.match(cookie, /Path=\/api\/v1/);
      const expiresAt = new Date(trusted.device.expires_at).getTime();
      assert.match(cookie, new RegExp(`Max-Age=${Math.floor((expiresAt - t.clock.now()) / 1000)}`), 'the cookie lives what remains of the trust');
      const list = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: first.body.data.access_token, headers: { 'x-device-token': t1 } });
      assert.equal(list.body.data.devices[0].is_current, true);
      assert.equal(new Date(list.body.data.devices[0].expires_at).getTime(), expiresAt, 'rotation does not extend the trust');

      // A parallel tab with the old token, within the grace: trusted, not rotated again, no cookie.
      t.clock.advance(29 * SECOND);
      const tab = await login(t, user, laptop({ deviceToken: t0 }));
      assert.equal(tab.body.data.mfa_bypassed, true, tab.res.body);
      assert.equal(tab.body.data.device_token, null);
      assert.equal(tab.res.headers['set-cookie'], undefined);
      // The cookie cookie-based browsers send works too (the route reads td_device).
      const viaCookie = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop(), cookies: { td_device: t1 } });
      assert.equal(viaCookie.body.data.mfa_bypassed, true);
      const t2: string = viaCookie.body.data.device_token;
      assert.match(String(viaCookie.res.headers['set-cookie']), new RegExp(`^td_device=${t2};`));
      assert.equal(await deviceStatus(t, trusted.device.id), 'active');
    });

    test('a retired token after the grace → device revoked (reuse_detected), its sessions ended, MFA required', async () => {
      const user = await mfaUser(t);
      const trusted = await trust(t, user, laptop());
      const t0 = trusted.deviceToken;
      const first = await login(t, user, laptop({ deviceToken: t0 }));
      const t1: string = first.body.data.device_token;
      const bypassSession = first.body.data.access_token as string;
      const bypassRefresh = first.body.data.refresh_token as string;
      const elsewhere = await freshToken(t, user);

      t.clock.advance(30 * SECOND); // the grace is [0, 30 s)
      const copy = await login(t, user, laptop({ deviceToken: t0, ip: '192.0.2.99' }));
      assert.equal(copy.res.statusCode, 200);
      assert.equal(copy.body.data.mfa_required, true);
      assert.equal(await deviceStatus(t, trusted.device.id), 'revoked');
      // The sessions opened on the device (the second factor's and the bypass's) are ended; the others are not.
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: bypassSession })).res.statusCode, 401);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: trusted.accessToken })).res.statusCode, 401);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: bypassRefresh })).res.statusCode, 401);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: elsewhere })).res.statusCode, 200);
      // The current token is dead too: the device is revoked.
      assert.equal((await login(t, user, laptop({ deviceToken: t1 }))).body.data.mfa_required, true);

      const events = await history(t, elsewhere);
      const reuse = events.filter((e) => e.type === 'reuse_detected');
      assert.equal(reuse.length, 1);
      assert.equal(reuse[0].device_id, trusted.device.id);
      assert.equal(reuse[0].cause, 'reuse_detected');
      assert.equal(reuse[0].ip_address, '192.0.2.99');
      const revoked = events.find((e) => e.type === 'revoked' && e.device_id === trusted.device.id);
      assert.equal(revoked?.cause, 'reuse_detected');
      const ended = events.filter((e) => e.type === 'session_revoked' && e.device_id === trusted.device.id);
      assert.equal(ended.length, 2);
      assert.ok(ended.every((e) => e.cause === 'reuse_detected'));
      // Presented again: the device is already revoked; nothing more happens.
      await login(t, user, laptop({ deviceToken: t0 }));
      assert.equal((await history(t, elsewhere)).filter((e) => e.type === 'reuse_detected').length, 1);
    });

    test('reuse is detected whichever browser presents the copy, and before the fingerprint check', async () => {
      const user = await mfaUser(t);
      const trusted = await trust(t, user, laptop());
      await login(t, user, laptop({ deviceToken: trusted.deviceToken }));
      t.clock.advance(31 * SECOND);
      const res = await login(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: trusted.deviceToken }));
      assert.equal(res.body.data.mfa_required, true);
      assert.equal(await deviceStatus(t, trusted.device.id), 'revoked');
    });

    test('a key-bound device: the retired token within the grace still needs a proof; after it, without a proof (or with another key’s), reuse is reuse', async () => {
      for (const copyProof of [undefined, 'another key'] as const) {
        const user = await mfaUser(t);
        const key = await makeDeviceKey();
        const trusted = await trust(t, user, laptop(), key);
        const first = await login(t, user, laptop({ deviceToken: trusted.deviceToken }), await proofHeader(t.app, key));
        assert.equal(first.body.data.mfa_bypassed, true);
        const withinNoProof = await login(t, user, laptop({ deviceToken: trusted.deviceToken }));
        assert.equal(withinNoProof.body.data.mfa_required, true);
        const withinProof = await login(t, user, laptop({ deviceToken: trusted.deviceToken }), await proofHeader(t.app, key));
        assert.equal(withinProof.body.data.mfa_bypassed, true);
        t.clock.advance(31 * SECOND);
        const proof = copyProof === undefined ? undefined : await proofHeader(t.app, await makeDeviceKey());
        const after = await login(t, user, laptop({ deviceToken: trusted.deviceToken }), proof);
        assert.equal(after.body.data.mfa_required, true);
        assert.equal(await deviceStatus(t, trusted.device.id), 'revoked');
      }
    });

    test('a crash is not theft: a retired token after the grace with the device’s own proof → resynced (new token, token_resynced), nothing revoked, no alert', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const trusted = await trust(t, user, laptop(), key);
      // The sign-in rotated the token, but the browser died before it stored the new cookie.
      const lost = await login(t, user, laptop({ deviceToken: trusted.deviceToken }), await proofHeader(t.app, key));
      assert.equal(lost.body.data.mfa_bypassed, true);
      const lostToken: string = lost.body.data.device_token;
      const lostSession = lost.body.data.refresh_token as string;
      t.clock.advance(3600 * SECOND);
      const mailsBefore = await alertKinds(t, user);
      const reopened = await login(t, user, laptop({ deviceToken: trusted.deviceToken }), await proofHeader(t.app, key));
      assert.equal(reopened.res.statusCode, 200, reopened.res.body);
      assert.equal(reopened.body.data.mfa_bypassed, true, reopened.res.body);
      assert.equal(reopened.body.data.trusted_device_id, trusted.device.id);
      const fresh: string = reopened.body.data.device_token;
      assert.match(fresh, /^tdd_/);
      assert.notEqual(fresh, lostToken);
      assert.notEqual(fresh, trusted.deviceToken);
      assert.match(String(reopened.res.headers['set-cookie']), new RegExp(`^td_device=${fresh};`));
      assert.equal(await deviceStatus(t, trusted.device.id), 'active');
      // The sessions opened on the device live on.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: lostSession })).res.statusCode, 200);
      const events = await history(t, reopened.body.data.access_token);
      const resynced = events.filter((e) => e.type === 'token_resynced');
      assert.equal(resynced.length, 1);
      assert.equal(resynced[0].device_id, trusted.device.id);
      assert.equal(events.filter((e) => e.type === 'reuse_detected' || e.type === 'revoked').length, 0);
      assert.deepEqual(await alertKinds(t, user), mailsBefore, 'no alert mail');
      // The fresh token is the device's current one; the never-stored one is now retired like any other.
      assert.equal((await login(t, user, laptop({ deviceToken: fresh }), await proofHeader(t.app, key))).body.data.mfa_bypassed, true);
    });

    test('resync: the same proof cannot be replayed, and a device without a key is never resynced', async () => {
      const user = await mfaUser(t);
      const key = await makeDeviceKey();
      const trusted = await trust(t, user, laptop(), key);
      await login(t, user, laptop({ deviceToken: trusted.deviceToken }), await proofHeader(t.app, key));
      t.clock.advance(31 * SECOND);
      const proof = await proofHeader(t.app, key);
      assert.equal((await login(t, user, laptop({ deviceToken: trusted.deviceToken }), proof)).body.data.mfa_bypassed, true);
      // The same proof again (a copy that captured it): the challenge is spent → reuse.
      t.clock.advance(31 * SECOND);
      assert.equal((await login(t, user, laptop({ deviceToken: trusted.deviceToken }), proof)).body.data.mfa_required, true);
      assert.equal(await deviceStatus(t, trusted.device.id), 'revoked');

      const plain = await trust(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      await login(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: plain.deviceToken }), await proofHeader(t.app, key));
      t.clock.advance(31 * SECOND);
      assert.equal((await login(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: plain.deviceToken }), await proofHeader(t.app, key))).body.data.mfa_required, true);
      assert.equal(await deviceStatus(t, plain.device.id), 'revoked');
    });

    test('a retired token of another user is an unknown token: nothing is revoked', async () => {
      const owner = await mfaUser(t);
      const other = await mfaUser(t);
      const trusted = await trust(t, owner, laptop());
      await login(t, owner, laptop({ deviceToken: trusted.deviceToken }));
      t.clock.advance(31 * SECOND);
      const res = await login(t, other, laptop({ deviceToken: trusted.deviceToken }));
      assert.equal(res.body.data.mfa_required, true);
      assert.equal(await deviceStatus(t, trusted.device.id), 'active');
    });

    test('DEVICE_TOKEN_REUSE_GRACE_SECONDS is the grace', async () => {
      const short = await createTestApp(kind, { env: { DEVICE_TOKEN_REUSE_GRACE_SECONDS: '5' } });
      try {
        const user = await mfaUser(short);
        const trusted = await trust(short, user, laptop());
        await login(short, user, laptop({ deviceToken: trusted.deviceToken }));
        short.clock.advance(4 * SECOND);
        assert.equal((await login(short, user, laptop({ deviceToken: trusted.deviceToken }))).body.data.mfa_bypassed, true);
        short.clock.advance(1 * SECOND);
        assert.equal((await login(short, user, laptop({ deviceToken: trusted.deviceToken }))).body.data.mfa_required, true);
        assert.equal(await deviceStatus(short, trusted.device.id), 'revoked');
      } finally {
        await short.close();
      }
    });

    test('housekeeping deletes expired challenges and retired tokens in bounded batches, and keeps live ones', async () => {
      const db = t.db.handle.db;
      const now = t.clock.now();
      await db.deleteFrom('device_challenges').execute();
      await db.deleteFrom('retired_device_tokens').execute();
      const rows = (n: number, expiresAt: number) => Array.from({ length: n }, () => ({ challenge_hash: randomBytes(32).toString('hex'), created_at: expiresAt - 60_000, expires_at: expiresAt, consumed_at: null }));
      for (const chunk of [rows(500, now - 1), rows(500, now - 1), rows(500, now - 1), rows(3, now + 60_000)]) await db.insertInto('device_challenges').values(chunk).execute();
      const retired = (n: number, expiresAt: number) => Array.from({ length: n }, () => ({ token_hash: randomBytes(32).toString('hex'), user_id: 'u', device_id: 'd', retired_at: now - 1, expires_at: expiresAt }));
      await db.insertInto('retired_device_tokens').values([...retired(250, now), ...retired(2, now + 1)]).execute();

      const { createDevicesRepository } = await import('../../src/store/devices.repository.ts');
      const repo = createDevicesRepository(db, createHistory({ webhooks: false }));
      assert.equal(await repo.deleteExpiredChallenges(now, 400), 400, 'one bounded batch per call (housekeeping loops)');
      let challenges = 400;
      for (let n; (n = await repo.deleteExpiredChallenges(now, 400)) > 0; ) challenges += n;
      assert.equal(challenges, 1500);
      assert.equal((await db.selectFrom('device_challenges').select('challenge_hash').execute()).length, 3);
      assert.equal(await repo.deleteExpiredRetiredTokens(now, 100), 100);
      assert.equal(await repo.deleteExpiredRetiredTokens(now, 1000), 150);
      assert.equal((await db.selectFrom('retired_device_tokens').select('token_hash').execute()).length, 2);
    });
  });
}

const pgKind = databaseKinds().find((k) => k.name === 'postgres');
if (!pgKind) {
  test('device-token rotation races and two instances (PostgreSQL)', (t) => t.skip('TEST_DATABASE_URL does not name PostgreSQL: NOT run'));
} else {
  describe('device-token rotation races and two instances (PostgreSQL)', () => {
    let db: TestDatabase;
    let a: TestApp;
    let b: TestApp;
    let instances: TwoInstances;

    before(async () => {
      instances = await twoInstances(pgKind);
      ({ db, a, b } = instances);
    });
    after(() => instances.close());

    test('two parallel bypass logins with one token → both succeed, exactly one rotates, no reuse detected (10 rounds)', async () => {
      const user = await mfaUser(a);
      const trusted = await trust(a, user, laptop());
      let token = trusted.deviceToken;
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all([a, b].map((instance) => login(instance, user, laptop({ deviceToken: token }))));
        for (const r of results) assert.equal(r.body.data?.mfa_bypassed, true, `round ${round}: ${r.res.body}`);
        const rotated = results.map((r) => r.body.data.device_token).filter((x) => typeof x === 'string');
        assert.equal(rotated.length, 1, `round ${round}: exactly one rotation (${JSON.stringify(results.map((r) => r.body.data.device_token))})`);
        token = rotated[0]!;
      }
      assert.equal(await deviceStatus(a, trusted.device.id), 'active');
      const events = await history(a, await freshToken(a, user));
      assert.equal(events.filter((e) => e.type === 'reuse_detected').length, 0);
      assert.equal(events.filter((e) => e.type === 'trust_used').length, 20);
      const retired = await db.handle.db.selectFrom('retired_device_tokens').select('token_hash').where('device_id', '=', trusted.device.id).execute();
      assert.equal(retired.length, 10, 'one retired token per rotation');
    });

    test('challenge from one instance, proof checked by the other; rotation on one, reuse caught by the other', async () => {
      const user = await mfaUser(a);
      const key = await makeDeviceKey();
      const trusted = await trust(a, user, laptop(), key);
      const first = await login(b, user, laptop({ deviceToken: trusted.deviceToken }), await proofHeader(a.app, key));
      assert.equal(first.body.data.mfa_bypassed, true, first.res.body);
      // The same proof replayed through the other instance: single-use everywhere.
      const replayed = await proofHeader(b.app, key);
      assert.equal((await login(a, user, laptop({ deviceToken: first.body.data.device_token }), replayed)).body.data.mfa_bypassed, true);
      assert.equal((await login(b, user, laptop({ deviceToken: first.body.data.device_token }), replayed)).body.data.mfa_required, true);
      a.clock.advance(31 * SECOND);
      const copy = await login(a, user, laptop({ deviceToken: trusted.deviceToken }));
      assert.equal(copy.body.data.mfa_required, true);
      assert.equal(await deviceStatus(b, trusted.device.id), 'revoked');
      assert.equal((await call(b.app, 'GET', '/api/v1/auth/me', undefined, { token: first.body.data.access_token })).res.statusCode, 401);
    });
  });
}
