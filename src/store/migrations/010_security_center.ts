/**
 * The security center (docs/security-center.md).
 *
 * - `location` (JSON text, nullable) on events, sessions, activation tokens
 *   and trusted devices: the approximate location looked up offline when the
 *   row is written (src/platform/geo.ts), so reading a list never loads the
 *   location database.
 * - `device_events.reason` and `mfa_challenges.reason`: why a second factor
 *   was asked (`mfa_reason`); the challenge keeps it until the session opens,
 *   whose `signed_in` event records it. `impossible_travel` events say
 *   `impossible_travel`.
 * - `sessions.fingerprint`: the stable fingerprint of the sign-in, so "has
 *   this account seen this device?" is one indexed read (user_id, fingerprint).
 *   Index (user_id, created_at): the previous sign-in (impossible travel).
 * - `email_tokens.session_id`: a "This wasn't me" link of a new-sign-in alert
 *   ends that session (and the device trusted from it).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('device_events').addColumn('location', 'text').execute();
  await db.schema.alterTable('device_events').addColumn('reason', 'text').execute();
  await db.schema.alterTable('mfa_challenges').addColumn('reason', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('location', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('fingerprint', 'text').execute();
  await db.schema.alterTable('activation_tokens').addColumn('location', 'text').execute();
  await db.schema.alterTable('trusted_devices').addColumn('location', 'text').execute();
  await db.schema.alterTable('email_tokens').addColumn('session_id', 'text').execute();
  await db.schema.createIndex('sessions_user_created').on('sessions').columns(['user_id', 'created_at']).execute();
  await db.schema.createIndex('sessions_user_fingerprint').on('sessions').columns(['user_id', 'fingerprint']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_user_fingerprint').execute();
  await db.schema.dropIndex('sessions_user_created').execute();
  await db.schema.alterTable('email_tokens').dropColumn('session_id').execute();
  await db.schema.alterTable('trusted_devices').dropColumn('location').execute();
  await db.schema.alterTable('activation_tokens').dropColumn('location').execute();
  await db.schema.alterTable('sessions').dropColumn('fingerprint').execute();
  await db.schema.alterTable('sessions').dropColumn('location').execute();
  await db.schema.alterTable('mfa_challenges').dropColumn('reason').execute();
  await db.schema.alterTable('device_events').dropColumn('reason').execute();
  await db.schema.alterTable('device_events').dropColumn('location').execute();
}
