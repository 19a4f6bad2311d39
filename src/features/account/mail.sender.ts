/**
 * The background mail sender: claims due outbox rows in bounded batches,
 * renders each (the composer may mint the single-use token of its link at
 * this moment), sends it, and marks it sent.
 *
 * - Never in a request: started from src/app/main.ts on an unref'd timer, like
 *   housekeeping; tests call runOnce() with a manual clock.
 * - Exactly one sender per message across instances: the claim is a
 *   conditional UPDATE with a lease (outbox.repository.ts). The lease (60 s)
 *   outlasts the SMTP timeouts (mail.transport.ts), so a slow send is never
 *   claimed twice. A crash after the SMTP server accepted the message but
 *   before `sent` was recorded sends it again when the lease lapses: delivery
 *   is at-least-once in that one window (SMTP has no idempotency key).
 * - Retries: exponential backoff from 30 s, doubling to at most 1 h, with a
 *   little jitter; after MAX_ATTEMPTS the row is `failed` (kept for the
 *   operator, logged). Finished rows are deleted after 7 days.
 * - Logs name the mail id, kind and (for failures) the error message; never
 *   the body, which carries a single-use link.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type Clock, DAY, MINUTE, SECOND } from '../../platform/clock.ts';
import type { MailTransport } from '../../platform/mail/transport.ts';
import type { RenderedMail } from '../../platform/mail/templates.ts';
import type { OutboxRepository, OutboxRow } from '../../store/mail-outbox.repository.ts';

export const LEASE_MS = 60 * SECOND;
export const BATCH_SIZE = 20;
export const MAX_ATTEMPTS = 10;
export const FIRST_RETRY_MS = 30 * SECOND;
export const MAX_RETRY_MS = 60 * MINUTE;
export const RETENTION_MS = 7 * DAY;

/** The rendered mail and where it goes, or null to drop the row (nobody to write to). */
export type Composer = (row: OutboxRow) => Promise<(RenderedMail & { to: string }) | null>;

export interface MailSenderOptions {
  outbox: OutboxRepository;
  transport: MailTransport;
  compose: Composer;
  clock: Clock;
  log: FastifyBaseLogger;
  instanceId?: string;
  batchSize?: number;
}

/** Delay before the retry that follows failure number `attempt` (1-based). */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + 0.1 * random()));
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error)).slice(0, 500);

export function createMailSender(options: MailSenderOptions) {
  const { outbox, transport, compose, clock, log } = options;
  const owner = options.instanceId ?? randomUUID();
  const batchSize = options.batchSize ?? BATCH_SIZE;

  async function deliver(row: OutboxRow): Promise<'sent' | 'failed' | 'dropped'> {
    let mail: Awaited<ReturnType<Composer>>;
    try {
      mail = await compose(row);
      if (mail === null) {
        await outbox.markDropped(row.id, owner, 'no recipient', clock.now());
        return 'dropped';
      }
      await transport.send({ id: row.id, ...mail });
    } catch (error) {
      const attempt = row.attempts + 1;
      const retryAt = attempt >= MAX_ATTEMPTS ? null : clock.now() + retryDelayMs(attempt);
      await outbox.markFailed(row.id, owner, errorText(error), retryAt, clock.now());
      log[retryAt === null ? 'error' : 'warn'](
        { mailId: row.id, kind: row.kind, attempt, err: { message: errorText(error) } },
        retryAt === null ? 'mail failed for good' : 'mail not sent; will retry',
      );
      return 'failed';
    }
    await outbox.markSent(row.id, owner, mail.subject, clock.now());
    log.info({ mailId: row.id, kind: row.kind }, 'mail sent');
    return 'sent';
  }

  return {
    owner,

    /** One bounded batch. Returns what happened to the rows this instance claimed. */
    async runOnce(): Promise<{ sent: number; failed: number; dropped: number }> {
      const now = clock.now();
      const rows = await outbox.claimDue(owner, now, LEASE_MS, batchSize);
      const counts = { sent: 0, failed: 0, dropped: 0 };
      for (const row of rows) counts[await deliver(row)] += 1;
      await outbox.deleteFinishedBefore(now - RETENTION_MS, 500);
      return counts;
    },
  };
}

export type MailSender = ReturnType<typeof createMailSender>;

/** Runs the sender every `intervalMs` until stopped; a run never overlaps the previous one. */
export function startMailSender(sender: MailSender, log: FastifyBaseLogger, intervalMs = 5 * SECOND): () => void {
  let running = false;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = true;
    sender
      .runOnce()
      .catch((error) => log.warn({ err: { message: errorText(error) } }, 'mail sender run failed'))
      .finally(() => {
        running = false;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  const first = setTimeout(tick, 500);
  first.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    clearTimeout(first);
  };
}
