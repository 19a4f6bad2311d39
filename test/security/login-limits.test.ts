/**
 * docs/security.md, rate limits: login counts FAILED attempts only
 * (per IP + email, per account across IPs, per IP across emails, IPv6 per
 * /64); the per-user API budget is shared across routes; the in-memory
 * counters cannot be evicted by a spray. In-process store; the Redis store
 * is tested in test/scale/redis-rate-limit.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/platform/clock.ts';
import { createMemoryCounterStore } from '../../src/platform/http/rate-limit-store.ts';
import { clientNetwork } from '../../src/platform/http/rate-limits.ts';
import { call, createTestApp, databaseKinds, PASSWORD, type TestApp, uniqueEmail } from '../helpers/app.ts';

const kind = databaseKinds()[0]!;

describe('login limits (RATE_LIMITS=on)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp(kind, { env: { RATE_LIMITS: 'on' } });
  });
  after(() => t.close());

  const login = (email: string, ip: string, password = 'Wrong-Password-1') =>
    call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device: { userAgent: 'test', ip } });

  /** Signs up from its own address, so sign-ups stay under their per-IP limit. */
  const newUser = async (ip: string) => {
    const email = uniqueEmail();
    const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD }, { device: { userAgent: 'test', ip } });
    assert.equal(signup.res.statusCode, 201);
    const session = await login(email, ip, PASSWORD);
    return { email, accessToken: session.body.data.access_token as string };
  };

  const assertLimited = (response: Awaited<ReturnType<typeof login>>) => {
    assert.equal(response.res.statusCode, 429, response.res.body);
    assert.equal(response.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(response.res.headers['retry-after']) > 0);
  };

  test('successful sign-ins do not count: the 10th sign-in works, and 5 failures after them are still allowed', async () => {
    const user = await newUser('192.0.2.70');
    for (let i = 0; i < 9; i++) assert.equal((await login(user.email, '192.0.2.70', PASSWORD)).res.statusCode, 200, `sign-in ${i + 1}`);
    for (let i = 0; i < 5; i++) assert.equal((await login(user.email, '192.0.2.70')).res.statusCode, 401);
    assertLimited(await login(user.email, '192.0.2.70'));
    // Limited means limited: the right password is not checked either.
    assertLimited(await login(user.email, '192.0.2.70', PASSWORD));
  });

  test('150 wrong passwords for one account from 30 IPs: the per-account limit locks it, even for the right password', async () => {
    const user = await newUser('192.0.2.71');
    const statuses: number[] = [];
    for (let n = 0; n < 150; n++) statuses.push((await login(user.email, `198.18.${Math.floor(n / 5)}.1`)).res.statusCode);
    assert.deepEqual(statuses.slice(0, 100), Array(100).fill(401));
    assert.deepEqual(statuses.slice(100), Array(50).fill(429));
    const right = await login(user.email, '198.18.200.1', PASSWORD);
    assertLimited(right);
    assert.ok(Number(right.res.headers['retry-after']) > 15 * 60, 'a day-long window');
    // Another account is not affected.
    const other = await newUser('192.0.2.72');
    assert.equal((await login(other.email, '198.18.0.1', PASSWORD)).res.statusCode, 200);
  });

  test('distinct emails from one IP hit the per-IP ceiling (50 failures); another IP is not affected', async () => {
    const statuses: number[] = [];
    for (let n = 0; n < 60; n++) statuses.push((await login(uniqueEmail('spray'), '203.0.113.99')).res.statusCode);
    assert.deepEqual(statuses.slice(0, 50), Array(50).fill(401));
    assert.deepEqual(statuses.slice(50), Array(10).fill(429));
    assert.equal((await login(uniqueEmail('spray'), '203.0.113.100')).res.statusCode, 401);
  });

  test('IPv6 clients are counted per /64', async () => {
    const email = uniqueEmail('v6');
    for (let i = 1; i <= 5; i++) assert.equal((await login(email, `2001:db8:aa:bb::${i.toString(16)}`)).res.statusCode, 401);
    assertLimited(await login(email, '2001:db8:aa:bb:ffff:1:2:3'));
    assert.equal((await login(email, '2001:db8:aa:bc::1')).res.statusCode, 401, 'another /64');
  });

  test('device and session routes share one budget per user (60 per minute across routes)', async () => {
    const user = await newUser('192.0.2.73');
    for (let i = 0; i < 30; i++) assert.equal((await call(t.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken })).res.statusCode, 200);
    for (let i = 0; i < 15; i++) assert.equal((await call(t.app, 'GET', '/api/v1/devices/events', undefined, { token: user.accessToken })).res.statusCode, 200);
    for (let i = 0; i < 15; i++) assert.equal((await call(t.app, 'GET', '/api/v1/sessions', undefined, { token: user.accessToken })).res.statusCode, 200);
    const limited = await call(t.app, 'GET', '/api/v1/devices/events', undefined, { token: user.accessToken });
    assert.equal(limited.res.statusCode, 429);
    assert.equal((await call(t.app, 'GET', '/api/v1/sessions', undefined, { token: user.accessToken })).res.statusCode, 429);
    assert.equal((await call(t.app, 'DELETE', '/api/v1/devices/00000000-0000-4000-8000-000000000000', undefined, { token: user.accessToken })).res.statusCode, 429);
    // The window passes with the injected clock.
    t.clock.advance(61_000);
    assert.equal((await call(t.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken })).res.statusCode, 200);
  });
});

