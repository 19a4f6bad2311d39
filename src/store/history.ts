/**
 * The account's history (docs/trust-model.md, `GET /devices/events`; read as
 * the security history by `GET /security/events`, docs/security-center.md): device, session
 * and security events, and the account changes themselves (password, MFA,
 * backup codes, passkeys, email, device names, alerts sent). Each names its subject (device or session id and the
 * name at the time), the cause and the actor (the session, IP and User-Agent
 * that caused it, an admin key, or the system). Written inside the
 * transaction of the change it records; ids are UUIDv7, so (user_id, id) is
 * also the time order and one index serves the newest-first cursor.
 *
 * The one event writer: `history.append` is the only code that inserts
 * events, and it fills the outboxes in the same transaction — with webhooks
 * configured, one webhook outbox row per event (src/store/webhook-outbox.repository.ts),
 * so an event that committed is delivered and one that rolled back never is.
 * Which outboxes to fill is the History's own configuration, given once by
 * whoever builds it (the app, housekeeping, the CLIs).
 *
 * Shared Signals (docs/integration.md): with the transmitter on (an
 * asymmetric signing key), an event that is worth a Security Event Token
 * (a session ended, a trusted device ended, a passkey added or removed) and a
 * credential change the ledger reports (`append`'s last argument) write one
 * ssf_outbox row per stream that asked for its event type, in the same
 * transaction (src/store/ssf-events.ts says which and how), except on
 * disabled streams and streams that removed the event's user; a paused push
 * stream's rows are written held. The SETs of one call share one `txn`: one
 * cause.
 */
import { type Actor, MAX_USER_AGENT_STORED } from '../platform/context.ts';
import type { Config } from '../platform/config.ts';
import type { ActorType, Db, DeviceEventsTable, DeviceEventType, EventCause } from './schema.ts';
import { newTimeOrderedId } from '../platform/crypto/tokens.ts';
import { insertOutbox } from './webhook-outbox.repository.ts';
import { webhookPayload } from './webhook-payload.ts';
import { type CredentialChange, setClaims, signalOfCredentialChange, signalOfEvent, type SsfSignal } from './ssf-events.ts';
import { fanoutStreams, insertSsfOutbox, removedSubjects, SSF_PUSH, type SsfOutboxRow } from './ssf.repository.ts';

export type { CredentialChange } from './ssf-events.ts';
import { type GeoLocator, serialiseLocation } from '../platform/geo.ts';

export type StoredEvent = DeviceEventsTable;
export { type Actor, SYSTEM } from '../platform/context.ts';

export interface EventInput {
  userId: string;
  type: DeviceEventType;
  deviceId?: string | null;
  sessionId?: string | null;
  /** The subject's name at the time. */
  subjectName?: string | null;
  cause?: EventCause | null;
  actor: Actor;
  /** The actor's display name (its session's device name); filled in by the caller when known. */
  actorName?: string | null;
  /** Why a second factor was asked, or a sign-in's flag (docs/security-center.md). */
  reason?: string | null;
}

export interface HistoryOptions {
  /** WEBHOOK_URL is set: every event also gets a webhook outbox row. */
  webhooks: boolean;
  /** The Shared Signals transmitter is on (an asymmetric signing key): its issuer (PUBLIC_URL). */
  ssf?: { issuer: string } | undefined;
  /**
   * The offline location lookup (src/platform/geo.ts): each event records the
   * approximate location of its actor's address. Without one, none is recorded.
   */
  geo?: GeoLocator;
}

/** What the caller reports besides events: a change of a credential (the ledger's password and second-factor rows). */
export interface Signals {
  credentialChange?: CredentialChange;
}

export interface History {
  /** Writes events and their outbox rows in the caller's transaction, or in one of its own. */
  append(db: Db, events: readonly EventInput[], now: number, signals?: Signals): Promise<void>;
}

/** The SET rows of these signals: one per (signal, stream that asked for its type). */
async function ssfRows(db: Db, issuer: string, signals: readonly SsfSignal[], now: number): Promise<SsfOutboxRow[]> {
  if (signals.length === 0) return [];
  // A disabled stream keeps nothing; a paused one holds its SETs (written, not due).
  const streams = (await fanoutStreams(db)).filter((stream) => stream.status !== 'disabled');
  if (streams.length === 0) return [];
  const removed = await removedSubjects(db, signals.map((signal) => signal.userId));
  const txn = newTimeOrderedId(now);
  const rows: SsfOutboxRow[] = [];
  for (const stream of streams) {
    const wanted = new Set(JSON.parse(stream.events_delivered) as string[]);
    const due = stream.delivery_method === SSF_PUSH && stream.status === 'enabled';
    for (const signal of signals) {
      if (!wanted.has(signal.eventType)) continue;
      if (removed.has(`${stream.id} ${signal.userId}`)) continue;
      const jti = newTimeOrderedId(now);
      const claims = setClaims(issuer, stream.audience, jti, txn, now, signal);
      rows.push({ id: jti, stream_id: stream.id, payload: JSON.stringify(claims), created_at: now, next_attempt_at: due ? now : null });
    }
  }
  return rows;
}

