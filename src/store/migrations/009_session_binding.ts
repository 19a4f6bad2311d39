/**
 * Device-bound sessions (docs/sessions.md, "Bound sessions").
 *
 * - `sessions.binding_kind`: 'webcrypto' (a non-extractable WebCrypto P-256
 *   key sent as `session_key` at sign-in), 'dbsc' (registered through the
 *   browser's Device Bound Session Credentials protocol), or null (unbound:
 *   native clients and scripts that send no key).
 * - `sessions.binding_key_jwk`: the public key as a normalised JWK (text),
 *   the one every refresh proof of the session is checked against.
 * - `sessions.binding_thumbprint`: its RFC 7638 SHA-256 thumbprint
 *   (base64url), shown to the user and the admin API instead of the key.
 * - `sessions.dbsc_cookie_hash`, `sessions.dbsc_cookie_expires_at`: the
 *   short-lived bound cookie of a DBSC session, as SHA-256 with its end.
 * - `sessions.end_actor_name`: who ended the session (the name of the
 *   session or admin key that did it), so a device signed out from
 *   elsewhere can be told by whom.
 *
 * All nullable: existing sessions are unbound. Every read of these columns
 * is by the session's primary key (the refresh reads them after finding the
 * refresh token by its unique hash), so no index is added.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('binding_kind', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('binding_key_jwk', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('binding_thumbprint', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('dbsc_cookie_hash', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('dbsc_cookie_expires_at', 'bigint').execute();
  await db.schema.alterTable('sessions').addColumn('end_actor_name', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['end_actor_name', 'dbsc_cookie_expires_at', 'dbsc_cookie_hash', 'binding_thumbprint', 'binding_key_jwk', 'binding_kind']) {
    await db.schema.alterTable('sessions').dropColumn(column).execute();
  }
}
