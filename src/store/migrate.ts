/**
 * Ordered migrations, run at start and by `npm run migrate`. Kysely's
 * Migrator takes a lock (a session advisory lock on PostgreSQL, held until
 * the run ends), so several instances starting at once migrate exactly once.
 */
import { type Kysely, type Migration, Migrator, PostgresAdapter, sql } from 'kysely';
import * as initial from './migrations/001_initial.ts';
import * as sessions from './migrations/002_sessions.ts';
import * as hardening from './migrations/003_hardening.ts';
import * as email from './migrations/004_email.ts';
import * as webauthn from './migrations/005_webauthn.ts';
import * as deviceKeys from './migrations/007_device_keys.ts';
import * as adminWebhooks from './migrations/008_admin_webhooks.ts';
import * as sessionBinding from './migrations/009_session_binding.ts';
import * as stepUp from './migrations/011_step_up.ts';
import * as securityCenter from './migrations/010_security_center.ts';
import * as sharedSignals from './migrations/013_shared_signals.ts';
import * as ssfStatusSubjects from './migrations/014_ssf_status_subjects.ts';
import * as securityHistory from './migrations/015_security_history.ts';
import * as sessionExpiry from './migrations/016_session_expiry.ts';
import type { Database } from './schema.ts';

const migrations: Record<string, Migration> = {
  '001_initial': initial,
  '002_sessions': sessions,
  '003_hardening': hardening,
  '004_email': email,
  '005_webauthn': webauthn,
  '007_device_keys': deviceKeys,
  '008_admin_webhooks': adminWebhooks,
  '009_session_binding': sessionBinding,
  '010_security_center': securityCenter,
  '011_step_up': stepUp,
  '013_shared_signals': sharedSignals,
  '014_ssf_status_subjects': ssfStatusSubjects,
  '015_security_history': securityHistory,
  '016_session_expiry': sessionExpiry,
};

export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  // On PostgreSQL the Migrator must be told the schema: without it, its
  // "does the lock table exist?" check matches the table in any schema, and a
  // second schema on the same database (tests, tenants) is never migrated.
  let migrationTableSchema: string | undefined;
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    migrationTableSchema = rows[0]?.schema;
  }
  const migrator = new Migrator({ db, migrationTableSchema, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
