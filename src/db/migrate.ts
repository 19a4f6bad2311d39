/**
 * Ordered migrations, run at start and by `npm run migrate`. Kysely's
 * Migrator takes a lock (a row lock on PostgreSQL), so several instances
 * starting at once migrate exactly once.
 */
import { type Kysely, type Migration, Migrator } from 'kysely';
import * as initial from './migrations/001_initial.ts';
import type { Database } from './schema.ts';

const migrations: Record<string, Migration> = {
  '001_initial': initial,
};

export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
