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
 *
 * Status: a paused push stream's rows are held (`next_attempt_at` null, like
 * a poll row) and released, oldest first, when it is enabled again; a
 * disabled stream's waiting rows are deleted and none are written for it.
 * Removed subjects: at most SSF_MAX_REMOVED_SUBJECTS rows per stream, read
 * by the event writer through the (user_id, stream_id) index.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, Db, SsfOutboxTable, SsfStreamsTable } from './schema.ts';
import { claimDueRows, markLeasedDelivered, markLeasedFailed, pruneFinishedRows } from './outbox-lease.ts';

/** Streams per deployment: relying services, not users. */
export const SSF_MAX_STREAMS = 50;
/** Users one stream may have removed (the exceptions to "every user"). */
export const SSF_MAX_REMOVED_SUBJECTS = 10_000;
export const SSF_PUSH = 'urn:ietf:rfc:8935';
export const SSF_POLL = 'urn:ietf:rfc:8936';

export type SsfStream = Selectable<SsfStreamsTable>;
export type SsfStatus = 'enabled' | 'paused' | 'disabled';
export const SSF_STATUSES: readonly SsfStatus[] = ['enabled', 'paused', 'disabled'];
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

/** Of these users, which each stream removed: `${stream_id} ${user_id}` (at most users × SSF_MAX_STREAMS rows). */
export async function removedSubjects(db: Db, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await db.selectFrom('ssf_removed_subjects').select(['stream_id', 'user_id']).where('user_id', 'in', [...new Set(userIds)]).execute();
  return new Set(rows.map((r) => `${r.stream_id} ${r.user_id}`));
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

    /** The stream, every SET still queued on it and its removed subjects, in one transaction. */
    async deleteOwned(ownerId: string, id: string): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom('ssf_streams').where('id', '=', id).where('admin_key_id', '=', ownerId).executeTakeFirst();
        if (Number(result.numDeletedRows) !== 1) return false;
        await trx.deleteFrom('ssf_outbox').where('stream_id', '=', id).execute();
        await trx.deleteFrom('ssf_removed_subjects').where('stream_id', '=', id).execute();
        return true;
      });
    },

    /**
     * A stream's delivery method changed: its queued SETs follow (`due`: an
     * enabled push stream, its rows become due now; otherwise they wait: poll
     * rows, or the held rows of a paused stream).
     */
    async retarget(streamId: string, due: boolean, now: number): Promise<void> {
      await db
        .updateTable('ssf_outbox')
        .set({ next_attempt_at: due ? now : null, claimed_until: null })
        .where('stream_id', '=', streamId)
        .where('delivered_at', 'is', null)
        .execute();
    },

    /**
     * Sets the status and applies it to the waiting SETs, in one transaction:
     * paused → held (not due); disabled → deleted; enabled (a push stream) →
     * due again at their creation time, so the oldest goes first. A row in
     * flight keeps its lease; its outcome is still recorded (fenced by attempts).
     */
    async setStatus(ownerId: string, id: string, status: SsfStatus, reason: string | null, now: number): Promise<SsfStream | undefined> {
      return db.transaction().execute(async (trx) => {
        const result = await trx.updateTable('ssf_streams').set({ status, status_reason: reason, updated_at: now }).where('id', '=', id).where('admin_key_id', '=', ownerId).executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return undefined;
        const stream = await trx.selectFrom('ssf_streams').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
        const waiting = trx.updateTable('ssf_outbox').where('stream_id', '=', id).where('delivered_at', 'is', null).where('dead_at', 'is', null);
        if (status === 'disabled') {
          await trx.deleteFrom('ssf_outbox').where('stream_id', '=', id).where('delivered_at', 'is', null).where('dead_at', 'is', null).execute();
        } else if (status === 'paused') {
          await waiting.set({ next_attempt_at: null }).execute();
        } else if (stream.delivery_method === SSF_PUSH) {
          await waiting.set((eb) => ({ next_attempt_at: eb.ref('created_at'), claimed_until: null })).execute();
        }
        return stream;
      });
    },

    /**
     * The sender found the stream paused after claiming a row: back to held,
     * the attempt not counted. Only if nothing touched the row since the
     * claim (`next_attempt_at` still the lease end): a resume that released
     * it meanwhile wins, and the row stays due.
     */
    async hold(id: string, attempts: number): Promise<void> {
      await db
        .updateTable('ssf_outbox')
        .set({ next_attempt_at: null, claimed_until: null, attempts: attempts - 1 })
        .where('id', '=', id)
        .where('attempts', '=', attempts)
        .where('delivered_at', 'is', null)
        .whereRef('next_attempt_at', '=', 'claimed_until')
        .execute();
    },

    /** The sender found the stream disabled (a SET written while it was being disabled): dropped, as the stream's others were. */
    async drop(id: string, attempts: number): Promise<void> {
      await db.deleteFrom('ssf_outbox').where('id', '=', id).where('attempts', '=', attempts).where('delivered_at', 'is', null).execute();
    },

    // Subjects: every stream has every user except those it removed.
    async countRemoved(streamId: string): Promise<number> {
      const row = await db.selectFrom('ssf_removed_subjects').select((eb) => eb.fn.countAll<number | string>().as('n')).where('stream_id', '=', streamId).executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    async removeSubject(streamId: string, userId: string, now: number): Promise<void> {
      await db.insertInto('ssf_removed_subjects').values({ stream_id: streamId, user_id: userId, created_at: now }).onConflict((oc) => oc.columns(['stream_id', 'user_id']).doNothing()).execute();
    },

    async addSubject(streamId: string, userId: string): Promise<void> {
      await db.deleteFrom('ssf_removed_subjects').where('stream_id', '=', streamId).where('user_id', '=', userId).execute();
    },

    /** One SET written outside an event (the verification event). */
    insertSet: (row: SsfOutboxRow) => insertSsfOutbox(db, [row]),

    // Push: the claim shared with the other outboxes, and its fenced outcomes.
    /** Due SETs, leased, in the order they were written (the jti is time-ordered): the claim itself returns them in no order. */
    async claimDue(now: number, leaseMs: number, limit: number): Promise<ClaimedSet[]> {
      const rows = await claimDueRows(db, 'ssf_outbox', now, leaseMs, limit);
      return rows.map(({ id, stream_id, payload, attempts }) => ({ id, stream_id, payload, attempts })).sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    },

    /**
     * A claimed SET the sender did not attempt (an earlier SET of its stream
     * failed, or the batch ran long): due again at `dueAt`, the attempt not
     * counted. Fenced like hold(): only if nothing touched the row since the
     * claim (a pause meanwhile keeps it held).
     */
    async release(id: string, attempts: number, dueAt: number): Promise<void> {
      await db
        .updateTable('ssf_outbox')
        .set({ next_attempt_at: dueAt, claimed_until: null, attempts: attempts - 1 })
        .where('id', '=', id)
        .where('attempts', '=', attempts)
        .where('delivered_at', 'is', null)
        .whereRef('next_attempt_at', '=', 'claimed_until')
        .execute();
    },

    markDelivered: (id: string, attempts: number, now: number) => markLeasedDelivered(db, 'ssf_outbox', id, attempts, now),

    markFailed: (id: string, attempts: number, now: number, nextAttemptAt: number | null, error: string) =>
      markLeasedFailed(db, 'ssf_outbox', id, attempts, now, nextAttemptAt, error),

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
