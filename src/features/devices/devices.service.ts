/**
 * Trusted devices: the rules of docs/trust-model.md.
 *
 * Lifetimes: an activation token lives ACTIVATION_TOKEN_TTL_SECONDS (300 s)
 * and is used once (activate or skip); a device token lives
 * DEVICE_TRUST_TTL_DAYS (30 d) from activation, until revoked or evicted.
 * Storage: only SHA-256 hashes of both tokens, and keyed HMACs of the
 * fingerprint components; never a raw token or a raw signal.
 * Threats: a stolen fingerprint alone never bypasses MFA (a device token is
 * required); a stolen device token used from another browser/OS fails the
 * similarity check and is recorded as `fingerprint_mismatch`; a token of
 * another user is indistinguishable from an unknown one; a storage error
 * never yields "trusted" (the caller fails closed).
 *
 * Device-bound keys and rotation (docs/trust-model.md):
 * - A key-bound device (public ES256 key given at activation) is trusted only
 *   with a proof: a fresh challenge (POST /auth/device-challenge, 60 s,
 *   single-use, stored as SHA-256) signed by its private key. No proof, a
 *   malformed, reused, expired or wrong one → not trusted, `proof_failed`.
 *   The challenge is consumed (one conditional UPDATE) whenever a proof is
 *   checked, i.e. for a key-bound device, wherever it is checked: the
 *   login's recognition before the password (docs/security.md, known
 *   devices), the login's trust check (which reuses the recognition's result
 *   instead of checking again), the evaluation after a second factor. A
 *   proof is therefore accepted once across every endpoint.
 * - Every bypass rotates the device token (one conditional UPDATE that moves
 *   current → retired only if the presented token is still the current one)
 *   and keeps the retired token's hash with the time it was retired, until
 *   the device's trust ends. A retired token within
 *   DEVICE_TOKEN_REUSE_GRACE_SECONDS counts as the current one (parallel
 *   tabs, a concurrent login that rotated first) but does NOT rotate again:
 *   the tab that rotated set the cookie, and a second rotation could leave
 *   the browser holding the token retired last. After the grace a retired
 *   token means a copy exists: the what-ends-what row `device_token_reuse` revokes the
 *   device (cause `reuse_detected`) and ends its sessions.
 * - A crash is not theft: a retired token after the grace that comes with a
 *   valid proof of the device's own key is the same device whose cookie
 *   update was lost; it is resynced (a fresh token, `token_resynced`, no
 *   alarm). Reuse detection fires only for a retired token without a valid
 *   proof, or for a device without a key.
 */
import type { Clock } from '../../platform/clock.ts';
import { DAY } from '../../platform/clock.ts';
import type { Transaction } from 'kysely';
import { lockUser } from '../../store/locks.ts';
import type { Database, Db, DeviceEventType, TrustFactor } from '../../store/schema.ts';
import { AppError } from '../../platform/errors.ts';
import { type Actor, type EventInput, type History, listEvents, type StoredEvent } from '../../store/history.ts';
import { NothingToEnd, type Revocation } from '../../domain/ledger.ts';
import type { SessionsRepository } from '../../store/sessions.repository.ts';
import { generateToken, hashToken, isId, looksLike, newId } from '../../platform/crypto/tokens.ts';
import { parseProof, parsePublicKey, verifyProof } from '../../platform/crypto/device-keys.ts';
import type { DeviceSummary, DevicesRepository, TrustedDevice } from '../../store/devices.repository.ts';
import { type DeviceFingerprint, similarity } from '../../platform/crypto/fingerprint.ts';
import type { DeviceAlerts, DeviceTrust, DeviceView, PendingDevice, ProofFailure, RecognisedDevice, TrustDecision } from '../../domain/contracts.ts';
import { attemptActor, defaultDeviceName, MAX_USER_AGENT_STORED, type RequestDevice } from '../../platform/context.ts';
import { type GeoLocator, NO_GEO, parseStoredLocation, publicLocation, serialiseLocation } from '../../platform/geo.ts';

