/**
 * docs/sessions.md, "Bound sessions" and "Signed-out reasons": a session bound
 * to a key of its browser (session_key) refreshes only with a fresh proof of
 * that key; another key's proof ends it; a device signed out from elsewhere is
 * told why. SQLite and PostgreSQL; the race with "sign out everywhere" on two
 * PostgreSQL instances.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  call,
  createTestApp,
  databaseKinds,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  nextCode,
  signupAndLogin,
  twoInstances,
  type TestApp,
  type TestUser,
  type TwoInstances,
} from '../helpers/app.ts';
import { fetchChallenge, makeDeviceKey, type TestDeviceKey } from '../helpers/device-keys.ts';
import type { SessionsRepository } from '../../src/store/sessions.repository.ts';

const SECOND = 1000;

/** A password sign-in (MFA off) bound to `key`. */
const boundLogin = (t: TestApp, user: TestUser, key: TestDeviceKey, device = laptop()) =>
  call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password, session_key: key.publicJwk }, { device });

const refresh = (t: TestApp, refreshToken: string, proof?: string, device = laptop()) =>
  call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: refreshToken }, { device, headers: proof === undefined ? {} : { 'x-session-proof': proof } });

const sign = async (key: TestDeviceKey, challenge: string) => `${challenge}.${await key.sign(challenge)}`;

/** Refresh as the web app does: ask, sign the challenge of the 401, send again. */
async function refreshWithKey(t: TestApp, refreshToken: string, key: TestDeviceKey) {
  const first = await refresh(t, refreshToken);
  assert.equal(first.res.statusCode, 401, first.res.body);
  assert.equal(first.body.error.code, 'SESSION_PROOF_REQUIRED');
  return refresh(t, refreshToken, await sign(key, first.body.error.details.challenge));
}

async function events(t: TestApp, token: string): Promise<any[]> {
  const res = await call(t.app, 'GET', '/api/v1/devices/events?limit=100', undefined, { token });
  assert.equal(res.res.statusCode, 200, res.res.body);
  return res.body.data.events;
}

const mailKinds = async (t: TestApp, userId: string) =>
  (await t.db.handle.db.selectFrom('mail_outbox').select('kind').where('user_id', '=', userId).execute()).map((r) => r.kind);

