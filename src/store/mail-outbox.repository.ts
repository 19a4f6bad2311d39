/**
 * The durable mail queue. A request that causes mail only INSERTs a row
 * here; the background sender (src/features/account/mail.sender.ts) delivers it.
 *
 * Claiming is the lease both outboxes share (outbox-lease.ts): one
 * conditional UPDATE that leases due pending rows to one instance
 * (`claimed_by`, `claimed_until`, `next_attempt_at` moved to the lease end)
 * and counts the attempt; an instance that dies mid-send releases its rows
 * when the lease lapses. Outcomes are written only by the instance that
 * holds the claim (`claimed_by` is the fence). Every scan is bounded and
 * served by the partial index on pending rows (mail_outbox_due).
 */
import type { Kysely, Transaction } from 'kysely';
import { claimDueRows } from './outbox-lease.ts';
import type { Database, MailKind, MailOutboxTable } from './schema.ts';
import { type History, SYSTEM } from './history.ts';

export type OutboxRow = MailOutboxTable;
type Db = Kysely<Database> | Transaction<Database>;

export interface NewMail {
  id: string;
  kind: MailKind;
  userId: string | null;
  recipient: string | null;
  payload: Record<string, string | number | null>;
  dedupeKey?: string;
  /** Not sent before this time (a new-sign-in alert waits a minute: docs/security-center.md). */
  notBefore?: number;
}

export async function enqueueMail(db: Db, mail: NewMail, now: number): Promise<boolean> {
  const result = await db
    .insertInto('mail_outbox')
    .values({
      id: mail.id,
      kind: mail.kind,
      user_id: mail.userId,
      recipient: mail.recipient,
      payload: JSON.stringify(mail.payload),
      dedupe_key: mail.dedupeKey ?? null,
      status: 'pending',
      attempts: 0,
      next_attempt_at: Math.max(now, mail.notBefore ?? now),
      claimed_by: null,
      claimed_until: null,
      last_error: null,
      subject: null,
      created_at: now,
      finished_at: null,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** A payload fact that names a session or device, if it is one. */
const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * `history`: when given, every alert (`alert_*`) marked sent records
 * `alert_sent` in the same transaction (docs/security-center.md, "History"):
 * the mail kind and the session and device it was about, never its token or
 * link (they are minted at send time and exist only in the mail). A mail
 * dropped before sending (a new-sign-in alert made moot) records nothing.
 */
export function createOutboxRepository(db: Kysely<Database>, history?: History) {
  return {
    enqueue: (mail: NewMail, now: number) => enqueueMail(db, mail, now),

    /** Claims up to `limit` due rows for `owner` until `now + leaseMs`, counting their attempt. Returns the rows this owner won. */
    claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<OutboxRow[]> {
      return claimDueRows(db, 'mail_outbox', now, leaseMs, limit, { status: 'pending', claimedBy: owner });
    },

    /** Only the owner of a live claim may finish the row. */
    async markSent(id: string, owner: string, subject: string, now: number): Promise<boolean> {
      const mark = (trx: Db) =>
        trx
          .updateTable('mail_outbox')
          .set({ status: 'sent', subject, finished_at: now, claimed_by: null, claimed_until: null, last_error: null })
          .where('id', '=', id)
          .where('claimed_by', '=', owner)
          .where('status', '=', 'pending')
          .returning(['kind', 'user_id', 'payload'])
          .executeTakeFirst();
      if (history === undefined) return (await mark(db)) !== undefined;
      return db.transaction().execute(async (trx) => {
        const sent = await mark(trx);
        if (sent === undefined) return false;
        if (sent.kind.startsWith('alert_') && sent.user_id !== null) {
          const payload = JSON.parse(sent.payload) as Record<string, unknown>;
          await history.append(trx, [{ userId: sent.user_id, type: 'alert_sent', subjectName: sent.kind, sessionId: str(payload.session_id), deviceId: str(payload.device_id), actor: SYSTEM }], now);
        }
        return true;
      });
    },

    async markDropped(id: string, owner: string, reason: string, now: number): Promise<void> {
      await db
        .updateTable('mail_outbox')
        .set({ status: 'dropped', last_error: reason, finished_at: now, claimed_by: null, claimed_until: null })
        .where('id', '=', id)
        .where('claimed_by', '=', owner)
        .where('status', '=', 'pending')
        .execute();
    },

    /** A failed attempt (the claim counted it): retry at `retryAt`, or give up (status failed) when `retryAt` is null. */
    async markFailed(id: string, owner: string, error: string, retryAt: number | null, now: number): Promise<void> {
      await db
        .updateTable('mail_outbox')
        .set({
          last_error: error,
          claimed_by: null,
          claimed_until: null,
          ...(retryAt === null ? { status: 'failed' as const, finished_at: now } : { next_attempt_at: retryAt }),
        })
        .where('id', '=', id)
        .where('claimed_by', '=', owner)
        .where('status', '=', 'pending')
        .execute();
    },

    /** Retention: finished rows (they hold addresses) go after a while, a bounded batch at a time. */
    async deleteFinishedBefore(before: number, limit: number): Promise<number> {
      const ids = db.selectFrom('mail_outbox').select('id').where('finished_at', '<', before).limit(limit);
      const result = await db.deleteFrom('mail_outbox').where('id', 'in', ids).executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    findById(id: string): Promise<OutboxRow | undefined> {
      return db.selectFrom('mail_outbox').selectAll().where('id', '=', id).executeTakeFirst();
    },
  };
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>;
