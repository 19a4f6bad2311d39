/**
 * Admin API (docs/admin-and-webhooks.md): keys stored hashed and shown once,
 * scopes per route (403), unknown or revoked keys (401), no crossing between
 * user tokens and admin keys, revocations through the same rows of what ends what (docs/sessions.md) as
 * the user's own (compared scenario by scenario), every admin action an event
 * with the key's name as actor, a rate limit per key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAdminCommand } from '../../src/app/admin-cli.ts';
import { ADMIN_SCOPES } from '../../src/features/admin/admin.service.ts';
import { hashToken } from '../../src/platform/crypto/tokens.ts';
import {
  call,
  createTestApp,
  databaseKinds,
  type Device,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  nextCode,
  SAFARI_IPHONE,
  signupAndLogin,
  type TestApp,
  type TestUser,
} from '../helpers/app.ts';

/** Runs the CLI's function; returns what it printed. */
async function cli(t: TestApp, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAdminCommand(args, t.db.handle.db, { out: (l) => out.push(l), err: (l) => err.push(l) }, t.clock);
  return { code, out, err };
}

let keyCounter = 0;
async function createKey(t: TestApp, scopes: readonly string[] = ADMIN_SCOPES, name = `desk-${++keyCounter}`) {
  const created = await cli(t, 'create-key', '--name', name, '--scopes', scopes.join(','));
  assert.equal(created.code, 0, created.err.join('\n'));
  return { key: created.out[0]!, name };
}

const admin = (t: TestApp, method: 'GET' | 'DELETE', path: string, key: string, device?: Device) =>
  call(t.app, method, `/api/v1/admin${path}`, undefined, { headers: { authorization: `Bearer ${key}` }, device });

const helpDesk = laptop({ userAgent: FIREFOX_WINDOWS, ip: '192.0.2.200' });

