/**
 * what ends what (docs/sessions.md), one test per row of the table, on every database: right after
 * the event, everything in the row is dead (an access token of an ended
 * session → 401 on the very next request, its refresh token → 401, a pending
 * activation token → 410, a temporary MFA token → 401) and what the row keeps
 * still works.
 *
 * The scenario of each row, on a fresh user with TOTP on:
 *   S0 the session that signed up and turned TOTP on;
 *   A  a trusted laptop: session A1 (the second factor that trusted it) and A2 (a later bypass);
 *   B  a phone that passed the second factor and has not answered the prompt yet: session B, pending activation pB;
 *   X  the browser that acts (changes the password, revokes …): session X, pending activation pX;
 *   C  a sign-in waiting for its second factor: temporary token tC.
 */
import { createHistory } from '../../src/store/history.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDevicesRepository } from '../../src/store/devices.repository.ts';
import { SYSTEM } from '../../src/store/history.ts';
import { createMfaRepository } from '../../src/store/mfa.repository.ts';
import { createRevocation, type SecurityEvent } from '../../src/domain/ledger.ts';
import { createSessionsRepository } from '../../src/store/sessions.repository.ts';
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

const EDGE_LINUX = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0';

interface Tokens {
  access: string;
  refresh: string;
}

interface Scenario {
  user: TestUser;
  deviceA: Device & { deviceToken: string };
  deviceAId: string;
  sessions: { S0: Tokens; A1: Tokens; A2: Tokens; B: Tokens; X: Tokens };
  pendingB: string;
  pendingX: string;
  phone: Device;
  actor: Device;
  challengeC: string;
  deviceC: Device;
}

type SessionName = keyof Scenario['sessions'];

interface Expectation {
  deviceA: 'trusted' | 'revoked';
  /** The cause written on A's `revoked` event. */
  cause?: string;
  pendingB: 'alive' | 'ended';
  pendingX: 'alive' | 'ended';
  challengeC: 'alive' | 'ended';
  ended: SessionName[];
}

