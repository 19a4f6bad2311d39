/**
 * Step-up (docs/step-up.md): how and when the person behind a session last
 * authenticated, kept on the session row so that a refreshed access token
 * keeps it and a step-up moves it.
 *
 * - `sessions.auth_time`: epoch ms of the last factor actually performed
 *   (the sign-in, or the latest step-up). Existing sessions: their opening.
 * - `sessions.amr`: the RFC 8176 methods, space-separated (src/platform/authn-methods.ts).
 *   Existing sessions get what their `mfa_method` says; a WebAuthn sign-in
 *   of before this migration is recorded as a hardware key after a password
 *   (the kind of key was not kept).
 *
 * Both are read with the row by primary key (the bearer check, a refresh),
 * so no index is added.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('auth_time', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('sessions').addColumn('amr', 'text', (c) => c.notNull().defaultTo('pwd')).execute();
  await sql`update sessions set auth_time = created_at, amr = case mfa_method
      when 'totp' then 'pwd otp mfa'
      when 'backup_code' then 'pwd otp mfa'
      when 'webauthn' then 'pwd hwk mfa'
      when 'trusted_device' then 'pwd device'
      else 'pwd' end`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('amr').execute();
  await db.schema.alterTable('sessions').dropColumn('auth_time').execute();
}
