/**
 * "Every query uses an index at 1,000,000 rows" (DEVELOPERS non-negotiable 6),
 * checked on the statements the service really runs, not on hand-written
 * copies: the app runs on an SQLite database whose Kysely logs every query;
 * a walk through every user-facing flow collects them; then each distinct
 * statement is explained with its own parameters. A full table scan
 * (`SCAN <table>` without an index) fails the test.
 *
 * SQLite plans without statistics (no ANALYZE is ever run), so the plan does
 * not depend on how many rows the table holds: what is chosen here on an
 * empty database is what runs at a million rows.
 */
import { createHistory } from '../../src/store/history.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery, type Kysely } from 'kysely';
import type { Database } from '../../src/store/schema.ts';
import {
  call,
  createTestApp,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  loginWithMfa,
  nextCode,
  PASSWORD,
  SAFARI_IPHONE,
  signupAndLogin,
  type TestApp,
  trustDevice,
} from '../helpers/app.ts';
import { type PlanRecorder, recordingSqlite } from '../helpers/query-plans.ts';
import { drain, testSender } from '../helpers/mail.ts';
import { makeDeviceKey, proofHeader } from '../helpers/device-keys.ts';
import { createDevicesRepository } from '../../src/store/devices.repository.ts';

const EDGE_LINUX = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID, webcrypto } from 'node:crypto';
import { runAdminCommand } from '../../src/app/admin-cli.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { createSessionsRepository } from '../../src/store/sessions.repository.ts';
import { createWebhooksRepository } from '../../src/store/webhook-outbox.repository.ts';
import { createWebhookSender } from '../../src/features/webhooks/webhooks.service.ts';
import { createSsfSender } from '../../src/features/ssf/ssf.sender.ts';
import { createEncryptor } from '../../src/platform/crypto/encryption.ts';
import { createSetSigner } from '../../src/platform/crypto/security-event-tokens.ts';
import { createSsfRepository } from '../../src/store/ssf.repository.ts';

