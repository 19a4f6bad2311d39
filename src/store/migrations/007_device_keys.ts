/**
 * Device-bound keys and device-token rotation (docs/trust-model.md).
 *
 * - `trusted_devices.public_key_jwk`: the device's public ES256 key (a
 *   normalised JWK, text), or null for a device that is not key-bound.
 * - `device_challenges`: proof-of-possession challenges, stored as SHA-256
 *   (the primary key: the lookup and the single-use UPDATE are by hash),
 *   60 s, consumed once; housekeeping deletes expired ones by `expires_at`.
 * - `retired_device_tokens`: every device token a rotation retired, as its
 *   SHA-256 with the time it was retired, kept until the device's trust
 *   lifetime ends; a retired token presented after the grace is a copy.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('trusted_devices').addColumn('public_key_jwk', 'text').execute();

  await db.schema
    .createTable('device_challenges')
    .addColumn('challenge_hash', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('consumed_at', 'bigint')
    .execute();
  await db.schema.createIndex('device_challenges_expiry').on('device_challenges').column('expires_at').execute();

  await db.schema
    .createTable('retired_device_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('retired_device_tokens_expiry').on('retired_device_tokens').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('retired_device_tokens').execute();
  await db.schema.dropTable('device_challenges').execute();
  await db.schema.alterTable('trusted_devices').dropColumn('public_key_jwk').execute();
}
