/**
 * Step-up (docs/step-up.md): the claims every way of signing in gives
 * (auth_time, amr, acr) and that a refresh keeps; the sensitive operations
 * of the one list refused without a recent factor (a stale session, a
 * trusted device that stood in for the second factor) with the RFC 9470
 * header — parsed by `auth-header`, not by a pattern of our own — and
 * accepted right after a step-up; the step-up itself (each factor, its
 * refusals, its limit, its event).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parse as parseAuthHeader } from 'auth-header';
import { decodeJwt } from 'jose';
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
  nextCode,
  signupAndLogin,
  type TestApp,
  type TestUser,
  trustDevice,
} from '../helpers/app.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';
import { SENSITIVE_OPERATIONS } from '../../src/domain/step-up.ts';
import { ACR } from '../../src/platform/authn-methods.ts';

const API = '/api/v1';
const MAX_AGE_MS = 600_000;
const phone = (): Device => ({ userAgent: FIREFOX_WINDOWS, signals: { timezone: 'UTC', platform: 'Win32' }, ip: '198.51.100.7' });

type Res = Awaited<ReturnType<typeof call>>;

/** The claims of an access token (read without verifying: the signature is the JWKS tests' business). */
const claims = (token: string) => decodeJwt(token) as { auth_time: number; amr: string[]; acr: string; sid: string };

/** A 401 STEP_UP_REQUIRED in the envelope, with its WWW-Authenticate challenge parsed by auth-header. */
function assertStepUpRequired(res: Res, expected: { acr: boolean; maxAge?: number; description?: string }) {
  assert.equal(res.res.statusCode, 401, res.res.body);
  assert.equal(res.body.success, false);
  assert.equal(res.body.error.code, 'STEP_UP_REQUIRED');
  const header = res.res.headers['www-authenticate'];
  assert.equal(typeof header, 'string');
  const challenge = parseAuthHeader(header as string);
  assert.equal(challenge.scheme, 'Bearer');
  assert.equal(challenge.params.error, 'insufficient_user_authentication');
  assert.equal(typeof challenge.params.error_description, 'string');
  if (expected.description) assert.equal(challenge.params.error_description, expected.description);
  assert.equal(challenge.params.max_age, String(expected.maxAge ?? 600));
  assert.equal(res.body.error.details.max_age, expected.maxAge ?? 600);
  if (expected.acr) {
    assert.equal(challenge.params.acr_values, ACR.multiFactor);
    assert.equal(res.body.error.details.acr_values, ACR.multiFactor);
  } else {
    assert.equal(challenge.params.acr_values, undefined, 'no acr_values when the password is enough');
    assert.deepEqual(res.body.error.details.methods, ['password']);
  }
}

const passed = (res: Res, label: string) => {
  assert.notEqual(res.body?.error?.code, 'STEP_UP_REQUIRED', `${label}: ${res.res.body}`);
  assert.ok(res.res.statusCode < 300, `${label}: ${res.res.statusCode} ${res.res.body}`);
};

