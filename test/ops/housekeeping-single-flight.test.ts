/**
 * Background housekeeping is single-flight: a run slower than the interval is
 * never joined by the next one (at a million devices, overlapping runs
 * stalled /healthz for seconds), runs do not pile up behind a slow one, a
 * failed run does not end the loop, and stop() waits for the run in progress
 * so that shutdown closes the database after it. The prune step is replaced
 * through the `prune` seam; no database is involved.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { startHousekeeping } from '../../src/app/housekeeping.ts';

const warnings: unknown[] = [];
const log = { debug: () => {}, warn: (object: unknown) => warnings.push(object) } as never;
const unused = {} as never;

test('a slow run is never overlapped by the next, and runs do not pile up behind it', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  let starts = 0;
  const RUN_MS = 40;
  const stop = startHousekeeping({
    database: unused,
    config: unused,
    log,
    intervalMs: 5,
    firstDelayMs: 0,
    prune: async () => {
      starts++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(RUN_MS);
      inFlight--;
    },
  });
  const WINDOW_MS = 400;
  await sleep(WINDOW_MS);
  await stop();
  assert.equal(maxInFlight, 1, 'at most one run at a time');
  assert.equal(inFlight, 0, 'stop() returned after the run in progress had finished');
  assert.ok(starts >= 2, `the loop goes on after a run (${starts} runs)`);
  // Each run takes RUN_MS plus the 5 ms pause: a timer that fired regardless would have started ~80.
  assert.ok(starts <= Math.ceil(WINDOW_MS / RUN_MS) + 1, `runs did not pile up (${starts} runs in ${WINDOW_MS} ms)`);
  const after = starts;
  await sleep(50);
  assert.equal(starts, after, 'no run starts after stop()');
});

test('stop() waits for the run in progress; a failed run is logged and the loop goes on', async () => {
  let release!: () => void;
  let runs = 0;
  let finished = 0;
  const stop = startHousekeeping({
    database: unused,
    config: unused,
    log,
    intervalMs: 5,
    firstDelayMs: 0,
    prune: async () => {
      runs++;
      if (runs === 1) throw new Error('step broke');
      if (runs === 3) await new Promise<void>((resolve) => (release = resolve));
      finished++;
    },
  });
  while (runs < 3) await sleep(2);
  assert.ok(warnings.length >= 1, 'the failed run was logged');
  let stopped = false;
  const stopping = stop().then(() => (stopped = true));
  await sleep(30);
  assert.equal(stopped, false, 'stop() is still waiting for the run in progress');
  release();
  await stopping;
  assert.equal(finished, 2);
  assert.equal(runs, 3, 'nothing ran after stop()');
});
