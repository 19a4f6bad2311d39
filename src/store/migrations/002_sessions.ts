/**
 * Sessions as first-class records (docs/sessions.md).
 *
 * - `sessions`: one row per sign-in. Every access token's `sid` and every
 *   refresh-token family is a session id, so ending a session is one row
 *   update, and every check (bearer, refresh, activation) reads that row.
 * - `refresh_tokens.revoked_at` goes: a refresh token is valid while it is
 *   unrotated, unexpired and its session is live; the session row is the one
 *   truth, so there is no family-wide UPDATE that a rotation could race.
 * - `activation_tokens.session_id` / `revoked_at`: a pending activation knows
 *   the session it was issued from, and a security event can end it (410).
 * - `device_events` names the subject (session id, name at the time), the
 *   cause and the actor.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('device_id', 'text')
    .addColumn('device_name', 'text', (c) => c.notNull())
    .addColumn('browser', 'text', (c) => c.notNull())
    .addColumn('os', 'text', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('ip_address', 'text', (c) => c.notNull())
    .addColumn('user_agent', 'text', (c) => c.notNull())
    .addColumn('mfa_method', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_active_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('idle_expires_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .addColumn('end_cause', 'text')
    .execute();
  // One index serves "the user's sessions" (prefix) and "the sessions opened on a device".
  await db.schema.createIndex('sessions_user_device').on('sessions').columns(['user_id', 'device_id']).execute();
  // Housekeeping finds dead sessions by time. Partial, so that no query for live
  // sessions (`ended_at is null`) is ever tempted to walk every user's live sessions through it.
  await db.schema.createIndex('sessions_ended').on('sessions').column('ended_at').where(sql.ref('ended_at'), 'is not', null).execute();
  await db.schema.createIndex('sessions_expiry').on('sessions').column('expires_at').execute();

  await db.schema.alterTable('refresh_tokens').dropColumn('revoked_at').execute();

  await db.schema.alterTable('activation_tokens').addColumn('session_id', 'text').execute();
  await db.schema.alterTable('activation_tokens').addColumn('revoked_at', 'bigint').execute();
  await db.schema.createIndex('activation_tokens_session').on('activation_tokens').column('session_id').execute();

  for (const column of ['session_id', 'subject_name', 'cause', 'actor_type', 'actor_session_id', 'actor_name']) {
    await db.schema.alterTable('device_events').addColumn(column, 'text').execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['session_id', 'subject_name', 'cause', 'actor_type', 'actor_session_id', 'actor_name']) {
    await db.schema.alterTable('device_events').dropColumn(column).execute();
  }
  await db.schema.dropIndex('activation_tokens_session').execute();
  await db.schema.alterTable('activation_tokens').dropColumn('revoked_at').execute();
  await db.schema.alterTable('activation_tokens').dropColumn('session_id').execute();
  await db.schema.alterTable('refresh_tokens').addColumn('revoked_at', 'bigint').execute();
  await db.schema.dropTable('sessions').execute();
}
