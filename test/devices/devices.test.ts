import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  call,
  CHROME_MAC_UPGRADED,
  createTestApp,
  databaseKinds,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  loginWithMfa,
  nextCode,
  SAFARI_IPHONE,
  signupAndLogin,
  type TestApp,
  trustDevice,
} from '../helpers/app.ts';

const DAY = 86_400_000;

for (const kind of databaseKinds()) {
  describe(`trusted devices (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    async function mfaUser() {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      return user;
    }

    const listDevices = (token: string, options: { deviceToken?: string; url?: string } = {}) =>
      call(t.app, 'GET', options.url ?? '/api/v1/devices', undefined, { token, headers: options.deviceToken ? { 'x-device-token': options.deviceToken } : {} });

    const events = async (token: string) => (await call(t.app, 'GET', '/api/v1/devices/events?limit=100', undefined, { token })).body.data.events as any[];

    test('the whole life cycle: MFA → activate → list → bypass → revoke → MFA again', async () => {
      const user = await mfaUser();
      const device = laptop();
      const verified = await loginWithMfa(t, user, device);
      const pending = verified.trusted_device;
      assert.deepEqual(Object.keys(pending).sort(), ['activation_token', 'device_fingerprint', 'device_name', 'device_type', 'expires_at', 'id', 'is_active', 'trust_ttl_days']);
      assert.equal(pending.is_active, false);
      assert.equal(pending.device_name, 'Chrome on macOS');
      assert.match(pending.activation_token, /^tda_[A-Za-z0-9_-]{43}$/);
      assert.match(pending.device_fingerprint, /^[0-9a-f]{64}$/);
      assert.equal(new Date(pending.expires_at).getTime(), t.clock.now() + 300_000);
      assert.equal(pending.trust_ttl_days, 30);

      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: pending.activation_token, device_name: 'Work laptop' }, { token: verified.access_token, device });
      assert.equal(activate.res.statusCode, 200);
      const { device: trusted, device_token: deviceToken } = activate.body.data;
      assert.match(deviceToken, /^tdd_[A-Za-z0-9_-]{43}$/);
      assert.equal(trusted.id, pending.id);
      assert.equal(trusted.device_name, 'Work laptop');
      assert.equal(trusted.is_active, true);
      assert.equal(trusted.is_current, true);
      assert.equal(trusted.browser, 'Chrome');
      assert.equal(trusted.os, 'macOS');
      assert.equal(trusted.device_type, 'desktop');
      assert.equal(trusted.ip_address, '203.0.113.10');
      assert.equal(new Date(trusted.expires_at).getTime(), t.clock.now() + 30 * DAY);

      const cookie = String(activate.res.headers['set-cookie']);
      assert.match(cookie, new RegExp(`^td_device=${deviceToken};`));
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      assert.match(cookie, /Path=\/api\/v1/);
      assert.match(cookie, new RegExp(`Max-Age=${30 * 86400}`));
      assert.doesNotMatch(cookie, /Secure/); // COOKIE_SECURE=false in the test app

      for (const url of ['/api/v1/devices', '/api/v1/devices/']) {
        const list = await listDevices(verified.access_token, { deviceToken, url });
        assert.equal(list.res.statusCode, 200);
        assert.equal(list.body.data.total_count, 1);
        assert.equal(list.body.data.devices[0].id, trusted.id);
        assert.equal(list.body.data.devices[0].is_current, true);
      }
      // Without the device token the same device is listed, but not as current.
      assert.equal((await listDevices(verified.access_token)).body.data.devices[0].is_current, false);

      t.clock.advance(60_000);
      const bypass = await loginStep(t, user, { ...device, deviceToken });
      assert.equal(bypass.res.statusCode, 200);
      assert.equal(bypass.body.data.mfa_bypassed, true);
      assert.equal(bypass.body.data.trusted_device_id, trusted.id);
      assert.ok(bypass.body.data.access_token);
      const afterUse = (await listDevices(bypass.body.data.access_token)).body.data.devices[0];
      assert.equal(new Date(afterUse.last_used_at).getTime(), t.clock.now());

      // Revoked from another browser: the device's two sessions (the one that trusted it, the one it bypassed into) end with it.
      const elsewhere = await loginWithMfa(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      const revoke = await call(t.app, 'DELETE', `/api/v1/devices/${trusted.id}`, undefined, { token: elsewhere.access_token });
      assert.equal(revoke.res.statusCode, 200);
      assert.deepEqual(revoke.body.data, { revoked: true, sessions_ended: 2 });
      assert.equal((await listDevices(bypass.body.data.access_token)).res.statusCode, 401);
      assert.equal((await listDevices(verified.access_token)).res.statusCode, 401);
      const again = await call(t.app, 'DELETE', `/api/v1/devices/${trusted.id}`, undefined, { token: elsewhere.access_token });
      assert.equal(again.res.statusCode, 404);
      assert.equal(again.body.error.code, 'DEVICE_NOT_FOUND');

      const afterRevoke = await loginStep(t, user, { ...device, deviceToken });
      assert.equal(afterRevoke.body.data.mfa_required, true);
      assert.equal((await listDevices(elsewhere.access_token)).body.data.total_count, 0);

      const history = (await events(elsewhere.access_token)).filter((e) => e.device_id === trusted.id);
      assert.deepEqual(
        history.map((e) => e.type),
        ['session_revoked', 'session_revoked', 'revoked', 'signed_in', 'trust_used', 'activated', 'activation_created'],
      );
      // Subject and actor: "Work laptop revoked — by Firefox on Windows", its sessions ended because of it.
      const revokedEvent = history.find((e) => e.type === 'revoked');
      assert.equal(revokedEvent.device_name, 'Work laptop');
      assert.equal(revokedEvent.cause, 'user');
      assert.equal(revokedEvent.actor.type, 'user');
      assert.equal(revokedEvent.actor.name, 'Firefox on Windows');
      assert.ok(history.filter((e) => e.type === 'session_revoked').every((e) => e.cause === 'device_revoked' && e.session_id));
    });

    test('the device cookie is Secure unless COOKIE_SECURE=false', async () => {
      const secure = await createTestApp(kind, { env: { COOKIE_SECURE: 'true' }, clock: t.clock, db: t.db, keys: t.keys });
      try {
        const user = await signupAndLogin(secure.app, laptop());
        await enableMfa(secure, user);
        const verified = await loginWithMfa(secure, user, laptop());
        const activate = await call(secure.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token }, { token: verified.access_token, device: laptop() });
        assert.equal(activate.res.statusCode, 200);
        assert.match(String(activate.res.headers['set-cookie']), /; Secure/);
      } finally {
        await secure.app.close();
      }
    });

    test('the device cookie works like the header', async () => {
      const user = await mfaUser();
      const { deviceToken } = await trustDevice(t, user, laptop());
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop(), cookies: { td_device: deviceToken } });
      assert.equal(login.body.data.mfa_bypassed, true);
    });

    test('skip: consumes the token, trusts nothing, records activation_skipped', async () => {
      const user = await mfaUser();
      const verified = await loginWithMfa(t, user, laptop());
      const token = verified.access_token;
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: verified.trusted_device.activation_token }, { token, device: laptop() });
      assert.equal(skip.res.statusCode, 200);
      assert.deepEqual(skip.body.data, { skipped: true });
      assert.equal(skip.res.headers['set-cookie'], undefined);
      assert.equal((await listDevices(token)).body.data.total_count, 0);
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token }, { token, device: laptop() });
      assert.equal(activate.res.statusCode, 409);
      assert.equal(activate.body.error.code, 'ACTIVATION_TOKEN_USED');
      assert.equal((await events(token))[0].type, 'activation_skipped');
      assert.equal((await loginStep(t, user, laptop())).body.data.mfa_required, true);
    });

    test('activate twice, skip after activate → 409 ACTIVATION_TOKEN_USED', async () => {
      const user = await mfaUser();
      const verified = await loginWithMfa(t, user, laptop());
      const body = { activation_token: verified.trusted_device.activation_token };
      const opts = { token: verified.access_token, device: laptop() };
      assert.equal((await call(t.app, 'POST', '/api/v1/devices/activate', body, opts)).res.statusCode, 200);
      const twice = await call(t.app, 'POST', '/api/v1/devices/activate', body, opts);
      assert.equal(twice.res.statusCode, 409);
      assert.equal(twice.body.error.code, 'ACTIVATION_TOKEN_USED');
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', body, opts);
      assert.equal(skip.res.statusCode, 409);
    });

    test('activation token lifetime: TTL − 1 s → 200, TTL + 1 s → 410', async () => {
      const user = await mfaUser();
      const early = await loginWithMfa(t, user, laptop());
      t.clock.advance(299_000);
      const ok = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: early.trusted_device.activation_token }, { token: early.access_token, device: laptop() });
      assert.equal(ok.res.statusCode, 200);

      const late = await loginWithMfa(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      t.clock.advance(301_000);
      const refreshed = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: late.refresh_token });
      const expired = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: late.trusted_device.activation_token }, { token: refreshed.body.data.access_token, device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      assert.equal(expired.res.statusCode, 410);
      assert.equal(expired.body.error.code, 'ACTIVATION_TOKEN_EXPIRED');
      const skipExpired = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: late.trusted_device.activation_token }, { token: refreshed.body.data.access_token, device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      assert.equal(skipExpired.res.statusCode, 410);
    });

    test('50 concurrent activations of one token: exactly one 200 and one device', async () => {
      const user = await mfaUser();
      const verified = await loginWithMfa(t, user, laptop());
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token }, { token: verified.access_token, device: laptop() }),
        ),
      );
      const statuses = results.map((r) => r.res.statusCode);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
      assert.ok(statuses.every((s) => s === 200 || s === 409), `statuses: ${statuses.join(',')}`);
      const rows = await t.db.handle.db.selectFrom('trusted_devices').select('id').where('user_id', '=', user.userId).execute();
      assert.equal(rows.length, 1);
    });

    test("another user's activation token → the same 404 as an unknown token, nothing created", async () => {
      const alice = await mfaUser();
      const bob = await mfaUser();
      const aliceVerified = await loginWithMfa(t, alice, laptop());
      const bobVerified = await loginWithMfa(t, bob, laptop());
      const stolen = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: aliceVerified.trusted_device.activation_token }, { token: bobVerified.access_token, device: laptop() });
      const unknown = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: `tda_${'A'.repeat(43)}` }, { token: bobVerified.access_token, device: laptop() });
      const accessAsActivation = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: bobVerified.access_token }, { token: bobVerified.access_token, device: laptop() });
      for (const r of [stolen, unknown, accessAsActivation]) {
        assert.equal(r.res.statusCode, 404);
        assert.equal(r.body.error.code, 'ACTIVATION_TOKEN_NOT_FOUND');
        assert.equal(r.body.error.message, unknown.body.error.message);
      }
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: aliceVerified.trusted_device.activation_token }, { token: bobVerified.access_token, device: laptop() });
      assert.equal(skip.res.statusCode, 404);
      assert.equal((await listDevices(bobVerified.access_token)).body.data.total_count, 0);
      // Alice's token is untouched and still works for Alice.
      const own = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: aliceVerified.trusted_device.activation_token }, { token: aliceVerified.access_token, device: laptop() });
      assert.equal(own.res.statusCode, 200);
    });

    test('activation from a different browser/OS than the one that passed MFA → 403, token still usable by the right device', async () => {
      const user = await mfaUser();
      const verified = await loginWithMfa(t, user, laptop());
      const body = { activation_token: verified.trusted_device.activation_token };
      for (const userAgent of [FIREFOX_WINDOWS, SAFARI_IPHONE]) {
        const r = await call(t.app, 'POST', '/api/v1/devices/activate', body, { token: verified.access_token, device: laptop({ userAgent }) });
        assert.equal(r.res.statusCode, 403);
        assert.equal(r.body.error.code, 'FINGERPRINT_MISMATCH');
      }
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', body, { token: verified.access_token, device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      assert.equal(skip.res.statusCode, 403);
      assert.equal((await call(t.app, 'POST', '/api/v1/devices/activate', body, { token: verified.access_token, device: laptop() })).res.statusCode, 200);
    });

    test('same IP, User-Agent and signals but no device token → MFA required', async () => {
      const user = await mfaUser();
      await trustDevice(t, user, laptop());
      const login = await loginStep(t, user, laptop());
      assert.equal(login.body.data.mfa_required, true);
    });

    test('a device token replayed from another browser/OS → MFA, fingerprint_mismatch recorded', async () => {
      const user = await mfaUser();
      const { deviceToken, accessToken } = await trustDevice(t, user, laptop());
      for (const userAgent of [FIREFOX_WINDOWS, SAFARI_IPHONE]) {
        const login = await loginStep(t, user, laptop({ userAgent, deviceToken }));
        assert.equal(login.body.data.mfa_required, true);
      }
      const mismatches = (await events(accessToken)).filter((e) => e.type === 'fingerprint_mismatch');
      assert.equal(mismatches.length, 2);
      assert.equal(mismatches[0].user_agent, SAFARI_IPHONE);
    });

    test('zoom / another monitor (screen, pixel-ratio-sensitive text canvas) and a new IP keep trust', async () => {
      const user = await mfaUser();
      const signals = { ...laptop().signals, canvas_text: 'text-at-ratio-1' };
      const { deviceToken } = await trustDevice(t, user, laptop({ signals }));
      const zoomed = { ...signals, screen: '3840x2160', canvas_text: 'text-at-ratio-2', color_depth: 24 };
      const login = await loginStep(t, user, laptop({ signals: zoomed, ip: '198.51.100.77', deviceToken }));
      assert.equal(login.body.data.mfa_bypassed, true, login.res.body);
    });

    test('a valid device token whose fingerprint drifted: after the code the record is re-anchored, the next login skips MFA', async () => {
      const user = await mfaUser();
      const { deviceToken, accessToken, device: trusted } = await trustDevice(t, user, laptop());
      // Same browser and OS, but a new GPU/driver and canvas (beyond the tolerance).
      const drifted = laptop({ signals: { ...laptop().signals, webgl: 'ANGLE (Apple, Apple M3, Metal)', canvas: 'new-canvas', hardware_concurrency: 12 }, deviceToken });
      assert.equal((await loginStep(t, user, drifted)).body.data.mfa_required, true);
      const verified = await loginWithMfa(t, user, drifted);
      assert.equal(verified.trusted_device, null, 'nothing new to trust: the existing device was updated');
      const again = await loginStep(t, user, drifted);
      assert.equal(again.body.data.mfa_bypassed, true);
      assert.equal(again.body.data.trusted_device_id, trusted.id);
      const list = (await call(t.app, 'GET', '/api/v1/devices', undefined, { token: accessToken })).body.data;
      assert.equal(list.total_count, 1, 'no second device');
      assert.equal(list.devices[0].device_fingerprint === trusted.device_fingerprint, false, 'the stored fingerprint follows the browser');
      const types = (await events(accessToken)).map((e) => e.type).filter((type) => type !== 'signed_in');
      assert.deepEqual(types.slice(0, 3), ['trust_used', 'fingerprint_updated', 'fingerprint_mismatch']);
    });

    test('a valid device token from another browser is NOT re-anchored after the code: a new pending device instead', async () => {
      const user = await mfaUser();
      const { deviceToken, accessToken } = await trustDevice(t, user, laptop());
      const other = laptop({ userAgent: FIREFOX_WINDOWS, deviceToken });
      const verified = await loginWithMfa(t, user, other);
      assert.ok(verified.trusted_device?.activation_token, 'offered as a new device');
      assert.equal((await loginStep(t, user, other)).body.data.mfa_required, true);
      assert.equal((await loginStep(t, user, laptop({ deviceToken }))).body.data.mfa_bypassed, true, 'the original browser keeps its trust');
      assert.equal((await events(accessToken)).some((e) => e.type === 'fingerprint_updated'), false);
    });

    test("user A's device token does not help user B", async () => {
      const alice = await mfaUser();
      const bob = await mfaUser();
      const { deviceToken } = await trustDevice(t, alice, laptop());
      const login = await loginStep(t, bob, laptop({ deviceToken }));
      assert.equal(login.body.data.mfa_required, true);
    });

    test('a browser version upgrade and an IP change keep trust', async () => {
      const user = await mfaUser();
      const { deviceToken, accessToken } = await trustDevice(t, user, laptop());
      const upgraded = await loginStep(t, user, laptop({ userAgent: CHROME_MAC_UPGRADED, deviceToken }));
      assert.equal(upgraded.body.data.mfa_bypassed, true);
      const moved = await loginStep(t, user, laptop({ ip: '198.51.100.77', deviceToken }));
      assert.equal(moved.body.data.mfa_bypassed, true);
      const device = (await listDevices(accessToken)).body.data.devices[0];
      assert.equal(device.ip_address, '203.0.113.10');
      assert.equal(device.last_ip_address, '198.51.100.77');
    });

    test('changing several client signals (a different machine with a copied token) → MFA', async () => {
      const user = await mfaUser();
      const { deviceToken } = await trustDevice(t, user, laptop());
      const other = laptop({ deviceToken, signals: { ...laptop().signals, canvas: 'other', webgl: 'other gpu', screen: '800x600', timezone: 'Asia/Tokyo' } });
      assert.equal((await loginStep(t, user, other)).body.data.mfa_required, true);
    });

    test('after the trust lifetime → MFA required, and the device leaves the list', async () => {
      const user = await mfaUser();
      const { deviceToken } = await trustDevice(t, user, laptop());
      t.clock.advance(30 * DAY - 1000);
      assert.equal((await loginStep(t, user, laptop({ deviceToken }))).body.data.mfa_bypassed, true);
      t.clock.advance(2000);
      assert.equal((await loginStep(t, user, laptop({ deviceToken }))).body.data.mfa_required, true);
      const { access_token } = await loginWithMfa(t, user, laptop());
      assert.equal((await listDevices(access_token)).body.data.total_count, 0);
    });

    test('mfa/verify from an already trusted device returns trusted_device: null', async () => {
      const user = await mfaUser();
      const { deviceToken } = await trustDevice(t, user, laptop());
      // Force a challenge on the trusted device: the login itself would bypass,
      // so verify through a challenge made without the token, then present it.
      const login = await loginStep(t, user, laptop());
      const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device: laptop({ deviceToken }) });
      assert.equal(verify.res.statusCode, 200);
      assert.equal(verify.body.data.trusted_device, null);
    });

    test('MAX_TRUSTED_DEVICES: activating one more evicts the least recently used', async () => {
      const small = await createTestApp(kind, { env: { MAX_TRUSTED_DEVICES: '2' }, clock: t.clock });
      try {
        const s = { ...small };
        const user = await signupAndLogin(s.app, laptop());
        await enableMfa(s, user);
        const first = await trustDevice(s, user, laptop());
        t.clock.advance(1000);
        const second = await trustDevice(s, user, laptop({ userAgent: FIREFOX_WINDOWS }));
        t.clock.advance(1000);
        // Use the first device, so the second becomes the least recently used.
        assert.equal((await loginStep(s, user, laptop({ deviceToken: first.deviceToken }))).body.data.mfa_bypassed, true);
        t.clock.advance(1000);
        const third = await trustDevice(s, user, laptop({ userAgent: SAFARI_IPHONE }));
        const list = await call(s.app, 'GET', '/api/v1/devices', undefined, { token: third.accessToken });
        assert.deepEqual(list.body.data.devices.map((d: any) => d.id).sort(), [first.device.id, third.device.id].sort());
        assert.equal((await loginStep(s, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: second.deviceToken }))).body.data.mfa_required, true);
        const evicted = (await call(s.app, 'GET', '/api/v1/devices/events?limit=100', undefined, { token: third.accessToken })).body.data.events.filter((e: any) => e.type === 'evicted');
        assert.equal(evicted.length, 1);
        assert.equal(evicted[0].device_id, second.device.id);
      } finally {
        await small.close();
      }
    });

    test('revoke all: every earlier device token stops working', async () => {
      const user = await mfaUser();
      const a = await trustDevice(t, user, laptop());
      const b = await trustDevice(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      const elsewhere = await loginWithMfa(t, user, laptop({ userAgent: SAFARI_IPHONE }));
      const all = await call(t.app, 'DELETE', '/api/v1/devices/', undefined, { token: elsewhere.access_token });
      assert.equal(all.res.statusCode, 200);
      assert.deepEqual(all.body.data, { revoked_count: 2, sessions_ended: 2 });
      assert.equal((await listDevices(a.accessToken)).res.statusCode, 401);
      assert.equal((await listDevices(b.accessToken)).res.statusCode, 401);
      assert.match(String(all.res.headers['set-cookie']), /td_device=;/);
      assert.equal((await loginStep(t, user, laptop({ deviceToken: a.deviceToken }))).body.data.mfa_required, true);
      assert.equal((await loginStep(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: b.deviceToken }))).body.data.mfa_required, true);
      const types = (await events(elsewhere.access_token)).map((e) => e.type);
      assert.ok(types.includes('revoked_all'));
      assert.equal(types.filter((x) => x === 'revoked').length, 2);
    });

    test("another user's device id, a nonexistent id and a malformed id → 404, nothing changed", async () => {
      const alice = await mfaUser();
      const bob = await mfaUser();
      const a = await trustDevice(t, alice, laptop());
      const bobToken = (await loginWithMfa(t, bob, laptop())).access_token;
      for (const id of [a.device.id, '00000000-0000-4000-8000-000000000000', 'not-a-uuid', "1' or '1'='1", '%00']) {
        const del = await call(t.app, 'DELETE', `/api/v1/devices/${encodeURIComponent(id)}`, undefined, { token: bobToken });
        assert.equal(del.res.statusCode, 404, id);
        assert.equal(del.body.error.code, 'DEVICE_NOT_FOUND');
        const patch = await call(t.app, 'PATCH', `/api/v1/devices/${encodeURIComponent(id)}`, { device_name: 'pwned' }, { token: bobToken });
        assert.equal(patch.res.statusCode, 404, id);
      }
      const list = (await listDevices(a.accessToken)).body.data.devices;
      assert.equal(list.length, 1);
      assert.equal(list[0].device_name, 'Chrome on macOS');
      assert.equal((await loginStep(t, alice, laptop({ deviceToken: a.deviceToken }))).body.data.mfa_bypassed, true);
    });

    test('rename: 1–100 characters', async () => {
      const user = await mfaUser();
      const { device, accessToken, deviceToken } = await trustDevice(t, user, laptop());
      const ok = await call(t.app, 'PATCH', `/api/v1/devices/${device.id}`, { device_name: 'Kitchen iMac' }, { token: accessToken, headers: { 'x-device-token': deviceToken } });
      assert.equal(ok.res.statusCode, 200);
      assert.equal(ok.body.data.device.device_name, 'Kitchen iMac');
      assert.equal(ok.body.data.device.is_current, true);
      for (const name of ['', 'x'.repeat(101)]) {
        const bad = await call(t.app, 'PATCH', `/api/v1/devices/${device.id}`, { device_name: name }, { token: accessToken });
        assert.equal(bad.res.statusCode, 422);
        assert.equal(bad.body.error.details[0].field, 'device_name');
      }
    });

    test('list: only the caller\'s devices, most recently used first, no hash, token or key', async () => {
      const user = await mfaUser();
      const other = await mfaUser();
      await trustDevice(t, other, laptop());
      const a = await trustDevice(t, user, laptop());
      t.clock.advance(1000);
      const b = await trustDevice(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      t.clock.advance(1000);
      await loginStep(t, user, laptop({ deviceToken: a.deviceToken }));
      const list = await listDevices(b.accessToken);
      assert.deepEqual(list.body.data.devices.map((d: any) => d.id), [a.device.id, b.device.id]);
      const text = list.res.body;
      for (const secret of [a.deviceToken, b.deviceToken, 'device_token_hash', 'components', 'token_hash']) assert.ok(!text.includes(secret), secret);
      const fields = Object.keys(list.body.data.devices[0]).sort();
      assert.deepEqual(fields, ['browser', 'created_at', 'device_fingerprint', 'device_name', 'device_type', 'expires_at', 'granted_by', 'granted_by_credential_id', 'id', 'ip_address', 'is_active', 'is_current', 'key_bound', 'last_ip_address', 'last_used_at', 'location', 'os', 'trusted_at', 'user_agent']);
    });

    test('events: newest first, cursor pagination with next_before', async () => {
      const user = await mfaUser();
      const { accessToken } = await trustDevice(t, user, laptop());
      for (let i = 0; i < 3; i++) await loginStep(t, user, laptop({ deviceToken: (await trustDevice(t, user, laptop())).deviceToken }));
      const all = await events(accessToken);
      const seen: string[] = [];
      let before: string | null = null;
      do {
        const page: any = await call(t.app, 'GET', `/api/v1/devices/events?limit=3${before ? `&before=${before}` : ''}`, undefined, { token: accessToken });
        assert.equal(page.res.statusCode, 200);
        assert.ok(page.body.data.events.length <= 3);
        seen.push(...page.body.data.events.map((e: any) => e.id));
        before = page.body.data.next_before;
      } while (before);
      assert.deepEqual(seen, all.map((e) => e.id));
      const times = all.map((e) => new Date(e.created_at).getTime());
      assert.deepEqual([...times].sort((x, y) => y - x), times);
      assert.deepEqual(Object.keys(all[0]).sort(), ['actor', 'cause', 'created_at', 'device_id', 'device_name', 'id', 'ip_address', 'location', 'reason', 'session_id', 'type', 'user_agent']);
      assert.deepEqual(Object.keys(all[0].actor).sort(), ['ip_address', 'name', 'session_id', 'type', 'user_agent']);
      const bad = await call(t.app, 'GET', '/api/v1/devices/events?limit=0&before=nope', undefined, { token: accessToken });
      assert.equal(bad.res.statusCode, 422);
      assert.deepEqual(bad.body.error.details.map((d: any) => d.field).sort(), ['before', 'limit']);
    });

    for (const [name, action] of [
      ['password change', async (user: any, token: string) => call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: user.password, new_password: 'Another-Pass-7' }, { token })],
      ['MFA deactivation', async (user: any, token: string) => call(t.app, 'POST', '/api/v1/mfa/deactivate', { code: nextCode(t, user.totpSecret) }, { token })],
      ['backup-code regeneration', async (user: any, token: string) => call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, user.totpSecret) }, { token })],
    ] as const) {
      test(`${name} revokes every trusted device`, async () => {
        const user = await mfaUser();
        const a = await trustDevice(t, user, laptop());
        const b = await trustDevice(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
        const res = await action(user, a.accessToken);
        assert.equal(res.res.statusCode, 200, res.res.body);
        assert.equal(res.body.data.devices_revoked, 2);
        assert.equal((await listDevices(a.accessToken)).body.data.total_count, 0);
        if (name === 'password change') user.password = 'Another-Pass-7';
        for (const device of [laptop({ deviceToken: a.deviceToken }), laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: b.deviceToken })]) {
          const login = await loginStep(t, user, device);
          if (name === 'MFA deactivation') {
            // MFA is off: login succeeds without a second factor, but not through the revoked device.
            assert.equal(login.body.data.mfa_bypassed, false);
            assert.equal(login.body.data.trusted_device_id, null);
          } else {
            assert.equal(login.body.data.mfa_required, true);
          }
        }
      });
    }

    test('a device token or activation token used as the Bearer token → 401', async () => {
      const user = await mfaUser();
      const verified = await loginWithMfa(t, user, laptop());
      const { deviceToken } = await trustDevice(t, user, laptop());
      for (const token of [deviceToken, verified.trusted_device.activation_token, verified.refresh_token]) {
        const r = await listDevices(token);
        assert.equal(r.res.statusCode, 401);
        assert.equal(r.body.error.code, 'UNAUTHORIZED');
      }
    });

    test('storage failing during the trust check → MFA required, never a bypass', async () => {
      const failing = await createTestApp(kind, {
        clock: t.clock,
        db: t.db,
        keys: t.keys,
        deps: {
          wrapDevicesRepository: (repo) => ({
            ...repo,
            findByTokenHash: async () => {
              throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
            },
          }),
        },
      });
      try {
        const user = await mfaUser();
        const { deviceToken } = await trustDevice(t, user, laptop());
        assert.equal((await loginStep(t, user, laptop({ deviceToken }))).body.data.mfa_bypassed, true);
        const login = await loginStep(failing, user, laptop({ deviceToken }));
        assert.equal(login.res.statusCode, 200);
        assert.equal(login.body.data.mfa_required, true);
        assert.equal(login.body.data.mfa_bypassed, undefined);
      } finally {
        await failing.app.close();
      }
    });

    test('an invalid x-device-fingerprint header → 422 INVALID_FINGERPRINT on login, verify and activate', async () => {
      const user = await mfaUser();
      for (const header of ['not json', '[1,2]', '"str"', JSON.stringify({ a: { nested: true } }), JSON.stringify({ big: 'x'.repeat(5000) })]) {
        const r = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { headers: { 'x-device-fingerprint': header } });
        assert.equal(r.res.statusCode, 422, header.slice(0, 20));
        assert.equal(r.body.error.code, 'INVALID_FINGERPRINT');
      }
    });
  });
}
