/**
 * Session activity: `last_active_at` (docs/sessions.md, "updated at most once a
 * minute"), written behind the request instead of on it.
 *
 * Why: the bearer check runs on every authenticated request, and a session's
 * first request in each minute used to UPDATE its row on the request path. At
 * a million devices that write was the most expensive thing a list request
 * could do (a write transaction: on SQLite a 16 KiB WAL frame plus a share of
 * the checkpoints, on PostgreSQL a round trip and a new row version), ~150 µs
 * per request on average in the benchmark (docs/performance.md). Now the check
 * only records the time in memory, and a flusher writes what was recorded,
 * at most FLUSH_DELAY_MS later, in bounded batches of one statement each.
 *
 * Lifetimes and storage: an entry lives in this process until the next flush
 * (≤ FLUSH_DELAY_MS, plus however long a slow database takes); at most
 * MAX_PENDING entries are held, beyond that a record is dropped (that session's
 * next request records it again: its last_active_at only lags). The app's
 * onClose flushes what is left, so a graceful stop loses nothing; a crash
 * loses at most the last second of activity times.
 *
 * Threats: none to access. Liveness is decided by ended_at, expires_at and
 * idle_expires_at, which this never writes; the flush's UPDATE only matches
 * rows with `ended_at IS NULL` (an ended session is not written to) and only
 * moves the time forward. A failed flush is logged and dropped, never retried
 * in a loop: activity times are informative, and a storage outage must not
 * grow this map.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';

/** Longest a recorded time waits in memory before it is written. */
export const FLUSH_DELAY_MS = 1_000;
/** Sessions written per statement (the flush yields to the event loop between statements). */
export const FLUSH_BATCH_SIZE = 100;
/** Most sessions held in memory at once (≈ 100 bytes each). */
export const MAX_PENDING = 50_000;

export interface ActivityStore {
  /** Moves last_active_at to each given time where that is at least `everyMs` later; one statement for the batch. */
  touchMany(entries: ReadonlyArray<readonly [sessionId: string, at: number]>, everyMs: number): Promise<void>;
}

export interface ActivityRecorder {
  /** Notes that a session was used at `at` (epoch ms); written within FLUSH_DELAY_MS. */
  record(sessionId: string, at: number): void;
  /** A recorded time not written yet, so this process's own reads are never behind its writes. */
  pending(sessionId: string): number | undefined;
  /** Writes everything recorded so far (batch after batch); resolves when done. */
  flush(): Promise<void>;
}

export function createActivityRecorder(options: {
  store: ActivityStore;
  log: FastifyBaseLogger;
  /** The resolution of last_active_at: a stored time is only replaced by one at least this much later. */
  resolutionMs: number;
  flushDelayMs?: number;
  batchSize?: number;
  maxPending?: number;
}): ActivityRecorder {
  const { log } = options;
  const flushDelayMs = options.flushDelayMs ?? FLUSH_DELAY_MS;
  const batchSize = options.batchSize ?? FLUSH_BATCH_SIZE;
  const maxPending = options.maxPending ?? MAX_PENDING;

  let recorded = new Map<string, number>();
  // What the running flush is writing: still "pending" for readers until written.
  let writing = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const schedule = () => {
    if (timer !== undefined || running !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, flushDelayMs);
    // A pending write never keeps a process alive: onClose flushes it.
    timer.unref();
  };

  async function writeAll(): Promise<void> {
    while (recorded.size > 0) {
      writing = recorded;
      recorded = new Map();
      const entries = [...writing];
      for (let start = 0; start < entries.length; start += batchSize) {
        if (start > 0) await yieldToEventLoop();
        try {
          await options.store.touchMany(entries.slice(start, start + batchSize), options.resolutionMs);
        } catch (error) {
          // Storage is failing: the rest of this round goes too (one line in the log, and a stop does not wait out a timeout per batch).
          log.warn({ err: error, sessions: entries.length - start }, 'could not write session activity; dropped');
          break;
        }
      }
      writing = new Map();
    }
  }

  function flush(): Promise<void> {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    // One flush at a time; a caller that arrives during one waits for it and whatever was recorded meanwhile.
    running ??= writeAll().finally(() => {
      running = undefined;
      if (recorded.size > 0) schedule();
    });
    return running;
  }

  return {
    record(sessionId, at) {
      // The bound counts what a running flush still holds too.
      if (recorded.size + writing.size >= maxPending && !recorded.has(sessionId)) return;
      recorded.set(sessionId, at);
      schedule();
    },
    pending(sessionId) {
      return recorded.get(sessionId) ?? writing.get(sessionId);
    },
    flush,
  };
}
