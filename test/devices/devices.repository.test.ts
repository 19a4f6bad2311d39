/**
 * The storage contract of the devices repository, on every database: the
 * single-use guarantees must hold in SQL itself, not only because the
 * service happened to read first.
 */
import { createHistory } from '../../src/store/history.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDevicesRepository } from '../../src/store/devices.repository.ts';
import { SYSTEM } from '../../src/store/history.ts';
import { newId } from '../../src/platform/crypto/tokens.ts';
import { databaseKinds, type TestDatabase } from '../helpers/databases.ts';

for (const kind of databaseKinds()) {
  describe(`devices repository (${kind.name})`, () => {
    let db: TestDatabase;
    let repo: ReturnType<typeof createDevicesRepository>;
    const userId = newId();
    const now = 1_800_000_000_000;

    before(async () => {
      db = await kind.create();
      repo = createDevicesRepository(db.handle.db, createHistory({ webhooks: false }));
      await db.handle.db
        .insertInto('users')
        .values({ id: userId, email: `${userId}@example.com`, password_hash: 'x', display_name: null, created_at: now, updated_at: now })
        .execute();
    });
    after(() => db.drop());

    async function activation(expiresAt: number) {
      const id = newId();
      await repo.insertActivation(
        db.handle.db,
        {
          id,
          user_id: userId,
          token_hash: newId().replace(/-/g, '').padEnd(64, '0'),
          fingerprint: 'f',
          components: '{}',
          browser: 'Chrome',
          os: 'macOS',
          device_type: 'desktop',
          user_agent: 'ua',
          ip_address: '127.0.0.1',
          location: null,
          device_name: 'Chrome on macOS',
          created_at: now,
          expires_at: expiresAt,
          consumed_at: null,
          outcome: null,
          session_id: null,
          revoked_at: null,
          granted_by: 'totp',
          granted_by_credential_id: null,
        },
        { userId, deviceId: id, type: 'activation_created', actor: SYSTEM },
      );
      return id;
    }

    test('an activation token is consumed once, even by concurrent transactions', async () => {
      const id = await activation(now + 300_000);
      const wins = await Promise.all(
        Array.from({ length: 20 }, () => repo.transaction((trx) => repo.consumeActivation(trx, id, userId, now, 'activated'))),
      );
      assert.equal(wins.filter(Boolean).length, 1);
      assert.equal(await repo.transaction((trx) => repo.consumeActivation(trx, id, userId, now, 'skipped')), false);
    });

    test('an activation token ended by a security event is never consumed (the UPDATE itself refuses it)', async () => {
      const id = await activation(now + 300_000);
      const ended = await repo.transaction((trx) => repo.revokeActivations(trx, userId, { all: true }, now));
      assert.deepEqual(ended.map((a) => a.id).includes(id), true);
      assert.equal(await repo.transaction((trx) => repo.consumeActivation(trx, id, userId, now, 'activated')), false);
    });

    test('an expired or foreign activation token is never consumed', async () => {
      const expired = await activation(now);
      assert.equal(await repo.transaction((trx) => repo.consumeActivation(trx, expired, userId, now, 'activated')), false);
      const fresh = await activation(now + 1000);
      assert.equal(await repo.transaction((trx) => repo.consumeActivation(trx, fresh, newId(), now, 'activated')), false);
      assert.equal(await repo.transaction((trx) => repo.consumeActivation(trx, fresh, userId, now, 'activated')), true);
    });
  });
}

/**
 * The per-user device queries must be one range of the primary key
 * (user_id, id), never a walk over every user's active devices through the
 * housekeeping index. On SQLite the plan is checked directly; it is what made
 * the list 100× slower at a million devices before the index became partial.
 */
describe('query plans (sqlite)', () => {
  test('per-user device queries use the primary key; housekeeping uses the expiry index', async () => {
    const db = await databaseKinds()[0]!.create();
    try {
      const { sql } = await import('kysely');
      const plan = async (query: string) =>
        (await sql.raw(`explain query plan ${query}`).execute(db.handle.db)).rows.map((r: any) => r.detail as string).join(' | ');
      for (const query of [
        "select id from trusted_devices where user_id = 'u' and status = 'active' and expires_at > 5 order by last_used_at desc",
        "select count(*) from trusted_devices where user_id = 'u' and status = 'active'",
        "update trusted_devices set status = 'revoked' where user_id = 'u' and status = 'active'",
      ]) {
        assert.match(await plan(query), /USING PRIMARY KEY \(user_id=\?\)/, query);
      }
      assert.match(await plan("select id from trusted_devices where status = 'active' and expires_at <= 5"), /trusted_devices_active_expiry/);
    } finally {
      await db.drop();
    }
  });
});
