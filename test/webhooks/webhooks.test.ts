/**
 * Webhooks (docs/admin-and-webhooks.md): every event is delivered from a
 * durable outbox written in the event's transaction, signed per Standard
 * Webhooks (verified here with the `standardwebhooks` package itself), with
 * retries and exponential backoff, across a restart, one attempt at a time
 * per event across instances, and never inside the request that caused it.
 *
 * The receiver is a real HTTP server on 127.0.0.1 (port 0). Time is a
 * ManualClock: backoff is crossed by moving it, never by waiting. The clock
 * starts at the real time and moves by minutes only, so the signed
 * timestamps stay inside standardwebhooks' 5-minute tolerance.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ManualClock } from '../../src/platform/clock.ts';
import { ConfigError, loadConfig } from '../../src/platform/config.ts';
import { connectDatabase, directSqlite } from '../../src/store/connect.ts';
import { createHistory, SYSTEM } from '../../src/store/history.ts';
import { createWebhooksRepository } from '../../src/store/webhook-outbox.repository.ts';
import { backoffMs, createWebhookSender, WEBHOOK_BATCH_SIZE } from '../../src/features/webhooks/webhooks.service.ts';
import { call, createTestApp, databaseKinds, laptop, signupAndLogin, type TestApp } from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: answers `status` (or holds the request while `hold` is set). */
class Receiver {
  readonly received: Received[] = [];
  status = 200;
  hold = false;
  readonly held: ServerResponse[] = [];
  private server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (this.hold) {
        this.held.push(res);
        return;
      }
      if (this.status >= 200 && this.status < 300) this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(this.status).end();
    });
  });
  url = '';
  async start() {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }
  async close() {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
  /** Each delivery verified with standardwebhooks; returns the payloads. */
  verified(): any[] {
    const wh = new Webhook(SECRET);
    return this.received.map((r) => wh.verify(r.body, r.headers as Record<string, string>));
  }
  ids(): string[] {
    return this.received.map((r) => String(r.headers['webhook-id']));
  }
}

const webhookEnv = (url: string, extra: Record<string, string> = {}) => ({ WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET, ...extra });

function senderFor(t: TestApp, url: string, extra: Record<string, string> = {}, db = t.db.handle.db) {
  const config = loadConfig(webhookEnv(url, extra)).webhook!;
  return createWebhookSender({ db, config, clock: t.clock, log: t.app.log });
}

/** Runs the sender until nothing is due now. */
async function drain(sender: ReturnType<typeof createWebhookSender>) {
  let total = { claimed: 0, delivered: 0, failed: 0, dead: 0 };
  for (;;) {
    const r = await sender.runOnce();
    total = { claimed: total.claimed + r.claimed, delivered: total.delivered + r.delivered, failed: total.failed + r.failed, dead: total.dead + r.dead };
    if (r.claimed === 0) return total;
  }
}

const pending = (t: TestApp) => t.db.handle.db.selectFrom('webhook_outbox').selectAll().where('next_attempt_at', 'is not', null).execute();

test('configuration: WEBHOOK_URL and WEBHOOK_SECRET together, the secret in the whsec_ form', () => {
  assert.equal(loadConfig({}).webhook, undefined);
  assert.deepEqual(loadConfig(webhookEnv('https://hooks.example.com/td')).webhook, { url: 'https://hooks.example.com/td', secret: SECRET, timeoutSeconds: 10, maxAttempts: 16 });
  for (const env of [
    { WEBHOOK_URL: 'https://hooks.example.com/td' },
    { WEBHOOK_SECRET: SECRET },
    webhookEnv('ftp://hooks.example.com'),
    webhookEnv('https://user:pass@hooks.example.com'),
    { WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: randomBytes(32).toString('base64') },
    { WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: `whsec_${randomBytes(8).toString('base64')}` },
    { WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: 'whsec_not base64!' },
  ]) {
    assert.throws(() => loadConfig(env), ConfigError, JSON.stringify(env));
  }
});

