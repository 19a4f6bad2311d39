/**
 * Issue 10, housekeeping: bounded batches (a backlog of 5,000 expired devices
 * is expired in one run, where one statement used to exceed SQLite's
 * bound-variable limit, roll back, and fail the same way every run after),
 * steps that fail independently, and, on SQLite, the query plan of every
 * statement a run issues: each table is reached through an index, never scanned.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { CompiledQuery, sql } from 'kysely';
import { pruneExpired } from '../../src/app/housekeeping.ts';
import type { TrustedDevicesTable } from '../../src/store/schema.ts';
import { databaseKinds } from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);

async function insertUser(db: TestDatabase): Promise<string> {
  const id = randomUUID();
  await db.handle.db.insertInto('users').values({ id, email: `${id}@example.com`, password_hash: 'x', display_name: null, created_at: NOW, updated_at: NOW }).execute();
  return id;
}

function device(userId: string, overrides: Partial<TrustedDevicesTable>): TrustedDevicesTable {
  const id = randomUUID();
  return {
    user_id: userId,
    id,
    status: 'active',
    device_token_hash: `hash-${id}`,
    device_name: 'Laptop',
    fingerprint: 'f',
    components: '{}',
    browser: 'Chrome',
    os: 'macOS',
    device_type: 'desktop',
    user_agent: 'ua',
    ip_address: '192.0.2.1',
    location: null,
    last_ip_address: '192.0.2.1',
    created_at: NOW - 40 * DAY,
    trusted_at: NOW - 40 * DAY,
    last_used_at: NOW - 40 * DAY,
    expires_at: NOW - 10 * DAY,
    granted_by: 'totp',
    granted_by_credential_id: null,
    public_key_jwk: null,
    revoked_at: null,
    ...overrides,
  };
}

async function insertDevices(db: TestDatabase, rows: TrustedDevicesTable[]) {
  for (let i = 0; i < rows.length; i += 100) await db.handle.db.insertInto('trusted_devices').values(rows.slice(i, i + 100)).execute();
}

for (const kind of databaseKinds()) {
  describe(`bounded housekeeping (${kind.name})`, () => {
    test('5,000 devices past expiry are expired in one run, each with one event', async () => {
      const db = await kind.create();
      try {
        const users = await Promise.all(Array.from({ length: 10 }, () => insertUser(db)));
        await insertDevices(db, Array.from({ length: 5000 }, (_, i) => device(users[i % users.length]!, {})));
        const fresh = device(users[0]!, { expires_at: NOW + DAY });
        await insertDevices(db, [fresh]);

        const result = await pruneExpired(db.handle, { eventRetentionDays: 90 }, { now: () => NOW });
        assert.deepEqual(result.failed, []);
        assert.equal(result.devicesExpired, 5000);
        const statuses = await db.handle.db.selectFrom('trusted_devices').select(['status', sql<number>`count(*)`.as('n')]).groupBy('status').execute();
        assert.deepEqual(Object.fromEntries(statuses.map((r) => [r.status, Number(r.n)])), { active: 1, expired: 5000 });
        const events = await db.handle.db.selectFrom('device_events').select(sql<number>`count(*)`.as('n')).where('type', '=', 'expired').executeTakeFirstOrThrow();
        assert.equal(Number(events.n), 5000);
        assert.equal((await pruneExpired(db.handle, { eventRetentionDays: 90 }, { now: () => NOW })).devicesExpired, 0, 'nothing twice');
      } finally {
        await db.drop();
      }
    });

    test('ended devices past the retention are deleted in batches; recent and active ones stay', async () => {
      const db = await kind.create();
      try {
        const user = await insertUser(db);
        const old = Array.from({ length: 7 }, (_, i) =>
          device(user, i % 2 === 0 ? { status: 'revoked', revoked_at: NOW - 100 * DAY, expires_at: NOW + DAY } : { status: 'expired', expires_at: NOW - 100 * DAY }),
        );
        const recent = device(user, { status: 'revoked', revoked_at: NOW - DAY, expires_at: NOW - 95 * DAY });
        const active = device(user, { expires_at: NOW + DAY });
        await insertDevices(db, [...old, recent, active]);
        const result = await pruneExpired(db.handle, { eventRetentionDays: 90 }, { now: () => NOW }, { batchSize: 2 });
        assert.equal(result.devicesDeleted, 7);
        const left = await db.handle.db.selectFrom('trusted_devices').select('id').execute();
        assert.deepEqual(left.map((r) => r.id).sort(), [recent.id, active.id].sort());
      } finally {
        await db.drop();
      }
    });

    test('a failing step is reported and logged; the other steps still run', async () => {
      const db = await kind.create();
      try {
        const user = await insertUser(db);
        await insertDevices(db, [device(user, {})]);
        await sql`drop table mfa_challenges`.execute(db.handle.db);
        const warnings: unknown[] = [];
        const result = await pruneExpired(db.handle, { eventRetentionDays: 90 }, { now: () => NOW }, { log: { warn: (o: unknown) => warnings.push(o) } as never });
        assert.deepEqual(result.failed, ['challenges']);
        assert.equal(result.devicesExpired, 1);
        assert.equal(warnings.length, 1);
      } finally {
        await db.drop();
      }
    });
  });
}

describe('housekeeping query plans (sqlite)', () => {
  test('every statement of a run reaches its table through an index (EXPLAIN QUERY PLAN)', async () => {
    const db = await databaseKinds()[0]!.create();
    try {
      const user = await insertUser(db);
      await insertDevices(db, [device(user, {}), device(user, { status: 'revoked', revoked_at: NOW - 200 * DAY })]);
      // Every statement the run sends, compiled exactly as sent (with its parameters).
      const sent: CompiledQuery[] = [];
      const executor = db.handle.db.getExecutor();
      const recording = db.handle.db.withPlugin({
        transformQuery: (args) => {
          sent.push(executor.compileQuery(args.node, args.queryId));
          return args.node;
        },
        transformResult: async (args) => args.result,
      });
      const result = await pruneExpired({ ...db.handle, db: recording }, { eventRetentionDays: 90 }, { now: () => NOW });
      assert.ok(result.devicesExpired === 1 && result.devicesDeleted === 1, JSON.stringify(result));

      const statements = sent.filter((q) => /^(update|delete)/i.test(q.sql));
      const tables = new Set(statements.map((q) => /^(?:update|delete from) "(\w+)"/i.exec(q.sql)?.[1]));
      assert.deepEqual([...tables].sort(), ['activation_tokens', 'device_challenges', 'device_events', 'email_tokens', 'mfa_challenges', 'refresh_tokens', 'retired_device_tokens', 'sessions', 'ssf_outbox', 'trusted_devices', 'webauthn_challenges', 'webhook_outbox']);
      for (const query of statements) {
        const rows = (await db.handle.db.executeQuery(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]))).rows as Array<{ detail: string }>;
        const plan = rows.map((r) => r.detail);
        assert.ok(plan.length > 0, query.sql);
        for (const step of plan) {
          // "SCAN t" (or "SCAN t USING COVERING INDEX i") reads every row; SEARCH is a lookup or a range.
          assert.doesNotMatch(step, /^SCAN /, `${query.sql}\n  ${plan.join(' | ')}`);
        }
        assert.ok(plan.some((step) => /^SEARCH \w+ USING (COVERING )?INDEX/.test(step)), plan.join(' | '));
      }
      // The session expiry (its subquery and its UPDATE) uses the partial index of migration 016.
      const expiry = statements.find((q) => q.sql.includes('idle_timeout'));
      assert.ok(expiry, 'the session expiry was sent');
      const expiryPlan = (await db.handle.db.executeQuery(CompiledQuery.raw(`explain query plan ${expiry.sql}`, [...expiry.parameters]))).rows as Array<{ detail: string }>;
      assert.ok(expiryPlan.some((r) => r.detail.includes('sessions_idle_live')), JSON.stringify(expiryPlan));
      // The ended-device delete uses the index of migration 003.
      const ended = statements.find((q) => q.sql.includes('coalesce'));
      assert.ok(ended, 'the ended-device delete was sent');
      const endedPlan = (await db.handle.db.executeQuery(CompiledQuery.raw(`explain query plan ${ended.sql}`, [...ended.parameters]))).rows as Array<{ detail: string }>;
      assert.ok(endedPlan.some((r) => r.detail.includes('trusted_devices_ended')), JSON.stringify(endedPlan));
    } finally {
      await db.drop();
    }
  });
});
