/**
 * Every statement of the account-email flows uses an index (the rule of
 * test/storage/query-plans.test.ts, applied to verification, forgot, reset,
 * "This wasn't me", the mail sender and the pruning of email tokens).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAccountRepository } from '../../src/store/account.repository.ts';
import { call, createTestApp, enableMfa, FIREFOX_WINDOWS, laptop, signupAndLogin, type TestApp, trustDevice } from '../helpers/app.ts';
import { type PlanRecorder, recordingSqlite } from '../helpers/query-plans.ts';
import { drain, linkToken, smtpTransport, TestSmtpServer, testSender } from '../helpers/mail.ts';

describe('query plans of the account-email statements (sqlite)', () => {
  let recorder: PlanRecorder;
  let t: TestApp;
  let smtp: TestSmtpServer;

  before(async () => {
    recorder = await recordingSqlite();
    t = await createTestApp(recorder.kind);
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
    await drain(sender);
    const mails = smtp.to(user.email);
    const token = (subject: RegExp) => linkToken(mails.filter((m) => subject.test(m.subject)).at(-1)!);
    await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: token(/Confirm/) });
    await call(t.app, 'POST', '/api/v1/auth/email/verify', { token: token(/Confirm/) }); // used: classified
    await call(t.app, 'POST', '/api/v1/security/report/details', { token: token(/new device/) });
    await call(t.app, 'POST', '/api/v1/security/report', { token: token(/new device/) });
    await call(t.app, 'POST', '/api/v1/security/report', { token: token(/another browser/) }); // device already revoked
    await call(t.app, 'POST', '/api/v1/auth/password/reset', { token: token(/Reset/), new_password: 'Another-Pass-7' });
    await drain(sender);
    t.clock.advance(30 * 24 * 3600 * 1000);
    await sender.runOnce(); // retention delete
    await createAccountRepository(t.db.handle.db).deleteExpiredTokens(t.clock.now(), 500);
    // The page of a sign-in alert's link reads its session (the run above has only device alerts).
    await createAccountRepository(t.db.handle.db).reportSession(user.userId);
    assert.ok(recorder.statements.size > 15, `collected ${recorder.statements.size} statements`);

    const scans = recorder.fullScans();
    assert.deepEqual(scans, [], `full table scans:\n${scans.join('\n')}`);
  });
});
