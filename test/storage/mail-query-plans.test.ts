/**
 * Every statement of the account-email flows uses an index (the rule of
 * test/storage/query-plans.test.ts, applied to verification, forgot, reset,
 * "This wasn't me", the mail sender and the pruning of email tokens).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql, SqliteDialect } from 'kysely';
import { createAccountRepository } from '../../src/account/account.repository.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import type { Database } from '../../src/db/schema.ts';
import { call, createTestApp, enableMfa, FIREFOX_WINDOWS, laptop, signupAndLogin, type TestApp, trustDevice } from '../helpers/app.ts';
import type { DatabaseKind } from '../helpers/databases.ts';
import { drain, linkToken, smtpTransport, TestSmtpServer, testSender } from '../helpers/mail.ts';

const UNSELECTIVE = new Set(['status', 'ended_at', 'consumed_at', 'revoked_at', 'rotated_at', 'used_at', 'outcome']);
function readsEveryRow(detail: string): boolean {
  if (/^SCAN \w+( AS \w+)?$/.test(detail)) return true;
  const search = /^SEARCH \w+ .*USING .*INDEX \S+ \((.*)\)$/.exec(detail);
  if (!search) return false;
  return search[1]!.split(' AND ').every((constraint) => {
    const [, column, operator] = /^(\w+)([=<>]+)/.exec(constraint.trim()) ?? [];
    return column === undefined || UNSELECTIVE.has(column) || operator === '>' || operator === '>=';
  });
}

describe('query plans of the account-email statements (sqlite)', () => {
  const statements = new Map<string, readonly unknown[]>();
  let sqlite: BetterSqlite3.Database;
  let t: TestApp;
  let smtp: TestSmtpServer;

  before(async () => {
    sqlite = new BetterSqlite3(':memory:');
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: sqlite }),
      log: (event) => {
        if (event.level === 'query' && !statements.has(event.query.sql)) statements.set(event.query.sql, event.query.parameters);
      },
    });
    await migrateToLatest(db);
    const handle = { db, dialect: 'sqlite' as const, ping: async () => void (await sql`select 1`.execute(db)), close: () => db.destroy() };
    const kind: DatabaseKind = { name: 'sqlite', create: async () => ({ handle, url: 'sqlite::memory:', searchPath: undefined, drop: () => handle.close() }) };
    t = await createTestApp(kind);
    smtp = await new TestSmtpServer().start();
  });
  after(async () => {
    await smtp.stop();
    await t.close();
  });

  test('no statement scans a whole table', async () => {
    const sender = testSender(t, smtpTransport(smtp));
    const user = await signupAndLogin(t.app, laptop());
    await enableMfa(t, user);
    const trusted = await trustDevice(t, user, laptop());
    await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: trusted.deviceToken }) });
    await call(t.app, 'POST', '/api/v1/auth/email/resend', undefined, { token: user.accessToken });
    await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
    await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: 'nobody@example.com' });
    statements.clear();
    await drain(sender);
    const mails = smtp.to(user.email);
    const token = (subject: RegExp) => linkToken(mails.filter((m) => subject.test(m.subject)).at(-1)!);
    await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: token(/Confirm/) });
    await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: token(/Confirm/) }); // used: classified
    await call(t.app, 'POST', '/api/v1/security/report', { token: token(/new device/) });
    await call(t.app, 'POST', '/api/v1/security/report', { token: token(/another browser/) }); // device already revoked
    await call(t.app, 'POST', '/api/v1/auth/password/reset', { token: token(/Reset/), new_password: 'Another-Pass-7' });
    await drain(sender);
    t.clock.advance(30 * 24 * 3600 * 1000);
    await sender.runOnce(); // retention delete
    await createAccountRepository(t.db.handle.db).deleteExpiredTokens(t.clock.now(), 500);
    assert.ok(statements.size > 15, `collected ${statements.size} statements`);

    const scans: string[] = [];
    for (const [text, parameters] of statements) {
      if (!/\b(select|update|delete)\b/i.test(text)) continue;
      const plan = sqlite
        .prepare(`explain query plan ${text}`)
        .all(...(parameters as unknown[]).map((p) => (typeof p === 'boolean' ? Number(p) : p))) as Array<{ detail: string }>;
      const details = plan.map((row) => row.detail);
      if (process.env.SHOW_PLANS) console.log(`${text.slice(0, 160)}\n    → ${details.join(' | ')}`);
      if (details.some(readsEveryRow)) scans.push(`${text}\n    → ${details.join(' | ')}`);
    }
    assert.deepEqual(scans, [], `full table scans:\n${scans.join('\n')}`);
  });
});
