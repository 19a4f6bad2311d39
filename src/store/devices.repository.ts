/**
 * Storage for activation tokens, trusted devices and device events.
 *
 * trusted_devices has the primary key (user_id, id) (WITHOUT ROWID on
 * SQLite), so one user's devices are stored together and the list is one
 * short range scan. Device tokens and activation tokens are found by their
 * SHA-256 through unique indexes. Consuming an activation token is one
 * conditional UPDATE: of any number of concurrent calls exactly one wins.
 */
import { createQueryId, type Kysely, sql, type Transaction } from 'kysely';
import { directSqlite } from './connect.ts';
import type { ActivationTokensTable, Database, Db, DeviceStatus, RetiredDeviceTokensTable, TrustedDevicesTable } from './schema.ts';
import { type Actor, type EventInput, type History, SYSTEM } from './history.ts';

export type ActivationToken = ActivationTokensTable;
export type TrustedDevice = TrustedDevicesTable;


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
  'device_token_hash',
  'created_at',
  'trusted_at',
  'last_used_at',
  'expires_at',
  'public_key_jwk',
  'granted_by',
  'granted_by_credential_id',
  'location',
] as const;
export type DeviceSummary = Pick<TrustedDevice, (typeof LIST_COLUMNS)[number]>;

/** A list row in raw mode (values in LIST_COLUMNS order) as an object: one literal, the same shape every time. */
const summaryFromColumns = (r: unknown[]): DeviceSummary =>
  ({
    id: r[0],
    device_name: r[1],
    fingerprint: r[2],
    browser: r[3],
    os: r[4],
    device_type: r[5],
    user_agent: r[6],
    ip_address: r[7],
    last_ip_address: r[8],
    device_token_hash: r[9],
    created_at: r[10],
    trusted_at: r[11],
    last_used_at: r[12],
    expires_at: r[13],
    public_key_jwk: r[14],
    granted_by: r[15],
    granted_by_credential_id: r[16],
    location: r[17],
  }) as DeviceSummary;
// The literal above and LIST_COLUMNS must agree, position by position: checked once, at load.
if (Object.keys(summaryFromColumns([...LIST_COLUMNS])).join() !== LIST_COLUMNS.join() || Object.values(summaryFromColumns([...LIST_COLUMNS])).join() !== LIST_COLUMNS.join()) {
  throw new Error('summaryFromColumns does not follow LIST_COLUMNS');
}

/** Literals where a partial index must match (see expireDevices). */
const ACTIVE = sql.lit<DeviceStatus>('active');
/** When a device ended: revoked (or evicted) at, else the expiry; the expression of index trusted_devices_ended. */
const ENDED_AT = sql<number>`coalesce(revoked_at, expires_at)`;