describe('query plans of every statement of the user-facing flows (sqlite)', () => {
  let recorder: PlanRecorder;
  let db: Kysely<Database>;
  let statements: PlanRecorder['statements'];
  let t: TestApp;
  // A webhook receiver: the outbox is written with every event, and the sender's statements are checked too.
  let receiverStatus = 200;
  const receiver: Server = createServer((req, res) => req.resume().on('end', () => res.writeHead(receiverStatus).end()));
  const webhookEnv = { WEBHOOK_URL: '', WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}` };

  before(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    webhookEnv.WEBHOOK_URL = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
    recorder = await recordingSqlite();
    ({ db, statements } = recorder);
    t = await createTestApp(recorder.kind, { env: webhookEnv });
  });
  after(async () => {
    await t.close();
    receiver.closeAllConnections();
    receiver.close();
  });

  test('no statement scans a whole table', async () => {
    // Every flow of the API overview (README) and docs/sessions.md once.
    const user = await signupAndLogin(t.app, laptop());
    await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: user.accessToken });
    const { backupCodes } = await enableMfa(t, user);
    const trusted = await trustDevice(t, user, laptop());
    const bypass = await loginStep(t, user, laptop({ deviceToken: trusted.deviceToken })); // rotates the token
    await loginStep(t, user, laptop({ deviceToken: trusted.deviceToken })); // the retired token within the grace
    await loginStep(t, user, laptop({ userAgent: FIREFOX_WINDOWS, deviceToken: bypass.body.data.device_token })); // fingerprint mismatch
    // docs/trust-model.md: a key-bound device, a challenge, a proof (consumed), a failed proof, reuse after the grace.
    const key = await makeDeviceKey();
    const keyed = await loginWithMfa(t, user, laptop({ userAgent: EDGE_LINUX }));
    const bound = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: keyed.trusted_device.activation_token, public_key: key.publicJwk }, { token: keyed.access_token, device: laptop({ userAgent: EDGE_LINUX }) });
    const proved = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { device: laptop({ userAgent: EDGE_LINUX, deviceToken: bound.body.data.device_token }), headers: { 'x-device-proof': await proofHeader(t.app, key) } });
    assert.equal(proved.body.data.mfa_bypassed, true, proved.res.body);
    await loginStep(t, user, laptop({ userAgent: EDGE_LINUX, deviceToken: proved.body.data.device_token })); // no proof
    t.clock.advance(31_000);
    await loginStep(t, user, laptop({ userAgent: EDGE_LINUX, deviceToken: bound.body.data.device_token })); // reuse → revoked
    // docs/trust-model.md "A crash is not theft": a retired token after the grace with the device's own proof → resynced.
    const keyed2 = await loginWithMfa(t, user, laptop({ userAgent: EDGE_LINUX }));
    const bound2 = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: keyed2.trusted_device.activation_token, public_key: key.publicJwk }, { token: keyed2.access_token, device: laptop({ userAgent: EDGE_LINUX }) });
    await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { device: laptop({ userAgent: EDGE_LINUX, deviceToken: bound2.body.data.device_token }), headers: { 'x-device-proof': await proofHeader(t.app, key) } });
    t.clock.advance(31_000);
    const resynced = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { device: laptop({ userAgent: EDGE_LINUX, deviceToken: bound2.body.data.device_token }), headers: { 'x-device-proof': await proofHeader(t.app, key) } });
    assert.equal(resynced.body.data.mfa_bypassed, true, resynced.res.body);
    // docs/sessions.md "Bound sessions": a bound session, a refresh without a proof (challenge), with one, with another key's (the proof_failed row); an ended session's 401 says why.
    const boundSession = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD, session_key: key.publicJwk }, { device: laptop({ userAgent: EDGE_LINUX, deviceToken: resynced.body.data.device_token }), headers: { 'x-device-proof': await proofHeader(t.app, key) } });
    assert.equal(boundSession.body.data.expires_in, 300, boundSession.res.body);
    const asked = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: boundSession.body.data.refresh_token });
    const challenge: string = asked.body.error.details.challenge;
    const boundRefresh = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: boundSession.body.data.refresh_token }, { headers: { 'x-session-proof': `${challenge}.${await key.sign(challenge)}` } });
    assert.equal(boundRefresh.res.statusCode, 200, boundRefresh.res.body);
    const otherKey = await makeDeviceKey();
    await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: boundRefresh.body.data.refresh_token }, { headers: { 'x-session-proof': await proofHeader(t.app, otherKey) } });
    const endedMe = await call(t.app, 'GET', '/api/v1/auth/me', undefined, { token: boundRefresh.body.data.access_token });
    assert.equal(endedMe.body.error.details.cause, 'proof_failed');
    // docs/sessions.md "Device Bound Session Credentials": registration (the refresh cookie's session bound), the bound cookie's refresh, /auth/refresh with it.
    const dbscPair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const dbscJwk = (await webcrypto.subtle.exportKey('jwk', dbscPair.publicKey)) as Record<string, string>;
    const jwt = async (header: object, payload: object) => {
      const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
      return `${input}.${Buffer.from(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, dbscPair.privateKey, Buffer.from(input))).toString('base64url')}`;
    };
    const cookieLogin = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: PASSWORD }, { device: laptop({ userAgent: EDGE_LINUX, deviceToken: boundSession.body.data.device_token }), headers: { 'x-refresh-cookie': '1', 'x-device-proof': await proofHeader(t.app, key) } });
    const offered = String(cookieLogin.res.headers['secure-session-registration']);
    const refreshCookie = String(cookieLogin.res.headers['set-cookie']).match(/td_refresh=([^;]+)/)![1]!;
    const registration = await call(t.app, 'POST', '/api/v1/auth/dbsc/register', undefined, {
      cookies: { td_refresh: refreshCookie },
      headers: { 'secure-session-response': `"${await jwt({ alg: 'ES256', typ: 'dbsc+jwt', jwk: { kty: 'EC', crv: 'P-256', x: dbscJwk.x, y: dbscJwk.y } }, { jti: offered.match(/challenge="([^"]+)"/)![1] })}"` },
    });
    assert.equal(registration.res.statusCode, 200, registration.res.body);
    const sid = registration.body.session_identifier;
    const asked403 = await call(t.app, 'POST', '/api/v1/auth/dbsc/refresh', undefined, { headers: { 'sec-secure-session-id': `"${sid}"` } });
    const dbscChallenge = String(asked403.res.headers['secure-session-challenge']).match(/^"([^"]+)"/)![1]!;
    const renewed = await call(t.app, 'POST', '/api/v1/auth/dbsc/refresh', undefined, { headers: { 'sec-secure-session-id': `"${sid}"`, 'secure-session-response': `"${await jwt({ alg: 'ES256', typ: 'dbsc+jwt' }, { jti: dbscChallenge })}"` } });
    assert.equal(renewed.res.statusCode, 200, renewed.res.body);
    const boundCookie = String(renewed.res.headers['set-cookie']).match(/td_bound=([^;]+)/)![1]!;
    const viaBound = await call(t.app, 'POST', '/api/v1/auth/refresh', undefined, { cookies: { td_refresh: refreshCookie, td_bound: boundCookie }, headers: { 'x-refresh-cookie': '1' } });
    assert.equal(viaBound.res.statusCode, 200, viaBound.res.body);
    // The housekeeping of the two device-key tables (docs/trust-model.md) (the rest of pruneExpired is not part of this walk).
    const repository = createDevicesRepository(t.db.handle.db, createHistory({ webhooks: false }));
    await repository.deleteExpiredChallenges(t.clock.now(), 500);
    await repository.deleteExpiredRetiredTokens(t.clock.now() + 40 * 86_400_000, 500);
    // docs/sessions.md "Expiry": housekeeping ends sessions past their idle end (partial index sessions_idle_live), with their events.
    await createSessionsRepository(db).expireSessions(createHistory({ webhooks: false }), t.clock.now(), 500);
    const phone = await loginWithMfa(t, user, laptop({ userAgent: SAFARI_IPHONE }));
    await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: phone.trusted_device.activation_token }, { token: phone.access_token, device: laptop({ userAgent: SAFARI_IPHONE }) });
    const token = bypass.body.data.access_token;
    await call(t.app, 'GET', '/api/v1/devices', undefined, { token, device: laptop({ deviceToken: trusted.deviceToken }) });
    await call(t.app, 'GET', '/api/v1/devices/events?limit=5', undefined, { token });
    const events = await call(t.app, 'GET', '/api/v1/devices/events?limit=2', undefined, { token });
    await call(t.app, 'GET', `/api/v1/devices/events?limit=2&before=${events.body.data.next_before}`, undefined, { token });
    // The security history: unfiltered (user_id, id), by kind (user_id, type, id), each with the cursor; the actors' devices by primary key.
    const history = await call(t.app, 'GET', '/api/v1/security/events?limit=2', undefined, { token });
    assert.equal(history.res.statusCode, 200, history.res.body);
    await call(t.app, 'GET', `/api/v1/security/events?limit=2&before=${history.body.data.next_before}`, undefined, { token });
    const signIns = await call(t.app, 'GET', '/api/v1/security/events?limit=1&kind=sign_in', undefined, { token });
    assert.equal(signIns.body.data.events.length, 1, signIns.res.body);
    await call(t.app, 'GET', `/api/v1/security/events?limit=1&kind=sign_in,sign_out&before=${signIns.body.data.next_before}`, undefined, { token });
    await call(t.app, 'PATCH', `/api/v1/devices/${trusted.device.id}`, { device_name: 'Laptop' }, { token });
    await call(t.app, 'GET', '/api/v1/sessions', undefined, { token });
    await call(t.app, 'GET', '/api/v1/mfa/status', undefined, { token });
    t.clock.advance(61_000);
    await call(t.app, 'GET', '/api/v1/sessions', undefined, { token }); // last_active_at moves (recorded in memory)
    const [session] = (await call(t.app, 'GET', '/api/v1/sessions', undefined, { token })).body.data.sessions;
    await createSessionsRepository(db).touchMany([[session.id, t.clock.now()], [randomUUID(), t.clock.now()]], 60_000); // what the flusher writes
    const refreshed = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: phone.refresh_token });
    await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: phone.refresh_token }); // reuse
    const backup = await loginStep(t, user, laptop({ userAgent: FIREFOX_WINDOWS }));
    const viaBackup = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: backup.body.data.temporary_token, backup_code: backupCodes[0] }, { device: laptop({ userAgent: FIREFOX_WINDOWS }) });
    const live = viaBackup.body.data.access_token;
    // docs/step-up.md: a step-up moves the session's auth_time and amr (one UPDATE by primary key) and writes its event.
    const stepped = await call(t.app, 'POST', '/api/v1/auth/step-up', { code: nextCode(t, user.totpSecret!) }, { token: live });
    assert.equal(stepped.res.statusCode, 200, stepped.res.body);
    const sessions = (await call(t.app, 'GET', '/api/v1/sessions', undefined, { token: live })).body.data.sessions;
    await call(t.app, 'DELETE', `/api/v1/sessions/${sessions.find((s: any) => !s.is_current).id}`, undefined, { token: live });
    await call(t.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: live });
    await call(t.app, 'DELETE', '/api/v1/devices', undefined, { token: live });
    await call(t.app, 'DELETE', '/api/v1/sessions?except_current=true', undefined, { token: live });
    await call(t.app, 'POST', '/api/v1/mfa/backup-codes/regenerate', { code: nextCode(t, user.totpSecret!) }, { token: live });
    await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Another-Pass-7' }, { token: live });
    await call(t.app, 'POST', '/api/v1/mfa/deactivate', { code: nextCode(t, user.totpSecret!) }, { token: live });
    await call(t.app, 'POST', '/api/v1/auth/logout', { refresh_token: refreshed.body.data?.refresh_token }, { token: live });

    // docs/admin-and-webhooks.md: the admin API and its keys (the operator's command too), then the webhook sender.
    const io = { out: () => undefined, err: () => undefined };
    const keyOut: string[] = [];
    await runAdminCommand(['create-key', '--name', 'plans', '--scopes', 'users:read,devices:read,devices:write,sessions:read,sessions:write,events:read'], db, { ...io, out: (l) => keyOut.push(l) }, t.clock);
    const admin = (method: 'GET' | 'DELETE', path: string) => call(t.app, method, `/api/v1/admin${path}`, undefined, { headers: { authorization: `Bearer ${keyOut[0]}` } });
    const u = `/users/${user.userId}`;
    const adminCalls: Array<['GET' | 'DELETE', string]> = [
      ['GET', `/users?email=${encodeURIComponent(user.email)}`],
      ['GET', u],
      ['GET', `${u}/devices`],
      ['GET', `${u}/sessions`],
      ['GET', `${u}/events?limit=2`],
      ['DELETE', `${u}/devices/${trusted.device.id}`],
      ['DELETE', `${u}/devices`],
      ['DELETE', `${u}/sessions/${sessions[0].id}`],
      ['DELETE', `${u}/sessions`],
    ];
    for (const [method, path] of adminCalls) assert.ok((await admin(method, path)).res.statusCode < 500, path);
    t.clock.advance(61_000);
    await admin('GET', u); // last_used_at moves
    await runAdminCommand(['list-keys'], db, io, t.clock);
    await runAdminCommand(['revoke-key', '--name', 'plans'], db, io, t.clock);
    const sender = createWebhookSender({ db, config: loadConfig(webhookEnv).webhook!, clock: t.clock, log: t.app.log });
    await sender.runOnce(5); // delivered
    receiverStatus = 503;
    await sender.runOnce(5); // failed: scheduled again
    await createWebhooksRepository(db).pruneFinished(t.clock.now(), t.clock.now());
    // docs/integration.md "Shared Signals": streams, the fan-out of the event writer, push and poll delivery.
    const ssfKey: string[] = [];
    await runAdminCommand(['create-key', '--name', 'plans-ssf', '--scopes', 'ssf:streams'], db, { ...io, out: (l) => ssfKey.push(l) }, t.clock);
    const ssf = async (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, body?: unknown) => {
      const res = await t.app.inject({ method, url, headers: { authorization: `Bearer ${ssfKey[0]}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
      assert.ok(res.statusCode < 300, `${method} ${url}: ${res.body}`);
      return res.statusCode === 204 || res.body === '' ? undefined : res.json();
    };
    receiverStatus = 202;
    const pushStream = await ssf('POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: webhookEnv.WEBHOOK_URL, authorization_header: 'Bearer x' } });
    const pollStream = await ssf('POST', '/ssf/streams', {});
    await ssf('GET', '/ssf/streams');
    await ssf('GET', `/ssf/streams?stream_id=${pollStream.stream_id}`);
    await ssf('GET', `/ssf/streams/status?stream_id=${pollStream.stream_id}`);
    await ssf('PATCH', '/ssf/streams', { stream_id: pollStream.stream_id, description: 'plans' });
    // Status and subjects: the writer reads the removed subjects; pause holds, enable releases, disable drops.
    const signalled = await signupAndLogin(t.app);
    const issuer = (await ssf('GET', '/.well-known/ssf-configuration')).issuer as string;
    await ssf('POST', '/ssf/streams/subjects/remove', { stream_id: pollStream.stream_id, subject: { format: 'iss_sub', iss: issuer, sub: signalled.userId } });
    await ssf('POST', '/ssf/streams/subjects/add', { stream_id: pollStream.stream_id, subject: { format: 'iss_sub', iss: issuer, sub: signalled.userId } });
    await ssf('POST', '/ssf/streams/subjects/remove', { stream_id: pushStream.stream_id, subject: { format: 'iss_sub', iss: issuer, sub: randomUUID() } });
    await ssf('POST', '/ssf/streams/status', { stream_id: pushStream.stream_id, status: 'paused', reason: 'plans' });
    const heldUser = await signupAndLogin(t.app);
    await call(t.app, 'POST', '/api/v1/auth/logout', {}, { token: heldUser.accessToken });
    await ssf('POST', '/ssf/streams/status', { stream_id: pushStream.stream_id, status: 'enabled' });
    await ssf('POST', '/ssf/streams/status', { stream_id: pollStream.stream_id, status: 'disabled' });
    await ssf('POST', '/ssf/streams/status', { stream_id: pollStream.stream_id, status: 'enabled' });
    {
      // The sender meeting a paused stream (hold) and a disabled one (drop); a SET released behind a failed one of its stream.
      const repo = createSsfRepository(db);
      await repo.hold('00000000-0000-0000-0000-000000000000', 1);
      await repo.drop('00000000-0000-0000-0000-000000000000', 1);
      await repo.release('00000000-0000-0000-0000-000000000000', 1, t.clock.now());
    }
    await call(t.app, 'POST', '/api/v1/auth/logout', {}, { token: signalled.accessToken });
    await ssf('POST', '/ssf/streams/verify', { stream_id: pollStream.stream_id, state: 's' });
    const ssfSender = createSsfSender({ repository: createSsfRepository(db), encryptor: createEncryptor(t.keys.dataEncryptionKey), signer: createSetSigner(t.keys.jwtSigningKey!), clock: t.clock, log: t.app.log });
    await ssfSender.runOnce(); // delivered
    receiverStatus = 503;
    await ssf('POST', '/ssf/streams/verify', { stream_id: pushStream.stream_id });
    await ssfSender.runOnce(); // failed: scheduled again
    const polled = await ssf('POST', `/ssf/poll/${pollStream.stream_id}`, { returnImmediately: true });
    await ssf('POST', `/ssf/poll/${pollStream.stream_id}`, { ack: Object.keys(polled.sets), maxEvents: 0 });
    await ssf('PUT', '/ssf/streams', { stream_id: pushStream.stream_id, delivery: { method: 'urn:ietf:rfc:8936' } }); // the queued SETs follow the delivery
    await ssf('DELETE', `/ssf/streams?stream_id=${pushStream.stream_id}`);
    await createSsfRepository(db).pruneFinished(t.clock.now() + 1, t.clock.now() + 1);

    // docs/operations.md: the outbox gauges read every outbox's waiting rows when scraped.
    const scraped = statements.size;
    assert.equal((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
    assert.ok(statements.size >= scraped + 6, 'the backlog of each outbox was read');

    // docs/security-center.md: a new sign-in alert from a public address (travel, first-seen checks), its mail and its report link.
    const owner = await signupAndLogin(t.app, laptop({ ip: '193.0.6.139' }));
    t.clock.advance(60_000);
    await loginStep(t, owner, laptop({ userAgent: FIREFOX_WINDOWS, ip: '193.0.6.140' }));
    t.clock.advance(61_000);
    const sent: string[] = [];
    const mailer = testSender(t, { kind: 'file', send: async (mail) => void sent.push(mail.text), close: () => undefined });
    await drain(mailer);
    const alert = sent.find((text) => text.includes('not seen before'));
    assert.ok(alert, 'a new sign-in alert');
    const report = await call(t.app, 'POST', '/api/v1/security/report', { token: /token=([A-Za-z0-9_-]+)/.exec(alert)![1] });
    assert.equal(report.res.statusCode, 200, report.res.body);
    assert.ok(statements.size > 40, `collected ${statements.size} statements`);

    const scans = recorder.fullScans();
    assert.deepEqual(scans, [], `full table scans:\n${scans.join('\n')}`);

    // The event writer's read of the removed subjects runs with every event worth a SET; a walk of its
    // (user_id) index is no bounded scan, so it must be a SEARCH (fullScans lets an index-ordered SCAN pass).
    const removedReads = [...statements].filter(([text]) => text.includes('from "ssf_removed_subjects"'));
    assert.ok(removedReads.some(([text]) => text.includes('"user_id" in')), 'the writer read the removed subjects');
    for (const [text, parameters] of removedReads) {
      const plan = await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${text}`, [...parameters]));
      const details = plan.rows.map((row) => row.detail);
      assert.ok(details.every((detail) => !detail.startsWith('SCAN ')), `${text}\n    → ${details.join(' | ')}`);
    }
  });
});
