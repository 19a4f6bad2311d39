/**
 * /metrics beyond the process and HTTP metrics (docs/operations.md): login
 * outcomes by result, delivery failures per outbox, and the backlog and
 * oldest-age gauges of each outbox, read from storage when scraped (shared by
 * every instance), at most once per BACKLOG_READ_MIN_INTERVAL_MS. No label
 * carries user data.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createWebhookSender } from '../../src/features/webhooks/webhooks.service.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { BACKLOG_READ_MIN_INTERVAL_MS, createServiceMetrics } from '../../src/platform/metrics.ts';
import { call, createTestApp, databaseKinds, enableMfa, laptop, loginStep, signupAndLogin, type TestApp, trustDevice } from '../helpers/app.ts';

/** `name{labels} value` lines of the exposition text → value by "name{labels}". */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

for (const kind of databaseKinds()) {
  describe(`/metrics: outboxes and login outcomes (${kind.name})`, () => {
    let t: TestApp;
    const metrics = createServiceMetrics();
    let receiverStatus = 500;
    const receiver: Server = createServer((req, res) => req.resume().on('end', () => res.writeHead(receiverStatus).end()));
    const env = { WEBHOOK_URL: '', WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}` };
    const scrape = async () => {
      const res = await t.app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 200);
      return { text: res.body, values: samples(res.body) };
    };

    before(async () => {
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      env.WEBHOOK_URL = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
      t = await createTestApp(kind, { env, deps: { metrics } });
    });
    after(async () => {
      await t?.close();
      receiver.closeAllConnections();
      receiver.close();
    });

    test('every series exists at 0 before anything happens, and the outboxes are empty', async () => {
      const { values } = await scrape();
      for (const result of ['signed_in', 'bypassed', 'mfa_required', 'failed', 'limited']) assert.equal(values.get(`login_outcomes_total{result="${result}"}`), 0, result);
      for (const outbox of ['mail', 'webhooks', 'ssf']) {
        assert.equal(values.get(`outbox_backlog{outbox="${outbox}"}`), 0, outbox);
        assert.equal(values.get(`outbox_oldest_age_seconds{outbox="${outbox}"}`), 0, outbox);
        assert.equal(values.get(`outbox_delivery_failures_total{outbox="${outbox}",outcome="retry"}`), 0);
      }
    });

    test('login outcomes by result; no label names a user', async () => {
      const user = await signupAndLogin(t.app, laptop()); // signed_in
      await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: 'Wrong-Horse-9' }); // failed
      await call(t.app, 'POST', '/api/v1/auth/login', { email: 'nobody@example.com', password: 'Wrong-Horse-9' }); // failed
      await enableMfa(t, user);
      const trusted = await trustDevice(t, user, laptop()); // mfa_required
      await loginStep(t, user); // mfa_required (an unknown device)
      const bypass = await loginStep(t, user, laptop({ deviceToken: trusted.deviceToken })); // bypassed
      assert.equal(bypass.body.data.mfa_bypassed, true, bypass.res.body);
      await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email }); // 422: no login outcome

      const { text, values } = await scrape();
      assert.equal(values.get('login_outcomes_total{result="signed_in"}'), 1);
      assert.equal(values.get('login_outcomes_total{result="failed"}'), 2);
      assert.equal(values.get('login_outcomes_total{result="mfa_required"}'), 2);
      assert.equal(values.get('login_outcomes_total{result="bypassed"}'), 1);
      for (const secret of [user.email, user.userId, user.email.split('@')[0]!, '203.0.113.10']) assert.ok(!text.includes(secret), `${secret} is not in /metrics`);
    });

    test('backlog and oldest age per outbox, read from storage at most every few seconds; failures counted per outbox', async () => {
      // The events above wrote webhook rows and mail (verification, alerts); none was delivered.
      t.clock.advance(BACKLOG_READ_MIN_INTERVAL_MS);
      const first = (await scrape()).values;
      const webhooks = first.get('outbox_backlog{outbox="webhooks"}')!;
      assert.ok(webhooks > 3, `webhook backlog ${webhooks}`);
      assert.ok(first.get('outbox_backlog{outbox="mail"}')! >= 1);
      assert.equal(first.get('outbox_backlog{outbox="ssf"}'), 0);

      // Two minutes later the oldest webhook is two minutes older; a new event is not seen until the read interval has passed.
      t.clock.advance(120_000);
      const aged = (await scrape()).values;
      assert.ok(aged.get('outbox_oldest_age_seconds{outbox="webhooks"}')! >= 120, String(aged.get('outbox_oldest_age_seconds{outbox="webhooks"}')));
      await signupAndLogin(t.app);
      assert.equal((await scrape()).values.get('outbox_backlog{outbox="webhooks"}'), aged.get('outbox_backlog{outbox="webhooks"}'), 'within the interval: the previous read');
      t.clock.advance(BACKLOG_READ_MIN_INTERVAL_MS);
      const later = (await scrape()).values.get('outbox_backlog{outbox="webhooks"}')!;
      assert.ok(later > aged.get('outbox_backlog{outbox="webhooks"}')!, 'after it: read again');

      // Delivery: a failing receiver counts retries; then everything is delivered and the backlog is empty.
      const sender = createWebhookSender({ db: t.db.handle.db, config: loadConfig(env).webhook!, clock: t.clock, log: t.app.log, onFailure: (givenUp) => metrics.deliveryFailed('webhooks', givenUp) });
      receiverStatus = 500;
      const failed = await sender.runOnce(3);
      assert.equal(failed.failed, 3);
      receiverStatus = 200;
      t.clock.advance(24 * 3600_000);
      while ((await sender.runOnce()).claimed > 0);
      const drained = (await scrape()).values;
      assert.equal(drained.get('outbox_delivery_failures_total{outbox="webhooks",outcome="retry"}'), 3);
      assert.equal(drained.get('outbox_delivery_failures_total{outbox="webhooks",outcome="given_up"}'), 0);
      assert.equal(drained.get('outbox_backlog{outbox="webhooks"}'), 0);
      assert.equal(drained.get('outbox_oldest_age_seconds{outbox="webhooks"}'), 0);
    });
  });
}

describe('/metrics: a login refused by the rate limit counts as limited', () => {
  const [sqlite] = databaseKinds();
  let t: TestApp;
  before(async () => {
    t = await createTestApp(sqlite!, { env: { RATE_LIMITS: 'on' } });
  });
  after(() => t?.close());

  test('limited', async () => {
    const user = await signupAndLogin(t.app);
    let status = 0;
    for (let i = 0; i < 10 && status !== 429; i++) status = (await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: 'Wrong-Horse-9' })).res.statusCode;
    assert.equal(status, 429);
    const values = samples((await t.app.inject({ method: 'GET', url: '/metrics' })).body);
    assert.equal(values.get('login_outcomes_total{result="limited"}'), 1);
    assert.equal(values.get('login_outcomes_total{result="failed"}'), 5);
  });
});
