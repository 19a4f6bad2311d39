/**
 * The webhook sender: delivers the outbox to WEBHOOK_URL.
 *
 * Signing: Standard Webhooks (the `standardwebhooks` package): headers
 * `webhook-id` (the event id, stable across retries), `webhook-timestamp`
 * (Unix seconds of this attempt, from the injected clock) and
 * `webhook-signature` (`v1,` + base64 HMAC-SHA-256 of "id.timestamp.body"
 * under WEBHOOK_SECRET). The body is the stored payload, byte for byte.
 *
 * Delivery: at least once, by the outbox runner (src/platform/outbox-runner.ts,
 * on an unref'd timer started by src/app/main.ts, like housekeeping): it
 * claims due rows in bounded batches (a lease per row:
 * src/store/webhook-outbox.repository.ts); each is POSTed with a timeout and
 * no redirects; 2xx is delivered, and anything else is scheduled again with
 * exponential backoff (BASE · 2^(attempt-1), capped, no jitter) until
 * WEBHOOK_MAX_ATTEMPTS, after which the row is dead (kept for inspection,
 * logged). A full batch is followed at once by the next. The request that
 * caused an event never waits for any of this: it only inserted a row.
 *
 * Threats: a forged webhook (receivers verify the signature and the
 * timestamp); a replayed one (the timestamp is signed; the id deduplicates);
 * a secret or token leaking (payloads carry none; the secret is never logged;
 * errors store a status or an error name, never a response body); a slow
 * receiver holding the service (timeouts, bounded batches, leases).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { type Clock, HOUR, MINUTE, SECOND } from '../../platform/clock.ts';
import type { WebhookConfig } from '../../platform/config.ts';
import { type BackoffPolicy, createOutboxRunner, retryDelayMs } from '../../platform/outbox-runner.ts';
import type { Database } from '../../store/schema.ts';
import { type ClaimedDelivery, createWebhooksRepository } from '../../store/webhook-outbox.repository.ts';

export const WEBHOOK_BACKOFF_BASE_MS = 30 * SECOND;
export const WEBHOOK_BACKOFF_CAP_MS = 6 * HOUR;
export const WEBHOOK_BATCH_SIZE = 50;
/** Deliveries in flight at once per instance. */
export const WEBHOOK_CONCURRENCY = 8;
export const WEBHOOK_POLL_INTERVAL_MS = SECOND;
// No jitter: the schedule is exact, and receivers see it documented.
const BACKOFF: BackoffPolicy = { firstMs: WEBHOOK_BACKOFF_BASE_MS, capMs: WEBHOOK_BACKOFF_CAP_MS, jitter: 0 };

/** The wait before attempt `attempt + 1`, after `attempt` failed attempts. */
export const backoffMs = (attempt: number): number => retryDelayMs(attempt, BACKOFF);

export interface WebhookSenderOptions {
  db: Kysely<Database>;
  config: WebhookConfig;
  clock: Clock;
  log: FastifyBaseLogger;
  /** Told of every failed attempt (the /metrics counter). */
  onFailure?: (givenUp: boolean) => void;
}

export interface SendResult {
  claimed: number;
  delivered: number;
  failed: number;
  dead: number;
}

/** A failed attempt, described by a status or an error name: never a response body. */
const describeFailure = (cause: unknown): string =>
  cause instanceof Error ? (cause.name === 'TimeoutError' ? 'timeout' : `${cause.name}: ${(cause.cause as Error | undefined)?.message ?? cause.message}`) : 'error';

export function createWebhookSender(options: WebhookSenderOptions) {
  const { config, clock, log } = options;
  const repository = createWebhooksRepository(options.db);
  const signer = new Webhook(config.secret);
  const timeoutMs = config.timeoutSeconds * SECOND;

  const runner = createOutboxRunner<ClaimedDelivery, true>({
    clock,
    // The lease outlives the attempt (its timeout) with room to write the outcome.
    leaseMs: timeoutMs + MINUTE,
    batchSize: WEBHOOK_BATCH_SIZE,
    concurrency: WEBHOOK_CONCURRENCY,
    maxAttempts: config.maxAttempts,
    ...(options.onFailure ? { onFailure: options.onFailure } : {}),
    backoff: BACKOFF,
    claimDue: (now, leaseMs, limit) => repository.claimDue(now, leaseMs, limit),
    async deliver(delivery) {
      const sentAt = clock.now();
      let response: Response;
      try {
        response = await fetch(config.url, {
          method: 'POST',
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
          headers: {
            'content-type': 'application/json',
            'user-agent': 'trusted-devices-webhooks/1',
            'webhook-id': delivery.id,
            'webhook-timestamp': String(Math.floor(sentAt / 1000)),
            'webhook-signature': signer.sign(delivery.id, new Date(sentAt), delivery.payload),
          },
          body: delivery.payload,
        });
        // The body is not read: only the status counts.
        await response.body?.cancel().catch(() => undefined);
      } catch (cause) {
        throw new Error(describeFailure(cause));
      }
      if (response.status < 200 || response.status >= 300) throw new Error(`HTTP ${response.status}`);
      return true;
    },
    async markDone(delivery, _done, now) {
      await repository.markDelivered(delivery.id, delivery.attempts, now);
    },
    async markFailed(delivery, error, retryAt, now) {
      await repository.markFailed(delivery.id, delivery.attempts, now, retryAt, error);
      if (retryAt === null) log.warn({ webhookId: delivery.id, attempts: delivery.attempts, error }, 'webhook given up after its last attempt');
      else log.info({ webhookId: delivery.id, attempt: delivery.attempts, error }, 'webhook attempt failed; will retry');
    },
  });

  /** One bounded batch: claim due rows, deliver them a few at a time. */
  async function runOnce(limit = WEBHOOK_BATCH_SIZE): Promise<SendResult> {
    const { claimed, done, failed, dead } = await runner.runOnce(limit);
    return { claimed, delivered: done.length, failed, dead };
  }

  /**
   * Polls every WEBHOOK_POLL_INTERVAL_MS; a full batch is followed at once by
   * the next. The timer is unref'd: it never keeps the process alive.
   * Returns stop(), which resolves when the batch in flight has finished.
   */
  function start(intervalMs = WEBHOOK_POLL_INTERVAL_MS): () => Promise<void> {
    return runner.start({ name: 'webhook delivery', log, intervalMs, continueAfterFullBatch: true });
  }

  return { runOnce, start, repository };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;
