/**
 * The security history's sentences (docs/security-center.md, "History") for
 * the causes the API walk in history.test.ts does not reach: expiry, the
 * device limit, an admin, copied keys. Ordinary causes never sound like an
 * intrusion ("remotely", "automatically", "suspicious").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ActorView, HIDDEN_TYPES, KIND_TYPES, parseKinds, SECURITY_EVENT_KINDS, type SecurityEventKind, summarise } from '../../src/features/security/security.service.ts';
import type { StoredEvent } from '../../src/store/history.ts';
import type { EventCause } from '../../src/store/schema.ts';

const row = (over: Partial<StoredEvent>): StoredEvent => ({
  id: '01937a4e-8f00-7c3a-9d2e-3f4a5b6c7d8e',
  user_id: 'u',
  device_id: null,
  type: 'signed_in',
  ip_address: null,
  user_agent: null,
  created_at: 0,
  session_id: null,
  subject_name: null,
  cause: null,
  actor_type: 'system',
  actor_session_id: null,
  actor_name: null,
  location: null,
  reason: null,
  ...over,
});
const system: ActorView = { type: 'system', device_id: null, name: null, session_id: null };
const say = (kind: SecurityEventKind, over: Partial<StoredEvent>, cause: EventCause | 'expired' | 'max_devices' | null = over.cause ?? null, actor = system) => summarise(kind, row(over), actor, cause);

test('ordinary causes read calmly', () => {
  assert.equal(say('device_revoked', { type: 'expired', subject_name: 'Old phone' }, 'expired'), 'Trust of “Old phone” ended after its trusted period');
  assert.equal(say('device_revoked', { type: 'evicted', subject_name: 'Old phone' }, 'max_devices'), 'Device revoked: “Old phone”, to make room for a newer device');
  assert.equal(say('sign_out', { type: 'session_revoked' }, 'expired'), 'Signed out after a period of inactivity');
  // Housekeeping's session_expired (docs/sessions.md, "Expiry"): the idle end, the absolute end.
  assert.equal(say('sign_out', { type: 'session_expired' }, 'idle_timeout'), 'Signed out after a period of inactivity');
  assert.equal(say('sign_out', { type: 'session_expired' }, 'max_age'), 'Signed out after the session reached its maximum length');
  assert.equal(say('device_resynced', { type: 'token_resynced', subject_name: 'Work laptop' }), 'This device’s sign-in was restored after an interrupted update');
  assert.equal(say('sign_out', { type: 'signed_out' }, 'logout'), 'Signed out');
  const laptop: ActorView = { type: 'user', device_id: 'd', name: 'Work laptop', session_id: 'a' };
  assert.equal(say('sign_out', { type: 'session_revoked', session_id: 'b' }, 'user', laptop), 'Signed out from “Work laptop”');
  assert.equal(say('sign_out', { type: 'session_revoked', session_id: 'a' }, 'user', laptop), 'Signed out', 'a session that ended itself');
  assert.equal(say('sign_out', { type: 'session_revoked' }, 'admin'), 'Signed out by an administrator');
  assert.equal(say('sign_in', { type: 'signed_in', device_id: 'd' }), 'Signed in without a code (trusted device)');
  assert.equal(say('sign_in', { type: 'signed_in', reason: 'new_device' }), 'Signed in from a new browser or device');
  assert.equal(say('alert_sent', { type: 'alert_sent', subject_name: 'alert_new_sign_in' }), 'Security email sent: a sign-in to your account');
  assert.equal(say('alert_sent', { type: 'alert_sent', subject_name: 'alert_of_the_future' }), 'Security email sent');
  for (const kind of SECURITY_EVENT_KINDS) {
    for (const cause of [null, 'logout', 'user', 'expired', 'max_devices', 'password_changed'] as const) {
      const text = say(kind, { type: KIND_TYPES[kind][0] }, cause);
      assert.ok(text.length > 0 && !/remotely|automatically|undefined|null/i.test(text), `${kind}/${cause}: ${text}`);
    }
  }
});

test('kinds: each stored type is shown by one kind or hidden; the query parameter is checked', () => {
  const shown = SECURITY_EVENT_KINDS.flatMap((k) => [...KIND_TYPES[k]]);
  assert.equal(new Set(shown).size, shown.length, 'no stored type is two kinds');
  assert.ok(shown.every((type) => !(HIDDEN_TYPES as readonly string[]).includes(type)));
  assert.deepEqual(parseKinds(['sign_in,sign_out', 'sign_in']), ['sign_in', 'sign_out']);
  assert.equal(parseKinds(undefined), undefined);
  assert.equal(parseKinds([',']), undefined);
  assert.throws(() => parseKinds(['sign_in,trust_used']), (error: any) => error.code === 'VALIDATION_ERROR' && error.details[0].field === 'kind');
});
