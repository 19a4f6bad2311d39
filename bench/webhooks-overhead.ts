/**
 * What webhooks cost the requests that cause events: login (which writes a
 * `signed_in` event) with webhooks off, on (the outbox row is written in the
 * same transaction), and on with the sender stuck inside a receiver that
 * never answers. `node --import tsx bench/webhooks-overhead.ts`
 * (TEST_DATABASE_URL adds PostgreSQL). Numbers: docs/admin-and-webhooks.md.
 */
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createTestApp, call, laptop, signupAndLogin } from '../test/helpers/app.ts';
import { databaseKinds } from '../test/helpers/databases.ts';
import { loadConfig } from '../src/platform/config.ts';
import { createWebhookSender } from '../src/features/webhooks/webhooks.service.ts';

const held: any[] = [];
const server = createServer((req, res) => { req.resume(); held.push(res); }); // never answers
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const env = { WEBHOOK_URL: url, WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`, WEBHOOK_TIMEOUT_SECONDS: '60' };
const N = 400;
for (const kind of databaseKinds()) {
  for (const mode of ['off', 'on', 'on+sender-stuck'] as const) {
    const t = await createTestApp(kind, mode === 'off' ? {} : { env });
    const stop = mode === 'on+sender-stuck' ? createWebhookSender({ db: t.db.handle.db, config: loadConfig(env).webhook!, clock: t.clock, log: t.app.log }).start(5) : async () => {};
    const user = await signupAndLogin(t.app, laptop());
    // Each "end one session" + a refresh-free bearer call writes events: measure the event-writing route DELETE /sessions?except_current=true after a login.
    const times: number[] = [];
    for (let i = 0; i < N; i++) {
      const start = process.hrtime.bigint();
      const r = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device: laptop() });
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
      if (r.res.statusCode !== 200) throw new Error(r.res.body);
    }
    times.sort((a, b) => a - b);
    const outbox = (await t.db.handle.db.selectFrom('webhook_outbox').select('id').execute()).length;
    console.log(`${kind.name} webhooks ${mode}: login (writes signed_in) median ${times[N / 2]!.toFixed(2)} ms, p95 ${times[Math.floor(N * 0.95)]!.toFixed(2)} ms; outbox rows ${outbox}; held deliveries ${held.length}`);
    await Promise.race([stop(), new Promise((r) => setTimeout(r, 10))]);
    await t.close().catch(() => undefined);
  }
}
for (const r of held) r.destroy();
server.closeAllConnections();
server.close();
process.exit(0);