/** The History of this configuration: webhooks when WEBHOOK_URL is set, Shared Signals unless tokens are signed with HS256 (nothing to verify SETs with). */
export function historyOptionsFor(config: Partial<Pick<Config, 'webhook' | 'jwtAlgorithm' | 'publicUrl'>>): HistoryOptions {
  const ssf = config.publicUrl !== undefined && config.jwtAlgorithm !== undefined && config.jwtAlgorithm !== 'HS256';
  return { webhooks: config.webhook !== undefined, ssf: ssf ? { issuer: config.publicUrl! } : undefined };
}

export function createHistory(options: HistoryOptions): History {
  return {
    async append(db, events, now, signals) {
      if (events.length === 0 && signals?.credentialChange === undefined) return;
      // One lookup per address (an event batch is usually one actor); private addresses answer at once.
      const locations = new Map<string, string | null>();
      if (options.geo) {
        for (const e of events) {
          const ip = e.actor.type === 'system' ? null : e.actor.ipAddress;
          if (ip !== null && !locations.has(ip)) locations.set(ip, serialiseLocation(await options.geo.locate(ip)));
        }
      }
      const rows: StoredEvent[] = events.map((e) => ({
        id: newTimeOrderedId(now),
        user_id: e.userId,
        device_id: e.deviceId ?? null,
        type: e.type,
        ip_address: e.actor.type === 'system' ? null : e.actor.ipAddress,
        user_agent: e.actor.type === 'system' ? null : (e.actor.userAgent?.slice(0, MAX_USER_AGENT_STORED) ?? null),
        created_at: now,
        session_id: e.sessionId ?? null,
        subject_name: e.subjectName ?? null,
        cause: e.cause ?? null,
        actor_type: e.actor.type satisfies ActorType,
        actor_session_id: e.actor.type === 'user' ? e.actor.sessionId : null,
        actor_name: e.actor.type === 'admin' ? e.actor.name : (e.actorName ?? null),
        location: e.actor.type === 'system' || e.actor.ipAddress === null ? null : (locations.get(e.actor.ipAddress) ?? null),
        reason: e.reason ?? null,
      }));
      const ssf = options.ssf;
      const ssfSignals: SsfSignal[] = [];
      if (ssf) {
        for (const row of rows) {
          const signal = signalOfEvent(ssf.issuer, row);
          if (signal) ssfSignals.push(signal);
        }
        if (signals?.credentialChange) ssfSignals.push(signalOfCredentialChange(ssf.issuer, signals.credentialChange, now));
      }
      if (!options.webhooks && ssfSignals.length === 0) {
        if (rows.length > 0) await db.insertInto('device_events').values(rows).execute();
        return;
      }
      // The event, its webhook and its SETs are one commit: never one without the others.
      const outbox = options.webhooks
        ? rows.map((row) => {
            const payload = webhookPayload(row);
            return { id: row.id, type: payload.type, payload: JSON.stringify(payload), created_at: now };
          })
        : [];
      const write = async (trx: Db) => {
        if (rows.length > 0) await trx.insertInto('device_events').values(rows).execute();
        await insertOutbox(trx, outbox);
        if (ssf) await insertSsfOutbox(trx, await ssfRows(trx, ssf.issuer, ssfSignals, now));
      };
      if (db.isTransaction) await write(db);
      else await db.transaction().execute(write);
    },
  };
}

export function listEvents(db: Db, userId: string, limit: number, before: string | undefined): Promise<StoredEvent[]> {
  let query = db.selectFrom('device_events').selectAll().where('user_id', '=', userId);
  if (before !== undefined) query = query.where('id', '<', before);
  return query.orderBy('id', 'desc').limit(limit).execute();
}

/**
 * The security history's page (docs/security-center.md, "History"): the
 * user's events of the given types, or of every type but `hidden`, newest
 * first, before the cursor. Served by `device_events_user_type` (user_id,
 * type, id) when filtered by type, by `device_events_user_id` (user_id, id)
 * otherwise (test/storage/query-plans.test.ts).
 */
export function listSecurityEvents(
  db: Db,
  userId: string,
  filter: { types: readonly DeviceEventType[] } | { hidden: readonly DeviceEventType[] },
  limit: number,
  before: string | undefined,
): Promise<StoredEvent[]> {
  let query = db.selectFrom('device_events').selectAll().where('user_id', '=', userId);
  if ('types' in filter) query = query.where('type', 'in', filter.types);
  else if (filter.hidden.length > 0) query = query.where('type', 'not in', filter.hidden);
  if (before !== undefined) query = query.where('id', '<', before);
  return query.orderBy('id', 'desc').limit(limit).execute();
}

/** The device each of these sessions (of this user) is on: its id and current name (null when the session never had a trusted device), and the session's own name. */
export function actorDevices(
  db: Db,
  userId: string,
  sessionIds: readonly string[],
): Promise<Array<{ session_id: string; device_id: string | null; device_name: string | null; session_name: string }>> {
  if (sessionIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('sessions as s')
    .leftJoin('trusted_devices as d', (join) => join.onRef('d.id', '=', 's.device_id').onRef('d.user_id', '=', 's.user_id'))
    .select(['s.id as session_id', 's.device_id as device_id', 'd.device_name as device_name', 's.device_name as session_name'])
    .where('s.id', 'in', sessionIds)
    .where('s.user_id', '=', userId)
    .execute();
}
