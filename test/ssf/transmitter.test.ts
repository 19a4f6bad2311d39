/**
 * The Shared Signals transmitter (docs/integration.md "Shared Signals"):
 * metadata, streams managed with an admin key (scope, ownership), push
 * delivery (RFC 8935) from the durable outbox — including a receiver that is
 * down and a sender that restarts — and poll delivery (RFC 8936) with
 * acknowledgements. Every SET is verified with jose against the live JWK set
 * and checked for its subject.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { createAdminKeys } from '../../src/features/admin/admin.service.ts';
import { createSsfSender, SSF_BACKOFF } from '../../src/features/ssf/ssf.sender.ts';
import { createEncryptor } from '../../src/platform/crypto/encryption.ts';
import { createSetSigner } from '../../src/platform/crypto/security-event-tokens.ts';
import { createAdminRepository } from '../../src/store/admin.repository.ts';
import { createSsfRepository } from '../../src/store/ssf.repository.ts';
import { call, createTestApp, databaseKinds, enableMfa, laptop, PASSWORD, signupAndLogin, type TestApp, trustDevice } from '../helpers/app.ts';

const PUBLIC_URL = 'https://auth.example.com';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
const sidOf = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')).sid as string;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

for (const kind of databaseKinds()) {
  describe(`Shared Signals transmitter (${kind.name})`, () => {
    let t: TestApp;
    let keyA: string;
    let keyB: string;
    let keyNoScope: string;
    // A push receiver that can be down (503) or up (202).
    let receiverUp = false;
    const received: Received[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => {
        if (!receiverUp) return void res.writeHead(503).end();
        received.push({ headers: req.headers, body });
        res.writeHead(202).end();
      });
    });
    let pushUrl = '';

    const ssf = (method: string, url: string, key: string | undefined, body?: unknown) =>
      t.app.inject({ method: method as 'GET', url, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    const jwks = async () => createLocalJWKSet((await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
    /** Verifies a SET as a receiver must: the JWK set, typ secevent+jwt, iss, aud; then SSF's own rules. */
    const verifySet = async (set: string, audience: string): Promise<JWTPayload & { sub_id: any; events: Record<string, any>; txn: string }> => {
      const { payload, protectedHeader } = await jwtVerify(set, await jwks(), { issuer: PUBLIC_URL, audience, typ: 'secevent+jwt', algorithms: ['ES256', 'EdDSA'], currentDate: new Date(t.clock.now()) });
      assert.equal(protectedHeader.typ, 'secevent+jwt');
      assert.equal(payload.sub, undefined, 'SSF: no sub');
      assert.equal(payload.exp, undefined, 'SSF: no exp');
      assert.equal(typeof payload.jti, 'string');
      assert.equal(Object.keys(payload.events as object).length, 1, 'one event per SET');
      return payload as never;
    };
    const newSender = () =>
      createSsfSender({ repository: createSsfRepository(t.db.handle.db), encryptor: createEncryptor(t.keys.dataEncryptionKey), signer: createSetSigner(t.keys.jwtSigningKey!), clock: t.clock, log: t.app.log });

    before(async () => {
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      pushUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
      t = await createTestApp(kind, { env: { PUBLIC_URL } });
      const keys = createAdminKeys(createAdminRepository(t.db.handle.db), t.clock);
      keyA = (await keys.create('receiver-a', ['ssf:streams'])).key;
      keyB = (await keys.create('receiver-b', ['ssf:streams'])).key;
      keyNoScope = (await keys.create('support-desk', ['users:read'])).key;
    });
    after(async () => {
      await t?.close();
      receiver.closeAllConnections();
      receiver.close();
    });

    test('metadata at /.well-known/ssf-configuration names the issuer, the JWK set, both delivery methods and the endpoints', async () => {
      const res = await ssf('GET', '/.well-known/ssf-configuration', undefined);
      assert.equal(res.statusCode, 200);
      const meta = res.json();
      assert.equal(meta.issuer, PUBLIC_URL);
      assert.equal(meta.spec_version, '1_0');
      assert.equal(meta.jwks_uri, `${PUBLIC_URL}/.well-known/jwks.json`);
      assert.deepEqual(meta.delivery_methods_supported, ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936']);
      assert.equal(meta.configuration_endpoint, `${PUBLIC_URL}/ssf/streams`);
      assert.equal(meta.verification_endpoint, `${PUBLIC_URL}/ssf/streams/verify`);
    });

    test('stream management needs an admin key with the ssf:streams scope, and a key sees only its own streams', async () => {
      assert.equal((await ssf('GET', '/ssf/streams', undefined)).statusCode, 401);
      assert.equal((await ssf('GET', '/ssf/streams', 'tdk_not-a-key')).statusCode, 401);
      const forbidden = await ssf('POST', '/ssf/streams', keyNoScope, {});
      assert.equal(forbidden.statusCode, 403);
      assert.equal(forbidden.json().error.details.required_scope, 'ssf:streams');

      const created = await ssf('POST', '/ssf/streams', keyA, { description: 'poll me' });
      assert.equal(created.statusCode, 201, created.body);
      const stream = created.json();
      assert.equal(stream.iss, PUBLIC_URL);
      assert.equal(stream.aud, 'receiver-a');
      assert.deepEqual(stream.delivery, { method: 'urn:ietf:rfc:8936', endpoint_url: `${PUBLIC_URL}/ssf/poll/${stream.stream_id}` }, 'no delivery: poll');
      assert.deepEqual(stream.events_delivered, [`${CAEP}session-revoked`, `${CAEP}credential-change`, `${CAEP}device-compliance-change`]);

      assert.deepEqual((await ssf('GET', `/ssf/streams?stream_id=${stream.stream_id}`, keyA)).json(), stream);
      assert.ok((await ssf('GET', '/ssf/streams', keyA)).json().some((s: { stream_id: string }) => s.stream_id === stream.stream_id));
      // Another key: as if the stream did not exist.
      assert.deepEqual((await ssf('GET', '/ssf/streams', keyB)).json(), []);
      for (const [method, url, body] of [
        ['GET', `/ssf/streams?stream_id=${stream.stream_id}`, undefined],
        ['PATCH', '/ssf/streams', { stream_id: stream.stream_id, description: 'mine now' }],
        ['DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, undefined],
        ['POST', `/ssf/poll/${stream.stream_id}`, {}],
        ['POST', '/ssf/streams/verify', { stream_id: stream.stream_id }],
      ] as const) {
        assert.equal((await ssf(method, url, keyB, body)).statusCode, 404, `${method} ${url}`);
      }

      // PATCH changes what is sent, keeps the rest; the transmitter's own fields cannot be changed.
      const patched = await ssf('PATCH', '/ssf/streams', keyA, { stream_id: stream.stream_id, events_requested: [`${CAEP}session-revoked`, 'urn:example:unknown'] });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(patched.json().events_delivered, [`${CAEP}session-revoked`]);
      assert.equal(patched.json().description, 'poll me');
      assert.equal((await ssf('PATCH', '/ssf/streams', keyA, { stream_id: stream.stream_id, aud: 'receiver-b' })).statusCode, 422);
      assert.equal((await ssf('POST', '/ssf/streams', keyA, { delivery: { method: 'urn:ietf:rfc:8935' } })).statusCode, 422, 'push without a URL');
      assert.equal((await ssf('GET', `/ssf/streams/status?stream_id=${stream.stream_id}`, keyA)).json().status, 'enabled');
      const deleted = await ssf('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, keyA);
      assert.equal(deleted.statusCode, 204);
      assert.equal((await ssf('GET', `/ssf/streams?stream_id=${stream.stream_id}`, keyA)).statusCode, 404);
    });

    test('push: a session ended → CAEP session-revoked, signed with the JWKS key, naming the session; a receiver that was down gets it once up, from a restarted sender', async () => {
      const created = await ssf('POST', '/ssf/streams', keyA, {
        delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: pushUrl, authorization_header: 'Bearer receiver-secret-1' },
        events_requested: [`${CAEP}session-revoked`, `${CAEP}device-compliance-change`],
      });
      assert.equal(created.statusCode, 201, created.body);
      const stream = created.json();
      assert.equal(stream.delivery.endpoint_url, pushUrl);
      assert.equal(stream.delivery.authorization_header, undefined, 'never shown again');

      const user = await signupAndLogin(t.app);
      const sid = sidOf(user.accessToken);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/logout', {}, { token: user.accessToken })).res.statusCode, 204);

      // The receiver is down: the attempt fails and the SET waits in storage.
      receiverUp = false;
      const down = await newSender().runOnce();
      assert.equal(down.claimed, 1);
      assert.equal(down.failed, 1);
      assert.equal(received.length, 0);

      // Up again; a new sender (as after a restart) delivers it once the backoff has passed.
      receiverUp = true;
      const restarted = newSender();
      assert.equal((await restarted.runOnce()).claimed, 0, 'not before the backoff');
      t.clock.advance(SSF_BACKOFF.firstMs * 2);
      const up = await restarted.runOnce();
      assert.equal(up.done.length, 1);
      assert.equal(received.length, 1);
      const [push] = received;
      assert.equal(push!.headers['content-type'], 'application/secevent+jwt');
      assert.equal(push!.headers.authorization, 'Bearer receiver-secret-1');
      const set = await verifySet(push!.body, 'receiver-a');
      assert.deepEqual(Object.keys(set.events), [`${CAEP}session-revoked`]);
      assert.deepEqual(set.sub_id, { format: 'complex', user: { format: 'iss_sub', iss: PUBLIC_URL, sub: user.userId }, session: { format: 'opaque', id: sid } });
      assert.equal(set.events[`${CAEP}session-revoked`].initiating_entity, 'user');
      assert.equal(decodeProtectedHeader(push!.body).kid, t.keys.jwtSigningKey!.kid);
      assert.equal((await restarted.runOnce()).claimed, 0, 'delivered once');
      // No personal data beyond ids.
      assert.ok(!push!.body.includes(user.email) && !Buffer.from(push!.body.split('.')[1]!, 'base64url').toString().includes(user.email));

      // A device revoked → device-compliance-change naming the device, and session-revoked for its sessions (one txn).
      const other = await signupAndLogin(t.app, laptop());
      await enableMfa(t, other);
      const trusted = await trustDevice(t, other, laptop());
      received.length = 0;
      const revoked = await call(t.app, 'DELETE', `/api/v1/devices/${trusted.device.id}`, undefined, { token: other.accessToken });
      assert.ok(revoked.res.statusCode < 300, revoked.res.body);
      await restarted.runOnce();
      const sets = await Promise.all(received.map((r) => verifySet(r.body, 'receiver-a')));
      const device = sets.find((s) => `${CAEP}device-compliance-change` in s.events);
      assert.ok(device, 'device-compliance-change sent');
      assert.deepEqual(device!.sub_id.device, { format: 'opaque', id: trusted.device.id });
      assert.deepEqual(device!.events[`${CAEP}device-compliance-change`].current_status, 'not-compliant');
      const ended = sets.filter((s) => `${CAEP}session-revoked` in s.events);
      assert.ok(ended.some((s) => s.sub_id.session.id === sidOf(trusted.accessToken)), 'the session on the device');
      assert.ok(sets.every((s) => s.txn === device!.txn), 'one cause, one txn');
      await ssf('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, keyA);
    });

    test('poll: credential-change on a password change, verification with state, ack, setErrs; a SET comes back until acknowledged', async () => {
      const stream = (await ssf('POST', '/ssf/streams', keyB, { delivery: { method: 'urn:ietf:rfc:8936' }, events_requested: [`${CAEP}credential-change`] })).json();
      const poll = async (body: unknown) => {
        const res = await ssf('POST', `/ssf/poll/${stream.stream_id}`, keyB, body);
        assert.equal(res.statusCode, 200, res.body);
        return res.json() as { sets: Record<string, string>; moreAvailable: boolean };
      };
      assert.deepEqual(await poll({ returnImmediately: true }), { sets: {}, moreAvailable: false });

      const user = await signupAndLogin(t.app);
      const changed = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: PASSWORD, new_password: 'Another-Horse-10' }, { token: user.accessToken });
      assert.equal(changed.res.statusCode, 200, changed.res.body);
      assert.equal((await ssf('POST', '/ssf/streams/verify', keyB, { stream_id: stream.stream_id, state: 'abc123' })).statusCode, 204);

      const first = await poll({ maxEvents: 1, returnImmediately: true });
      assert.equal(Object.keys(first.sets).length, 1);
      assert.equal(first.moreAvailable, true);
      const [jti1, set1] = Object.entries(first.sets)[0]!;
      const change = await verifySet(set1, 'receiver-b');
      assert.equal(change.jti, jti1);
      assert.deepEqual(change.sub_id, { format: 'iss_sub', iss: PUBLIC_URL, sub: user.userId });
      assert.deepEqual({ ...change.events[`${CAEP}credential-change`], event_timestamp: 0 }, { event_timestamp: 0, initiating_entity: 'user', credential_type: 'password', change_type: 'update' });

      // Not acknowledged: the same SET comes back first.
      assert.deepEqual(Object.keys((await poll({ maxEvents: 1, returnImmediately: true })).sets), [jti1]);
      const second = await poll({ ack: [jti1], returnImmediately: true });
      const [jti2, set2] = Object.entries(second.sets)[0]!;
      assert.equal(Object.keys(second.sets).length, 1);
      const verification = await verifySet(set2, 'receiver-b');
      assert.deepEqual(verification.events, { [VERIFICATION]: { state: 'abc123' } });
      assert.deepEqual(verification.sub_id, { format: 'opaque', id: stream.stream_id });
      // An error report also settles it (RFC 8936 setErrs).
      assert.deepEqual(await poll({ setErrs: { [jti2]: { err: 'invalid_state', description: 'test' } }, returnImmediately: true }), { sets: {}, moreAvailable: false });

      // Another stream's jti cannot be acknowledged from here; acknowledgements are idempotent.
      assert.deepEqual(await poll({ ack: [jti1, jti2, 'nope'], maxEvents: 0 }), { sets: {}, moreAvailable: false });
      // A push-only request to poll is refused.
      const push = (await ssf('POST', '/ssf/streams', keyB, { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: pushUrl } })).json();
      assert.equal((await ssf('POST', `/ssf/poll/${push.stream_id}`, keyB, {})).statusCode, 400);
      await ssf('DELETE', `/ssf/streams?stream_id=${push.stream_id}`, keyB);
      await ssf('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, keyB);
    });

    test('second factor turned on → credential-change "app" "create", sent once, in the change\'s transaction', async () => {
      const stream = (await ssf('POST', '/ssf/streams', keyB, { events_requested: [`${CAEP}credential-change`] })).json();
      const user = await signupAndLogin(t.app);
      await enableMfa(t, user);
      const res = await ssf('POST', `/ssf/poll/${stream.stream_id}`, keyB, { returnImmediately: true });
      const sets = await Promise.all(Object.values(res.json().sets as Record<string, string>).map((set) => verifySet(set, 'receiver-b')));
      assert.equal(sets.length, 1);
      assert.deepEqual(sets[0]!.sub_id, { format: 'iss_sub', iss: PUBLIC_URL, sub: user.userId });
      const event = sets[0]!.events[`${CAEP}credential-change`];
      assert.deepEqual([event.credential_type, event.change_type], ['app', 'create']);
      await ssf('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, keyB);
    });

    test('poll with returnImmediately=false waits for the next SET', async () => {
      const stream = (await ssf('POST', '/ssf/streams', keyB, {})).json();
      const user = await signupAndLogin(t.app);
      const started = Date.now();
      const pending = ssf('POST', `/ssf/poll/${stream.stream_id}`, keyB, { returnImmediately: false });
      setTimeout(() => void call(t.app, 'POST', '/api/v1/auth/logout', {}, { token: user.accessToken }), 300);
      const res = await pending;
      assert.equal(res.statusCode, 200);
      const sets = Object.values(res.json().sets as Record<string, string>);
      assert.equal(sets.length, 1);
      assert.equal((await verifySet(sets[0]!, 'receiver-b')).sub_id.session.id, sidOf(user.accessToken));
      assert.ok(Date.now() - started < 4000);
      await ssf('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, keyB);
    });
  });
}

describe('Shared Signals in HS256 mode', () => {
  const [sqlite] = databaseKinds();
  test('no transmitter: nothing to verify a SET with, so no metadata, no streams, no SET written', async () => {
    const t = await createTestApp(sqlite!, { env: { JWT_ALGORITHM: 'HS256', PUBLIC_URL } });
    try {
      assert.equal((await t.app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).statusCode, 404);
      assert.equal((await t.app.inject({ method: 'POST', url: '/ssf/streams', payload: {} })).statusCode, 404);
    } finally {
      await t.close();
    }
  });
});
