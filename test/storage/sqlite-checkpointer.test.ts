/**
 * WAL checkpoints of a file SQLite database run on a worker thread
 * (src/store/sqlite-checkpointer.ts), never in a commit on the event loop: the
 * request connection has automatic checkpoints off, and committed pages still
 * reach the database file, copied by the worker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { connectDatabase } from '../../src/store/connect.ts';

const dir = mkdtempSync(join(tmpdir(), 'td-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const autocheckpoint = async (handle: ReturnType<typeof connectDatabase>) =>
  Number(Object.values((await sql<Record<string, number>>`pragma wal_autocheckpoint`.execute(handle.db)).rows[0]!)[0]);

describe('SQLite WAL checkpoints off the event loop', () => {
  test('a file database: the request connection never checkpoints, the worker copies committed pages into the file', async () => {
    const path = join(dir, 'file.db');
    const handle = connectDatabase(`sqlite:${path}`);
    try {
      assert.equal(await autocheckpoint(handle), 0, 'commits on the event loop do not checkpoint');
      await sql`create table filler (id integer primary key, body text not null)`.execute(handle.db);
      const sizeBefore = statSync(path).size;
      // ~4 MB in one commit: 250 pages in the -wal file, none in the database file yet.
      await sql`insert into filler (body) select hex(randomblob(8000)) from (with recursive n(i) as (select 1 union all select i + 1 from n where i < 250) select i from n)`.execute(
        handle.db,
      );
      assert.ok(statSync(`${path}-wal`).size > 4_000_000, 'the commit went to the -wal file');
      // Bounded wait for the worker (it checkpoints every second).
      for (let i = 0; i < 50 && statSync(path).size <= sizeBefore + 4_000_000; i++) await sleep(100);
      assert.ok(statSync(path).size > sizeBefore + 4_000_000, `the worker copied the pages into the database file (${statSync(path).size} bytes)`);
    } finally {
      await handle.close();
    }
  });

  test('closing stops the worker: the process is not held, and the data is in the file', async () => {
    const path = join(dir, 'close.db');
    const handle = connectDatabase(`sqlite:${path}`);
    await sql`create table t (v text)`.execute(handle.db);
    await sql`insert into t values ('kept')`.execute(handle.db);
    await handle.close();
    const again = connectDatabase(`sqlite:${path}`);
    try {
      assert.deepEqual((await sql<{ v: string }>`select v from t`.execute(again.db)).rows, [{ v: 'kept' }]);
    } finally {
      await again.close();
    }
  });

  test('an in-memory database has no -wal file and keeps no worker', async () => {
    const handle = connectDatabase('sqlite::memory:');
    try {
      assert.notEqual(await autocheckpoint(handle), 0);
    } finally {
      await handle.close();
    }
  });
});
