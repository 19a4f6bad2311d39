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
 *
 * Bound sessions (docs/sessions.md, "Bound sessions"): a session opened with
 * a browser key (`session_key`, or DBSC) refreshes only with a fresh proof of
 * that key (`x-session-proof: <challenge>.<signature>`, the challenge
 * consumed by one conditional UPDATE, shared with device proofs). No proof,
 * a malformed one or a spent challenge → 401 SESSION_PROOF_REQUIRED with a
 * new challenge, nothing rotated; another key's signature → the session ends
 * (what ends what, `session_proof_failed`, cause `proof_failed`), the event
 * and an alert. Its access tokens live BOUND_ACCESS_TOKEN_TTL_SECONDS. The
 * proof is checked before the rotation's transaction, and that transaction's
 * UPDATE of the session row requires the key that was checked, so a binding
 * that changed meanwhile is never bypassed. The bearer check never verifies
 * a proof: it stays one primary-key read.
 * Signed-out reasons: a refused bearer token or refresh token of a session
 * that ended says why (`details.cause`, when, by whom), read from the same
 * row; only a holder of the session's own token learns it.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { type Clock, DAY, MINUTE } from '../../platform/clock.ts';
import type { Database, MfaMethod, Db } from '../../store/schema.ts';
import type { OpenSession, ProofChallenges, SessionAlerts, SessionAuthentication, SessionTokens, SessionView, StepUpResult } from '../../domain/contracts.ts';
import { parseProof, parsePublicKey, type PublicJwk, verifyProof } from '../../platform/crypto/device-keys.ts';
import { type DbscProof, type DbscPublicJwk, parseDbscKey, parseDbscProof, verifyDbscProof } from '../../platform/crypto/dbsc.ts';
import type { EventCause } from '../../store/schema.ts';
import { defaultDeviceName, MAX_USER_AGENT_STORED, type RequestDevice } from '../../platform/context.ts';
import { AppError, UnauthorizedError } from '../../platform/errors.ts';
import { acrOf, type Amr, amrAfter, formatAmr, parseAmr } from '../../platform/authn-methods.ts';
import { lockUser } from '../../store/locks.ts';
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
  /** BOUND_ACCESS_TOKEN_TTL_SECONDS: the access-token lifetime of a bound session. */
  boundAccessTokenTtlSeconds: number;
  /** The single-use proof challenges (shared with device proofs). */
  challenges: ProofChallenges;
  alerts?: SessionAlerts;
  log: FastifyBaseLogger;
  /** The offline location lookup (src/platform/geo.ts): a session records where it was opened from. */
  geo?: GeoLocator;
}

/** Why a session is no longer usable, in the words a client shows (docs/sessions.md, "Signed-out reasons"). */
export type SignedOutCause =
  | 'device_revoked'
  | 'password_reset'
  | 'password_changed'
  | 'not_me'
  | 'proof_failed'
  | 'reuse_detected'
  | 'signed_out_elsewhere'
  | 'signed_out'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'backup_codes_regenerated'
  | 'expired';

const SIGNED_OUT_CAUSE: Record<EventCause, SignedOutCause> = {
  user: 'signed_out_elsewhere',
  admin: 'signed_out_elsewhere',
  logout: 'signed_out',
  password_changed: 'password_changed',
  password_reset: 'password_reset',
  mfa_enabled: 'mfa_enabled',
  mfa_disabled: 'mfa_disabled',
  backup_codes_regenerated: 'backup_codes_regenerated',
  device_revoked: 'device_revoked',
  all_devices_revoked: 'device_revoked',
  not_me: 'not_me',
  reuse_detected: 'reuse_detected',
  refresh_token_reuse: 'reuse_detected',
  max_devices: 'device_revoked',
  proof_failed: 'proof_failed',
  // Ended by housekeeping at its own idle or absolute end: the same answer as before housekeeping came by.
  idle_timeout: 'expired',
  max_age: 'expired',
};

