/**
 * The relying-service example taking the Trusted Devices service's webhooks
 * (docs/integration.md "Webhooks"): the real webhook sender POSTs to the
 * example's POST /webhooks, and the example verifies each delivery with the
 * `standardwebhooks` package before reading it. A delivery whose body,
 * signature, secret or timestamp is wrong is refused (401) and not read.
 * The test also checks each delivery's signature by hand (HMAC-SHA256 over
 * `id.timestamp.body`, node:crypto), so the example's acceptance does not
 * rest on the package alone.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { createWebhookSender } from '../../../src/features/webhooks/webhooks.service.ts';
import { loadConfig } from '../../../src/platform/config.ts';
import { call, createTestApp, databaseKinds, signupAndLogin, type TestApp } from '../../../test/helpers/app.ts';
import { closeQuietly } from '../../../test/helpers/teardown.ts';
import { buildRelyingService } from '../src/app.ts';

const [sqlite] = databaseKinds();
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('relying-service example: webhooks verified with standardwebhooks', () => {
  let auth: TestApp;
  let relying: FastifyInstance;
  let url = '';
  /** What reached the example (raw), and what it answered. */
  const deliveries: Array<{ headers: Record<string, string>; body: string; status: number }> = [];

  // In front of the example, a recorder: what reached it (raw, for the check by hand) and what it answered.
  const recorder: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', async () => {
      const answer = await relying.inject({ method: 'POST', url: '/webhooks', headers: req.headers, payload: body });
      deliveries.push({ headers: req.headers as Record<string, string>, body, status: answer.statusCode });
      res.writeHead(answer.statusCode).end(answer.body);
    });
  });

  before(async () => {
    // The example's access-token keys come from a service that is not needed here.
    relying = await buildRelyingService({ jwksUrl: 'http://127.0.0.1:9/jwks', issuer: 'trusted-devices', audience: 'trusted-devices-api', webhooks: { secret: SECRET } });
    await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}/webhooks`;
    auth = await createTestApp(sqlite!, { env: { WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET } });
  });
  after(() => new Promise<void>((resolve) => (recorder.closeAllConnections(), recorder.close(() => resolve()))));
  after(() => closeQuietly('the relying service', () => relying?.close()));
  after(() => closeQuietly('the auth service', () => auth?.close()));

  const send = async () => {
    const sender = createWebhookSender({ db: auth.db.handle.db, config: loadConfig({ WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET }).webhook!, clock: auth.clock, log: auth.app.log });
    while ((await sender.runOnce()).claimed > 0);
  };

  test('the sender\'s deliveries verify and are read: sign-up, sign-in and the sign-out, with the session it ended', async () => {
    const user = await signupAndLogin(auth.app);
    const sid = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString('utf8')).sid as string;
    assert.equal((await call(auth.app, 'POST', '/api/v1/auth/logout', {}, { token: user.accessToken })).res.statusCode, 204);
    await send();
    assert.ok(deliveries.length >= 2, `${deliveries.length} deliveries`);
    assert.ok(deliveries.every((d) => d.status === 204), 'every delivery verified');
    const mine = relying.webhookLog.events.filter((e) => e.data.user_id === user.userId);
    assert.ok(mine.some((e) => e.type === 'session.signed_in'));
    const out = mine.find((e) => e.type === 'session.signed_out');
    assert.equal(out?.data.session_id, sid);
    // By hand too: v1 = base64(HMAC-SHA256(secret, "id.timestamp.body")).
    const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
    for (const d of deliveries) {
      const expected = createHmac('sha256', key).update(`${d.headers['webhook-id']}.${d.headers['webhook-timestamp']}.${d.body}`).digest('base64');
      assert.ok(d.headers['webhook-signature']!.split(' ').includes(`v1,${expected}`), 'signature by hand');
    }
    // The webhook-id is the event's id: a receiver deduplicates by it.
    assert.equal(out?.id, deliveries.find((d) => d.body.includes('"session.signed_out"'))!.headers['webhook-id']);
  });

  test('a tampered body, a signature with another secret, or a stale timestamp is refused (401) and not read', async () => {
    const read = relying.webhookLog.events.length;
    const body = JSON.stringify({ type: 'session.session_revoked', timestamp: new Date().toISOString(), data: { type: 'session_revoked', user_id: 'u', session_id: 's' } });
    const post = (headers: Record<string, string>, payload = body) => relying.inject({ method: 'POST', url: '/webhooks', headers: { 'content-type': 'application/json', ...headers }, payload });
    const signed = (secret: string, at: Date, id = `msg_${randomBytes(6).toString('hex')}`) => {
      const signature = new Webhook(secret).sign(id, at, body);
      return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature };
    };
    assert.equal((await post(signed(SECRET, new Date()), body.replace('"s"', '"t"'))).statusCode, 401, 'tampered');
    assert.equal((await post(signed(`whsec_${randomBytes(32).toString('base64')}`, new Date()))).statusCode, 401, 'another secret');
    assert.equal((await post(signed(SECRET, new Date(Date.now() - 10 * 60_000)))).statusCode, 401, 'ten minutes old');
    assert.equal((await post({})).statusCode, 401, 'unsigned');
    assert.equal(relying.webhookLog.events.length, read, 'nothing refused was read');
    // The harness is right: the same body, signed now with the secret, is taken.
    assert.equal((await post(signed(SECRET, new Date()))).statusCode, 204);
    assert.equal(relying.webhookLog.events.length, read + 1);
  });
});
