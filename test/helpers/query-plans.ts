/**
 * "Every query uses an index at 1,000,000 rows", checked on the statements the
 * service really runs: an SQLite database whose Kysely records every distinct
 * statement with its parameters; afterwards each is explained, and a full scan
 * or an unselective search fails the test.
 *
 * SQLite plans without statistics (no ANALYZE is ever run), so the plan does
 * not depend on how many rows a table holds: what is chosen on an empty
 * database is what runs at a million rows.
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql, SqliteDialect } from 'kysely';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { Database } from '../../src/store/schema.ts';
import type { DatabaseKind } from './databases.ts';

/**
 * Columns that do not narrow a search: a state shared by most rows of every
 * user. An index search on them alone (`ended_at=?` for `ended_at is null`)
 * walks every live row of every user, which is a scan by another name.
 */
const UNSELECTIVE = new Set(['status', 'ended_at', 'consumed_at', 'revoked_at', 'rotated_at', 'used_at', 'outcome']);

/**
 * Whether one line of an SQLite plan reads every row of a table (or every live
 * one). `ownRows` names what the plan itself built (`MATERIALIZE v`,
 * `CO-ROUTINE v`: a VALUES list the statement carries, a subquery): scanning
 * those reads only what the statement holds. Anything else scanned is a
 * table, under its own name or an alias (`SCAN s` for `sessions as s`).
 */
export function readsEveryRow(detail: string, ownRows: ReadonlySet<string> = new Set()): boolean {
  const scan = /^SCAN (\w+)( AS \w+)?$/.exec(detail);
  if (scan) return !ownRows.has(scan[1]!);
  const search = /^SEARCH \w+ .*USING .*INDEX \S+ \((.*)\)$/.exec(detail);
  if (!search) return false;
  // `expires_at>?` (everything not yet expired) is as unselective as a state; `expires_at<?` (the dead ones) is a range worth reading.
  return search[1]!.split(' AND ').every((constraint) => {
    const [, column, operator] = /^(\w+)([=<>]+)/.exec(constraint.trim()) ?? [];
    return column === undefined || UNSELECTIVE.has(column) || operator === '>' || operator === '>=';
  });
}

export interface PlanRecorder {
  /** A database kind for createTestApp: every app built on it records its statements. */
  kind: DatabaseKind;
  db: Kysely<Database>;
  /** Distinct statements run since the migrations, with the parameters of their first run. */
  statements: Map<string, readonly unknown[]>;
  /** The recorded statements that read every row, each with its plan (empty when all is well). */
  fullScans(): string[];
}

export async function recordingSqlite(): Promise<PlanRecorder> {
  const statements = new Map<string, readonly unknown[]>();
  const sqlite = new BetterSqlite3(':memory:');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: sqlite }),
    log: (event) => {
      if (event.level === 'query' && !statements.has(event.query.sql)) statements.set(event.query.sql, event.query.parameters);
    },
  });
  await migrateToLatest(db);
  statements.clear();
  const handle = { db, dialect: 'sqlite' as const, ping: async () => void (await sql`select 1`.execute(db)), close: () => db.destroy() };
  return {
    kind: { name: 'sqlite', create: async () => ({ handle, url: 'sqlite::memory:', searchPath: undefined, drop: () => handle.close() }) },
    db,
    statements,
    fullScans() {
      const scans: string[] = [];
      for (const [text, parameters] of statements) {
        if (!/\b(select|update|delete)\b/i.test(text)) continue;
        const plan = sqlite
          .prepare(`explain query plan ${text}`)
          .all(...parameters.map((p) => (typeof p === 'boolean' ? Number(p) : p))) as Array<{ detail: string }>;
        const details = plan.map((row) => row.detail);
        if (process.env.SHOW_PLANS) console.log(`${text.slice(0, 160)}\n    → ${details.join(' | ')}`);
        const ownRows = new Set(details.flatMap((detail) => /^(?:MATERIALIZE|CO-ROUTINE) (\w+)$/.exec(detail)?.[1] ?? []));
        if (details.some((detail) => readsEveryRow(detail, ownRows))) scans.push(`${text}\n    → ${details.join(' | ')}`);
      }
      return scans;
    },
  };
}
