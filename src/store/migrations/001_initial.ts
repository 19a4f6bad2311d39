/**
 * The whole initial schema. Portable by construction: text ids, bigint epoch
 * milliseconds, text JSON, no dialect-only SQL except one storage hint
 * (WITHOUT ROWID on SQLite, so a user's devices sit together on disk in
 * primary-key order (user_id, id); PostgreSQL gets the same composite key).
 */
import { type Kysely, sql, SqliteAdapter, type CreateTableBuilder } from 'kysely';

/** The DeviceDescription columns, shared by activation_tokens and trusted_devices. */
const withDeviceDescription = <T extends string>(table: CreateTableBuilder<T, any>) =>
  table
    .addColumn('device_name', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('components', 'text', (c) => c.notNull())
    .addColumn('browser', 'text', (c) => c.notNull())
    .addColumn('os', 'text', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('user_agent', 'text', (c) => c.notNull())
    .addColumn('ip_address', 'text', (c) => c.notNull());

const clusteredByKey = <T extends string>(db: Kysely<any>, table: CreateTableBuilder<T, any>) =>
  db.getExecutor().adapter instanceof SqliteAdapter ? table.modifyEnd(sql`without rowid`) : table;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('family_id', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('rotated_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
  await db.schema.createIndex('refresh_tokens_user').on('refresh_tokens').column('user_id').execute();
  await db.schema.createIndex('refresh_tokens_expiry').on('refresh_tokens').column('expires_at').execute();

  await db.schema
    .createTable('totp_secrets')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('secret_encrypted', 'text', (c) => c.notNull())
    .addColumn('enabled_at', 'bigint')
    .addColumn('last_used_step', 'bigint')
    .addColumn('setup_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('setup_locked_until', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('backup_codes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('backup_codes_user_hash').on('backup_codes').columns(['user_id', 'code_hash']).execute();

  await db.schema
    .createTable('mfa_challenges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('consumed_at', 'bigint')
    .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('mfa_challenges_expiry').on('mfa_challenges').column('expires_at').execute();
  await db.schema.createIndex('mfa_challenges_user').on('mfa_challenges').column('user_id').execute();

  await db.schema
    .createTable('mfa_lockouts')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('window_started_at', 'bigint', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('locked_until', 'bigint')
    .execute();

  await withDeviceDescription(
    db.schema
      .createTable('activation_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique()),
  )
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('consumed_at', 'bigint')
    .addColumn('outcome', 'text')
    .execute();
  await db.schema.createIndex('activation_tokens_expiry').on('activation_tokens').column('expires_at').execute();
  await db.schema.createIndex('activation_tokens_user').on('activation_tokens').column('user_id').execute();

  await clusteredByKey(
    db,
    withDeviceDescription(
      db.schema
        .createTable('trusted_devices')
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('device_token_hash', 'text', (c) => c.notNull()),
    )
      .addColumn('last_ip_address', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('trusted_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addPrimaryKeyConstraint('trusted_devices_pk', ['user_id', 'id']),
  ).execute();
  await db.schema.createIndex('trusted_devices_token').on('trusted_devices').column('device_token_hash').unique().execute();
  await db.schema.createIndex('trusted_devices_id').on('trusted_devices').column('id').unique().execute();
  // Partial: only housekeeping looks devices up by expiry, and only active ones. A plain
  // (status, expires_at) index tempted the planner into scanning every active device of
  // every user for per-user queries that also say status = 'active'.
  await db.schema
    .createIndex('trusted_devices_active_expiry')
    .on('trusted_devices')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'active')
    .execute();

  await db.schema
    .createTable('device_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('device_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('ip_address', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  // Event ids are UUIDv7, so (user_id, id) is also the time order: one index serves the newest-first cursor.
  await db.schema.createIndex('device_events_user_id').on('device_events').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('device_events_time').on('device_events').column('created_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'device_events',
    'trusted_devices',
    'activation_tokens',
    'mfa_lockouts',
    'mfa_challenges',
    'backup_codes',
    'totp_secrets',
    'refresh_tokens',
    'users',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
