/**
 * Opens the database named by DATABASE_URL: `sqlite:<path>`, `sqlite::memory:`
 * or `postgres(ql)://…`. Returns one Kysely instance for either dialect plus a
 * ping for /readyz. SQLite runs in WAL mode with foreign keys and a busy
 * timeout; its prepared statements are cached by SQL text, so the hot paths
 * parse each statement once per process.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type pg from 'pg';
import type { Database } from './schema.ts';
import { startCheckpointer } from './sqlite-checkpointer.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  poolSize?: number;
  statementTimeoutMs?: number;
  /** PostgreSQL schema to use (tests give each file its own). */
  searchPath?: string;
  /** PostgreSQL application_name (default "trusted-devices"): how operators find these sessions in pg_stat_activity. */
  applicationName?: string;
  /** Called for errors that happen outside a query (idle client dropped, server restart). */
  onBackgroundError?: (error: Error) => void;
}

/**
 * pg is loaded for a PostgreSQL URL only: an embedded SQLite process does not
 * carry its ~1.5 MB of heap (docs/performance.md, "Memory").
 */
let pgModule: typeof pg | undefined;
function loadPg(): typeof pg {
  if (pgModule === undefined) {
    pgModule = createRequire(import.meta.url)('pg') as typeof pg;
    // bigint columns hold epoch milliseconds, well inside Number's safe range.
    pgModule.types.setTypeParser(pgModule.types.builtins.INT8, (value) => Number(value));
  }
  return pgModule;
}

/**
 * The SQLite connection behind a Kysely instance, for the few reads that run on
 * every request (the bearer check's session row, the device list): a
 * repository prepares its own compiled SQL once and runs it without Kysely's
 * executor (connection mutex, promise hops, result wrapping). Only outside a
 * transaction: while a Kysely transaction holds the one connection,
 * `statement()` returns undefined and the caller goes through Kysely, which
 * waits for it — a direct read there would see that transaction's
 * uncommitted writes. Undefined for PostgreSQL.
 */
export interface DirectSqlite {
  statement(text: string): BetterSqlite3.Statement | undefined;
  /**
   * The same, returning rows as arrays of column values (better-sqlite3's raw
   * mode): the caller builds its own objects, ~10 µs cheaper for a 5-row,
   * 17-column read than the driver's per-property object construction
   * (docs/performance.md). A separate statement: raw mode is a property of
   * the statement, and Kysely's (shared) one must keep returning objects.
   */
  rawStatement(text: string): BetterSqlite3.Statement | undefined;
}

// Keyed by the dialect's adapter, which every Kysely instance made from this one
// (withPlugin, withSchema, transactions) shares: a wrapper such as the webhook
// outbox's marker keeps the direct statements without having to pass them on.
const directConnections = new WeakMap<object, DirectSqlite>();

export function directSqlite(db: Kysely<Database>): DirectSqlite | undefined {
  return directConnections.get(db.getExecutor().adapter);
}

export function connectDatabase(url: string, options: ConnectOptions = {}): DatabaseHandle {
  if (url.startsWith('sqlite:')) return connectSqlite(url.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(url)) return connectPostgres(url, options);
  throw new Error('DATABASE_URL must start with sqlite:, postgres:// or postgresql://');
}

function connectSqlite(path: string): DatabaseHandle {
  if (path.trim() === '') throw new Error('DATABASE_URL sqlite: needs a path (or :memory:)');
  const memory = path === ':memory:';
  if (!memory) mkdirSync(dirname(path), { recursive: true });
  const sqlite = new BetterSqlite3(memory ? ':memory:' : path);
  sqlite.pragma('page_size = 16384');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');

  const statements = new Map<string, BetterSqlite3.Statement>();
  const cachedDatabase = {
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = sqlite.prepare(text);
        if (statements.size >= 1000) statements.clear();
        statements.set(text, statement);
      }
      return statement;
    },
    close() {
      statements.clear();
      sqlite.close();
    },
  };

  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachedDatabase as never }) });
  const rawStatements = new Map<string, BetterSqlite3.Statement>();
  directConnections.set(db.getExecutor().adapter, {
    statement: (text) => (sqlite.inTransaction ? undefined : cachedDatabase.prepare(text)),
    rawStatement(text) {
      if (sqlite.inTransaction) return undefined;
      let statement = rawStatements.get(text);
      if (statement === undefined) rawStatements.set(text, (statement = sqlite.prepare(text).raw(true)));
      return statement;
    },
  });
  // A file database checkpoints its WAL on a worker thread, never in a commit on the event loop (src/store/sqlite-checkpointer.ts).
  const checkpointer = memory ? undefined : startCheckpointer(sqlite, path);
  return {
    db,
    dialect: 'sqlite',
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

function connectPostgres(url: string, options: ConnectOptions): DatabaseHandle {
  const pool = new (loadPg().Pool)({
    connectionString: url,
    max: options.poolSize ?? 10,
    statement_timeout: options.statementTimeoutMs ?? 5000,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'trusted-devices',
    ...(options.searchPath ? { options: `-c search_path=${options.searchPath}` } : {}),
  });
  // Without these listeners a dropped connection (server restart,
  // pg_terminate_backend) is an unhandled 'error' event and kills the process.
  // A dying client emits several (the server's FATAL message, then the closed
  // socket) and the pool re-emits an idle client's: each client reports once.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    let reported = false;
    client.on('error', (error) => {
      if (reported) return;
      reported = true;
      options.onBackgroundError?.(error);
    });
  });

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}
