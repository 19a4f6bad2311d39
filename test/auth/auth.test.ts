import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  call,
  createTestApp,
  databaseKinds,
  laptop,
  PASSWORD,
  signupAndLogin,
  type TestApp,
  uniqueEmail,
} from '../helpers/app.ts';

for (const kind of databaseKinds()) {
  describe(`auth (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('signup trims and lower-cases the email and returns the profile', async () => {
      const raw = `  ${uniqueEmail('Mixed').toUpperCase()}  `;
      const { res, body } = await call(t.app, 'POST', '/api/v1/auth/signup', { email: raw, password: PASSWORD, display_name: 'Ada' });
      assert.equal(res.statusCode, 201);
      assert.equal(body.success, true);
      assert.equal(body.data.email, raw.trim().toLowerCase());
      assert.equal(body.data.display_name, 'Ada');
      assert.match(body.data.user_id, /^[0-9a-f-]{36}$/);
      assert.match(body.data.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(body.data.password_hash, undefined);
    });

    test('a taken email is 409 EMAIL_TAKEN, whatever its case', async () => {
      const email = uniqueEmail();
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD })).res.statusCode, 201);
      const again = await call(t.app, 'POST', '/api/v1/auth/signup', { email: email.toUpperCase(), password: PASSWORD });
      assert.equal(again.res.statusCode, 409);
      assert.equal(again.body.error.code, 'EMAIL_TAKEN');
    });

    for (const [password, why] of [
      ['Short1A', 'too short'],
      ['alllowercase1', 'no upper case'],
      ['ALLUPPERCASE1', 'no lower case'],
      ['NoDigitsHere', 'no digit'],
      [`Aa1${'x'.repeat(126)}`, 'too long'],
    ] as const) {
      test(`a weak password (${why}) is 422 INVALID_PASSWORD`, async () => {
        const { res, body } = await call(t.app, 'POST', '/api/v1/auth/signup', { email: uniqueEmail(), password });
        assert.equal(res.statusCode, 422);
        assert.equal(body.error.code, 'INVALID_PASSWORD');
        assert.ok(Array.isArray(body.error.details) && body.error.details.every((d: any) => d.field === 'password'));
      });
    }

    test('an invalid email is 422 VALIDATION_ERROR naming the field', async () => {
      const { res, body } = await call(t.app, 'POST', '/api/v1/auth/signup', { email: 'not-an-email', password: PASSWORD });
      assert.equal(res.statusCode, 422);
      assert.equal(body.error.code, 'VALIDATION_ERROR');
      assert.deepEqual(body.error.details.map((d: any) => d.field), ['email']);
    });

    test('login without MFA returns tokens and mfa_bypassed=false', async () => {
      const email = uniqueEmail();
      await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD, display_name: 'Bo' });
      const { res, body } = await call(t.app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD }, { device: laptop() });
      assert.equal(res.statusCode, 200);
      assert.equal(body.data.token_type, 'bearer');
      assert.equal(body.data.expires_in, 900);
      assert.equal(body.data.mfa_bypassed, false);
      assert.equal(body.data.trusted_device_id, null);
      assert.equal(body.data.display_name, 'Bo');
      assert.match(body.data.refresh_token, /^tdr_[A-Za-z0-9_-]{43}$/);
      assert.equal(body.data.access_token.split('.').length, 3);
    });

    test('unknown email and wrong password give identical bodies apart from the request id', async () => {
      const user = await signupAndLogin(t.app);
      const wrong = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: 'Wrong-Password-1' });
      const unknown = await call(t.app, 'POST', '/api/v1/auth/login', { email: uniqueEmail('ghost'), password: 'Wrong-Password-1' });
      assert.equal(wrong.res.statusCode, 401);
      assert.equal(unknown.res.statusCode, 401);
      const strip = (b: any) => ({ ...b, error: { ...b.error, request_id: undefined } });
      assert.deepEqual(strip(wrong.body), strip(unknown.body));
      assert.equal(wrong.body.error.code, 'INVALID_CREDENTIALS');
    });

    test('GET /me returns the profile; without a token it is 401 with WWW-Authenticate', async () => {
      const user = await signupAndLogin(t.app);
      const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
      assert.equal(me.res.statusCode, 200);
      assert.deepEqual(Object.keys(me.body.data).sort(), ['created_at', 'display_name', 'email', 'email_verified', 'mfa_enabled', 'user_id']);
      assert.equal(me.body.data.mfa_enabled, false);
      const anonymous = await call(t.app, 'GET', '/api/v1/auth/me');
      assert.equal(anonymous.res.statusCode, 401);
      assert.equal(anonymous.body.error.code, 'UNAUTHORIZED');
      assert.equal(anonymous.res.headers['www-authenticate'], 'Bearer');
    });

    test('the access token expires with the clock', async () => {
      const user = await signupAndLogin(t.app);
      t.clock.advance(899_000);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 200);
      t.clock.advance(2_000);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 401);
    });

    test('refresh rotates; reusing a rotated token revokes the whole family', async () => {
      const user = await signupAndLogin(t.app);
      const first = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(first.res.statusCode, 200);
      const second = first.body.data.refresh_token;
      assert.notEqual(second, user.refreshToken);

      const reuse = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(reuse.res.statusCode, 401);
      assert.equal(reuse.body.error.code, 'INVALID_TOKEN');
      // The newest token of the family died with the reuse.
      const afterReuse = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: second });
      assert.equal(afterReuse.res.statusCode, 401);
    });

    test('a refresh token expires with the clock', async () => {
      const user = await signupAndLogin(t.app);
      t.clock.advance(2_592_000_000 + 1000);
      const { res } = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(res.statusCode, 401);
    });

    test('two concurrent refreshes of one token: exactly one wins', async () => {
      const user = await signupAndLogin(t.app);
      const results = await Promise.all(
        Array.from({ length: 10 }, () => call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken })),
      );
      assert.equal(results.filter((r) => r.res.statusCode === 200).length, 1);
    });

    test('logout ends the session: its refresh token stops working', async () => {
      const user = await signupAndLogin(t.app);
      const out = await call(t.app, 'POST', '/api/v1/auth/logout', undefined, { token: user.accessToken });
      assert.equal(out.res.statusCode, 204);
      assert.equal(out.res.body, '');
      const refresh = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(refresh.res.statusCode, 401);
    });

    test('logout with another session\'s refresh token of the same user ends that one too', async () => {
      const user = await signupAndLogin(t.app);
      const other = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD });
      const out = await call(t.app, 'POST', '/api/v1/auth/logout', { refresh_token: other.body.data.refresh_token }, { token: user.accessToken });
      assert.equal(out.res.statusCode, 204);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: other.body.data.refresh_token })).res.statusCode, 401);
    });

    test('password change: wrong current password is 400, weak new one 422, success revokes other sessions', async () => {
      const user = await signupAndLogin(t.app);
      const other = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD });
      const wrong = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: 'Nope-nope-1', new_password: 'New-Password-2' }, { token: user.accessToken });
      assert.equal(wrong.res.statusCode, 400);
      assert.equal(wrong.body.error.code, 'INVALID_CURRENT_PASSWORD');
      const weak = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'weak' }, { token: user.accessToken });
      assert.equal(weak.res.statusCode, 422);
      assert.equal(weak.body.error.code, 'INVALID_PASSWORD');

      const ok = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'New-Password-2' }, { token: user.accessToken });
      assert.equal(ok.res.statusCode, 200);
      assert.equal(ok.body.data.password_changed, true);
      // The other session's refresh token is dead; this session's still works.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: other.body.data.refresh_token })).res.statusCode, 401);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken })).res.statusCode, 200);
      // Old password no longer logs in, the new one does.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD })).res.statusCode, 401);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: 'New-Password-2' })).res.statusCode, 200);
    });
  });
}
