/**
 * What ends what (docs/sessions.md): the one module that owns the table, and the
 * only code that ends trusted devices, pending activation tokens, MFA
 * challenges and sessions because of a security event.
 *
 * Concurrency: every row first locks the user's row (src/store/locks.ts), as
 * activation does, so two security changes of one user never interleave or
 * deadlock on PostgreSQL.
 *
 * Atomicity: `run(event, own)` opens one transaction, runs the caller's own
 * change in it (the new password hash, the removed TOTP secret, …), then the
 * event's row, then the events that record it. Either all of it commits or
 * none of it does: a storage error anywhere leaves nothing half-applied (the
 * caller answers 503). `apply(trx, event)` is the same row inside a
 * transaction the caller already holds.
 *
 * Effect: an ended session refuses its refresh tokens and its access tokens
 * from the next request on, on every instance (the bearer check reads the
 * session row: src/features/sessions/sessions.service.ts); an ended activation token
 * answers 410; an ended MFA challenge answers 401.
 *
 * Threats: trust that outlives the event that should have ended it (a
 * stolen laptop that stays signed in after "revoke"; a pending activation
 * issued before a password change that still trusts a device afterwards);
 * half-applied rows after a failure; the rule living in several call sites
 * and drifting apart.
 */
import type { Clock } from '../platform/clock.ts';
import { lockUser } from '../store/locks.ts';
import type { Database, EventCause } from '../store/schema.ts';
import type { DevicesRepository } from '../store/devices.repository.ts';
import { type Actor, type CredentialChange, type EventInput, type History } from '../store/history.ts';
import type { MfaRepository } from '../store/mfa.repository.ts';
import type { SessionSelector, SessionsRepository } from '../store/sessions.repository.ts';
import type { Kysely, Transaction } from 'kysely';

/** The rows of the table. `actor` is who caused it; the row decides the cause of each ended thing. */
export type SecurityEvent =
  | { kind: 'password_changed'; userId: string; actor: Actor }
  | { kind: 'password_reset'; userId: string; actor: Actor }
  | { kind: 'mfa_enabled'; userId: string; actor: Actor }
  | { kind: 'mfa_disabled'; userId: string; actor: Actor }
  | { kind: 'backup_codes_regenerated'; userId: string; actor: Actor }
  | { kind: 'device_revoked'; userId: string; deviceId: string; actor: Actor }
  | { kind: 'all_devices_revoked'; userId: string; actor: Actor }
  | { kind: 'session_ended'; userId: string; sessionId: string; actor: Actor; reason?: 'logout' | 'refresh_token_reuse' }
  | { kind: 'sessions_ended'; userId: string; exceptSessionId?: string | undefined; actor: Actor }
  | { kind: 'not_me'; userId: string; deviceId: string; actor: Actor }
  | { kind: 'device_token_reuse'; userId: string; deviceId: string; actor: Actor }
  | { kind: 'session_proof_failed'; userId: string; sessionId: string; actor: Actor }
  /** "This wasn't me" on an alert about a sign-in (docs/security-center.md): that session, and the device trusted from it. */
  | { kind: 'not_me_session'; userId: string; sessionId: string; actor: Actor };

export type SecurityEventKind = SecurityEvent['kind'];

/** One row of what ends what (docs/sessions.md), as data: what the event ends. */
interface Row {
  /** Trusted devices: none, all of the user's, the one the event names, or the one the named session is on. */
  devices: 'none' | 'all' | 'one' | 'of_session';
  /** Pending activation tokens and MFA challenges: none, all, or those issued from the ended sessions. */
  pending: 'none' | 'all' | 'of_ended_sessions';
  /** Sessions: none, all, all but the actor's, those opened on the ended devices, the one named, or both of the last two. */
  sessions: 'none' | 'all' | 'all_others' | 'on_ended_devices' | 'one' | 'one_and_on_ended_devices';
  /** The cause written on what the row ends (a user's own revoke is `user`, an admin's `admin`). */
  cause: EventCause | 'actor';
}

