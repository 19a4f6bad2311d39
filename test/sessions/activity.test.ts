/**
 * The write-behind of session activity (src/features/sessions/activity.ts): what is
 * recorded is written, in bounded batches that yield to the event loop, at
 * most once per flush; a failure is dropped, not retried in a loop; memory is
 * bounded. The database side (forward only, ended sessions untouched, on
 * every database) is in sessions.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { type ActivityStore, createActivityRecorder } from '../../src/features/sessions/activity.ts';

type Entry = readonly [string, number];

/** A store whose writes resolve at once (in microtasks, as a fast SQLite statement does) or fail. */
function fakeStore(behaviour: { fail?: boolean } = {}) {
  const calls: Entry[][] = [];
  const store: ActivityStore = {
    async touchMany(entries) {
      calls.push([...entries]);
      if (behaviour.fail) throw new Error('connection reset by peer');
    },
  };
  return { store, calls };
}

const silent = pino({ level: 'silent' });

describe('session activity write-behind', () => {
  test('what is recorded is written once, after the delay, with the newest time per session', async () => {
    const { store, calls } = fakeStore();
    const activity = createActivityRecorder({ store, log: silent, resolutionMs: 60_000, flushDelayMs: 20 });
    activity.record('a', 1);
    activity.record('b', 2);
    activity.record('a', 3);
    assert.equal(calls.length, 0, 'nothing is written on the request path');
    assert.equal(activity.pending('a'), 3);
    // The timer alone writes it (bounded wait, not a timing assertion).
    for (let i = 0; i < 100 && (calls.length === 0 || activity.pending('a') !== undefined); i++) await sleep(5);
    assert.deepEqual(calls, [[['a', 3], ['b', 2]]]);
    assert.equal(activity.pending('a'), undefined, 'written: no longer pending');
    await activity.flush();
    assert.equal(calls.length, 1, 'an empty flush writes nothing');
  });

  test('a flush is bounded batches, and requests are served between them', async () => {
    const { store, calls } = fakeStore();
    const activity = createActivityRecorder({ store, log: silent, resolutionMs: 60_000, flushDelayMs: 60_000, batchSize: 3 });
    for (let i = 0; i < 8; i++) activity.record(`s${i}`, i);
    // Something the event loop should run between two batches (a request, in production).
    const between: number[] = [];
    const watcher = (async () => {
      for (let i = 0; i < 50; i++) {
        between.push(calls.length);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await activity.flush();
    await watcher;
    assert.deepEqual(calls.map((batch) => batch.length), [3, 3, 2]);
    assert.ok(between.includes(1) && between.includes(2), `the event loop ran between batches (saw ${[...new Set(between)].join(',')})`);
  });

  test('reads see a time that is being written, and times recorded during a flush are written by it', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const calls: Entry[][] = [];
    const activity = createActivityRecorder({
      resolutionMs: 60_000,
      store: {
        async touchMany(entries) {
          calls.push([...entries]);
          if (calls.length === 1) await gate;
        },
      },
      log: silent,
      flushDelayMs: 60_000,
    });
    activity.record('a', 1);
    const first = activity.flush();
    assert.equal(activity.pending('a'), 1, 'still pending while its write runs');
    activity.record('b', 2);
    const second = activity.flush();
    open();
    await Promise.all([first, second]);
    assert.deepEqual(calls, [[['a', 1]], [['b', 2]]]);
    assert.equal(activity.pending('a'), undefined);
    assert.equal(activity.pending('b'), undefined);
  });

  test('a failed write drops the rest of its round with one log line, and is not retried', async () => {
    const { store, calls } = fakeStore({ fail: true });
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const activity = createActivityRecorder({ store, log, resolutionMs: 60_000, flushDelayMs: 60_000, batchSize: 1 });
    activity.record('a', 1);
    activity.record('b', 2);
    activity.record('c', 3);
    await activity.flush();
    await activity.flush();
    assert.equal(calls.length, 1, 'storage is failing: the other batches are not tried, nothing is retried');
    assert.equal(activity.pending('b'), undefined);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /could not write session activity/);
    assert.match(lines[0]!, /"sessions":3/);
    assert.doesNotMatch(lines.join(''), /"a"/, 'no session id in the log');
  });

  test('memory is bounded: beyond maxPending a new session is not held (a known one still moves), counting a flush in progress', async () => {
    const { store, calls } = fakeStore();
    const activity = createActivityRecorder({ store, log: silent, resolutionMs: 60_000, flushDelayMs: 60_000, maxPending: 2 });
    activity.record('a', 1);
    activity.record('b', 1);
    activity.record('c', 1);
    activity.record('a', 5);
    assert.equal(activity.pending('c'), undefined);
    await activity.flush();
    assert.deepEqual(calls, [[['a', 5], ['b', 1]]]);

    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const slow = createActivityRecorder({ store: { touchMany: () => gate }, log: silent, resolutionMs: 60_000, flushDelayMs: 60_000, maxPending: 2 });
    slow.record('a', 1);
    slow.record('b', 1);
    const running = slow.flush();
    slow.record('c', 1);
    assert.equal(slow.pending('c'), undefined, 'the two being written still count');
    open();
    await running;
  });
});
