/**
 * Issue 4, Redis: with REDIS_URL the login limit (5 per 15 minutes per IP +
 * email) holds across instances, and so does the per-account limit and its
 * clearing by a known device's sign-in (docs/security.md); a lost Redis degrades to per-instance
 * limits with a logged warning, never to a 500 and never to "no limit".
 *
 * Every test counts under a fresh email and IP, so its Redis keys are its own
 * (other runs and files cannot collide), and deletes them afterwards. The
 * "Redis is down" test needs no Redis and runs everywhere.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ManualClock } from '../../src/platform/clock.ts';
import { call, createTestApp, databaseKinds, type Device, enableMfa, laptop, PASSWORD, randomKeys, signupAndLogin, type TestApp, trustDevice, uniqueEmail } from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';

const redisUrl = process.env.TEST_REDIS_URL;
const kind = databaseKinds()[0]!;
/** The client options src/app/main.ts uses: fail fast, never queue. */
const CLIENT_OPTIONS = { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, commandTimeout: 500 } as const;

const randomIp = () => `198.51.${randomInt(0, 256)}.${randomInt(1, 255)}`;

const wrongLogin = (t: TestApp, email: string, ip: string) =>
  call(t.app, 'POST', '/api/v1/auth/login', { email, password: 'Wrong-Password-1' }, { device: { userAgent: 'test', ip } });

function assertLimited(response: Awaited<ReturnType<typeof wrongLogin>>) {
  assert.equal(response.res.statusCode, 429, response.res.body);
  assert.equal(response.body.error.code, 'RATE_LIMITED');
  const retryAfter = Number(response.res.headers['retry-after']);
  assert.ok(retryAfter > 0 && retryAfter <= 900, `Retry-After: ${response.res.headers['retry-after']}`);
}

/** Two instances on one database (and one clock and key set, like a deployment), each with its own Redis client. */
async function twoInstances(clientFor: () => Redis) {
  const db: TestDatabase = await kind.create();
  const clock = new ManualClock(Date.now());
  const keys = randomKeys();
  const clients = [clientFor(), clientFor()];
  const [a, b] = await Promise.all(
    clients.map((redis) => createTestApp(kind, { db, clock, keys, env: { RATE_LIMITS: 'on' }, deps: { redis } })),
  );
  return {
    a: a!,
    b: b!,
    clients,
    async close() {
      await Promise.all([a!.close(), b!.close()]);
      for (const client of clients) client.disconnect();
      await db.drop();
    },
  };
}