export const TABLE: Readonly<Record<SecurityEventKind, Row>> = {
  password_changed: { devices: 'all', pending: 'all', sessions: 'all_others', cause: 'password_changed' },
  password_reset: { devices: 'all', pending: 'all', sessions: 'all', cause: 'password_reset' },
  mfa_enabled: { devices: 'none', pending: 'all', sessions: 'all_others', cause: 'mfa_enabled' },
  mfa_disabled: { devices: 'all', pending: 'all', sessions: 'all_others', cause: 'mfa_disabled' },
  backup_codes_regenerated: { devices: 'all', pending: 'all', sessions: 'none', cause: 'backup_codes_regenerated' },
  device_revoked: { devices: 'one', pending: 'of_ended_sessions', sessions: 'on_ended_devices', cause: 'actor' },
  all_devices_revoked: { devices: 'all', pending: 'all', sessions: 'on_ended_devices', cause: 'actor' },
  session_ended: { devices: 'none', pending: 'of_ended_sessions', sessions: 'one', cause: 'actor' },
  // "Sign out everywhere (else)": the "end one session" row for each of them.
  sessions_ended: { devices: 'none', pending: 'of_ended_sessions', sessions: 'all_others', cause: 'actor' },
  not_me: { devices: 'one', pending: 'all', sessions: 'on_ended_devices', cause: 'not_me' },
  not_me_session: { devices: 'of_session', pending: 'all', sessions: 'one_and_on_ended_devices', cause: 'not_me' },
  device_token_reuse: { devices: 'one', pending: 'none', sessions: 'on_ended_devices', cause: 'reuse_detected' },
  // A bound session's refresh with another key's proof (docs/sessions.md, "Bound sessions").
  session_proof_failed: { devices: 'none', pending: 'of_ended_sessions', sessions: 'one', cause: 'proof_failed' },
};

/** The credential a row's event changed, for the Shared Signals `credential-change` (src/store/ssf-events.ts). */
const CREDENTIAL_CHANGES: Partial<Record<SecurityEventKind, Pick<CredentialChange, 'credentialType' | 'changeType'>>> = {
  password_changed: { credentialType: 'password', changeType: 'update' },
  password_reset: { credentialType: 'password', changeType: 'update' },
  mfa_enabled: { credentialType: 'app', changeType: 'create' },
  mfa_disabled: { credentialType: 'app', changeType: 'delete' },
  backup_codes_regenerated: { credentialType: 'backup-codes', changeType: 'update' },
};

/** The rows whose event is itself a line of the history (the others are told by what they ended). */
type RecordedChange = 'password_changed' | 'password_reset' | 'mfa_enabled' | 'mfa_disabled' | 'backup_codes_regenerated';
const RECORDED_CHANGES: ReadonlySet<SecurityEventKind> = new Set<RecordedChange>(['password_changed', 'password_reset', 'mfa_enabled', 'mfa_disabled', 'backup_codes_regenerated']);

export interface Ended {
  devices: string[];
  sessions: string[];
  activations: number;
  challenges: number;
}

export interface RevocationOptions {
  /** The one event writer (it also fills the outboxes). */
  history: History;
  db: Kysely<Database>;
  devices: DevicesRepository;
  sessions: SessionsRepository;
  mfa: MfaRepository;
  clock: Clock;
  /** Told, after commit, which sessions ended (e.g. to drop them from a cache). */
  onSessionsEnded?: (ids: readonly string[]) => void;
}

/** Thrown inside the transaction when the event names something that is not there to end. */
export class NothingToEnd extends Error {
  constructor(readonly what: 'device' | 'session') {
    super(`no such ${what}`);
  }
}