for (const kind of databaseKinds()) {
  describe(`admin API (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('create-key prints the key once and stores only its SHA-256; list-keys shows no secret; names are unique forever', async () => {
      const created = await cli(t, 'create-key', '--name', 'zendesk', '--scopes', 'users:read,devices:read');
      assert.equal(created.code, 0);
      assert.equal(created.out.length, 1, 'stdout holds the key and nothing else');
      const key = created.out[0]!;
      assert.match(key, /^tdk_[A-Za-z0-9_-]{43}$/);
      assert.ok(!created.err.join('\n').includes(key));
      const row = await t.db.handle.db.selectFrom('admin_keys').selectAll().where('name', '=', 'zendesk').executeTakeFirstOrThrow();
      assert.equal(row.key_hash, hashToken(key));
      assert.ok(!Object.values(row).some((v) => typeof v === 'string' && v.includes(key.slice(4))), 'no column holds the key');
      assert.equal(row.scopes, 'users:read,devices:read');

      const listed = await cli(t, 'list-keys');
      const text = [...listed.out, ...listed.err].join('\n');
      assert.match(text, /zendesk\tusers:read,devices:read\t.*\tlive/);
      assert.ok(!text.includes(key.slice(4)) && !text.includes(row.key_hash), 'neither key nor hash is listed');

      assert.equal((await cli(t, 'create-key', '--name', 'zendesk', '--scopes', 'users:read')).code, 1, 'a name is never reused');
      assert.equal((await cli(t, 'create-key', '--name', 'other', '--scopes', 'users:read,root')).code, 1, 'unknown scope');
      assert.equal((await cli(t, 'create-key', '--name', 'bad name', '--scopes', 'users:read')).code, 1, 'name shape');
      assert.equal((await cli(t, 'create-key', '--name', 'x')).code, 2, 'usage');
      assert.equal((await cli(t, 'revoke-key', '--name', 'nobody')).code, 1);
    });

    test('401 for no key, a malformed, unknown or revoked key, and for a user access token; a key never works on user routes', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const { key, name } = await createKey(t);
      const path = `/users?email=${encodeURIComponent(user.email)}`;
      assert.equal((await admin(t, 'GET', path, key)).res.statusCode, 200);

      const none = await call(t.app, 'GET', `/api/v1/admin${path}`);
      assert.equal(none.res.statusCode, 401);
      assert.equal(none.res.headers['www-authenticate'], 'Bearer');
      for (const wrong of ['not-a-key', `tdk_${'A'.repeat(43)}`, user.accessToken, user.refreshToken]) {
        const res = await admin(t, 'GET', path, wrong);
        assert.equal(res.res.statusCode, 401, wrong.slice(0, 8));
        assert.equal(res.body.error.code, 'UNAUTHORIZED');
      }
      // And the other way round: the admin key is no access token.
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: key })).res.statusCode, 401);
      assert.equal((await call(t.app, 'GET', '/api/v1/devices', undefined, { token: key })).res.statusCode, 401);
      assert.equal((await call(t.app, 'DELETE', '/api/v1/sessions', undefined, { token: key })).res.statusCode, 401);

      assert.equal((await cli(t, 'revoke-key', '--name', name)).code, 0);
      const revoked = await admin(t, 'GET', path, key);
      assert.equal(revoked.res.statusCode, 401, 'a revoked key is refused at once');
      assert.match((await cli(t, 'list-keys')).out.join('\n'), new RegExp(`${name}\\t.*\\trevoked `));
    });

    test('each route needs its scope: 403 FORBIDDEN without it, and nothing happens', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const { key: readOnly } = await createKey(t, ['users:read', 'devices:read', 'sessions:read', 'events:read']);
      const { key: usersOnly } = await createKey(t, ['users:read']);
      const u = `/users/${user.userId}`;
      const routes: Array<['GET' | 'DELETE', string, string]> = [
        ['GET', `/users?email=${encodeURIComponent(user.email)}`, 'users:read'],
        ['GET', u, 'users:read'],
        ['GET', `${u}/devices`, 'devices:read'],
        ['DELETE', `${u}/devices/00000000-0000-4000-8000-000000000000`, 'devices:write'],
        ['DELETE', `${u}/devices`, 'devices:write'],
        ['GET', `${u}/sessions`, 'sessions:read'],
        ['DELETE', `${u}/sessions/00000000-0000-4000-8000-000000000000`, 'sessions:write'],
        ['DELETE', `${u}/sessions`, 'sessions:write'],
        ['GET', `${u}/events`, 'events:read'],
      ];
      for (const [method, path, scope] of routes) {
        const withoutScope = await admin(t, method, path, usersOnly);
        if (scope === 'users:read') {
          assert.equal(withoutScope.res.statusCode, 200, path);
          continue;
        }
        assert.equal(withoutScope.res.statusCode, 403, `${method} ${path}`);
        assert.equal(withoutScope.body.error.code, 'FORBIDDEN');
        assert.deepEqual(withoutScope.body.error.details, { required_scope: scope });
        if (method === 'DELETE') assert.equal((await admin(t, method, path, readOnly)).res.statusCode, 403);
      }
      // Nothing was ended by the refused writes.
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 200);
      const found = await admin(t, 'GET', `/users?email=${encodeURIComponent(`  ${user.email.toUpperCase()} `)}`, readOnly);
      assert.deepEqual(Object.keys(found.body.data.user).sort(), ['created_at', 'display_name', 'email', 'mfa_enabled', 'user_id']);
      assert.equal(found.body.data.user.user_id, user.userId);
      const missing = await admin(t, 'GET', '/users?email=nobody%40example.com', readOnly);
      assert.equal(missing.res.statusCode, 404);
      assert.equal(missing.body.error.code, 'USER_NOT_FOUND');
      assert.equal((await admin(t, 'GET', '/users/not-a-uuid/devices', readOnly)).body.error.code, 'USER_NOT_FOUND');
    });

    test('every admin action is an event in the user\'s history, the key\'s name as actor', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const { key, name } = await createKey(t);
      const u = `/users/${user.userId}`;
      await admin(t, 'GET', `/users?email=${encodeURIComponent(user.email)}`, key, helpDesk);
      await admin(t, 'GET', u, key, helpDesk);
      await admin(t, 'GET', `${u}/devices`, key, helpDesk);
      const sessions = await admin(t, 'GET', `${u}/sessions`, key, helpDesk);
      assert.equal(sessions.body.data.sessions.length, 1);
      assert.equal(sessions.body.data.sessions[0].is_current, false);
      const events = await admin(t, 'GET', `${u}/events?limit=100`, key, helpDesk);
      assert.equal(events.res.statusCode, 200);
      await admin(t, 'DELETE', `${u}/devices`, key, helpDesk);
      const ended = await admin(t, 'DELETE', `${u}/sessions`, key, helpDesk);
      assert.deepEqual(ended.body.data, { revoked_count: 1 });
      const again = await admin(t, 'DELETE', `${u}/sessions`, key, helpDesk);
      assert.deepEqual(again.body.data, { revoked_count: 0 });

      const history = (await admin(t, 'GET', `${u}/events?limit=100`, key)).body.data.events.reverse();
      const byAdmin = history.filter((e: any) => e.actor.type === 'admin');
      assert.ok(byAdmin.every((e: any) => e.actor.name === name), 'the key name is the actor');
      const helpDeskEvents = byAdmin.filter((e: any) => e.ip_address === '192.0.2.200');
      assert.ok(helpDeskEvents.every((e: any) => /Firefox/.test(e.user_agent)), "the admin's IP and User-Agent are recorded");
      assert.deepEqual(
        byAdmin.map((e: any) => [e.type, e.device_name ?? e.cause]),
        [
          ['admin_viewed', 'account'],
          ['admin_viewed', 'account'],
          ['admin_viewed', 'devices'],
          ['admin_viewed', 'sessions'],
          ['admin_viewed', 'events'],
          ['revoked_all', 'admin'],
          ['sessions_revoked_all', 'admin'],
          ['session_revoked', 'Chrome on macOS'],
          ['sessions_revoked_all', 'admin'],
          ['admin_viewed', 'events'],
        ],
      );
      assert.equal(byAdmin.find((e: any) => e.type === 'session_revoked').cause, 'admin');
    });

    test('the admin API needs no step-up: its key\'s scope stands for it, while the user\'s own stale session is asked to step up', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const { key } = await createKey(t, ['devices:write', 'sessions:write']);
      t.clock.advance(601_000); // past STEP_UP_MAX_AGE_SECONDS, within the access token's lifetime
      const own = await call(t.app, 'DELETE', '/api/v1/devices', undefined, { token: user.accessToken });
      assert.equal(own.res.statusCode, 401);
      assert.equal(own.body.error.code, 'STEP_UP_REQUIRED');
      assert.equal((await admin(t, 'DELETE', `/users/${user.userId}/devices`, key)).res.statusCode, 200);
      assert.equal((await admin(t, 'DELETE', `/users/${user.userId}/sessions`, key)).res.statusCode, 200);
    });

    test('admin routes are rate-limited per key', async () => {
      const limited = await createTestApp(kind, { env: { RATE_LIMITS: 'on' } });
      try {
        const one = await createKey(limited, ['users:read'], 'limit-one');
        const two = await createKey(limited, ['users:read'], 'limit-two');
        const path = '/users/00000000-0000-4000-8000-000000000000';
        for (let i = 0; i < 300; i++) assert.equal((await admin(limited, 'GET', path, one.key)).res.statusCode, 404);
        const over = await admin(limited, 'GET', path, one.key);
        assert.equal(over.res.statusCode, 429);
        assert.equal(over.body.error.code, 'RATE_LIMITED');
        assert.equal((await admin(limited, 'GET', path, two.key)).res.statusCode, 404, 'another key has its own budget');
      } finally {
        await limited.close();
      }
    });

    // ── The same what ends what (docs/sessions.md) rows as the user's own actions ──────────────────
    // Scenario (as in test/sessions/what-ends-what.test.ts): a user with TOTP; laptop A trusted
    // (sessions A1 from the second factor, A2 from a bypass); phone B verified with a pending
    // activation pB; X the user's acting browser. The same action by the user (from X) and by
    // an admin must end exactly the same things.
    const phone = laptop({ userAgent: SAFARI_IPHONE, ip: '198.51.100.7' });
    const actorBrowser = laptop({ userAgent: FIREFOX_WINDOWS, ip: '192.0.2.44' });

    async function verify(user: TestUser, device: Device) {
      const login = await loginStep(t, user, device);
      const verified = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device });
      assert.equal(verified.res.statusCode, 200, verified.res.body);
      return verified.body.data;
    }

    async function scenario() {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const first = await verify(user, laptop());
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: first.trusted_device.activation_token }, { token: first.access_token, device: laptop() });
      const bypass = await loginStep(t, user, laptop({ deviceToken: activate.body.data.device_token }));
      // The bypass rotated the device token (docs/trust-model.md): the laptop now holds the successor.
      const deviceA = laptop({ deviceToken: bypass.body.data.device_token });
      const b = await verify(user, phone);
      const x = await verify(user, actorBrowser);
      return {
        user,
        deviceA,
        deviceAId: activate.body.data.device.id as string,
        sessions: {
          S0: { access: user.accessToken, refresh: user.refreshToken },
          A1: { access: first.access_token, refresh: first.refresh_token },
          A2: { access: bypass.body.data.access_token, refresh: bypass.body.data.refresh_token },
          B: { access: b.access_token, refresh: b.refresh_token },
          X: { access: x.access_token, refresh: x.refresh_token },
        } as Record<string, { access: string; refresh: string }>,
        pendingB: b.trusted_device.activation_token as string,
      };
    }
    type Scenario = Awaited<ReturnType<typeof scenario>>;

    /** What is still alive: each session's access and refresh token, pB, device A's trust. */
    async function observe(s: Scenario) {
      const ended: string[] = [];
      for (const [name, tokens] of Object.entries(s.sessions)) {
        const me = (await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: tokens.access })).res.statusCode;
        const refresh = (await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: tokens.refresh })).res.statusCode;
        assert.equal(me, refresh, `session ${name}: access and refresh agree`);
        if (me === 401) ended.push(name);
      }
      const fresh = (await verify(s.user, laptop({ userAgent: SAFARI_IPHONE, ip: '203.0.113.5' }))).access_token;
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: s.pendingB }, { token: fresh, device: phone });
      const login = await loginStep(t, s.user, s.deviceA);
      return { ended, pendingB: skip.res.statusCode, deviceATrusted: login.body.data.mfa_bypassed === true };
    }

    const sessionOf = async (s: Scenario, token: string, browser: string) =>
      (await call(t.app, 'GET', '/api/v1/sessions', undefined, { token })).body.data.sessions.find((x: any) => x.browser === browser).id as string;

    const actions: Array<{ name: string; user: (s: Scenario) => Promise<number>; admin: (s: Scenario, key: string) => Promise<number>; expected: Awaited<ReturnType<typeof observe>> }> = [
      {
        name: 'revoke one device',
        user: async (s) => (await call(t.app, 'DELETE', `/api/v1/devices/${s.deviceAId}`, undefined, { token: s.sessions.X!.access, device: actorBrowser })).res.statusCode,
        admin: async (s, key) => (await admin(t, 'DELETE', `/users/${s.user.userId}/devices/${s.deviceAId}`, key)).res.statusCode,
        expected: { ended: ['A1', 'A2'], pendingB: 200, deviceATrusted: false },
      },
      {
        name: 'revoke all devices',
        user: async (s) => (await call(t.app, 'DELETE', '/api/v1/devices', undefined, { token: s.sessions.X!.access, device: actorBrowser })).res.statusCode,
        admin: async (s, key) => (await admin(t, 'DELETE', `/users/${s.user.userId}/devices`, key)).res.statusCode,
        expected: { ended: ['A1', 'A2'], pendingB: 410, deviceATrusted: false },
      },
      {
        name: 'end one session',
        user: async (s) => (await call(t.app, 'DELETE', `/api/v1/sessions/${await sessionOf(s, s.sessions.X!.access, 'Safari')}`, undefined, { token: s.sessions.X!.access })).res.statusCode,
        admin: async (s, key) => (await admin(t, 'DELETE', `/users/${s.user.userId}/sessions/${await sessionOf(s, s.sessions.X!.access, 'Safari')}`, key)).res.statusCode,
        expected: { ended: ['B'], pendingB: 410, deviceATrusted: true },
      },
      {
        name: 'end every session',
        user: async (s) => (await call(t.app, 'DELETE', '/api/v1/sessions', undefined, { token: s.sessions.X!.access })).res.statusCode,
        admin: async (s, key) => (await admin(t, 'DELETE', `/users/${s.user.userId}/sessions`, key)).res.statusCode,
        expected: { ended: ['S0', 'A1', 'A2', 'B', 'X'], pendingB: 410, deviceATrusted: true },
      },
    ];
    for (const action of actions) {
      test(`${action.name}: an admin ends exactly what the user's own action ends`, async () => {
        const { key, name } = await createKey(t, ['devices:write', 'sessions:write']);
        const mine = await scenario();
        assert.equal(await action.user(mine), 200);
        const byUser = await observe(mine);
        const theirs = await scenario();
        assert.equal(await action.admin(theirs, key), 200);
        const byAdmin = await observe(theirs);
        assert.deepEqual(byAdmin, byUser);
        assert.deepEqual(byAdmin, action.expected);
        const history = await admin(t, 'GET', `/users/${theirs.user.userId}/events?limit=100`, (await createKey(t, ['events:read'])).key);
        const ends = history.body.data.events.filter((e: any) => ['revoked', 'session_revoked'].includes(e.type));
        assert.ok(ends.length > 0);
        assert.ok(ends.every((e: any) => e.actor.type === 'admin' && e.actor.name === name && ['admin', 'device_revoked', 'all_devices_revoked'].includes(e.cause)), JSON.stringify(ends));
      });
    }

    test('unknown or another user\'s device and session: 404, nothing ended', async () => {
      const s = await scenario();
      const other = await signupAndLogin(t.app, laptop());
      const { key } = await createKey(t, ['devices:write', 'sessions:write']);
      const res = await admin(t, 'DELETE', `/users/${other.userId}/devices/${s.deviceAId}`, key);
      assert.equal(res.res.statusCode, 404);
      assert.equal(res.body.error.code, 'DEVICE_NOT_FOUND');
      const phoneSession = await sessionOf(s, s.sessions.X!.access, 'Safari');
      assert.equal((await admin(t, 'DELETE', `/users/${other.userId}/sessions/${phoneSession}`, key)).body.error.code, 'SESSION_NOT_FOUND');
      assert.equal((await admin(t, 'DELETE', `/users/${s.user.userId}/sessions/nope`, key)).body.error.code, 'SESSION_NOT_FOUND');
      assert.deepEqual((await observe(s)).ended, []);
    });
  });
}

test('npm run admin -- create-key prints the key, and the key opens /admin', { skip: process.platform === 'win32' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'admin-cli-'));
  try {
    const env = { ...process.env, DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, LOG_LEVEL: 'silent' };
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/app/admin-cli.ts', ...args], { env, encoding: 'utf8' });
    const created = run('create-key', '--name', 'ops', '--scopes', 'users:read');
    assert.equal(created.status, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^tdk_[A-Za-z0-9_-]{43}$/);
    assert.match(created.stderr, /shown only this once/);
    const listed = run('list-keys');
    assert.match(listed.stdout, /^ops\tusers:read\t/);
    assert.ok(!listed.stdout.includes(key.slice(4)));
    assert.equal(run('revoke-key', '--name', 'ops').status, 0);
    assert.equal(run('revoke-key', '--name', 'ops').status, 1, 'already revoked');
    assert.equal(run('nonsense').status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
