/**
 * The account's history (SPEC §5.3 `GET /devices/events`): device, session
 * and security events. Each names its subject (device or session id and the
 * name at the time), the cause and the actor (the session, IP and User-Agent
 * that caused it, an admin key, or the system). Written inside the
 * transaction of the change it records; ids are UUIDv7, so (user_id, id) is
 * also the time order and one index serves the newest-first cursor.
 * When webhooks are configured, each event's outbox row is written in the
 * same transaction (src/store/webhook-outbox.repository.ts says how this
 * function knows).
 */
import type { ActorType, Db, DeviceEventsTable, DeviceEventType, EventCause } from './schema.ts';
import { newTimeOrderedId } from '../platform/crypto/tokens.ts';
import { insertOutbox, writesWebhookOutbox } from './webhook-outbox.repository.ts';
import { webhookPayload } from '../features/webhooks/webhooks.schemas.ts';

export type StoredEvent = DeviceEventsTable;

const MAX_USER_AGENT_STORED = 512;

/** Who caused an event. A user actor without a session is a sign-in attempt. */
export type Actor =
  | { type: 'user'; sessionId: string | null; ipAddress: string | null; userAgent: string | null }
  | { type: 'admin'; name: string; ipAddress: string | null; userAgent: string | null }
  | { type: 'system' };

export const SYSTEM: Actor = { type: 'system' };

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
}

/**
 * Writes events (and, when the database handle writes the webhook outbox,
 * their outbox rows) in the caller's transaction, or in one of its own.
 */
export async function insertEvents(db: Db, events: readonly EventInput[], now: number): Promise<void> {
  if (events.length === 0) return;
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
  }));
  if (!writesWebhookOutbox(db)) {
    await db.insertInto('device_events').values(rows).execute();
    return;
  }
  // The event and its webhook are one commit: never one without the other.
  const outbox = rows.map((row) => {
    const payload = webhookPayload(row);
    return { id: row.id, type: payload.type, payload: JSON.stringify(payload), created_at: now };
  });
  const write = async (trx: Db) => {
    await trx.insertInto('device_events').values(rows).execute();
    await insertOutbox(trx, outbox);
  };
  if (db.isTransaction) await write(db);
  else await db.transaction().execute(write);
}

export function listEvents(db: Db, userId: string, limit: number, before: string | undefined): Promise<StoredEvent[]> {
  let query = db.selectFrom('device_events').selectAll().where('user_id', '=', userId);
  if (before !== undefined) query = query.where('id', '<', before);
  return query.orderBy('id', 'desc').limit(limit).execute();
}