for (const kind of databaseKinds()) {
  describe(`webhooks (${kind.name})`, () => {
    let receiver: Receiver;
    before(async () => {
      receiver = await new Receiver().start();
    });
    after(() => receiver.close());

    const fresh = () => {
      receiver.received.length = 0;
      receiver.status = 200;
      receiver.hold = false;
    };

    test('every event is delivered once, signed per Standard Webhooks, with the documented payload and no secret', async () => {
      fresh();
      const t = await createTestApp(kind, { env: webhookEnv(receiver.url) });
      try {
        const user = await signupAndLogin(t.app, laptop());
        await call(t.app, 'DELETE', '/api/v1/sessions', undefined, { token: user.accessToken });
        const events = await t.db.handle.db.selectFrom('device_events').selectAll().where('user_id', '=', user.userId).orderBy('id').execute();
        assert.deepEqual(events.map((e) => e.type), ['signed_in', 'session_revoked']);

        const result = await drain(senderFor(t, receiver.url));
        assert.equal(result.delivered, 2);
        const payloads = receiver.verified();
        assert.deepEqual(receiver.ids(), events.map((e) => e.id), 'webhook-id is the event id');
        assert.deepEqual(payloads.map((p) => p.type), ['session.signed_in', 'session.session_revoked']);
        const revoked = payloads[1];
        assert.deepEqual(Object.keys(revoked).sort(), ['data', 'timestamp', 'type']);
        assert.equal(revoked.data.id, events[1]!.id);
        assert.equal(revoked.data.user_id, user.userId);
        assert.equal(revoked.data.type, 'session_revoked');
        assert.equal(revoked.data.cause, 'user');
        assert.equal(revoked.data.device_name, 'Chrome on macOS');
        assert.equal(revoked.data.actor.type, 'user');
        assert.equal(revoked.timestamp, new Date(events[1]!.created_at).toISOString());
        for (const r of receiver.received) {
          assert.equal(r.headers['content-type'], 'application/json');
          assert.match(String(r.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
          for (const secret of [user.accessToken, user.refreshToken, user.password, SECRET, SECRET.slice(6)]) assert.ok(!r.body.includes(secret));
        }
        // A tampered body or another secret does not verify.
        const one = receiver.received[0]!;
        assert.throws(() => new Webhook(SECRET).verify(one.body.replace('signed_in', 'signed_out'), one.headers as Record<string, string>));
        assert.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(one.body, one.headers as Record<string, string>));
        // Delivered rows are finished: nothing is due, nothing is sent twice.
        assert.deepEqual(await drain(senderFor(t, receiver.url)), { claimed: 0, delivered: 0, failed: 0, dead: 0 });
        assert.deepEqual(await pending(t), []);
      } finally {
        await t.close();
      }
    });

    test('without WEBHOOK_URL no outbox row is written', async () => {
      const t = await createTestApp(kind);
      try {
        await signupAndLogin(t.app, laptop());
        assert.equal((await t.db.handle.db.selectFrom('webhook_outbox').select('id').execute()).length, 0);
      } finally {
        await t.close();
      }
    });

    test('the outbox row commits with its event, or not at all', async () => {
      const t = await createTestApp(kind, { env: webhookEnv(receiver.url) });
      try {
        const user = await signupAndLogin(t.app, laptop());
        const before = (await t.db.handle.db.selectFrom('webhook_outbox').select('id').execute()).length;
        const db = t.db.handle.db;
        const history = createHistory({ webhooks: true });
        await assert.rejects(
          db.transaction().execute(async (trx) => {
            await history.append(trx, [{ userId: user.userId, type: 'revoked_all', actor: SYSTEM }], t.clock.now());
            throw new Error('the change being recorded failed');
          }),
        );
        assert.equal((await t.db.handle.db.selectFrom('webhook_outbox').select('id').execute()).length, before);
        assert.equal((await t.db.handle.db.selectFrom('device_events').select('id').where('type', '=', 'revoked_all').where('user_id', '=', user.userId).execute()).length, 0);
        // Outside a transaction, append opens one for both.
        await history.append(db, [{ userId: user.userId, type: 'revoked_all', actor: SYSTEM }], t.clock.now());
        assert.equal((await t.db.handle.db.selectFrom('webhook_outbox').select('id').execute()).length, before + 1);
      } finally {
        await t.close();
      }
    });

    test('a receiver that is down gets the events when it returns: exponential backoff on the clock', async () => {
      fresh();
      const t = await createTestApp(kind, { env: webhookEnv(receiver.url) });
      try {
        const user = await signupAndLogin(t.app, laptop());
        const sender = senderFor(t, receiver.url);
        receiver.status = 503;
        assert.deepEqual(await sender.runOnce(), { claimed: 1, delivered: 0, failed: 1, dead: 0 });
        let [row] = await pending(t);
        assert.equal(row!.attempts, 1);
        assert.equal(row!.next_attempt_at, t.clock.now() + backoffMs(1));
        assert.equal(row!.last_error, 'HTTP 503');
        assert.equal((await sender.runOnce()).claimed, 0, 'not due before its backoff');

        t.clock.advance(backoffMs(1));
        await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop() });
        assert.deepEqual(await sender.runOnce(), { claimed: 2, delivered: 0, failed: 2, dead: 0 });
        const rows = await pending(t);
        assert.deepEqual(rows.map((r) => r.attempts).sort(), [1, 2]);
        assert.equal(rows.find((r) => r.attempts === 2)!.next_attempt_at, t.clock.now() + backoffMs(2), 'the wait doubles');
        assert.equal(backoffMs(2), 2 * backoffMs(1));

        receiver.status = 200;
        assert.equal((await sender.runOnce()).claimed, 0);
        t.clock.advance(backoffMs(2));
        assert.equal((await drain(sender)).delivered, 2);
        assert.equal(receiver.verified().length, 2);
        assert.equal(new Set(receiver.ids()).size, 2);
        assert.deepEqual(await pending(t), []);
        [row] = await t.db.handle.db.selectFrom('webhook_outbox').selectAll().where('delivered_at', 'is not', null).execute();
        assert.ok(row);
      } finally {
        await t.close();
      }
    });

    test('after WEBHOOK_MAX_ATTEMPTS failures an event is dead: kept, never sent again', async () => {
      fresh();
      const t = await createTestApp(kind, { env: webhookEnv(receiver.url) });
      try {
        await signupAndLogin(t.app, laptop());
        receiver.status = 500;
        const sender = senderFor(t, receiver.url, { WEBHOOK_MAX_ATTEMPTS: '2' });
        assert.equal((await sender.runOnce()).failed, 1);
        t.clock.advance(backoffMs(1));
        assert.deepEqual(await sender.runOnce(), { claimed: 1, delivered: 0, failed: 0, dead: 1 });
        const [row] = await t.db.handle.db.selectFrom('webhook_outbox').selectAll().execute();
        assert.equal(row!.next_attempt_at, null);
        assert.equal(row!.dead_at, t.clock.now());
        receiver.status = 200;
        t.clock.advance(backoffMs(10));
        assert.equal((await sender.runOnce()).claimed, 0);
      } finally {
        await t.close();
      }
    });

    test('retries survive a restart: a second app instance on the same database delivers the outbox', async () => {
      fresh();
      const db = await kind.create();
      const clock = new ManualClock(Date.now());
      try {
        const first = await createTestApp(kind, { db, clock, env: webhookEnv(receiver.url) });
        const user = await signupAndLogin(first.app, laptop());
        receiver.status = 503;
        assert.equal((await senderFor(first, receiver.url).runOnce()).failed, 1);
        // An instance that claims and dies mid-attempt: its lease must run out first.
        await call(first.app, 'DELETE', '/api/v1/sessions', undefined, { token: user.accessToken });
        const orphan = await createWebhooksRepository(db.handle.db).claimDue(clock.now(), 70_000, 10);
        assert.equal(orphan.length, 1);
        await first.close();

        const second = await createTestApp(kind, { db, clock, env: webhookEnv(receiver.url) });
        try {
          receiver.status = 200;
          const sender = senderFor(second, receiver.url);
          assert.equal((await sender.runOnce()).claimed, 0, 'both rows are waiting: one for its backoff, one for its lease');
          clock.advance(backoffMs(1));
          assert.equal((await drain(sender)).delivered, 1);
          clock.advance(70_000 - backoffMs(1));
          assert.equal((await drain(sender)).delivered, 1);
          assert.deepEqual(receiver.verified().map((p) => p.data.type), ['signed_in', 'session_revoked']);
        } finally {
          await second.close();
        }
      } finally {
        await db.drop();
      }
    });

    test('the request that causes an event never waits for its delivery', async () => {
      fresh();
      const t = await createTestApp(kind, { env: webhookEnv(receiver.url, { WEBHOOK_TIMEOUT_SECONDS: '1' }) });
      const sender = senderFor(t, receiver.url, { WEBHOOK_TIMEOUT_SECONDS: '1' });
      const stop = sender.start(5);
      try {
        receiver.hold = true;
        const user = await signupAndLogin(t.app, laptop());
        // Wait until the background sender is stuck inside the receiver.
        while (receiver.held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        // With a delivery hanging, requests that write events still answer.
        const again = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop() });
        assert.equal(again.res.statusCode, 200);
        const ended = await call(t.app, 'DELETE', '/api/v1/sessions', undefined, { token: user.accessToken });
        assert.equal(ended.res.statusCode, 200);
        assert.equal(receiver.received.length, 0, 'nothing was delivered while the request ran');
      } finally {
        await stop();
        receiver.hold = false;
        await t.close();
      }
    });

    if (kind.name === 'postgres') {
      test('two instances, concurrent senders: each event is delivered exactly once', async () => {
        fresh();
        const t = await createTestApp(kind, { env: webhookEnv(receiver.url) });
        const second = connectDatabase(t.db.url, { searchPath: t.db.searchPath, poolSize: 4 });
        try {
          const db = t.db.handle.db;
          const history = createHistory({ webhooks: true });
          await second.ping(); // both pools connected before the race
          // Two instances (two pools), two senders each; three rounds of three batches: many chances to collide.
          const senders = [t.db.handle.db, second.db, t.db.handle.db, second.db].map((handle) => senderFor(t, receiver.url, {}, handle));
          let total = 0;
          const perInstance = [0, 0];
          for (let round = 0; round < 3; round++) {
            const users = Array.from({ length: 3 * WEBHOOK_BATCH_SIZE }, () => crypto.randomUUID());
            const now = t.clock.now();
            await db.insertInto('users').values(users.map((id) => ({ id, email: `${id}@example.com`, password_hash: 'x', display_name: null, created_at: now, updated_at: now }))).execute();
            await db.transaction().execute((trx) => history.append(trx, users.map((userId) => ({ userId, type: 'revoked_all' as const, actor: SYSTEM })), now));
            const results = await Promise.all(senders.map(drain));
            results.forEach((r, i) => (perInstance[i % 2]! += r.delivered));
            total += users.length;
            assert.equal(results.reduce((sum, r) => sum + r.delivered, 0), users.length);
          }
          assert.ok(perInstance[0]! > 0 && perInstance[1]! > 0, `both instances delivered (${perInstance.join(' + ')})`);
          const ids = receiver.ids();
          assert.equal(ids.length, total);
          assert.equal(new Set(ids).size, total, 'no event was delivered twice');
        } finally {
          await second.close();
          await t.close();
        }
      });
    }
  });
}

test('the OpenAPI document describes the webhook payload', async () => {
  const [kind] = databaseKinds();
  const t = await createTestApp(kind!);
  try {
    const doc = (await call(t.app, 'GET', '/openapi.json')).body;
    const post = doc.webhooks.event.post; // OpenAPI 3.1: the document's own webhooks field
    const data = post.requestBody.content['application/json'].schema.properties.data;
    assert.deepEqual(Object.keys(data.properties).sort(), ['actor', 'cause', 'created_at', 'device_id', 'device_name', 'id', 'session_id', 'type', 'user_id']);
    assert.deepEqual(post.parameters.map((p: any) => p.name), ['webhook-id', 'webhook-timestamp', 'webhook-signature']);
  } finally {
    await t.close();
  }
});

