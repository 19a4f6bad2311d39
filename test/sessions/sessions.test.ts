/**
 * Sessions (docs/sessions.md): the API, lifetimes, the
 * bearer check against the session row, atomic rows under storage faults,
 * and refresh racing the things that end a session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DevicesRepository } from '../../src/store/devices.repository.ts';
import { createSessionsRepository, type SessionsRepository } from '../../src/store/sessions.repository.ts';
import {
  call,
  createTestApp,
  databaseKinds,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  loginWithMfa,
  PASSWORD,
  SAFARI_IPHONE,
  signupAndLogin,
  type TestApp,
  trustDevice,
} from '../helpers/app.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;

const me = (t: TestApp, token: string) => call(t.app, 'GET', '/api/v1/auth/me', undefined, { token });
const refresh = (t: TestApp, token: string) => call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: token });
const listSessions = (t: TestApp, token: string) => call(t.app, 'GET', '/api/v1/sessions', undefined, { token });

/** A storage failure the error handler maps to 503 (a dropped connection). */
const connectionLost = () => Object.assign(new Error('connection reset by peer'), { code: 'ECONNRESET' });

for (const kind of databaseKinds()) {
  describe(`sessions (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('list: the caller\'s live sessions, most recently active first, with the documented fields and no secret', async () => {
      const user = await signupAndLogin(t.app, laptop());
      t.clock.advance(MINUTE);
      const phone = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ userAgent: SAFARI_IPHONE, ip: '198.51.100.9' }) });
      const other = await signupAndLogin(t.app, laptop());
      t.clock.advance(MINUTE);
      const list = await listSessions(t, user.accessToken);
      assert.equal(list.res.statusCode, 200);
      assert.equal(list.res.headers['cache-control'], 'no-store');
      const { sessions, total_count } = list.body.data;
      assert.equal(total_count, 2);
      assert.deepEqual(Object.keys(sessions[0]).sort(), [
        'binding', 'bound', 'browser', 'created_at', 'device_id', 'device_name', 'device_trusted', 'device_type', 'expires_at', 'id', 'ip_address', 'is_current', 'last_active_at', 'location', 'mfa_method', 'os',
      ]);
      // Signed in without a session_key: unbound, and the view says so.
      assert.ok(sessions.every((s: any) => s.bound === false && s.binding === null));
      // This very request is activity of the Chrome session (two minutes after its last): it comes first.
      assert.deepEqual(sessions.map((s: any) => s.browser), ['Chrome', 'Safari'], 'most recently active first');
      assert.deepEqual(sessions.map((s: any) => s.is_current), [true, false]);
      const [chrome, safari] = sessions;
      assert.equal(new Date(chrome.last_active_at).getTime(), t.clock.now());
      assert.equal(safari.device_name, 'Safari on iOS');
      assert.equal(safari.ip_address, '198.51.100.9');
      assert.equal(safari.mfa_method, 'none');
      assert.equal(safari.device_id, null);
      assert.equal(safari.device_trusted, false);
      assert.equal(new Date(safari.expires_at).getTime(), new Date(safari.created_at).getTime() + 7 * DAY, 'idle end: 7 days without a refresh');
      const text = JSON.stringify(list.body);
      assert.doesNotMatch(text, /tdr_|tdd_|tda_|tdm_/);
      assert.ok(!text.includes(phone.body.data.refresh_token));
      assert.ok(!sessions.some((s: any) => s.id === JSON.parse(Buffer.from(other.accessToken.split('.')[1]!, 'base64url').toString()).sid));
    });

    test('a session on a trusted device shows the device, its current name and its method', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const trusted = await trustDevice(t, user, laptop());
      await call(t.app, 'PATCH', `/api/v1/devices/${trusted.device.id}`, { device_name: 'Work laptop' }, { token: trusted.accessToken });
      const bypass = await loginStep(t, user, laptop({ deviceToken: trusted.deviceToken }));
      const sessions = (await listSessions(t, bypass.body.data.access_token)).body.data.sessions;
      const current = sessions.find((s: any) => s.is_current);
      assert.equal(current.mfa_method, 'trusted_device');
      assert.equal(current.device_id, trusted.device.id);
      assert.equal(current.device_name, 'Work laptop');
      assert.equal(current.device_trusted, true);
      // The session that passed TOTP and then trusted the device is on that device too.
      const trusting = sessions.find((s: any) => s.mfa_method === 'totp');
      assert.equal(trusting.device_id, trusted.device.id);
    });

    test("end one: another user's session id, an unknown and a malformed one → the same 404, nothing ended", async () => {
      const alice = await signupAndLogin(t.app, laptop());
      const bob = await signupAndLogin(t.app, laptop());
      const bobSession = (await listSessions(t, bob.accessToken)).body.data.sessions[0].id;
      const answers: Array<{ code: string; message: string }> = [];
      for (const id of [bobSession, '00000000-0000-4000-8000-000000000000', 'not-a-uuid', bobSession.toUpperCase()]) {
        const res = await call(t.app, 'DELETE', `/api/v1/sessions/${id}`, undefined, { token: alice.accessToken });
        assert.equal(res.res.statusCode, 404, id);
        answers.push({ code: res.body.error.code, message: res.body.error.message });
      }
      assert.ok(answers.every((a) => a.code === 'SESSION_NOT_FOUND' && a.message === answers[0]!.message));
      assert.equal((await me(t, bob.accessToken)).res.statusCode, 200);
      assert.equal((await refresh(t, bob.refreshToken)).res.statusCode, 200);
    });

    test('end one, then again → 404; the ended session is gone from the list', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const other = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
      const target = (await listSessions(t, user.accessToken)).body.data.sessions.find((s: any) => !s.is_current).id;
      const first = await call(t.app, 'DELETE', `/api/v1/sessions/${target}`, undefined, { token: user.accessToken });
      assert.deepEqual(first.body.data, { revoked: true });
      assert.equal((await me(t, other.body.data.access_token)).res.statusCode, 401, 'the very next request');
      const again = await call(t.app, 'DELETE', `/api/v1/sessions/${target}`, undefined, { token: user.accessToken });
      assert.equal(again.res.statusCode, 404);
      assert.deepEqual((await listSessions(t, user.accessToken)).body.data.sessions.map((s: any) => s.id).includes(target), false);
    });

    test('ending the own session: the access token is refused on the next request', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const own = (await listSessions(t, user.accessToken)).body.data.sessions[0].id;
      assert.equal((await call(t.app, 'DELETE', `/api/v1/sessions/${own}`, undefined, { token: user.accessToken })).res.statusCode, 200);
      const after = await me(t, user.accessToken);
      assert.equal(after.res.statusCode, 401);
      assert.equal(after.body.error.code, 'UNAUTHORIZED');
      assert.equal(after.res.headers['www-authenticate'], 'Bearer');
    });

    test('idle: a session not refreshed for SESSION_IDLE_DAYS ends; a refresh moves the idle end', async () => {
      const user = await signupAndLogin(t.app, laptop());
      t.clock.advance(6 * DAY);
      const refreshed = await refresh(t, user.refreshToken);
      assert.equal(refreshed.res.statusCode, 200);
      t.clock.advance(6 * DAY);
      const again = await refresh(t, refreshed.body.data.refresh_token);
      assert.equal(again.res.statusCode, 200, 'twelve days old, but refreshed six days ago');
      t.clock.advance(7 * DAY + 1);
      assert.equal((await refresh(t, again.body.data.refresh_token)).res.statusCode, 401, 'idle for more than seven days');
    });

    test('absolute: no refresh extends a session past SESSION_MAX_AGE_DAYS; an access token dies with it', async () => {
      const user = await signupAndLogin(t.app, laptop());
      let token = user.refreshToken;
      let access = user.accessToken;
      for (let day = 6; day < 30; day += 6) {
        t.clock.advance(6 * DAY);
        const res = await refresh(t, token);
        assert.equal(res.res.statusCode, 200, `day ${day}`);
        token = res.body.data.refresh_token;
        access = res.body.data.access_token;
      }
      // Day 24: refresh at day 29.99, then cross the 30-day line within the access token's 15 minutes.
      t.clock.advance(6 * DAY - 5 * MINUTE);
      const last = await refresh(t, token);
      assert.equal(last.res.statusCode, 200);
      assert.equal((await me(t, last.body.data.access_token)).res.statusCode, 200);
      t.clock.advance(6 * MINUTE);
      assert.equal((await me(t, last.body.data.access_token)).res.statusCode, 401, 'the access token is younger than 15 minutes, the session is not');
      assert.equal((await refresh(t, last.body.data.refresh_token)).res.statusCode, 401);
      assert.equal((await me(t, access)).res.statusCode, 401);
    });

    test('last_active_at moves at most once a minute', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const lastActive = async () => (await listSessions(t, user.accessToken)).body.data.sessions[0].last_active_at;
      const start = await lastActive();
      t.clock.advance(30_000);
      assert.equal(await lastActive(), start);
      t.clock.advance(31_000);
      await me(t, user.accessToken);
      const moved = await lastActive();
      assert.equal(new Date(moved).getTime(), t.clock.now());
    });

    test('activity is written behind the request: it reaches the session row within a second, and never rewinds it', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const db = t.db.handle.db;
      const stored = async () => Number((await db.selectFrom('sessions').select('last_active_at').where('user_id', '=', user.userId).executeTakeFirstOrThrow()).last_active_at);
      const loggedInAt = await stored();
      t.clock.advance(2 * MINUTE);
      await me(t, user.accessToken);
      const usedAt = t.clock.now();
      // Bounded wait for the flusher (FLUSH_DELAY_MS = 1 s), not a timing assertion.
      for (let i = 0; i < 40 && (await stored()) === loggedInAt; i++) await sleep(100);
      assert.equal(await stored(), usedAt);

      // The repository's contract on this database: at least a minute forward only (docs/sessions.md across instances), never on an ended session.
      const repository = createSessionsRepository(db);
      const sessionId = (await listSessions(t, user.accessToken)).body.data.sessions[0].id;
      await repository.touchMany([[sessionId, usedAt - MINUTE]], MINUTE);
      assert.equal(await stored(), usedAt, 'an older time does not rewind last_active_at');
      await repository.touchMany([[sessionId, usedAt + MINUTE - 1]], MINUTE);
      assert.equal(await stored(), usedAt, 'less than a minute later: not written (another instance may have written it)');
      await repository.touchMany([[sessionId, usedAt + MINUTE], ['00000000-0000-7000-8000-000000000000', usedAt + MINUTE]], MINUTE);
      assert.equal(await stored(), usedAt + MINUTE);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/logout', {}, { token: user.accessToken })).res.statusCode, 204);
      const endedAt = await stored();
      await repository.touchMany([[sessionId, usedAt + 5 * MINUTE]], MINUTE);
      assert.equal(await stored(), endedAt, 'an ended session is not written to');
    });

    test('closing the app writes the activity it still holds', async () => {
      const db = await kind.create();
      try {
        const own = await createTestApp(kind, { db, clock: t.clock });
        const user = await signupAndLogin(own.app, laptop());
        t.clock.advance(2 * MINUTE);
        assert.equal((await me(own, user.accessToken)).res.statusCode, 200);
        const usedAt = t.clock.now();
        await own.app.close(); // well within the flush delay
        const row = await db.handle.db.selectFrom('sessions').select('last_active_at').where('user_id', '=', user.userId).executeTakeFirstOrThrow();
        assert.equal(Number(row.last_active_at), usedAt);
      } finally {
        await db.drop();
      }
    });

    test('the activity flush never waits for a row lock (PostgreSQL: it cannot close a deadlock cycle with a revocation)', { skip: kind.name !== 'postgres' && 'row locks are PostgreSQL\'s' }, async () => {
      const [a, b] = [await signupAndLogin(t.app, laptop()), await signupAndLogin(t.app, laptop())];
      const db = t.db.handle.db;
      const sessionOf = async (userId: string) => (await db.selectFrom('sessions').select(['id', 'last_active_at']).where('user_id', '=', userId).executeTakeFirstOrThrow());
      const [sa, sb] = [await sessionOf(a.userId), await sessionOf(b.userId)];
      const later = Number(sa.last_active_at) + 2 * MINUTE;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      // Another transaction (a refresh, a revocation) holds session a's row.
      const holder = db.transaction().execute(async (trx) => {
        await trx.selectFrom('sessions').select('id').where('id', '=', sa.id).forUpdate().execute();
        locked();
        await held;
      });
      await isLocked;
      try {
        const flush = createSessionsRepository(db).touchMany([[sa.id, later], [sb.id, later]], MINUTE).then(() => 'done');
        const outcome = await Promise.race([flush, sleep(3_000).then(() => 'waited')]);
        assert.equal(outcome, 'done', 'the flush returned while the row was locked');
      } finally {
        release();
        await holder;
      }
      assert.equal(Number((await sessionOf(a.userId)).last_active_at), Number(sa.last_active_at), 'the locked row was skipped');
      assert.equal(Number((await sessionOf(b.userId)).last_active_at), later, 'the others were written');
    });

    test('refresh-token reuse ends the session: its newest refresh token and its access tokens stop working', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const next = await refresh(t, user.refreshToken);
      assert.equal((await refresh(t, user.refreshToken)).res.statusCode, 401);
      assert.equal((await refresh(t, next.body.data.refresh_token)).res.statusCode, 401);
      assert.equal((await me(t, next.body.data.access_token)).res.statusCode, 401);
      assert.equal((await me(t, user.accessToken)).res.statusCode, 401);
    });

    test('a session opened by a second factor records its method', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const { backupCodes } = await enableMfa(t, user);
      const viaTotp = await loginWithMfa(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
      const login = await loginStep(t, user, laptop({ userAgent: SAFARI_IPHONE }));
      const viaBackup = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, backup_code: backupCodes[0] }, { device: laptop({ userAgent: SAFARI_IPHONE }) });
      assert.equal(viaBackup.res.statusCode, 200);
      const byBrowser = Object.fromEntries((await listSessions(t, viaTotp.access_token)).body.data.sessions.map((s: any) => [s.browser, s.mfa_method]));
      assert.deepEqual(byBrowser, { Firefox: 'totp', Safari: 'backup_code', Chrome: 'none' });
    });
  });

  describe(`sessions: storage faults and races (${kind.name})`, () => {
    // Hooks the tests set: a failure or a delay between the statements of a row or a refresh.
    let failEnd = false;
    let afterRotate: (() => Promise<void>) | undefined;
    let afterExtend: (() => Promise<void>) | undefined;
    let afterConsume: (() => Promise<void>) | undefined;
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, {
        deps: {
          wrapDevicesRepository: (repo: DevicesRepository): DevicesRepository => ({
            ...repo,
            async consumeActivation(...args) {
              const won = await repo.consumeActivation(...args);
              await afterConsume?.();
              return won;
            },
          }),
          wrapSessionsRepository: (repo: SessionsRepository): SessionsRepository => ({
            ...repo,
            async end(...args) {
              if (failEnd) throw connectionLost();
              return repo.end(...args);
            },
            async rotateRefreshToken(...args) {
              const result = await repo.rotateRefreshToken(...args);
              await afterRotate?.();
              return result;
            },
            async extend(...args) {
              const result = await repo.extend(...args);
              await afterExtend?.();
              return result;
            },
          }),
        },
      });
    });
    after(() => t.close());

    test('a storage error in the middle of a row leaves nothing half-applied (password change)', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const trusted = await trustDevice(t, user, laptop());
      const phone = await loginWithMfa(t, user, laptop({ userAgent: SAFARI_IPHONE }));
      failEnd = true;
      let res;
      try {
        res = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Another-Pass-7' }, { token: phone.access_token });
      } finally {
        failEnd = false;
      }
      assert.equal(res.res.statusCode, 503);
      assert.equal(res.body.error.code, 'SERVICE_UNAVAILABLE');
      // Devices were revoked before the failing statement in the same transaction: rolled back.
      const bypass = await loginStep(t, user, laptop({ deviceToken: trusted.deviceToken }));
      assert.equal(bypass.body.data.mfa_bypassed, true, 'the device is still trusted');
      assert.equal((await me(t, trusted.accessToken)).res.statusCode, 200, 'the other sessions still live');
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: 'Another-Pass-7' })).res.statusCode, 401, 'the password did not change');
      const pendingStill = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: phone.trusted_device.activation_token }, { token: phone.access_token, device: laptop({ userAgent: SAFARI_IPHONE }) });
      assert.equal(pendingStill.res.statusCode, 200, 'the pending activation was not ended');
    });

    test('a storage error in the middle of "revoke device" leaves the device trusted and its sessions alive', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const trusted = await trustDevice(t, user, laptop());
      const phone = await loginWithMfa(t, user, laptop({ userAgent: SAFARI_IPHONE }));
      failEnd = true;
      let res;
      try {
        res = await call(t.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: phone.access_token });
      } finally {
        failEnd = false;
      }
      assert.equal(res.res.statusCode, 503);
      assert.equal((await me(t, trusted.accessToken)).res.statusCode, 200);
      assert.equal((await loginStep(t, user, laptop({ deviceToken: trusted.deviceToken }))).body.data.mfa_bypassed, true);
    });

    /**
     * Refresh racing X: the refresh stops between two of its statements (the
     * window), X runs meanwhile, then the refresh goes on. On PostgreSQL the
     * two really overlap; SQLite serialises transactions, so there X waits.
     */
    async function race(where: 'afterRotate' | 'afterExtend', refreshToken: string, other: () => Promise<unknown>) {
      let reached!: () => void;
      const inWindow = new Promise<void>((resolve) => (reached = resolve));
      const hook = async () => {
        reached();
        await sleep(150);
      };
      if (where === 'afterRotate') afterRotate = hook;
      else afterExtend = hook;
      try {
        const refreshing = refresh(t, refreshToken);
        await inWindow;
        const [refreshed] = await Promise.all([refreshing, other()]);
        return refreshed;
      } finally {
        afterRotate = undefined;
        afterExtend = undefined;
      }
    }

    /** Whatever the refresh answered, nothing it issued is alive. */
    async function assertNoLiveSuccessor(refreshed: Awaited<ReturnType<typeof refresh>>) {
      if (refreshed.res.statusCode === 200) {
        assert.equal((await refresh(t, refreshed.body.data.refresh_token)).res.statusCode, 401, 'the successor refresh token');
        assert.equal((await me(t, refreshed.body.data.access_token)).res.statusCode, 401, 'the successor access token');
      } else {
        assert.equal(refreshed.res.statusCode, 401);
      }
    }

    /** Activation stopped after it consumed its token (the window), while `other` ends what issued it. */
    async function raceActivation(activate: () => Promise<any>, other: () => Promise<any>) {
      let reached!: () => void;
      const inWindow = new Promise<void>((resolve) => (reached = resolve));
      afterConsume = async () => {
        reached();
        await sleep(150);
      };
      try {
        const activating = activate();
        await inWindow;
        return await Promise.all([activating, other()]);
      } finally {
        afterConsume = undefined;
      }
    }

    test('activation racing a password change: never a trusted device afterwards, never a 5xx', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const phone = laptop({ userAgent: SAFARI_IPHONE });
      const verified = await loginWithMfa(t, user, phone);
      const [activated, changed] = await raceActivation(
        () => call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token }, { token: verified.access_token, device: phone }),
        () => call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Another-Pass-7' }, { token: user.accessToken }),
      );
      assert.equal(changed.res.statusCode, 200);
      assert.ok([200, 410].includes(activated.res.statusCode), `activation answered ${activated.res.statusCode}: ${activated.res.body}`);
      if (activated.res.statusCode === 200) {
        const again = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: 'Another-Pass-7' }, { device: { ...phone, deviceToken: activated.body.data.device_token } });
        assert.equal(again.body.data.mfa_required, true, 'the device activated first was revoked by the password change');
      }
    });

    test('activation racing the end of the session that issued it: no 5xx, and a consistent outcome', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const phone = laptop({ userAgent: SAFARI_IPHONE });
      const verified = await loginWithMfa(t, user, phone);
      const sessionId = JSON.parse(Buffer.from(verified.access_token.split('.')[1], 'base64url').toString()).sid;
      const [activated, ended] = await raceActivation(
        () => call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: verified.trusted_device.activation_token }, { token: verified.access_token, device: phone }),
        () => call(t.app, 'DELETE', `/api/v1/sessions/${sessionId}`, undefined, { token: user.accessToken }),
      );
      assert.equal(ended.res.statusCode, 200);
      assert.ok([200, 410].includes(activated.res.statusCode), `activation answered ${activated.res.statusCode}: ${activated.res.body}`);
      assert.equal((await me(t, verified.access_token)).res.statusCode, 401);
    });

    for (const where of ['afterRotate', 'afterExtend'] as const) {
      test(`refresh racing logout (window ${where}) never leaves a live successor`, async () => {
        const user = await signupAndLogin(t.app, laptop());
        const refreshed = await race(where, user.refreshToken, () => call(t.app, 'POST', '/api/v1/auth/logout', undefined, { token: user.accessToken }));
        await assertNoLiveSuccessor(refreshed);
      });

      test(`refresh racing a password change elsewhere (window ${where}) never leaves a live successor`, async () => {
        const user = await signupAndLogin(t.app, laptop());
        const other = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
        const refreshed = await race(where, other.body.data.refresh_token, () =>
          call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Another-Pass-7' }, { token: user.accessToken }),
        );
        await assertNoLiveSuccessor(refreshed);
      });

      test(`refresh racing refresh-token reuse (window ${where}) never leaves a live successor`, async () => {
        const user = await signupAndLogin(t.app, laptop());
        const second = await refresh(t, user.refreshToken);
        const refreshed = await race(where, second.body.data.refresh_token, () => refresh(t, user.refreshToken));
        await assertNoLiveSuccessor(refreshed);
      });
    }
  });
}
