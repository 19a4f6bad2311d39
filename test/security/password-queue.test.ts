/**
 * docs/security.md: password hashing is bounded and fair. When the line of
 * hashes waiting is full, a request is refused at once instead of queueing
 * without limit: 429 RATE_LIMITED when its client is over its share (it has
 * used the line recently), 503 SERVER_BUSY when the line is full of clients
 * no heavier than it; a lighter client takes a heavier one's place. Known
 * devices have a priority lane. A refused login counts toward the per-IP
 * ceiling (so a flood from one address still reaches it), not against the
 * person's email or account.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPasswordHasher, createUsage } from '../../src/platform/crypto/passwords.ts';
import { call, createTestApp, databaseKinds, PASSWORD, uniqueEmail } from '../helpers/app.ts';

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const kind = databaseKinds()[0]!;

describe('bounded password hashing', () => {
  test('the per-client use is bounded: at the bound the client quiet the longest is forgotten, the others keep their count', () => {
    let t = 0;
    const usage = createUsage(30_000, 3, () => t);
    for (const client of ['a', 'b', 'c']) usage.add(client);
    t = 10;
    usage.add('a'); // a is seen again: b is now the one quiet the longest
    usage.add('d');
    assert.equal(usage.size, 3);
    assert.equal(usage.score('b'), 0, 'b forgotten: it counts as new');
    assert.ok(usage.score('a') > 1.9, 'a kept its two attempts');
    assert.ok(usage.score('c') > 0.9 && usage.score('d') > 0.9);
    // A spray of new clients never grows it, and never stops new clients from being counted.
    for (let i = 0; i < 100; i++) usage.add(`spray-${i}`);
    assert.equal(usage.size, 3);
    assert.ok(usage.score('spray-99') > 0.9, 'the newest client is counted even at the bound');
  });

  test('distinct clients beyond the running hash and the waiting ones are refused at once with SERVER_BUSY', async () => {
    const hasher = createPasswordHasher(CHEAP, 1, 2);
    const hashed = await hasher.hash(PASSWORD);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => hasher.verify(hashed, PASSWORD, { client: `c${i}` })));
    const busy = results.filter((r) => r.status === 'rejected');
    assert.equal(results.filter((r) => r.status === 'fulfilled' && r.value === true).length, 3, 'one running + two waiting');
    assert.equal(busy.length, 7);
    // None of them had used the line before: the server is busy, no one is over a share.
    for (const r of busy) assert.equal((r as PromiseRejectedResult).reason.code, 'SERVER_BUSY');
    // The line drains: later calls work again.
    assert.equal(await hasher.verify(hashed, PASSWORD, { client: 'later' }), true);
    await assert.rejects(Promise.all(Array.from({ length: 5 }, (_, i) => hasher.verifyDummy('x', { client: `d${i}` }))), (e: any) => e.code === 'SERVER_BUSY');
  });

  test("one client's burst is told it is over its share (429 with Retry-After), and never refuses another client's single hash", async () => {
    const hasher = createPasswordHasher(CHEAP, 1, 2);
    const hashed = await hasher.hash(PASSWORD);
    const burst = Array.from({ length: 10 }, () => hasher.verify(hashed, PASSWORD, { client: 'burst' }));
    // Another client arrives while the burst fills the line: it takes the place of the burst's newest waiter.
    const single = hasher.verify(hashed, PASSWORD, { client: 'single' });
    const results = await Promise.allSettled(burst);
    assert.equal(await single, true, 'the other client is served');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(results.length - refused.length, 2, 'the burst keeps the running hash and one waiting place');
    for (const r of refused) {
      assert.equal(r.reason.code, 'RATE_LIMITED');
      assert.ok(Number(r.reason.headers['retry-after']) >= 1);
    }
  });

  test('the least recent user of the line goes first; the priority lane goes before every shared waiter', async () => {
    const hasher = createPasswordHasher(CHEAP, 1, 8, Number.POSITIVE_INFINITY);
    const hashed = await hasher.hash(PASSWORD);
    const order: string[] = [];
    const run = (name: string, lane: Parameters<typeof hasher.verify>[2]) => hasher.verify(hashed, PASSWORD, lane).then(() => order.push(name));
    await Promise.all([
      run('heavy-1', { client: 'heavy' }),
      run('heavy-2', { client: 'heavy' }),
      run('heavy-3', { client: 'heavy' }),
      run('light', { client: 'light' }),
      run('known', { priority: true }),
    ]);
    // The shared lane has one slot, so its completions are its start order: heavy-1 was running, then the
    // client that had used the line least, then the rest of heavy's. The known device ran beside them in
    // its lane's own slot, from the start: done long before the last shared waiter (completion order of
    // two parallel hashes is the machine's, so only this much of it is asserted).
    assert.deepEqual(order.filter((name) => name !== 'known'), ['heavy-1', 'light', 'heavy-2', 'heavy-3']);
    assert.ok(order.indexOf('known') < order.indexOf('heavy-3'), order.join(', '));
  });

  test('the priority lane has one slot of its own: a known device runs while the shared lane is full and refusing', async () => {
    const hasher = createPasswordHasher(CHEAP, 1, 2);
    const hashed = await hasher.hash(PASSWORD);
    const shared = Promise.allSettled(Array.from({ length: 6 }, (_, i) => hasher.verify(hashed, PASSWORD, { client: `s${i}` })));
    const known = Array.from({ length: 3 }, () => hasher.verify(hashed, PASSWORD, { priority: true }));
    assert.deepEqual(await Promise.all(known), [true, true, true], 'never refused: one runs at once, the others wait for it');
    const results = await shared;
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3, 'the shared lane kept its own bound (1 running + 2 waiting)');
  });

  test('an honest burst (30 parallel sign-ins of one user) gets 200s and 429s with Retry-After, never a 503; another client signs in meanwhile', async () => {
    const t = await createTestApp(kind, { env: { RATE_LIMITS: 'on' }, deps: { passwordHasher: createPasswordHasher(CHEAP, 1, 4, Number.POSITIVE_INFINITY) } });
    try {
      const email = uniqueEmail('burst');
      const other = uniqueEmail('other');
      for (const address of [email, other]) assert.equal((await call(t.app, 'POST', '/api/v1/auth/signup', { email: address, password: PASSWORD })).res.statusCode, 201);
      const signIn = (address: string, ip: string) => call(t.app, 'POST', '/api/v1/auth/login', { email: address, password: PASSWORD }, { device: { userAgent: 'test', ip } });
      const burst = Array.from({ length: 30 }, () => signIn(email, '198.19.1.1'));
      const single = signIn(other, '198.19.1.2');
      const results = await Promise.all(burst);
      assert.equal((await single).res.statusCode, 200, 'the other client is not refused by the burst');
      const statuses = results.map((r) => r.res.statusCode);
      assert.ok(statuses.every((s) => s === 200 || s === 429), String(statuses));
      assert.ok(statuses.filter((s) => s === 200).length >= 4, String(statuses));
      for (const r of results.filter((r) => r.res.statusCode === 429)) {
        assert.equal(r.body.error.code, 'RATE_LIMITED');
        assert.ok(Number(r.res.headers['retry-after']) >= 1);
      }
      // Refused at the line, not failed: the person's own limits are untouched (5 wrong passwords are still 401s).
      for (let i = 0; i < 5; i++) assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email, password: 'Wrong-Password-1' }, { device: { userAgent: 'test', ip: '198.19.1.1' } })).res.statusCode, 401);
    } finally {
      await t.close();
    }
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
