/** docs/security.md, rate limits: with the in-process store. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, createTestApp, databaseKinds, PASSWORD, signupAndLogin, type TestApp, uniqueEmail } from '../helpers/app.ts';

const kind = databaseKinds()[0]!;

describe('rate limits (RATE_LIMITS=on)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp(kind, { env: { RATE_LIMITS: 'on' } });
  });
  after(() => t.close());

  const login = (email: string, ip: string) =>
    call(t.app, 'POST', '/api/v1/auth/login', { email, password: 'Wrong-Password-1' }, { device: { userAgent: 'test', ip } });

  test('login: the 6th attempt within 15 minutes for one IP + email → 429 with Retry-After', async () => {
    const email = uniqueEmail();
    for (let i = 0; i < 5; i++) assert.equal((await login(email, '192.0.2.1')).res.statusCode, 401);
    const sixth = await login(email, '192.0.2.1');
    assert.equal(sixth.res.statusCode, 429);
    assert.equal(sixth.body.error.code, 'RATE_LIMITED');
    const retryAfter = Number(sixth.res.headers['retry-after']);
    assert.ok(retryAfter > 800 && retryAfter <= 900, String(retryAfter));
    assert.ok(sixth.body.error.request_id);
    // Another email from the same IP, and the same email from another IP, are counted apart.
    assert.equal((await login(uniqueEmail(), '192.0.2.1')).res.statusCode, 401);
    assert.equal((await login(email, '192.0.2.2')).res.statusCode, 401);
    // The email is normalised before counting.
    assert.equal((await login(` ${email.toUpperCase()} `, '192.0.2.1')).res.statusCode, 429);
  });

  test('signup: the 4th within 5 minutes from one IP → 429', async () => {
    const signup = () => call(t.app, 'POST', '/api/v1/auth/signup', { email: uniqueEmail(), password: PASSWORD }, { device: { userAgent: 'test', ip: '192.0.2.50' } });
    for (let i = 0; i < 3; i++) assert.equal((await signup()).res.statusCode, 201);
    const fourth = await signup();
    assert.equal(fourth.res.statusCode, 429);
    assert.ok(Number(fourth.res.headers['retry-after']) > 0);
  });

  test('device endpoints: 60 per minute per user', async () => {
    const user = await signupAndLogin(t.app, { userAgent: 'test', ip: '192.0.2.60' });
    for (let i = 0; i < 60; i++) {
      const r = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken });
      assert.equal(r.res.statusCode, 200);
    }
    const limited = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken });
    assert.equal(limited.res.statusCode, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    // Another user is not affected.
    const other = await signupAndLogin(t.app, { userAgent: 'test', ip: '192.0.2.61' });
    assert.equal((await call(t.app, 'GET', '/api/v1/devices', undefined, { token: other.accessToken })).res.statusCode, 200);
  });

  test('device proof challenges (docs/trust-model.md): 30 per minute per IP', async () => {
    const challenge = (ip: string) => call(t.app, 'POST', '/api/v1/auth/device-challenge', undefined, { device: { userAgent: 'test', ip } });
    for (let i = 0; i < 30; i++) assert.equal((await challenge('192.0.2.70')).res.statusCode, 200);
    const limited = await challenge('192.0.2.70');
    assert.equal(limited.res.statusCode, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(limited.res.headers['retry-after']) > 0);
    assert.equal((await challenge('192.0.2.71')).res.statusCode, 200, 'another IP is counted apart');
  });
});

describe('RATE_LIMITS=off', () => {
  test('no limit applies', async () => {
    const t = await createTestApp(kind, { env: { RATE_LIMITS: 'off' } });
    try {
      const email = uniqueEmail();
      for (let i = 0; i < 8; i++) {
        const r = await call(t.app, 'POST', '/api/v1/auth/login', { email, password: 'Wrong-Password-1' });
        assert.equal(r.res.statusCode, 401);
      }
    } finally {
      await t.close();
    }
  });
});
