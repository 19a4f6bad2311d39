/**
 * Issue 4, "several instances, one truth": two app instances, each with its
 * own connection pool, on one PostgreSQL schema, sharing keys and one manual
 * clock as a real deployment shares its configuration. Whatever one instance
 * writes, the other's very next request sees: nothing that decides trust or
 * token validity is cached in a process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  call,
  createTestApp,
  databaseKinds,
  enableMfa,
  laptop,
  loginStep,
  loginWithMfa,
  twoInstances,
  type TwoInstances,
  signupAndLogin,
  type TestApp,
  trustDevice,
} from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';
import type { DevicesRepository } from '../../src/store/devices.repository.ts';

const kind = databaseKinds().find((k) => k.name === 'postgres');

if (!kind) {
  test('two instances on one PostgreSQL', (t) => t.skip('TEST_DATABASE_URL does not name PostgreSQL: multi-instance tests NOT run'));
} else {
  describe('a trusted sign-in racing the revocation of its device (two instances, PostgreSQL)', () => {
    // Instance b pauses right after it has rotated the device token, before the
    // session is opened: the window in which a revocation on instance a used to
    // commit, so that the sign-in then opened a session on a revoked device that
    // kept answering 200. Now the rotation and the session are one transaction
    // under the user's lock: the revocation waits for it and then ends the session.
    let instances: TwoInstances;
    let rotated: () => void = () => {};
    let pauseMs = 0;
    before(async () => {
      instances = await twoInstances(kind, {
        wrapDevicesRepository: (repository: DevicesRepository): DevicesRepository => ({
          ...repository,
          async rotateToken(...args: Parameters<DevicesRepository['rotateToken']>) {
            const result = await repository.rotateToken(...args);
            if (pauseMs > 0) {
              rotated();
              await new Promise((resolve) => setTimeout(resolve, pauseMs));
            }
            return result;
          },
        }),
      });
    });
    after(() => instances.close());

    test('once the revocation has returned, no session of the sign-in is alive', async () => {
      const { a, b } = instances;
      for (let round = 0; round < 3; round++) {
        const user = await signupAndLogin(a.app, laptop());
        await enableMfa(a, user);
        const trusted = await trustDevice(a, user, laptop());
        pauseMs = 300;
        const rotation = new Promise<void>((resolve) => (rotated = resolve));
        const signIn = loginStep(b, user, laptop({ deviceToken: trusted.deviceToken }));
        await rotation; // b has rotated the token and is paused before the session
        const revoke = await call(a.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: trusted.accessToken });
        pauseMs = 0;
        assert.equal(revoke.res.statusCode, 200);
        const login = await signIn;
        assert.equal(login.res.statusCode, 200);
        if (login.body.data.access_token) {
          // The sign-in got in before the revocation (it held the lock); the revocation then ended its session.
          const after = await call(b.app, 'GET', '/api/v1/devices', undefined, { token: login.body.data.access_token });
          assert.equal(after.res.statusCode, 401, 'a session opened on the device outlived its revocation');
          const refresh = await call(a.app, 'POST', '/api/v1/auth/refresh', { refresh_token: login.body.data.refresh_token });
          assert.equal(refresh.res.statusCode, 401);
        }
        const next = await loginStep(b, user, laptop({ deviceToken: login.body.data.device_token ?? trusted.deviceToken }));
        assert.equal(next.body.data.mfa_required, true);
      }
    });
  });

  describe('two instances on one PostgreSQL', () => {
    let db: TestDatabase;
    let a: TestApp;
    let b: TestApp;
    let instances: TwoInstances;

    before(async () => {
      instances = await twoInstances(kind);
      ({ db, a, b } = instances);
    });
    after(() => instances.close());

    test('50 concurrent activations of one token over both instances → exactly one 200 and one device', async () => {
      const device = laptop();
      const user = await signupAndLogin(a.app, device);
      await enableMfa(a, user);
      const verified = await loginWithMfa(a, user, device);
      const body = { activation_token: verified.trusted_device.activation_token };

      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          call((i % 2 === 0 ? a : b).app, 'POST', '/api/v1/devices/activate', body, { token: verified.access_token, device }),
        ),
      );
      const statuses = results.map((r) => r.res.statusCode);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
      assert.ok(
        results.every((r) => r.res.statusCode === 200 || r.body.error.code === 'ACTIVATION_TOKEN_USED'),
        `statuses: ${statuses.join(',')}`,
      );

      const rows = await db.handle.db.selectFrom('trusted_devices').select(['id', 'status']).where('user_id', '=', user.userId).execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.status, 'active');
    });

    test('a device trusted on one instance bypasses MFA on the other; revoked through 1, untrusted on 2 at once', async () => {
      const user = await signupAndLogin(a.app, laptop());
      await enableMfa(a, user);
      const trusted = await trustDevice(a, user, laptop());
      const device = laptop({ deviceToken: trusted.deviceToken });

      const bypass = await loginStep(b, user, device);
      assert.equal(bypass.res.statusCode, 200);
      assert.equal(bypass.body.data.mfa_bypassed, true);
      assert.equal(bypass.body.data.trusted_device_id, trusted.device.id);

      const revoke = await call(a.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: trusted.accessToken });
      assert.equal(revoke.res.statusCode, 200);

      const next = await loginStep(b, user, device);
      assert.equal(next.res.statusCode, 200);
      assert.equal(next.body.data.mfa_required, true);
    });

    test('a refresh token rotated on one instance cannot be reused on the other (and the session ends)', async () => {
      const user = await signupAndLogin(a.app);
      const rotated = await call(a.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(rotated.res.statusCode, 200);

      const reuse = await call(b.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken });
      assert.equal(reuse.res.statusCode, 401);
      assert.equal(reuse.body.error.code, 'INVALID_TOKEN');
      const newest = await call(a.app, 'POST', '/api/v1/auth/refresh', { refresh_token: rotated.body.data.refresh_token });
      assert.equal(newest.res.statusCode, 401);
    });

    test('a session ended through one instance is refused by the other on the very next request', async () => {
      const user = await signupAndLogin(a.app, laptop());
      const other = await call(b.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop() });
      assert.equal((await call(b.app, 'GET', '/api/v1/auth/me', undefined, { token: other.body.data.access_token })).res.statusCode, 200);
      // "Sign out everywhere else" through instance a; the clock does not move.
      const end = await call(a.app, 'DELETE', '/api/v1/sessions?except_current=true', undefined, { token: user.accessToken });
      assert.deepEqual(end.body.data, { revoked_count: 1 });
      assert.equal((await call(b.app, 'GET', '/api/v1/auth/me', undefined, { token: other.body.data.access_token })).res.statusCode, 401);
      assert.equal((await call(b.app, 'POST', '/api/v1/auth/refresh', { refresh_token: other.body.data.refresh_token })).res.statusCode, 401);
      assert.equal((await call(b.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 200);
    });

    test('a device revoked through one instance signs out its sessions on the other at once', async () => {
      const user = await signupAndLogin(a.app, laptop());
      await enableMfa(a, user);
      const trusted = await trustDevice(a, user, laptop());
      const bypass = await loginStep(b, user, laptop({ deviceToken: trusted.deviceToken }));
      const phone = await loginWithMfa(b, user, laptop({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1' }));
      assert.equal((await call(a.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: phone.access_token })).res.statusCode, 200);
      for (const token of [trusted.accessToken, bypass.body.data.access_token]) {
        assert.equal((await call(b.app, 'GET', '/api/v1/devices', undefined, { token })).res.statusCode, 401);
      }
    });

    test('concurrent refreshes of one token over both instances: exactly one wins', async () => {
      const user = await signupAndLogin(a.app);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => call((i % 2 === 0 ? a : b).app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken })),
      );
      assert.equal(results.filter((r) => r.res.statusCode === 200).length, 1);
    });
  });
}
