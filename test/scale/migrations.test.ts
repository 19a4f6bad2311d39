/**
 * Issue 4: migrations are safe when several instances start at once, on a
 * schema chosen by search_path, even when other schemas of the same database
 * are already migrated (Kysely's Migrator otherwise mistakes their migration
 * tables for this schema's).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { connectDatabase } from '../../src/store/connect.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { postgresUrl } from '../helpers/databases.ts';

const url = postgresUrl();

test('three instances migrating one fresh PostgreSQL schema at once: all succeed, each migration runs once', async (t) => {
  if (!url) return t.skip('TEST_DATABASE_URL does not name PostgreSQL: concurrent migration test NOT run');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const decoy = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`create schema ${schema}; create schema ${decoy}`);
    const migrated = connectDatabase(url, { searchPath: decoy, poolSize: 1 });
    await migrateToLatest(migrated.db);
    await migrated.close();

    const handles = Array.from({ length: 3 }, () => connectDatabase(url, { searchPath: schema, poolSize: 2 }));
    let applied: string[][];
    try {
      applied = await Promise.all(handles.map((handle) => migrateToLatest(handle.db)));
      assert.deepEqual(await migrateToLatest(handles[0]!.db), [], 'a restart finds nothing to do');
    } finally {
      await Promise.all(handles.map((handle) => handle.close()));
    }

    // One instance applied everything, the others found nothing left to do.
    const appliers = applied.filter((names) => names.length > 0);
    assert.equal(appliers.length, 1, JSON.stringify(applied));
    const { rows: history } = await admin.query(`select name from ${schema}.kysely_migration order by name`);
    assert.deepEqual(history.map((row) => row.name), appliers[0]);
    assert.equal(appliers[0]![0], '001_initial');
    const { rows: tables } = await admin.query('select table_name from information_schema.tables where table_schema = $1', [schema]);
    assert.ok(tables.some((row) => row.table_name === 'trusted_devices'));
  } finally {
    await admin.query(`drop schema if exists ${schema} cascade; drop schema if exists ${decoy} cascade`);
    await admin.end();
  }
});
