/**
 * docs/security.md: password hashing is bounded. When the line of
 * hashes waiting is full, a request is refused at once (503 SERVER_BUSY with
 * Retry-After) instead of queueing without limit; a refused login counts
 * toward the per-IP ceiling (so a flood from one address still reaches it),
 * not against the person's email or account.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPasswordHasher } from '../../src/platform/crypto/passwords.ts';
import { call, createTestApp, databaseKinds, PASSWORD, uniqueEmail } from '../helpers/app.ts';

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const kind = databaseKinds()[0]!;

describe('bounded password hashing', () => {
  test('beyond the running hash and the waiting ones, hash and verify are refused at once with SERVER_BUSY', async () => {
    const hasher = createPasswordHasher(CHEAP, 1, 2);
    const hashed = await hasher.hash(PASSWORD);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => hasher.verify(hashed, PASSWORD)));
    const busy = results.filter((r) => r.status === 'rejected');
    assert.equal(results.filter((r) => r.status === 'fulfilled' && r.value === true).length, 3, 'one running + two waiting');
    assert.equal(busy.length, 7);
    for (const r of busy) assert.equal((r as PromiseRejectedResult).reason.code, 'SERVER_BUSY');
    // The line drains: later calls work again.
    assert.equal(await hasher.verify(hashed, PASSWORD), true);
    await assert.rejects(Promise.all(Array.from({ length: 5 }, () => hasher.verifyDummy('x'))), (e: any) => e.code === 'SERVER_BUSY');
  });

  test('a login flood beyond the line answers 503 SERVER_BUSY in the envelope, never 500, and counts toward the per-IP ceiling only', async () => {
    const t = await createTestApp(kind, { env: { RATE_LIMITS: 'on' }, deps: { passwordHasher: createPasswordHasher(CHEAP, 1, 2) } });
    try {
      const email = uniqueEmail('busy');
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD })).res.statusCode, 201);
      const emails = Array.from({ length: 20 }, () => uniqueEmail('flood'));
      const attempt = (i: number) =>
        call(t.app, 'POST', '/api/v1/auth/login', { email: emails[i], password: 'Wrong-Password-1' }, { device: { userAgent: 'test', ip: `198.19.0.${i + 1}` } });
      const flood = await Promise.all(emails.map((_, i) => attempt(i)));
      const statuses = flood.map((r) => r.res.statusCode);
      assert.ok(statuses.every((s) => s === 401 || s === 503), String(statuses));
      const busy = flood.filter((r) => r.res.statusCode === 503);
      assert.ok(busy.length >= 10, String(statuses));
      for (const r of busy) {
        assert.equal(r.body.error.code, 'SERVER_BUSY');
        assert.equal(r.res.headers['retry-after'], '1');
        assert.equal(r.res.headers['cache-control'], 'no-store');
      }
      // A refused attempt is not a failure of that person's email (all 5 are left)...
      const refused = statuses.indexOf(503);
      for (let i = 0; i < 5; i++) assert.equal((await attempt(refused)).res.statusCode, 401);
      assert.equal((await attempt(refused)).res.statusCode, 429);
      // ...but it counts toward the per-IP ceiling (50): 1 refused + 5 failed above, 44 more failures, then 429.
      const ip = `198.19.0.${refused + 1}`;
      const other = (n: number) => call(t.app, 'POST', '/api/v1/auth/login', { email: `other-${n}-${email}`, password: 'Wrong-Password-1' }, { device: { userAgent: 'test', ip } });
      for (let n = 0; n < 44; n++) assert.equal((await other(n)).res.statusCode, 401, `failure ${n + 7}`);
      assert.equal((await other(44)).res.statusCode, 429);
      // And the real user signs in once the flood is over.
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD })).res.statusCode, 200);
    } finally {
      await t.close();
    }
  });
});
