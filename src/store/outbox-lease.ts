/**
 * The claim the outboxes share (mail_outbox, webhook_outbox, ssf_outbox), for the
 * runner in src/platform/outbox-runner.ts.
 *
 * A row is due when `next_attempt_at <= now` and no live lease is on it
 * (`claimed_until` null or past). Claiming is one conditional UPDATE that
 * moves `next_attempt_at` and `claimed_until` to the end of the lease and
 * counts the attempt, so a claimed row stops being due at once. On
 * PostgreSQL the choice of rows skips rows locked by a concurrent claim
 * (FOR UPDATE SKIP LOCKED), and the outer WHERE re-checks the due condition
 * on the newest version of each row (READ COMMITTED), so a row is claimed by
 * one instance only; SQLite serialises writers. Oldest due first (then by
 * id, so rows due in the same millisecond are chosen the same way every
 * time), at most `limit` rows, through each table's index on
 * `next_attempt_at`.
 *
 * The rows come back in no particular order: `UPDATE … WHERE id IN (SELECT …
 * ORDER BY …) RETURNING` returns them as the UPDATE meets them, not in the
 * subquery's order (on PostgreSQL it varies from run to run), and the claim
 * has already moved `next_attempt_at` to the lease end. A caller that needs
 * an order sorts the rows itself (the Shared Signals outbox: by id, the
 * order the SETs were written).
 *
 * `claimed_until` is checked as well as `next_attempt_at` so that a row
 * leased by an instance still running an older release (which set only
 * `claimed_until`) is not taken from it during a rolling upgrade.
 */
import { type Kysely, PostgresAdapter, type Selectable } from 'kysely';
import type { Database } from './schema.ts';

type LeasedTable = 'mail_outbox' | 'webhook_outbox' | 'ssf_outbox';

export interface ClaimScope {
  /** Rows with a status column: only these are claimable (mail: 'pending'). */
  status?: string;
  /** Rows with a claimed_by column: the claiming instance, which fences the outcome. */
  claimedBy?: string;
}

export async function claimDueRows<T extends LeasedTable>(
  typed: Kysely<Database>,
  table: T,
  now: number,
  leaseMs: number,
  limit: number,
  scope: ClaimScope = {},
): Promise<Array<Selectable<Database[T]>>> {
  // The two tables share these columns but not a type: the statement is built untyped, once.
  const db = typed as unknown as Kysely<any>;
  const postgres = typed.getExecutor().adapter instanceof PostgresAdapter;
  const until = now + leaseMs;
  const due = (query: any): any => {
    let q = query
      .where('next_attempt_at', '<=', now)
      .where((eb: any) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', now)]));
    if (scope.status !== undefined) q = q.where('status', '=', scope.status);
    return q;
  };
  return due(
    db
      .updateTable(table as string)
      .set((eb: any) => ({
        attempts: eb('attempts', '+', 1),
        next_attempt_at: until,
        claimed_until: until,
        ...(scope.claimedBy !== undefined ? { claimed_by: scope.claimedBy } : {}),
      }))
      .where('id', 'in', (eb: any) => {
        const candidates = due(eb.selectFrom(table as string).select('id')).orderBy('next_attempt_at').orderBy('id').limit(limit);
        // PostgreSQL: rows another instance is claiming right now are passed over, not waited for, so
        // concurrent senders take the next rows instead of all choosing (and fighting over) the same ones.
        return postgres ? candidates.forUpdate().skipLocked() : candidates;
      }),
  )
    .returningAll()
    .execute() as Promise<Array<Selectable<Database[T]>>>;
}

/**
 * Housekeeping of an outbox whose rows end as delivered or dead (webhooks,
 * Shared Signals), at most `limit` rows: delivered rows before
 * `deliveredBefore`, dead ones before `deadBefore`. Each DELETE picks its rows
 * through the table's delivered_at / dead_at index in a bounded subquery.
 */
export async function pruneFinishedRows(typed: Kysely<Database>, table: 'webhook_outbox' | 'ssf_outbox', deliveredBefore: number, deadBefore: number, limit: number): Promise<number> {
  const db = typed as unknown as Kysely<any>;
  const prune = async (column: 'delivered_at' | 'dead_at', before: number, most: number) =>
    Number(
      (await db.deleteFrom(table).where('id', 'in', (eb: any) => eb.selectFrom(table).select('id').where(column, '<', before).limit(most)).executeTakeFirst())
        .numDeletedRows,
    );
  const delivered = await prune('delivered_at', deliveredBefore, limit);
  if (delivered >= limit) return limit;
  return delivered + (await prune('dead_at', deadBefore, limit - delivered));
}

/**
 * The fenced outcomes of one attempt, for the outboxes whose rows end as
 * delivered or dead (webhooks, Shared Signals). Only the attempt that holds
 * the row writes (`attempts` is the count its claim set, and a delivered row
 * is final), so a late answer of an attempt whose lease ran out and whose row
 * another instance claimed again changes nothing.
 */
export async function markLeasedDelivered(typed: Kysely<Database>, table: 'webhook_outbox' | 'ssf_outbox', id: string, attempts: number, now: number): Promise<boolean> {
  const result = await (typed as unknown as Kysely<any>)
    .updateTable(table)
    .set({ delivered_at: now, next_attempt_at: null, claimed_until: null, last_error: null })
    .where('id', '=', id)
    .where('attempts', '=', attempts)
    .where('delivered_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Failed: due again at `nextAttemptAt`, or dead (given up) when that is null; the error kept to 200 characters. */
export async function markLeasedFailed(
  typed: Kysely<Database>,
  table: 'webhook_outbox' | 'ssf_outbox',
  id: string,
  attempts: number,
  now: number,
  nextAttemptAt: number | null,
  error: string,
): Promise<void> {
  await (typed as unknown as Kysely<any>)
    .updateTable(table)
    .set({ next_attempt_at: nextAttemptAt, claimed_until: null, dead_at: nextAttemptAt === null ? now : null, last_error: error.slice(0, 200) })
    .where('id', '=', id)
    .where('attempts', '=', attempts)
    .where('delivered_at', 'is', null)
    .execute();
}