if (!redisUrl) {
  test('rate limits shared through Redis', (t) => t.skip('TEST_REDIS_URL not set: Redis tests NOT run'));
} else {
  describe('rate limits shared through Redis (TEST_REDIS_URL)', () => {
    let instances: Awaited<ReturnType<typeof twoInstances>>;
    let admin: Redis;
    const emails: string[] = [];

    before(async () => {
      admin = new Redis(redisUrl);
      instances = await twoInstances(() => new Redis(redisUrl, CLIENT_OPTIONS));
      await Promise.all(instances.clients.map((client) => client.status === 'ready' || new Promise((resolve) => client.once('ready', resolve))));
    });
    afterEach(async () => {
      for (const email of emails.splice(0)) {
        const keys = await admin.keys(`td-rl:*${email}`);
        if (keys.length > 0) await admin.del(...keys);
      }
    });
    after(async () => {
      await instances.close();
      admin.disconnect();
    });

    test('the login limit trips on the 6th attempt spread over two instances, for both', async () => {
      const { a, b } = instances;
      const email = uniqueEmail('shared-limit');
      emails.push(email);
      const ip = randomIp();
      for (const instance of [a, b, a, b, a]) assert.equal((await wrongLogin(instance, email, ip)).res.statusCode, 401);
      assertLimited(await wrongLogin(b, email, ip));
      assertLimited(await wrongLogin(a, email, ip));
      // The counters are in Redis: per IP + email and per account, each at 5
      // (refused attempts are not checked, so they are not counted as failures).
      assert.equal(await admin.get(`td-rl:login:ip-email:${ip}:${email}`), '5');
      assert.equal(await admin.get(`td-rl:login:account:${email}`), '5');
      assert.ok(Number(await admin.pttl(`td-rl:login:account:${email}`)) > 15 * 60_000, 'the account counter lives a day');
    });

    test('strangers lock an account on both instances; its trusted device signs in on the other one and clears the shared count', async () => {
      const { a, b } = instances;
      const owner = await signupAndLogin(a.app, laptop({ ip: randomIp() }));
      emails.push(owner.email);
      await enableMfa(a, owner);
      // One address for the owner's trusted device (random public addresses could be far apart: impossible travel would ask for the code).
      const ownerIp = randomIp();
      const { deviceToken } = await trustDevice(a, owner, laptop({ ip: ownerIp }));
      for (let n = 0; n < 100; n++) assert.equal((await wrongLogin(n % 2 === 0 ? a : b, owner.email, `192.0.2.${Math.floor(n / 5) + 1}`)).res.statusCode, 401);
      assert.equal(await admin.get(`td-rl:login:account:${owner.email}`), '100');
      const right = (t: TestApp, device: Device) => call(t.app, 'POST', '/api/v1/auth/login', { email: owner.email, password: PASSWORD }, { device });
      for (const instance of [a, b]) assert.equal((await right(instance, laptop({ ip: randomIp() }))).res.statusCode, 429);
      const known = await right(b, laptop({ ip: ownerIp, deviceToken }));
      assert.equal(known.res.statusCode, 200, known.res.body);
      assert.equal(known.body.data.mfa_bypassed, true);
      assert.equal(await admin.exists(`td-rl:login:account:${owner.email}`), 0, 'the shared count is gone');
      const untrusted = await right(a, laptop({ ip: randomIp() }));
      assert.equal(untrusted.res.statusCode, 200, untrusted.res.body);
      assert.equal(untrusted.body.data.mfa_required, true);
    });

    test('Redis lost and back: per-instance counting meanwhile (one warning), shared again after', async () => {
      const { a, clients } = instances;
      const email = uniqueEmail('redis-blip');
      emails.push(email);
      const ip = randomIp();
      for (let i = 0; i < 3; i++) assert.equal((await wrongLogin(a, email, ip)).res.statusCode, 401);

      const ended = new Promise((resolve) => clients[0]!.once('end', resolve));
      clients[0]!.disconnect();
      await ended;
      for (let i = 0; i < 2; i++) assert.equal((await wrongLogin(a, email, ip)).res.statusCode, 401);
      assert.equal(a.logs.text.split('rate limits: Redis unavailable').length - 1, 1, 'one warning for the outage');

      await clients[0]!.connect();
      // Redis still holds 3: two more are allowed, the 6th counted there is refused.
      for (let i = 0; i < 2; i++) assert.equal((await wrongLogin(a, email, ip)).res.statusCode, 401);
      assertLimited(await wrongLogin(a, email, ip));
      assert.match(a.logs.text, /rate limits: Redis answers again/);
    });
  });
}

describe('rate limits while Redis is down', () => {
  test('requests are answered and limited per instance, with a warning; never a 500', async () => {
    // Port 1: nothing listens, every connection attempt is refused.
    const instances = await twoInstances(() => new Redis('redis://127.0.0.1:1', CLIENT_OPTIONS).on('error', () => undefined));
    try {
      const { a, b } = instances;
      const email = uniqueEmail('redis-down');
      const ip = randomIp();
      for (let i = 0; i < 5; i++) assert.equal((await wrongLogin(a, email, ip)).res.statusCode, 401);
      assertLimited(await wrongLogin(a, email, ip));
      // Instance b counts on its own: the documented price of a lost Redis.
      assert.equal((await wrongLogin(b, email, ip)).res.statusCode, 401);
      assert.equal(a.logs.text.split('rate limits: Redis unavailable').length - 1, 1, 'warned once, not per request');
      assert.doesNotMatch(a.logs.text + b.logs.text, /INTERNAL_ERROR/);
    } finally {
      await instances.close();
    }
  });
});
