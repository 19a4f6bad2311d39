/**
 * The outbox runner's sequences (src/platform/outbox-runner.ts), used by the
 * Shared Signals sender so that one stream's SETs reach its receiver in the
 * order they were written: rows of one sequence are attempted one after the
 * other in the claim's order, never two at once; different sequences run in
 * parallel; after a failed attempt the rest of its sequence is released
 * (not attempted, due with the retry); a row whose turn comes too late for
 * its lease is released, due at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/platform/clock.ts';
import { createOutboxRunner } from '../../src/platform/outbox-runner.ts';

interface Row {
  id: string;
  attempts: number;
  key: string;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 2));

function harness(rows: Row[], failing: Set<string> = new Set(), options: { maxAttemptMs?: number; onDeliver?: (row: Row) => void } = {}) {
  const clock = new ManualClock(1_000_000);
  const started: string[] = [];
  const inFlight = new Map<string, number>();
  let overlapped = false;
  let parallel = 0;
  let maxParallel = 0;
  const released: Array<[string, number]> = [];
  const failed: Array<[string, number | null]> = [];
  const runner = createOutboxRunner<Row, string>({
    clock,
    leaseMs: 60_000,
    batchSize: 50,
    maxAttempts: 5,
    backoff: { firstMs: 5_000, capMs: 60_000, jitter: 0 },
    concurrency: 4,
    sequenceOf: (row) => row.key,
    ...(options.maxAttemptMs !== undefined ? { maxAttemptMs: options.maxAttemptMs } : {}),
    claimDue: async () => rows,
    async deliver(row) {
      started.push(row.id);
      options.onDeliver?.(row);
      const n = (inFlight.get(row.key) ?? 0) + 1;
      inFlight.set(row.key, n);
      if (n > 1) overlapped = true;
      parallel += 1;
      maxParallel = Math.max(maxParallel, parallel);
      // Later rows answer sooner: without sequences they would finish (and overtake) first.
      await tick();
      await tick();
      inFlight.set(row.key, n - 1);
      parallel -= 1;
      if (failing.has(row.id)) throw new Error('HTTP 503');
      return row.id;
    },
    async markDone() {},
    async markFailed(row, _error, retryAt) {
      failed.push([row.id, retryAt]);
    },
    async release(row, dueAt) {
      released.push([row.id, dueAt]);
    },
  });
  return { runner, clock, started, released, failed, overlapped: () => overlapped, maxParallel: () => maxParallel };
}

describe('outbox runner sequences', () => {
  test("one sequence's rows go one after another in the claim's order; different sequences go in parallel", async () => {
    const rows = ['a1', 'b1', 'a2', 'a3', 'b2', 'c1'].map((id) => ({ id, attempts: 1, key: id[0]! }));
    const h = harness(rows);
    const result = await h.runner.runOnce();
    assert.equal(result.claimed, 6);
    assert.equal(h.overlapped(), false, 'never two rows of one sequence in flight');
    assert.ok(h.maxParallel() > 1, 'sequences run in parallel');
    assert.deepEqual(result.done.filter((id) => id.startsWith('a')), ['a1', 'a2', 'a3'], 'finished in order');
    assert.deepEqual(result.done.filter((id) => id.startsWith('b')), ['b1', 'b2']);
  });

  test('after a failed attempt the rest of its sequence is released, due with the retry, and not attempted; other sequences go on', async () => {
    const rows = ['a1', 'a2', 'a3', 'b1', 'b2'].map((id) => ({ id, attempts: 1, key: id[0]! }));
    const h = harness(rows, new Set(['a1']));
    const result = await h.runner.runOnce();
    assert.deepEqual(h.failed, [['a1', 1_000_000 + 5_000]]);
    assert.deepEqual(h.released, [['a2', 1_005_000], ['a3', 1_005_000]]);
    assert.equal(h.started.includes('a2') || h.started.includes('a3'), false, 'not attempted');
    assert.deepEqual(result.done.sort(), ['b1', 'b2']);
  });

  test("a row whose turn comes when its lease could end during the attempt is released, due at once", async () => {
    const rows = ['a1', 'a2', 'a3'].map((id) => ({ id, attempts: 1, key: 'a' }));
    // Each attempt takes 25 s of the 60 s lease; an attempt may take 40 s: only rows started within the first 20 s go.
    let h: ReturnType<typeof harness>;
    h = harness(rows, new Set(), { maxAttemptMs: 40_000, onDeliver: () => h.clock.advance(25_000) });
    const result = await h.runner.runOnce();
    assert.deepEqual(result.done, ['a1']);
    assert.deepEqual(h.released, [['a2', 1_025_000], ['a3', 1_025_000]]);
  });
});
