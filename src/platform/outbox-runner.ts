/**
 * The one outbox runner, behind both the account mail and the webhooks: a
 * request only INSERTs a row; this loop, beside the requests and never inside
 * one, claims due rows in bounded batches, attempts each, and records the
 * outcome. It knows no table and no feature: the caller hands it the claim,
 * the attempt and the two ways of recording an outcome.
 *
 * Lifetimes: a claim is a lease. Claiming a row makes it not due until
 * `now + leaseMs` and counts the attempt, so a row is attempted by one
 * instance at a time; an instance that dies mid-attempt leaves a row that is
 * due again when its lease ends. The lease must outlast one attempt (the
 * caller's timeouts) plus the writing of its outcome; with sequences (rows
 * of one receiver attempted one after the other, for their order) a batch
 * outlasts one attempt, so a row is only started while its lease still
 * covers `maxAttemptMs`, and the rest are released. A failed attempt is due
 * again after an exponential backoff (retryDelayMs), and after `maxAttempts`
 * the row is given up (kept by the caller for the operator).
 *
 * Storage: the rows, their leases and their attempt counts live in the
 * caller's table (src/store/outbox-lease.ts claims both outboxes the same
 * way); this module holds nothing between runs, so a restart loses nothing.
 *
 * Threats:
 * - Double delivery: two instances never hold a row's lease at once, and only
 *   the holder of a live claim writes the outcome (the store's fence). What
 *   remains is the window between a receiver accepting an attempt and its
 *   outcome being written (a crash, a lapsed lease): delivery is at least
 *   once, never exactly once; receivers deduplicate by the row's id.
 * - Lost rows: nothing is removed when an attempt fails or the process dies;
 *   a row leaves the due set only when an outcome is written (done, or given
 *   up after the last attempt).
 * - A slow or hanging receiver holding the service: batches are bounded, the
 *   loop is single-flight (a tick never overlaps the previous one), and the
 *   lease releases whatever a stuck instance had claimed.
 */
import type { Clock } from './clock.ts';
import { type SingleFlightOptions, startSingleFlight } from './single-flight.ts';

/** What the runner needs of a claimed row: its attempt number, counted by the claim (1 on the first attempt). */
export interface LeasedRow {
  id: string;
  attempts: number;
}

export interface BackoffPolicy {
  /** The wait after the first failed attempt; each further failure doubles it. */
  firstMs: number;
  /** The longest wait. */
  capMs: number;
  /** Up to this fraction is added at random, so rows that failed together do not all come back together (0: none). */
  jitter: number;
}

/** The wait before the next attempt, after failed attempt number `attempt` (1-based). */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.capMs, policy.firstMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + policy.jitter * random()));
}

export interface OutboxRunnerOptions<Row extends LeasedRow, Done> {
  /**
   * Claims up to `limit` due rows, each leased until `now + leaseMs` (and its
   * attempt counted), in the order they are to be attempted (a claim's
   * UPDATE … RETURNING has no order of its own: the caller sorts).
   */
  claimDue(now: number, leaseMs: number, limit: number): Promise<Row[]>;
  /** One attempt at one row. A throw is a failed attempt; its message is recorded. */
  deliver(row: Row): Promise<Done>;
  /** Records success; only the holder of the row's claim may. */
  markDone(row: Row, done: Done, now: number): Promise<void>;
  /** Records a failed attempt: due again at `retryAt`, or given up when it is null. */
  markFailed(row: Row, error: string, retryAt: number | null, now: number): Promise<void>;
  /** Queue upkeep after each batch (e.g. deleting old finished rows), bounded like the batch. */
  afterBatch?(now: number): Promise<void>;
  clock: Clock;
  leaseMs: number;
  batchSize: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** Rows (or sequences, with `sequenceOf`) attempted at once within a batch (default 1: one after the other). */
  concurrency?: number;
  /**
   * Rows of one sequence (e.g. one receiver's stream) are attempted one after
   * the other, in the claim's order; different sequences go in parallel (up
   * to `concurrency`). Without it every row is a sequence of its own.
   */
  sequenceOf?(row: Row): string;
  /**
   * Hands back a claimed row that was not attempted, its attempt not counted,
   * due again at `dueAt`: the rest of a sequence after a failed attempt (due
   * with the failed row's retry, so the sequence keeps its order and a
   * failing receiver gets one attempt per batch, not one per row), or a row
   * whose turn came too late in the batch (see `maxAttemptMs`). Without it
   * such rows are attempted anyway.
   */
  release?(row: Row, dueAt: number, now: number): Promise<void>;
  /**
   * The longest one attempt and its outcome take. With sequences a batch can
   * run longer than one attempt: a row is only started while its lease still
   * outlasts this; later ones are released, due at once.
   */
  maxAttemptMs?: number;
  /** Told of every failed attempt (the /metrics counter): `givenUp` when it was the last. */
  onFailure?(givenUp: boolean): void;
  /** What a failed attempt records (default: the error's message, at most 500 characters). */
  errorText?(error: unknown): string;
}

