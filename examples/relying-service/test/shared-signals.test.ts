/**
 * The relying-service example subscribed to the Trusted Devices service's
 * Shared Signals, pushed (RFC 8935) or polled (RFC 8936): a session revoked
 * at the service is refused here, though its access token is unexpired,
 * within 2 seconds — with the real sender loop and its real interval (push)
 * or the example's own long-poll loop (poll), on SQLite and PostgreSQL. SETs
 * are verified by the example with jose; a forged or misaddressed SET is
 * refused (push: 400; poll: reported back in `setErrs`, never acknowledged).
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { createAdminKeys } from '../../../src/features/admin/admin.service.ts';
import { createSsfSender } from '../../../src/features/ssf/ssf.sender.ts';
import { createEncryptor } from '../../../src/platform/crypto/encryption.ts';
import { createSetSigner } from '../../../src/platform/crypto/security-event-tokens.ts';
import { generateSigningKeyPem, parseSigningKey, publicJwks } from '../../../src/platform/crypto/signing-keys.ts';
import { createAdminRepository } from '../../../src/store/admin.repository.ts';
import { createSsfRepository } from '../../../src/store/ssf.repository.ts';
import { call, createTestApp, databaseKinds, signupAndLogin, type TestApp } from '../../../test/helpers/app.ts';
import { closeQuietly } from '../../../test/helpers/teardown.ts';
import { buildRelyingService, POLL, SESSION_REVOKED, startPolling, subscribe, VERIFICATION } from '../src/app.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const kind of databaseKinds()) {
  describe(`relying-service example: revocation pushed by Shared Signals (${kind.name})`, () => {
    const signingPem = generateSigningKeyPem('ES256');
    const signingKey = parseSigningKey(signingPem);
    const authorization = 'Bearer relying-service-receiver-secret';
    let auth: TestApp;
    let relying: FastifyInstance;
    let issuer = '';
    let stopSender: () => Promise<void> = async () => {};
    const whoami = (token: string) => relying.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } });

    before(async () => {
      // The service's PUBLIC_URL is its issuer and names its endpoints: the port is chosen first.
      const port = await freePort();
      issuer = `http://127.0.0.1:${port}`;
      auth = await createTestApp(kind, { env: { JWT_SIGNING_KEY: signingPem, PUBLIC_URL: issuer } });
      await auth.app.listen({ host: '127.0.0.1', port });
      const adminKey = (await createAdminKeys(createAdminRepository(auth.db.handle.db), auth.clock).create('relying-example', ['ssf:streams'])).key;

      relying = await buildRelyingService({
        jwksUrl: `${issuer}/.well-known/jwks.json`,
        issuer: 'trusted-devices',
        audience: 'trusted-devices-api',
        sharedSignals: { issuer, audience: 'relying-example', authorization },
      });
      await relying.listen({ host: '127.0.0.1', port: 0 });
      const relyingPort = (relying.server.address() as AddressInfo).port;
      const stream = await subscribe({ transmitterUrl: issuer, issuer, adminKey, endpointUrl: `http://127.0.0.1:${relyingPort}/ssf/events`, authorization });
      assert.equal(stream.aud, 'relying-example');

      // The sender as src/app/main.ts runs it: its own loop, its default interval.
      stopSender = createSsfSender({
        repository: createSsfRepository(auth.db.handle.db),
        encryptor: createEncryptor(auth.keys.dataEncryptionKey),
        signer: createSetSigner(auth.keys.jwtSigningKey!),
        clock: auth.clock,
        log: auth.app.log,
      }).start();
    });
    after(() => stopSender());
    after(() => closeQuietly('the relying service', () => relying?.close()));
    after(() => closeQuietly('the auth service', () => auth?.close()));

    test('a revoked session: its unexpired access token is refused by the relying service within 2 seconds', async (t) => {
      const user = await signupAndLogin(auth.app);
      const other = await call(auth.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password });
      const otherToken = other.body.data.access_token as string;
      assert.equal((await whoami(user.accessToken)).statusCode, 200);
      assert.equal((await whoami(otherToken)).statusCode, 200);
      const sessionId = (await whoami(user.accessToken)).json().session_id as string;

      // The user ends that session from the other one (the sessions list's "sign out").
      const ended = await call(auth.app, 'DELETE', `/api/v1/sessions/${sessionId}`, undefined, { token: otherToken });
      assert.ok(ended.res.statusCode < 300, ended.res.body);
      const endedAt = Date.now();
      let refusedAfter = -1;
      while (Date.now() - endedAt < 5000) {
        if ((await whoami(user.accessToken)).statusCode === 401) {
          refusedAfter = Date.now() - endedAt;
          break;
        }
        await sleep(25);
      }
      t.diagnostic(`refused ${refusedAfter} ms after the revocation`);
      assert.ok(refusedAfter >= 0, 'refused at all');
      assert.ok(refusedAfter < 2000, `refused after ${refusedAfter} ms`);
      const exp = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString('utf8')).exp as number;
      assert.ok(exp * 1000 > Date.now() + 60_000, 'the token itself is still unexpired');
      // The other session is untouched.
      assert.equal((await whoami(otherToken)).statusCode, 200);
      assert.ok(relying.signalLog.events.some((e) => e.type === SESSION_REVOKED));
    });

    test('the receiver refuses a SET without its authorization, a forged one, and one for another audience', async () => {
      const user = await signupAndLogin(auth.app);
      const sid = (await whoami(user.accessToken)).json().session_id as string;
      const claims = (aud: string) => ({
        iss: issuer,
        aud,
        jti: `forged-${aud}`,
        iat: Math.floor(Date.now() / 1000),
        sub_id: { format: 'complex', user: { format: 'iss_sub', iss: issuer, sub: user.userId }, session: { format: 'opaque', id: sid } },
        events: { [SESSION_REVOKED]: {} },
      });
      const stranger = parseSigningKey(generateSigningKeyPem('ES256'));
      const post = (body: string, auth = authorization) => relying.inject({ method: 'POST', url: '/ssf/events', headers: { 'content-type': 'application/secevent+jwt', authorization: auth }, payload: body });
      const real = await new SignJWT(claims('relying-example')).setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: signingKey.kid }).sign(signingKey.privateKey);
      assert.equal((await post(real, 'Bearer wrong')).statusCode, 401);
      const forged = await post(await new SignJWT(claims('relying-example')).setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: signingKey.kid }).sign(stranger.privateKey));
      assert.equal(forged.statusCode, 400);
      assert.equal(forged.json().err, 'invalid_key');
      const misaddressed = await post(await new SignJWT(claims('someone-else')).setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: signingKey.kid }).sign(signingKey.privateKey));
      assert.equal(misaddressed.json().err, 'invalid_audience');
      // An access token is not a SET (typ).
      assert.equal((await post(user.accessToken)).statusCode, 400);
      assert.equal((await whoami(user.accessToken)).statusCode, 200, 'nothing refused by what was refused');
      // The harness is right: the real key, the right audience → taken (202), and the session is refused.
      assert.equal((await post(real)).statusCode, 202);
      assert.equal((await whoami(user.accessToken)).statusCode, 401);
    });
  });
}

/** Signs in, opens a second session, ends the first from the second; returns how long until the relying service refused the first's token. */
async function revocationLatency(auth: TestApp, whoami: (token: string) => Promise<{ statusCode: number; json(): any }>) {
  const user = await signupAndLogin(auth.app);
  const other = await call(auth.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password });
  const otherToken = other.body.data.access_token as string;
  assert.equal((await whoami(user.accessToken)).statusCode, 200);
  const sessionId = (await whoami(user.accessToken)).json().session_id as string;
  const ended = await call(auth.app, 'DELETE', `/api/v1/sessions/${sessionId}`, undefined, { token: otherToken });
  assert.ok(ended.res.statusCode < 300, ended.res.body);
  const endedAt = Date.now();
  while (Date.now() - endedAt < 5000) {
    if ((await whoami(user.accessToken)).statusCode === 401) break;
    await sleep(25);
  }
  const exp = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString('utf8')).exp as number;
  assert.ok(exp * 1000 > Date.now() + 60_000, 'the token itself is still unexpired');
  assert.equal((await whoami(otherToken)).statusCode, 200, 'the other session is untouched');
  return { refusedAfter: (await whoami(user.accessToken)).statusCode === 401 ? Date.now() - endedAt : -1, sessionId };
}

