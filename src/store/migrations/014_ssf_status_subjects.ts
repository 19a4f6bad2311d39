/**
 * Shared Signals stream status and subjects (docs/integration.md "Shared
 * Signals").
 *
 * - `ssf_streams.status_reason`: the receiver's reason for the stream's
 *   current status (`enabled`, `paused`, `disabled`; the column `status`
 *   existed already), shown back by the status endpoint.
 * - `ssf_removed_subjects`: the users a receiver removed from its stream.
 *   Every stream starts with every user (the transmitter's `default_subjects`
 *   is ALL), so what is stored is the exceptions: one row per (stream, user)
 *   removed, deleted again when the receiver adds the user back. The primary
 *   key serves the stream's own reads and deletes; the index on
 *   (user_id, stream_id) serves the event writer, which asks, for the users
 *   of one event, which streams removed them.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ssf_streams').addColumn('status_reason', 'text').execute();
  await db.schema
    .createTable('ssf_removed_subjects')
    .addColumn('stream_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('ssf_removed_subjects_pk', ['stream_id', 'user_id'])
    .execute();
  await db.schema.createIndex('ssf_removed_subjects_user').on('ssf_removed_subjects').columns(['user_id', 'stream_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ssf_removed_subjects').execute();
  await db.schema.alterTable('ssf_streams').dropColumn('status_reason').execute();
}
