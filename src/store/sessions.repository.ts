/**
 * Storage for sessions (docs/sessions.md) and their refresh tokens.
 *
 * A session is live while `ended_at IS NULL AND expires_at > now AND
 * idle_expires_at > now`. Every check that must not outlive an ended session
 * (bearer, refresh, activation) is a statement on the session row, and
 * ending a session is one conditional UPDATE of that row. On PostgreSQL the
 * row lock orders them: a refresh whose UPDATE of the session ran first
 * holds the lock until it commits, and the end waits for it and then ends
 * the session its new token belongs to; an end that ran first makes the
 * refresh's UPDATE match nothing (READ COMMITTED re-checks the WHERE on the
 * newest row version). Either way no live successor token exists.
 */
import { createQueryId, type Kysely, PostgresAdapter, sql } from 'kysely';
import { directSqlite } from './connect.ts';
import { type EventInput, type History, SYSTEM } from './history.ts';
import type { Database, Db, EventCause, RefreshTokensTable, SessionBindingKind, SessionsTable } from './schema.ts';

export type SessionRow = SessionsTable;

/** What the list shows: the session, and its trusted device's current name and state. */
export interface SessionListRow extends SessionRow {
  trusted_device_name: string | null;
  trusted_device_status: string | null;
}

export interface EndedSession {
  id: string;
  device_id: string | null;
  device_name: string;
}

/** What the bearer check reads of a session: enough to say whether it is live and, when not, why. */
export interface LiveSession {
  user_id: string;
  last_active_at: number;
  ended_at: number | null;
  end_cause: EventCause | null;
  end_actor_name: string | null;
  expires_at: number;
  idle_expires_at: number;
  /** How and when the person last authenticated in this session (docs/step-up.md). */
  auth_time: number;
  amr: string;
}

/** What a refresh reads before it rotates: the token's session, its binding and its state. */
export interface RefreshContext {
  session_id: string;
  user_id: string;
  rotated_at: number | null;
  token_expires_at: number;
  device_id: string | null;
  device_name: string;
  ended_at: number | null;
  end_cause: EventCause | null;
  end_actor_name: string | null;
  expires_at: number;
  idle_expires_at: number;
  binding_kind: SessionBindingKind | null;
  binding_key_jwk: string | null;
  binding_thumbprint: string | null;
  dbsc_cookie_hash: string | null;
  dbsc_cookie_expires_at: number | null;
}

/** Which of a user's live sessions to end. */
export type SessionSelector =
  | { ids: readonly string[] }
  | { deviceIds: readonly string[] }
  | { all: true; exceptId?: string | undefined };

export type RotationResult =
  | { kind: 'rotated'; userId: string; sessionId: string }
  | { kind: 'reused'; userId: string; sessionId: string }
  | { kind: 'invalid' };

/** The literal of the partial index sessions_idle_live (migration 016): a bound `null` would not match its WHERE. */
const UNENDED = sql<boolean>`ended_at is null`;

