/**
 * The security center's mail (docs/security-center.md), parsed with
 * mailparser from a real SMTP server: the new-sign-in alert (a device the
 * account has not seen; not for the device trusted on the same page within
 * the minute; at once, with both places, for impossible travel), and the mail
 * for MFA turned on, a backup code used, a passkey added and removed. Each
 * shows the approximate location with the DB-IP attribution, and its
 * "This wasn't me" link works: it ends that session (and the device trusted
 * from it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { totpCode } from '../../src/features/mfa/totp.ts';
import { call, CHROME_MAC, createTestApp, databaseKinds, type Device, enableMfa, FIREFOX_WINDOWS, signupAndLogin, SIGNALS, type TestApp, type TestUser, uniqueEmail, PASSWORD } from '../helpers/app.ts';
import { type CapturedMail, drain, linkToken, linkUrl, smtpTransport, TEST_PUBLIC_URL, TestSmtpServer, testSender } from '../helpers/mail.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';

const API = '/api/v1';
const AMSTERDAM = '193.0.6.139';
const SAO_PAULO = '200.160.2.3';
const MINUTE = 60_000;
const via = (ip: string) => ({ 'x-forwarded-for': ip });
const laptop: Device = { userAgent: CHROME_MAC, signals: SIGNALS };
const pc: Device = { userAgent: FIREFOX_WINDOWS, signals: { timezone: 'UTC', platform: 'Win32' } };

for (const kind of databaseKinds()) {
  describe(`security center mail (${kind.name})`, () => {
    let t: TestApp;
    let smtp: TestSmtpServer;
    let sender: ReturnType<typeof testSender>;
    before(async () => {
      t = await createTestApp(kind, { env: { TRUST_PROXY: '127.0.0.1' } });
      smtp = await new TestSmtpServer().start();
      sender = testSender(t, smtpTransport(smtp));
    });
    after(async () => {
      await smtp.stop();
      await t.close();
    });

    const mails = async (user: TestUser, subject: RegExp): Promise<CapturedMail[]> => {
      await drain(sender);
      return smtp.to(user.email).filter((m) => subject.test(m.subject));
    };
    const login = (user: TestUser, device: Device, ip: string) => call(t.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device, headers: via(ip) });
    const code = (user: TestUser) => {
      t.clock.advance(30_000);
      return totpCode(user.totpSecret!, t.clock.now());
    };
    async function newUser(ip = AMSTERDAM): Promise<TestUser> {
      const email = uniqueEmail('alerts');
      const signup = await call(t.app, 'POST', `${API}/auth/signup`, { email, password: PASSWORD });
      assert.equal(signup.res.statusCode, 201);
      const first = await call(t.app, 'POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: laptop, headers: via(ip) });
      return { email, password: PASSWORD, userId: signup.body.data.user_id, accessToken: first.body.data.access_token, refreshToken: first.body.data.refresh_token };
    }
    /** Turns TOTP on from the laptop in Amsterdam (the mail names that request). */
    async function enableFromAmsterdam(user: TestUser): Promise<{ backupCodes: string[] }> {
      const headers = via(AMSTERDAM);
      const setup = await call(t.app, 'POST', `${API}/mfa/totp/setup`, {}, { token: user.accessToken, device: laptop, headers });
      user.totpSecret = setup.body.data.secret;
      const verify = await call(t.app, 'POST', `${API}/mfa/totp/verify`, { code: totpCode(user.totpSecret!, t.clock.now()) }, { token: user.accessToken, device: laptop, headers });
      assert.equal(verify.res.statusCode, 200, verify.res.body);
      return { backupCodes: verify.body.data.backup_codes };
    }
    /** Location, IP and the attribution, in both parts. */
    const assertWhere = (mail: CapturedMail, place: RegExp, ip: string) => {
      assert.match(mail.text, /Approximate location: /, mail.text);
      assert.match(mail.text, place);
      assert.match(mail.text, new RegExp(`IP address: ${ip.replace(/\./g, '\\.')}`));
      assert.match(mail.text, /IP Geolocation by DB-IP \(https:\/\/db-ip\.com\)/);
      assert.match(mail.html, place);
      assert.match(mail.html, /IP Geolocation by DB-IP/);
    };
    const live = async (token: string) => (await call(t.app, 'GET', `${API}/auth/me`, undefined, { token })).res.statusCode;

    test('new sign-in alert: a device the account has not seen; after a minute; device, browser/OS, location, IP, time; "This wasn\'t me" ends that session', async () => {
      const user = await newUser();
      await drain(sender);
      assert.equal((await mails(user, /sign-in/i)).length, 0, 'the first sign-in of an account is no news');

      // The same laptop again: seen before, no alert.
      await login(user, laptop, AMSTERDAM);
      // A PC the account has never signed in from.
      const intruder = await login(user, pc, AMSTERDAM);
      assert.equal(intruder.res.statusCode, 200);
      assert.equal((await mails(user, /sign-in/i)).length, 0, 'held for a minute');
      t.clock.advance(MINUTE + 1000);
      const [alert, ...more] = await mails(user, /^New sign-in/);
      assert.ok(alert, smtp.to(user.email).map((m) => m.subject).join(', '));
      assert.equal(more.length, 0, 'one mail for one sign-in');
      assert.match(alert.text, /Device: Firefox on Windows/);
      assert.match(alert.text, /Browser: Firefox on Windows/);
      assert.match(alert.text, /Time: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      assertWhere(alert, /Amsterdam.*Netherlands/, AMSTERDAM);
      const url = linkUrl(alert);
      assert.ok(url.startsWith(`${TEST_PUBLIC_URL}/security/report?token=`), url);
      assert.ok(alert.html.includes(url.replace(/&/g, '&amp;')), 'the same link in the HTML part');

      // The page behind the link (it moves the token into the fragment at once).
      const page = await t.app.inject({ method: 'GET', url: url.slice(TEST_PUBLIC_URL.length) });
      assert.equal(page.statusCode, 303);
      assert.equal(page.headers.location, `/#/report?token=${linkToken(alert)}`);
      assert.equal(await live(intruder.body.data.access_token), 200);
      // The page asks what the link is about: that sign-in, named as in the mail. Asking acts on nothing.
      const details = async () => call(t.app, 'POST', `${API}/security/report/details`, { token: linkToken(alert) });
      const fresh = await details();
      assert.equal(fresh.res.statusCode, 200, fresh.res.body);
      assert.equal(fresh.body.data.status, 'usable');
      assert.equal(fresh.body.data.used_at, null);
      const subject = fresh.body.data.subject;
      assert.deepEqual(
        { kind: subject.kind, name: subject.name, browser: subject.browser, os: subject.os, ip: subject.ip_address, ended: subject.ended_at },
        { kind: 'session', name: 'Firefox on Windows', browser: 'Firefox', os: 'Windows', ip: AMSTERDAM, ended: null },
      );
      assert.match(subject.location.city, /Amsterdam/);
      assert.equal(subject.location.country_code, 'NL');
      assert.ok(Math.abs(Date.parse(subject.at) - Date.parse(intruder.res.headers.date as string)) < 5 * MINUTE, subject.at);
      assert.equal((await details()).body.data.status, 'usable', 'asking twice still leaves the link usable');
      assert.equal(await live(intruder.body.data.access_token), 200, 'asking ended nothing');
      const report = await call(t.app, 'POST', `${API}/security/report`, { token: linkToken(alert) });
      assert.equal(report.res.statusCode, 200, report.res.body);
      assert.equal(await live(intruder.body.data.access_token), 401, 'that session ended');
      assert.equal(await live(user.accessToken), 200, 'the owner’s other sessions stay');
      const again = await call(t.app, 'POST', `${API}/security/report`, { token: linkToken(alert) });
      assert.equal(again.res.statusCode, 409);
      assert.equal(again.body.error.code, 'LINK_USED');
      // Used: the page can say so, and when that session ended.
      const used = await details();
      assert.equal(used.body.data.status, 'used');
      assert.equal(used.body.data.used_at, new Date(t.clock.now()).toISOString());
      assert.equal(used.body.data.subject.ended_at, used.body.data.used_at);
      // Expired: past its 7 days.
      t.clock.advance(7 * 24 * 60 * MINUTE + 1000);
      assert.equal((await details()).body.data.status, 'used', 'a used link stays used');
      // Unknown or malformed: LINK_INVALID, as for the POST that acts.
      for (const token of ['tdx_' + 'A'.repeat(43), 'nope']) {
        const r = await call(t.app, 'POST', `${API}/security/report/details`, { token });
        assert.equal(r.res.statusCode, 400, r.res.body);
        assert.equal(r.body.error.code, 'LINK_INVALID');
      }
    });

    test('not for the device trusted on the same page within the minute; "This wasn\'t me" on a later one also un-trusts the device it trusted', async () => {
      const user = await newUser();
      await enableMfa(t, user);
      await drain(sender);
      const before = smtp.to(user.email).length;

      // The person signs in on a new PC and trusts it at once.
      const challenge = await login(user, pc, AMSTERDAM);
      assert.equal(challenge.body.data.mfa_reason, 'new_device');
      const verified = await call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: challenge.body.data.temporary_token, code: code(user) }, { device: pc, headers: via(AMSTERDAM) });
      const activated = await call(t.app, 'POST', `${API}/devices/activate`, { activation_token: verified.body.data.trusted_device.activation_token }, { token: verified.body.data.access_token, device: pc, headers: via(AMSTERDAM) });
      assert.equal(activated.res.statusCode, 200, activated.res.body);
      t.clock.advance(MINUTE + 1000);
      await drain(sender);
      const subjects = smtp.to(user.email).slice(before).map((m) => m.subject);
      assert.deepEqual(subjects, ['A new device was trusted on your account']);

      // Another new device, trusted after its sign-in alert went out.
      const phone: Device = { userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1', signals: { platform: 'iPhone' } };
      const c2 = await login(user, phone, AMSTERDAM);
      const v2 = await call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: c2.body.data.temporary_token, code: code(user) }, { device: phone, headers: via(AMSTERDAM) });
      t.clock.advance(MINUTE + 1000);
      const [alert] = await mails(user, /^New sign-in/);
      assert.ok(alert);
      assert.match(alert.text, /Device: Safari on iOS/);
      const a2 = await call(t.app, 'POST', `${API}/devices/activate`, { activation_token: v2.body.data.trusted_device.activation_token }, { token: v2.body.data.access_token, device: phone, headers: via(AMSTERDAM) });
      assert.equal(a2.res.statusCode, 200, a2.res.body);
      const report = await call(t.app, 'POST', `${API}/security/report`, { token: linkToken(alert) });
      assert.equal(report.res.statusCode, 200, report.res.body);
      assert.equal(await live(v2.body.data.access_token), 401);
      const devices = (await call(t.app, 'GET', `${API}/devices`, undefined, { token: verified.body.data.access_token })).body.data.devices;
      assert.deepEqual(devices.map((d: any) => d.id), [activated.body.data.device.id], 'the phone was un-trusted, the PC stays');
    });

    test('impossible travel is told at once, with both places', async () => {
      const user = await newUser(AMSTERDAM);
      t.clock.advance(5 * MINUTE);
      const far = await login(user, laptop, SAO_PAULO);
      assert.equal(far.res.statusCode, 200);
      const [alert] = await mails(user, /unusual location/);
      assert.ok(alert, smtp.to(user.email).map((m) => m.subject).join(', '));
      assert.match(alert.text, /\d{4} km from your previous sign-in \(Amsterdam/);
      assertWhere(alert, /Brazil/, SAO_PAULO);
      assert.ok(linkUrl(alert).startsWith(`${TEST_PUBLIC_URL}/security/report?token=`));
    });

    test('MFA turned on, a backup code used: mail with the device, location and a working "This wasn\'t me"', async () => {
      const user = await newUser();
      const { backupCodes } = await enableFromAmsterdam(user);
      const [on] = await mails(user, /Two-step verification was turned on/);
      assert.ok(on);
      assert.match(on.text, /Device: Chrome on macOS/);
      assertWhere(on, /Amsterdam/, AMSTERDAM);

      const challenge = await login(user, laptop, AMSTERDAM);
      const verified = await call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: challenge.body.data.temporary_token, backup_code: backupCodes[0] }, { device: laptop, headers: via(AMSTERDAM) });
      assert.equal(verified.res.statusCode, 200, verified.res.body);
      const [used] = await mails(user, /backup code was used/);
      assert.ok(used);
      assertWhere(used, /Netherlands/, AMSTERDAM);
      assert.ok(!used.text.includes(backupCodes[0]!), 'never the code itself');
      const report = await call(t.app, 'POST', `${API}/security/report`, { token: linkToken(used) });
      assert.equal(report.res.statusCode, 200, report.res.body);
      assert.equal(await live(verified.body.data.access_token), 401, 'the session the backup code opened ended');
    });

    test('passkey added and removed: mail with its name, device and location', async () => {
      const user = await newUser();
      const options = (await call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token: user.accessToken, device: laptop, headers: via(AMSTERDAM) })).body.data.options;
      const key = new SoftAuthenticator();
      const { response } = key.register(options);
      const registered = await call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response, name: 'Blue key' }, { token: user.accessToken, device: laptop, headers: via(AMSTERDAM) });
      assert.equal(registered.res.statusCode, 200, registered.res.body);
      const [added] = await mails(user, /passkey was added/);
      assert.ok(added);
      assert.match(added.subject, /Blue key/);
      assert.match(added.text, /sign in without your password/);
      assertWhere(added, /Amsterdam/, AMSTERDAM);
      assert.ok(linkUrl(added).startsWith(`${TEST_PUBLIC_URL}/security/report?token=`));

      // The account has a second factor now (this key): removing one is a sensitive operation, so step up with the key first (docs/step-up.md).
      const stepOptions = await call(t.app, 'POST', `${API}/auth/step-up/webauthn/options`, {}, { token: user.accessToken });
      assert.equal(stepOptions.res.statusCode, 200, stepOptions.res.body);
      const stepped = await call(t.app, 'POST', `${API}/auth/step-up`, { webauthn: key.assert(stepOptions.body.data.options) }, { token: user.accessToken });
      assert.equal(stepped.res.statusCode, 200, stepped.res.body);
      user.accessToken = stepped.body.data.access_token;
      const removed = await call(t.app, 'DELETE', `${API}/mfa/webauthn/credentials/${registered.body.data.credential.id}`, undefined, { token: user.accessToken, device: laptop, headers: via(AMSTERDAM) });
      assert.equal(removed.res.statusCode, 200, removed.res.body);
      const [gone] = await mails(user, /passkey was removed/);
      assert.ok(gone);
      assert.match(gone.subject, /Blue key/);
      assertWhere(gone, /Amsterdam/, AMSTERDAM);
    });
  });
}