export function createDevicesRepository(db: Kysely<Database>, history: History) {
  // The device list is the hot read (every page of a client shows it): its
  // SQL is built and compiled once, and each call only binds its parameters
  // (user_id, now), in that order (the status is a literal: a bound one costs ~10 µs per call on SQLite).
  const listActiveQuery = db
    .selectFrom('trusted_devices')
    .select(LIST_COLUMNS)
    .where('user_id', '=', '')
    .where('status', '=', ACTIVE)
    .where('expires_at', '>', 0)
    .compile();
  // On SQLite the same compiled SQL also runs as a prepared statement of its own,
  // outside Kysely's executor, whenever no transaction holds the connection (src/store/connect.ts).
  const direct = directSqlite(db);
  // A user has a handful of devices: sorting them here is cheaper than SQLite's temporary B-tree.
  const mostRecentlyUsedFirst = (a: DeviceSummary, b: DeviceSummary) => b.last_used_at - a.last_used_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

  return {
    db,

    transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
      return db.transaction().execute(work);
    },

    recordEvents: (events: EventInput[], now: number) => history.append(db, events, now),

    async insertActivation(trx: Db, row: ActivationToken, event: EventInput): Promise<void> {
      await trx.insertInto('activation_tokens').values(row).execute();
      await history.append(trx, [event], row.created_at);
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
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /**
     * Ends pending activation tokens (what ends what, docs/sessions.md): all of the user's, or those
     * issued from the given sessions. An ended token answers 410.
     */
    async revokeActivations(trx: Db, userId: string, selector: { all: true } | { sessionIds: readonly string[] } | { grantedByCredentialId: string }, now: number) {
      if ('sessionIds' in selector && selector.sessionIds.length === 0) return [];
      let query = trx
        .updateTable('activation_tokens')
        .set({ revoked_at: now })
        .where('user_id', '=', userId)
        .where('consumed_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now);
      if ('sessionIds' in selector) query = query.where('session_id', 'in', selector.sessionIds);
      if ('grantedByCredentialId' in selector) query = query.where('granted_by_credential_id', '=', selector.grantedByCredentialId);
      return query.returning(['id', 'device_name']).execute();
    },

    async insertDevice(trx: Db, row: TrustedDevice): Promise<void> {
      await trx.insertInto('trusted_devices').values(row).execute();
    },

    /**
     * Evicts the least recently used active devices beyond `keep`.
     * Returns the evicted ids.
     */
    async evictBeyond(trx: Db, userId: string, keep: number, now: number): Promise<Array<{ id: string; device_name: string }>> {
      const active = await trx
        .selectFrom('trusted_devices')
        .select(['id', 'device_name'])
        .where('user_id', '=', userId)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .orderBy('last_used_at', 'desc')
        .orderBy('trusted_at', 'desc')
        .execute();
      const evicted = active.slice(keep);
      if (evicted.length > 0) {
        await trx
          .updateTable('trusted_devices')
          .set({ status: 'evicted', revoked_at: now })
          .where('user_id', '=', userId)
          .where('id', 'in', evicted.map((row) => row.id))
          .execute();
      }
      return evicted;
    },

    /** One device by its primary key (a retired token names its device). */
    findDevice(userId: string, id: string): Promise<TrustedDevice | undefined> {
      return db.selectFrom('trusted_devices').selectAll().where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    },

    findRetiredToken(tokenHash: string): Promise<RetiredDeviceTokensTable | undefined> {
      return db.selectFrom('retired_device_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    },

    /**
     * Rotates a device token (docs/trust-model.md) in one transaction: ONE conditional
     * UPDATE moves the device to the new token only if the presented token is
     * still its current one (and the device still active); the presented
     * token is then kept as retired, and the `trust_used` event written. Of
     * two concurrent rotations of one token exactly one wins; the loser gets
     * undefined (and finds the token retired a moment ago).
     */
    /** In the caller's transaction (the trusted login's, which also opens the session): one conditional UPDATE retires the presented token. */
    async rotateToken(
      trx: Transaction<Database>,
      rotation: { userId: string; deviceId: string; presentedHash: string; newHash: string; ipAddress: string; location: string | null; now: number },
      event: EventInput,
    ): Promise<{ expires_at: number } | undefined> {
      const { userId, deviceId, presentedHash, newHash, ipAddress, location, now } = rotation;
      {
        const rotated = await trx
          .updateTable('trusted_devices')
          .set({ device_token_hash: newHash, last_used_at: now, last_ip_address: ipAddress, location })
          .where('user_id', '=', userId)
          .where('id', '=', deviceId)
          .where('device_token_hash', '=', presentedHash)
          .where('status', '=', 'active')
          .where('expires_at', '>', now)
          .returning(['expires_at'])
          .executeTakeFirst();
        if (rotated === undefined) return undefined;
        await trx
          .insertInto('retired_device_tokens')
          .values({ token_hash: presentedHash, user_id: userId, device_id: deviceId, retired_at: now, expires_at: rotated.expires_at })
          .execute();
        await history.append(trx, [event], now);
        return rotated;
      }
    },

    async insertChallenge(challengeHash: string, now: number, expiresAt: number): Promise<void> {
      await db.insertInto('device_challenges').values({ challenge_hash: challengeHash, created_at: now, expires_at: expiresAt, consumed_at: null }).execute();
    },

    /** Uses a challenge up: ONE conditional UPDATE, so of any number of proofs with one challenge at most one passes. */
    async consumeChallenge(challengeHash: string, now: number): Promise<boolean> {
      const result = await db
        .updateTable('device_challenges')
        .set({ consumed_at: now })
        .where('challenge_hash', '=', challengeHash)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** One bounded batch of expired proof challenges (housekeeping loops over batches). */
    async deleteExpiredChallenges(now: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('device_challenges')
        .where('challenge_hash', 'in', db.selectFrom('device_challenges').select('challenge_hash').where('expires_at', '<=', now).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /** One bounded batch of retired device tokens past their device's trust end (they mean nothing any more). */
    async deleteExpiredRetiredTokens(now: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('retired_device_tokens')
        .where('token_hash', 'in', db.selectFrom('retired_device_tokens').select('token_hash').where('expires_at', '<=', now).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    findByTokenHash(tokenHash: string): Promise<TrustedDevice | undefined> {
      return db.selectFrom('trusted_devices').selectAll().where('device_token_hash', '=', tokenHash).executeTakeFirst();
    },

    /** Records a trusted login, only while the device is still active (a concurrent revoke wins). */
    /**
     * Re-anchors an active device on its current fingerprint (after a second
     * factor proved the user): one conditional UPDATE, so a revoke that lands
     * first wins. By primary key (user_id, id).
     */
    async reanchor(
      trx: Db,
      userId: string,
      id: string,
      now: number,
      update: { fingerprint: string; components: string; browser: string; os: string; device_type: string; user_agent: string; last_ip_address: string; location: string | null },
    ): Promise<boolean> {
      const result = await trx
        .updateTable('trusted_devices')
        .set({ ...update, last_used_at: now })
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async touch(trx: Db, userId: string, id: string, now: number, ipAddress: string, location: string | null): Promise<boolean> {
      const result = await trx
        .updateTable('trusted_devices')
        .set({ last_used_at: now, last_ip_address: ipAddress, location })
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async listActive(userId: string, now: number): Promise<DeviceSummary[]> {
      const statement = direct?.rawStatement(listActiveQuery.sql);
      const rows = statement
        ? (statement.all(userId, now) as unknown[][]).map(summaryFromColumns)
        : (await db.executeQuery<DeviceSummary>({ ...listActiveQuery, queryId: createQueryId(), parameters: [userId, now] })).rows;
      return rows.sort(mostRecentlyUsedFirst);
    },

    /** Revokes an active device; undefined when there was none to revoke. */
    revoke(trx: Db, userId: string, id: string, now: number): Promise<{ id: string; device_name: string; device_token_hash: string } | undefined> {
      return trx
        .updateTable('trusted_devices')
        .set({ status: 'revoked', revoked_at: now })
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .where('status', '=', 'active')
        .returning(['id', 'device_name', 'device_token_hash'])
        .executeTakeFirst();
    },

    revokeAll(trx: Db, userId: string, now: number): Promise<Array<{ id: string; device_name: string }>> {
      return trx
        .updateTable('trusted_devices')
        .set({ status: 'revoked', revoked_at: now })
        .where('user_id', '=', userId)
        .where('status', '=', 'active')
        .returning(['id', 'device_name'])
        .execute();
    },

    /** The active devices whose trust the given WebAuthn credential granted (index on granted_by_credential_id). */
    async activeGrantedBy(trx: Db, userId: string, credentialId: string, now: number): Promise<string[]> {
      const rows = await trx
        .selectFrom('trusted_devices')
        .select('id')
        .where('granted_by_credential_id', '=', credentialId)
        .where('user_id', '=', userId)
        .where('status', '=', 'active')
        .where('expires_at', '>', now)
        .execute();
      return rows.map((row) => row.id);
    },

    /** Renames an active device and records `device_renamed` (its new name) in the same transaction. */
    rename(userId: string, id: string, name: string, now: number, actor: Actor): Promise<DeviceSummary | undefined> {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .updateTable('trusted_devices')
          .set({ device_name: name })
          .where('user_id', '=', userId)
          .where('id', '=', id)
          .where('status', '=', 'active')
          .where('expires_at', '>', now)
          .returning(LIST_COLUMNS)
          .executeTakeFirst();
        if (row !== undefined) await history.append(trx, [{ userId, type: 'device_renamed', deviceId: id, subjectName: name, actor }], now);
        return row;
      });
    },

    /**
     * Marks at most `limit` devices past their trust lifetime as expired and
     * records an `expired` event for each, in one transaction: one UPDATE …
     * RETURNING (re-checking the status), so when several instances prune at
     * once every device is expired (and logged) once. Bounded, so a backlog
     * never exceeds SQLite's bound-variable limit (the event insert binds 7
     * per row) nor holds a long transaction; housekeeping loops.
     * The status is a literal: SQLite uses a partial index only when the
     * query repeats its WHERE term, which a bound parameter does not.
     */
    async expireDevices(now: number, limit: number): Promise<Array<{ id: string; user_id: string }>> {
      return db.transaction().execute(async (trx) => {
        const due = await trx
          .updateTable('trusted_devices')
          .set({ status: 'expired' })
          .where('id', 'in', (eb) =>
            eb.selectFrom('trusted_devices').select('id').where('status', '=', ACTIVE).where('expires_at', '<=', now).limit(limit),
          )
          .where('status', '=', ACTIVE)
          .returning(['id', 'user_id', 'device_name'])
          .execute();
        await history.append(
          trx,
          due.map((d): EventInput => ({ userId: d.user_id, deviceId: d.id, subjectName: d.device_name, type: 'expired', actor: SYSTEM })),
          now,
        );
        return due;
      });
    },

    // Housekeeping deletes: at most `limit` rows per statement, chosen through an index (the
    // subquery), so a backlog is worked off in short statements (src/app/housekeeping.ts loops).

    async deleteSpentActivations(before: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('activation_tokens')
        .where('id', 'in', (eb) => eb.selectFrom('activation_tokens').select('id').where('expires_at', '<=', before).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async deleteEventsBefore(before: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('device_events')
        .where('id', 'in', (eb) => eb.selectFrom('device_events').select('id').where('created_at', '<', before).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /** Devices that ended (revoked, evicted, expired) before `before`; index trusted_devices_ended (migration 003). */
    async deleteEndedDevicesBefore(before: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('trusted_devices')
        .where('id', 'in', (eb) =>
          eb.selectFrom('trusted_devices').select('id').where('status', '<>', ACTIVE).where(ENDED_AT, '<', before).limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type DevicesRepository = ReturnType<typeof createDevicesRepository>;