for (const kind of databaseKinds()) {
  describe(`bound sessions (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('session_key binds the session: bound and kind in the view, short access tokens, the key stored as a normalised JWK with its thumbprint', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const key = await makeDeviceKey();
      const login = await boundLogin(t, user, key);
      assert.equal(login.res.statusCode, 200, login.res.body);
      assert.equal(login.body.data.expires_in, 300);
      const list = await call(t.app, 'GET', '/api/v1/sessions', undefined, { token: login.body.data.access_token });
      const current = list.body.data.sessions.find((s: any) => s.is_current);
      assert.equal(current.bound, true);
      assert.equal(current.binding, 'webcrypto');
      const other = list.body.data.sessions.find((s: any) => !s.is_current);
      assert.equal(other.bound, false, 'a sign-in without a key is unbound');
      assert.equal(other.binding, null);
      const row = await t.db.handle.db.selectFrom('sessions').selectAll().where('id', '=', current.id).executeTakeFirstOrThrow();
      assert.deepEqual(JSON.parse(row.binding_key_jwk!), { kty: 'EC', crv: 'P-256', x: key.publicJwk.x, y: key.publicJwk.y });
      assert.match(row.binding_thumbprint!, /^[A-Za-z0-9_-]{43}$/);
      // The access token lives 300 s: at 300 s it is refused.
      t.clock.advance(299 * SECOND);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: login.body.data.access_token })).res.statusCode, 200);
      t.clock.advance(1 * SECOND);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: login.body.data.access_token })).res.statusCode, 401);
    });

    test('unbound sessions work as before: refresh without a proof, access tokens of ACCESS_TOKEN_TTL_SECONDS', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const res = await refresh(t, user.refreshToken);
      assert.equal(res.res.statusCode, 200, res.res.body);
      assert.equal(res.body.data.expires_in, 900);
    });

    test('a bound session’s refresh token replayed by a script without the key → refused every time, nothing rotated; the browser with the key refreshes', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const key = await makeDeviceKey();
      const login = await boundLogin(t, user, key);
      const stolen: string = login.body.data.refresh_token;
      for (const proof of [undefined, '', 'garbage', `${await fetchChallenge(t.app)}.${'A'.repeat(86)}x`]) {
        const res = await refresh(t, stolen, proof, laptop({ ip: '192.0.2.66' }));
        assert.equal(res.res.statusCode, 401, res.res.body);
        assert.equal(res.body.error.code, 'SESSION_PROOF_REQUIRED');
        assert.match(res.body.error.details.challenge, /^tdc_[A-Za-z0-9_-]{43}$/);
        assert.equal(res.body.error.details.expires_in, 60);
      }
      // Through the cookie too: the cookie is kept for the retry with the proof.
      const viaCookie = await call(t.app, 'POST', '/api/v1/auth/refresh', undefined, { cookies: { td_refresh: stolen }, headers: { 'x-refresh-cookie': '1' } });
      assert.equal(viaCookie.body.error.code, 'SESSION_PROOF_REQUIRED');
      assert.equal(viaCookie.res.headers['set-cookie'], undefined, 'the refresh cookie is not cleared');

      const real = await refreshWithKey(t, stolen, key);
      assert.equal(real.res.statusCode, 200, real.res.body);
      assert.equal(real.body.data.expires_in, 300);
      // The successor is bound too.
      const again = await refresh(t, real.body.data.refresh_token);
      assert.equal(again.body.error.code, 'SESSION_PROOF_REQUIRED');
    });

    test('a proof is single-use across endpoints: a spent challenge, or one used by a device login, is refused', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const key = await makeDeviceKey();
      const login = await boundLogin(t, user, key);
      const challenge = await fetchChallenge(t.app);
      const proof = await sign(key, challenge);
      const first = await refresh(t, login.body.data.refresh_token, proof);
      assert.equal(first.res.statusCode, 200, first.res.body);
      const replay = await refresh(t, first.body.data.refresh_token, proof);
      assert.equal(replay.body.error.code, 'SESSION_PROOF_REQUIRED');
      const expired = await fetchChallenge(t.app);
      t.clock.advance(61 * SECOND);
      const late = await refresh(t, first.body.data.refresh_token, await sign(key, expired));
      assert.equal(late.body.error.code, 'SESSION_PROOF_REQUIRED', 'an expired challenge is refused');
      const ok = await refreshWithKey(t, first.body.data.refresh_token, key);
      assert.equal(ok.res.statusCode, 200);
      // A challenge spent by a device proof (a key-bound device's login) cannot serve a session proof, nor the reverse.
      await enableMfa(t, user);
      const step = await loginStep(t, user, laptop());
      const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: step.body.data.temporary_token, code: nextCode(t, user.totpSecret!), session_key: key.publicJwk }, { device: laptop() });
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verify.body.data.trusted_device.activation_token, public_key: key.publicJwk }, { token: verify.body.data.access_token, device: laptop() });
      assert.equal(activate.res.statusCode, 200, activate.res.body);
      const shared = await sign(key, await fetchChallenge(t.app));
      const deviceLogin = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ deviceToken: activate.body.data.device_token }), headers: { 'x-device-proof': shared } });
      assert.equal(deviceLogin.body.data.mfa_bypassed, true, deviceLogin.res.body);
      const reusedByRefresh = await refresh(t, verify.body.data.refresh_token, shared);
      assert.equal(reusedByRefresh.body.error.code, 'SESSION_PROOF_REQUIRED', 'a device proof’s challenge served a session proof');
      const sessionFirst = await sign(key, await fetchChallenge(t.app));
      assert.equal((await refresh(t, verify.body.data.refresh_token, sessionFirst)).res.statusCode, 200);
      const reusedByLogin = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ deviceToken: deviceLogin.body.data.device_token }), headers: { 'x-device-proof': sessionFirst } });
      assert.equal(reusedByLogin.body.data.mfa_required, true, 'a session proof’s challenge served a device proof');
    });

    test('another key’s proof ends the session: proof_failed row, session_proof_failed event, alert; the other sessions live on', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const key = await makeDeviceKey();
      const login = await boundLogin(t, user, key);
      const copyKey = await makeDeviceKey();
      const challenge = await fetchChallenge(t.app);
      const res = await refresh(t, login.body.data.refresh_token, await sign(copyKey, challenge), laptop({ ip: '192.0.2.66' }));
      assert.equal(res.res.statusCode, 401, res.res.body);
      assert.equal(res.body.error.code, 'INVALID_TOKEN');
      assert.equal(res.body.error.details.cause, 'proof_failed');
      // Ended everywhere at once: its access token, and the real browser's refresh with the right key.
      const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: login.body.data.access_token });
      assert.equal(me.res.statusCode, 401);
      assert.equal(me.body.error.details.cause, 'proof_failed');
      const realAfter = await refresh(t, login.body.data.refresh_token, await sign(key, await fetchChallenge(t.app)));
      assert.equal(realAfter.res.statusCode, 401);
      assert.equal(realAfter.body.error.details.cause, 'proof_failed');
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 200, 'the other session lives');
      const history = await events(t, user.accessToken);
      const failed = history.filter((e) => e.type === 'session_proof_failed');
      assert.equal(failed.length, 1);
      assert.equal(failed[0].ip_address, '192.0.2.66');
      const revoked = history.filter((e) => e.type === 'session_revoked');
      assert.equal(revoked.length, 1);
      assert.equal(revoked[0].cause, 'proof_failed');
      assert.ok((await mailKinds(t, user.userId)).includes('alert_session_proof_failed'));
    });

    test('another key’s proof ends the pending activation issued from the session (MFA verify with session_key)', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const key = await makeDeviceKey();
      const step = await loginStep(t, user, laptop());
      const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: step.body.data.temporary_token, code: nextCode(t, user.totpSecret!), session_key: key.publicJwk }, { device: laptop() });
      assert.equal(verify.res.statusCode, 200, verify.res.body);
      assert.equal(verify.body.data.expires_in, 300);
      const bad = await refresh(t, verify.body.data.refresh_token, await sign(await makeDeviceKey(), await fetchChallenge(t.app)));
      assert.equal(bad.body.error.details.cause, 'proof_failed');
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verify.body.data.trusted_device.activation_token }, { token: user.accessToken, device: laptop() });
      assert.equal(activate.res.statusCode, 410, activate.res.body);
    });

    test('session_key that is not a public P-256 JWK → 422 naming session_key (VALIDATION_ERROR for the shape, INVALID_PUBLIC_KEY for the rest); at MFA verify the code stays usable', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const good = (await makeDeviceKey()).publicJwk;
      const bad: Array<[string, unknown]> = [
        ['private part', { ...good, d: 'A'.repeat(43) }],
        ['other curve', { ...good, crv: 'P-384' }],
        ['RSA', { kty: 'RSA', crv: 'P-256', x: good.x, y: good.y, n: 'AQAB', e: 'AQAB' }],
        ['not on the curve', { ...good, y: good.x }],
        ['short coordinate', { ...good, x: 'AAAA' }],
      ];
      for (const [label, jwk] of bad) {
        const res = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password, session_key: jwk }, { device: laptop() });
        assert.equal(res.res.statusCode, 422, `${label}: ${res.res.body}`);
        // The shape (kty, crv, 43-character coordinates) is the schema's (VALIDATION_ERROR); the rest is checked in code (INVALID_PUBLIC_KEY).
        assert.ok(['INVALID_PUBLIC_KEY', 'VALIDATION_ERROR'].includes(res.body.error.code), label);
        assert.ok(res.body.error.details.some((d: { field: string }) => d.field.startsWith('session_key')), `${label}: ${res.res.body}`);
      }
      const notObject = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password, session_key: 'x' }, { device: laptop() });
      assert.equal(notObject.res.statusCode, 422);
      await enableMfa(t, user);
      const step = await loginStep(t, user, laptop());
      const code = nextCode(t, user.totpSecret!);
      const refused = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: step.body.data.temporary_token, code, session_key: { ...good, d: 'A'.repeat(43) } }, { device: laptop() });
      assert.equal(refused.res.statusCode, 422);
      const ok = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: step.body.data.temporary_token, code, session_key: good }, { device: laptop() });
      assert.equal(ok.res.statusCode, 200, ok.res.body);
    });
  });

  describe(`signed-out reasons (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('a session ended from elsewhere says why, when and by whom, to the bearer check and to the refresh', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const other = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      const list = await call(t.app, 'GET', '/api/v1/sessions', undefined, { token: other.body.data.access_token });
      const laptopSession = list.body.data.sessions.find((s: any) => !s.is_current);
      const end = await call(t.app, 'DELETE', `/api/v1/sessions/${laptopSession.id}`, undefined, { token: other.body.data.access_token });
      assert.equal(end.res.statusCode, 200, end.res.body);
      const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
      assert.equal(me.res.statusCode, 401);
      assert.equal(me.body.error.code, 'UNAUTHORIZED');
      assert.equal(me.body.error.details.cause, 'signed_out_elsewhere');
      assert.equal(me.body.error.details.ended_by, 'Firefox on Windows');
      assert.equal(me.body.error.details.ended_at, new Date(t.clock.now()).toISOString());
      const res = await refresh(t, user.refreshToken);
      assert.equal(res.res.statusCode, 401);
      assert.equal(res.body.error.details.cause, 'signed_out_elsewhere');
      // Only the session's own tokens learn it: an unknown refresh token says nothing.
      const unknown = await refresh(t, `tdr_${'A'.repeat(43)}`);
      assert.equal(unknown.res.statusCode, 401);
      assert.equal(unknown.body.error.details, undefined);
    });

    test('device revoked (by whom), password changed, expired', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      // Device revoked from another device's devices page.
      const { trustDevice } = await import('../helpers/app.ts');
      const trusted = await trustDevice(t, user, laptop());
      const phone = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: phone.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      const revoke = await call(t.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: verify.body.data.access_token });
      assert.equal(revoke.res.statusCode, 200, revoke.res.body);
      const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: trusted.accessToken });
      assert.equal(me.body.error.details.cause, 'device_revoked');
      assert.equal(me.body.error.details.ended_by, 'Firefox on Windows');

      const pw = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: user.password, new_password: 'Another-Pass-7' }, { token: verify.body.data.access_token });
      assert.equal(pw.res.statusCode, 200, pw.res.body);
      const meAfter = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
      assert.equal(meAfter.body.error.details.cause, 'password_changed');

      const fresh = await signupAndLogin(t.app, laptop());
      t.clock.advance(8 * 86_400 * SECOND); // SESSION_IDLE_DAYS (7) passes before the refresh token (30 days) expires
      const expired = await refresh(t, fresh.refreshToken);
      assert.equal(expired.res.statusCode, 401);
      assert.equal(expired.body.error.details?.cause, 'expired', expired.res.body);
    });
  });
}

