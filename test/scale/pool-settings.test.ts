/**
 * Issue 4: DATABASE_POOL_SIZE and DATABASE_STATEMENT_TIMEOUT_MS reach the
 * PostgreSQL pool (src/app/main.ts passes them to connectDatabase): the server
 * enforces the timeout, and the service never holds more sessions than the
 * pool size, counted by its application_name in pg_stat_activity.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/platform/config.ts';
import { connectDatabase } from '../../src/store/connect.ts';
import { isStorageUnavailable } from '../../src/platform/storage-errors.ts';
import { postgresUrl } from '../helpers/databases.ts';

const url = postgresUrl();

if (!url) {
  test('PostgreSQL pool settings', (t) => t.skip('TEST_DATABASE_URL does not name PostgreSQL: pool settings tests NOT run'));
} else {
  describe('PostgreSQL pool settings', () => {
    const config = loadConfig({ DATABASE_URL: url, DATABASE_POOL_SIZE: '3', DATABASE_STATEMENT_TIMEOUT_MS: '200' });

    test('the statement timeout is the server\'s; a statement over it is cancelled as "unavailable" (503)', async () => {
      const handle = connectDatabase(url, { poolSize: config.databasePoolSize, statementTimeoutMs: config.databaseStatementTimeoutMs });
      try {
        const { rows } = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(handle.db);
        assert.equal(rows[0]!.statement_timeout, '200ms');
        const slow = await sql`select pg_sleep(1)`.execute(handle.db).then(() => undefined, (error: unknown) => error);
        assert.equal((slow as { code?: string }).code, '57014');
        assert.ok(isStorageUnavailable(slow));
      } finally {
        await handle.close();
      }
    });

    test('the pool never opens more sessions than its size', async () => {
      const applicationName = `td-pool-${randomBytes(6).toString('hex')}`;
      const handle = connectDatabase(url, { poolSize: config.databasePoolSize, statementTimeoutMs: 5000, applicationName });
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        const sessions = async () =>
          Number((await admin.query('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName])).rows[0].n);
        // Nine statements of 0.3 s on a pool of three: sample pg_stat_activity until they are done.
        // (No fixed sleep: on a loaded machine the pool may take longer than a few ms to fill.)
        let done = false;
        const work = Promise.all(Array.from({ length: 9 }, () => sql`select pg_sleep(0.3)`.execute(handle.db))).finally(() => (done = true));
        let most = 0;
        while (!done) {
          most = Math.max(most, await sessions());
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await work;
        assert.equal(most, 3, 'the pool filled to its size and never beyond');
        assert.equal(await sessions(), 3, 'idle sessions are kept for reuse, not multiplied');
      } finally {
        await handle.close();
        await admin.end();
      }
    });
  });
}
