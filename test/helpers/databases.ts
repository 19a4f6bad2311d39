/**
 * The storage matrix: every storage test runs on SQLite, and on PostgreSQL
 * too when TEST_DATABASE_URL names one. Each call gets a fresh database
 * (in-memory SQLite, or a new PostgreSQL schema dropped afterwards), so test
 * files can run in parallel.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connectDatabase, type DatabaseHandle } from '../../src/store/connect.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

export interface TestDatabase {
  handle: DatabaseHandle;
  /** The URL and schema another instance would use to share this database. */
  url: string;
  searchPath: string | undefined;
  drop(): Promise<void>;
}

export interface DatabaseKind {
  name: 'sqlite' | 'postgres';
  create(): Promise<TestDatabase>;
}

export const postgresUrl = (): string | undefined => {
  const url = process.env.TEST_DATABASE_URL;
  return url && /^postgres(ql)?:\/\//.test(url) ? url : undefined;
};

const sqlite: DatabaseKind = {
  name: 'sqlite',
  async create() {
    const handle = connectDatabase('sqlite::memory:');
    await migrateToLatest(handle.db);
    return { handle, url: 'sqlite::memory:', searchPath: undefined, drop: () => handle.close() };
  },
};

function postgres(url: string): DatabaseKind {
  return {
    name: 'postgres',
    async create() {
      const schema = `t_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`create schema ${schema}`);
      await admin.end();
      // Migrations of parallel test files queue on one advisory lock: give them time.
      const handle = connectDatabase(url, { searchPath: schema, poolSize: 10, statementTimeoutMs: 60_000 });
      try {
        await migrateWhileOthersDropSchemas(handle.db);
      } catch (error) {
        await handle.close().catch(() => undefined);
        await dropSchema(url, schema);
        throw error;
      }
      return {
        handle,
        url,
        searchPath: schema,
        async drop() {
          await handle.close().catch(() => undefined);
          await dropSchema(url, schema);
        },
      };
    },
  };
}

/**
 * Kysely's migrator asks whether its table exists by listing the tables and
 * columns of every schema, and PostgreSQL fails that catalog read when another
 * test file drops its own schema at that moment: 3F000 "schema t_… does not
 * exist", or 42703/42P01 naming one of that schema's columns or tables. A
 * failed run changed nothing (PostgreSQL migrates in one transaction): try
 * again.
 */
const CONCURRENT_DROP = new Set(['3F000', '42703', '42P01']);
async function migrateWhileOthersDropSchemas(db: DatabaseHandle['db']): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await migrateToLatest(db);
      return;
    } catch (error) {
      if (!CONCURRENT_DROP.has(String((error as { code?: string }).code)) || attempt >= 5) throw error;
    }
  }
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`drop schema if exists ${schema} cascade`);
  await client.end();
}

export function databaseKinds(): DatabaseKind[] {
  const url = postgresUrl();
  return url ? [sqlite, postgres(url)] : [sqlite];
}
