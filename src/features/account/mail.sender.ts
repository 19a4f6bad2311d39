/**
 * The background mail sender: the outbox runner (src/platform/outbox-runner.ts)
 * on the mail outbox. Each claimed row is rendered (the composer may mint the
 * single-use token of its link at this moment), sent, and marked sent.
 *
 * - Never in a request: started from src/app/main.ts on an unref'd timer, like
 *   housekeeping; tests call runOnce() with a manual clock.
 * - Exactly one sender per message across instances: the claim is a lease
 *   (src/store/mail-outbox.repository.ts). The lease (60 s) outlasts the SMTP
 *   timeouts (src/platform/mail/transport.ts), so a slow send is never claimed
 *   twice. A crash after the SMTP server accepted the message but before
 *   `sent` was recorded sends it again when the lease lapses: delivery is
 *   at-least-once in that one window (SMTP has no idempotency key).
 * - Retries: exponential backoff from 30 s, doubling to at most 1 h, with a
 *   little jitter; after MAX_ATTEMPTS the row is `failed` (kept for the
 *   operator, logged). Finished rows are deleted after 7 days.
 * - One batch of BATCH_SIZE every 5 s at most, one mail after the other: the
 *   SMTP relay sees a steady trickle, never a burst.
 * - Logs name the mail id, kind and (for failures) the error message; never
 *   the body, which carries a single-use link.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type Clock, DAY, MINUTE, SECOND } from '../../platform/clock.ts';
import type { MailTransport } from '../../platform/mail/transport.ts';
import type { RenderedMail } from '../../platform/mail/templates.ts';
import { type BackoffPolicy, createOutboxRunner, retryDelayMs as backoff } from '../../platform/outbox-runner.ts';
import type { OutboxRepository, OutboxRow } from '../../store/mail-outbox.repository.ts';

export const LEASE_MS = 60 * SECOND;
export const BATCH_SIZE = 20;
export const MAX_ATTEMPTS = 10;
export const FIRST_RETRY_MS = 30 * SECOND;
export const MAX_RETRY_MS = 60 * MINUTE;
export const RETENTION_MS = 7 * DAY;
export const POLL_INTERVAL_MS = 5 * SECOND;
const BACKOFF: BackoffPolicy = { firstMs: FIRST_RETRY_MS, capMs: MAX_RETRY_MS, jitter: 0.1 };

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
  /** Told of every failed attempt (the /metrics counter). */
  onFailure?: (givenUp: boolean) => void;
}

/** Delay before the retry that follows failure number `attempt` (1-based). */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  return backoff(attempt, BACKOFF, random);
}

type Sent = { subject: string } | { dropped: string };

export function createMailSender(options: MailSenderOptions) {
  const { outbox, transport, compose, clock, log } = options;
  const owner = options.instanceId ?? randomUUID();

  const runner = createOutboxRunner<OutboxRow, Sent>({
    clock,
    leaseMs: LEASE_MS,
    batchSize: options.batchSize ?? BATCH_SIZE,
    maxAttempts: MAX_ATTEMPTS,
    ...(options.onFailure ? { onFailure: options.onFailure } : {}),
    backoff: BACKOFF,
    claimDue: (now, leaseMs, limit) => outbox.claimDue(owner, now, leaseMs, limit),
    async deliver(row) {
      const mail = await compose(row);
      if (mail === null) return { dropped: 'no recipient' };
      await transport.send({ id: row.id, ...mail });
      return { subject: mail.subject };
    },
    async markDone(row, done, now) {
      if ('dropped' in done) {
        await outbox.markDropped(row.id, owner, done.dropped, now);
        return;
      }
      await outbox.markSent(row.id, owner, done.subject, now);
      log.info({ mailId: row.id, kind: row.kind }, 'mail sent');
    },
    async markFailed(row, error, retryAt, now) {
      await outbox.markFailed(row.id, owner, error, retryAt, now);
      log[retryAt === null ? 'error' : 'warn'](
        { mailId: row.id, kind: row.kind, attempt: row.attempts, err: { message: error } },
        retryAt === null ? 'mail failed for good' : 'mail not sent; will retry',
      );
    },
    // Retention rides along with the sending: finished rows hold addresses.
    afterBatch: async (now) => {
      await outbox.deleteFinishedBefore(now - RETENTION_MS, 500);
    },
  });

  return {
    owner,

    /** One bounded batch. Returns what happened to the rows this instance claimed. */
    async runOnce(): Promise<{ sent: number; failed: number; dropped: number }> {
      const result = await runner.runOnce();
      const dropped = result.done.filter((d) => 'dropped' in d).length;
      return { sent: result.done.length - dropped, failed: result.failed + result.dead, dropped };
    },

    /** Runs a batch every `intervalMs` until stopped; returns stop(), which waits for the batch in flight. */
    start(intervalMs = POLL_INTERVAL_MS): () => Promise<void> {
      return runner.start({ name: 'mail sender', log, intervalMs, firstDelayMs: 500 });
    },
  };
}

export type MailSender = ReturnType<typeof createMailSender>;
