import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pruneExpired } from '../../src/app/housekeeping.ts';
import { call, createTestApp, databaseKinds, enableMfa, laptop, loginWithMfa, signupAndLogin, type TestApp, trustDevice } from '../helpers/app.ts';

const DAY = 86_400_000;

for (const kind of databaseKinds()) {
  describe(`housekeeping (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, { env: { EVENT_RETENTION_DAYS: '90' } });
    });
    after(() => t.close());

    test('expires devices past their lifetime (with an event) and deletes what is spent', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const { device } = await trustDevice(t, user, laptop());
      await loginWithMfa(t, user, laptop()); // leaves an unused activation token and a used challenge
      const db = t.db.handle.db;
      const count = async (table: 'activation_tokens' | 'mfa_challenges' | 'device_events') =>
        (await db.selectFrom(table).select('id').where('user_id', '=', user.userId).execute()).length;
      assert.ok((await count('activation_tokens')) >= 2);

      const clock = { now: () => t.clock.now() + 31 * DAY };
      const first = await pruneExpired(t.db.handle, { eventRetentionDays: 90 }, clock);
      assert.ok(first.devicesExpired >= 1);
      assert.ok(first.activationTokens >= 2);
      assert.ok(first.challenges >= 2);
      const row = await db.selectFrom('trusted_devices').select('status').where('id', '=', device.id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'expired');
      const expiredEvents = await db.selectFrom('device_events').select('type').where('device_id', '=', device.id).where('type', '=', 'expired').execute();
      assert.equal(expiredEvents.length, 1);
      assert.equal(await count('activation_tokens'), 0);
      assert.equal(await count('mfa_challenges'), 0);

      // Running again changes nothing new; past the retention, ended devices and old events go.
      assert.equal((await pruneExpired(t.db.handle, { eventRetentionDays: 90 }, clock)).devicesExpired, 0);
      const later = { now: () => t.clock.now() + 200 * DAY };
      const last = await pruneExpired(t.db.handle, { eventRetentionDays: 90 }, later);
      assert.ok(last.devicesDeleted >= 1);
      assert.ok(last.events >= 1);
      assert.equal(await count('device_events'), 0);
    });

    test('an unexpired device, a fresh activation token and recent events are kept', async () => {
      const user = await signupAndLogin(t.app, laptop());
      await enableMfa(t, user);
      const { accessToken } = await trustDevice(t, user, laptop());
      await loginWithMfa(t, user, laptop());
      await pruneExpired(t.db.handle, { eventRetentionDays: 90 }, t.clock);
      const list = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: accessToken });
      assert.equal(list.body.data.total_count, 1);
      const pending = await t.db.handle.db.selectFrom('activation_tokens').select('id').where('user_id', '=', user.userId).where('consumed_at', 'is', null).execute();
      assert.equal(pending.length, 1);
    });
  });
}

test('npm run prune / migrate work as commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'td-cli-'));
  try {
    const env = { ...process.env, DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, DATA_DIR: dir };
    const migrate = execFileSync(process.execPath, ['--import', 'tsx', 'src/app/cli.ts', 'migrate'], { env, encoding: 'utf8' });
    assert.match(migrate, /Applied: 001_initial/);
    assert.match(execFileSync(process.execPath, ['--import', 'tsx', 'src/app/cli.ts', 'migrate'], { env, encoding: 'utf8' }), /Already up to date/);
    const prune = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'src/app/cli.ts', 'prune'], { env, encoding: 'utf8' }));
    assert.deepEqual(Object.keys(prune).sort(), ['activationTokens', 'challenges', 'deviceChallenges', 'devicesDeleted', 'devicesExpired', 'emailTokens', 'events', 'failed', 'refreshTokens', 'retiredDeviceTokens', 'sessionsDeleted', 'sessionsExpired', 'ssfOutbox', 'webauthnChallenges', 'webhookOutbox']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