export function createSessionsRepository(db: Kysely<Database>) {
  // The bearer check runs on every authenticated request: compiled once, bound per call (id).
  // It reads the row whatever its state, so a refused token can be told why (docs/sessions.md, "Signed-out reasons").
  const liveQuery = db
    .selectFrom('sessions')
    .select(['user_id', 'last_active_at', 'ended_at', 'end_cause', 'end_actor_name', 'expires_at', 'idle_expires_at', 'auth_time', 'amr'])
    .where('id', '=', '')
    .compile();
  // SQLite: the same SQL as a prepared statement run directly when no transaction holds the connection (src/store/connect.ts).
  const direct = directSqlite(db);
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;

  return {
    async insert(trx: Db, row: SessionRow): Promise<void> {
      await trx.insertInto('sessions').values(row).execute();
    },

    /** The account's latest sign-in (index sessions_user_created): when, and from where (impossible travel). */
    latestSignIn(userId: string): Promise<{ created_at: number; location: string | null } | undefined> {
      return db
        .selectFrom('sessions')
        .select(['created_at', 'location'])
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
    },

    /** Whether the account has signed in from this fingerprint before (index sessions_user_fingerprint). */
    async hasSignedInFrom(userId: string, fingerprint: string): Promise<boolean> {
      const row = await db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('fingerprint', '=', fingerprint).limit(1).executeTakeFirst();
      return row !== undefined;
    },

    /** A live session's device (the "This wasn't me" of a sign-in alert ends it too, when it is still trusted). */
    async deviceOf(trx: Db, userId: string, sessionId: string): Promise<string | null | undefined> {
      const row = await trx.selectFrom('sessions').select('device_id').where('id', '=', sessionId).where('user_id', '=', userId).executeTakeFirst();
      return row?.device_id;
    },

    async insertRefreshToken(trx: Db, row: RefreshTokensTable): Promise<void> {
      await trx.insertInto('refresh_tokens').values(row).execute();
    },

    /** The bearer check: one primary-key lookup of the session, live or not (the caller decides). */
    async findForBearer(id: string): Promise<LiveSession | undefined> {
      const statement = direct?.statement(liveQuery.sql);
      if (statement) return statement.get(id) as LiveSession | undefined;
      return (await db.executeQuery<LiveSession>({ ...liveQuery, queryId: createQueryId(), parameters: [id] })).rows[0];
    },

    /** A refresh token's session, with its binding and state (the token by its unique hash, the session by primary key). */
    async refreshContext(tokenHash: string): Promise<RefreshContext | undefined> {
      return db
        .selectFrom('refresh_tokens as r')
        .innerJoin('sessions as s', 's.id', 'r.family_id')
        .select([
          'r.family_id as session_id',
          'r.user_id',
          'r.rotated_at',
          'r.expires_at as token_expires_at',
          's.device_id',
          's.device_name',
          's.ended_at',
          's.end_cause',
          's.end_actor_name',
          's.expires_at',
          's.idle_expires_at',
          's.binding_kind',
          's.binding_key_jwk',
          's.binding_thumbprint',
          's.dbsc_cookie_hash',
          's.dbsc_cookie_expires_at',
        ])
        .where('r.token_hash', '=', tokenHash)
        .executeTakeFirst();
    },

    /**
     * Writes recorded activity (src/features/sessions/activity.ts): each session's
     * last_active_at moves to its own time, in one statement for the batch,
     * only if that is at least `everyMs` later than what is stored (the
     * "at most once a minute" of docs/sessions.md holds across instances, and the time
     * never moves back), and never on an ended session.
     *
     * PostgreSQL: the rows are locked with SKIP LOCKED, so the flush never
     * waits for a lock. It locks up to a batch of sessions of many users in
     * its own order, without the user-row lock that orders every what-ends-what
     * revocation (src/store/locks.ts): waiting there could close a deadlock
     * cycle with a revocation, and PostgreSQL might abort the revocation. A
     * row that is locked is being refreshed or ended right now; its activity
     * is dropped.
     */
    async touchMany(entries: ReadonlyArray<readonly [sessionId: string, at: number]>, everyMs: number): Promise<void> {
      if (entries.length === 0) return;
      if (postgres) {
        await sql`
          with l as (select id from sessions where id = any(${entries.map(([id]) => id)}::text[]) and ended_at is null order by id for update skip locked)
          update sessions s set last_active_at = v.at
          from l join unnest(${entries.map(([id]) => id)}::text[], ${entries.map(([, at]) => at)}::bigint[]) as v(id, at) using (id)
          where s.id = l.id and s.last_active_at <= v.at - ${everyMs}`.execute(db);
        return;
      }
      // SQLite (one writer at a time, no row locks): a VALUES list joined by primary key; SQLite ≥ 3.33 names its columns column1, column2.
      const times = sql`(values ${sql.join(entries.map(([id, at]) => sql`(${id}, ${at})`))})`;
      await db
        .updateTable('sessions')
        .from(times.as('v'))
        .set({ last_active_at: sql<number>`v.column2` })
        .where(sql<boolean>`sessions.id = v.column1`)
        .where('sessions.ended_at', 'is', null)
        .where(sql<boolean>`sessions.last_active_at <= v.column2 - ${everyMs}`)
        .execute();
    },

    /**
     * Marks a refresh token rotated with one conditional UPDATE, so of two
     * concurrent refreshes exactly one wins. A token that exists but was
     * already rotated is reuse.
     */
    async rotateRefreshToken(trx: Db, tokenHash: string, now: number): Promise<RotationResult> {
      const won = await trx
        .updateTable('refresh_tokens')
        .set({ rotated_at: now })
        .where('token_hash', '=', tokenHash)
        .where('rotated_at', 'is', null)
        .where('expires_at', '>', now)
        .returning(['user_id', 'family_id'])
        .executeTakeFirst();
      if (won) return { kind: 'rotated', userId: won.user_id, sessionId: won.family_id };
      const existing = await trx
        .selectFrom('refresh_tokens')
        .select(['user_id', 'family_id', 'rotated_at'])
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      if (existing && existing.rotated_at !== null) return { kind: 'reused', userId: existing.user_id, sessionId: existing.family_id };
      return { kind: 'invalid' };
    },

    /**
     * A refresh keeps the session going: one conditional UPDATE of the live
     * row (its lock is what a concurrent end waits for). Returns the absolute
     * end, or undefined when the session is no longer live.
     */
    async extend(trx: Db, id: string, userId: string, now: number, idleMs: number, boundTo: string | null): Promise<{ expires_at: number; auth_time: number; amr: string } | undefined> {
      const idleEnd = now + idleMs;
      return trx
        .updateTable('sessions')
        .set({ last_active_at: now, idle_expires_at: sql<number>`case when expires_at < ${idleEnd} then expires_at else ${idleEnd} end` })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        // The binding the proof was checked against is still the session's (a binding made meanwhile needs its own proof).
        .where('binding_thumbprint', boundTo === null ? 'is' : '=', boundTo)
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .where('idle_expires_at', '>', now)
        .returning(['expires_at', 'auth_time', 'amr'])
        .executeTakeFirst();
    },

    /**
     * A factor performed again in a live session (a step-up, docs/step-up.md):
     * one conditional UPDATE by primary key; undefined when the session is
     * no longer live (or not the user's).
     */
    async recordAuthentication(trx: Db, id: string, userId: string, now: number, amr: string): Promise<{ device_name: string } | undefined> {
      return trx
        .updateTable('sessions')
        .set({ auth_time: now, amr })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .where('idle_expires_at', '>', now)
        .returning('device_name')
        .executeTakeFirst();
    },

    /** A session's state and binding by primary key (the DBSC refresh endpoint names the session). */
    findBinding(id: string) {
      return db
        .selectFrom('sessions')
        .select(['id as session_id', 'user_id', 'device_id', 'device_name', 'ended_at', 'end_cause', 'end_actor_name', 'expires_at', 'idle_expires_at', 'binding_kind', 'binding_key_jwk', 'binding_thumbprint'])
        .where('id', '=', id)
        .executeTakeFirst();
    },

    /**
     * DBSC registration: binds a live, unbound session to the browser's key and
     * sets its first bound cookie, in one conditional UPDATE (false: it ended,
     * or was bound meanwhile).
     */
    async bindDbsc(id: string, key: { jwk: string; thumbprint: string }, cookieHash: string, cookieExpiresAt: number, now: number): Promise<boolean> {
      const result = await db
        .updateTable('sessions')
        .set({ binding_kind: 'dbsc', binding_key_jwk: key.jwk, binding_thumbprint: key.thumbprint, dbsc_cookie_hash: cookieHash, dbsc_cookie_expires_at: cookieExpiresAt })
        .where('id', '=', id)
        .where('binding_kind', 'is', null)
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .where('idle_expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** DBSC refresh: a new bound cookie for a live session still bound to `thumbprint` (one conditional UPDATE). */
    async rotateDbscCookie(id: string, thumbprint: string, cookieHash: string, cookieExpiresAt: number, now: number): Promise<boolean> {
      const result = await db
        .updateTable('sessions')
        .set({ dbsc_cookie_hash: cookieHash, dbsc_cookie_expires_at: cookieExpiresAt })
        .where('id', '=', id)
        .where('binding_kind', '=', 'dbsc')
        .where('binding_thumbprint', '=', thumbprint)
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .where('idle_expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** The session a refresh token belongs to, only if it is the user's. */
    async sessionOfRefreshToken(tokenHash: string, userId: string): Promise<string | undefined> {
      const row = await db
        .selectFrom('refresh_tokens')
        .select('family_id')
        .where('token_hash', '=', tokenHash)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row?.family_id;
    },

    /** The user's live sessions with their trusted device's current name (the list joins by primary key). */
    listLive(userId: string, now: number): Promise<SessionListRow[]> {
      return db
        .selectFrom('sessions as s')
        .leftJoin('trusted_devices as d', (join) => join.onRef('d.user_id', '=', 's.user_id').onRef('d.id', '=', 's.device_id'))
        .selectAll('s')
        .select(['d.device_name as trusted_device_name', 'd.status as trusted_device_status'])
        .where('s.user_id', '=', userId)
        .where('s.ended_at', 'is', null)
        .where('s.expires_at', '>', now)
        .where('s.idle_expires_at', '>', now)
        .orderBy('s.last_active_at', 'desc')
        .orderBy('s.id', 'desc')
        .execute();
    },

    /** Ends the selected live sessions of the user in one UPDATE; returns what it ended. */
    async end(trx: Db, userId: string, selector: SessionSelector, now: number, cause: EventCause, actorName: string | null = null): Promise<EndedSession[]> {
      if ('ids' in selector && selector.ids.length === 0) return [];
      if ('deviceIds' in selector && selector.deviceIds.length === 0) return [];
      let query = trx
        .updateTable('sessions')
        .set({ ended_at: now, end_cause: cause, end_actor_name: actorName })
        .where('user_id', '=', userId)
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .where('idle_expires_at', '>', now);
      if ('ids' in selector) query = query.where('id', 'in', selector.ids);
      else if ('deviceIds' in selector) query = query.where('device_id', 'in', selector.deviceIds);
      else if (selector.exceptId !== undefined) query = query.where('id', '!=', selector.exceptId);
      return query.returning(['id', 'device_id', 'device_name']).execute();
    },

    /**
     * Records the device activated from a session, only while the session is
     * live: false means it ended meanwhile, and the activation must not happen.
     */
    async attachDevice(trx: Db, sessionId: string, userId: string, deviceId: string, now: number): Promise<boolean> {
      const result = await trx
        .updateTable('sessions')
        .set({ device_id: deviceId })
        .where('id', '=', sessionId)
        .where('user_id', '=', userId)
        .where('ended_at', 'is', null)
        .where('expires_at', '>', now)
        .where('idle_expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** The name of a session's device, for naming the actor of an event. */
    async nameOf(trx: Db, id: string): Promise<string | undefined> {
      const row = await trx.selectFrom('sessions').select('device_name').where('id', '=', id).executeTakeFirst();
      return row?.device_name;
    },

    /**
     * Housekeeping (src/app/housekeeping.ts, docs/sessions.md "Expiry"):
     * ends at most `limit` sessions whose time ran out, in one transaction
     * with one `session_expired` event each (the one event writer: a webhook
     * row when webhooks are on, no Shared Signals SET — an expiry is no
     * revocation). `ended_at` is the moment it actually ended, the earlier of
     * its idle and absolute ends, not the time housekeeping came by; the
     * event carries the same time, and `end_cause` says which end it was.
     *
     * `idle_expires_at <= now` alone finds both kinds: idle_expires_at never
     * passes expires_at (the sign-in writes min(now + idle, expires_at), and
     * `extend` caps it with `case when expires_at < idleEnd …`; nothing else
     * writes it), so a session past its absolute end is past its idle end
     * too. That one column is what the partial index sessions_idle_live
     * (idle_expires_at) WHERE ended_at IS NULL holds (migration 016). The
     * oldest ends go first (`order by idle_expires_at`): the index gives that
     * order, and it keeps PostgreSQL on the index when many rows are due (a
     * first run after an upgrade), where a plain `limit` let it pick a
     * sequential scan that skips further past ended rows at every batch.
     *
     * The race with a refresh: the UPDATE repeats the condition on the row
     * itself, so a refresh that moved idle_expires_at first makes it match
     * nothing (on PostgreSQL, READ COMMITTED re-checks the WHERE on the newest
     * row version once the refresh commits). On PostgreSQL the rows are
     * chosen FOR UPDATE SKIP LOCKED: housekeeping never waits on a row a
     * refresh or a revocation holds (it ends that one on a later run, if it
     * is still due), so it can never close a deadlock cycle with the user-lock
     * order of what-ends-what (src/store/locks.ts).
     */
    async expireSessions(history: History, now: number, limit: number): Promise<Array<{ id: string; user_id: string; ended_at: number; end_cause: EventCause }>> {
      return db.transaction().execute(async (trx) => {
        const set = {
          ended_at: sql<number>`case when expires_at < idle_expires_at then expires_at else idle_expires_at end`,
          // Equal ends: the idle end was capped at the absolute one, which is what ran out.
          end_cause: sql<EventCause>`case when idle_expires_at < expires_at then 'idle_timeout' else 'max_age' end`,
          end_actor_name: null,
        };
        const columns = ['id', 'user_id', 'device_id', 'device_name', 'ended_at', 'end_cause'] as const;
        const due = postgres
          ? // A materialized CTE runs once, so the batch holds at most `limit` rows. Written as
            // `in (select … limit … for update skip locked)`, PostgreSQL ended all 5 due sessions
            // for a limit of 2 (test/sessions/session-expiry.test.ts): the locking subquery inside
            // the UPDATE's join is not a fixed set of rows.
            await trx
              .with(
                (cte) => cte('due').materialized(),
                (q) => q.selectFrom('sessions').select('id').where(UNENDED).where('idle_expires_at', '<=', now).orderBy('idle_expires_at').limit(limit).forUpdate().skipLocked(),
              )
              .updateTable('sessions')
              .set(set)
              .where('id', 'in', (eb) => eb.selectFrom('due').select('id'))
              .where(UNENDED)
              .where('idle_expires_at', '<=', now)
              .returning(columns)
              .execute()
          : await trx
              .updateTable('sessions')
              .set(set)
              .where('id', 'in', (eb) => eb.selectFrom('sessions').select('id').where(UNENDED).where('idle_expires_at', '<=', now).orderBy('idle_expires_at').limit(limit))
              .where(UNENDED)
              .where('idle_expires_at', '<=', now)
              .returning(columns)
              .execute();
        const ended = due.map((s) => ({ ...s, ended_at: Number(s.ended_at), end_cause: s.end_cause! }));
        // One append per end time: each event is dated (and its UUIDv7 id ordered) when its session ended.
        const byTime = new Map<number, EventInput[]>();
        for (const s of ended) {
          const event: EventInput = { userId: s.user_id, type: 'session_expired', sessionId: s.id, deviceId: s.device_id, subjectName: s.device_name, cause: s.end_cause, actor: SYSTEM };
          byTime.set(s.ended_at, [...(byTime.get(s.ended_at) ?? []), event]);
        }
        for (const [at, events] of byTime) await history.append(trx, events, at);
        return ended.map(({ id, user_id, ended_at, end_cause }) => ({ id, user_id, ended_at, end_cause }));
      });
    },

    /** At most `limit` rows, chosen through the expiry index (housekeeping loops: src/app/housekeeping.ts). */
    async deleteExpiredRefreshTokens(now: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('refresh_tokens')
        .where('id', 'in', (eb) => eb.selectFrom('refresh_tokens').select('id').where('expires_at', '<=', now).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /**
     * Sessions that ended, or reached their absolute end, before `before` (history keeps them until then).
     * At most `limit` of each kind per call, each chosen through its index (housekeeping loops).
     */
    async deleteDeadBefore(before: number, limit: number): Promise<number> {
      const ended = await db
        .deleteFrom('sessions')
        .where('id', 'in', (eb) => eb.selectFrom('sessions').select('id').where('ended_at', 'is not', null).where('ended_at', '<', before).limit(limit))
        .executeTakeFirst();
      const expired = await db
        .deleteFrom('sessions')
        .where('id', 'in', (eb) => eb.selectFrom('sessions').select('id').where('expires_at', '<', before).limit(limit))
        .executeTakeFirst();
      return Number(ended.numDeletedRows) + Number(expired.numDeletedRows);
    },
  };
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>;
