/**
 * The outbox backlog for the /metrics gauges (src/platform/metrics.ts): per
 * outbox, how many rows wait (counted through the partial index of waiting
 * rows, at most `cap` entries) and when the oldest was written (the first
 * entry of the same index). Waiting: mail `pending`; a webhook or a push SET
 * not yet delivered nor given up; a poll SET not yet acknowledged.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';
import type { OutboxBacklog, OutboxName } from '../platform/metrics.ts';

export function createOutboxMetricsRepository(db: Kysely<Database>) {
  // The literal conditions match the partial indexes of migration 013 (SQLite uses a partial index only for the same terms).
  const waiting = {
    mail: { table: 'mail_outbox', where: sql<boolean>`status = 'pending'` },
    webhooks: { table: 'webhook_outbox', where: sql<boolean>`next_attempt_at is not null` },
    ssf: { table: 'ssf_outbox', where: sql<boolean>`delivered_at is null and dead_at is null` },
  } as const;

  async function one(outbox: OutboxName, cap: number): Promise<OutboxBacklog> {
    const { table, where } = waiting[outbox];
    const untyped = db as unknown as Kysely<any>;
    const counted = await untyped
      .selectFrom(untyped.selectFrom(table).select(sql.lit(1).as('one')).where(where).orderBy('created_at').limit(cap).as('w'))
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirst();
    const oldest = await untyped.selectFrom(table).select('created_at').where(where).orderBy('created_at').limit(1).executeTakeFirst();
    return { pending: Number(counted?.n ?? 0), oldestCreatedAt: oldest === undefined ? null : Number(oldest.created_at) };
  }

  return {
    async backlogs(cap: number): Promise<Record<OutboxName, OutboxBacklog>> {
      return { mail: await one('mail', cap), webhooks: await one('webhooks', cap), ssf: await one('ssf', cap) };
    },
  };
}
