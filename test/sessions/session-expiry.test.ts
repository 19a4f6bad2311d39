/**
 * Session expiry by housekeeping (docs/sessions.md, "Expiry"; docs/security-center.md, "History"):
 * a session past its idle or absolute end is ended at that end (not when
 * housekeeping came by), with one `session_expired` event that the security
 * history shows as one calm `sign_out` line; the 401 of its tokens says the
 * same as before housekeeping ended it (`expired`, the same time, nobody);
 * a session refreshed in time, and another user's session, are untouched;
 * each batch ends at most `limit` sessions; on PostgreSQL a session a refresh
 * holds is skipped, never waited for, and not ended once the refresh commits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PostgresAdapter } from 'kysely';
import { pruneExpired } from '../../src/app/housekeeping.ts';
import { createHistory } from '../../src/store/history.ts';
import { createSessionsRepository } from '../../src/store/sessions.repository.ts';
import { signalOfEvent } from '../../src/store/ssf-events.ts';
import { call, createTestApp, databaseKinds, FIREFOX_WINDOWS, laptop, signupAndLogin, type TestApp, type TestUser, uniqueEmail, PASSWORD } from '../helpers/app.ts';

const API = '/api/v1';
const MINUTE = 60_000;
const DAY = 86_400_000;

const sessionOf = (accessToken: string): string => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()).sid;
const prune = (t: TestApp, options: { batchSize?: number } = {}) => pruneExpired(t.db.handle, { eventRetentionDays: 90 }, t.clock, options);
const row = (t: TestApp, id: string) =>
  t.db.handle.db.selectFrom('sessions').select(['ended_at', 'end_cause', 'end_actor_name', 'expires_at', 'idle_expires_at']).where('id', '=', id).executeTakeFirstOrThrow();
const signOuts = async (t: TestApp, token: string) => {
  const history = await call(t.app, 'GET', `${API}/security/events?kind=sign_out&limit=100`, undefined, { token });
  assert.equal(history.res.statusCode, 200, history.res.body);
  return history.body.data.events as Array<{ kind: string; occurred_at: string; cause: string; summary: string; actor: { type: string }; subject: { session_id: string } }>;
};

for (const kind of databaseKinds()) {
  describe(`session expiry by housekeeping (${kind.name})`, () => {
    test('an idle session ends at its idle end: one calm sign_out line, the same 401 reason; a refreshed session and another user are untouched', async () => {
      const t = await createTestApp(kind);
      try {
        const user = await signupAndLogin(t.app, laptop());
        const idle = sessionOf(user.accessToken);
        const second = await call(t.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
        assert.equal(second.res.statusCode, 200, second.res.body);
        const idleEnd = (await row(t, idle)).idle_expires_at;

        // Six days on, the second session refreshes (its idle end moves on); another user signs in.
        t.clock.advance(6 * DAY);
        const refreshed = await call(t.app, 'POST', `${API}/auth/refresh`, { refresh_token: second.body.data.refresh_token });
        assert.equal(refreshed.res.statusCode, 200, refreshed.res.body);
        const kept = refreshed.body.data as { access_token: string; refresh_token: string };
        const other = await signupAndLogin(t.app, laptop());

        // A day and a minute later the first session is past its idle end (SESSION_IDLE_DAYS = 7).
        t.clock.advance(DAY + MINUTE);
        const before = await call(t.app, 'POST', `${API}/auth/refresh`, { refresh_token: user.refreshToken });
        assert.equal(before.res.statusCode, 401, before.res.body);
        assert.deepEqual(before.body.error.details, { cause: 'expired', ended_at: new Date(Number(idleEnd)).toISOString(), ended_by: null });

        const result = await prune(t);
        assert.deepEqual(result.failed, []);
        assert.equal(result.sessionsExpired, 1);
        const ended = await row(t, idle);
        assert.equal(Number(ended.ended_at), Number(idleEnd), 'ended when its idle time ran out, not when housekeeping came by');
        assert.equal(ended.end_cause, 'idle_timeout');
        assert.equal(ended.end_actor_name, null);

        // Its refresh token is told exactly what it was told before.
        const after = await call(t.app, 'POST', `${API}/auth/refresh`, { refresh_token: user.refreshToken });
        assert.equal(after.res.statusCode, 401, after.res.body);
        assert.deepEqual(after.body.error.details, before.body.error.details);

        // One line, calm, at the expiry time, by the service itself (read with a fresh access token of the kept session).
        const renewed = await call(t.app, 'POST', `${API}/auth/refresh`, { refresh_token: kept.refresh_token });
        assert.equal(renewed.res.statusCode, 200, renewed.res.body);
        const token: string = renewed.body.data.access_token;
        const lines = (await signOuts(t, token)).filter((e) => e.subject.session_id === idle);
        assert.equal(lines.length, 1, JSON.stringify(lines));
        assert.equal(lines[0]!.summary, 'Signed out after a period of inactivity');
        assert.equal(lines[0]!.cause, 'idle_timeout');
        assert.equal(lines[0]!.occurred_at, new Date(Number(idleEnd)).toISOString());
        assert.equal(lines[0]!.actor.type, 'system');

        // The refreshed session and the other user's go on; the other user has no line.
        assert.equal((await row(t, sessionOf(token))).ended_at, null);
        assert.equal((await call(t.app, 'GET', `${API}/auth/me`, undefined, { token })).res.statusCode, 200);
        assert.equal((await row(t, sessionOf(other.accessToken))).ended_at, null);
        const otherRenewed = await call(t.app, 'POST', `${API}/auth/refresh`, { refresh_token: other.refreshToken });
        assert.equal(otherRenewed.res.statusCode, 200, otherRenewed.res.body);
        assert.deepEqual(await signOuts(t, otherRenewed.body.data.access_token), []);

        assert.equal((await prune(t)).sessionsExpired, 0, 'nothing twice');
        assert.equal((await signOuts(t, token)).filter((e) => e.subject.session_id === idle).length, 1);
      } finally {
        await t.close();
      }
    });

    test('bearer: a live access token of a session past its idle or absolute end gets the same details before and after housekeeping', async () => {
      const t = await createTestApp(kind);
      try {
        // The access token lives 15 minutes and the shortest idle end is a day: the ends are moved into the past in storage.
        const idle = await signupAndLogin(t.app, laptop());
        const aged = await signupAndLogin(t.app, laptop());
        const now = t.clock.now();
        await t.db.handle.db.updateTable('sessions').set({ idle_expires_at: now - MINUTE }).where('id', '=', sessionOf(idle.accessToken)).execute();
        // At the absolute end the idle end is capped to it (extend), so both are the same moment.
        await t.db.handle.db.updateTable('sessions').set({ idle_expires_at: now - 2 * MINUTE, expires_at: now - 2 * MINUTE }).where('id', '=', sessionOf(aged.accessToken)).execute();
        const me = (u: TestUser) => call(t.app, 'GET', `${API}/auth/me`, undefined, { token: u.accessToken });
        const before = [await me(idle), await me(aged)];
        for (const r of before) assert.equal(r.res.statusCode, 401, r.res.body);
        assert.deepEqual(before[0]!.body.error.details, { cause: 'expired', ended_at: new Date(now - MINUTE).toISOString(), ended_by: null });
        assert.deepEqual(before[1]!.body.error.details, { cause: 'expired', ended_at: new Date(now - 2 * MINUTE).toISOString(), ended_by: null });

        assert.equal((await prune(t)).sessionsExpired, 2);
        const after = [await me(idle), await me(aged)];
        const reason = (r: (typeof before)[number]) => ({ status: r.res.statusCode, code: r.body.error.code, details: r.body.error.details });
        assert.deepEqual(after.map(reason), before.map(reason));
        assert.equal((await row(t, sessionOf(aged.accessToken))).end_cause, 'max_age');
        assert.equal((await row(t, sessionOf(idle.accessToken))).end_cause, 'idle_timeout');

        // Read from a fresh sign-in of each account.
        const fresh = await call(t.app, 'POST', `${API}/auth/login`, { email: aged.email, password: PASSWORD }, { device: laptop() });
        const [line] = (await signOuts(t, fresh.body.data.access_token)).filter((e) => e.subject.session_id === sessionOf(aged.accessToken));
        assert.equal(line?.summary, 'Signed out after the session reached its maximum length');
        assert.equal(line?.occurred_at, new Date(now - 2 * MINUTE).toISOString());
      } finally {
        await t.close();
      }
    });

    test('each batch ends at most its limit; the rest go in the next batch, and a run drains them all', async () => {
      const t = await createTestApp(kind);
      try {
        const users = [await signupAndLogin(t.app, laptop()), await signupAndLogin(t.app, laptop(), uniqueEmail('b'))];
        for (let i = 0; i < 3; i++) await call(t.app, 'POST', `${API}/auth/login`, { email: users[i % 2]!.email, password: PASSWORD }, { device: laptop() });
        t.clock.advance(7 * DAY + MINUTE); // five sessions past their idle end
        const repository = createSessionsRepository(t.db.handle.db);
        // With webhooks on, each event has its webhook (session.session_expired) in the same transaction.
        const history = createHistory({ webhooks: true });
        assert.equal((await repository.expireSessions(history, t.clock.now(), 2)).length, 2);
        assert.equal((await repository.expireSessions(history, t.clock.now(), 2)).length, 2);
        const events = async () => (await t.db.handle.db.selectFrom('device_events').select('session_id').where('type', '=', 'session_expired').execute()).length;
        assert.equal(await events(), 4, 'one event per ended session');
        const webhooks = await t.db.handle.db.selectFrom('webhook_outbox').select('type').execute();
        assert.deepEqual(webhooks.map((w) => w.type), Array(4).fill('session.session_expired'));
        assert.equal((await prune(t, { batchSize: 2 })).sessionsExpired, 1);
        assert.equal(await events(), 5);
        const live = await t.db.handle.db.selectFrom('sessions').select('id').where('ended_at', 'is', null).execute();
        assert.deepEqual(live, []);
      } finally {
        await t.close();
      }
    });

    test('no Shared Signals SET for an expiry: it is no revocation (a sign-out is one)', () => {
      const event = { id: 'e', user_id: 'u', device_id: null, ip_address: null, user_agent: null, created_at: 0, session_id: 's', subject_name: null, actor_type: 'system' as const, actor_session_id: null, actor_name: null, location: null, reason: null };
      assert.equal(signalOfEvent('https://id.example', { ...event, type: 'session_expired', cause: 'idle_timeout' }), null);
      assert.ok(signalOfEvent('https://id.example', { ...event, type: 'session_revoked', cause: 'user' }), 'the contrast: a revocation is shared');
    });

    if (kind.name !== 'sqlite') {
      test('a refresh holding the session is skipped, not waited for; once it commits the session is live and stays', async () => {
        const t = await createTestApp(kind);
        try {
          const user = await signupAndLogin(t.app, laptop());
          const id = sessionOf(user.accessToken);
          const db = t.db.handle.db;
          assert.ok(db.getExecutor().adapter instanceof PostgresAdapter);
          const repository = createSessionsRepository(db);
          const history = createHistory({ webhooks: false });
          // Refreshed a minute before its idle end; housekeeping runs a minute after that end, meanwhile.
          const idleEnd = Number((await row(t, id)).idle_expires_at);
          let release!: () => void;
          const held = new Promise<void>((resolve) => (release = resolve));
          let extended!: () => void;
          const hasExtended = new Promise<void>((resolve) => (extended = resolve));
          const refresh = db.transaction().execute(async (trx) => {
            assert.ok(await repository.extend(trx, id, user.userId, idleEnd - MINUTE, 7 * DAY, null));
            extended();
            await held;
          });
          await hasExtended;
          const started = Date.now();
          assert.deepEqual(await repository.expireSessions(history, idleEnd + MINUTE, 10), [], 'the held row is skipped');
          assert.ok(Date.now() - started < 2_000, 'housekeeping did not wait for the row lock');
          release();
          await refresh;
          assert.deepEqual(await repository.expireSessions(history, idleEnd + MINUTE, 10), [], 'refreshed in time: not ended');
          assert.equal((await row(t, id)).ended_at, null);
        } finally {
          await t.close();
        }
      });
    }
  });
}