export function createRevocation(options: RevocationOptions) {
  const { db, devices, sessions, mfa, clock, history } = options;

  const causeOf = (row: Row, actor: Actor): EventCause => (row.cause !== 'actor' ? row.cause : actor.type === 'admin' ? 'admin' : 'user');

  async function apply(trx: Transaction<Database>, event: SecurityEvent): Promise<Ended> {
    const row = TABLE[event.kind];
    const now = clock.now();
    const { userId, actor } = event;
    await lockUser(trx, userId);
    const cause = causeOf(row, actor);
    const actorName = actor.type === 'user' && actor.sessionId !== null ? ((await sessions.nameOf(trx, actor.sessionId)) ?? null) : null;
    const base = { userId, actor, actorName, cause };
    const events: EventInput[] = [];

    // 1. Trusted devices.
    let endedDevices: Array<{ id: string; device_name: string }> = [];
    if (row.devices === 'one' && 'deviceId' in event) {
      const revoked = await devices.revoke(trx, userId, event.deviceId, now);
      if (revoked === undefined) throw new NothingToEnd('device');
      endedDevices = [revoked];
    } else if (row.devices === 'of_session' && 'sessionId' in event) {
      const deviceId = await sessions.deviceOf(trx, userId, event.sessionId);
      if (deviceId === undefined) throw new NothingToEnd('session');
      // Its device, if it trusted itself and is still trusted (an already revoked one is simply not ended again).
      const revoked = deviceId === null ? undefined : await devices.revoke(trx, userId, deviceId, now);
      endedDevices = revoked === undefined ? [] : [revoked];
    } else if (row.devices === 'all') {
      endedDevices = await devices.revokeAll(trx, userId, now);
      if (event.kind === 'all_devices_revoked' || endedDevices.length > 0) events.push({ ...base, type: 'revoked_all' });
    }
    for (const d of endedDevices) events.push({ ...base, type: 'revoked', deviceId: d.id, subjectName: d.device_name });

    // 2. Sessions. Those opened on an ended device end because of the device.
    const sessionCause: EventCause =
      event.kind === 'device_revoked' ? 'device_revoked' : event.kind === 'all_devices_revoked' ? 'all_devices_revoked' : event.kind === 'session_ended' && event.reason ? event.reason : cause;
    const actorSessionId = actor.type === 'user' ? (actor.sessionId ?? undefined) : undefined;
    const selector: SessionSelector | undefined = {
      none: undefined,
      all: { all: true as const },
      all_others: { all: true as const, exceptId: event.kind === 'sessions_ended' ? event.exceptSessionId : actorSessionId },
      on_ended_devices: { deviceIds: endedDevices.map((d) => d.id) },
      one: { ids: event.kind === 'session_ended' || event.kind === 'session_proof_failed' ? [event.sessionId] : [] },
      one_and_on_ended_devices: { ids: event.kind === 'not_me_session' ? [event.sessionId] : [] },
    }[row.sessions];
    const endedBy = actor.type === 'admin' ? actor.name : actorName;
    const endedSessions = selector ? await sessions.end(trx, userId, selector, now, sessionCause, endedBy) : [];
    if (row.sessions === 'one_and_on_ended_devices' && endedDevices.length > 0) {
      endedSessions.push(...(await sessions.end(trx, userId, { deviceIds: endedDevices.map((d) => d.id) }, now, sessionCause, endedBy)));
    }
    if (row.sessions === 'one' && endedSessions.length === 0) throw new NothingToEnd('session');
    // Nothing left to end (the session ended and its device was not trusted): the report says so.
    if (row.sessions === 'one_and_on_ended_devices' && endedSessions.length === 0 && endedDevices.length === 0) throw new NothingToEnd('session');
    const sessionEventType = sessionCause === 'logout' ? 'signed_out' : 'session_revoked';
    for (const s of endedSessions) {
      events.push({ ...base, cause: sessionCause, type: sessionEventType, sessionId: s.id, deviceId: s.device_id, subjectName: s.device_name });
    }

    // 3. Pending activation tokens and MFA challenges.
    let activations: Array<{ id: string; device_name: string }> = [];
    let challenges = 0;
    if (row.pending === 'all') {
      activations = await devices.revokeActivations(trx, userId, { all: true }, now);
      challenges = await mfa.endChallenges(trx, userId, now);
    } else if (row.pending === 'of_ended_sessions') {
      // MFA challenges are issued before any session exists, so none is "issued from" one.
      activations = await devices.revokeActivations(trx, userId, { sessionIds: endedSessions.map((s) => s.id) }, now);
    }
    for (const a of activations) events.push({ ...base, type: 'activation_revoked', deviceId: a.id, subjectName: a.device_name });

    // The change itself, last: newest first, it heads the lines of what it ended (docs/security-center.md, "History").
    if (RECORDED_CHANGES.has(event.kind)) events.push({ userId, actor, actorName, type: event.kind as RecordedChange });

    const credential = CREDENTIAL_CHANGES[event.kind];
    await history.append(trx, events, now, credential ? { credentialChange: { userId, actor, ...credential } } : undefined);
    return { devices: endedDevices.map((d) => d.id), sessions: endedSessions.map((s) => s.id), activations: activations.length, challenges };
  }

  return {
    apply,

    /** One transaction: the caller's own change, then the event's row. */
    async run<T = void>(event: SecurityEvent, own?: (trx: Transaction<Database>) => Promise<T>): Promise<Ended & { result: T }> {
      const outcome = await db.transaction().execute(async (trx) => {
        // The user's row first, always: see src/store/locks.ts.
        await lockUser(trx, event.userId);
        const result = (own ? await own(trx) : undefined) as T;
        return { ...(await apply(trx, event)), result };
      });
      if (outcome.sessions.length > 0) options.onSessionsEnded?.(outcome.sessions);
      return outcome;
    },
  };
}

export type Revocation = ReturnType<typeof createRevocation>;
