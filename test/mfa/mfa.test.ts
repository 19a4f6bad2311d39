/**
 * TOTP MFA (README "API overview": mfa/verify; lockout and single use in docs/security.md): enrolment,
 * status, backup codes, deactivation, the login challenge and its limits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { totpCode } from '../../src/features/mfa/totp.ts';
import {
  call,
  createTestApp,
  databaseKinds,
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

const MINUTE = 60_000;

/** A six-digit code that is not the right one for any step within ±1 of now. */
function wrongCode(secret: string, now: number): string {
  const near = new Set([-1, 0, 1].map((d) => totpCode(secret, now + d * 30_000)));
  for (let n = 0; ; n++) {
    const candidate = String((123_456 + n * 7_919) % 1_000_000).padStart(6, '0');
    if (!near.has(candidate)) return candidate;
  }
}

const assertEnvelope = (body: any, code: string) => {
  assert.equal(body.success, false);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.request_id, 'string');
};

for (const kind of databaseKinds()) {
  describe(`mfa (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    const setup = (user: TestUser, body: unknown = {}) => call(t.app, 'POST', '/api/v1/mfa/totp/setup', body, { token: user.accessToken });
    const confirm = (user: TestUser, code: string) => call(t.app, 'POST', '/api/v1/mfa/totp/verify', { code }, { token: user.accessToken });
    const status = (user: TestUser) => call(t.app, 'GET', '/api/v1/mfa/status', undefined, { token: user.accessToken });
    const verify = (body: Record<string, unknown>, device = laptop()) => call(t.app, 'POST', '/api/v1/auth/mfa/verify', body, { device });

    /** Login from `device` and return the temporary token of the challenge. */
    async function challenge(user: TestUser, device = laptop()): Promise<string> {
      const login = await loginStep(t, user, device);
      assert.equal(login.res.statusCode, 200, login.res.body);
      assert.equal(login.body.data.mfa_required, true);
      return login.body.data.temporary_token;
    }

    describe('enrolment', () => {
      test('setup returns the secret, otpauth URL, a PNG QR code and the manual key; MFA stays off', async () => {
        const user = await signupAndLogin(t.app);
        const { res, body } = await setup(user, { device_name: 'Pixel' });
        assert.equal(res.statusCode, 200);
        assert.equal(body.success, true);
        const data = body.data;
        assert.deepEqual(Object.keys(data).sort(), ['manual_entry_key', 'otpauth_url', 'qr_code', 'secret']);
        assert.match(data.secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
        const url = new URL(data.otpauth_url);
        assert.equal(url.protocol, 'otpauth:');
        assert.equal(url.host, 'totp');
        assert.equal(url.searchParams.get('secret'), data.secret);
        assert.equal(url.searchParams.get('algorithm'), 'SHA1');
        assert.equal(url.searchParams.get('digits'), '6');
        assert.equal(url.searchParams.get('period'), '30');
        assert.ok(decodeURIComponent(url.pathname).includes(user.email));
        assert.match(data.qr_code, /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
        const png = Buffer.from(data.qr_code.slice('data:image/png;base64,'.length), 'base64');
        assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
        assert.equal(data.manual_entry_key.replace(/ /g, ''), data.secret);

        const st = await status(user);
        assert.deepEqual(st.body.data, { mfa_enabled: false, methods: [], backup_codes_remaining: 0 });
        const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
        assert.equal(me.body.data.mfa_enabled, false);
        // A pending setup does not turn on the login challenge.
        const login = await loginStep(t, user, laptop());
        assert.equal(login.res.statusCode, 200);
        assert.equal(login.body.data.mfa_required, undefined);
        assert.equal(typeof login.body.data.access_token, 'string');
      });

      test('verify with the right code turns MFA on and returns 10 distinct backup codes', async () => {
        const user = await signupAndLogin(t.app);
        const secret = (await setup(user)).body.data.secret;
        const { res, body } = await confirm(user, totpCode(secret, t.clock.now()));
        assert.equal(res.statusCode, 200);
        assert.equal(body.data.mfa_enabled, true);
        assert.equal(body.data.backup_codes.length, 10);
        assert.equal(new Set(body.data.backup_codes).size, 10);
        for (const code of body.data.backup_codes) assert.match(code, /^[a-z2-9]{5}-[a-z2-9]{5}$/);
        const st = await status(user);
        assert.deepEqual(st.body.data, { mfa_enabled: true, methods: ['totp', 'backup_code'], backup_codes_remaining: 10 });
      });

      test('a second setup once enabled is 409 TOTP_ALREADY_ENABLED and the secret is unchanged', async () => {
        const user = await signupAndLogin(t.app);
        const { secret } = await enableMfa(t, user);
        const again = await setup(user);
        assert.equal(again.res.statusCode, 409);
        assertEnvelope(again.body, 'TOTP_ALREADY_ENABLED');
        // Verify again is 409 too, and the original secret still logs in.
        const reverify = await confirm(user, totpCode(secret, t.clock.now()));
        assert.equal(reverify.res.statusCode, 409);
        const data = await loginWithMfa(t, user, laptop());
        assert.equal(typeof data.access_token, 'string');
      });

      test('a new setup before verifying replaces the pending secret', async () => {
        const user = await signupAndLogin(t.app);
        const first = (await setup(user)).body.data.secret;
        const second = (await setup(user)).body.data.secret;
        assert.notEqual(first, second);
        const oldCode = totpCode(first, t.clock.now());
        // (A one-in-a-million collision with the new secret's codes would make this check meaningless; skip it then.)
        if (![-1, 0, 1].some((d) => totpCode(second, t.clock.now() + d * 30_000) === oldCode)) {
          assert.equal((await confirm(user, oldCode)).res.statusCode, 400);
        }
        assert.equal((await confirm(user, totpCode(second, t.clock.now()))).res.statusCode, 200);
      });

      test('verify with a wrong code is 400 INVALID_CODE and MFA stays off', async () => {
        const user = await signupAndLogin(t.app);
        const secret = (await setup(user)).body.data.secret;
        const { res, body } = await confirm(user, wrongCode(secret, t.clock.now()));
        assert.equal(res.statusCode, 400);
        assertEnvelope(body, 'INVALID_CODE');
        assert.equal((await status(user)).body.data.mfa_enabled, false);
      });

      test('verify without a setup is 400 NO_PENDING_SETUP', async () => {
        const user = await signupAndLogin(t.app);
        const { res, body } = await confirm(user, '123456');
        assert.equal(res.statusCode, 400);
        assertEnvelope(body, 'NO_PENDING_SETUP');
      });

      test('verify with a malformed code is 422 VALIDATION_ERROR naming code', async () => {
        const user = await signupAndLogin(t.app);
        await setup(user);
        const { res, body } = await confirm(user, '12ab56');
        assert.equal(res.statusCode, 422);
        assertEnvelope(body, 'VALIDATION_ERROR');
        assert.deepEqual(body.error.details.map((d: any) => d.field), ['code']);
      });

      test('3 wrong codes lock enrolment for 60 s (even the right code), then it works again', async () => {
        const user = await signupAndLogin(t.app);
        const secret = (await setup(user)).body.data.secret;
        for (let i = 0; i < 3; i++) {
          const r = await confirm(user, wrongCode(secret, t.clock.now()));
          assert.equal(r.res.statusCode, 400, `wrong code #${i + 1}`);
        }
        const locked = await confirm(user, totpCode(secret, t.clock.now()));
        assert.equal(locked.res.statusCode, 429);
        assertEnvelope(locked.body, 'TOO_MANY_ATTEMPTS');
        const retryAfter = Number(locked.res.headers['retry-after']);
        assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${retryAfter}`);

        t.clock.advance(59_000);
        assert.equal((await confirm(user, totpCode(secret, t.clock.now()))).res.statusCode, 429, 'still locked at 59 s');
        t.clock.advance(2_000);
        const unlocked = await confirm(user, totpCode(secret, t.clock.now()));
        assert.equal(unlocked.res.statusCode, 200, unlocked.res.body);
        assert.equal(unlocked.body.data.mfa_enabled, true);
      });

      test('starting the setup again does not lift the 60 s lock', async () => {
        const user = await signupAndLogin(t.app);
        const first = (await setup(user)).body.data.secret;
        for (let i = 0; i < 3; i++) await confirm(user, wrongCode(first, t.clock.now()));
        const restarted = await setup(user);
        assert.equal(restarted.res.statusCode, 200);
        const secret = restarted.body.data.secret;
        assert.equal((await confirm(user, totpCode(secret, t.clock.now()))).res.statusCode, 429);
        t.clock.advance(61_000);
        assert.equal((await confirm(user, totpCode(secret, t.clock.now()))).res.statusCode, 200);
      });

      test('every MFA route needs a bearer token', async () => {
        for (const [method, url] of [
          ['POST', '/api/v1/mfa/totp/setup'],
          ['POST', '/api/v1/mfa/totp/verify'],
          ['GET', '/api/v1/mfa/status'],
          ['POST', '/api/v1/mfa/backup-codes/regenerate'],
          ['POST', '/api/v1/mfa/deactivate'],
        ] as const) {
          const { res, body } = await call(t.app, method, url, method === 'POST' ? { code: '123456' } : undefined);
          assert.equal(res.statusCode, 401, url);
          assertEnvelope(body, 'UNAUTHORIZED');
          assert.equal(res.headers['www-authenticate'], 'Bearer');
        }
      });
    });

    describe('status and backup codes', () => {
      test('backup_codes_remaining decreases as backup codes are used', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        for (const [i, code] of backupCodes.slice(0, 2).entries()) {
          const r = await verify({ temporary_token: await challenge(user), backup_code: code });
          assert.equal(r.res.statusCode, 200, r.res.body);
          assert.equal((await status(user)).body.data.backup_codes_remaining, 9 - i);
        }
      });

      test('a backup code is accepted in upper case and without the dash', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        const typed = backupCodes[0]!.replace('-', '').toUpperCase();
        const r = await verify({ temporary_token: await challenge(user), backup_code: typed });
        assert.equal(r.res.statusCode, 200, r.res.body);
        // ... and it was the same code: its canonical form is now used up.
        const again = await verify({ temporary_token: await challenge(user), backup_code: backupCodes[0] });
        assert.equal(again.res.statusCode, 400);
      });

      test('regenerate: the old codes stop working, the new ones work', async () => {
        const user = await signupAndLogin(t.app);
        const { secret, backupCodes: old } = await enableMfa(t, user);
        const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, secret) }, { token: user.accessToken });
        assert.equal(regen.res.statusCode, 200, regen.res.body);
        const fresh: string[] = regen.body.data.backup_codes;
        assert.equal(fresh.length, 10);
        assert.equal(new Set(fresh).size, 10);
        assert.ok(fresh.every((c) => !old.includes(c)));
        assert.equal((await status(user)).body.data.backup_codes_remaining, 10);

        const withOld = await verify({ temporary_token: await challenge(user), backup_code: old[0] });
        assert.equal(withOld.res.statusCode, 400);
        assertEnvelope(withOld.body, 'INVALID_MFA_CODE');
        const withNew = await verify({ temporary_token: await challenge(user), backup_code: fresh[0] });
        assert.equal(withNew.res.statusCode, 200, withNew.res.body);
        assert.equal((await status(user)).body.data.backup_codes_remaining, 9);
      });

      test('regenerating backup codes revokes trusted devices', async () => {
        const user = await signupAndLogin(t.app);
        const { secret } = await enableMfa(t, user);
        const { deviceToken } = await trustDevice(t, user, laptop());
        const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, secret) }, { token: user.accessToken });
        assert.equal(regen.body.data.devices_revoked, 1);
        const login = await loginStep(t, user, laptop({ deviceToken }));
        assert.equal(login.body.data.mfa_required, true);
      });

      test('regenerate with a wrong code is 400 INVALID_CODE and keeps the old codes', async () => {
        const user = await signupAndLogin(t.app);
        const { secret, backupCodes } = await enableMfa(t, user);
        const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: wrongCode(secret, t.clock.now()) }, { token: user.accessToken });
        assert.equal(regen.res.statusCode, 400);
        assertEnvelope(regen.body, 'INVALID_CODE');
        const r = await verify({ temporary_token: await challenge(user), backup_code: backupCodes[3] });
        assert.equal(r.res.statusCode, 200, r.res.body);
      });

      test('regenerate without MFA is refused', async () => {
        const user = await signupAndLogin(t.app);
        const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: '123456' }, { token: user.accessToken });
        assert.equal(regen.res.statusCode, 400);
        assertEnvelope(regen.body, 'MFA_NOT_ENABLED');
      });
    });

    describe('deactivation', () => {
      for (const by of ['code', 'password'] as const) {
        test(`deactivate by ${by}: wrong → 400, right → MFA off and login no longer asks for it`, async () => {
          const user = await signupAndLogin(t.app);
          const { secret } = await enableMfa(t, user);
          const deactivate = (body: unknown) => call(t.app, 'POST', '/api/v1/mfa/deactivate', body, { token: user.accessToken });

          const wrong = await deactivate(by === 'code' ? { code: wrongCode(secret, t.clock.now()) } : { password: 'Wrong-Password-1' });
          assert.equal(wrong.res.statusCode, 400);
          assert.equal(wrong.body.success, false);
          assert.equal((await status(user)).body.data.mfa_enabled, true, 'still on after a wrong attempt');

          const right = await deactivate(by === 'code' ? { code: nextCode(t, secret) } : { password: user.password });
          assert.equal(right.res.statusCode, 200, right.res.body);
          assert.equal(right.body.data.mfa_enabled, false);
          assert.deepEqual((await status(user)).body.data, { mfa_enabled: false, methods: [], backup_codes_remaining: 0 });

          const login = await loginStep(t, user, laptop());
          assert.equal(login.res.statusCode, 200);
          assert.equal(login.body.data.mfa_required, undefined);
          assert.equal(login.body.data.mfa_bypassed, false);
          assert.equal(typeof login.body.data.access_token, 'string');
          // MFA can be set up again afterwards.
          assert.equal((await setup(user)).res.statusCode, 200);
        });
      }

      test('deactivating MFA revokes trusted devices: after turning it on again the old device token needs MFA', async () => {
        const user = await signupAndLogin(t.app);
        const { secret } = await enableMfa(t, user);
        const { deviceToken } = await trustDevice(t, user, laptop());
        assert.equal((await loginStep(t, user, laptop({ deviceToken }))).body.data.mfa_bypassed, true);
        const off = await call(t.app, 'POST', '/api/v1/mfa/deactivate', { code: nextCode(t, secret) }, { token: user.accessToken });
        assert.equal(off.res.statusCode, 200);
        assert.equal(off.body.data.devices_revoked, 1);
        await enableMfa(t, user);
        const login = await loginStep(t, user, laptop({ deviceToken }));
        assert.equal(login.body.data.mfa_required, true);
      });

      test('deactivate needs exactly one of code or password (422), and MFA on (400)', async () => {
        const user = await signupAndLogin(t.app);
        const none = await call(t.app, 'POST', '/api/v1/mfa/deactivate', {}, { token: user.accessToken });
        assert.equal(none.res.statusCode, 422);
        const off = await call(t.app, 'POST', '/api/v1/mfa/deactivate', { password: user.password }, { token: user.accessToken });
        assert.equal(off.res.statusCode, 400);
        assertEnvelope(off.body, 'MFA_NOT_ENABLED');
      });
    });

    describe('login with MFA', () => {
      test('login answers the challenge exactly as README "API overview" describes', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const { res, body } = await loginStep(t, user, laptop());
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['cache-control'], 'no-store');
        assert.equal(body.success, true);
        assert.equal(typeof body.message, 'string');
        assert.deepEqual(Object.keys(body.data).sort(), ['expires_in', 'methods', 'mfa_reason', 'mfa_required', 'temporary_token']);
        assert.equal(body.data.mfa_reason, 'new_device');
        assert.equal(body.data.mfa_required, true);
        assert.match(body.data.temporary_token, /^tdm_[A-Za-z0-9_-]{43}$/);
        assert.deepEqual(body.data.methods, ['totp', 'backup_code']);
        assert.equal(body.data.expires_in, 300);
      });

      test('mfa/verify returns the session and a pending trusted device', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const temporary_token = await challenge(user);
        const { res, body } = await verify({ temporary_token, code: nextCode(t, user.totpSecret!) });
        assert.equal(res.statusCode, 200, res.body);
        const d = body.data;
        for (const key of ['access_token', 'refresh_token', 'token_type', 'expires_in', 'user_id', 'email', 'display_name', 'trusted_device']) {
          assert.ok(key in d, `data.${key}`);
        }
        assert.equal(d.token_type, 'bearer');
        assert.equal(d.expires_in, 900);
        assert.equal(d.user_id, user.userId);
        assert.equal(d.email, user.email);
        assert.match(d.refresh_token, /^tdr_[A-Za-z0-9_-]{43}$/);
        assert.equal(d.access_token.split('.').length, 3);
        const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: d.access_token });
        assert.equal(me.body.data.user_id, user.userId);
        assert.equal(me.body.data.mfa_enabled, true);

        const device = d.trusted_device;
        for (const key of ['id', 'device_name', 'device_fingerprint', 'activation_token', 'expires_at', 'is_active']) {
          assert.ok(key in device, `trusted_device.${key}`);
        }
        assert.match(device.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.match(device.activation_token, /^tda_[A-Za-z0-9_-]{43}$/);
        assert.equal(device.is_active, false);
        assert.equal(device.device_name, 'Chrome on macOS');
        assert.match(device.device_fingerprint, /^[0-9a-f]{64}$/);
        assert.equal(device.expires_at, new Date(t.clock.now() + 300_000).toISOString());
      });

      test('the temporary token is single-use', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const temporary_token = await challenge(user);
        assert.equal((await verify({ temporary_token, code: nextCode(t, user.totpSecret!) })).res.statusCode, 200);
        const again = await verify({ temporary_token, code: nextCode(t, user.totpSecret!) });
        assert.equal(again.res.statusCode, 401);
        assertEnvelope(again.body, 'INVALID_TOKEN');
      });

      test('concurrent verifies of one temporary token: exactly one session', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        const temporary_token = await challenge(user);
        const code = nextCode(t, user.totpSecret!);
        const results = await Promise.all([
          ...Array.from({ length: 6 }, () => verify({ temporary_token, code })),
          ...backupCodes.slice(0, 4).map((backup_code) => verify({ temporary_token, backup_code })),
        ]);
        const statuses = results.map((r) => r.res.statusCode);
        assert.equal(statuses.filter((s) => s === 200).length, 1, String(statuses));
        // The losers are refused: a replayed step or a used token (400/401), or 429 once the replays burnt the token.
        assert.ok(statuses.every((s) => [200, 400, 401, 429].includes(s)), String(statuses));
        assert.equal((await verify({ temporary_token, code: nextCode(t, user.totpSecret!) })).res.statusCode, 401, 'used');
      });

      test('the temporary token lives 300 s: 299 s → 200, 301 s → 401 INVALID_TOKEN', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const early = await challenge(user);
        t.clock.advance(299_000);
        const ok = await verify({ temporary_token: early, code: totpCode(user.totpSecret!, t.clock.now()) });
        assert.equal(ok.res.statusCode, 200, ok.res.body);

        const late = await challenge(user);
        t.clock.advance(301_000);
        const expired = await verify({ temporary_token: late, code: totpCode(user.totpSecret!, t.clock.now()) });
        assert.equal(expired.res.statusCode, 401);
        assertEnvelope(expired.body, 'INVALID_TOKEN');
      });

      test('the temporary token is bound to the fingerprint of the login request', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const temporary_token = await challenge(user, laptop());
        const code = nextCode(t, user.totpSecret!);
        const otherBrowser = await verify({ temporary_token, code }, laptop({ userAgent: FIREFOX_WINDOWS }));
        assert.equal(otherBrowser.res.statusCode, 401);
        assertEnvelope(otherBrowser.body, 'INVALID_TOKEN');
        const otherSignals = await verify({ temporary_token, code }, laptop({ signals: { timezone: 'Asia/Tokyo' } }));
        assert.equal(otherSignals.res.statusCode, 401);
        // The refused attempts did not consume it or its code: the right device still succeeds.
        const same = await verify({ temporary_token, code }, laptop());
        assert.equal(same.res.statusCode, 200, same.res.body);
      });

      test('unknown, malformed and other-kind temporary tokens are 401 INVALID_TOKEN', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        for (const token of [`tdm_${'A'.repeat(43)}`, 'tdm_short', user.refreshToken, 'x']) {
          const r = await verify({ temporary_token: token, code: '123456' });
          assert.equal(r.res.statusCode, 401, token);
          assertEnvelope(r.body, 'INVALID_TOKEN');
        }
      });

      test('code and backup_code: exactly one is required (422)', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        const temporary_token = await challenge(user);
        const neither = await verify({ temporary_token });
        assert.equal(neither.res.statusCode, 422);
        const both = await verify({ temporary_token, code: nextCode(t, user.totpSecret!), backup_code: backupCodes[0] });
        assert.equal(both.res.statusCode, 422);
        assert.equal((await verify({ temporary_token, backup_code: backupCodes[0] })).res.statusCode, 200);
      });

      test('a TOTP time step is accepted once', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const first = await challenge(user);
        const second = await challenge(user);
        const code = nextCode(t, user.totpSecret!);
        assert.equal((await verify({ temporary_token: first, code })).res.statusCode, 200);
        const replay = await verify({ temporary_token: second, code });
        assert.equal(replay.res.statusCode, 400);
        assertEnvelope(replay.body, 'MFA_CODE_ALREADY_USED');
        // The code of the previous step (still inside the ±1 window) is refused too.
        const previous = totpCode(user.totpSecret!, t.clock.now() - 30_000);
        const older = await verify({ temporary_token: second, code: previous });
        assert.equal(older.res.statusCode, 400);
        assertEnvelope(older.body, 'MFA_CODE_ALREADY_USED');
        // The next step works.
        assert.equal((await verify({ temporary_token: second, code: nextCode(t, user.totpSecret!) })).res.statusCode, 200);
      });

      test('the code that just turned MFA on, sent again at sign-in: MFA_CODE_ALREADY_USED, and no attempt is counted', async () => {
        const user = await signupAndLogin(t.app);
        const secret: string = (await setup(user)).body.data.secret;
        const code = totpCode(secret, t.clock.now());
        assert.equal((await confirm(user, code)).res.statusCode, 200);
        // Same 30 s window: the person types the code their app still shows.
        const tokens = [await challenge(user), await challenge(user), await challenge(user)];
        const answers: Array<[number, string, unknown]> = [];
        // 12 replays over three sign-ins: more than one sign-in's 5 attempts and the user's 10.
        for (const [i, temporary_token] of tokens.entries()) {
          for (let n = 0; n < (i === 2 ? 2 : 5); n++) {
            const r = await verify({ temporary_token, code });
            answers.push([r.res.statusCode, r.body.error?.code, r.body.error?.details?.attempts_remaining]);
          }
        }
        assert.deepEqual(new Set(answers.map((a) => JSON.stringify(a))), new Set([JSON.stringify([400, 'MFA_CODE_ALREADY_USED', 5])]), JSON.stringify(answers));
        // A wrong code afterwards still has the full count left: 4 after it, not fewer.
        const wrong = await verify({ temporary_token: tokens[0]!, code: wrongCode(secret, t.clock.now()) });
        assertEnvelope(wrong.body, 'INVALID_MFA_CODE');
        assert.equal(wrong.body.error.details.attempts_remaining, 4);
        // The user's second factor is not locked either: the next code signs in.
        const next = await verify({ temporary_token: tokens[1]!, code: nextCode(t, secret) });
        assert.equal(next.res.statusCode, 200, next.res.body);
        // Step-up with the code just used: the same answer (docs/step-up.md).
        const stepUp = await call(t.app, 'POST', '/api/v1/auth/step-up', { code: totpCode(secret, t.clock.now()) }, { token: next.body.data.access_token, device: laptop() });
        assert.equal(stepUp.res.statusCode, 400, stepUp.res.body);
        assertEnvelope(stepUp.body, 'MFA_CODE_ALREADY_USED');
      });

      test('±1 step of drift is accepted, 2 steps is not', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        t.clock.advance(5 * 30_000);
        const late = await verify({ temporary_token: await challenge(user), code: totpCode(user.totpSecret!, t.clock.now() - 2 * 30_000) });
        assert.equal(late.res.statusCode, 400);
        const drift = await verify({ temporary_token: await challenge(user), code: totpCode(user.totpSecret!, t.clock.now() - 30_000) });
        assert.equal(drift.res.statusCode, 200, drift.res.body);
      });

      test('a backup code is accepted once', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        const ok = await verify({ temporary_token: await challenge(user), backup_code: backupCodes[0] });
        assert.equal(ok.res.statusCode, 200, ok.res.body);
        const again = await verify({ temporary_token: await challenge(user), backup_code: backupCodes[0] });
        assert.equal(again.res.statusCode, 400);
        assertEnvelope(again.body, 'INVALID_MFA_CODE');
      });

      test('a wrong code is 400 INVALID_MFA_CODE and leaves the token usable', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const temporary_token = await challenge(user);
        const wrong = await verify({ temporary_token, code: wrongCode(user.totpSecret!, t.clock.now()) });
        assert.equal(wrong.res.statusCode, 400);
        assertEnvelope(wrong.body, 'INVALID_MFA_CODE');
        assert.equal((await verify({ temporary_token, code: nextCode(t, user.totpSecret!) })).res.statusCode, 200);
      });

      test('5 wrong codes burn the temporary token; the right code afterwards fails', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const temporary_token = await challenge(user);
        const statuses: number[] = [];
        const remaining: unknown[] = [];
        let last: any;
        for (let i = 0; i < 5; i++) {
          last = await verify({ temporary_token, code: wrongCode(user.totpSecret!, t.clock.now()) });
          statuses.push(last.res.statusCode);
          remaining.push(last.body.error.details?.attempts_remaining);
        }
        assert.deepEqual(statuses, [400, 400, 400, 400, 429]);
        assert.deepEqual(remaining, [4, 3, 2, 1, 0], 'clients can show the attempts left');
        // Waiting does not help (the token is burnt): the answer says the sign-in must restart.
        assert.equal(last.body.error.details.restart_sign_in, true);
        const right = await verify({ temporary_token, code: nextCode(t, user.totpSecret!) });
        assert.equal(right.res.statusCode, 401);
        assertEnvelope(right.body, 'INVALID_TOKEN');
        // The user is not locked by 5 failures: a new login works.
        const fresh = await verify({ temporary_token: await challenge(user), code: nextCode(t, user.totpSecret!) });
        assert.equal(fresh.res.statusCode, 200, fresh.res.body);
      });

      test('wrong backup codes count like wrong TOTP codes', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const temporary_token = await challenge(user);
        for (let i = 0; i < 4; i++) {
          assert.equal((await verify({ temporary_token, backup_code: `zzzzz-zzzz${i + 2}` })).res.statusCode, 400);
        }
        assert.equal((await verify({ temporary_token, backup_code: 'zzzzz-zzzzz' })).res.statusCode, 429);
      });

      test('10 wrong codes per user in 15 minutes lock the second factor for 15 minutes', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const secret = user.totpSecret!;
        // 4 wrong codes on each of two tokens, then 2 on a third: 10 in all, no token burnt by its own limit.
        const results: number[] = [];
        for (const count of [4, 4, 2]) {
          const token = await challenge(user);
          for (let i = 0; i < count; i++) {
            t.clock.advance(10_000);
            results.push((await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) })).res.statusCode);
          }
        }
        assert.deepEqual(results, [400, 400, 400, 400, 400, 400, 400, 400, 400, 429]);
        const lockedAt = t.clock.now();

        // Correct password + correct code: still locked.
        const token = await challenge(user);
        const locked = await verify({ temporary_token: token, code: nextCode(t, secret) });
        assert.equal(locked.res.statusCode, 429);
        assertEnvelope(locked.body, 'TOO_MANY_ATTEMPTS');
        const retryAfter = Number(locked.res.headers['retry-after']);
        assert.ok(retryAfter > 14 * 60 && retryAfter <= 15 * 60, `Retry-After ${retryAfter}`);
        // A backup code does not get around the lock either.
        t.clock.set(lockedAt + 14 * MINUTE + 50_000);
        const stillLocked = await verify({ temporary_token: await challenge(user), code: totpCode(secret, t.clock.now()) });
        assert.equal(stillLocked.res.statusCode, 429, 'locked until 15 minutes have passed');

        // After the lock: the user's own correct login works again.
        t.clock.set(lockedAt + 15 * MINUTE + 1_000);
        const data = await loginWithMfa(t, user, laptop());
        assert.equal(typeof data.access_token, 'string');
        const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: data.access_token });
        assert.equal(me.res.statusCode, 200);
      });

      test('the user lock also refuses backup codes and guards regenerate and deactivate', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        const secret = user.totpSecret!;
        for (let round = 0; round < 2; round++) {
          const token = await challenge(user);
          for (let i = 0; i < 5; i++) await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) });
        }
        const backup = await verify({ temporary_token: await challenge(user), backup_code: backupCodes[0] });
        assert.equal(backup.res.statusCode, 429);
        const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, secret) }, { token: user.accessToken });
        assert.equal(regen.res.statusCode, 429);
        const off = await call(t.app, 'POST', '/api/v1/mfa/deactivate', { code: nextCode(t, secret) }, { token: user.accessToken });
        assert.equal(off.res.statusCode, 429);
        assert.equal((await status(user)).body.data.mfa_enabled, true);
        assert.equal((await status(user)).body.data.backup_codes_remaining, 10, 'the refused backup code was not used up');
      });

      test('failures older than 15 minutes do not count toward the lock', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const secret = user.totpSecret!;
        for (let round = 0; round < 2; round++) {
          const token = await challenge(user);
          for (let i = 0; i < (round === 0 ? 4 : 5); i++) await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) });
          if (round === 0) t.clock.advance(15 * MINUTE + 1_000);
        }
        // 9 failures in all, but only 5 within the window: not locked.
        const ok = await verify({ temporary_token: await challenge(user), code: nextCode(t, secret) });
        assert.equal(ok.res.statusCode, 200, ok.res.body);
      });

      test('a burst straddling the end of a 15-minute window is still locked', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const secret = user.totpSecret!;
        const fail = async (token: string) => (await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) })).res.statusCode;
        const start = t.clock.now();
        assert.equal(await fail(await challenge(user)), 400);
        // 8 more just before the 15 minutes since the first failure are over...
        t.clock.set(start + 14 * MINUTE + 50_000);
        let token = await challenge(user);
        for (let i = 0; i < 8; i++) {
          if (i === 4) token = await challenge(user);
          assert.equal(await fail(token), 400);
        }
        // ... and more just after: the 8 failures of 11 s ago are inside the last 15 minutes.
        t.clock.set(start + 15 * MINUTE + 1_000);
        const burst: number[] = [];
        token = await challenge(user);
        for (let i = 0; i < 4; i++) burst.push(await fail(token));
        const firstLock = burst.indexOf(429);
        assert.ok(firstLock !== -1 && firstLock <= 1, `locked by the 10th failure within 15 minutes: ${burst}`);
        assert.equal((await verify({ temporary_token: await challenge(user), code: nextCode(t, secret) })).res.statusCode, 429);
      });

      test('a correct second factor resets the per-user count', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const secret = user.totpSecret!;
        let token = await challenge(user);
        for (let i = 0; i < 4; i++) await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) });
        assert.equal((await verify({ temporary_token: token, code: nextCode(t, secret) })).res.statusCode, 200);
        token = await challenge(user);
        const statuses: number[] = [];
        for (let i = 0; i < 4; i++) statuses.push((await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) })).res.statusCode);
        token = await challenge(user);
        for (let i = 0; i < 4; i++) statuses.push((await verify({ temporary_token: token, code: wrongCode(secret, t.clock.now()) })).res.statusCode);
        assert.ok(statuses.every((s) => s === 400), `8 failures after a success are not a lock: ${statuses}`);
      });

      test('one user\'s lock does not affect another user', async () => {
        const alice = await signupAndLogin(t.app);
        const bob = await signupAndLogin(t.app);
        await enableMfa(t, alice);
        await enableMfa(t, bob);
        for (let round = 0; round < 2; round++) {
          const token = await challenge(alice);
          for (let i = 0; i < 5; i++) await verify({ temporary_token: token, code: wrongCode(alice.totpSecret!, t.clock.now()) });
        }
        assert.equal((await verify({ temporary_token: await challenge(alice), code: nextCode(t, alice.totpSecret!) })).res.statusCode, 429);
        assert.equal((await verify({ temporary_token: await challenge(bob), code: totpCode(bob.totpSecret!, t.clock.now()) })).res.statusCode, 200);
      });
    });

    describe('concurrent guesses', () => {
      async function mfaUser() {
        const user = await signupAndLogin(t.app, laptop());
        await enableMfa(t, user);
        return user;
      }

      test('parallel wrong codes on one temporary token: at most 5 are checked', async () => {
        const user = await mfaUser();
        const temporary_token = await challenge(user);
        const results = await Promise.all(
          Array.from({ length: 20 }, () => verify({ temporary_token, code: wrongCode(user.totpSecret!, t.clock.now()) })),
        );
        const checked = results.filter((r) => r.body.error.code === 'INVALID_MFA_CODE' || r.body.error.code === 'TOO_MANY_ATTEMPTS');
        assert.ok(checked.length <= 5, `checked ${checked.length}`);
        assert.ok(results.every((r) => [400, 401, 429].includes(r.res.statusCode)));
        const right = await verify({ temporary_token, code: nextCode(t, user.totpSecret!) });
        assert.equal(right.res.statusCode, 401);
      });

      test('parallel wrong codes over several tokens: at most 10 per user are checked, then the lock holds', async () => {
        const user = await mfaUser();
        const tokens = [];
        for (let i = 0; i < 6; i++) tokens.push(await challenge(user));
        const results = await Promise.all(
          tokens.flatMap((temporary_token) =>
            Array.from({ length: 4 }, () => verify({ temporary_token, code: wrongCode(user.totpSecret!, t.clock.now()) })),
          ),
        );
        const wrong = results.filter((r) => r.body.error.code === 'INVALID_MFA_CODE');
        assert.ok(wrong.length <= 9, `answered as wrong: ${wrong.length}`);
        const right = await verify({ temporary_token: await challenge(user), code: nextCode(t, user.totpSecret!) });
        assert.equal(right.res.statusCode, 429);
        assert.equal(right.body.error.code, 'TOO_MANY_ATTEMPTS');
      });
    });
  });
}
