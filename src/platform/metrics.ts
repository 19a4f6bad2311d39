/**
 * The service's own Prometheus metrics (docs/operations.md), beside the
 * default process metrics and the HTTP histogram of src/app/build-app.ts.
 *
 * - `login_outcomes_total{result}`: one per answered login, by result:
 *   `signed_in` (no second factor enrolled), `bypassed` (a trusted device
 *   skipped the second factor), `mfa_required`, `failed` (wrong email or
 *   password) and `limited` (a rate limit or the lockout answered 429).
 * - `outbox_delivery_failures_total{outbox,outcome}`: failed delivery attempts
 *   of each outbox (`mail`, `webhooks`, `ssf`), `retry` or `given_up`.
 * - `outbox_backlog{outbox}` and `outbox_oldest_age_seconds{outbox}`: rows not
 *   yet delivered (or given up) and the age of the oldest, read from storage
 *   when Prometheus scrapes, so every instance reports the shared backlog.
 *
 * Labels are fixed small sets (the result, the outbox): never a user, an
 * email, a device, an IP or a path parameter, so no scrape reveals who did what
 * and the number of series is bounded.
 *
 * Cost: the backlog is one bounded, indexed read per outbox (at most
 * BACKLOG_COUNT_CAP index entries counted, the oldest row is the first entry of
 * an index: src/store/outbox-metrics.repository.ts), done at most once per
 * BACKLOG_READ_MIN_INTERVAL_MS however often scrapes come; a storage failure
 * leaves the previous values and counts `outbox_backlog_read_errors_total`
 * (the scrape itself still answers).
 */
import { Counter, Gauge, Registry } from 'prom-client';

export type LoginResult = 'signed_in' | 'bypassed' | 'mfa_required' | 'failed' | 'limited';
export const LOGIN_RESULTS: readonly LoginResult[] = ['signed_in', 'bypassed', 'mfa_required', 'failed', 'limited'];
export type OutboxName = 'mail' | 'webhooks' | 'ssf';
export const OUTBOX_NAMES: readonly OutboxName[] = ['mail', 'webhooks', 'ssf'];

/** Larger backlogs are reported as this many: counting is bounded. */
export const BACKLOG_COUNT_CAP = 100_000;
export const BACKLOG_READ_MIN_INTERVAL_MS = 5_000;

export interface OutboxBacklog {
  /** Rows waiting (capped at BACKLOG_COUNT_CAP). */
  pending: number;
  /** created_at of the oldest waiting row (ms), or null when none waits. */
  oldestCreatedAt: number | null;
}

export type BacklogReader = () => Promise<Record<OutboxName, OutboxBacklog>>;

export interface ServiceMetrics {
  readonly registry: Registry;
  loginOutcome(result: LoginResult): void;
  deliveryFailed(outbox: OutboxName, givenUp: boolean): void;
  /** Where the backlog gauges read from (set once by the app, which owns storage). */
  readBacklogsWith(reader: BacklogReader, now: () => number, onError?: (error: unknown) => void): void;
}

export function createServiceMetrics(registry: Registry = new Registry()): ServiceMetrics {
  const logins = new Counter({ name: 'login_outcomes_total', help: 'Answered logins by result', labelNames: ['result'] as const, registers: [registry] });
  const failures = new Counter({
    name: 'outbox_delivery_failures_total',
    help: 'Failed delivery attempts by outbox; outcome retry (due again) or given_up (last attempt)',
    labelNames: ['outbox', 'outcome'] as const,
    registers: [registry],
  });
  const readErrors = new Counter({ name: 'outbox_backlog_read_errors_total', help: 'Scrapes whose outbox backlog could not be read from storage', registers: [registry] });
  // Every series exists from the start at 0, so rates and alerts see the first event.
  for (const result of LOGIN_RESULTS) logins.labels({ result }).inc(0);
  for (const outbox of OUTBOX_NAMES) for (const outcome of ['retry', 'given_up']) failures.labels({ outbox, outcome }).inc(0);

  let reader: { read: BacklogReader; now: () => number; onError: ((error: unknown) => void) | undefined } | undefined;
  let last: { at: number; values: Record<OutboxName, OutboxBacklog> } | undefined;
  let inFlight: Promise<void> | undefined;

  async function refresh(): Promise<void> {
    if (!reader) return;
    const now = reader.now();
    if (last && now - last.at < BACKLOG_READ_MIN_INTERVAL_MS) return;
    // Concurrent scrapes share one read.
    inFlight ??= (async () => {
      try {
        last = { at: now, values: await reader!.read() };
      } catch (error) {
        readErrors.inc();
        reader!.onError?.(error);
      } finally {
        inFlight = undefined;
      }
    })();
    await inFlight;
  }

  new Gauge({
    name: 'outbox_backlog',
    help: `Rows waiting for delivery, by outbox (counted up to ${BACKLOG_COUNT_CAP})`,
    labelNames: ['outbox'] as const,
    registers: [registry],
    async collect() {
      await refresh();
      for (const outbox of OUTBOX_NAMES) this.labels({ outbox }).set(last?.values[outbox].pending ?? 0);
    },
  });
  new Gauge({
    name: 'outbox_oldest_age_seconds',
    help: 'Age of the oldest row waiting for delivery, by outbox (0 when none waits)',
    labelNames: ['outbox'] as const,
    registers: [registry],
    async collect() {
      await refresh();
      for (const outbox of OUTBOX_NAMES) {
        const oldest = last?.values[outbox].oldestCreatedAt ?? null;
        this.labels({ outbox }).set(oldest === null || !last ? 0 : Math.max(0, (reader!.now() - oldest) / 1000));
      }
    },
  });

  return {
    registry,
    loginOutcome: (result) => logins.labels({ result }).inc(),
    deliveryFailed: (outbox, givenUp) => failures.labels({ outbox, outcome: givenUp ? 'given_up' : 'retry' }).inc(),
    readBacklogsWith(read, now, onError) {
      reader = { read, now, onError };
      last = undefined;
    },
  };
}
