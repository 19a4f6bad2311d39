/**
 * Where and why at sign-in (docs/security-center.md): the reason a code is
 * asked (`mfa_reason`, also on the `signed_in` event), impossible travel
 * behind a trusted proxy, and an untrusted peer's X-Forwarded-For ignored.
 * Public addresses of the shipped database: 193.0.6.139 (Amsterdam),
 * 200.160.2.3 (São Paulo), about 9,800 km apart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { totpCode } from '../../src/features/mfa/totp.ts';
import { call, CHROME_MAC, createTestApp, databaseKinds, type Device, enableMfa, FIREFOX_WINDOWS, signupAndLogin, SIGNALS, type TestApp, type TestUser } from '../helpers/app.ts';

const API = '/api/v1';
const AMSTERDAM = '193.0.6.139';
const SAO_PAULO = '200.160.2.3';
const MINUTE = 60_000;
const DAY = 86_400_000;

/** Behind the proxy 127.0.0.1 (the inject default peer): the client address comes from X-Forwarded-For. */
const via = (ip: string) => ({ 'x-forwarded-for': ip });
const laptop = (deviceToken?: string): Device => ({ userAgent: CHROME_MAC, signals: SIGNALS, ...(deviceToken ? { deviceToken } : {}) });

for (const kind of databaseKinds()) {
  describe(`security center: reasons and impossible travel (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, { env: { TRUST_PROXY: '127.0.0.1' } });
    });
    after(() => t.close());

    const code = (user: TestUser) => {
      t.clock.advance(30_000);
      return totpCode(user.totpSecret!, t.clock.now());
    };
    const login = (user: TestUser, device: Device, ip: string) => call(t.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device, headers: via(ip) });
    const verify = (user: TestUser, temporaryToken: string, device: Device, ip: string) =>
      call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: temporaryToken, code: code(user) }, { device, headers: via(ip) });
    const events = async (user: TestUser, token: string) => (await call(t.app, 'GET', `${API}/devices/events?limit=100`, undefined, { token })).body.data.events as any[];

    /** A user with MFA whose laptop is trusted from `ip`; returns the device token and an access token. */
    async function trustedUser(ip: string) {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const first = await login(user, laptop(), ip);
      assert.equal(first.body.data.mfa_reason, 'new_device', first.res.body);
      const verified = await verify(user, first.body.data.temporary_token, laptop(), ip);
      assert.equal(verified.res.statusCode, 200, verified.res.body);
      const activated = await call(t.app, 'POST', `${API}/devices/activate`, { activation_token: verified.body.data.trusted_device.activation_token }, { token: verified.body.data.access_token, device: laptop(), headers: via(ip) });
      assert.equal(activated.res.statusCode, 200, activated.res.body);
      return { user, deviceToken: activated.body.data.device_token as string, accessToken: verified.body.data.access_token as string };
    }

    test('a trusted device signs in from Amsterdam, then from São Paulo minutes later: unusual_location, the code is asked, the travel is recorded with both places', async () => {
      const { user, deviceToken, accessToken } = await trustedUser(AMSTERDAM);
      const devices = (await call(t.app, 'GET', `${API}/devices`, undefined, { token: accessToken, device: laptop(deviceToken) })).body.data.devices;
      assert.equal(devices[0].location.country_code, 'NL', 'the device shows where it was last used');

      t.clock.advance(5 * MINUTE);
      const far = await login(user, laptop(deviceToken), SAO_PAULO);
      assert.equal(far.res.statusCode, 200, far.res.body);
      assert.equal(far.body.data.mfa_required, true, 'the trusted device does not skip the second factor');
      assert.equal(far.body.data.mfa_reason, 'unusual_location');

      const ok = await verify(user, far.body.data.temporary_token, laptop(deviceToken), SAO_PAULO);
      assert.equal(ok.res.statusCode, 200, ok.res.body);
      assert.equal(ok.body.data.trusted_device, null, 'after the code the sign-in counts on the trusted device again');

      const history = await events(user, ok.body.data.access_token);
      const travel = history.find((e) => e.type === 'impossible_travel');
      assert.ok(travel, JSON.stringify(history.map((e) => e.type)));
      assert.equal(travel.reason, 'impossible_travel');
      assert.equal(travel.location.country_code, 'BR');
      const signedIn = history.find((e) => e.type === 'signed_in');
      assert.equal(signedIn.reason, 'unusual_location', 'the sign-in line says why the code was asked');
      assert.equal(signedIn.location.country_code, 'BR');
      const sessions = (await call(t.app, 'GET', `${API}/sessions`, undefined, { token: ok.body.data.access_token })).body.data.sessions;
      assert.equal(sessions.find((s: any) => s.is_current).location.country, 'Brazil');
    });

    test('the same two places a day apart: no flag, the trusted device skips the code', async () => {
      const { user, deviceToken } = await trustedUser(AMSTERDAM);
      t.clock.advance(DAY);
      const far = await login(user, laptop(deviceToken), SAO_PAULO);
      assert.equal(far.res.statusCode, 200, far.res.body);
      assert.equal(far.body.data.mfa_bypassed, true, far.res.body);
      const history = await events(user, far.body.data.access_token);
      assert.equal(history.filter((e) => e.type === 'impossible_travel').length, 0);
    });

    test('IMPOSSIBLE_TRAVEL_KMH=0 turns the check off', async () => {
      const off = await createTestApp(kind, { env: { TRUST_PROXY: '127.0.0.1', IMPOSSIBLE_TRAVEL_KMH: '0' } });
      try {
        const user = await signupAndLogin(off.app, laptop());
        const a = await call(off.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device: laptop(), headers: via(AMSTERDAM) });
        const b = await call(off.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device: laptop(), headers: via(SAO_PAULO) });
        assert.equal(a.res.statusCode, 200);
        const history = (await call(off.app, 'GET', `${API}/devices/events?limit=100`, undefined, { token: b.body.data.access_token })).body.data.events as any[];
        assert.equal(history.filter((e) => e.type === 'impossible_travel').length, 0);
        assert.equal(history.find((e) => e.type === 'signed_in').location.country_code, 'BR');
      } finally {
        await off.close();
      }
    });

    test('without MFA, impossible travel is still flagged on the sign-in', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await login(user, laptop(), AMSTERDAM);
      t.clock.advance(MINUTE);
      const far = await login(user, laptop(), SAO_PAULO);
      const history = await events(user, far.body.data.access_token);
      assert.equal(history[0].type, 'signed_in');
      assert.equal(history[0].reason, 'unusual_location');
      assert.ok(history.some((e) => e.type === 'impossible_travel'));
    });

    test('every code prompt says why: new_device, fingerprint_mismatch, device_revoked, trust_expired', async () => {
      const { user, deviceToken, accessToken } = await trustedUser(AMSTERDAM);
      t.clock.advance(MINUTE);
      // The device token from another browser and system.
      const other = await login(user, { userAgent: FIREFOX_WINDOWS, deviceToken }, AMSTERDAM);
      assert.equal(other.body.data.mfa_reason, 'fingerprint_mismatch', other.res.body);
      // No token at all.
      const none = await login(user, laptop(), AMSTERDAM);
      assert.equal(none.body.data.mfa_reason, 'new_device');
      // Trust ran out (30 days by default).
      t.clock.advance(31 * DAY);
      const expired = await login(user, laptop(deviceToken), AMSTERDAM);
      assert.equal(expired.body.data.mfa_reason, 'trust_expired', expired.res.body);

      const second = await trustedUser(AMSTERDAM);
      const list = (await call(t.app, 'GET', `${API}/devices`, undefined, { token: second.accessToken })).body.data.devices;
      const revoked = await call(t.app, 'DELETE', `${API}/devices/${list[0].id}`, undefined, { token: second.accessToken });
      assert.equal(revoked.res.statusCode, 200, revoked.res.body);
      const afterRevoke = await login(second.user, laptop(second.deviceToken), AMSTERDAM);
      assert.equal(afterRevoke.body.data.mfa_reason, 'device_revoked', afterRevoke.res.body);
      void accessToken;
    });
  });

  describe(`security center: an untrusted peer's X-Forwarded-For is ignored (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('the location is that of the socket address, whatever X-Forwarded-For claims', async () => {
      const user = await signupAndLogin(t.app);
      // A public peer in São Paulo claiming to forward for Amsterdam; then a loopback peer claiming São Paulo.
      const forged = ['', AMSTERDAM, `${AMSTERDAM}, 10.0.0.1`, 'garbage', '::1', `${'9'.repeat(40)}`, `${AMSTERDAM}:443`];
      for (const header of forged) {
        const res = await call(t.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, {
          device: { userAgent: CHROME_MAC, signals: SIGNALS, ip: SAO_PAULO },
          headers: { 'x-forwarded-for': header },
        });
        assert.equal(res.res.statusCode, 200, res.res.body);
        const history = (await call(t.app, 'GET', `${API}/devices/events?limit=1`, undefined, { token: res.body.data.access_token })).body.data.events as any[];
        assert.equal(history[0].ip_address, SAO_PAULO);
        assert.equal(history[0].location.country_code, 'BR', header);
      }
      const local = await call(t.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device: { userAgent: CHROME_MAC }, headers: { 'x-forwarded-for': SAO_PAULO } });
      const sessions = (await call(t.app, 'GET', `${API}/sessions`, undefined, { token: local.body.data.access_token })).body.data.sessions;
      const current = sessions.find((s: any) => s.is_current);
      assert.equal(current.ip_address, '127.0.0.1');
      assert.equal(current.location, null, 'loopback has no location');
    });
  });
}
