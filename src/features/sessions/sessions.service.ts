/**
 * Sessions (docs/sessions.md): one sign-in, its access and refresh tokens.
 *
 * Lifetimes: a session ends by logout, by revocation, by a security event
 * (src/domain/ledger.ts), after SESSION_IDLE_DAYS without a refresh, or at
 * SESSION_MAX_AGE_DAYS after it was opened (refreshing never moves that).
 * Access tokens: ACCESS_TOKEN_TTL_SECONDS, and only while their session is
 * live: the bearer check reads the session row by primary key on every
 * request, so an ended session's access tokens are refused from the next
 * request on, on every instance (no cache, so no staleness to bound).
 * Refresh tokens: REFRESH_TOKEN_TTL_SECONDS (never past the session's end),
 * rotated on every use inside one transaction with the session's liveness
 * check; a rotated one presented again ends the session.
 * Storage: SHA-256 of refresh tokens; the session row keeps the browser, OS,
 * device type, IP and User-Agent of the sign-in, no raw fingerprint signal.
 * Threats: a revoked device or changed password that leaves sessions alive;
 * a refresh racing a logout that leaves a live successor; a stolen refresh
 * token (rotation + reuse detection); another user's session id (the same
 * 404 as an unknown one).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { type Clock, DAY, MINUTE } from '../../platform/clock.ts';
import type { Database, MfaMethod, Db } from '../../store/schema.ts';
import type { OpenSession, SessionTokens, SessionView } from '../../domain/contracts.ts';
import { defaultDeviceName, MAX_USER_AGENT_STORED, type RequestDevice } from '../../platform/context.ts';
import { AppError } from '../../platform/errors.ts';
import { type Actor, type History, SYSTEM } from '../../store/history.ts';
import { NothingToEnd, type Revocation } from '../../domain/ledger.ts';
import type { AccessTokens } from '../../platform/crypto/access-tokens.ts';
import { generateToken, hashToken, isId, looksLike, newId } from '../../platform/crypto/tokens.ts';
import { createActivityRecorder } from './activity.ts';
import type { SessionListRow, SessionsRepository } from '../../store/sessions.repository.ts';
import { type GeoLocator, NO_GEO, parseStoredLocation, publicLocation, serialiseLocation } from '../../platform/geo.ts';

export interface SessionsServiceOptions {
  /** The one event writer (it also fills the outboxes). */
  history: History;
  db: Kysely<Database>;
  repository: SessionsRepository;
  revocation: Revocation;
  accessTokens: AccessTokens;
  clock: Clock;
  refreshTokenTtlSeconds: number;
  sessionMaxAgeDays: number;
  sessionIdleDays: number;
  log: FastifyBaseLogger;
  /** The offline location lookup (src/platform/geo.ts): a session records where it was opened from. */
  geo?: GeoLocator;
}

/** last_active_at moves at most this often (docs/sessions.md). */
export const ACTIVITY_RESOLUTION_MS = MINUTE;