/** The `details` of a 401 for a session that is over: why, when, and who ended it (null when nobody did). */
export function signedOutDetails(row: { ended_at: number | null; end_cause: EventCause | null; end_actor_name: string | null; expires_at: number; idle_expires_at: number }) {
  if (row.ended_at === null) return { cause: 'expired' as SignedOutCause, ended_at: new Date(Math.min(row.expires_at, row.idle_expires_at)).toISOString(), ended_by: null };
  return { cause: row.end_cause === null ? ('signed_out_elsewhere' as SignedOutCause) : SIGNED_OUT_CAUSE[row.end_cause], ended_at: new Date(row.ended_at).toISOString(), ended_by: row.end_actor_name };
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
  const ended = (row: Parameters<typeof signedOutDetails>[0]) => new AppError('INVALID_TOKEN', 'This session has ended. Sign in again.', { details: signedOutDetails(row) });

  type BoundContext = { session_id: string; user_id: string; binding_key_jwk: string | null; device_id: string | null; device_name: string };

  /** 401 SESSION_PROOF_REQUIRED with a fresh challenge to sign. */
  async function proofRequired(message?: string): Promise<AppError> {
    const { challenge, expiresIn } = await options.challenges.issueChallenge();
    return new AppError('SESSION_PROOF_REQUIRED', message, { details: { challenge, expires_in: expiresIn } });
  }

  /**
   * The proof of a bound session's refresh. Missing, malformed, or over a
   * spent/expired/unknown challenge → 401 SESSION_PROOF_REQUIRED (nothing
   * rotated, nothing ended). A usable challenge signed by another key → the
   * session ends (`session_proof_failed` row), event and alert, 401 with
   * cause `proof_failed`.
   */
  async function checkSessionProof(context: BoundContext, request: { proof?: string | undefined; actor?: Actor }): Promise<void> {
    const proof = parseProof(request.proof);
    if (proof === undefined) throw await proofRequired(request.proof === undefined ? undefined : 'x-session-proof is malformed: send <challenge>.<base64url ES256 signature>.');
    if (!(await options.challenges.consume(proof.challenge))) throw await proofRequired('The challenge of x-session-proof is unknown, used or expired: sign details.challenge.');
    if (await verifyProof(context.binding_key_jwk!, proof.challenge, proof.signature)) return;
    await proofFailed(context, request.actor);
  }

  /** Another key signed a usable challenge for this bound session: the `session_proof_failed` row, its event, an alert; throws the 401. */
  async function proofFailed(context: BoundContext, requestActor: Actor | undefined): Promise<never> {
    const actor: Actor = requestActor ?? SYSTEM;
    const now = clock.now();
    try {
      await revocation.run({ kind: 'session_proof_failed', userId: context.user_id, sessionId: context.session_id, actor }, (trx) =>
        history.append(
          trx,
          [{ userId: context.user_id, type: 'session_proof_failed', sessionId: context.session_id, deviceId: context.device_id, subjectName: context.device_name, actor, cause: 'proof_failed' }],
          now,
        ),
      );
    } catch (error) {
      // Ended a moment ago by something else: nothing to end or record twice.
      if (!(error instanceof NothingToEnd)) throw error;
      throw invalidRefreshToken();
    }
    log.warn({ sessionId: context.session_id }, 'bound session refreshed with another key; session ended');
    await options.alerts?.sessionProofFailed(context.user_id, {
      ipAddress: actor.type === 'system' ? null : actor.ipAddress,
      userAgent: actor.type === 'system' ? null : actor.userAgent,
      deviceId: context.device_id,
      deviceName: context.device_name,
    });
    throw new AppError('INVALID_TOKEN', 'This session was signed out: the refresh was signed by another key than the browser’s that signed in.', {
      details: { cause: 'proof_failed', ended_at: new Date(now).toISOString(), ended_by: null },
    });
  }
  const notFound = () => new AppError('SESSION_NOT_FOUND');

  /** The session's authentication (docs/step-up.md): the time of its last performed factor, and its methods. */
  type Authentication = { authTime: number; amr: readonly Amr[] };

  async function issueTokens(trx: Db, userId: string, sessionId: string, sessionEnd: number, now: number, authentication: Authentication, bound: boolean): Promise<SessionTokens> {
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
    const ttl = bound ? options.boundAccessTokenTtlSeconds : accessTokens.ttlSeconds;
    return {
      access_token: accessTokens.issue({ userId, sessionId, ...authentication }, ttl),
      refresh_token: refreshToken,
      token_type: 'bearer',
      expires_in: ttl,
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
      bound: row.binding_kind !== null,
      binding: row.binding_kind,
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
      end_actor_name: null,
      binding_kind: input.binding?.kind ?? null,
      binding_key_jwk: input.binding?.jwk ?? null,
      binding_thumbprint: input.binding?.thumbprint ?? null,
      dbsc_cookie_hash: null,
      dbsc_cookie_expires_at: null,
      auth_time: now,
      amr: formatAmr(input.amr),
      location,
      fingerprint: fp.fingerprint,
    });
    const tokens = await issueTokens(trx, input.userId, sessionId, expiresAt, now, { authTime: now, amr: input.amr }, input.binding !== undefined);
    const actor: Actor = { type: 'user', sessionId, ipAddress: fp.ipAddress, userAgent: input.device.userAgent };
    await history.append(
      trx,
      [
        // A spent backup code is a change of its own (one fewer left): its line comes with the sign-in's, in its transaction.
        ...(input.mfaMethod === 'backup_code' ? [{ userId: input.userId, type: 'backup_code_used' as const, sessionId, subjectName: deviceName, actor, actorName: deviceName }] : []),
        { userId: input.userId, type: 'signed_in', sessionId, deviceId: input.trustedDevice?.id ?? null, subjectName: deviceName, actor, actorName: deviceName, reason: input.reason ?? null },
      ],
      now,
    );
    return { sessionId, tokens };
  }

  /**
   * A factor performed again in a live session (docs/step-up.md): the row's
   * auth_time and amr move, in one transaction under the user's lock with the
   * `step_up` event (unless `event: false`, for a factor performed as part of
   * another change, the TOTP enrolment's code); a new access token of the
   * same session carries them. The refresh token is untouched. An ended
   * session is 401.
   */
  const stepUp: SessionAuthentication['stepUp'] = async ({ userId, sessionId, earlier, performed, actor, event = true }): Promise<StepUpResult> => {
    const now = clock.now();
    const amr = amrAfter(earlier, performed);
    const session = await db.transaction().execute(async (trx) => {
      await lockUser(trx, userId);
      const row = await repository.recordAuthentication(trx, sessionId, userId, now, formatAmr(amr));
      if (row === undefined) return undefined;
      if (event) {
        await history.append(trx, [{ userId, type: 'step_up', sessionId, subjectName: row.device_name, actor, actorName: row.device_name }], now);
      }
      return row;
    });
    if (session === undefined) throw new UnauthorizedError('This session has ended. Sign in again.');
    return {
      access_token: accessTokens.issue({ userId, sessionId, authTime: now, amr }),
      token_type: 'bearer',
      expires_in: accessTokens.ttlSeconds,
      auth_time: now,
      amr,
      acr: acrOf(amr),
    };
  };

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
     * user's, and how the person last authenticated in it (the step-up gate
     * reads that, docs/step-up.md). One primary-key read; a storage error
     * propagates (503), never "live". Null when the session is not live.
     */
    async live(sessionId: string, userId: string): Promise<{ authTime: number; amr: Amr[] } | { ended: ReturnType<typeof signedOutDetails> } | null> {
      const now = clock.now();
      const row = await repository.findForBearer(sessionId);
      if (row === undefined || row.user_id !== userId) return null;
      if (row.ended_at !== null || row.expires_at <= now || row.idle_expires_at <= now) return { ended: signedOutDetails(row) };
      const lastActive = Math.max(row.last_active_at, activity.pending(sessionId) ?? 0);
      if (now - lastActive >= ACTIVITY_RESOLUTION_MS) activity.record(sessionId, now);
      return { authTime: Number(row.auth_time), amr: parseAmr(row.amr) };
    },

    stepUp,

    /**
     * Rotates a refresh token. The rotation, the session's liveness check
     * (an UPDATE of its row) and the successor are one transaction.
     */
    async refresh(
      refreshToken: string,
      request: { proof?: string | undefined; actor?: Actor; boundCookie?: string | undefined; skipped?: readonly string[] } = {},
    ): Promise<SessionTokens> {
      if (!looksLike('refresh', refreshToken)) throw invalidRefreshToken();
      const now = clock.now();
      const tokenHash = hashToken(refreshToken);
      const context = await repository.refreshContext(tokenHash);
      if (context === undefined) throw invalidRefreshToken();
      // Over already: say why (only the session's own refresh token learns it). A rotated token of a live session goes on to reuse detection.
      if (context.ended_at !== null || context.expires_at <= now || context.idle_expires_at <= now) throw ended(context);
      const boundTo = context.binding_thumbprint;
      if (context.rotated_at === null && context.binding_kind === 'dbsc') {
        // DBSC: the browser keeps the short-lived bound cookie fresh with its own key; without it, no refresh.
        const fresh = request.boundCookie !== undefined && context.dbsc_cookie_hash === hashToken(request.boundCookie) && (context.dbsc_cookie_expires_at ?? 0) > now;
        if (!fresh) {
          if (request.skipped?.length) log.info({ sessionId: context.session_id, skipped: request.skipped }, 'DBSC refresh skipped by the browser');
          throw new AppError('SESSION_PROOF_REQUIRED', 'This session is bound through Device Bound Session Credentials: its bound cookie is missing or expired.', {
            details: { dbsc: true, ...(request.skipped?.length ? { skipped: request.skipped } : {}) },
          });
        }
      } else if (context.rotated_at === null && context.binding_key_jwk !== null) await checkSessionProof(context, request);
      const outcome = await db.transaction().execute(async (trx) => {
        const rotation = await repository.rotateRefreshToken(trx, tokenHash, now);
        if (rotation.kind !== 'rotated') return rotation;
        const live = await repository.extend(trx, rotation.sessionId, rotation.userId, now, idleMs, boundTo);
        if (live === undefined) throw invalidRefreshToken();
        // The refreshed token keeps the session's authentication: a refresh is no factor.
        const authentication = { authTime: Number(live.auth_time), amr: parseAmr(live.amr) };
        return { kind: 'rotated' as const, tokens: await issueTokens(trx, rotation.userId, rotation.sessionId, Number(live.expires_at), now, authentication, boundTo !== null) };
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

    /**
     * DBSC registration (docs/sessions.md, "Device Bound Session Credentials"):
     * the browser's `Secure-Session-Response` JWT carries its new public key
     * and signs a challenge this service offered at sign-in. The session is
     * the one of the refresh cookie the registration request carries; it must
     * be live and unbound (a session already bound by `session_key` keeps that
     * binding: `continue: false`). One conditional UPDATE binds it and sets
     * the first bound cookie.
     */
    async dbscRegister(refreshToken: string | undefined, response: string | undefined): Promise<{ continue: false } | { continue: true; sessionId: string; cookie: string; ttlSeconds: number }> {
      const proof = parseDbscProof(response);
      if (proof === undefined) throw new AppError('INVALID_SESSION_RESPONSE');
      // The key must be of the JWT's algorithm (ES256: P-256; RS256: RSA 2048–4096 bits, e = 65537).
      const key = await parseDbscKey(proof.alg, proof.jwk);
      if ('problem' in key) throw new AppError('INVALID_SESSION_RESPONSE', key.problem);
      if (!(await verifyDbscProof(proof, key.jwk))) throw new AppError('INVALID_SESSION_RESPONSE', 'The registration JWT is not signed by the key it carries.');
      if (!(await options.challenges.consume(proof.jti))) throw new AppError('INVALID_SESSION_RESPONSE', 'The registration JWT signs no challenge of this service (unknown, used or expired).');
      if (refreshToken === undefined || !looksLike('refresh', refreshToken)) throw invalidRefreshToken();
      const now = clock.now();
      const context = await repository.refreshContext(hashToken(refreshToken));
      if (context === undefined || context.rotated_at !== null) throw invalidRefreshToken();
      if (context.ended_at !== null || context.expires_at <= now || context.idle_expires_at <= now) throw ended(context);
      if (context.binding_kind !== null) return { continue: false };
      const cookie = generateToken('refresh');
      const ttlSeconds = options.boundAccessTokenTtlSeconds;
      if (!(await repository.bindDbsc(context.session_id, { jwk: key.stored, thumbprint: key.thumbprint }, hashToken(cookie), now + ttlSeconds * 1000, now))) return { continue: false };
      return { continue: true, sessionId: context.session_id, cookie, ttlSeconds };
    },

    /**
     * DBSC refresh: `Sec-Secure-Session-Id` names the session. Without a
     * valid proof → a challenge to sign (403 with Secure-Session-Challenge);
     * a proof by the session's key over a usable challenge → a new bound
     * cookie; by another key → the session ends like a webcrypto session's
     * (`session_proof_failed`).
     */
    async dbscRefresh(sessionId: string | undefined, response: string | undefined, actor: Actor): Promise<{ kind: 'challenge'; challenge: string; sessionId: string } | { kind: 'refreshed'; sessionId: string; cookie: string; ttlSeconds: number }> {
      if (sessionId === undefined || !isId(sessionId)) throw invalidRefreshToken();
      const row = await repository.findBinding(sessionId);
      const now = clock.now();
      if (row === undefined || row.binding_kind !== 'dbsc' || row.binding_key_jwk === null || row.binding_thumbprint === null) throw invalidRefreshToken();
      if (row.ended_at !== null || row.expires_at <= now || row.idle_expires_at <= now) throw ended(row);
      const askAgain = async () => ({ kind: 'challenge' as const, challenge: (await options.challenges.issueChallenge()).challenge, sessionId });
      if (response === undefined) return askAgain();
      const proof: DbscProof | undefined = parseDbscProof(response);
      if (proof === undefined || proof.jwk !== undefined) throw new AppError('INVALID_SESSION_RESPONSE', proof ? 'A refresh proof carries no jwk.' : undefined);
      // An old or spent challenge (network races, a retry) is answered with a new one, as the draft expects.
      if (!(await options.challenges.consume(proof.jti))) return askAgain();
      // Signed by another key, or in another algorithm than the session key's (which no holder of that key would do): a copy.
      if (!(await verifyDbscProof(proof, JSON.parse(row.binding_key_jwk) as DbscPublicJwk))) await proofFailed(row, actor);
      const cookie = generateToken('refresh');
      const ttlSeconds = options.boundAccessTokenTtlSeconds;
      if (!(await repository.rotateDbscCookie(sessionId, row.binding_thumbprint, hashToken(cookie), now + ttlSeconds * 1000, now))) throw invalidRefreshToken();
      return { kind: 'refreshed', sessionId, cookie, ttlSeconds };
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