export interface DevicesServiceOptions {
  /** The one event writer (it also fills the outboxes). */
  history: History;
  repository: DevicesRepository;
  sessions: SessionsRepository;
  revocation: Revocation;
  alerts?: DeviceAlerts;
  clock: Clock;
  activationTokenTtlSeconds: number;
  deviceTrustTtlDays: number;
  maxTrustedDevices: number;
  /** DEVICE_TOKEN_REUSE_GRACE_SECONDS (docs/trust-model.md). */
  deviceTokenReuseGraceSeconds: number;
  /** The offline location lookup (src/platform/geo.ts): a device records the location of its last address. */
  geo?: GeoLocator;
}

/** What an alert about a device says about the request (the mail feature queues it; it never throws). */
const alertContext = (row: { id: string; device_name: string }, actor: Actor) => ({
  ipAddress: actor.type === 'system' ? null : actor.ipAddress,
  userAgent: actor.type === 'system' ? null : actor.userAgent,
  deviceId: row.id,
  deviceName: row.device_name,
});

/** A proof challenge lives this long (docs/trust-model.md). */
export const DEVICE_CHALLENGE_TTL_SECONDS = 60;

export function createDevicesService(options: DevicesServiceOptions) {
  const { repository, sessions, revocation, clock, maxTrustedDevices, history } = options;
  const geo = options.geo ?? NO_GEO;
  const locationOf = async (ip: string) => serialiseLocation(await geo.locate(ip));
  const trustTtlMs = options.deviceTrustTtlDays * DAY;
  const graceMs = options.deviceTokenReuseGraceSeconds * 1000;
  const activationTtlMs = options.activationTokenTtlSeconds * 1000;

  const event = (userId: string, type: DeviceEventType, device: { id: string; device_name: string }, actor: Actor): EventInput => ({
    userId,
    type,
    deviceId: device.id,
    subjectName: device.device_name,
    actor,
  });
  const notFound = (): never => {
    throw new AppError('DEVICE_NOT_FOUND');
  };

  const view = (row: DeviceSummary, currentTokenHash: string | undefined): DeviceView => ({
    id: row.id,
    device_name: row.device_name,
    device_fingerprint: row.fingerprint,
    browser: row.browser,
    os: row.os,
    device_type: row.device_type,
    user_agent: row.user_agent,
    ip_address: row.ip_address,
    last_ip_address: row.last_ip_address,
    // Only active devices are ever shown (list, rename, activate); revoked ones are history.
    is_active: true,
    is_current: currentTokenHash !== undefined && row.device_token_hash === currentTokenHash,
    created_at: row.created_at,
    trusted_at: row.trusted_at,
    last_used_at: row.last_used_at,
    expires_at: row.expires_at,
    key_bound: row.public_key_jwk !== null,
    granted_by: row.granted_by,
    granted_by_credential_id: row.granted_by_credential_id,
    location: publicLocation(parseStoredLocation(row.location)),
  });

  const hashOfDeviceToken = (token: string | undefined) => (token !== undefined && looksLike('device', token) ? hashToken(token) : undefined);

  /**
   * What the presented device token is: the current token of an active
   * device, a token retired within the grace (counts as current), a token
   * retired after it (a copy exists), or nothing usable. Reads only.
   */
  async function classify(userId: string, device: RequestDevice): Promise<
    | { ok: true; row: TrustedDevice; tokenHash: string; retired: boolean }
    | { ok: false; decision: TrustDecision; row?: TrustedDevice }
  > {
    const tokenHash = hashOfDeviceToken(device.deviceToken);
    if (tokenHash === undefined) return { ok: false, decision: { trusted: false, reason: 'no_token' } };
    let row = await repository.findByTokenHash(tokenHash);
    let retiredAt: number | undefined;
    if (row === undefined) {
      // Only an unknown token costs this second (primary-key) read.
      const retired = await repository.findRetiredToken(tokenHash);
      if (retired !== undefined && retired.user_id === userId) {
        row = await repository.findDevice(userId, retired.device_id);
        retiredAt = retired.retired_at;
      }
    }
    if (row === undefined || row.user_id !== userId) return { ok: false, decision: { trusted: false, reason: 'unknown_token' } };
    const now = clock.now();
    // A device whose trust ran out (housekeeping marked it) says so: the sign-in tells the person "trust expired".
    if (row.status === 'expired') return { ok: false, decision: { trusted: false, reason: 'expired' } };
    if (row.status !== 'active') return { ok: false, decision: { trusted: false, reason: 'inactive' } };
    if (row.expires_at <= now) return { ok: false, decision: { trusted: false, reason: 'expired' } };
    // Before the fingerprint: a copy is a copy whichever browser presents it.
    if (retiredAt !== undefined && now - retiredAt >= graceMs) return { ok: false, row, decision: { trusted: false, reason: 'reuse_detected', deviceId: row.id } };
    const match = similarity(JSON.parse(row.components) as Record<string, string>, device.fingerprint.components);
    if (!match.matches) return { ok: false, row, decision: { trusted: false, reason: 'fingerprint_mismatch', deviceId: row.id, deviceName: row.device_name, differing: match.differing } };
    return { ok: true, row, tokenHash, retired: retiredAt !== undefined };
  }

  /** The proof of possession of a key-bound device; its challenge is used up (one conditional UPDATE) whatever the outcome of the signature. */
  async function proofFailure(row: TrustedDevice, proofHeader: string | undefined): Promise<ProofFailure | undefined> {
    if (row.public_key_jwk === null) return undefined;
    if (proofHeader === undefined || proofHeader === '') return 'missing';
    const proof = parseProof(proofHeader);
    if (proof === undefined) return 'malformed';
    const challengeHash = hashToken(proof.challenge);
    const now = clock.now();
    if (!(await repository.consumeChallenge(challengeHash, now))) return 'unusable_challenge';
    return (await verifyProof(row.public_key_jwk, proof.challenge, proof.signature)) ? undefined : 'bad_signature';
  }

  const trustedDecision = (row: TrustedDevice, newDeviceToken?: string): TrustDecision => ({
    trusted: true,
    deviceId: row.id,
    deviceName: row.device_name,
    expiresAt: row.expires_at,
    newDeviceToken,
  });

  async function evaluate(userId: string, device: RequestDevice): Promise<TrustDecision> {
    const c = await classify(userId, device);
    if (!c.ok) {
      // A retired token with the device's own valid proof would be resynced (see resync), not treated as a copy.
      if (c.decision.trusted || c.decision.reason !== 'reuse_detected' || c.row === undefined || c.row.public_key_jwk === null) return c.decision;
      if ((await proofFailure(c.row, device.proof)) !== undefined) return c.decision;
      const match = similarity(JSON.parse(c.row.components) as Record<string, string>, device.fingerprint.components);
      if (!match.matches) return { trusted: false, reason: 'fingerprint_mismatch', deviceId: c.row.id, deviceName: c.row.device_name, differing: match.differing };
      return trustedDecision(c.row);
    }
    const failure = await proofFailure(c.row, device.proof);
    if (failure !== undefined) return { trusted: false, reason: 'proof_failed', deviceId: c.row.id, why: failure };
    return trustedDecision(c.row);
  }

  /**
   * Before the password is checked: the device the login presents, when its
   * token is a usable one of this user (current, or retired within the
   * grace; active; not expired; the fingerprint matches), with the outcome of
   * its proof when key-bound (the challenge is used up here). Records
   * nothing: the trust check after the password does, reusing this outcome.
   */
  async function recognise(userId: string, device: RequestDevice): Promise<RecognisedDevice | undefined> {
    if (hashOfDeviceToken(device.deviceToken) === undefined) return undefined;
    const c = await classify(userId, device);
    if (!c.ok) return undefined;
    return { deviceId: c.row.id, proof: await proofFailure(c.row, device.proof) };
  }

  /**
   * A retired token after the grace, from a key-bound device, with a valid
   * proof of its own key (consumed here): the same device, whose cookie
   * update was lost (a crash, a killed tab). It is trusted as with its
   * current token: one transaction under the user's lock rotates the
   * CURRENT token (the one the browser never stored) to a fresh one, records
   * `trust_used` and `token_resynced`, and opens the session. No alarm.
   * Undefined when the proof is missing or fails (reuse detection then runs),
   * or when the device is not key-bound. A fingerprint that no longer
   * matches asks for the second factor (fingerprint_mismatch), still without
   * an alarm about a copy.
   */
  async function resync<T>(
    userId: string,
    row: TrustedDevice,
    device: RequestDevice,
    openSession: (trx: Db, trusted: { id: string; name: string }) => Promise<T>,
  ): Promise<{ decision: TrustDecision; session?: T } | undefined> {
    if (row.public_key_jwk === null || device.proof === undefined) return undefined;
    if ((await proofFailure(row, device.proof)) !== undefined) return undefined;
    const actor = attemptActor(device);
    const now = clock.now();
    const match = similarity(JSON.parse(row.components) as Record<string, string>, device.fingerprint.components);
    if (!match.matches) {
      await repository.recordEvents([{ userId, type: 'fingerprint_mismatch', deviceId: row.id, actor }], now);
      await options.alerts?.fingerprintMismatch(userId, { ipAddress: device.fingerprint.ipAddress, userAgent: device.userAgent, deviceId: row.id });
      return { decision: { trusted: false, reason: 'fingerprint_mismatch', deviceId: row.id, deviceName: row.device_name, differing: match.differing } };
    }
    // Looked up before the transaction: a first lookup may read the database file.
    const location = await locationOf(device.fingerprint.ipAddress);
    const outcome = await repository.transaction(async (trx) => {
      await lockUser(trx, userId);
      const newToken = generateToken('device');
      const rotated = await repository.rotateToken(
        trx,
        { userId, deviceId: row.id, presentedHash: row.device_token_hash, newHash: hashToken(newToken), ipAddress: device.fingerprint.ipAddress, location, now },
        event(userId, 'trust_used', row, actor),
      );
      if (!rotated) return undefined;
      await history.append(trx, [event(userId, 'token_resynced', row, actor)], now);
      return { decision: trustedDecision(row, newToken), session: await openSession(trx, { id: row.id, name: row.device_name }) };
    });
    // Revoked, or rotated by another login, between the read and the UPDATE: not trusted now (the second factor is asked).
    return outcome ?? { decision: { trusted: false, reason: 'inactive' } };
  }

  /** A retired token after the grace: the what-ends-what row `device_token_reuse`, with the `reuse_detected` event in its transaction. */
  async function reuseDetected(userId: string, row: TrustedDevice, actor: Actor): Promise<void> {
    try {
      await revocation.run({ kind: 'device_token_reuse', userId, deviceId: row.id, actor }, (trx) =>
        history.append(trx, [{ ...event(userId, 'reuse_detected', row, actor), cause: 'reuse_detected' }], clock.now()),
      );
    } catch (error) {
      // Revoked a moment ago by someone else: nothing left to end, nothing to record twice.
      if (error instanceof NothingToEnd) return;
      throw error;
    }
    await options.alerts?.deviceTokenReused(userId, alertContext(row, actor));
  }


  /**
   * Classifies an activation token the caller presented. Unknown and
   * another user's token give the same answer, so ids cannot be probed.
   */
  async function findUsableActivation(userId: string, token: string, device: RequestDevice) {
    const notFound = new AppError('ACTIVATION_TOKEN_NOT_FOUND');
    if (!looksLike('activation', token)) throw notFound;
    const row = await repository.findActivation(hashToken(token));
    if (row === undefined || row.user_id !== userId) throw notFound;
    const now = clock.now();
    const unusable = whyUnusable(row, now);
    if (unusable) throw unusable;
    const match = similarity(JSON.parse(row.components) as Record<string, string>, device.fingerprint.components);
    if (!match.matches) {
      throw new AppError('FINGERPRINT_MISMATCH', undefined, {
        details: { differing: match.differing },
      });
    }
    return { row, now };
  }

  /** Why a stored activation token cannot be used now, or undefined when it can. */
  const whyUnusable = (row: { consumed_at: number | null; revoked_at: number | null; expires_at: number }, now: number): AppError | undefined => {
    if (row.consumed_at !== null) return new AppError('ACTIVATION_TOKEN_USED');
    if (row.revoked_at !== null) return activationRevoked();
    if (row.expires_at <= now) return new AppError('ACTIVATION_TOKEN_EXPIRED');
    return undefined;
  };
  const activationRevoked = () =>
    new AppError('ACTIVATION_TOKEN_EXPIRED', 'This activation token was revoked (the session it came from ended, or the account was secured). Verify your second factor again.');

  /** The token lost a race (used, revoked or expired between the read and the UPDATE): say which, from its state now. */
  async function lostConsume(tokenHash: string, now: number): Promise<AppError> {
    const row = await repository.findActivation(tokenHash);
    return (row && whyUnusable(row, now)) ?? new AppError('ACTIVATION_TOKEN_USED');
  }

  const trust: DeviceTrust = {
    evaluate,
    recognise,

    async check(userId, device, openSession, recognised) {
      const c = await classify(userId, device);
      const actor = attemptActor(device);
      const now = clock.now();
      if (!c.ok) {
        const { decision } = c;
        if (decision.trusted) return { decision };
        if (decision.reason === 'fingerprint_mismatch') {
          await repository.recordEvents([{ userId, type: 'fingerprint_mismatch', deviceId: decision.deviceId, actor }], now);
          await options.alerts?.fingerprintMismatch(userId, { ipAddress: device.fingerprint.ipAddress, userAgent: device.userAgent, deviceId: decision.deviceId });
        } else if (decision.reason === 'reuse_detected' && c.row) {
          // A crash is not theft: the device's own key settles whether this is a copy.
          const resynced = await resync(userId, c.row, device, openSession);
          if (resynced !== undefined) return resynced;
          await reuseDetected(userId, c.row, actor);
        }
        return { decision };
      }
      const { row, tokenHash } = c;
      // The recognition before the password used the proof's challenge up: its outcome stands.
      const failure = recognised !== undefined && recognised.deviceId === row.id ? recognised.proof : await proofFailure(row, device.proof);
      if (failure !== undefined) {
        await repository.recordEvents([event(userId, 'proof_failed', row, actor)], now);
        await options.alerts?.deviceProofFailed(userId, alertContext(row, actor));
        return { decision: { trusted: false, reason: 'proof_failed', deviceId: row.id, why: failure } };
      }
      const used = event(userId, 'trust_used', row, actor);
      const trusted = { id: row.id, name: row.device_name };
      // Looked up before the transaction: the first lookup of an address family reads the database file.
      const location = await locationOf(device.fingerprint.ipAddress);
      const outcome = await repository.transaction(async (trx) => {
        // The user's row first, as every revocation does: the two run one after the other.
        await lockUser(trx, userId);
        if (!c.retired) {
          const newToken = generateToken('device');
          const rotated = await repository.rotateToken(
            trx,
            { userId, deviceId: row.id, presentedHash: tokenHash, newHash: hashToken(newToken), ipAddress: device.fingerprint.ipAddress, location, now },
            used,
          );
          if (rotated) return { decision: trustedDecision(row, newToken), session: await openSession(trx, trusted) };
        }
        return undefined;
      });
      if (outcome !== undefined) return outcome;
      if (!c.retired) {
        // Lost the race to a concurrent login with the same token (it rotated first),
        // or the device was revoked meanwhile: ask the token's state again.
        const retired = await repository.findRetiredToken(tokenHash);
        if (retired === undefined || retired.device_id !== row.id || now - retired.retired_at >= graceMs) return { decision: { trusted: false, reason: 'inactive' } };
      }
      // Within the grace: trusted like the current token, not rotated again (see the module comment).
      // A revoke that commits before this transaction wins: no bypass, no session.
      return (
        (await repository.transaction(async (trx) => {
          await lockUser(trx, userId);
          if (!(await repository.touch(trx, userId, row.id, now, device.fingerprint.ipAddress, location))) return undefined;
          await history.append(trx, [used], now);
          return { decision: trustedDecision(row), session: await openSession(trx, trusted) };
        })) ?? { decision: { trusted: false, reason: 'inactive' } }
      );
    },

    async createPendingDevice(trx, userId, device, sessionId, grant) {
      const now = clock.now();
      const token = generateToken('activation');
      const fp = device.fingerprint;
      const location = await locationOf(fp.ipAddress);
      const row = {
        id: newId(),
        user_id: userId,
        token_hash: hashToken(token),
        fingerprint: fp.fingerprint,
        components: JSON.stringify(fp.components),
        browser: fp.browser,
        os: fp.os,
        device_type: fp.deviceType,
        user_agent: device.userAgent.slice(0, MAX_USER_AGENT_STORED),
        ip_address: fp.ipAddress,
        device_name: defaultDeviceName(fp.browser, fp.os),
        created_at: now,
        expires_at: now + activationTtlMs,
        consumed_at: null,
        outcome: null,
        session_id: sessionId,
        revoked_at: null,
        granted_by: grant.factor,
        granted_by_credential_id: grant.factor === 'webauthn' ? grant.credentialId : null,
        location,
      };
      await repository.insertActivation(trx, row, event(userId, 'activation_created', row, { type: 'user', sessionId, ipAddress: fp.ipAddress, userAgent: device.userAgent }));
      return {
        id: row.id,
        device_name: row.device_name,
        device_type: row.device_type,
        device_fingerprint: row.fingerprint,
        activation_token: token,
        expires_at: row.expires_at,
        is_active: false,
      };
    },

    async reanchor(userId, known, request) {
      const now = clock.now();
      const fp = request.fingerprint;
      const location = await locationOf(fp.ipAddress);
      return repository.transaction(async (trx) => {
        const updated = await repository.reanchor(trx, userId, known.id, now, {
          fingerprint: fp.fingerprint,
          components: JSON.stringify(fp.components),
          browser: fp.browser,
          os: fp.os,
          device_type: fp.deviceType,
          user_agent: request.userAgent.slice(0, MAX_USER_AGENT_STORED),
          last_ip_address: fp.ipAddress,
          location,
        });
        if (updated) await history.append(trx, [event(userId, 'fingerprint_updated', known, attemptActor(request))], now);
        return updated;
      });
    },
  };

  return {
    trust,
    trustTtlMs,

    async activate(userId: string, token: string, deviceName: string | undefined, publicKey: unknown, device: RequestDevice, actor: Actor) {
      // The key is checked first: a refused key leaves the activation token unused, to retry without it.
      const key = publicKey === undefined ? undefined : await parsePublicKey(publicKey);
      const { row } = await findUsableActivation(userId, token, device);
      const deviceToken = generateToken('device');
      const tokenHash = hashToken(deviceToken);
      const now = clock.now();
      const fp = device.fingerprint;
      const location = await locationOf(fp.ipAddress);
      const summary = await repository.transaction(async (trx) => {
        // The user's row first (the lock order of every security change, src/store/locks.ts).
        await lockUser(trx, userId);
        if (!(await repository.consumeActivation(trx, row.id, userId, now, 'activated'))) return undefined;
        // The session the second factor opened must still be live (what ends what, docs/sessions.md: its end ends this token).
        if (row.session_id !== null && !(await sessions.attachDevice(trx, row.session_id, userId, row.id, now))) throw activationRevoked();
        const { token_hash: _hash, expires_at: _expires, consumed_at: _consumed, outcome: _outcome, session_id: _session, revoked_at: _revoked, ...recorded } = row;
        const deviceRow = {
          ...recorded,
          device_name: deviceName ?? row.device_name,
          status: 'active' as const,
          device_token_hash: tokenHash,
          last_ip_address: fp.ipAddress,
          location,
          trusted_at: now,
          last_used_at: now,
          expires_at: now + trustTtlMs,
          revoked_at: null,
          public_key_jwk: key?.stored ?? null,
        };
        await repository.insertDevice(trx, deviceRow);
        const evicted = await repository.evictBeyond(trx, userId, maxTrustedDevices, now);
        await history.append(
          trx,
          [event(userId, 'activated', deviceRow, actor), ...evicted.map((e) => ({ ...event(userId, 'evicted', e, actor), cause: 'max_devices' as const }))],
          now,
        );
        return deviceRow;
      });
      // Classified after the transaction: a read inside it would need a second connection while holding one.
      if (summary === undefined) throw await lostConsume(row.token_hash, now);
      await options.alerts?.deviceTrusted(userId, { ipAddress: fp.ipAddress, userAgent: device.userAgent, deviceId: summary.id, deviceName: summary.device_name });
      return { device: view(summary, tokenHash), deviceToken };
    },

    async skip(userId: string, token: string, device: RequestDevice, actor: Actor): Promise<void> {
      const { row } = await findUsableActivation(userId, token, device);
      const now = clock.now();
      const consumed = await repository.transaction(async (trx) => {
        if (!(await repository.consumeActivation(trx, row.id, userId, now, 'skipped'))) return false;
        await history.append(trx, [event(userId, 'activation_skipped', row, actor)], now);
        return true;
      });
      if (!consumed) throw await lostConsume(row.token_hash, now);
    },

    /** A proof-of-possession challenge (docs/trust-model.md): 256 random bits, stored as SHA-256, single-use, 60 s. */
    async issueChallenge(): Promise<{ challenge: string; expiresIn: number }> {
      const challenge = generateToken('deviceChallenge');
      const now = clock.now();
      await repository.insertChallenge(hashToken(challenge), now, now + DEVICE_CHALLENGE_TTL_SECONDS * 1000);
      return { challenge, expiresIn: DEVICE_CHALLENGE_TTL_SECONDS };
    },

    /** Consumes a proof challenge (one conditional UPDATE): true exactly once for an issued, unexpired one. */
    async consumeChallenge(challenge: string): Promise<boolean> {
      if (!looksLike('deviceChallenge', challenge)) return false;
      return repository.consumeChallenge(hashToken(challenge), clock.now());
    },

    async list(userId: string, currentDeviceToken: string | undefined): Promise<DeviceView[]> {
      const hash = hashOfDeviceToken(currentDeviceToken);
      const rows = await repository.listActive(userId, clock.now());
      return rows.map((row) => view(row, hash));
    },

    /**
     * Revokes one device and ends its sessions (what ends what, docs/sessions.md, "revoke one
     * device"); `wasCurrent` tells whether it was the caller's own device.
     */
    async revoke(userId: string, deviceId: string, actor: Actor, currentDeviceToken: string | undefined): Promise<{ wasCurrent: boolean; sessionsEnded: number }> {
      if (!isId(deviceId)) notFound();
      const currentHash = hashOfDeviceToken(currentDeviceToken);
      const current = currentHash === undefined ? undefined : await repository.findByTokenHash(currentHash);
      try {
        const ended = await revocation.run({ kind: 'device_revoked', userId, deviceId, actor });
        return { wasCurrent: current?.id === deviceId && current.user_id === userId, sessionsEnded: ended.sessions.length };
      } catch (error) {
        if (error instanceof NothingToEnd) notFound();
        throw error;
      }
    },

    /** Revokes every device and ends the sessions opened on them (what ends what, docs/sessions.md, "revoke all devices"). */
    async revokeAll(userId: string, actor: Actor): Promise<{ revoked: number; sessionsEnded: number }> {
      const ended = await revocation.run({ kind: 'all_devices_revoked', userId, actor });
      return { revoked: ended.devices.length, sessionsEnded: ended.sessions.length };
    },

    /**
     * A WebAuthn credential was removed (docs/passkeys.md): the trust it granted goes
     * with it, inside the caller's transaction. Each device it made trusted is
     * the "revoke one device" row of what ends what (its sessions end too), and its
     * pending activation tokens are revoked (they answer 410).
     */
    async revokeGrantedBy(trx: Transaction<Database>, userId: string, credentialId: string, actor: Actor): Promise<number> {
      const now = clock.now();
      const deviceIds = await repository.activeGrantedBy(trx, userId, credentialId, now);
      for (const deviceId of deviceIds) await revocation.apply(trx, { kind: 'device_revoked', userId, deviceId, actor });
      const activations = await repository.revokeActivations(trx, userId, { grantedByCredentialId: credentialId }, now);
      await history.append(trx, activations.map((a) => ({ ...event(userId, 'activation_revoked', a, actor), cause: 'user' as const })), now);
      return deviceIds.length;
    },

    async rename(userId: string, deviceId: string, name: string, currentDeviceToken: string | undefined, actor: Actor): Promise<DeviceView> {
      if (!isId(deviceId)) notFound();
      const row = await repository.rename(userId, deviceId, name, clock.now(), actor);
      return view(row ?? notFound(), hashOfDeviceToken(currentDeviceToken));
    },

    async events(userId: string, limit: number, before: string | undefined): Promise<{ events: StoredEvent[]; nextBefore: string | null }> {
      const rows = await listEvents(repository.db, userId, limit + 1, before);
      const page = rows.slice(0, limit);
      return { events: page, nextBefore: rows.length > limit ? page[page.length - 1]!.id : null };
    },
  };
}

export type DevicesService = ReturnType<typeof createDevicesService>;