export function createSessionsService(options: SessionsServiceOptions) {
  const { db, repository, revocation, accessTokens, clock, log, history } = options;
  const geo = options.geo ?? NO_GEO;
  const refreshTtlMs = options.refreshTokenTtlSeconds * 1000;
  const maxAgeMs = options.sessionMaxAgeDays * DAY;
  const idleMs = options.sessionIdleDays * DAY;
  // last_active_at is written behind the bearer check (src/features/sessions/activity.ts).
  const activity = createActivityRecorder({ store: repository, log, resolutionMs: ACTIVITY_RESOLUTION_MS });

  const invalidRefreshToken = () => new AppError('INVALID_TOKEN', 'The refresh token is not valid or has expired.');
  const notFound = () => new AppError('SESSION_NOT_FOUND');

  async function issueTokens(trx: Db, userId: string, sessionId: string, sessionEnd: number, now: number): Promise<SessionTokens> {
    const refreshToken = generateToken('refresh');
    await repository.insertRefreshToken(trx, {
      id: newId(),
      user_id: userId,
      family_id: sessionId,
      token_hash: hashToken(refreshToken),
      created_at: now,
      expires_at: Math.min(now + refreshTtlMs, sessionEnd),
      rotated_at: null,
    });
    return {
      access_token: accessTokens.issue({ userId, sessionId }),
      refresh_token: refreshToken,
      token_type: 'bearer',
      expires_in: accessTokens.ttlSeconds,
    };
  }

  const view = (row: SessionListRow, currentSessionId: string): SessionView => {
    const trusted = row.trusted_device_status === 'active';
    return {
      id: row.id,
      device_id: trusted ? row.device_id : null,
      device_name: trusted ? row.trusted_device_name! : row.device_name,
      browser: row.browser,
      os: row.os,
      device_type: row.device_type,
      ip_address: row.ip_address,
      created_at: row.created_at,
      last_active_at: row.last_active_at,
      expires_at: Math.min(row.expires_at, row.idle_expires_at),
      mfa_method: row.mfa_method,
      is_current: row.id === currentSessionId,
      device_trusted: trusted,
      location: publicLocation(parseStoredLocation(row.location)),
    };
  };

  /** The session row, its first tokens and the `signed_in` event, in the caller's transaction. */
  async function openIn(trx: Db, input: OpenSession): Promise<{ sessionId: string; tokens: SessionTokens }> {
    const now = clock.now();
    const fp = input.device.fingerprint;
    const sessionId = newId();
    const expiresAt = now + maxAgeMs;
    const deviceName = input.trustedDevice?.name ?? defaultDeviceName(fp.browser, fp.os);
    const location = serialiseLocation(await geo.locate(fp.ipAddress));
    await repository.insert(trx, {
      id: sessionId,
      user_id: input.userId,
      device_id: input.trustedDevice?.id ?? null,
      device_name: deviceName,
      browser: fp.browser,
      os: fp.os,
      device_type: fp.deviceType,
      ip_address: fp.ipAddress,
      user_agent: input.device.userAgent.slice(0, MAX_USER_AGENT_STORED),
      mfa_method: input.mfaMethod,
      created_at: now,
      last_active_at: now,
      expires_at: expiresAt,
      idle_expires_at: Math.min(now + idleMs, expiresAt),
      ended_at: null,
      end_cause: null,
      location,
      fingerprint: fp.fingerprint,
    });
    const tokens = await issueTokens(trx, input.userId, sessionId, expiresAt, now);
    const actor: Actor = { type: 'user', sessionId, ipAddress: fp.ipAddress, userAgent: input.device.userAgent };
    await history.append(
      trx,
      [{ userId: input.userId, type: 'signed_in', sessionId, deviceId: input.trustedDevice?.id ?? null, subjectName: deviceName, actor, actorName: deviceName, reason: input.reason ?? null }],
      now,
    );
    return { sessionId, tokens };
  }

  return {
    /**
     * Opens a session and issues its first tokens, in one transaction with
     * the `signed_in` event and whatever `within` adds (a pending device).
     */
    async open<T>(input: OpenSession, within?: (trx: Db, sessionId: string) => Promise<T>): Promise<{ sessionId: string; tokens: SessionTokens; extra: T }> {
      return db.transaction().execute(async (trx) => {
        const { sessionId, tokens } = await openIn(trx, input);
        const extra = (within ? await within(trx, sessionId) : undefined) as T;
        return { sessionId, tokens, extra };
      });
    },

    openIn,

    /** The account's latest sign-in: when, and where from (impossible travel, docs/security-center.md). */
    async latestSignIn(userId: string) {
      const row = await repository.latestSignIn(userId);
      return row === undefined ? undefined : { at: row.created_at, location: parseStoredLocation(row.location) };
    },

    /** Whether the account has signed in from this device (its stable fingerprint) before. */
    hasSignedInFrom: (userId: string, fingerprint: string) => repository.hasSignedInFrom(userId, fingerprint),

    /**
     * The bearer check's second half: the token's session is live and the
     * user's. One primary-key read; a storage error propagates (503), never "live".
     */
    async isLive(sessionId: string, userId: string): Promise<boolean> {
      const now = clock.now();
      const row = await repository.findLive(sessionId, now);
      if (row === undefined || row.user_id !== userId) return false;
      const lastActive = Math.max(row.last_active_at, activity.pending(sessionId) ?? 0);
      if (now - lastActive >= ACTIVITY_RESOLUTION_MS) activity.record(sessionId, now);
      return true;
    },

    /**
     * Rotates a refresh token. The rotation, the session's liveness check
     * (an UPDATE of its row) and the successor are one transaction.
     */
    async refresh(refreshToken: string): Promise<SessionTokens> {
      if (!looksLike('refresh', refreshToken)) throw invalidRefreshToken();
      const now = clock.now();
      const outcome = await db.transaction().execute(async (trx) => {
        const rotation = await repository.rotateRefreshToken(trx, hashToken(refreshToken), now);
        if (rotation.kind !== 'rotated') return rotation;
        const live = await repository.extend(trx, rotation.sessionId, rotation.userId, now, idleMs);
        if (live === undefined) throw invalidRefreshToken();
        return { kind: 'rotated' as const, tokens: await issueTokens(trx, rotation.userId, rotation.sessionId, live.expires_at, now) };
      });
      if (outcome.kind === 'rotated') return outcome.tokens;
      if (outcome.kind === 'reused') {
        // A rotated token came back: two parties hold this session. End it (a no-op if it already ended).
        log.warn({ sessionId: outcome.sessionId }, 'refresh token reuse detected; session ended');
        await revocation
          .run({ kind: 'session_ended', userId: outcome.userId, sessionId: outcome.sessionId, reason: 'refresh_token_reuse', actor: SYSTEM })
          .catch((error: unknown) => {
            if (!(error instanceof NothingToEnd)) throw error;
          });
      }
      throw invalidRefreshToken();
    },

    /** Ends the caller's session, and the one a given refresh token of the same user belongs to. */
    async logout(userId: string, sessionId: string, refreshToken: string | undefined, actor: Actor): Promise<void> {
      const ids = new Set([sessionId]);
      if (refreshToken !== undefined && looksLike('refresh', refreshToken)) {
        const other = await repository.sessionOfRefreshToken(hashToken(refreshToken), userId);
        if (other !== undefined) ids.add(other);
      }
      for (const id of ids) {
        await revocation.run({ kind: 'session_ended', userId, sessionId: id, reason: 'logout', actor }).catch((error: unknown) => {
          if (!(error instanceof NothingToEnd)) throw error;
        });
      }
    },

    async list(userId: string, currentSessionId: string): Promise<SessionView[]> {
      const rows = await repository.listLive(userId, clock.now());
      const views = rows.map((row) => view(row, currentSessionId));
      // Activity this process recorded but has not written yet (at most a second old) is shown, in the list's order.
      if (!views.some((v) => activity.pending(v.id) !== undefined)) return views;
      for (const v of views) v.last_active_at = Math.max(v.last_active_at, activity.pending(v.id) ?? 0);
      return views.sort((a, b) => b.last_active_at - a.last_active_at);
    },

    /** Writes the activity recorded so far (the app's onClose). */
    flushActivity: () => activity.flush(),

    /** Ends one of the user's sessions; another user's id is the same 404 as an unknown one. */
    async end(userId: string, sessionId: string, actor: Actor): Promise<void> {
      if (!isId(sessionId)) throw notFound();
      try {
        await revocation.run({ kind: 'session_ended', userId, sessionId, actor });
      } catch (error) {
        if (error instanceof NothingToEnd) throw notFound();
        throw error;
      }
    },

    /** "Sign out everywhere (else)". */
    async endAll(userId: string, exceptSessionId: string | undefined, actor: Actor): Promise<number> {
      const { sessions } = await revocation.run({ kind: 'sessions_ended', userId, exceptSessionId, actor });
      return sessions.length;
    },
  };
}

export type SessionsService = ReturnType<typeof createSessionsService>;
