/**
 * Admin API keys and the webhook outbox (docs/admin-and-webhooks.md).
 *
 * - `admin_keys`: one row per key. Only SHA-256(key) is stored (the key is
 *   shown once by `npm run admin -- create-key`). Names are unique forever,
 *   revoked keys included: a name is the actor of events in users' histories
 *   and must keep meaning one key.
 * - `webhook_outbox`: one row per event to deliver, inserted in the event's
 *   own transaction. `next_attempt_at` is null once the row is finished
 *   (delivered or dead), so the sender's "due rows" search is one range of
 *   one index, and finished rows are never in it.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('admin_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('last_used_at', 'bigint')
    .execute();

  await db.schema
    .createTable('webhook_outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('claimed_until', 'bigint')
    .addColumn('delivered_at', 'bigint')
    .addColumn('dead_at', 'bigint')
    .addColumn('last_error', 'text')
    .execute();
  await db.schema.createIndex('webhook_outbox_due').on('webhook_outbox').column('next_attempt_at').execute();
  // Pruning finds finished rows by time.
  await db.schema.createIndex('webhook_outbox_delivered').on('webhook_outbox').column('delivered_at').execute();
  await db.schema.createIndex('webhook_outbox_dead').on('webhook_outbox').column('dead_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_outbox').execute();
  await db.schema.dropTable('admin_keys').execute();
}