for (const kind of databaseKinds()) {
  describe(`relying-service example: revocation by Shared Signals, polled (${kind.name})`, () => {
    const signingPem = generateSigningKeyPem('ES256');
    let auth: TestApp;
    let relying: FastifyInstance;
    let issuer = '';
    let streamId = '';
    let adminKey = '';
    const whoami = (token: string) => relying.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } });

    before(async () => {
      const port = await freePort();
      issuer = `http://127.0.0.1:${port}`;
      auth = await createTestApp(kind, { env: { JWT_SIGNING_KEY: signingPem, PUBLIC_URL: issuer } });
      await auth.app.listen({ host: '127.0.0.1', port });
      adminKey = (await createAdminKeys(createAdminRepository(auth.db.handle.db), auth.clock).create('relying-poll', ['ssf:streams'])).key;
      // No push sender runs here, and the relying service listens nowhere: it only polls.
      const stream = await subscribe({ transmitterUrl: issuer, issuer, adminKey, poll: true });
      assert.equal(stream.delivery.method, POLL);
      streamId = stream.stream_id;
      relying = await buildRelyingService({
        jwksUrl: `${issuer}/.well-known/jwks.json`,
        issuer: 'trusted-devices',
        audience: 'trusted-devices-api',
        sharedSignals: { issuer, audience: 'relying-poll', poll: { endpointUrl: stream.delivery.endpoint_url, adminKey } },
      });
    });
    after(() => closeQuietly('the relying service', () => relying?.close()));
    after(() => closeQuietly('the auth service', () => auth?.close()));

    test('a revoked session: its unexpired access token is refused by the polling relying service within 2 seconds', async (t) => {
      const { refusedAfter, sessionId } = await revocationLatency(auth, whoami);
      t.diagnostic(`refused ${refusedAfter} ms after the revocation`);
      assert.ok(refusedAfter >= 0, 'refused at all');
      assert.ok(refusedAfter < 2000, `refused after ${refusedAfter} ms`);
      assert.ok(relying.signalLog.events.some((e) => e.type === SESSION_REVOKED && (e.subject as { session: { id: string } }).session.id === sessionId));
    });

    test('what the example took is acknowledged at the transmitter (by its next poll), and a verification event comes through', async () => {
      const verify = await auth.app.inject({ method: 'POST', url: '/ssf/streams/verify', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, payload: { stream_id: streamId, state: 'poll-check' } });
      assert.equal(verify.statusCode, 204);
      const started = Date.now();
      while (!relying.signalLog.events.some((e) => e.type === VERIFICATION) && Date.now() - started < 5000) await sleep(25);
      const verification = relying.signalLog.events.find((e) => e.type === VERIFICATION);
      assert.deepEqual(verification?.subject, { format: 'opaque', id: streamId });
      // Acknowledged with the poll after it (which then waits for the next SET): nothing left unacknowledged.
      const waiting = async () => (await auth.db.handle.db.selectFrom('ssf_outbox').select('id').where('stream_id', '=', streamId).where('delivered_at', 'is', null).execute()).length;
      while ((await waiting()) > 0 && Date.now() - started < 5000) await sleep(25);
      assert.equal(await waiting(), 0);
    });
  });
}

