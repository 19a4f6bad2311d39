/**
 * The webhook sender (SPEC §5.7): delivers the outbox to WEBHOOK_URL.
 *
 * Signing: Standard Webhooks (the `standardwebhooks` package): headers
 * `webhook-id` (the event id, stable across retries), `webhook-timestamp`
 * (Unix seconds of this attempt, from the injected clock) and
 * `webhook-signature` (`v1,` + base64 HMAC-SHA-256 of "id.timestamp.body"
 * under WEBHOOK_SECRET). The body is the stored payload, byte for byte.
 *
 * Delivery: at least once. A background loop (an unref'd timer started by
 * src/app/main.ts, like housekeeping) claims due rows in bounded batches (one
 * conditional UPDATE, a lease per row: src/store/webhook-outbox.repository.ts),
 * POSTs each with a timeout and no redirects, marks 2xx delivered, and
 * schedules anything else again with exponential backoff
 * (BASE · 2^(attempt-1), capped) until WEBHOOK_MAX_ATTEMPTS, after which the
 * row is dead (kept for inspection, logged). The request that caused an
 * event never waits for any of this: it only inserted a row.
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
import type { Database } from '../../store/schema.ts';
import { type ClaimedDelivery, createWebhooksRepository } from '../../store/webhook-outbox.repository.ts';

export const WEBHOOK_BACKOFF_BASE_MS = 30 * SECOND;
export const WEBHOOK_BACKOFF_CAP_MS = 6 * HOUR;
export const WEBHOOK_BATCH_SIZE = 50;
/** Deliveries in flight at once per instance. */
export const WEBHOOK_CONCURRENCY = 8;
export const WEBHOOK_POLL_INTERVAL_MS = SECOND;

/** The wait before attempt `attempt + 1`, after `attempt` failed attempts. */
export const backoffMs = (attempt: number): number => Math.min(WEBHOOK_BACKOFF_BASE_MS * 2 ** (attempt - 1), WEBHOOK_BACKOFF_CAP_MS);

export interface WebhookSenderOptions {
  db: Kysely<Database>;
  config: WebhookConfig;
  clock: Clock;
  log: FastifyBaseLogger;
}

export interface SendResult {
  claimed: number;
  delivered: number;
  failed: number;
  dead: number;
}

export function createWebhookSender(options: WebhookSenderOptions) {
  const { config, clock, log } = options;
  const repository = createWebhooksRepository(options.db);
  const signer = new Webhook(config.secret);
  const timeoutMs = config.timeoutSeconds * SECOND;
  // The lease outlives the attempt (its timeout) with room to write the outcome.
  const leaseMs = timeoutMs + MINUTE;

  async function attempt(delivery: ClaimedDelivery): Promise<'delivered' | 'failed' | 'dead'> {
    const sentAt = clock.now();
    let error: string;
    try {
      const response = await fetch(config.url, {
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
      if (response.status >= 200 && response.status < 300) {
        await repository.markDelivered(delivery.id, delivery.attempts, clock.now());
        return 'delivered';
      }
      error = `HTTP ${response.status}`;
    } catch (cause) {
      error = cause instanceof Error ? (cause.name === 'TimeoutError' ? 'timeout' : `${cause.name}: ${(cause.cause as Error | undefined)?.message ?? cause.message}`) : 'error';
    }
    const now = clock.now();
    const dead = delivery.attempts >= config.maxAttempts;
    await repository.markFailed(delivery.id, delivery.attempts, now, dead ? null : now + backoffMs(delivery.attempts), error);
    if (dead) log.warn({ webhookId: delivery.id, attempts: delivery.attempts, error }, 'webhook given up after its last attempt');
    else log.info({ webhookId: delivery.id, attempt: delivery.attempts, error }, 'webhook attempt failed; will retry');
    return dead ? 'dead' : 'failed';
  }

  /** One bounded batch: claim due rows, deliver them a few at a time. */
  async function runOnce(limit = WEBHOOK_BATCH_SIZE): Promise<SendResult> {
    const claimed = await repository.claimDue(clock.now(), leaseMs, limit);
    const result: SendResult = { claimed: claimed.length, delivered: 0, failed: 0, dead: 0 };
    let next = 0;
    const worker = async () => {
      while (next < claimed.length) {
        const outcome = await attempt(claimed[next++]!);
        result[outcome]++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(WEBHOOK_CONCURRENCY, claimed.length) }, worker));
    return result;
  }

  /**
   * Polls every WEBHOOK_POLL_INTERVAL_MS; a full batch is followed at once by
   * the next. The timer is unref'd: it never keeps the process alive.
   * Returns stop(), which resolves when the batch in flight has finished.
   */
  function start(intervalMs = WEBHOOK_POLL_INTERVAL_MS): () => Promise<void> {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const tick = () => {
      running = runOnce()
        .then((r) => r.claimed === WEBHOOK_BATCH_SIZE)
        .catch((error: unknown) => {
          log.warn({ err: error }, 'webhook delivery run failed');
          return false;
        })
        .then((more) => {
          if (stopped) return;
          timer = setTimeout(tick, more ? 0 : intervalMs);
          timer.unref();
        });
    };
    timer = setTimeout(tick, intervalMs);
    timer.unref();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    };
  }

  return { runOnce, start, repository };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;
