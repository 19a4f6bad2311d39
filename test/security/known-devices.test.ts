/**
 * docs/security.md, "Strangers never lock out the owner": a login that
 * presents a valid device of the email's account (its token, and its proof
 * when key-bound) is exempt from the per-account and per-IP login limits and
 * is hashed in the priority lane; its success, and a password reset, clear
 * the per-account failure count; a wrong token or another account's token
 * earns nothing; a device proof is accepted once across every endpoint that
 * checks it. Outcomes are counted, never timed (the times are measured by
 * `npm run bench:login-flood`).
 */
import assert from 'node:assert/strict';
import { setImmediate as yieldOnce } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { generateToken } from '../../src/platform/crypto/tokens.ts';
import { createPasswordHasher } from '../../src/platform/crypto/passwords.ts';
import { ACCOUNT_LOCKED_MESSAGE } from '../../src/platform/http/rate-limits.ts';
import {
  call,
  createTestApp,
  databaseKinds,
  type Device,
  enableMfa,
  laptop,
  loginWithMfa,
  nextCode,
  PASSWORD,
  type TestApp,
  type TestUser,
  uniqueEmail,
} from '../helpers/app.ts';
import { makeDeviceKey, proofHeader, type TestDeviceKey } from '../helpers/device-keys.ts';
import { drain, linkToken, smtpTransport, TestSmtpServer, testSender } from '../helpers/mail.ts';

const NEW_PASSWORD = 'Brand-New-Pass-7';
const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

let ipCounter = 0;
/** An address no other test of this file uses. */
const freshIp = () => `100.64.${Math.floor(++ipCounter / 250)}.${(ipCounter % 250) + 1}`;

/** Signs up from its own address (the sign-up limit is per IP), turns MFA on. */
async function newUser(t: TestApp, mfa = true): Promise<TestUser> {
  const ip = freshIp();
  const email = uniqueEmail('owner');
  const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD }, { device: { userAgent: 'test', ip } });
  assert.equal(signup.res.statusCode, 201, signup.res.body);
  const login = await call(t.app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD }, { device: laptop({ ip }) });
  assert.equal(login.res.statusCode, 200, login.res.body);
  const user: TestUser = { email, password: PASSWORD, userId: signup.body.data.user_id, accessToken: login.body.data.access_token, refreshToken: login.body.data.refresh_token };
  if (mfa) await enableMfa(t, user);
  return user;
}

/** The owner's laptop made a trusted device (key-bound when a key is given); its device token. */
async function trustLaptop(t: TestApp, user: TestUser, key?: TestDeviceKey): Promise<string> {
  const device = laptop({ ip: freshIp() });
  const verified = await loginWithMfa(t, user, device);
  const body: Record<string, unknown> = { activation_token: verified.trusted_device.activation_token };
  if (key) body.public_key = key.publicJwk;
  const activate = await call(t.app, 'POST', '/api/v1/devices/activate', body, { token: verified.access_token, device });
  assert.equal(activate.res.statusCode, 200, activate.res.body);
  return activate.body.data.device_token;
}

const login = (t: TestApp, email: string, password: string, device: Device, proof?: string) =>
  call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device, headers: proof === undefined ? {} : { 'x-device-proof': proof } });

/** 100 wrong passwords from 20 addresses (5 each): every one a plain 401. */
async function strangersGuess(t: TestApp, email: string) {
  const statuses: number[] = [];
  for (let n = 0; n < 100; n++) statuses.push((await login(t, email, 'Wrong-Password-1', { userAgent: 'stranger', ip: `192.0.2.${Math.floor(n / 5) + 1}` })).res.statusCode);
  assert.deepEqual(statuses, Array(100).fill(401));
}

function assertAccountLocked(response: Awaited<ReturnType<typeof login>>) {
  assert.equal(response.res.statusCode, 429, response.res.body);
  assert.equal(response.body.error.code, 'RATE_LIMITED');
  assert.equal(response.body.error.message, ACCOUNT_LOCKED_MESSAGE);
  assert.match(response.body.error.message, /use a device you signed in on before, or reset your password/i);
  assert.ok(Number(response.res.headers['retry-after']) > 15 * 60, 'the day-long window');
}

