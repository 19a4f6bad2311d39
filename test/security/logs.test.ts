/**
 * docs/security.md, logs (no secret is ever logged, query-string tokens included): with LOG_LEVEL=trace, a
 * full flow leaves no password, token, TOTP secret, backup code or raw
 * fingerprint in the captured logs.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { totpCode } from '../../src/features/mfa/totp.ts';
import { call, CHROME_MAC, createTestApp, databaseKinds, type Device, nextCode, type TestApp, uniqueEmail } from '../helpers/app.ts';

/** Client signals whose raw values are distinctive enough to search the logs for. */
const marker = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/** A six-digit code that matches no step within ±1 of now. */
function wrongCode(secret: string, now: number): string {
  const near = new Set([-1, 0, 1].map((d) => totpCode(secret, now + d * 30_000)));
  return ['000000', '111111', '222222', '333333'].find((c) => !near.has(c))!;
}

for (const kind of databaseKinds()) {
  describe(`logs hold no secrets (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, { env: { LOG_LEVEL: 'trace' } });
    });
    after(() => t.close());

    test('a full flow at LOG_LEVEL=trace logs no password, token, secret, backup code or raw fingerprint', async () => {
      const secrets = new Map<string, string>();
      const keep = (what: string, value: string) => {
        assert.equal(typeof value, 'string', what);
        assert.ok(value.length >= 6, `${what} is long enough to search for`);
        secrets.set(what, value);
        return value;
      };

      const signals = {
        timezone: marker('tz'),
        language: marker('lang'),
        platform: marker('plat'),
        screen: marker('screen'),
        canvas: marker('canvas'),
        webgl: marker('webgl'),
        color_depth: 24,
      };
      const fingerprintHeader = JSON.stringify(signals);
      const device: Device = { userAgent: CHROME_MAC, signals, ip: '203.0.113.77' };
      keep('x-device-fingerprint header', fingerprintHeader);
      for (const [name, value] of Object.entries(signals)) if (typeof value === 'string') keep(`signal ${name}`, value);

      const email = uniqueEmail('logs');
      const password = keep('password', `Pw-${randomBytes(8).toString('hex')}-A1`);
      const newPassword = keep('new password', `Pw-${randomBytes(8).toString('hex')}-B2`);

      const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email, password });
      assert.equal(signup.res.statusCode, 201);
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device });
      assert.equal(login.res.statusCode, 200);
      const firstAccess = keep('first access token', login.body.data.access_token);
      keep('first refresh token', login.body.data.refresh_token);

      const setup = await call(t.app, 'POST', '/api/v1/mfa/totp/setup', { device_name: 'Phone' }, { token: firstAccess });
      assert.equal(setup.res.statusCode, 200);
      const secret = keep('TOTP secret', setup.body.data.secret);
      keep('TOTP manual entry key', setup.body.data.manual_entry_key);
      keep('otpauth URL secret parameter', `secret=${secret}`);
      const enrolCode = totpCode(secret, t.clock.now());
      const verifySetup = await call(t.app, 'POST', '/api/v1/mfa/totp/verify', { code: enrolCode }, { token: firstAccess });
      assert.equal(verifySetup.res.statusCode, 200);
      const backupCodes: string[] = verifySetup.body.data.backup_codes;
      backupCodes.forEach((code, i) => {
        keep(`backup code ${i}`, code);
        keep(`backup code ${i} without dash`, code.replace('-', ''));
      });

      // MFA login: one wrong code (logged as a failure?), then the right one.
      const challenge = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device });
      assert.equal(challenge.body.data.mfa_required, true);
      const temporary = keep('temporary token', challenge.body.data.temporary_token);
      const wrong = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: temporary, code: wrongCode(secret, t.clock.now()) }, { device });
      assert.equal(wrong.res.statusCode, 400);
      const verified = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: temporary, code: nextCode(t, secret) }, { device });
      assert.equal(verified.res.statusCode, 200, verified.res.body);
      const access = keep('MFA access token', verified.body.data.access_token);
      const refresh = keep('MFA refresh token', verified.body.data.refresh_token);
      const activation = keep('activation token', verified.body.data.trusted_device.activation_token);

      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: activation, device_name: 'Laptop' }, { token: access, device });
      assert.equal(activate.res.statusCode, 200, activate.res.body);
      const deviceToken = keep('device token', activate.body.data.device_token);
      assert.match(String(activate.res.headers['set-cookie']), /td_device=/);

      // Bypass with the device token in the header, then with the cookie.
      const bypass = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device: { ...device, deviceToken } });
      assert.equal(bypass.body.data.mfa_bypassed, true, bypass.res.body);
      keep('bypass access token', bypass.body.data.access_token);
      keep('bypass refresh token', bypass.body.data.refresh_token);
      const cookieBypass = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device, cookies: { td_device: deviceToken } });
      assert.equal(cookieBypass.body.data.mfa_bypassed, true);
      keep('cookie bypass access token', cookieBypass.body.data.access_token);

      // A backup-code login and a wrong backup code.
      const second = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device: { ...device, userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0' } });
      const backupLogin = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: keep('second temporary token', second.body.data.temporary_token), backup_code: backupCodes[1] }, {
        device: { ...device, userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0' },
      });
      assert.equal(backupLogin.res.statusCode, 200, backupLogin.res.body);
      keep('backup login access token', backupLogin.body.data.access_token);

      const refreshed = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: refresh });
      assert.equal(refreshed.res.statusCode, 200);
      keep('rotated access token', refreshed.body.data.access_token);
      const rotated = keep('rotated refresh token', refreshed.body.data.refresh_token);
      // Reuse of the rotated-out token (logged as a warning) must not log the token. It ends that session.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: refresh })).res.statusCode, 401);
      const live: string = backupLogin.body.data.access_token;

      const listed = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: live, device: { ...device, deviceToken } });
      assert.equal(listed.res.statusCode, 200);

      const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, secret) }, { token: live });
      assert.equal(regen.res.statusCode, 200);
      (regen.body.data.backup_codes as string[]).forEach((code, i) => keep(`regenerated backup code ${i}`, code));

      const wrongChange = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: `${password}x`, new_password: newPassword }, { token: live });
      assert.equal(wrongChange.res.statusCode, 400);
      const change = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: password, new_password: newPassword }, { token: live, device });
      assert.equal(change.res.statusCode, 200, change.res.body);
      const wrongLogin = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device });
      assert.equal(wrongLogin.res.statusCode, 401);
      const finalLogin = await call(t.app, 'POST', '/api/v1/auth/login', { email, password: newPassword }, { device: { ...device, deviceToken } });
      assert.equal(finalLogin.body.data.mfa_required, true, 'the password change revoked the device');
      keep('final temporary token', finalLogin.body.data.temporary_token);
      // Requests that fail validation or parsing carry secrets too.
      await call(t.app, 'POST', '/api/v1/auth/login', { email, password: newPassword, extra: { nested: newPassword } }, { device });
      await call(t.app, 'POST', '/api/v1/auth/login', `{"email":"${email}","password":"${newPassword}"`, { device });
      await call(t.app, 'POST', '/api/v1/auth/login', { email, password: newPassword }, { device, headers: { 'content-type': 'text/plain' } });
      await call(t.app, 'GET', `/api/v1/auth/me?access_token=${access}&refresh_token=${rotated}`);
      await call(t.app, 'POST', '/api/v1/auth/logout', { refresh_token: rotated }, { token: live });

      const logs = t.logs.text;
      assert.ok(logs.split('\n').filter(Boolean).length >= 40, 'trace logging captured the requests');
      for (const line of logs.split('\n').filter(Boolean)) JSON.parse(line); // structured JSON lines only
      assert.ok(secrets.size >= 40);
      for (const [what, value] of secrets) {
        assert.ok(!logs.includes(value), `${what} appears in the logs`);
        // Nor in an obviously transformed form.
        assert.ok(!logs.includes(encodeURIComponent(value)), `${what} (URL-encoded) appears in the logs`);
        assert.ok(!logs.includes(JSON.stringify(value).slice(1, -1)), `${what} (JSON-escaped) appears in the logs`);
        assert.ok(!logs.includes(Buffer.from(value).toString('base64')), `${what} (base64) appears in the logs`);
      }
      // The SHA-256 of a token is what the database holds; it is not for the logs either.
      for (const what of ['device token', 'activation token', 'temporary token', 'MFA refresh token']) {
        assert.ok(!logs.includes(createHash('sha256').update(secrets.get(what)!).digest('hex')), `hash of the ${what} in the logs`);
      }
    });
  });
}
