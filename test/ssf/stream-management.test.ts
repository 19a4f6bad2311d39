/**
 * Shared Signals stream management beyond configuration (docs/integration.md
 * "Shared Signals"): the metadata names only endpoints that answer; stream
 * status (enabled delivers, paused holds and then delivers oldest first,
 * disabled drops); subjects (a removed user's events are not sent on that
 * stream, adding the user back resumes them, other streams are untouched).
 * Push and poll both. Every SET checked is verified with jose against the
 * live JWK set.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createAdminKeys } from '../../src/features/admin/admin.service.ts';
import { createSsfSender } from '../../src/features/ssf/ssf.sender.ts';
import { createEncryptor } from '../../src/platform/crypto/encryption.ts';
import { createSetSigner } from '../../src/platform/crypto/security-event-tokens.ts';
import { createAdminRepository } from '../../src/store/admin.repository.ts';
import { createSsfRepository, SSF_MAX_REMOVED_SUBJECTS } from '../../src/store/ssf.repository.ts';
import { call, createTestApp, databaseKinds, signupAndLogin, type TestApp, type TestUser } from '../helpers/app.ts';

const PUBLIC_URL = 'https://auth.example.com';
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
const sidOf = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')).sid as string;

for (const kind of databaseKinds()) {
  describe(`Shared Signals stream status and subjects (${kind.name})`, () => {
    let t: TestApp;
    let key: string;
    let otherKey: string;
    let noScopeKey: string;
    const pushed: string[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => {
        pushed.push(body);
        res.writeHead(202).end();
      });
    });
    let pushUrl = '';

    const ssf = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, bearer: string | undefined, body?: unknown) =>
      t.app.inject({ method, url, headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    const jwks = async () => createLocalJWKSet((await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
    const claimsOf = async (set: string) => (await jwtVerify(set, await jwks(), { issuer: PUBLIC_URL, audience: 'status-receiver', typ: 'secevent+jwt', currentDate: new Date(t.clock.now()) })).payload as { jti: string; sub_id: any; events: Record<string, any> };
    const sender = () =>
      createSsfSender({ repository: createSsfRepository(t.db.handle.db), encryptor: createEncryptor(t.keys.dataEncryptionKey), signer: createSetSigner(t.keys.jwtSigningKey!), clock: t.clock, log: t.app.log });
    /** Runs the sender until nothing is due; returns the sessions named by what was pushed (in push order). */
    const drainPush = async () => {
      pushed.length = 0;
      const s = sender();
      while ((await s.runOnce()).claimed > 0);
      const sets = await Promise.all(pushed.map(claimsOf));
      return sets.map((set) => (SESSION_REVOKED in set.events ? set.sub_id.session.id : Object.keys(set.events)[0]));
    };
    const logout = async (user: TestUser) => assert.equal((await call(t.app, 'POST', '/api/v1/auth/logout', {}, { token: user.accessToken })).res.statusCode, 204);
    const setStatus = async (streamId: string, status: string, reason?: string) => {
      const res = await ssf('POST', '/ssf/streams/status', key, { stream_id: streamId, status, ...(reason ? { reason } : {}) });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    };
    const pushStream = async () => {
      const res = await ssf('POST', '/ssf/streams', key, { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: pushUrl }, events_requested: [SESSION_REVOKED] });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().stream_id as string;
    };
    const pollStream = async () => {
      const res = await ssf('POST', '/ssf/streams', key, { delivery: { method: 'urn:ietf:rfc:8936' }, events_requested: [SESSION_REVOKED] });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().stream_id as string;
    };
    /** Polls (acknowledging `ack`); returns jti → the session the SET names (or its event type). */
    const poll = async (streamId: string, ack: string[] = []) => {
      const res = await ssf('POST', `/ssf/poll/${streamId}`, key, { returnImmediately: true, ack });
      assert.equal(res.statusCode, 200, res.body);
      const out = new Map<string, string>();
      for (const [jti, set] of Object.entries(res.json().sets as Record<string, string>)) {
        const claims = await claimsOf(set);
        out.set(jti, SESSION_REVOKED in claims.events ? claims.sub_id.session.id : Object.keys(claims.events)[0]!);
      }
      return out;
    };
    const user = (id: string) => ({ format: 'iss_sub', iss: PUBLIC_URL, sub: id });

    before(async () => {
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      pushUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
      t = await createTestApp(kind, { env: { PUBLIC_URL } });
      const keys = createAdminKeys(createAdminRepository(t.db.handle.db), t.clock);
      key = (await keys.create('status-receiver', ['ssf:streams'])).key;
      otherKey = (await keys.create('other-receiver', ['ssf:streams'])).key;
      noScopeKey = (await keys.create('status-support', ['users:read'])).key;
    });
    // The tests share one app and database: a test that fails before deleting its streams must not
    // leave them enabled, or every later test's events fan out to them too and it fails as well.
    afterEach(async () => {
      for (const k of [key, otherKey]) {
        const res = await ssf('GET', '/ssf/streams', k);
        for (const stream of res.json() as Array<{ stream_id: string }>) await ssf('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, k);
      }
      assert.equal((await t.db.handle.db.selectFrom('ssf_streams').select('id').execute()).length, 0, 'no stream left behind');
    });
    after(async () => {
      await t?.close();
      receiver.closeAllConnections();
      receiver.close();
    });

    test('the metadata names every endpoint it has, and each one answers (none is a 404 route)', async () => {
      const meta = (await ssf('GET', '/.well-known/ssf-configuration', undefined)).json();
      assert.equal(meta.status_endpoint, `${PUBLIC_URL}/ssf/streams/status`);
      assert.equal(meta.add_subject_endpoint, `${PUBLIC_URL}/ssf/streams/subjects/add`);
      assert.equal(meta.remove_subject_endpoint, `${PUBLIC_URL}/ssf/streams/subjects/remove`);
      assert.equal(meta.verification_endpoint, `${PUBLIC_URL}/ssf/streams/verify`);
      assert.equal(meta.default_subjects, 'ALL');
      const streamId = await pollStream();
      const path = (url: string) => url.slice(PUBLIC_URL.length);
      const calls: Array<[string, 'GET' | 'POST', string, unknown, number]> = [
        ['configuration_endpoint', 'GET', `${path(meta.configuration_endpoint)}?stream_id=${streamId}`, undefined, 200],
        ['status_endpoint', 'GET', `${path(meta.status_endpoint)}?stream_id=${streamId}`, undefined, 200],
        ['status_endpoint', 'POST', path(meta.status_endpoint), { stream_id: streamId, status: 'enabled' }, 200],
        ['add_subject_endpoint', 'POST', path(meta.add_subject_endpoint), { stream_id: streamId, subject: user('00000000-0000-4000-8000-000000000000') }, 200],
        ['remove_subject_endpoint', 'POST', path(meta.remove_subject_endpoint), { stream_id: streamId, subject: user('00000000-0000-4000-8000-000000000000') }, 204],
        ['verification_endpoint', 'POST', path(meta.verification_endpoint), { stream_id: streamId }, 204],
      ];
      for (const [name, method, url, body, status] of calls) {
        const res = await ssf(method, url, key, body);
        assert.equal(res.statusCode, status, `${name} ${method} ${url}: ${res.body}`);
        // The same endpoint: no key → 401, a key without the scope → 403, another key's stream → 404.
        assert.equal((await ssf(method, url, undefined, body)).statusCode, 401, `${name} without a key`);
        assert.equal((await ssf(method, url, noScopeKey, body)).statusCode, 403, `${name} without the scope`);
        assert.equal((await ssf(method, url, otherKey, body)).statusCode, 404, `${name} on another key's stream`);
      }
      // Both advertised delivery methods are accepted.
      for (const method of meta.delivery_methods_supported as string[]) {
        const res = await ssf('POST', '/ssf/streams', key, { delivery: { method, ...(method.endsWith('8935') ? { endpoint_url: pushUrl } : {}) } });
        assert.equal(res.statusCode, 201, `${method}: ${res.body}`);
        assert.equal(res.json().delivery.method, method);
        await ssf('DELETE', `/ssf/streams?stream_id=${res.json().stream_id}`, key);
      }
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });

    test('status: enabled by default; paused with a reason holds push SETs and sends them oldest first once enabled', async () => {
      const streamId = await pushStream();
      assert.deepEqual((await ssf('GET', `/ssf/streams/status?stream_id=${streamId}`, key)).json(), { stream_id: streamId, status: 'enabled' });
      const [a, b, c] = [await signupAndLogin(t.app), await signupAndLogin(t.app), await signupAndLogin(t.app)];

      // Due before the pause: still not sent once paused.
      await logout(a);
      assert.deepEqual(await setStatus(streamId, 'paused', 'maintenance'), { stream_id: streamId, status: 'paused', reason: 'maintenance' });
      assert.deepEqual((await ssf('GET', `/ssf/streams/status?stream_id=${streamId}`, key)).json(), { stream_id: streamId, status: 'paused', reason: 'maintenance' });
      t.clock.advance(1000);
      await logout(b);
      t.clock.advance(1000);
      await ssf('POST', '/ssf/streams/verify', key, { stream_id: streamId, state: 'while-paused' });
      assert.deepEqual(await drainPush(), [], 'nothing is sent while paused');

      // Enabled (no reason: the old one goes): everything held, oldest first.
      assert.deepEqual(await setStatus(streamId, 'enabled'), { stream_id: streamId, status: 'enabled' });
      t.clock.advance(1000);
      await logout(c);
      assert.deepEqual(await drainPush(), [sidOf(a.accessToken), sidOf(b.accessToken), VERIFICATION, sidOf(c.accessToken)]);
      assert.deepEqual(await drainPush(), [], 'each once');
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });

    test('status: a SET claimed by the sender just as the stream is paused is held, not sent, and its attempt is not counted', async () => {
      const streamId = await pushStream();
      const a = await signupAndLogin(t.app);
      await logout(a);
      const repo = createSsfRepository(t.db.handle.db);
      // The sender claims the row (as if its batch started), then the receiver pauses, then the attempt runs.
      const row = await t.db.handle.db.selectFrom('ssf_outbox').selectAll().where('stream_id', '=', streamId).executeTakeFirstOrThrow();
      await setStatus(streamId, 'paused');
      await t.db.handle.db.updateTable('ssf_outbox').set({ next_attempt_at: row.created_at }).where('id', '=', row.id).execute(); // a stale due time, as a claim racing the pause leaves it
      assert.deepEqual(await drainPush(), []);
      const held = (await repo.findSet(row.id))!;
      assert.equal(held.next_attempt_at, null, 'held');
      assert.equal(held.attempts, 0, 'the attempt that sent nothing is not counted');
      await setStatus(streamId, 'enabled');
      assert.deepEqual(await drainPush(), [sidOf(a.accessToken)]);
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });

    test('status: a paused poll stream returns nothing (acknowledgements still taken); enabled again, it returns what it held', async () => {
      const streamId = await pollStream();
      const [a, b] = [await signupAndLogin(t.app), await signupAndLogin(t.app)];
      await logout(a);
      const first = await poll(streamId);
      assert.deepEqual([...first.values()], [sidOf(a.accessToken)]);
      await setStatus(streamId, 'paused', 'deploying');
      await logout(b);
      assert.equal((await poll(streamId, [...first.keys()])).size, 0, 'paused: nothing returned');
      await setStatus(streamId, 'enabled');
      assert.deepEqual([...(await poll(streamId)).values()], [sidOf(b.accessToken)], 'the acknowledged SET is gone, the held one comes');
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });

    test('status: disabled drops what waits and keeps nothing written meanwhile (verification included); enabled again, only new events', async () => {
      const pushId = await pushStream();
      const pollId = await pollStream();
      const [a, b, c] = [await signupAndLogin(t.app), await signupAndLogin(t.app), await signupAndLogin(t.app)];
      await logout(a);
      for (const id of [pushId, pollId]) assert.deepEqual(await setStatus(id, 'disabled', 'not needed'), { stream_id: id, status: 'disabled', reason: 'not needed' });
      await logout(b);
      assert.equal((await ssf('POST', '/ssf/streams/verify', key, { stream_id: pushId })).statusCode, 204);
      assert.equal((await t.db.handle.db.selectFrom('ssf_outbox').select('id').where('stream_id', 'in', [pushId, pollId]).execute()).length, 0, 'nothing kept');
      for (const id of [pushId, pollId]) await setStatus(id, 'enabled');
      await logout(c);
      assert.deepEqual(await drainPush(), [sidOf(c.accessToken)]);
      assert.deepEqual([...(await poll(pollId)).values()], [sidOf(c.accessToken)]);
      for (const id of [pushId, pollId]) await ssf('DELETE', `/ssf/streams?stream_id=${id}`, key);
    });

    test('status: an unknown status or an oversized reason is refused; the status of another key\'s stream cannot be changed', async () => {
      const streamId = await pollStream();
      assert.equal((await ssf('POST', '/ssf/streams/status', key, { stream_id: streamId, status: 'stopped' })).statusCode, 422);
      assert.equal((await ssf('POST', '/ssf/streams/status', key, { stream_id: streamId, status: 'paused', reason: 'x'.repeat(201) })).statusCode, 422);
      assert.equal((await ssf('POST', '/ssf/streams/status', otherKey, { stream_id: streamId, status: 'disabled' })).statusCode, 404);
      assert.equal((await ssf('GET', `/ssf/streams/status?stream_id=${streamId}`, key)).json().status, 'enabled');
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });

    test('subjects: a removed user gets no SET on that stream (push and poll); other users and other streams are untouched; adding back resumes', async () => {
      const pushId = await pushStream();
      const pollId = await pollStream();
      const untouched = (await ssf('POST', '/ssf/streams', otherKey, { events_requested: [SESSION_REVOKED] })).json().stream_id as string;
      const [a1, b] = [await signupAndLogin(t.app), await signupAndLogin(t.app)];
      const again = async () => {
        const login = await call(t.app, 'POST', '/api/v1/auth/login', { email: a1.email, password: a1.password });
        return { ...a1, accessToken: login.body.data.access_token as string };
      };
      const a1b = await again();
      const a1c = await again();
      // Removed two ways: iss_sub, and the user of a complex subject.
      assert.equal((await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: pushId, subject: user(a1.userId) })).statusCode, 204);
      assert.equal((await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: pollId, subject: { format: 'complex', user: user(a1.userId) } })).statusCode, 204);
      assert.equal((await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: pollId, subject: user(a1.userId) })).statusCode, 204, 'removing twice is fine');
      await logout(a1);
      await logout(b);
      assert.deepEqual(await drainPush(), [sidOf(b.accessToken)]);
      assert.deepEqual([...(await poll(pollId)).values()], [sidOf(b.accessToken)]);
      const other = await ssf('POST', `/ssf/poll/${untouched}`, otherKey, { returnImmediately: true });
      assert.equal(Object.keys(other.json().sets).length, 2, 'a stream that removed no one gets both');

      // Added back: the user's next events come again.
      const added = await ssf('POST', '/ssf/streams/subjects/add', key, { stream_id: pushId, subject: user(a1.userId), verified: true });
      assert.equal(added.statusCode, 200);
      assert.equal(added.body, '', 'an empty 200');
      await logout(a1b);
      assert.deepEqual(await drainPush(), [sidOf(a1b.accessToken)]);
      // The poll stream still has the user removed.
      const polled = await poll(pollId);
      assert.deepEqual([...(await poll(pollId, [...polled.keys()])).values()], []);
      await logout(a1c);
      assert.deepEqual([...(await poll(pollId)).values()], [], 'still removed from the poll stream');
      // The stream's own subject is never removed: verification still arrives.
      await ssf('POST', '/ssf/streams/verify', key, { stream_id: pollId });
      assert.deepEqual([...(await poll(pollId)).values()], [VERIFICATION]);
      for (const id of [pushId, pollId]) await ssf('DELETE', `/ssf/streams?stream_id=${id}`, key);
      assert.equal((await t.db.handle.db.selectFrom('ssf_removed_subjects').select('user_id').where('stream_id', 'in', [pushId, pollId]).execute()).length, 0, 'deleted with the stream');
      await ssf('DELETE', `/ssf/streams?stream_id=${untouched}`, otherKey);
    });

    test('subjects: only users of this issuer; another issuer → 404, other formats → 422; the answer does not depend on whether the user exists', async () => {
      const streamId = await pollStream();
      const foreign = await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: streamId, subject: { format: 'iss_sub', iss: 'https://other.example.com', sub: '00000000-0000-4000-8000-000000000001' } });
      assert.equal(foreign.statusCode, 404);
      assert.equal(foreign.json().error.code, 'NOT_FOUND');
      for (const subject of [{ format: 'email', email: 'someone@example.com' }, { format: 'opaque', id: 'x' }, { format: 'iss_sub', iss: PUBLIC_URL, sub: 'not-a-user-id' }, { format: 'complex', user: user('00000000-0000-4000-8000-000000000001'), session: { format: 'opaque', id: 'x' } }]) {
        assert.equal((await ssf('POST', '/ssf/streams/subjects/add', key, { stream_id: streamId, subject })).statusCode, 422, JSON.stringify(subject));
      }
      const real = await signupAndLogin(t.app);
      const nobody = '00000000-0000-4000-8000-0000000000aa';
      for (const id of [real.userId, nobody]) {
        assert.equal((await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: streamId, subject: user(id) })).statusCode, 204);
        assert.equal((await ssf('POST', '/ssf/streams/subjects/add', key, { stream_id: streamId, subject: user(id) })).statusCode, 200);
      }
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });

    test(`subjects: at most ${SSF_MAX_REMOVED_SUBJECTS} removed users per stream (409 SSF_SUBJECT_LIMIT); adding one back makes room`, async () => {
      const streamId = await pollStream();
      const ids = Array.from({ length: SSF_MAX_REMOVED_SUBJECTS }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
      for (let i = 0; i < ids.length; i += 500) {
        await t.db.handle.db.insertInto('ssf_removed_subjects').values(ids.slice(i, i + 500).map((user_id) => ({ stream_id: streamId, user_id, created_at: t.clock.now() }))).execute();
      }
      const full = await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: streamId, subject: user('10000000-0000-4000-8000-000000000000') });
      assert.equal(full.statusCode, 409);
      assert.equal(full.json().error.code, 'SSF_SUBJECT_LIMIT');
      assert.equal((await ssf('POST', '/ssf/streams/subjects/add', key, { stream_id: streamId, subject: user(ids[0]!) })).statusCode, 200);
      assert.equal((await ssf('POST', '/ssf/streams/subjects/remove', key, { stream_id: streamId, subject: user('10000000-0000-4000-8000-000000000000') })).statusCode, 204);
      await ssf('DELETE', `/ssf/streams?stream_id=${streamId}`, key);
    });
  });
}