for (const kind of databaseKinds()) {
  describe(`known devices and the per-account limit (${kind.name})`, () => {
    let t: TestApp;
    let smtp: TestSmtpServer;
    let sender: ReturnType<typeof testSender>;
    before(async () => {
      t = await createTestApp(kind, { env: { RATE_LIMITS: 'on' } });
      smtp = await new TestSmtpServer().start();
      sender = testSender(t, smtpTransport(smtp));
    });
    after(async () => {
      await smtp.stop();
      await t.close();
    });

    test('100 wrong passwords by strangers lock password sign-in for the account, never its trusted device; that sign-in clears the count', async () => {
      const owner = await newUser(t);
      const deviceToken = await trustLaptop(t, owner);
      const other = await newUser(t);
      const othersToken = await trustLaptop(t, other);

      await strangersGuess(t, owner.email);
      // The right password from a new, untrusted address: locked, and told how to get in.
      assertAccountLocked(await login(t, owner.email, PASSWORD, laptop({ ip: freshIp() })));
      // Claiming a device earns nothing: a well-formed unknown token, another account's valid token.
      assertAccountLocked(await login(t, owner.email, PASSWORD, laptop({ ip: freshIp(), deviceToken: generateToken('device') })));
      assertAccountLocked(await login(t, owner.email, PASSWORD, laptop({ ip: freshIp(), deviceToken: othersToken })));
      // The other account's device still works for the other account.
      const othersLogin = await login(t, other.email, PASSWORD, laptop({ ip: freshIp(), deviceToken: othersToken }));
      assert.equal(othersLogin.res.statusCode, 200, othersLogin.res.body);

      // The owner's trusted device, from yet another address: in, second factor skipped.
      const known = await login(t, owner.email, PASSWORD, laptop({ ip: freshIp(), deviceToken }));
      assert.equal(known.res.statusCode, 200, known.res.body);
      assert.equal(known.body.data.mfa_bypassed, true);

      // That sign-in cleared the per-account count: a new address gets the second-factor step again.
      const untrusted = await login(t, owner.email, PASSWORD, laptop({ ip: freshIp() }));
      assert.equal(untrusted.res.statusCode, 200, untrusted.res.body);
      assert.equal(untrusted.body.data.mfa_required, true);
    });

    test('a known device is exempt from the per-IP ceiling, and its wrong password is a plain 401 that counts for IP + email only', async () => {
      const owner = await newUser(t);
      let deviceToken = await trustLaptop(t, owner);
      const ip = freshIp();
      // Another account's spray from the owner's address (a shared network) fills the per-IP ceiling.
      for (let n = 0; n < 50; n++) assert.equal((await login(t, uniqueEmail('spray'), 'Wrong-Password-1', { userAgent: 'spray', ip })).res.statusCode, 401);
      const stranger = await login(t, owner.email, PASSWORD, laptop({ ip }));
      assert.equal(stranger.res.statusCode, 429, 'the address is at its ceiling');
      // The owner's device on that address: a typo answers 401, not 429; then the right password signs in.
      assert.equal((await login(t, owner.email, 'Wrong-Password-1', laptop({ ip, deviceToken }))).res.statusCode, 401);
      const known = await login(t, owner.email, PASSWORD, laptop({ ip, deviceToken }));
      assert.equal(known.res.statusCode, 200, known.res.body);
      deviceToken = known.body.data.device_token;
      // Five typos on that address and email are still five (one above, four here): the per IP + email limit holds for everyone.
      for (let i = 0; i < 4; i++) assert.equal((await login(t, owner.email, 'Wrong-Password-1', laptop({ ip, deviceToken }))).res.statusCode, 401);
      assert.equal((await login(t, owner.email, PASSWORD, laptop({ ip, deviceToken }))).res.statusCode, 429);
    });

    test('a key-bound device is known only with a valid proof, and each proof counts once', async () => {
      const owner = await newUser(t);
      const key = await makeDeviceKey();
      const deviceToken = await trustLaptop(t, owner, key);
      const device = () => laptop({ ip: freshIp(), deviceToken });
      await strangersGuess(t, owner.email);

      assertAccountLocked(await login(t, owner.email, PASSWORD, device()));
      const otherKey = await makeDeviceKey();
      assertAccountLocked(await login(t, owner.email, PASSWORD, device(), await proofHeader(t.app, otherKey)));
      assertAccountLocked(await login(t, owner.email, PASSWORD, device(), 'not-a-proof'));

      // A valid proof with a typo: a 401 (the device is known), and the proof is spent.
      const proof = await proofHeader(t.app, key);
      assert.equal((await login(t, owner.email, 'Wrong-Password-1', device(), proof)).res.statusCode, 401);
      assertAccountLocked(await login(t, owner.email, PASSWORD, device(), proof));

      const known = await login(t, owner.email, PASSWORD, device(), await proofHeader(t.app, key));
      assert.equal(known.res.statusCode, 200, known.res.body);
      assert.equal(known.body.data.mfa_bypassed, true);
    });

    test('a device proof is accepted once across endpoints: used at /auth/mfa/verify, refused at /auth/login', async () => {
      const owner = await newUser(t);
      const key = await makeDeviceKey();
      const deviceToken = await trustLaptop(t, owner, key);
      const device = laptop({ ip: freshIp(), deviceToken });
      // Without a proof the device is not trusted: the second factor is asked.
      const first = await login(t, owner.email, PASSWORD, device);
      assert.equal(first.body.data.mfa_required, true, first.res.body);
      const proof = await proofHeader(t.app, key);
      const verified = await call(
        t.app,
        'POST',
        '/api/v1/auth/mfa/verify',
        { temporary_token: first.body.data.temporary_token, code: nextCode(t, owner.totpSecret!) },
        { device, headers: { 'x-device-proof': proof } },
      );
      assert.equal(verified.res.statusCode, 200, verified.res.body);
      assert.equal(verified.body.data.trusted_device, null, 'the proof made it the known device: nothing new to activate');
      // The same proof again, at the login: spent.
      const replay = await login(t, owner.email, PASSWORD, device, proof);
      assert.equal(replay.res.statusCode, 200, replay.res.body);
      assert.equal(replay.body.data.mfa_required, true, 'a spent proof bypasses nothing');
      const fresh = await login(t, owner.email, PASSWORD, device, await proofHeader(t.app, key));
      assert.equal(fresh.body.data.mfa_bypassed, true, fresh.res.body);
    });

    test('a password reset clears the per-account count: the new password works at once from a new address', async () => {
      const owner = await newUser(t);
      await strangersGuess(t, owner.email);
      assertAccountLocked(await login(t, owner.email, PASSWORD, laptop({ ip: freshIp() })));

      const forgot = await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: owner.email }, { device: laptop({ ip: freshIp() }) });
      assert.equal(forgot.res.statusCode, 202, forgot.res.body);
      await drain(sender);
      const mail = smtp.to(owner.email).filter((m) => /^Reset your password$/.test(m.subject)).at(-1);
      assert.ok(mail, 'a reset mail');
      const reset = await call(t.app, 'POST', '/api/v1/auth/password/reset', { token: linkToken(mail), new_password: NEW_PASSWORD }, { device: laptop({ ip: freshIp() }) });
      assert.equal(reset.res.statusCode, 200, reset.res.body);

      const after = await login(t, owner.email, NEW_PASSWORD, laptop({ ip: freshIp() }));
      assert.equal(after.res.statusCode, 200, after.res.body);
      assert.equal(after.body.data.mfa_required, true, 'the reset bypasses nothing: the second factor is still asked');
    });
  });
}