export interface BatchResult<Done> {
  claimed: number;
  /** What each successful attempt returned. */
  done: Done[];
  /** Failed attempts that will be retried. */
  failed: number;
  /** Failed attempts that were the last: given up. */
  dead: number;
}

export interface LoopOptions extends Omit<SingleFlightOptions, 'intervalMs'> {
  intervalMs: number;
  /** Start the next batch at once after a full one (a backlog is worked off without waiting an interval). */
  continueAfterFullBatch?: boolean;
}

const defaultErrorText = (error: unknown): string => (error instanceof Error ? error.message : String(error)).slice(0, 500);

export function createOutboxRunner<Row extends LeasedRow, Done>(options: OutboxRunnerOptions<Row, Done>) {
  const { clock, maxAttempts, backoff } = options;
  const errorText = options.errorText ?? defaultErrorText;

  /** One attempt and its outcome; returns when the row is due again after a failure (undefined: done or given up). */
  async function attempt(row: Row, result: BatchResult<Done>): Promise<number | undefined> {
    let done: Done;
    try {
      done = await options.deliver(row);
    } catch (error) {
      const now = clock.now();
      const last = row.attempts >= maxAttempts;
      const retryAt = last ? null : now + retryDelayMs(row.attempts, backoff);
      await options.markFailed(row, errorText(error), retryAt, now);
      result[last ? 'dead' : 'failed'] += 1;
      options.onFailure?.(last);
      return retryAt ?? undefined;
    }
    // Outside the try: a failure to record success is not a failed delivery. The
    // row stays leased and is attempted again when its lease ends (at least once).
    await options.markDone(row, done, clock.now());
    result.done.push(done);
    return undefined;
  }

  /** The claimed rows as sequences, each in the claim's order; sequences in the order of their first row. */
  function sequencesOf(rows: Row[]): Row[][] {
    if (!options.sequenceOf) return rows.map((row) => [row]);
    const byKey = new Map<string, Row[]>();
    for (const row of rows) {
      const key = options.sequenceOf(row);
      const sequence = byKey.get(key);
      if (sequence) sequence.push(row);
      else byKey.set(key, [row]);
    }
    return [...byKey.values()];
  }

  /** One bounded batch: claim, attempt each row (a few sequences at a time), record the outcomes. */
  async function runOnce(limit = options.batchSize): Promise<BatchResult<Done>> {
    const now = clock.now();
    const rows = await options.claimDue(now, options.leaseMs, limit);
    const result: BatchResult<Done> = { claimed: rows.length, done: [], failed: 0, dead: 0 };
    const sequences = sequencesOf(rows);
    // After this a row's lease could end during its attempt (another instance would take it): released instead.
    const startBy = options.maxAttemptMs === undefined ? Number.POSITIVE_INFINITY : now + options.leaseMs - options.maxAttemptMs;
    let next = 0;
    let firstError: { error: unknown } | undefined;
    // Every worker runs to the end even when one fails, so that the batch (and
    // stop(), which waits for it) is over only when no attempt is in flight.
    const worker = async () => {
      while (next < sequences.length) {
        const sequence = sequences[next++]!;
        let releaseAt: number | undefined;
        for (const row of sequence) {
          try {
            if (options.release && releaseAt === undefined && clock.now() > startBy) releaseAt = clock.now();
            if (options.release && releaseAt !== undefined) await options.release(row, releaseAt, clock.now());
            else releaseAt = await attempt(row, result);
          } catch (error) {
            firstError ??= { error };
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 1, sequences.length) }, worker));
    if (firstError) throw firstError.error;
    await options.afterBatch?.(now);
    return result;
  }

  /** Runs batch after batch until stopped; returns stop(), which resolves once the batch in flight has finished. */
  function start(loop: LoopOptions): () => Promise<void> {
    return startSingleFlight(async () => {
      const result = await runOnce();
      return loop.continueAfterFullBatch === true && result.claimed >= options.batchSize;
    }, loop);
  }

  return { runOnce, start };
}

export type OutboxRunner<Row extends LeasedRow, Done> = ReturnType<typeof createOutboxRunner<Row, Done>>;
