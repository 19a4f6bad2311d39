/**
 * The storage matrix: every storage test runs on SQLite, and on PostgreSQL
 * too when TEST_DATABASE_URL names one. Each call gets a fresh database
 * (in-memory SQLite, or a new PostgreSQL schema dropped afterwards), so test
 * files can run in parallel.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connectDatabase, type DatabaseHandle } from '../../src/db/connect.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';

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
        await migrateWhileOthersDropSchemas(handle.db, schema);
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
 * Kysely's migrator asks whether its table exists by listing the tables of
 * every schema, and PostgreSQL fails that listing with 3F000 ("schema … does
 * not exist") when another test file drops its own schema at that moment.
 * Only a concurrent drop of someone else's schema causes it: try again.
 */
async function migrateWhileOthersDropSchemas(db: DatabaseHandle['db'], schema: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await migrateToLatest(db);
      return;
    } catch (error) {
      const othersSchema = (error as { code?: string }).code === '3F000' && !String((error as Error).message).includes(schema);
      if (!othersSchema || attempt >= 5) throw error;
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