describe('client addresses', () => {
  test('IPv6 is keyed by its /64, IPv4 (also IPv4-mapped) by the address', () => {
    assert.equal(clientNetwork('2001:db8:aa:bb::1'), '2001:db8:aa:bb::/64');
    assert.equal(clientNetwork('2001:0DB8:00aa:00bb:1:2:3:4'), '2001:db8:aa:bb::/64');
    assert.equal(clientNetwork('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientNetwork('::1'), '0:0:0:0::/64');
    assert.equal(clientNetwork('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(clientNetwork('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(clientNetwork('192.0.2.1'), '192.0.2.1');
  });

  test('IPv4-mapped IPv6 in hex or written out is keyed by its IPv4 address, not one shared ::/64', () => {
    assert.equal(clientNetwork('::ffff:c000:201'), '192.0.2.1');
    assert.equal(clientNetwork('0:0:0:0:0:FFFF:192.0.2.1'), '192.0.2.1');
    assert.equal(clientNetwork('not an address'), 'not an address');
  });
});

describe('in-memory counters', () => {
  test('a spray of new keys does not evict a victim counter; when full, new keys are refused', async () => {
    const clock = new ManualClock(1_000_000);
    const store = createMemoryCounterStore(clock, { maxKeys: 1000 });
    for (let i = 0; i < 4; i++) await store.hit([{ key: 'victim', windowMs: 60_000 }]);
    const sprayed = await store.hit(Array.from({ length: 5000 }, (_, i) => ({ key: `spray-${i}`, windowMs: 60_000 })));
    assert.ok(sprayed.slice(999).every((s) => s.count === Number.MAX_SAFE_INTEGER), 'keys beyond the cap are refused');
    const [victim] = await store.hit([{ key: 'victim', windowMs: 60_000 }]);
    assert.equal(victim!.count, 5, 'the victim counter survived the spray');
    // Once the window has passed, expired counters make room again.
    clock.advance(61_000);
    const [fresh] = await store.hit([{ key: 'new', windowMs: 60_000 }]);
    assert.equal(fresh!.count, 1);
  });

  test('undo takes one back from a live counter only', async () => {
    const clock = new ManualClock(0);
    const store = createMemoryCounterStore(clock);
    await store.hit([{ key: 'k', windowMs: 1000 }, { key: 'k', windowMs: 1000 }]);
    await store.undo(['k', 'missing']);
    assert.equal((await store.hit([{ key: 'k', windowMs: 1000 }]))[0]!.count, 2);
    clock.advance(1000);
    await store.undo(['k']);
    assert.equal((await store.hit([{ key: 'k', windowMs: 1000 }]))[0]!.count, 1);
  });
});