describe('a many-address login flood (a small hashing line: 1 running, 4 waiting)', () => {
  const kind = databaseKinds()[0]!;
  let t: TestApp;
  before(async () => {
    t = await createTestApp(kind, { env: { RATE_LIMITS: 'on', TRUST_PROXY: '127.0.0.1' }, deps: { passwordHasher: createPasswordHasher(CHEAP, 1, 4, Number.POSITIVE_INFINITY) } });
  });
  after(() => t.close());

  test('the owner on a trusted device gets in every time, even from a flooding address; a new untrusted address gets in within 3 tries', async () => {
    const owner = await newUser(t);
    let deviceToken = await trustLaptop(t, owner);
    const newcomer = await newUser(t, false);

    // 32 parallel wrong logins from 16 addresses, distinct emails, until told to stop.
    const FLOOD_ADDRESSES = Array.from({ length: 16 }, (_, i) => `198.51.100.${i + 1}`);
    const flood = new Map<string, number>();
    let sent = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const n = sent++;
        const res = await login(t, `flood-${n}@example.com`, 'Wrong-Password-1', { userAgent: 'flood', ip: FLOOD_ADDRESSES[n % FLOOD_ADDRESSES.length]! });
        const key = `${res.res.statusCode} ${res.body?.error?.code ?? ''}`;
        flood.set(key, (flood.get(key) ?? 0) + 1);
      }
    };
    const workers = Array.from({ length: 32 }, worker);
    try {
      while (sent < 200) await yieldOnce();

      // The owner, on the address of a flooder (a shared network): five sign-ins in a row, each with the rotated token.
      const owners: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await login(t, owner.email, PASSWORD, laptop({ ip: FLOOD_ADDRESSES[0]!, deviceToken }));
        owners.push(res.res.statusCode);
        if (res.res.statusCode === 200) deviceToken = res.body.data.device_token ?? deviceToken;
      }
      // Someone signing in from a new address, untrusted.
      const tries: number[] = [];
      for (let i = 0; i < 3 && !tries.includes(200); i++) tries.push((await login(t, newcomer.email, PASSWORD, { userAgent: 'newcomer', ip: '203.0.113.250' })).res.statusCode);

      assert.deepEqual(owners, [200, 200, 200, 200, 200], `flood so far: ${JSON.stringify(Object.fromEntries(flood))}`);
      assert.ok(tries.includes(200), `new address: ${tries.join(', ')}`);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    // The line was really full: the flood was refused by it (429 over its share, or 503), never a 5xx other than 503.
    const refusedByLine = [...flood].filter(([key]) => key === '503 SERVER_BUSY' || key === '429 RATE_LIMITED').reduce((sum, [, n]) => sum + n, 0);
    assert.ok(refusedByLine > 0, JSON.stringify(Object.fromEntries(flood)));
    assert.ok([...flood.keys()].every((key) => ['401 INVALID_CREDENTIALS', '429 RATE_LIMITED', '503 SERVER_BUSY'].includes(key)), JSON.stringify(Object.fromEntries(flood)));
  });
});
