/**
 * Push delivery of Security Event Tokens (RFC 8935; docs/integration.md
 * "Shared Signals"): the ssf_outbox rows of push streams, delivered by the one
 * outbox runner (src/platform/outbox-runner.ts) from src/app/main.ts, beside
 * the requests and never inside one.
 *
 * Each attempt: the stream's current endpoint_url and authorization header
 * (read per attempt, so a PATCH takes effect on the next one), the SET signed
 * now with the current key, `POST` with `Content-Type: application/secevent+jwt`
 * and `Accept: application/json`, a timeout, no redirects. A 2xx answer is
 * delivered (RFC 8935 asks receivers for 202); anything else, a timeout or a
 * network error is scheduled again with exponential backoff (5 s, doubling, at
 * most 10 min, 10 % jitter) until SSF_MAX_ATTEMPTS, then given up (kept for
 * the operator, counted in /metrics). A receiver that was down gets every SET
 * once it is up: the rows wait in storage, so a restart loses nothing.
 *
 * Order: a stream's SETs go one after the other, in the order they were
 * written (different streams in parallel, up to SSF_CONCURRENCY), so a
 * receiver never has two of one stream's SETs in flight at once. When one
 * fails, the stream's later SETs of the batch are not attempted: they are
 * released, uncounted, due with its retry, and come back behind it. (SETs
 * written after the failure may still overtake the one being retried: the
 * order is kept within a batch, not across retries.)
 *
 * A stream paused or disabled after its row became due: the attempt sends
 * nothing; the row goes back to held (not counted as an attempt) or is
 * dropped. A SET already on the wire when the status changes still arrives.
 *
 * At least once, like the webhooks: a receiver deduplicates by `jti`.
 * Logged: the stream id, the jti, the status or error name; never the SET,
 * the authorization header or a response body.
 */
import type { FastifyBaseLogger } from 'fastify';
import { type Clock, MINUTE, SECOND } from '../../platform/clock.ts';
import type { Encryptor } from '../../platform/crypto/encryption.ts';
import type { SetSigner } from '../../platform/crypto/security-event-tokens.ts';
import { type BackoffPolicy, createOutboxRunner } from '../../platform/outbox-runner.ts';
import { SSF_PUSH, type ClaimedSet, type SsfRepository } from '../../store/ssf.repository.ts';

export const SSF_BACKOFF: BackoffPolicy = { firstMs: 5 * SECOND, capMs: 10 * MINUTE, jitter: 0.1 };
export const SSF_MAX_ATTEMPTS = 30;
export const SSF_BATCH_SIZE = 50;
export const SSF_CONCURRENCY = 8;
export const SSF_TIMEOUT_MS = 10 * SECOND;
/** How often an idle sender looks for due SETs: the bound on how late a revocation reaches a push receiver. */
export const SSF_POLL_INTERVAL_MS = 500;

export interface SsfSenderOptions {
  repository: SsfRepository;
  encryptor: Encryptor;
  signer: SetSigner;
  clock: Clock;
  log: FastifyBaseLogger;
  /** Told of every failed attempt (the /metrics counter). */
  onFailure?: (givenUp: boolean) => void;
}

const describeFailure = (cause: unknown): string =>
  cause instanceof Error ? (cause.name === 'TimeoutError' ? 'timeout' : `${cause.name}: ${(cause.cause as Error | undefined)?.message ?? cause.message}`) : 'error';

export function createSsfSender(options: SsfSenderOptions) {
  const { repository, encryptor, signer, clock, log } = options;

  /** What an attempt came to: sent, or not sent because the stream is paused (held) or disabled (dropped). */
  type Outcome = 'sent' | 'held' | 'dropped';
  const runner = createOutboxRunner<ClaimedSet, Outcome>({
    clock,
    leaseMs: SSF_TIMEOUT_MS + MINUTE,
    batchSize: SSF_BATCH_SIZE,
    concurrency: SSF_CONCURRENCY,
    sequenceOf: (row) => row.stream_id,
    // A stream's SETs go one after another: a batch may outlast one attempt, but no attempt may outlast its lease.
    maxAttemptMs: SSF_TIMEOUT_MS + 30 * SECOND,
    release: (row, dueAt) => repository.release(row.id, row.attempts, dueAt),
    maxAttempts: SSF_MAX_ATTEMPTS,
    backoff: SSF_BACKOFF,
    ...(options.onFailure ? { onFailure: options.onFailure } : {}),
    claimDue: (now, leaseMs, limit) => repository.claimDue(now, leaseMs, limit),
    async deliver(row) {
      const stream = await repository.find(row.stream_id);
      if (!stream || stream.delivery_method !== SSF_PUSH || stream.endpoint_url === null) throw new Error('the stream is no longer a push stream');
      // Paused or disabled since the row was written or claimed: nothing goes out (read per attempt, like the URL).
      if (stream.status === 'paused') return 'held';
      if (stream.status === 'disabled') return 'dropped';
      const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json', 'user-agent': 'trusted-devices-ssf/1' };
      if (stream.authorization_header !== null) headers.authorization = encryptor.decrypt(stream.authorization_header, `ssf:${stream.id}`);
      let response: Response;
      try {
        response = await fetch(stream.endpoint_url, { method: 'POST', redirect: 'manual', signal: AbortSignal.timeout(SSF_TIMEOUT_MS), headers, body: signer.sign(row.payload) });
        await response.body?.cancel().catch(() => undefined);
      } catch (cause) {
        throw new Error(describeFailure(cause));
      }
      if (response.status < 200 || response.status >= 300) throw new Error(`HTTP ${response.status}`);
      return 'sent';
    },
    async markDone(row, outcome, now) {
      if (outcome === 'held') await repository.hold(row.id, row.attempts);
      else if (outcome === 'dropped') await repository.drop(row.id, row.attempts);
      else await repository.markDelivered(row.id, row.attempts, now);
    },
    async markFailed(row, error, retryAt, now) {
      await repository.markFailed(row.id, row.attempts, now, retryAt, error);
      const fields = { streamId: row.stream_id, jti: row.id, attempt: row.attempts, error };
      if (retryAt === null) log.warn(fields, 'security event token given up after its last attempt');
      else log.info(fields, 'security event token push failed; will retry');
    },
  });

  return {
    runOnce: (limit = SSF_BATCH_SIZE) => runner.runOnce(limit),
    /** Runs until stopped (an unref'd timer); returns stop(), which waits for the batch in flight. */
    start(intervalMs = SSF_POLL_INTERVAL_MS): () => Promise<void> {
      return runner.start({ name: 'shared signals delivery', log, intervalMs, continueAfterFullBatch: true });
    },
  };
}

export type SsfSender = ReturnType<typeof createSsfSender>;
