/**
 * Cookie policy (src/platform/http/cookies.ts): COOKIE_SECURE=auto decides `Secure`
 * per request; the refresh token as the HttpOnly td_refresh cookie
 * (`x-refresh-cookie: 1`) at login, MFA verify, refresh and logout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isLoopbackHost } from '../../src/platform/http/cookies.ts';
import { PASSWORD_POLICY, passwordProblems } from '../../src/platform/crypto/passwords.ts';
import { call, createTestApp, databaseKinds, enableMfa, laptop, loginStep, nextCode, signupAndLogin, type TestApp, trustDevice } from '../helpers/app.ts';

const REFRESH = { 'x-refresh-cookie': '1' };

/** The td_refresh value of a response's Set-Cookie, or undefined. */
function refreshCookie(res: { headers: Record<string, unknown> }): { value: string; raw: string } | undefined {
  const all = ([] as string[]).concat((res.headers['set-cookie'] as string | string[] | undefined) ?? []);
  const raw = all.find((c) => c.startsWith('td_refresh='));
  return raw === undefined ? undefined : { value: raw.slice('td_refresh='.length, raw.indexOf(';')), raw };
}

describe('isLoopbackHost', () => {
  test('localhost, *.localhost, 127/8 and ::1 are loopback; anything else is not', () => {
    for (const host of ['localhost', 'LOCALHOST', 'localhost:3000', 'app.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '[::1]:3000', 'localhost.']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['app.test', '192.168.1.20', '10.0.0.1:3000', 'localhost.example.com', 'mylocalhost', '128.0.0.1', '::2', '[fe80::1]', '']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});

for (const kind of databaseKinds()) {
  describe(`COOKIE_SECURE=auto (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, { env: { COOKIE_SECURE: 'auto', TRUST_PROXY: '10.9.9.9' } });
    });
    after(() => t.close());

    /** The td_device Set-Cookie of an activation made with these request headers. */
    async function deviceCookie(headers: Record<string, string>, ip = '203.0.113.10') {
      const device = laptop({ ip });
      const user = await signupAndLogin(t.app, device);
      await enableMfa(t, user);
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device, headers });
      const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device, headers });
      const activate = await call(
        t.app,
        'POST',
        '/api/v1/devices/activate',
        { activation_token: verify.body.data.trusted_device.activation_token },
        { token: verify.body.data.access_token, device, headers },
      );
      assert.equal(activate.res.statusCode, 200, activate.res.body);
      return String(activate.res.headers['set-cookie']);
    }

    test('plain http on a host that is not loopback: not Secure (the browser would drop it)', async () => {
      for (const host of ['app.test:3000', '192.168.1.20:3000']) {
        const cookie = await deviceCookie({ host });
        assert.match(cookie, /^td_device=tdd_/);
        assert.doesNotMatch(cookie, /Secure/, host);
      }
    });

    test('loopback hosts over http: Secure (browsers accept it there)', async () => {
      for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000']) {
        assert.match(await deviceCookie({ host }), /; Secure/, host);
      }
    });

    test('https from a trusted proxy (X-Forwarded-Proto): Secure; the same header from anyone else is ignored', async () => {
      assert.match(await deviceCookie({ host: 'app.test', 'x-forwarded-proto': 'https' }, '10.9.9.9'), /; Secure/);
      assert.doesNotMatch(await deviceCookie({ host: 'app.test', 'x-forwarded-proto': 'https' }, '203.0.113.10'), /Secure/);
    });
  });

  describe(`refresh token in the td_refresh cookie (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, { env: { COOKIE_SECURE: 'true' } });
    });
    after(() => t.close());

    test('login with x-refresh-cookie: 1 sets an HttpOnly, Strict cookie on /api/v1/auth and leaves the token out of the body', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop(), headers: REFRESH });
      assert.equal(login.res.statusCode, 200);
      assert.equal(login.body.data.refresh_token, undefined);
      assert.ok(login.body.data.access_token);
      const cookie = refreshCookie(login.res);
      assert.ok(cookie, 'td_refresh is set');
      assert.match(cookie.value, /^tdr_[A-Za-z0-9_-]{43}$/);
      for (const attribute of [/HttpOnly/, /SameSite=Strict/, /Path=\/api\/v1\/auth(;|$)/, /; Secure/, new RegExp(`Max-Age=${2_592_000}`)]) {
        assert.match(cookie.raw, attribute);
      }
      // Without the header: the token is in the body and no cookie is set (API clients).
      const plain = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop() });
      assert.match(plain.body.data.refresh_token, /^tdr_/);
      assert.equal(refreshCookie(plain.res), undefined);
    });

    test('refresh reads the cookie only with the header, rotates it, and a reused cookie clears it', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop(), headers: REFRESH });
      const first = refreshCookie(login.res)!.value;

      // A cross-site form cannot add the custom header: without it the cookie is not read.
      const noHeader = await call(t.app, 'POST', '/api/v1/auth/refresh', {}, { cookies: { td_refresh: first } });
      assert.equal(noHeader.res.statusCode, 401);
      assert.equal(noHeader.body.error.code, 'INVALID_TOKEN');

      const rotated = await call(t.app, 'POST', '/api/v1/auth/refresh', {}, { cookies: { td_refresh: first }, headers: REFRESH });
      assert.equal(rotated.res.statusCode, 200, rotated.res.body);
      assert.ok(rotated.body.data.access_token);
      assert.equal(rotated.body.data.refresh_token, undefined);
      const second = refreshCookie(rotated.res)!.value;
      assert.notEqual(second, first);

      // An empty body (no JSON at all) works too.
      const reuse = await call(t.app, 'POST', '/api/v1/auth/refresh', undefined, { cookies: { td_refresh: first }, headers: REFRESH });
      assert.equal(reuse.res.statusCode, 401);
      assert.equal(reuse.body.error.code, 'INVALID_TOKEN');
      const cleared = refreshCookie(reuse.res);
      assert.ok(cleared && (cleared.value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/.test(cleared.raw)), 'the dead cookie is cleared');
      // Reuse revoked the family: the newer cookie is dead too.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', {}, { cookies: { td_refresh: second }, headers: REFRESH })).res.statusCode, 401);
    });

    test('MFA verify sets the cookie; logout clears it and ends that refresh token', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const login = await loginStep(t, user, laptop());
      const verify = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device: laptop(), headers: REFRESH });
      assert.equal(verify.res.statusCode, 200);
      assert.equal(verify.body.data.refresh_token, undefined);
      const token = refreshCookie(verify.res)!.value;
      assert.match(token, /^tdr_/);

      const logout = await call(t.app, 'POST', '/api/v1/auth/logout', undefined, { token: verify.body.data.access_token, cookies: { td_refresh: token } });
      assert.equal(logout.res.statusCode, 204);
      const cleared = refreshCookie(logout.res);
      assert.ok(cleared, 'logout clears td_refresh');
      assert.match(cleared.raw, /Path=\/api\/v1\/auth/);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', {}, { cookies: { td_refresh: token }, headers: REFRESH })).res.statusCode, 401);
    });

    test('the device cookie still works alongside (trust survives a refresh-cookie sign-in)', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const { deviceToken } = await trustDevice(t, user, laptop());
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop(), headers: REFRESH, cookies: { td_device: deviceToken } });
      assert.equal(login.body.data.mfa_bypassed, true);
      assert.ok(refreshCookie(login.res));
    });
  });

  describe(`password policy (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('GET /auth/password-policy serves the policy the API enforces', async () => {
      const { res, body } = await call(t.app, 'GET', '/api/v1/auth/password-policy');
      assert.equal(res.statusCode, 200);
      assert.deepEqual(body.data, { ...PASSWORD_POLICY });
    });

    test('"Ärger123x" meets it (Unicode upper case), and signup accepts it', async () => {
      assert.deepEqual(passwordProblems('Ärger123x'), []);
      const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email: `umlaut-${Date.now()}@example.com`, password: 'Ärger123x' });
      assert.equal(signup.res.statusCode, 201);
      assert.deepEqual(passwordProblems('ärger123x'), ['must contain an upper-case letter']);
    });
  });
}