for (const kind of databaseKinds()) {
  describe(`step-up (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    const stepUp = (token: string, body: unknown, device?: Device) => call(t.app, 'POST', `${API}/auth/step-up`, body, { token, ...(device ? { device } : {}) });

    /** A user with TOTP on, and a session that performed password + TOTP on `device`. */
    async function mfaUser(device: Device = laptop()): Promise<TestUser & { secret: string; backupCodes: string[] }> {
      const user = await signupAndLogin(t.app, device);
      const { secret, backupCodes } = await enableMfa(t, user);
      const verified = await loginWithMfa(t, user, device);
      return { ...user, accessToken: verified.access_token, refreshToken: verified.refresh_token, secret, backupCodes };
    }

    /** A session on a trusted device: the password, with the device standing in for the second factor. */
    async function trustedDeviceSession(user: TestUser & { secret: string }) {
      const device = phone();
      const { deviceToken } = await trustDevice(t, user, device);
      const login = await loginStep(t, user, { ...device, deviceToken });
      assert.equal(login.body.data.mfa_bypassed, true, login.res.body);
      return login.body.data.access_token as string;
    }

    /**
     * Every operation of the one list, as a request with a body it accepts.
     * `prepare` runs before (with a fresh factor) and gives what the request needs.
     */
    const operations: Record<string, { prepare?: (user: TestUser & { secret?: string }, token: string) => Promise<unknown>; send: (user: TestUser & { secret?: string }, token: string, prepared: any) => Promise<Res> }> = {
      disableMfa: { send: (user, token) => call(t.app, 'POST', `${API}/mfa/deactivate`, { password: user.password }, { token }) },
      regenerateBackupCodes: { send: (user, token) => call(t.app, 'POST', `${API}/mfa/backup-codes/regenerate`, { code: nextCode(t, user.secret!) }, { token }) },
      webauthnRegisterOptions: { send: (_user, token) => call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token }) },
      webauthnRegisterVerify: {
        // The options are asked with a fresh factor; the verify is what is tested.
        prepare: async (_user, token) => {
          const options = await call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token });
          assert.equal(options.res.statusCode, 200, options.res.body);
          return new SoftAuthenticator().register(options.body.data.options).response;
        },
        send: (_user, token, response) => call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response }, { token }),
      },
      removeWebauthnCredential: {
        prepare: async (_user, token) => {
          const options = await call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token });
          const registered = await call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response: new SoftAuthenticator().register(options.body.data.options).response }, { token });
          assert.equal(registered.res.statusCode, 200, registered.res.body);
          return registered.body.data.credential.id;
        },
        send: (_user, token, id) => call(t.app, 'DELETE', `${API}/mfa/webauthn/credentials/${id}`, undefined, { token }),
      },
      changePassword: { send: (user, token) => call(t.app, 'POST', `${API}/auth/password/change`, { current_password: user.password, new_password: 'Another-Horse-8' }, { token }) },
      revokeAllDevices: { send: (_user, token) => call(t.app, 'DELETE', `${API}/devices`, undefined, { token }) },
      endSessions: { send: (_user, token) => call(t.app, 'DELETE', `${API}/sessions`, undefined, { token }) },
    };

    test('the tests cover every operation of the one list, and the list has no admin route', () => {
      assert.deepEqual(Object.keys(operations).sort(), SENSITIVE_OPERATIONS.map((o) => o.operationId).sort());
      for (const o of SENSITIVE_OPERATIONS) assert.ok(!o.path.startsWith('/api/v1/admin'), o.path);
    });

    test('the OpenAPI document gives every sensitive operation its 401 with the WWW-Authenticate header, and no other operation', () => {
      const doc = (t.app as any).swagger();
      const gated = new Set(SENSITIVE_OPERATIONS.map((o) => o.operationId));
      let seen = 0;
      for (const item of Object.values<any>(doc.paths)) {
        for (const operation of Object.values<any>(item)) {
          if (typeof operation?.operationId !== 'string') continue;
          const documented = operation.responses?.['401']?.headers?.['WWW-Authenticate'] !== undefined;
          assert.equal(documented, gated.has(operation.operationId), operation.operationId);
          if (documented) seen++;
        }
      }
      assert.equal(seen, gated.size);
    });

    for (const [operationId, operation] of Object.entries(operations)) {
      describe(operationId, () => {
        test('a session whose factor is older than the window: 401 STEP_UP_REQUIRED; after a TOTP step-up it runs', async () => {
          const user = await mfaUser();
          const prepared = await operation.prepare?.(user, user.accessToken);
          t.clock.advance(MAX_AGE_MS + 1_000);
          const refused = await operation.send(user, user.accessToken, prepared);
          assertStepUpRequired(refused, { acr: true, description: 'More recent authentication is required' });
          assert.deepEqual(refused.body.error.details.methods.slice(0, 2), ['totp', 'backup_code']);

          const up = await stepUp(user.accessToken, { code: nextCode(t, user.secret) });
          assert.equal(up.res.statusCode, 200, up.res.body);
          assert.equal(claims(up.body.data.access_token).sid, claims(user.accessToken).sid, 'the same session');
          // A registration challenge lives 5 minutes: the one prepared before the wait has expired, so a new one is asked for.
          const fresh = operationId === 'webauthnRegisterVerify' ? await operation.prepare!(user, up.body.data.access_token) : prepared;
          passed(await operation.send(user, up.body.data.access_token, fresh), operationId);
        });

        test('a trusted-device session (the device stood in for the second factor): 401 at once; after a backup-code step-up it runs', async () => {
          const user = await mfaUser();
          const token = await trustedDeviceSession(user);
          const prepared = operation.prepare ? await operation.prepare(user, user.accessToken) : undefined;
          const refused = await operation.send(user, token, prepared);
          assertStepUpRequired(refused, { acr: true, description: 'A trusted device stood in for the second factor; perform it now' });

          const up = await stepUp(token, { backup_code: user.backupCodes[0] }, phone());
          assert.equal(up.res.statusCode, 200, up.res.body);
          assert.deepEqual(up.body.data.amr, ['pwd', 'otp', 'mfa'], 'the device no longer stands in: a factor was performed');
          passed(await operation.send(user, up.body.data.access_token, prepared), operationId);
        });
      });
    }

    describe('accounts without a second factor re-enter the password', () => {
      for (const operationId of ['changePassword', 'revokeAllDevices', 'endSessions', 'webauthnRegisterOptions'] as const) {
        test(`${operationId}: stale → 401 without acr_values; the password steps up`, async () => {
          const user = await signupAndLogin(t.app);
          passed(await operations[operationId]!.send(user, user.accessToken, undefined), `${operationId} right after sign-in`);
          const again = await signupAndLogin(t.app);
          t.clock.advance(MAX_AGE_MS + 1_000);
          assertStepUpRequired(await operations[operationId]!.send(again, again.accessToken, undefined), { acr: false });
          const wrong = await stepUp(again.accessToken, { password: 'Not-The-Password-1' });
          assert.equal(wrong.res.statusCode, 400, wrong.res.body);
          assert.equal(wrong.body.error.code, 'INVALID_CURRENT_PASSWORD');
          const up = await stepUp(again.accessToken, { password: again.password });
          assert.equal(up.res.statusCode, 200, up.res.body);
          assert.deepEqual(up.body.data.amr, ['pwd']);
          assert.equal(up.body.data.acr, ACR.singleFactor);
          passed(await operations[operationId]!.send(again, up.body.data.access_token, undefined), operationId);
        });
      }
    });

    test('the window is STEP_UP_MAX_AGE_SECONDS: at the limit it passes, a second later it does not (max_age in the header)', async () => {
      const short = await createTestApp(kind, { env: { STEP_UP_MAX_AGE_SECONDS: '60' } });
      try {
        const user = await signupAndLogin(short.app);
        short.clock.advance(60_000);
        passed(await call(short.app, 'DELETE', `${API}/sessions?except_current=true`, undefined, { token: user.accessToken }), 'at 60 s');
        short.clock.advance(1_000);
        assertStepUpRequired(await call(short.app, 'DELETE', `${API}/sessions?except_current=true`, undefined, { token: user.accessToken }), { acr: false, maxAge: 60 });
      } finally {
        await short.close();
      }
    });

    test('a refused sensitive operation changes nothing and spends no code', async () => {
      const user = await mfaUser();
      t.clock.advance(MAX_AGE_MS + 1_000);
      const code = nextCode(t, user.secret);
      assertStepUpRequired(await call(t.app, 'POST', `${API}/mfa/backup-codes/regenerate`, { code }, { token: user.accessToken }), { acr: true });
      const status = await call(t.app, 'GET', `${API}/mfa/status`, undefined, { token: user.accessToken });
      assert.equal(status.body.data.backup_codes_remaining, 10);
      // The code the refused request carried was not checked, so it still steps up.
      assert.equal((await stepUp(user.accessToken, { code })).res.statusCode, 200);
    });

    describe('claims: auth_time, amr and acr for every way a session opens, kept by a refresh', () => {
      async function refreshed(refreshToken: string) {
        const res = await call(t.app, 'POST', `${API}/auth/refresh`, { refresh_token: refreshToken });
        assert.equal(res.res.statusCode, 200, res.res.body);
        return res.body.data as { access_token: string; refresh_token: string };
      }
      async function assertClaims(tokens: { access_token: string; refresh_token: string }, amr: string[], acr: string, authTimeMs: number) {
        const c = claims(tokens.access_token);
        assert.deepEqual(c.amr, amr);
        assert.equal(c.acr, acr);
        assert.equal(c.auth_time, Math.floor(authTimeMs / 1000));
        t.clock.advance(120_000);
        const next = await refreshed(tokens.refresh_token);
        const r = claims(next.access_token);
        assert.deepEqual([r.amr, r.acr, r.auth_time], [amr, acr, c.auth_time], 'a refresh is no factor: the claims stay');
      }

      test('password only', async () => {
        const before = t.clock.now();
        const user = await signupAndLogin(t.app);
        await assertClaims({ access_token: user.accessToken, refresh_token: user.refreshToken }, ['pwd'], ACR.singleFactor, before);
      });

      test('password + TOTP, password + backup code, and a trusted device standing in for the second factor', async () => {
        const user = await mfaUser();
        const viaTotp = await loginWithMfa(t, user, laptop());
        await assertClaims(viaTotp, ['pwd', 'otp', 'mfa'], ACR.multiFactor, t.clock.now());

        const challenge = await loginStep(t, user, laptop());
        const at = t.clock.now();
        const viaBackup = await call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: challenge.body.data.temporary_token, backup_code: user.backupCodes[1] }, { device: laptop() });
        assert.equal(viaBackup.res.statusCode, 200, viaBackup.res.body);
        await assertClaims(viaBackup.body.data, ['pwd', 'otp', 'mfa'], ACR.multiFactor, at);

        const device = phone();
        const { deviceToken } = await trustDevice(t, user, device);
        const bypass = await loginStep(t, user, { ...device, deviceToken });
        assert.equal(bypass.body.data.mfa_bypassed, true);
        await assertClaims(bypass.body.data, ['pwd', 'device'], ACR.singleFactor, t.clock.now());
      });

      test('WebAuthn as the second factor, and a passkey without a password (a synced passkey is swk, a security key hwk)', async () => {
        const user = await signupAndLogin(t.app);
        const register = async (key: SoftAuthenticator, token: string) => {
          const options = await call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token });
          const res = await call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response: key.register(options.body.data.options).response }, { token });
          assert.equal(res.res.statusCode, 200, res.res.body);
          return res.body.data.credential;
        };
        const key = new SoftAuthenticator();
        const credential = await register(key, user.accessToken);
        const amrOfKey = credential.device_type === 'multi_device' ? 'swk' : 'hwk';

        const challenge = await loginStep(t, user, laptop());
        const options = await call(t.app, 'POST', `${API}/auth/mfa/webauthn/options`, { temporary_token: challenge.body.data.temporary_token }, { device: laptop() });
        const at = t.clock.now();
        const verified = await call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: challenge.body.data.temporary_token, webauthn: key.assert(options.body.data.options) }, { device: laptop() });
        assert.equal(verified.res.statusCode, 200, verified.res.body);
        await assertClaims(verified.body.data, ['pwd', amrOfKey, 'mfa'], ACR.multiFactor, at);

        const attempt = await call(t.app, 'POST', `${API}/auth/passkey/options`, {}, { device: laptop() });
        const at2 = t.clock.now();
        const passkey = await call(t.app, 'POST', `${API}/auth/passkey/verify`, { attempt_token: attempt.body.data.attempt_token, response: key.assert(attempt.body.data.options) }, { device: laptop() });
        assert.equal(passkey.res.statusCode, 200, passkey.res.body);
        await assertClaims(passkey.body.data, [amrOfKey, 'mfa'], ACR.multiFactor, at2);

        // A passkey session is multi-factor: a sensitive operation runs at once.
        passed(await call(t.app, 'DELETE', `${API}/sessions?except_current=true`, undefined, { token: passkey.body.data.access_token }), 'passkey session');
      });

      test('a step-up moves auth_time (and the amr) for the session; the next refresh keeps the new values', async () => {
        const user = await mfaUser();
        const verified = await loginWithMfa(t, user, laptop());
        t.clock.advance(MAX_AGE_MS + 60_000);
        const up = await stepUp(verified.access_token, { code: nextCode(t, user.secret) });
        assert.equal(up.res.statusCode, 200, up.res.body);
        assert.equal(up.body.data.auth_time, new Date(t.clock.now()).toISOString());
        assert.equal(up.body.data.refresh_token, undefined, 'the refresh token is untouched');
        const c = claims(up.body.data.access_token);
        assert.equal(c.auth_time, Math.floor(t.clock.now() / 1000));
        assert.equal(c.sid, claims(verified.access_token).sid);
        t.clock.advance(60_000);
        const next = await refreshed(verified.refresh_token);
        assert.equal(claims(next.access_token).auth_time, c.auth_time);
        const events = await call(t.app, 'GET', `${API}/devices/events?limit=5`, undefined, { token: next.access_token });
        const stepped = events.body.data.events.find((e: any) => e.type === 'step_up');
        assert.ok(stepped, 'a step_up event');
        assert.equal(stepped.session_id, c.sid);
      });
    });

    describe('the step-up itself', () => {
      test('exactly one factor; the password only without a second factor; a second factor only with one', async () => {
        const user = await mfaUser();
        for (const body of [{}, { code: '123456', password: 'x' }]) {
          const res = await stepUp(user.accessToken, body);
          assert.equal(res.res.statusCode, 422, res.res.body);
        }
        const byPassword = await stepUp(user.accessToken, { password: user.password });
        assert.equal(byPassword.res.statusCode, 400, 'the password does not step up an account that has a second factor');
        assert.equal(byPassword.body.error.code, 'STEP_UP_METHOD_NOT_AVAILABLE');
        const plain = await signupAndLogin(t.app);
        const byCode = await stepUp(plain.accessToken, { code: '123456' });
        assert.equal(byCode.res.statusCode, 400, byCode.res.body);
        assert.equal(byCode.body.error.code, 'STEP_UP_METHOD_NOT_AVAILABLE');
        assert.equal((await call(t.app, 'POST', `${API}/auth/step-up`, { code: '123456' })).res.statusCode, 401, 'a session is needed');
      });

      test('a wrong code is 400 and counts: the tenth wrong one in 15 minutes locks the second factor (429), as at sign-in', async () => {
        const user = await mfaUser();
        const code = nextCode(t, user.secret);
        const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
        for (let i = 1; i < 10; i++) {
          const res = await stepUp(user.accessToken, { code: wrong });
          assert.equal(res.res.statusCode, 400, `attempt ${i}: ${res.res.body}`);
          assert.equal(res.body.error.code, 'INVALID_MFA_CODE');
        }
        const tenth = await stepUp(user.accessToken, { code: wrong });
        assert.equal(tenth.res.statusCode, 429, tenth.res.body);
        const locked = await stepUp(user.accessToken, { code });
        assert.equal(locked.res.statusCode, 429, 'locked: even the right code waits');
        assert.ok(Number(locked.res.headers['retry-after']) > 0);
      });

      test('a WebAuthn step-up answers a challenge of this session only, once', async () => {
        const user = await signupAndLogin(t.app);
        const key = new SoftAuthenticator();
        const options = await call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token: user.accessToken });
        await call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response: key.register(options.body.data.options).response }, { token: user.accessToken });
        const other = await call(t.app, 'POST', `${API}/auth/passkey/options`, {}, { device: laptop() });
        const otherSession = (await call(t.app, 'POST', `${API}/auth/passkey/verify`, { attempt_token: other.body.data.attempt_token, response: key.assert(other.body.data.options) }, { device: laptop() })).body.data.access_token;

        const mine = await call(t.app, 'POST', `${API}/auth/step-up/webauthn/options`, undefined, { token: user.accessToken });
        assert.equal(mine.res.statusCode, 200, mine.res.body);
        const answer = key.assert(mine.body.data.options);
        const foreign = await stepUp(otherSession, { webauthn: answer });
        assert.equal(foreign.res.statusCode, 400, 'another session cannot use this session\'s challenge');
        assert.equal(foreign.body.error.code, 'WEBAUTHN_VERIFICATION_FAILED');
        const fresh = await call(t.app, 'POST', `${API}/auth/step-up/webauthn/options`, undefined, { token: user.accessToken });
        const ok = await stepUp(user.accessToken, { webauthn: key.assert(fresh.body.data.options) });
        assert.equal(ok.res.statusCode, 200, ok.res.body);
        assert.equal(ok.body.data.acr, ACR.multiFactor);
        assert.equal((await stepUp(user.accessToken, { webauthn: key.assert(fresh.body.data.options) })).res.statusCode, 400, 'used once');
      });

      test('an ended session cannot step up', async () => {
        const user = await mfaUser();
        await call(t.app, 'POST', `${API}/auth/logout`, {}, { token: user.accessToken });
        const res = await stepUp(user.accessToken, { code: nextCode(t, user.secret) });
        assert.equal(res.res.statusCode, 401);
        assert.equal(res.body.error.code, 'UNAUTHORIZED');
      });
    });
  });
}
