/**
 * Shared Signals (docs/integration.md "Shared Signals") and the outbox gauges
 * of /metrics (docs/operations.md).
 *
 * - `ssf_streams`: one row per event stream a receiver created with its admin
 *   key (`admin_key_id` owns it: a key sees and changes only its own streams).
 *   A push stream keeps the receiver's `endpoint_url` and, encrypted with
 *   DATA_ENCRYPTION_KEY, the `authorization_header` it asked us to send.
 * - `ssf_outbox`: one row per Security Event Token to deliver on one stream,
 *   inserted by history.append in the transaction of the event it reports. Its
 *   id is the SET's `jti`. Push rows are claimed by the outbox runner like the
 *   webhook rows (`next_attempt_at`, `claimed_until`, `attempts`); poll rows
 *   have no `next_attempt_at` and wait until the receiver acknowledges them.
 *   `delivered_at` is set on a 202 (push) or an acknowledgement (poll).
 * - Partial indexes on `created_at` of the rows still waiting in each outbox,
 *   so the backlog gauges (count, oldest) read only the waiting rows.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ssf_streams')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('admin_key_id', 'text', (c) => c.notNull())
    .addColumn('audience', 'text', (c) => c.notNull())
    .addColumn('delivery_method', 'text', (c) => c.notNull())
    .addColumn('endpoint_url', 'text')
    .addColumn('authorization_header', 'text')
    .addColumn('events_requested', 'text', (c) => c.notNull())
    .addColumn('events_delivered', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ssf_streams_owner').on('ssf_streams').columns(['admin_key_id', 'id']).execute();

  await db.schema
    .createTable('ssf_outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('stream_id', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('claimed_until', 'bigint')
    .addColumn('delivered_at', 'bigint')
    .addColumn('dead_at', 'bigint')
    .addColumn('last_error', 'text')
    .execute();
  // Push: due rows, oldest due first (the claim shared with the other outboxes).
  await db.schema.createIndex('ssf_outbox_due').on('ssf_outbox').column('next_attempt_at').execute();
  // Poll: a stream's unacknowledged rows in jti (= time) order; deleting a stream's rows.
  await db.schema.createIndex('ssf_outbox_stream').on('ssf_outbox').columns(['stream_id', 'delivered_at', 'id']).execute();
  // Pruning finds finished rows by time; partial, so the waiting rows (the gauges' read) are never in them.
  await db.schema.createIndex('ssf_outbox_delivered').on('ssf_outbox').column('delivered_at').where(sql<boolean>`delivered_at is not null`).execute();
  await db.schema.createIndex('ssf_outbox_dead').on('ssf_outbox').column('dead_at').where(sql<boolean>`dead_at is not null`).execute();
  await db.schema
    .createIndex('ssf_outbox_waiting')
    .on('ssf_outbox')
    .column('created_at')
    .where(sql<boolean>`delivered_at is null and dead_at is null`)
    .execute();

  // The backlog gauges of the two older outboxes.
  await db.schema.createIndex('webhook_outbox_waiting').on('webhook_outbox').column('created_at').where(sql<boolean>`next_attempt_at is not null`).execute();
  await db.schema.createIndex('mail_outbox_waiting').on('mail_outbox').column('created_at').where(sql<boolean>`status = 'pending'`).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('mail_outbox_waiting').execute();
  await db.schema.dropIndex('webhook_outbox_waiting').execute();
  await db.schema.dropTable('ssf_outbox').execute();
  await db.schema.dropTable('ssf_streams').execute();
}
