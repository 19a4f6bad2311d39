/**
 * Storage for activation tokens, trusted devices and device events.
 *
 * trusted_devices has the primary key (user_id, id) (WITHOUT ROWID on
 * SQLite), so one user's devices are stored together and the list is one
 * short range scan. Device tokens and activation tokens are found by their
 * SHA-256 through unique indexes. Consuming an activation token is one
 * conditional UPDATE: of any number of concurrent calls exactly one wins.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import type { ActivationTokensTable, Database, DeviceEventType, DeviceEventsTable, TrustedDevicesTable } from '../db/schema.ts';
import { newTimeOrderedId } from '../security/tokens.ts';

export type ActivationToken = ActivationTokensTable;
export type TrustedDevice = TrustedDevicesTable;
export type DeviceEvent = DeviceEventsTable;

export interface EventInput {
  userId: string;
  deviceId: string | null;
  type: DeviceEventType;
  ipAddress: string | null;
  userAgent: string | null;
}

type Db = Kysely<Database> | Transaction<Database>;

const LIST_COLUMNS = [
  'id',
  'device_name',
  'fingerprint',
  'browser',
  'os',
  'device_type',
  'user_agent',
  'ip_address',
  'last_ip_address',
  'status',
  'device_token_hash',
  'created_at',
  'trusted_at',
  'last_used_at',
  'expires_at',
] as const;
export type DeviceSummary = Pick<TrustedDevice, (typeof LIST_COLUMNS)[number]>;

export async function insertEvents(db: Db, events: EventInput[], now: number): Promise<void> {
  if (events.length === 0) return;
  await db
    .insertInto('device_events')
    .values(
      events.map((e) => ({
        id: newTimeOrderedId(now),
        user_id: e.userId,
        device_id: e.deviceId,
        type: e.type,
        ip_address: e.ipAddress,
        user_agent: e.userAgent,
        created_at: now,
      })),
    )
    .execute();
}

export function createDevicesRepository(db: Kysely<Database>) {
  return {
    transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
      return db.transaction().execute(work);
    },

    recordEvents: (events: EventInput[], now: number) => insertEvents(db, events, now),

    async insertActivation(row: ActivationToken, event: EventInput): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('activation_tokens').values(row).execute();
        await insertEvents(trx, [event], row.created_at);
      });
    },

    findActivation(tokenHash: string): Promise<ActivationToken | undefined> {
      return db.selectFrom('activation_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    },

    async consumeActivation(trx: Db, id: string, userId: string, now: number, outcome: 'activated' | 'skipped'): Promise<boolean> {
      const result = await trx
        .updateTable('activation_tokens')
        .set({ consumed_at: now, outcome })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async insertDevice(trx: Db, row: TrustedDevice): Promise<void> {
      await trx.insertInto('trusted_devices').values(row).execute();
    },

    /**
     * Evicts the least recently used active devices beyond `keep`.
     * Returns the evicted ids.
     */
    async evictBeyond(trx: Db, userId: string, keep: number, now: number): Promise<string[]> {
      const active = await trx
        .selectFrom('trusted_devices')
        .select(['id'])
        .where('user_id', '=', userId)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .orderBy('last_used_at', 'desc')
        .orderBy('trusted_at', 'desc')
        .execute();
      const evicted = active.slice(keep).map((row) => row.id);
      if (evicted.length > 0) {
        await trx
          .updateTable('trusted_devices')
          .set({ status: 'evicted', revoked_at: now })
          .where('user_id', '=', userId)
          .where('id', 'in', evicted)
          .execute();
      }
      return evicted;
    },

    findByTokenHash(tokenHash: string): Promise<TrustedDevice | undefined> {
      return db.selectFrom('trusted_devices').selectAll().where('device_token_hash', '=', tokenHash).executeTakeFirst();
    },

    /** Records a trusted login, only while the device is still active (a concurrent revoke wins). */
    async touch(userId: string, id: string, now: number, ipAddress: string): Promise<boolean> {
      const result = await db
        .updateTable('trusted_devices')
        .set({ last_used_at: now, last_ip_address: ipAddress })
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    listActive(userId: string, now: number): Promise<DeviceSummary[]> {
      return db
        .selectFrom('trusted_devices')
        .select(LIST_COLUMNS)
        .where('user_id', '=', userId)
        .where('status', '=', 'active')
        .where(sql<number>`expires_at + 0`, '>', now)
        .orderBy('last_used_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
    },

    /** Revokes an active device; returns its token hash, or undefined when there was none to revoke. */
    async revoke(trx: Db, userId: string, id: string, now: number): Promise<string | undefined> {
      const row = await trx
        .updateTable('trusted_devices')
        .set({ status: 'revoked', revoked_at: now })
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .where('status', '=', 'active')
        .returning('device_token_hash')
        .executeTakeFirst();
      return row?.device_token_hash;
    },

    async revokeAll(trx: Db, userId: string, now: number): Promise<string[]> {
      const rows = await trx
        .updateTable('trusted_devices')
        .set({ status: 'revoked', revoked_at: now })
        .where('user_id', '=', userId)
        .where('status', '=', 'active')
        .returning('id')
        .execute();
      return rows.map((row) => row.id);
    },

    rename(userId: string, id: string, name: string, now: number): Promise<DeviceSummary | undefined> {
      return db
        .updateTable('trusted_devices')
        .set({ device_name: name })
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .returning(LIST_COLUMNS)
        .executeTakeFirst();
    },

    listEvents(userId: string, limit: number, before: string | undefined): Promise<DeviceEvent[]> {
      let query = db.selectFrom('device_events').selectAll().where('user_id', '=', userId);
      if (before !== undefined) query = query.where('id', '<', before);
      return query.orderBy('id', 'desc').limit(limit).execute();
    },

    /** Marks devices past their trust lifetime as expired; returns them for the event log. */
    async expireDevices(now: number, batch = 1000): Promise<Array<{ id: string; user_id: string }>> {
      return db.transaction().execute(async (trx) => {
        const due = await trx
          .selectFrom('trusted_devices')
          .select(['id', 'user_id'])
          .where('status', '=', 'active')
          .where('expires_at', '<=', now)
          .limit(batch)
          .execute();
        if (due.length === 0) return due;
        for (const device of due) {
          await trx
            .updateTable('trusted_devices')
            .set({ status: 'expired' })
            .where('user_id', '=', device.user_id)
            .where('id', '=', device.id)
            .where('status', '=', 'active')
            .execute();
        }
        await insertEvents(
          trx,
          due.map((d) => ({ userId: d.user_id, deviceId: d.id, type: 'expired' as const, ipAddress: null, userAgent: null })),
          now,
        );
        return due;
      });
    },

    async deleteSpentActivations(before: number): Promise<number> {
      const result = await db.deleteFrom('activation_tokens').where('expires_at', '<=', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async deleteEventsBefore(before: number): Promise<number> {
      const result = await db.deleteFrom('device_events').where('created_at', '<', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async deleteEndedDevicesBefore(before: number): Promise<number> {
      const result = await db
        .deleteFrom('trusted_devices')
        .where('status', '!=', 'active')
        .where((eb) => eb.or([eb('revoked_at', '<', before), eb('expires_at', '<', before)]))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type DevicesRepository = ReturnType<typeof createDevicesRepository>;
