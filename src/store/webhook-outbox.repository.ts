/**
 * The webhook outbox (docs/admin-and-webhooks.md): storage only.
 *
 * Durability: an event's outbox row is inserted by history.append
 * (src/store/history.ts) in the same transaction as the event,
 * so an event that committed is delivered eventually (at least once) and an
 * event that rolled back is never sent.
 *
 * One attempt at a time per event, across instances: a claim is one
 * conditional UPDATE that moves `next_attempt_at` to the end of a lease
 * (`claimed_until`) and counts the attempt. On PostgreSQL its choice of rows
 * skips rows locked by a concurrent claim (FOR UPDATE SKIP LOCKED), and the
 * outer WHERE re-checks `next_attempt_at <= now` on the newest version of
 * each row (READ COMMITTED), so a row is claimed by one instance only;
 * SQLite serialises writers. An instance that dies mid-attempt leaves a
 * row that is due again when its lease ends. Outcomes are written only by
 * the attempt that holds the row (`attempts` is the fence).
 */
import type { Kysely } from 'kysely';
import type { Database, Db, WebhookOutboxTable } from './schema.ts';
import { claimDueRows, markLeasedDelivered, markLeasedFailed, pruneFinishedRows } from './outbox-lease.ts';

export type OutboxRow = Pick<WebhookOutboxTable, 'id' | 'type' | 'payload' | 'created_at'>;

export interface ClaimedDelivery {
  id: string;
  payload: string;
  attempts: number;
}

export async function insertOutbox(trx: Db, rows: readonly OutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  await trx
    .insertInto('webhook_outbox')
    .values(rows.map((r) => ({ ...r, attempts: 0, next_attempt_at: r.created_at, claimed_until: null, delivered_at: null, dead_at: null, last_error: null })))
    .execute();
}

export function createWebhooksRepository(db: Kysely<Database>) {
  return {
    /**
     * Claims up to `limit` due rows, oldest first, for one attempt each: their
     * lease ends at `now + leaseMs` and their attempt is counted (the lease
     * both outboxes share: outbox-lease.ts).
     */
    async claimDue(now: number, leaseMs: number, limit: number): Promise<ClaimedDelivery[]> {
      const rows = await claimDueRows(db, 'webhook_outbox', now, leaseMs, limit);
      return rows.map(({ id, payload, attempts }) => ({ id, payload, attempts }));
    },

    /** Delivered: finished. Only the attempt that holds the row writes its outcome. */
    markDelivered: (id: string, attempts: number, now: number) => markLeasedDelivered(db, 'webhook_outbox', id, attempts, now),

    markFailed: (id: string, attempts: number, now: number, nextAttemptAt: number | null, error: string) =>
      markLeasedFailed(db, 'webhook_outbox', id, attempts, now, nextAttemptAt, error),

    find(id: string): Promise<WebhookOutboxTable | undefined> {
      return db.selectFrom('webhook_outbox').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** Housekeeping, at most `limit` rows: delivered rows after a day, dead ones after the event retention. */
    pruneFinished(deliveredBefore: number, deadBefore: number, limit = 10_000): Promise<number> {
      return pruneFinishedRows(db, 'webhook_outbox', deliveredBefore, deadBefore, limit);
    },
  };
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;