for (const kind of databaseKinds()) {
  describe(`what ends what (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    const phone = laptop({ userAgent: SAFARI_IPHONE, ip: '198.51.100.7' });
    const actor = laptop({ userAgent: FIREFOX_WINDOWS, ip: '192.0.2.44' });
    const deviceC = laptop({ userAgent: EDGE_LINUX, ip: '203.0.113.99' });

    async function verify(user: TestUser, device: Device) {
      const login = await loginStep(t, user, device);
      assert.equal(login.body.data.mfa_required, true);
      const verified = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, code: nextCode(t, user.totpSecret!) }, { device });
      assert.equal(verified.res.statusCode, 200, verified.res.body);
      return verified.body.data;
    }

    async function scenario(): Promise<Scenario> {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const first = await verify(user, laptop());
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: first.trusted_device.activation_token }, { token: first.access_token, device: laptop() });
      assert.equal(activate.res.statusCode, 200);
      const deviceA = laptop({ deviceToken: activate.body.data.device_token });
      const bypass = await loginStep(t, user, deviceA);
      assert.equal(bypass.body.data.mfa_bypassed, true);
      deviceA.deviceToken = bypass.body.data.device_token; // rotated (docs/trust-model.md): the old one is retired
      const b = await verify(user, phone);
      const x = await verify(user, actor);
      const c = await loginStep(t, user, deviceC);
      return {
        user,
        deviceA: deviceA as Device & { deviceToken: string },
        deviceAId: activate.body.data.device.id,
        sessions: {
          S0: { access: user.accessToken, refresh: user.refreshToken },
          A1: { access: first.access_token, refresh: first.refresh_token },
          A2: { access: bypass.body.data.access_token, refresh: bypass.body.data.refresh_token },
          B: { access: b.access_token, refresh: b.refresh_token },
          X: { access: x.access_token, refresh: x.refresh_token },
        },
        pendingB: b.trusted_device.activation_token,
        pendingX: x.trusted_device.activation_token,
        phone,
        actor,
        challengeC: c.body.data.temporary_token,
        deviceC,
      };
    }

    /** Checks every part of the scenario against the row; consumes tokens, so it runs once per scenario. */
    async function assertRow(s: Scenario, expected: Expectation) {
      for (const name of Object.keys(s.sessions) as SessionName[]) {
        const dead = expected.ended.includes(name);
        const me = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: s.sessions[name].access });
        assert.equal(me.res.statusCode, dead ? 401 : 200, `access token of session ${name}`);
        if (dead) assert.equal(me.res.headers['www-authenticate'], 'Bearer');
        const refresh = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: s.sessions[name].refresh });
        assert.equal(refresh.res.statusCode, dead ? 401 : 200, `refresh token of session ${name}`);
      }
      // Pending activations are presented by the acting browser's session when it is alive, else by a fresh one.
      const liveToken = expected.ended.includes('X') ? (await verify(s.user, laptop({ userAgent: EDGE_LINUX, ip: '203.0.113.5' }))).access_token : s.sessions.X.access;
      for (const [name, token, device] of [['pB', s.pendingB, s.phone], ['pX', s.pendingX, s.actor]] as const) {
        const want = name === 'pB' ? expected.pendingB : expected.pendingX;
        const skip = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: token }, { token: liveToken, device });
        assert.equal(skip.res.statusCode, want === 'ended' ? 410 : 200, `pending activation ${name}: ${skip.res.body}`);
        if (want === 'ended') {
          assert.equal(skip.body.error.code, 'ACTIVATION_TOKEN_EXPIRED');
          assert.match(skip.body.error.message, /revoked/);
        }
      }
      const challenge = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: s.challengeC, code: nextCode(t, s.user.totpSecret!) }, { device: s.deviceC });
      assert.equal(challenge.res.statusCode, expected.challengeC === 'ended' ? 401 : 200, `MFA challenge C: ${challenge.res.body}`);
      if (expected.challengeC === 'ended') assert.equal(challenge.body.error.code, 'INVALID_TOKEN');
      const trusted = await loginStep(t, s.user, s.deviceA);
      assert.equal(trusted.body.data.mfa_bypassed === true, expected.deviceA === 'trusted', 'device A trust');
      if (expected.cause) {
        const history = await call(t.app, 'GET', '/api/v1/devices/events?limit=100', undefined, { token: liveToken });
        const revoked = history.body.data.events.find((e: any) => e.type === 'revoked' && e.device_id === s.deviceAId);
        assert.equal(revoked?.cause, expected.cause);
        const endedSessions = history.body.data.events.filter((e: any) => e.type === 'session_revoked');
        assert.ok(endedSessions.every((e: any) => typeof e.cause === 'string' && e.session_id), 'every ended session is an event with its cause');
      }
    }

    const everythingButX: SessionName[] = ['S0', 'A1', 'A2', 'B'];

    test('password change: devices revoked, pending ended, every other session ended', async () => {
      const s = await scenario();
      const res = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: s.user.password, new_password: 'Another-Pass-7' }, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      assert.deepEqual(res.body.data, { password_changed: true, devices_revoked: 1, sessions_ended: 4 });
      s.user.password = 'Another-Pass-7';
      await assertRow(s, { deviceA: 'revoked', cause: 'password_changed', pendingB: 'ended', pendingX: 'ended', challengeC: 'ended', ended: everythingButX });
    });

    test('MFA turned off: devices revoked, pending ended, every other session ended', async () => {
      const s = await scenario();
      const res = await call(t.app, 'POST', '/api/v1/mfa/deactivate', { code: nextCode(t, s.user.totpSecret!) }, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      assert.equal(res.body.data.sessions_ended, 4);
      // With MFA off the challenge can no longer be answered, and a login needs no second factor: check the rest.
      for (const name of everythingButX) assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: s.sessions[name].access })).res.statusCode, 401);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: s.sessions.X.access })).res.statusCode, 200);
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: s.pendingB }, { token: s.sessions.X.access, device: s.phone });
      assert.equal(skip.res.statusCode, 410);
      const challenge = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: s.challengeC, code: '000000' }, { device: s.deviceC });
      assert.equal(challenge.res.statusCode, 401);
      const login = await loginStep(t, s.user, s.deviceA);
      assert.equal(login.body.data.mfa_bypassed, false, 'MFA off: a plain sign-in, not a trusted-device bypass');
      assert.equal(login.body.data.trusted_device_id, null);
    });

    test('backup codes regenerated: devices revoked, pending ended, sessions kept', async () => {
      const s = await scenario();
      const res = await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, s.user.totpSecret!) }, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      await assertRow(s, { deviceA: 'revoked', cause: 'backup_codes_regenerated', pendingB: 'ended', pendingX: 'ended', challengeC: 'ended', ended: [] });
    });

    test('revoke one device: that one, the pending tokens of its sessions, its sessions', async () => {
      const s = await scenario();
      const res = await call(t.app, 'DELETE', `/api/v1/devices/${s.deviceAId}`, undefined, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      assert.deepEqual(res.body.data, { revoked: true, sessions_ended: 2 });
      await assertRow(s, { deviceA: 'revoked', cause: 'user', pendingB: 'alive', pendingX: 'alive', challengeC: 'alive', ended: ['A1', 'A2'] });
    });

    test('revoke all devices: all revoked, all pending ended, the sessions opened on them ended', async () => {
      const s = await scenario();
      const res = await call(t.app, 'DELETE', '/api/v1/devices', undefined, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      assert.deepEqual(res.body.data, { revoked_count: 1, sessions_ended: 2 });
      await assertRow(s, { deviceA: 'revoked', cause: 'user', pendingB: 'ended', pendingX: 'ended', challengeC: 'ended', ended: ['A1', 'A2'] });
    });

    test('end one session: that one and the pending tokens issued from it', async () => {
      const s = await scenario();
      const sessions = await call(t.app, 'GET', '/api/v1/sessions', undefined, { token: s.sessions.X.access });
      const phoneSession = sessions.body.data.sessions.find((x: any) => x.browser === 'Safari');
      const res = await call(t.app, 'DELETE', `/api/v1/sessions/${phoneSession.id}`, undefined, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      await assertRow(s, { deviceA: 'trusted', pendingB: 'ended', pendingX: 'alive', challengeC: 'alive', ended: ['B'] });
    });

    test('logout: the same row for the caller\'s own session (signed_out)', async () => {
      const s = await scenario();
      const res = await call(t.app, 'POST', '/api/v1/auth/logout', undefined, { token: s.sessions.B.access, device: s.phone });
      assert.equal(res.res.statusCode, 204);
      await assertRow(s, { deviceA: 'trusted', pendingB: 'ended', pendingX: 'alive', challengeC: 'alive', ended: ['B'] });
      const history = await call(t.app, 'GET', '/api/v1/devices/events?limit=100', undefined, { token: s.sessions.X.access });
      const out = history.body.data.events.find((e: any) => e.type === 'signed_out');
      assert.equal(out.cause, 'logout');
      assert.equal(out.device_name, 'Safari on iOS');
    });

    test('sign out everywhere else: every other session and their pending tokens', async () => {
      const s = await scenario();
      const res = await call(t.app, 'DELETE', '/api/v1/sessions?except_current=true', undefined, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      assert.deepEqual(res.body.data, { revoked_count: 4 });
      await assertRow(s, { deviceA: 'trusted', pendingB: 'ended', pendingX: 'alive', challengeC: 'alive', ended: everythingButX });
    });

    test('sign out everywhere: the caller\'s session too', async () => {
      const s = await scenario();
      const res = await call(t.app, 'DELETE', '/api/v1/sessions', undefined, { token: s.sessions.X.access, device: s.actor });
      assert.equal(res.res.statusCode, 200);
      assert.deepEqual(res.body.data, { revoked_count: 5 });
      await assertRow(s, { deviceA: 'trusted', pendingB: 'ended', pendingX: 'ended', challengeC: 'alive', ended: ['S0', 'A1', 'A2', 'B', 'X'] });
    });

    // The rows whose triggers arrive with later features (password reset by email, "This wasn't me",
    // device-token reuse): the table is the module's, so they are tested through it.
    const direct: Array<[string, (s: Scenario, userId: string) => SecurityEvent, Expectation]> = [
      ['password reset by email', (_s, userId) => ({ kind: 'password_reset', userId, actor: SYSTEM }), { deviceA: 'revoked', cause: 'password_reset', pendingB: 'ended', pendingX: 'ended', challengeC: 'ended', ended: ['S0', 'A1', 'A2', 'B', 'X'] }],
      ['"This wasn\'t me"', (s, userId) => ({ kind: 'not_me', userId, deviceId: s.deviceAId, actor: SYSTEM }), { deviceA: 'revoked', cause: 'not_me', pendingB: 'ended', pendingX: 'ended', challengeC: 'ended', ended: ['A1', 'A2'] }],
      ['device-token reuse detected', (s, userId) => ({ kind: 'device_token_reuse', userId, deviceId: s.deviceAId, actor: SYSTEM }), { deviceA: 'revoked', cause: 'reuse_detected', pendingB: 'alive', pendingX: 'alive', challengeC: 'alive', ended: ['A1', 'A2'] }],
    ];
    for (const [name, event, expected] of direct) {
      test(`${name} (through the module)`, async () => {
        const s = await scenario();
        const db = t.db.handle.db;
        const revocation = createRevocation({ db, history: createHistory({ webhooks: false }), devices: createDevicesRepository(db, createHistory({ webhooks: false })), sessions: createSessionsRepository(db), mfa: createMfaRepository(db), clock: t.clock });
        await revocation.run(event(s, s.user.userId));
        await assertRow(s, expected);
      });
    }

    test('a bound session’s refresh with another key’s proof (through the module): that session and the pending tokens issued from it', async () => {
      const s = await scenario();
      const db = t.db.handle.db;
      const phoneSession = await db.selectFrom('sessions').select('id').where('user_id', '=', s.user.userId).where('browser', '=', 'Safari').executeTakeFirstOrThrow();
      const revocation = createRevocation({ db, history: createHistory({ webhooks: false }), devices: createDevicesRepository(db, createHistory({ webhooks: false })), sessions: createSessionsRepository(db), mfa: createMfaRepository(db), clock: t.clock });
      await revocation.run({ kind: 'session_proof_failed', userId: s.user.userId, sessionId: phoneSession.id, actor: SYSTEM });
      const row = await db.selectFrom('sessions').select(['end_cause']).where('id', '=', phoneSession.id).executeTakeFirstOrThrow();
      assert.equal(row.end_cause, 'proof_failed');
      await assertRow(s, { deviceA: 'trusted', pendingB: 'ended', pendingX: 'alive', challengeC: 'alive', ended: ['B'] });
    });

    test('MFA turned on: pending ended, every other session ended (a session opened while MFA was off cannot outlive it)', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const other = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: actor });
      assert.equal(other.res.statusCode, 200);
      await enableMfa(t, user);
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: other.body.data.access_token })).res.statusCode, 401);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: other.body.data.refresh_token })).res.statusCode, 401);
      // The session that confirmed the code stays.
      assert.equal((await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken })).res.statusCode, 200);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken })).res.statusCode, 200);
    });
  });
}
