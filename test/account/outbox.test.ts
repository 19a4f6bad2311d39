/**
 * The mail outbox: retries with backoff while SMTP is down, delivery once it
 * is back, exactly one send per message across two instances (meaningful on
 * PostgreSQL), survival across a restart, and the embedded .eml transport.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { call, createTestApp, databaseKinds, laptop, PASSWORD, signupAndLogin, type TestApp, uniqueEmail } from '../helpers/app.ts';
import { drain, linkToken, smtpTransport, TEST_MAIL_FROM, TestSmtpServer, testSender } from '../helpers/mail.ts';
import { SECOND } from '../../src/platform/clock.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { FIRST_RETRY_MS, MAX_ATTEMPTS, retryDelayMs } from '../../src/features/account/mail.sender.ts';
import { createFileTransport, createMailTransport } from '../../src/platform/mail/transport.ts';

test('backoff doubles from 30 s up to an hour, with at most 10 % jitter', () => {
  assert.equal(retryDelayMs(1, () => 0), FIRST_RETRY_MS);
  assert.equal(retryDelayMs(2, () => 0), 2 * FIRST_RETRY_MS);
  assert.equal(retryDelayMs(5, () => 0), 16 * FIRST_RETRY_MS);
  assert.equal(retryDelayMs(30, () => 0), 60 * 60 * SECOND);
  assert.equal(retryDelayMs(1, () => 1), FIRST_RETRY_MS * 1.1);
});

test('mail configuration: defaults, and bad values named', () => {
  const config = loadConfig({});
  assert.equal(config.publicUrl, 'http://localhost:3000');
  assert.equal(config.smtpUrl, undefined);
  assert.equal(config.mailFrom, 'Trusted Devices <no-reply@localhost>');
  assert.equal(loadConfig({ PUBLIC_URL: 'https://auth.example.com/' }).publicUrl, 'https://auth.example.com');
  assert.throws(() => loadConfig({ PUBLIC_URL: 'javascript:alert(1)', SMTP_URL: 'http://mail', MAIL_FROM: 'not an address' }), (error: Error) => {
    assert.match(error.message, /PUBLIC_URL/);
    assert.match(error.message, /SMTP_URL/);
    assert.match(error.message, /MAIL_FROM/);
    return true;
  });
});

for (const kind of databaseKinds()) {
  describe(`mail outbox (${kind.name})`, () => {
    let t: TestApp;
    // Closed in after(), so a failing assertion never leaves a server holding the process open.
    const servers: TestSmtpServer[] = [];
    const newSmtp = () => {
      const server = new TestSmtpServer();
      servers.push(server);
      return server;
    };
    before(async () => {
      t = await createTestApp(kind);
    });
    after(async () => {
      for (const server of servers) await server.stop();
      await t.close();
    });

    test('SMTP down: the request still succeeds, the sender retries with backoff and delivers once SMTP is back', async () => {
      const smtp = newSmtp();
      await smtp.start();
      await smtp.stop(); // the port is known, nothing listens on it
      const sender = testSender(t, smtpTransport(smtp));

      const email = uniqueEmail('down');
      const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD });
      assert.equal(signup.res.statusCode, 201, 'mail trouble never fails the request');

      const first = await sender.runOnce();
      assert.equal(first.failed >= 1, true);
      const row = await t.db.handle.db.selectFrom('mail_outbox').selectAll().where('user_id', '=', signup.body.data.user_id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'pending');
      assert.equal(row.attempts, 1);
      assert.ok(row.next_attempt_at >= t.clock.now() + FIRST_RETRY_MS);
      assert.equal(row.claimed_by, null);
      assert.ok(row.last_error && row.last_error.length > 0);

      // Not due yet: nothing is tried.
      assert.deepEqual(await sender.runOnce(), { sent: 0, failed: 0, dropped: 0 });

      await smtp.start();
      t.clock.advance(FIRST_RETRY_MS * 1.1 + SECOND);
      await drain(sender);
      const mails = smtp.to(email);
      assert.equal(mails.length, 1);
      assert.equal(mails[0]!.mailId, row.id);
      const sent = await t.db.handle.db.selectFrom('mail_outbox').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
      assert.equal(sent.status, 'sent');
      assert.equal(sent.subject, 'Confirm your email address');
      // And never again.
      t.clock.advance(3600 * SECOND);
      await drain(sender);
      assert.equal(smtp.to(email).length, 1);
      await smtp.stop();
    });

    test(`after ${MAX_ATTEMPTS} failed attempts a mail is marked failed and no longer tried`, async () => {
      const smtp = newSmtp();
      await smtp.start();
      await smtp.stop();
      const sender = testSender(t, smtpTransport(smtp));
      const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email: uniqueEmail('gives-up'), password: PASSWORD });
      for (let i = 0; i < MAX_ATTEMPTS + 2; i++) {
        await sender.runOnce();
        t.clock.advance(2 * 3600 * SECOND);
      }
      const row = await t.db.handle.db.selectFrom('mail_outbox').selectAll().where('user_id', '=', signup.body.data.user_id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts, MAX_ATTEMPTS);
    });

    test('two instances share the outbox: every message is sent exactly once', async () => {
      const smtp = await newSmtp().start();
      const users = [];
      for (let i = 0; i < 24; i++) users.push(await call(t.app, 'POST', '/api/v1/auth/signup', { email: uniqueEmail('pair'), password: PASSWORD }));
      // Two instances: separate senders (own claim ids, own connection pools on PostgreSQL) on one database.
      const second = kind.name === 'postgres' ? await createTestApp(kind, { db: { ...t.db, handle: (await import('../../src/store/connect.ts')).connectDatabase(t.db.url, { searchPath: t.db.searchPath }) } }) : undefined;
      const a = testSender(t, smtpTransport(smtp), 'instance-a');
      const b = testSender(second ?? t, smtpTransport(smtp), 'instance-b');
      for (let round = 0; round < 10; round++) {
        const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
        if (ra.sent + rb.sent === 0) break;
      }
      const ids = users.map((u) => u.body.data.user_id as string);
      const rows = await t.db.handle.db.selectFrom('mail_outbox').select(['id', 'status']).where('user_id', 'in', ids).execute();
      assert.equal(rows.length, 24);
      assert.ok(rows.every((r) => r.status === 'sent'));
      const received = smtp.mails.map((m) => m.mailId).filter((id) => rows.some((r) => r.id === id));
      assert.equal(received.length, 24, 'no message twice');
      assert.equal(new Set(received).size, 24);
      if (second) {
        await second.app.close();
        await second.db.handle.close();
      }
      await smtp.stop();
    });

    test('a claimed row is left alone while its lease runs, and taken over after it lapses (instance died mid-send)', async () => {
      const smtp = await newSmtp().start();
      const email = uniqueEmail('lease');
      await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD });
      const { createOutboxRepository } = await import('../../src/store/mail-outbox.repository.ts');
      const outbox = createOutboxRepository(t.db.handle.db);
      const claimed = await outbox.claimDue('dead-instance', t.clock.now(), 60 * SECOND, 100);
      assert.ok(claimed.length >= 1);
      const sender = testSender(t, smtpTransport(smtp), 'survivor');
      await drain(sender);
      assert.equal(smtp.to(email).length, 0, 'the lease holds');
      t.clock.advance(61 * SECOND);
      await drain(sender);
      assert.equal(smtp.to(email).length, 1, 'taken over after the lease');
      // The dead instance waking up cannot mark it again.
      assert.equal(await outbox.markSent(claimed[0]!.id, 'dead-instance', 'x', t.clock.now()), false);
      await smtp.stop();
    });

    test('without SMTP_URL each message becomes an .eml file in DATA_DIR/outbox/ and a log line with address and subject only', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'td-mail-'));
      try {
        const transport = createMailTransport(loadConfig({ DATA_DIR: dataDir, MAIL_FROM: TEST_MAIL_FROM }), t.app.log);
        assert.equal(transport.kind, 'file');
        const sender = testSender(t, transport);
        const user = await signupAndLogin(t.app, laptop());
        await call(t.app, 'POST', '/api/v1/auth/password/forgot', { email: user.email });
        await drain(sender);
        const dir = join(dataDir, 'outbox');
        assert.equal((await stat(dir)).mode & 0o777, 0o700);
        const files = (await readdir(dir)).filter((f) => f.endsWith('.eml'));
        const mine = [];
        for (const file of files) {
          const parsed = await simpleParser(await readFile(join(dir, file)));
          const to = Array.isArray(parsed.to) ? parsed.to[0]?.text : parsed.to?.text;
          if (to === user.email) mine.push({ file, parsed });
        }
        assert.deepEqual(mine.map((m) => m.parsed.subject).sort(), ['Confirm your email address', 'Reset your password']);
        const reset = mine.find((m) => m.parsed.subject === 'Reset your password')!;
        assert.equal((await stat(join(dir, reset.file))).mode & 0o777, 0o600);
        assert.ok(reset.parsed.text && reset.parsed.html, 'plain-text and HTML parts');
        const token = linkToken({ text: reset.parsed.text } as never);
        // The link in the file works.
        const done = await call(t.app, 'POST', '/api/v1/auth/password/reset', { token, new_password: 'File-Link-Pass-1' });
        assert.equal(done.res.statusCode, 200);
        const lines = t.logs.text.split('\n').filter((l) => l.includes('mail written to the outbox directory') && l.includes(user.email));
        assert.equal(lines.length, 2);
        assert.ok(lines.some((l) => l.includes('"subject":"Reset your password"')));
        assert.ok(!t.logs.text.includes(token), 'the token is in the file only');
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    test('queued mail survives a restart: a new sender (new process) delivers what the old one never sent', async () => {
      const email = uniqueEmail('restart');
      await call(t.app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD });
      // Nothing ran before "the restart"; the row is only in the database.
      const smtp = await newSmtp().start();
      const fresh = testSender(t, smtpTransport(smtp), 'after-restart');
      await drain(fresh);
      assert.equal(smtp.to(email).length, 1);
      await smtp.stop();
    });
  });
}

test('createFileTransport writes one file per outbox id (a retry replaces it)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'td-eml-'));
  try {
    const logs: unknown[] = [];
    const log = { info: (o: unknown) => logs.push(o) } as never;
    const transport = createFileTransport(dir, TEST_MAIL_FROM, log);
    const mail = { id: 'same-id', to: 'a@example.com', subject: 'Hi', text: 'one', html: '<p>one</p>' };
    await transport.send(mail);
    await transport.send({ ...mail, text: 'two' });
    assert.deepEqual(await readdir(dir), ['same-id.eml']);
    assert.match(await readFile(join(dir, 'same-id.eml'), 'utf8'), /two/);
    assert.deepEqual(logs[0], { mailId: 'same-id', to: 'a@example.com', subject: 'Hi' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('every token kind has its own prefix (a mail link is never mistaken for another token)', async () => {
  const { TOKEN_PREFIX } = await import('../../src/platform/crypto/tokens.ts');
  const prefixes = Object.values(TOKEN_PREFIX);
  assert.equal(new Set(prefixes).size, prefixes.length, JSON.stringify(TOKEN_PREFIX));
});
