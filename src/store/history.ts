/**
 * The account's history (docs/trust-model.md, `GET /devices/events`): device, session
 * and security events. Each names its subject (device or session id and the
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
 */
import { type Actor, MAX_USER_AGENT_STORED } from '../platform/context.ts';
import type { ActorType, Db, DeviceEventsTable, DeviceEventType, EventCause } from './schema.ts';
import { newTimeOrderedId } from '../platform/crypto/tokens.ts';
import { insertOutbox } from './webhook-outbox.repository.ts';
import { webhookPayload } from './webhook-payload.ts';
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
  /**
   * The offline location lookup (src/platform/geo.ts): each event records the
   * approximate location of its actor's address. Without one, none is recorded.
   */
  geo?: GeoLocator;
}

export interface History {
  /** Writes events and their outbox rows in the caller's transaction, or in one of its own. */
  append(db: Db, events: readonly EventInput[], now: number): Promise<void>;
}

export function createHistory(options: HistoryOptions): History {
  return {
    async append(db, events, now) {
      if (events.length === 0) return;
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
      if (!options.webhooks) {
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
    },
  };
}

export function listEvents(db: Db, userId: string, limit: number, before: string | undefined): Promise<StoredEvent[]> {
  let query = db.selectFrom('device_events').selectAll().where('user_id', '=', userId);
  if (before !== undefined) query = query.where('id', '<', before);
  return query.orderBy('id', 'desc').limit(limit).execute();
}
