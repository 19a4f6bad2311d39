/**
 * WebAuthn (docs/passkeys.md): registered credentials, issued challenges, and the
 * factor that granted each trust (granted_by on activation tokens and
 * trusted devices). Portable like 001: text ids, bigint epoch ms, integer
 * booleans. Existing trust keeps granted_by NULL: which factor granted it
 * was not recorded then, and guessing would be a lie.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webauthn_credentials')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('credential_id', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull())
    .addColumn('transports', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('backed_up', 'integer', (c) => c.notNull())
    .addColumn('discoverable', 'integer')
    .addColumn('aaguid', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .execute();
  // Unique across users: nobody can register a credential id that already belongs to someone.
  await db.schema.createIndex('webauthn_credentials_credential').on('webauthn_credentials').column('credential_id').unique().execute();
  await db.schema.createIndex('webauthn_credentials_user').on('webauthn_credentials').columns(['user_id', 'created_at']).execute();

  await db.schema
    .createTable('webauthn_challenges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('mfa_challenge_id', 'text')
    .addColumn('attempt_hash', 'text')
    .addColumn('fingerprint', 'text')
    .addColumn('challenge_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('consumed_at', 'bigint')
    .execute();
  // Every consume looks the challenge up by its hash (unique: 256 random bits).
  await db.schema.createIndex('webauthn_challenges_challenge').on('webauthn_challenges').column('challenge_hash').unique().execute();
  await db.schema.createIndex('webauthn_challenges_attempt').on('webauthn_challenges').column('attempt_hash').unique().execute();
  await db.schema.createIndex('webauthn_challenges_expiry').on('webauthn_challenges').column('expires_at').execute();
  await db.schema.createIndex('webauthn_challenges_user').on('webauthn_challenges').column('user_id').execute();

  for (const table of ['activation_tokens', 'trusted_devices']) {
    await db.schema.alterTable(table).addColumn('granted_by', 'text').execute();
    await db.schema.alterTable(table).addColumn('granted_by_credential_id', 'text').execute();
  }
  // Removing a credential revokes the trust it granted: found through this index, not a scan.
  await db.schema.createIndex('trusted_devices_granted_by_credential').on('trusted_devices').column('granted_by_credential_id').execute();
  await db.schema.createIndex('activation_tokens_granted_by_credential').on('activation_tokens').column('granted_by_credential_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('activation_tokens_granted_by_credential').ifExists().execute();
  await db.schema.dropIndex('trusted_devices_granted_by_credential').ifExists().execute();
  for (const table of ['activation_tokens', 'trusted_devices']) {
    await db.schema.alterTable(table).dropColumn('granted_by_credential_id').execute();
    await db.schema.alterTable(table).dropColumn('granted_by').execute();
  }
  await db.schema.dropTable('webauthn_challenges').ifExists().execute();
  await db.schema.dropTable('webauthn_credentials').ifExists().execute();
}
