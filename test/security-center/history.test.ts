/**
 * The security history (docs/security-center.md, "History"):
 * `GET /api/v1/security/events`. Every kind appears after the action that
 * causes it, named by the acting device's own name, with a location (behind
 * TRUST_PROXY=127.0.0.1, the client address from X-Forwarded-For); one line
 * per sign-in and per sign-out; the cursor, the limit bounds and the kind
 * filter; another user's lines are never shown; no token, 401.
 * 193.0.6.139 is in Amsterdam in the shipped database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { totpCode } from '../../src/features/mfa/totp.ts';
import { SECURITY_EVENT_KINDS } from '../../src/features/security/security.service.ts';
import { call, CHROME_MAC, createTestApp, databaseKinds, type Device, FIREFOX_WINDOWS, PASSWORD, SIGNALS, type TestApp, uniqueEmail } from '../helpers/app.ts';
import { makeDeviceKey, proofHeader } from '../helpers/device-keys.ts';
import { drain, linkToken, smtpTransport, TestSmtpServer, testSender } from '../helpers/mail.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';

const API = '/api/v1';
const AMSTERDAM = '193.0.6.139';
const HOUR = 3_600_000;

const laptop = (deviceToken?: string): Device => ({ userAgent: CHROME_MAC, signals: SIGNALS, ...(deviceToken ? { deviceToken } : {}) });
const firefox = (): Device => ({ userAgent: FIREFOX_WINDOWS, signals: { timezone: 'UTC', platform: 'Win32' } });

for (const kind of databaseKinds()) {
  describe(`security history (${kind.name})`, () => {
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

    /** Every request comes through the proxy from Amsterdam. */
    const api = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, options: { token?: string; device?: Device; headers?: Record<string, string> } = {}) =>
      call(t.app, method, url, body, { ...options, headers: { 'x-forwarded-for': AMSTERDAM, ...options.headers } });
    const ok = <T extends { res: { statusCode: number; body: string } }>(r: T, status = 200): T => {
      assert.equal(r.res.statusCode, status, r.res.body);
      return r;
    };
    const code = (secret: string) => {
      t.clock.advance(30_000);
      return totpCode(secret, t.clock.now());
    };
    const history = async (token: string, query = 'limit=100') => ok(await api('GET', `${API}/security/events?${query}`, undefined, { token })).body.data;
    const lastMail = async (email: string, subject: RegExp) => {
      await drain(sender);
      const mails = smtp.to(email).filter((m) => subject.test(m.subject));
      assert.ok(mails.length > 0, `no mail ${subject}`);
      return mails[mails.length - 1]!;
    };

    async function signup(device: Device = laptop()) {
      const email = uniqueEmail('history');
      ok(await api('POST', `${API}/auth/signup`, { email, password: PASSWORD }), 201);
      const login = ok(await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device }));
      return { email, token: login.body.data.access_token as string };
    }

    test('every kind of security change is a line, named by the acting device, with a location; one line per sign-in and per sign-out', async () => {
      // Session A: Chrome on macOS, no trusted device.
      const { email, token: tokenA } = await signup();
      const verifyToken = linkToken(await lastMail(email, /^Confirm your email address$/));
      ok(await api('POST', `${API}/auth/email/verify`, { token: verifyToken }, { device: laptop() }));

      // MFA on, from session A.
      const setup = ok(await api('POST', `${API}/mfa/totp/setup`, {}, { token: tokenA }));
      const secret: string = setup.body.data.secret;
      const enabled = ok(await api('POST', `${API}/mfa/totp/verify`, { code: totpCode(secret, t.clock.now()) }, { token: tokenA }));
      const backupCodes: string[] = enabled.body.data.backup_codes;

      // Session B: the laptop signs in with a code and trusts itself, key-bound, as "Work laptop".
      const key = await makeDeviceKey();
      const challenge = ok(await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: laptop() }));
      const verified = ok(await api('POST', `${API}/auth/mfa/verify`, { temporary_token: challenge.body.data.temporary_token, code: code(secret) }, { device: laptop() }));
      const tokenB: string = verified.body.data.access_token;
      const activated = ok(
        await api('POST', `${API}/devices/activate`, { activation_token: verified.body.data.trusted_device.activation_token, device_name: 'Work laptop', public_key: key.publicJwk }, { token: tokenB, device: laptop() }),
      );
      const deviceId: string = activated.body.data.device.id;
      const deviceToken: string = activated.body.data.device_token;
      ok(await api('PATCH', `${API}/devices/${deviceId}`, { device_name: 'My laptop' }, { token: tokenB, device: laptop(deviceToken) }));

      // A trusted sign-in (two stored events: trust_used, signed_in) whose new token never reaches the browser; an hour later the old token and the key restore it.
      const trusted = ok(await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: laptop(deviceToken), headers: { 'x-device-proof': await proofHeader(t.app, key) } }));
      assert.equal(trusted.body.data.mfa_bypassed, true, trusted.res.body);
      t.clock.advance(HOUR);
      const resynced = ok(await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: laptop(deviceToken), headers: { 'x-device-proof': await proofHeader(t.app, key) } }));
      assert.equal(resynced.body.data.mfa_bypassed, true, resynced.res.body);

      // Step-up in session B (its access token expired meanwhile: refreshed first), then passkeys (sensitive).
      const refreshed = ok(await api('POST', `${API}/auth/refresh`, { refresh_token: verified.body.data.refresh_token }, { device: laptop(deviceToken) }));
      let stepped = ok(await api('POST', `${API}/auth/step-up`, { code: code(secret) }, { token: refreshed.body.data.access_token }));
      let tokenB2: string = stepped.body.data.access_token;
      const authenticator = new SoftAuthenticator();
      const options = ok(await api('POST', `${API}/mfa/webauthn/register/options`, {}, { token: tokenB2 }));
      const registered = ok(await api('POST', `${API}/mfa/webauthn/register/verify`, { response: authenticator.register(options.body.data.options).response, name: 'YubiKey' }, { token: tokenB2 }));
      const credentialId: string = registered.body.data.credential.id;
      ok(await api('PATCH', `${API}/mfa/webauthn/credentials/${credentialId}`, { name: 'Spare key' }, { token: tokenB2 }));
      ok(await api('DELETE', `${API}/mfa/webauthn/credentials/${credentialId}`, undefined, { token: tokenB2 }));

      // Session F: Firefox signs in with a backup code, then signs out.
      const firefoxChallenge = ok(await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: firefox() }));
      const withBackup = ok(await api('POST', `${API}/auth/mfa/verify`, { temporary_token: firefoxChallenge.body.data.temporary_token, backup_code: backupCodes[0] }, { device: firefox() }));
      ok(await api('POST', `${API}/auth/logout`, {}, { token: withBackup.body.data.access_token }), 204);

      // Session B again: new backup codes (the laptop is un-trusted), a new password (the other sessions end), MFA off.
      ok(await api('POST', `${API}/mfa/backup-codes/regenerate`, { code: code(secret) }, { token: tokenB2 }));
      stepped = ok(await api('POST', `${API}/auth/step-up`, { code: code(secret) }, { token: tokenB2 }));
      tokenB2 = stepped.body.data.access_token;
      const changed = ok(await api('POST', `${API}/auth/password/change`, { current_password: PASSWORD, new_password: 'Battery-Staple-88' }, { token: tokenB2 }));
      tokenB2 = changed.body.data.access_token ?? tokenB2;
      ok(await api('POST', `${API}/mfa/deactivate`, { code: code(secret) }, { token: tokenB2 }));

      // The alerts go out; then a password reset by mail ends every session; session G reads the history.
      await drain(sender);
      ok(await api('POST', `${API}/auth/password/forgot`, { email }), 202);
      const resetToken = linkToken(await lastMail(email, /^Reset your password$/));
      ok(await api('POST', `${API}/auth/password/reset`, { token: resetToken, new_password: 'Correct-Horse-99' }, { device: firefox() }));
      const g = ok(await api('POST', `${API}/auth/login`, { email, password: 'Correct-Horse-99' }, { device: firefox() }));

      const page = await history(g.body.data.access_token);
      const events: any[] = page.events;
      const lines = events.map((e) => `${e.kind} | ${e.actor.name} | ${e.summary}`).join('\n');
      const of = (k: string) => events.filter((e) => e.kind === k);
      const one = (k: string) => {
        const found = of(k);
        assert.equal(found.length, 1, `one ${k}:\n${lines}`);
        return found[0];
      };
      for (const k of ['password_changed', 'password_reset', 'mfa_enabled', 'mfa_disabled', 'backup_codes_regenerated', 'backup_code_used', 'passkey_added', 'passkey_renamed', 'passkey_removed', 'email_verified', 'device_trusted', 'device_renamed', 'device_revoked', 'device_resynced']) {
        one(k);
      }
      assert.equal(of('step_up').length, 2, lines);
      assert.ok(of('alert_sent').length >= 5, lines);
      // Every successful sign-in is one line: A, B, the trusted one, the restored one, F, G (no trust_used, no pending activation line).
      assert.equal(of('sign_in').length, 6, lines);
      assert.equal(events.filter((e) => !SECURITY_EVENT_KINDS.includes(e.kind)).length, 0);

      // Named by the device as the person named it; by browser only without a device.
      const byLaptop = ['device_renamed', 'step_up', 'passkey_added', 'passkey_renamed', 'passkey_removed', 'backup_codes_regenerated', 'password_changed', 'mfa_disabled'];
      for (const k of byLaptop) {
        const e = of(k)[0];
        assert.equal(e.actor.name, 'My laptop', `${k}: ${JSON.stringify(e.actor)}`);
        assert.equal(e.actor.device_id, deviceId, k);
        assert.equal(e.actor.type, 'user');
        assert.equal(e.location?.country_code, 'NL', `${k} has a location`);
        assert.ok(e.ip_address === AMSTERDAM, k);
      }
      assert.equal(one('mfa_enabled').actor.name, 'Chrome on macOS', 'session A has no device: its browser and system');
      assert.equal(one('mfa_enabled').actor.device_id, null);
      assert.equal(one('backup_code_used').actor.name, 'Firefox on Windows');
      assert.equal(one('device_resynced').actor.name, 'My laptop', 'the device restored its own sign-in');
      assert.equal(one('device_resynced').summary, 'This device’s sign-in was restored after an interrupted update');
      assert.equal(page.location_attribution.text, 'IP Geolocation by DB-IP');

      // The wording: calm for ordinary causes, the cause kept.
      assert.equal(one('passkey_renamed').summary, 'Passkey renamed to “Spare key”');
      assert.equal(one('passkey_added').summary, 'Passkey “YubiKey” added');
      assert.equal(one('device_trusted').summary, 'Device trusted: “Work laptop”');
      assert.equal(one('device_renamed').summary, 'Device renamed to “My laptop”');
      const revoked = one('device_revoked');
      assert.equal(revoked.cause, 'backup_codes_regenerated');
      assert.equal(revoked.summary, 'Device revoked: “My laptop”, because new backup codes were generated');
      const signOuts = of('sign_out');
      const logout = signOuts.find((e) => e.cause === 'logout');
      assert.ok(logout, lines);
      assert.equal(logout.summary, 'Signed out');
      assert.equal(logout.actor.name, 'Firefox on Windows');
      assert.ok(signOuts.some((e) => e.cause === 'password_changed' && e.summary === 'Signed out because the password was changed'), lines);
      assert.ok(signOuts.some((e) => e.cause === 'password_reset'), lines);
      assert.ok(!/automatically|remotely/i.test(lines), 'no frightening wording');
      // One line per ended session: no session is signed out twice.
      const ended = signOuts.map((e) => e.subject.session_id);
      assert.equal(new Set(ended).size, ended.length, lines);
      // Alerts: the mail kind, never a link or token.
      const alerts = of('alert_sent');
      assert.ok(alerts.some((e) => e.subject.name === 'alert_mfa_enabled' && e.summary === 'Security email sent: two-step verification was turned on'), lines);
      assert.ok(alerts.every((e) => e.actor.type === 'system' && !/tdx_|https?:/.test(JSON.stringify(e))), 'no link in an alert line');
      // The change heads the lines of what it ended (newest first).
      const ids = events.map((e) => e.id);
      assert.deepEqual([...ids].sort().reverse(), ids, 'newest first');
      const changedAt = ids.indexOf(one('password_changed').id);
      const endedByChange = signOuts.filter((e) => e.cause === 'password_changed').map((e) => ids.indexOf(e.id));
      assert.ok(endedByChange.every((i) => i > changedAt), 'password_changed is above the sign-outs it caused');
    });

    test('paging: the cursor walks every line once, newest first; limit 1..100; a bad cursor or limit is 422', async () => {
      const { token } = await signup();
      for (let i = 0; i < 4; i += 1) ok(await api('POST', `${API}/auth/login`, { email: (await me(token)).email, password: PASSWORD }, { device: laptop() }));
      const all = (await history(token)).events.map((e: any) => e.id);
      assert.equal(all.length, 5);
      const seen: string[] = [];
      let before: string | null = null;
      do {
        const page: any = await history(token, `limit=2${before ? `&before=${before}` : ''}`);
        assert.ok(page.events.length <= 2);
        seen.push(...page.events.map((e: any) => e.id));
        before = page.next_before;
      } while (before !== null);
      assert.deepEqual(seen, all);
      assert.equal((await history(token, 'limit=5')).next_before, null, 'a page that holds the rest has no cursor');
      for (const bad of ['limit=0', 'limit=101', 'limit=abc', 'before=not-a-uuid']) {
        const res = await api('GET', `${API}/security/events?${bad}`, undefined, { token });
        assert.equal(res.res.statusCode, 422, `${bad}: ${res.res.body}`);
        assert.equal(res.body.error.code, 'VALIDATION_ERROR');
      }
    });

    const me = async (token: string) => ok(await api('GET', `${API}/auth/me`, undefined, { token })).body.data;

    test('kind filter: one kind, repeated or comma-separated, with paging; an unknown kind is 422', async () => {
      const { email, token } = await signup();
      ok(await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: laptop() }));
      ok(await api('POST', `${API}/auth/logout`, {}, { token: (await api('POST', `${API}/auth/login`, { email, password: PASSWORD }, { device: firefox() })).body.data.access_token }), 204);
      const setup = ok(await api('POST', `${API}/mfa/totp/setup`, {}, { token }));
      ok(await api('POST', `${API}/mfa/totp/verify`, { code: totpCode(setup.body.data.secret, t.clock.now()) }, { token }));

      const signIns = (await history(token, 'kind=sign_in')).events;
      assert.equal(signIns.length, 3);
      assert.ok(signIns.every((e: any) => e.kind === 'sign_in'));
      const repeated = (await history(token, 'kind=sign_out&kind=mfa_enabled')).events.map((e: any) => e.kind);
      const comma = (await history(token, 'kind=sign_out,mfa_enabled')).events.map((e: any) => e.kind);
      assert.deepEqual(repeated, comma);
      assert.deepEqual([...new Set(repeated)].sort(), ['mfa_enabled', 'sign_out']);
      const first = await history(token, 'kind=sign_in&limit=2');
      assert.equal(first.events.length, 2);
      const rest = await history(token, `kind=sign_in&limit=2&before=${first.next_before}`);
      assert.deepEqual([...first.events, ...rest.events].map((e: any) => e.id), signIns.map((e: any) => e.id));
      assert.equal(rest.next_before, null);

      for (const bad of ['kind=nonsense', 'kind=sign_in,trust_used', 'kind=signed_in']) {
        const res = await api('GET', `${API}/security/events?${bad}`, undefined, { token });
        assert.equal(res.res.statusCode, 422, `${bad}: ${res.res.body}`);
        assert.equal(res.body.error.code, 'VALIDATION_ERROR');
        assert.equal(res.body.error.details[0].field, 'kind');
      }
    });

    test("another user's lines are never shown, with or without a filter or a cursor; no token is 401", async () => {
      const ann = await signup();
      const bob = await signup(firefox());
      const annIds = new Set((await history(ann.token)).events.map((e: any) => e.id));
      const bobEvents = (await history(bob.token)).events;
      assert.ok(bobEvents.length > 0);
      assert.ok(bobEvents.every((e: any) => !annIds.has(e.id)));
      // Ann's newest id as Bob's cursor shows Bob's older lines only.
      const [annNewest] = [...annIds].sort().reverse();
      const viaCursor = (await history(bob.token, `before=${annNewest}&kind=sign_in`)).events;
      assert.ok(viaCursor.every((e: any) => !annIds.has(e.id)));

      const anonymous = await api('GET', `${API}/security/events`);
      assert.equal(anonymous.res.statusCode, 401);
      assert.equal(anonymous.body.error.code, 'UNAUTHORIZED');
      const forged = await api('GET', `${API}/security/events`, undefined, { token: `${ann.token}x` });
      assert.equal(forged.res.statusCode, 401);
    });
  });
}