describe('relying-service example: its poll loop (RFC 8936) against a scripted transmitter', () => {
  test('a SET it takes is acknowledged with the next poll; one it refuses is reported in setErrs and never acknowledged', async (t) => {
    const key = parseSigningKey(generateSigningKeyPem('ES256'));
    const stranger = parseSigningKey(generateSigningKeyPem('ES256'));
    const requests: any[] = [];
    let answers: Array<Record<string, string>> = [];
    const transmitter = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => {
        if (req.url === '/jwks') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(publicJwks(key, [])));
        requests.push({ authorization: req.headers.authorization, body: JSON.parse(body) });
        const sets = answers.shift() ?? {};
        // An empty answer waits a little, as the real transmitter's long poll does.
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sets, moreAvailable: false })), Object.keys(sets).length > 0 ? 0 : 100);
      });
    });
    await new Promise<void>((resolve) => transmitter.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => (transmitter.closeAllConnections(), transmitter.close(() => resolve()))));
    const base = `http://127.0.0.1:${(transmitter.address() as AddressInfo).port}`;
    const claims = { iss: base, aud: 'poll-receiver', iat: Math.floor(Date.now() / 1000), sub_id: { format: 'complex', user: { format: 'iss_sub', iss: base, sub: 'u1' }, session: { format: 'opaque', id: 's1' } }, events: { [SESSION_REVOKED]: {} } };
    const good = await new SignJWT({ ...claims, jti: 'good' }).setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: key.kid }).sign(key.privateKey);
    const forged = await new SignJWT({ ...claims, jti: 'forged' }).setProtectedHeader({ alg: 'ES256', typ: 'secevent+jwt', kid: key.kid }).sign(stranger.privateKey);
    answers = [{ good, forged }];

    const relying = await buildRelyingService({
      jwksUrl: `${base}/jwks`,
      issuer: 'trusted-devices',
      audience: 'trusted-devices-api',
      sharedSignals: { issuer: base, audience: 'poll-receiver', poll: { endpointUrl: `${base}/poll`, adminKey: 'tdk_poller', retryMs: 50 } },
    });
    t.after(() => relying.close());
    const started = Date.now();
    while (requests.length < 2 && Date.now() - started < 5000) await sleep(10);
    await relying.close();
    assert.ok(requests.length >= 2, `${requests.length} polls`);
    assert.equal(requests[0].authorization, 'Bearer tdk_poller');
    assert.deepEqual(requests[0].body, { ack: [], maxEvents: 50, returnImmediately: false });
    assert.deepEqual(requests[1].body.ack, ['good']);
    assert.equal(requests[1].body.setErrs.forged.err, 'invalid_key');
    assert.ok(requests.slice(2).every((r) => r.body.ack.length === 0 && r.body.setErrs === undefined), 'each settled once');
    assert.deepEqual(relying.signalLog.events.map((e) => e.jti), ['good'], 'only the verified SET was applied');
  });
});
