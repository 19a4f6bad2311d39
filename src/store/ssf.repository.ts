/**
 * Shared Signals storage (docs/integration.md "Shared Signals"): the event
 * streams and their outbox of Security Event Tokens.
 *
 * Streams are few (at most SSF_MAX_STREAMS per deployment): the event writer
 * reads all of them, in primary-key order and bounded by that cap, whenever an
 * event worth a SET is written. Every other read goes through the owner's
 * index or the primary key, and a key only ever reads its own streams.
 *
 * The outbox works like the webhook outbox (src/store/webhook-outbox.repository.ts):
 * rows inserted in the event's transaction; push rows claimed with a lease
 * (src/store/outbox-lease.ts), outcomes fenced by `attempts`. Poll rows wait,
 * in jti order, until the receiver acknowledges them.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, Db, SsfOutboxTable, SsfStreamsTable } from './schema.ts';
import { claimDueRows, pruneFinishedRows } from './outbox-lease.ts';

/** Streams per deployment: relying services, not users. */
export const SSF_MAX_STREAMS = 50;
export const SSF_PUSH = 'urn:ietf:rfc:8935';
export const SSF_POLL = 'urn:ietf:rfc:8936';

export type SsfStream = Selectable<SsfStreamsTable>;
export type SsfOutboxRow = Pick<SsfOutboxTable, 'id' | 'stream_id' | 'payload' | 'created_at' | 'next_attempt_at'>;

export interface ClaimedSet {
  id: string;
  stream_id: string;
  payload: string;
  attempts: number;
}

/** The streams an event fans out to (every one, bounded by the cap). */
export function fanoutStreams(db: Db): Promise<Array<Pick<SsfStream, 'id' | 'audience' | 'delivery_method' | 'events_delivered' | 'status'>>> {
  return db.selectFrom('ssf_streams').select(['id', 'audience', 'delivery_method', 'events_delivered', 'status']).orderBy('id').limit(SSF_MAX_STREAMS).execute();
}

export async function insertSsfOutbox(db: Db, rows: readonly SsfOutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('ssf_outbox')
    .values(rows.map((r) => ({ ...r, attempts: 0, claimed_until: null, delivered_at: null, dead_at: null, last_error: null })))
    .execute();
}

export function createSsfRepository(db: Kysely<Database>) {
  return {
    async countStreams(): Promise<number> {
      const row = await db.selectFrom('ssf_streams').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    async insertStream(row: SsfStream): Promise<void> {
      await db.insertInto('ssf_streams').values(row).execute();
    },

    listOwned(ownerId: string): Promise<SsfStream[]> {
      return db.selectFrom('ssf_streams').selectAll().where('admin_key_id', '=', ownerId).orderBy('id').limit(SSF_MAX_STREAMS).execute();
    },

    findOwned(ownerId: string, id: string): Promise<SsfStream | undefined> {
      return db.selectFrom('ssf_streams').selectAll().where('id', '=', id).where('admin_key_id', '=', ownerId).executeTakeFirst();
    },

    /** Any stream by id (the push sender: where to send). */
    find(id: string): Promise<SsfStream | undefined> {
      return db.selectFrom('ssf_streams').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async updateOwned(ownerId: string, id: string, patch: Partial<Pick<SsfStream, 'delivery_method' | 'endpoint_url' | 'authorization_header' | 'events_requested' | 'events_delivered' | 'description' | 'updated_at'>>): Promise<boolean> {
      const result = await db.updateTable('ssf_streams').set(patch).where('id', '=', id).where('admin_key_id', '=', ownerId).executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** The stream and every SET still queued on it, in one transaction. */
    async deleteOwned(ownerId: string, id: string): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom('ssf_streams').where('id', '=', id).where('admin_key_id', '=', ownerId).executeTakeFirst();
        if (Number(result.numDeletedRows) !== 1) return false;
        await trx.deleteFrom('ssf_outbox').where('stream_id', '=', id).execute();
        return true;
      });
    },

    /** A stream's delivery method changed: its queued SETs follow (push rows become due now; poll rows stop being pushed). */
    async retarget(streamId: string, push: boolean, now: number): Promise<void> {
      await db
        .updateTable('ssf_outbox')
        .set({ next_attempt_at: push ? now : null, claimed_until: null })
        .where('stream_id', '=', streamId)
        .where('delivered_at', 'is', null)
        .execute();
    },

    /** One SET written outside an event (the verification event). */
    insertSet: (row: SsfOutboxRow) => insertSsfOutbox(db, [row]),

    // Push: the claim shared with the other outboxes, and its fenced outcomes.
    async claimDue(now: number, leaseMs: number, limit: number): Promise<ClaimedSet[]> {
      const rows = await claimDueRows(db, 'ssf_outbox', now, leaseMs, limit);
      return rows.map(({ id, stream_id, payload, attempts }) => ({ id, stream_id, payload, attempts }));
    },

    async markDelivered(id: string, attempts: number, now: number): Promise<boolean> {
      const result = await db
        .updateTable('ssf_outbox')
        .set({ delivered_at: now, next_attempt_at: null, claimed_until: null, last_error: null })
        .where('id', '=', id)
        .where('attempts', '=', attempts)
        .where('delivered_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async markFailed(id: string, attempts: number, now: number, nextAttemptAt: number | null, error: string): Promise<void> {
      await db
        .updateTable('ssf_outbox')
        .set({ next_attempt_at: nextAttemptAt, claimed_until: null, dead_at: nextAttemptAt === null ? now : null, last_error: error.slice(0, 200) })
        .where('id', '=', id)
        .where('attempts', '=', attempts)
        .where('delivered_at', 'is', null)
        .execute();
    },

    // Poll (RFC 8936).
    waiting(streamId: string, limit: number): Promise<Array<Pick<SsfOutboxTable, 'id' | 'payload'>>> {
      return db.selectFrom('ssf_outbox').select(['id', 'payload']).where('stream_id', '=', streamId).where('delivered_at', 'is', null).orderBy('id').limit(limit).execute();
    },

    /** Acknowledged: finished. Only the stream's own unacknowledged SETs; returns how many. */
    async acknowledge(streamId: string, ids: readonly string[], now: number): Promise<number> {
      if (ids.length === 0) return 0;
      const result = await db
        .updateTable('ssf_outbox')
        .set({ delivered_at: now, next_attempt_at: null, claimed_until: null })
        .where('id', 'in', ids)
        .where('stream_id', '=', streamId)
        .where('delivered_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    findSet(id: string): Promise<SsfOutboxTable | undefined> {
      return db.selectFrom('ssf_outbox').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** Housekeeping, at most `limit` rows: delivered rows after a day, dead ones after the event retention. */
    pruneFinished(deliveredBefore: number, deadBefore: number, limit = 10_000): Promise<number> {
      return pruneFinishedRows(db, 'ssf_outbox', deliveredBefore, deadBefore, limit);
    },
  };
}

export type SsfRepository = ReturnType<typeof createSsfRepository>;
