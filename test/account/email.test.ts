import { webcrypto } from 'node:crypto';
/**
 * Account email against a real SMTP server (docs/email.md):
 * verification, password reset, security alerts and "This wasn't me".
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
  PASSWORD,
  signupAndLogin,
  trustDevice,
  loginWithMfa,
  type TestApp,
  type TestUser,
  uniqueEmail,
} from '../helpers/app.ts';
import { drain, linkToken, linkUrl, smtpTransport, TEST_PUBLIC_URL, TestSmtpServer, testSender } from '../helpers/mail.ts';
import { MINUTE, DAY, SECOND } from '../../src/platform/clock.ts';

const NEW_PASSWORD = 'Brand-New-Pass-7';

for (const kind of databaseKinds()) {
  describe(`account email (${kind.name})`, () => {
    let t: TestApp;
    let smtp: TestSmtpServer;
    let sender: ReturnType<typeof testSender>;
    /** Every secret the tests saw: none may appear in a mail, the outbox or a log. */
    const secrets = new Set<string>();

    before(async () => {
      t = await createTestApp(kind);
      smtp = await new TestSmtpServer().start();
      sender = testSender(t, smtpTransport(smtp));
    });
    after(async () => {
      await smtp.stop();
      await t.close();
    });

    const mailsTo = async (email: string) => {
      await drain(sender);
      return smtp.to(email);
    };
    const lastMailTo = async (email: string, subject: RegExp) => {
      const mails = (await mailsTo(email)).filter((m) => subject.test(m.subject));
      assert.ok(mails.length > 0, `no mail to ${email} matching ${subject}; got ${smtp.to(email).map((m) => m.subject).join(', ')}`);
      return mails[mails.length - 1]!;
    };

    async function mfaUser(): Promise<TestUser> {
      const user = await signupAndLogin(t.app, laptop());
      const { secret } = await enableMfa(t, user);
      secrets.add(secret);
      secrets.add(user.password);
      return user;
    }

    test('signup sends a verification link that works once; /auth/me shows email_verified', async () => {
      const user = await signupAndLogin(t.app, laptop());
      secrets.add(user.password);
      const mail = await lastMailTo(user.email, /^Confirm your email address$/);
      assert.equal(mail.to, user.email);
      assert.match(mail.parsed.from?.text ?? '', /no-reply@app\.test/);
      const url = linkUrl(mail);
      assert.ok(url.startsWith(`${TEST_PUBLIC_URL}/#/verify-email?token=tdv_`), url);
      assert.ok(mail.html.includes(url.replace(/&/g, '&amp;')), 'the HTML part carries the same link');
      const token = linkToken(mail);
      assert.equal(token.length, 4 + 43, 'a 256-bit token behind its prefix');

      let me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
      assert.equal(me.body.data.email_verified, false);

      const verify = await call(t.app, 'POST', '/api/v1/auth/email/verify', { token });
      assert.equal(verify.res.statusCode, 200);
      assert.equal(verify.body.data.email_verified, true);
      me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
      assert.equal(me.body.data.email_verified, true);

      const again = await call(t.app, 'POST', '/api/v1/auth/email/verify', { token });
      assert.equal(again.res.statusCode, 409);
      assert.equal(again.body.error.code, 'LINK_USED');
      for (const bad of ['nonsense', `tdv_${'A'.repeat(43)}`, token.replace('tdv_', 'tdw_')]) {
        const res = await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: bad });
        assert.equal(res.res.statusCode, 400);
        assert.equal(res.body.error.code, 'LINK_INVALID');
      }

      // Already verified: 202, nothing sent.
      const before = smtp.to(user.email).length;
      const resend = await call(t.app, 'POST', '/api/v1/auth/email/resend', undefined, { token: user.accessToken });
      assert.equal(resend.res.statusCode, 202);
      assert.equal(resend.body.data.email_verified, true);
      assert.equal((await mailsTo(user.email)).length, before);
    });

    test('resend (Bearer) sends a new link and retires the old one; a link expires after 24 h', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const first = linkToken(await lastMailTo(user.email, /Confirm your email/));
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/email/resend')).res.statusCode, 401);
      const resend = await call(t.app, 'POST', '/api/v1/auth/email/resend', undefined, { token: user.accessToken });
      assert.equal(resend.res.statusCode, 202);
      assert.equal(resend.body.data.email_verified, false);
      const mails = (await mailsTo(user.email)).filter((m) => /Confirm/.test(m.subject));
      assert.equal(mails.length, 2);
      const second = linkToken(mails[1]!);
      assert.notEqual(first, second);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: first })).res.statusCode, 409, 'the older link was retired');

      t.clock.advance(DAY + SECOND);
      const late = await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: second });
      assert.equal(late.res.statusCode, 410);
      assert.equal(late.body.error.code, 'LINK_EXPIRED');
    });

    test('forgot: the same 202 for a known and an unknown address; only the account gets a mail', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const unknown = uniqueEmail('nobody');
      const known = await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email.toUpperCase() }, { device: laptop() });
      const stranger = await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: unknown }, { device: laptop() });
      assert.equal(known.res.statusCode, 202);
      assert.equal(stranger.res.statusCode, 202);
      assert.deepEqual(known.body, stranger.body);
      // Both requests did the same single write: one outbox row each.
      const rows = await t.db.handle.db.selectFrom('mail_outbox').select(['recipient', 'status']).where('recipient', 'in', [user.email, unknown]).execute();
      assert.equal(rows.length, 2);
      const mail = await lastMailTo(user.email, /^Reset your password$/);
      assert.match(mail.text, /Chrome on macOS/);
      assert.match(mail.text, /203\.0\.113\.10/);
      assert.ok(linkUrl(mail).startsWith(`${TEST_PUBLIC_URL}/#/reset-password?token=tdw_`));
      assert.equal(smtp.to(unknown).length, 0);
      const dropped = await t.db.handle.db.selectFrom('mail_outbox').select('status').where('recipient', '=', unknown).executeTakeFirstOrThrow();
      assert.equal(dropped.status, 'dropped');
    });

    test('reset: single use, ends every session and device and pending MFA step; MFA is still asked', async () => {
      const user = await mfaUser();
      const { deviceToken, accessToken } = await trustDevice(t, user, laptop());
      secrets.add(deviceToken);
      // A pending second-factor step (from another browser) and a live refresh token.
      const pending = await loginStep(t, user, laptop({ userAgent: FIREFOX_WINDOWS, ip: '198.51.100.7' }));
      assert.equal(pending.body.data.mfa_required, true);

      await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
      const token = linkToken(await lastMailTo(user.email, /^Reset your password$/));

      const weak = await call(t.app, 'POST', '/api/v1/auth/password/reset', { token, new_password: 'weak' });
      assert.equal(weak.res.statusCode, 422);
      assert.equal(weak.body.error.code, 'INVALID_PASSWORD');

      const reset = await call(t.app, 'POST', '/api/v1/auth/password/reset', { token, new_password: NEW_PASSWORD });
      assert.equal(reset.res.statusCode, 200, reset.res.body);
      assert.equal(reset.body.data.devices_revoked, 1);
      secrets.add(NEW_PASSWORD);
      assert.equal('access_token' in reset.body.data, false, 'a reset never signs anyone in');

      const reuse = await call(t.app, 'POST', '/api/v1/auth/password/reset', { token, new_password: 'Another-Pass-8' });
      assert.equal(reuse.res.statusCode, 409);
      assert.equal(reuse.body.error.code, 'LINK_USED');

      // Sessions ended, the pending MFA step ended, the old password gone.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken })).res.statusCode, 401);
      const stale = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: pending.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device: laptop({ userAgent: FIREFOX_WINDOWS, ip: '198.51.100.7' }) });
      assert.equal(stale.res.statusCode, 401);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD })).res.statusCode, 401);
      // Every session ended (the password_reset row of what ends what): access tokens are refused at once.
      for (const token of [accessToken, user.accessToken]) {
        assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token })).res.statusCode, 401);
      }
      assert.equal(reset.body.data.sessions_ended >= 2, true);

      // The formerly trusted device is asked for the second factor: the reset bypasses nothing.
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: NEW_PASSWORD }, { device: laptop({ deviceToken }) });
      assert.equal(login.res.statusCode, 200);
      assert.equal(login.body.data.mfa_required, true);

      // The reset is announced, and proved the address.
      await lastMailTo(user.email, /^Your password was changed$/);
    });

    test('a reset link expires after 30 minutes, and only the latest one works', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
      const first = linkToken(await lastMailTo(user.email, /^Reset your password$/));
      await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
      const second = linkToken(await lastMailTo(user.email, /^Reset your password$/));
      assert.notEqual(first, second);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/password/reset', { token: first, new_password: NEW_PASSWORD })).res.statusCode, 409);

      t.clock.advance(30 * MINUTE - SECOND);
      await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
      const third = linkToken(await lastMailTo(user.email, /^Reset your password$/));
      t.clock.advance(30 * MINUTE + SECOND);
      const late = await call(t.app, 'POST', '/api/v1/auth/password/reset', { token: third, new_password: NEW_PASSWORD });
      assert.equal(late.res.statusCode, 410);
      assert.equal(late.body.error.code, 'LINK_EXPIRED');
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD })).res.statusCode, 200, 'the password is unchanged');
    });

    test('a trusted device is announced with device, browser/OS, IP and time, and a "This wasn\'t me" link', async () => {
      const user = await mfaUser();
      const { deviceToken, device, accessToken } = await trustDevice(t, user, laptop());
      secrets.add(deviceToken);
      const mail = await lastMailTo(user.email, /^A new device was trusted on your account$/);
      assert.match(mail.text, new RegExp(`Device: ${device.device_name}`));
      assert.match(mail.text, /Browser: Chrome on macOS/);
      assert.match(mail.text, /IP address: 203\.0\.113\.10/);
      assert.match(mail.text, /Time: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      assert.match(mail.html, /This wasn’t me/);
      const url = linkUrl(mail);
      assert.ok(url.startsWith(`${TEST_PUBLIC_URL}/security/report?token=tdx_`), url);

      // The link opens a page: it forwards the token into the fragment and acts on nothing.
      const token = linkToken(mail);
      const page = await t.app.inject({ method: 'GET', url: `/security/report?token=${token}` });
      assert.equal(page.statusCode, 303);
      assert.equal(page.headers.location, `/#/report?token=${token}`);
      const list = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken });
      assert.equal(list.body.data.total_count, 1, 'opening the link revokes nothing');
      const junk = await t.app.inject({ method: 'GET', url: '/security/report?token=%22%3E%3Cscript%3E' });
      assert.equal(junk.headers.location, '/#/report');

      const report = await call(t.app, 'POST', '/api/v1/security/report', { token });
      assert.equal(report.res.statusCode, 200, report.res.body);
      assert.deepEqual(report.body.data, { device_id: device.id, device_revoked: true, sessions_ended: 1 });
      // That device is no longer trusted, and its session is over (the not_me row of what ends what) …
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ deviceToken }) });
      assert.equal(login.body.data.mfa_required, true);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: accessToken })).res.statusCode, 401);
      // … while a session opened elsewhere (the first sign-in, before MFA) goes on.
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 200);
      const history = await call(t.app, 'GET', '/api/v1/devices/events', undefined, { token: user.accessToken });
      assert.ok(history.body.data.events.some((e: any) => e.type === 'revoked' && e.device_id === device.id && e.cause === 'not_me'), JSON.stringify(history.body.data.events[0]));

      const twice = await call(t.app, 'POST', '/api/v1/security/report', { token });
      assert.equal(twice.res.statusCode, 409);
      assert.equal(twice.body.error.code, 'LINK_USED');
    });

    test('a report token revokes only its own device, and expires after 7 days', async () => {
      const user = await mfaUser();
      const phone = laptop({ userAgent: FIREFOX_WINDOWS, ip: '198.51.100.20', signals: { timezone: 'UTC' } });
      const a = await trustDevice(t, user, laptop());
      const tokenA = linkToken(await lastMailTo(user.email, /new device was trusted/));
      const b = await trustDevice(t, user, phone);
      const tokenB = linkToken(await lastMailTo(user.email, /new device was trusted/));
      secrets.add(a.deviceToken);
      secrets.add(b.deviceToken);

      const report = await call(t.app, 'POST', '/api/v1/security/report', { token: tokenB });
      assert.equal(report.body.data.device_id, b.device.id);
      // A is still trusted: its login still bypasses MFA.
      const loginA = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ deviceToken: a.deviceToken }) });
      assert.equal(loginA.body.data.mfa_bypassed, true);
      const loginB = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: { ...phone, deviceToken: b.deviceToken } });
      assert.equal(loginB.body.data.mfa_required, true);

      t.clock.advance(7 * DAY + SECOND);
      // Its page learns it expired, and which device it named (a trusted device's link).
      const details = await call(t.app, 'POST', '/api/v1/security/report/details', { token: tokenA });
      assert.equal(details.res.statusCode, 200, details.res.body);
      assert.equal(details.body.data.status, 'expired');
      assert.equal(details.body.data.subject.kind, 'device');
      assert.equal(details.body.data.subject.name, a.device.device_name);
      assert.equal(details.body.data.subject.ended_at, null, 'A is still trusted');
      const late = await call(t.app, 'POST', '/api/v1/security/report', { token: tokenA });
      assert.equal(late.res.statusCode, 410);
      assert.equal(late.body.error.code, 'LINK_EXPIRED');
      // The bypass above rotated A's token (docs/trust-model.md): the browser holds the successor.
      const stillA = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ deviceToken: loginA.body.data.device_token }) });
      assert.equal(stillA.body.data.mfa_bypassed, true, 'the expired link revoked nothing');
    });

    test('password change, MFA off and new backup codes are announced', async () => {
      const user = await mfaUser();
      const regen = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, user.totpSecret!) }, { token: user.accessToken, device: laptop() });
      assert.equal(regen.res.statusCode, 200);
      for (const code of regen.body.data.backup_codes) secrets.add(code);
      const regenMail = await lastMailTo(user.email, /^New backup codes were generated$/);
      assert.match(regenMail.text, /Chrome on macOS/);
      for (const code of regen.body.data.backup_codes) assert.ok(!regenMail.raw.includes(code), 'no backup code in the mail');

      const off = await call(t.app, 'POST', '/api/v1/mfa/deactivate', { password: user.password }, { token: user.accessToken, device: laptop() });
      assert.equal(off.res.statusCode, 200);
      await lastMailTo(user.email, /^Two-step verification was turned off$/);

      const change = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: user.password, new_password: NEW_PASSWORD }, { token: user.accessToken, device: laptop() });
      assert.equal(change.res.statusCode, 200);
      const changed = await lastMailTo(user.email, /^Your password was changed$/);
      assert.match(changed.text, /IP address: 203\.0\.113\.10/);
      assert.match(changed.text, /#\/forgot-password/);
    });

    test('a valid device token from a mismatching browser is announced once an hour, with a report link for that device', async () => {
      const user = await mfaUser();
      const { deviceToken, device } = await trustDevice(t, user, laptop());
      secrets.add(deviceToken);
      const thief = { userAgent: FIREFOX_WINDOWS, ip: '192.0.2.66', deviceToken };
      for (let i = 0; i < 2; i++) {
        const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: thief });
        assert.equal(login.body.data.mfa_required, true);
      }
      const alerts = (await mailsTo(user.email)).filter((m) => /from another browser/.test(m.subject));
      assert.equal(alerts.length, 1, 'one alert per device per hour');
      assert.match(alerts[0]!.text, /Browser: Firefox on Windows/);
      assert.match(alerts[0]!.text, /IP address: 192\.0\.2\.66/);
      assert.match(alerts[0]!.text, new RegExp(`Device: ${device.device_name}`));
      const report = await call(t.app, 'POST', '/api/v1/security/report', { token: linkToken(alerts[0]!) });
      assert.equal(report.body.data.device_id, device.id);
      assert.equal(report.body.data.device_revoked, true);
    });

    test('a key-bound device without its proof, and a reused device token, are announced (docs/trust-model.md, docs/email.md)', async () => {
      const user = await mfaUser();
      // A key-bound device: its public key given at activation; the login below sends no proof.
      const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const { kty, crv, x, y } = await webcrypto.subtle.exportKey('jwk', keys.publicKey);
      const verified = await loginWithMfa(t, user, laptop());
      const bound = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token, public_key: { kty, crv, x, y } }, { token: verified.access_token, device: laptop() });
      assert.equal(bound.body.data.device.key_bound, true);
      secrets.add(bound.body.data.device_token);
      const copied = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ deviceToken: bound.body.data.device_token, ip: '192.0.2.77' }) });
      assert.equal(copied.body.data.mfa_required, true);
      const proofAlert = await lastMailTo(user.email, /key was used without the device/);
      assert.match(proofAlert.text, /IP address: 192\.0\.2\.77/);
      const report = await call(t.app, 'POST', '/api/v1/security/report', { token: linkToken(proofAlert) });
      assert.equal(report.body.data.device_id, bound.body.data.device.id);

      // A plain device whose rotated-out token comes back after the grace.
      const phone = laptop({ userAgent: FIREFOX_WINDOWS });
      const { deviceToken } = await trustDevice(t, user, phone);
      secrets.add(deviceToken);
      const bypass = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: { ...phone, deviceToken } });
      assert.equal(bypass.body.data.mfa_bypassed, true);
      secrets.add(bypass.body.data.device_token);
      t.clock.advance(31 * SECOND);
      const reused = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: { ...phone, deviceToken } });
      assert.equal(reused.body.data.mfa_required, true);
      const reuseAlert = await lastMailTo(user.email, /its key was copied/);
      assert.match(reuseAlert.text, /Device: Firefox on Windows/);
    });

    test('racing uses of one reset token: exactly one wins', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
      const token = linkToken(await lastMailTo(user.email, /^Reset your password$/));
      const results = await Promise.all(Array.from({ length: 10 }, () => call(t.app, 'POST', '/api/v1/auth/password/reset', { token, new_password: NEW_PASSWORD })));
      assert.equal(results.filter((r) => r.res.statusCode === 200).length, 1);
      assert.ok(results.every((r) => r.res.statusCode === 200 || r.res.statusCode === 409));
    });

    test('no mail, outbox row or log line holds a password, TOTP secret or device token; link tokens stay out of the outbox and logs', async () => {
      assert.ok(secrets.size >= 5, 'the tests above collected secrets');
      await drain(sender);
      const rows = JSON.stringify(await t.db.handle.db.selectFrom('mail_outbox').selectAll().execute());
      const logs = t.logs.text;
      for (const secret of secrets) {
        for (const mail of smtp.mails) assert.ok(!mail.raw.includes(secret), `a mail holds a secret (${mail.subject})`);
        assert.ok(!rows.includes(secret), 'the outbox holds a secret');
        assert.ok(!logs.includes(secret), 'a log line holds a secret');
      }
      const linkTokens = smtp.mails.flatMap((m) => [...m.text.matchAll(/token=([A-Za-z0-9_%-]+)/g)].map((x) => decodeURIComponent(x[1]!)));
      assert.ok(linkTokens.length > 5);
      for (const token of linkTokens) {
        assert.ok(!rows.includes(token), 'the outbox holds a link token');
        assert.ok(!logs.includes(token), 'a log holds a link token');
      }
      const tokens = JSON.stringify(await t.db.handle.db.selectFrom('email_tokens').selectAll().execute());
      for (const token of linkTokens) assert.ok(!tokens.includes(token), 'email_tokens holds only hashes');
    });
  });
}
