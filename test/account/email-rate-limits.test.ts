/** Rate limits of the mail-sending routes: per IP and per account (src/platform/http/rate-limits.ts). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, createTestApp, databaseKinds, laptop, signupAndLogin, type TestApp, uniqueEmail } from '../helpers/app.ts';
import { RATE_LIMITS } from '../../src/platform/http/rate-limits.ts';

const kind = databaseKinds()[0]!;

describe('account email rate limits', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp(kind, { env: { RATE_LIMITS: 'on' } });
  });
  after(() => t.close());

  const forgot = (email: string, ip: string) => call(t.app, 'POST', '/api/v1/auth/password/forgot', { email }, { device: laptop({ ip }) });

  test('forgot: per account, whatever the IP; the answer carries Retry-After', async () => {
    const email = uniqueEmail('limited');
    const max = RATE_LIMITS.forgotPasswordAccount.max;
    for (let i = 0; i < max; i++) assert.equal((await forgot(email, `198.51.100.${i + 1}`)).res.statusCode, 202);
    const blocked = await forgot(email.toUpperCase(), '198.51.100.200');
    assert.equal(blocked.res.statusCode, 429);
    assert.equal(blocked.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(blocked.res.headers['retry-after']) > 0);
    // Another address is not affected.
    assert.equal((await forgot(uniqueEmail('other'), '198.51.100.201')).res.statusCode, 202);
  });

  test('forgot: per IP, across addresses', async () => {
    const max = RATE_LIMITS.forgotPasswordIp.max;
    for (let i = 0; i < max; i++) assert.equal((await forgot(uniqueEmail('spray'), '203.0.113.99')).res.statusCode, 202);
    const blocked = await forgot(uniqueEmail('spray'), '203.0.113.99');
    assert.equal(blocked.res.statusCode, 429);
    assert.ok(Number(blocked.res.headers['retry-after']) > 0);
  });

  test('resend: per account', async () => {
    const user = await signupAndLogin(t.app, laptop({ ip: '192.0.2.50' }));
    const max = RATE_LIMITS.resendVerificationAccount.max;
    for (let i = 0; i < max; i++) {
      const res = await call(t.app, 'POST', '/api/v1/auth/email/resend', undefined, { token: user.accessToken, device: laptop({ ip: `192.0.2.${60 + i}` }) });
      assert.equal(res.res.statusCode, 202);
    }
    const blocked = await call(t.app, 'POST', '/api/v1/auth/email/resend', undefined, { token: user.accessToken, device: laptop({ ip: '192.0.2.99' }) });
    assert.equal(blocked.res.statusCode, 429);
    assert.equal(blocked.body.error.code, 'RATE_LIMITED');
  });
});