const pg = databaseKinds().find((k) => k.name === 'postgres');
if (!pg) {
  test('bound refresh racing "sign out everywhere" (PostgreSQL)', (t) => t.skip('TEST_DATABASE_URL does not name PostgreSQL: NOT run'));
} else {
  describe('bound refresh racing "sign out everywhere" (two instances, PostgreSQL)', () => {
    let instances: TwoInstances;
    let rotated: () => void = () => {};
    let pauseMs = 0;
    before(async () => {
      // Instance b pauses after it has rotated the refresh token (proof checked, challenge consumed), before the session's UPDATE.
      instances = await twoInstances(pg, {
        wrapSessionsRepository: (repository: SessionsRepository): SessionsRepository => ({
          ...repository,
          async rotateRefreshToken(...args: Parameters<SessionsRepository['rotateRefreshToken']>) {
            const result = await repository.rotateRefreshToken(...args);
            if (pauseMs > 0) {
              rotated();
              await new Promise((resolve) => setTimeout(resolve, pauseMs));
            }
            return result;
          },
        }),
      });
    });
    after(() => instances.close());

    test('once "sign out everywhere" has returned, no token of the session is live', async () => {
      const { a, b } = instances;
      for (let round = 0; round < 3; round++) {
        const user = await signupAndLogin(a.app, laptop());
        const key = await makeDeviceKey();
        const login = await boundLogin(a, user, key);
        pauseMs = 300;
        const rotation = new Promise<void>((resolve) => (rotated = resolve));
        const refreshing = refresh(b, login.body.data.refresh_token, await sign(key, await fetchChallenge(a.app)));
        await rotation;
        const out = await call(a.app, 'DELETE', '/api/v1/sessions', undefined, { token: user.accessToken });
        pauseMs = 0;
        assert.equal(out.res.statusCode, 200, out.res.body);
        const res = await refreshing;
        if (res.res.statusCode === 200) {
          for (const instance of [a, b]) {
            const me = await call(instance.app, 'GET', '/api/v1/auth/me', undefined, { token: res.body.data.access_token });
            assert.equal(me.res.statusCode, 401, 'a refreshed token outlived "sign out everywhere"');
          }
          const next = await refresh(a, res.body.data.refresh_token, await sign(key, await fetchChallenge(a.app)));
          assert.equal(next.res.statusCode, 401);
        } else {
          assert.equal(res.res.statusCode, 401, res.res.body);
        }
        assert.equal((await call(b.app, 'GET', '/api/v1/auth/me', undefined, { token: login.body.data.access_token })).res.statusCode, 401);
      }
    });
  });
}
