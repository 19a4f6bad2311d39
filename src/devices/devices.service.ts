/**
 * Trusted devices: the rules of SPEC §4 and §5.3.
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
 */
import type { Clock } from '../clock.ts';
import { DAY } from '../clock.ts';
import { AppError } from '../errors.ts';
import { generateToken, hashToken, looksLike, newId } from '../security/tokens.ts';
import { type DeviceEvent, type DeviceSummary, type DevicesRepository, type EventInput, insertEvents } from './devices.repository.ts';
import { type DeviceFingerprint, similarity } from './fingerprint.ts';

/** What the service knows about the device making the request. */
export interface RequestDevice {
  fingerprint: DeviceFingerprint;
  userAgent: string;
  /** The device token from the cookie or the x-device-token header, if any. */
  deviceToken: string | undefined;
}

/** Who caused an event, for the device history. */
export interface EventMeta {
  ipAddress: string | null;
  userAgent: string | null;
}

const metaOf = (device: RequestDevice): EventMeta => ({ ipAddress: device.fingerprint.ipAddress, userAgent: device.userAgent });

export type TrustDecision =
  | { trusted: true; deviceId: string }
  | { trusted: false; reason: 'fingerprint_mismatch'; deviceId: string; differing: string[] }
  | { trusted: false; reason: 'no_token' | 'unknown_token' | 'inactive' | 'expired' };

export interface PendingDevice {
  id: string;
  device_name: string;
  device_fingerprint: string;
  activation_token: string;
  expires_at: number;
  is_active: false;
}

/** The seam the authentication service calls at login and MFA verify. */
export interface DeviceTrust {
  /** Full trust check of SPEC §4; records `trust_used` or `fingerprint_mismatch`. */
  check(userId: string, device: RequestDevice): Promise<TrustDecision>;
  /** Like check, without recording anything. */
  evaluate(userId: string, device: RequestDevice): Promise<TrustDecision>;
  /** After a verified second factor: a pending device and its activation token. */
  createPendingDevice(userId: string, device: RequestDevice): Promise<PendingDevice>;
  /**
   * After a verified second factor on a device whose token is valid but whose
   * fingerprint drifted (same browser family and OS): store the current
   * components, so the next sign-in is recognised again. False when the
   * device is no longer active.
   */
  reanchor(userId: string, deviceId: string, device: RequestDevice): Promise<boolean>;
  /** Revokes every trusted device of the user (password change, MFA off, new backup codes). */
  revokeAll(userId: string, meta: EventMeta | undefined): Promise<number>;
}

export interface DeviceView {
  id: string;
  device_name: string;
  device_fingerprint: string;
  browser: string;
  os: string;
  device_type: string;
  user_agent: string;
  ip_address: string;
  last_ip_address: string;
  is_active: boolean;
  is_current: boolean;
  created_at: number;
  trusted_at: number;
  last_used_at: number;
  expires_at: number;
}

export interface DevicesServiceOptions {
  repository: DevicesRepository;
  clock: Clock;
  activationTokenTtlSeconds: number;
  deviceTrustTtlDays: number;
  maxTrustedDevices: number;
}

const MAX_USER_AGENT_STORED = 512;

export function defaultDeviceName(browser: string, os: string): string {
  return `${browser} on ${os}`;
}

export function createDevicesService(options: DevicesServiceOptions) {
  const { repository, clock, maxTrustedDevices } = options;
  const trustTtlMs = options.deviceTrustTtlDays * DAY;
  const activationTtlMs = options.activationTokenTtlSeconds * 1000;

  const event = (userId: string, deviceId: string | null, type: EventInput['type'], meta: EventMeta | RequestDevice | undefined): EventInput => {
    const m = meta && 'fingerprint' in meta ? metaOf(meta) : meta;
    return { userId, deviceId, type, ipAddress: m?.ipAddress ?? null, userAgent: m?.userAgent?.slice(0, MAX_USER_AGENT_STORED) ?? null };
  };
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
  });

  const hashOfDeviceToken = (token: string | undefined) => (token !== undefined && looksLike('device', token) ? hashToken(token) : undefined);

  async function evaluate(userId: string, device: RequestDevice): Promise<TrustDecision> {
    const tokenHash = hashOfDeviceToken(device.deviceToken);
    if (tokenHash === undefined) return { trusted: false, reason: 'no_token' };
    const row = await repository.findByTokenHash(tokenHash);
    if (row === undefined || row.user_id !== userId) return { trusted: false, reason: 'unknown_token' };
    if (row.status !== 'active') return { trusted: false, reason: 'inactive' };
    if (row.expires_at <= clock.now()) return { trusted: false, reason: 'expired' };
    const match = similarity(JSON.parse(row.components) as Record<string, string>, device.fingerprint.components);
    if (!match.matches) return { trusted: false, reason: 'fingerprint_mismatch', deviceId: row.id, differing: match.differing };
    return { trusted: true, deviceId: row.id };
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
    if (row.consumed_at !== null) throw activationUsed();
    if (row.expires_at <= now) throw activationExpired();
    const match = similarity(JSON.parse(row.components) as Record<string, string>, device.fingerprint.components);
    if (!match.matches) {
      throw new AppError('FINGERPRINT_MISMATCH', undefined, {
        details: { differing: match.differing },
      });
    }
    return { row, now };
  }

  const activationUsed = () => new AppError('ACTIVATION_TOKEN_USED');
  const activationExpired = () => new AppError('ACTIVATION_TOKEN_EXPIRED');

  /** The token lost a race or crossed its expiry between the read and the UPDATE. */
  const lostConsume = (expiresAt: number, now: number) => (expiresAt <= now ? activationExpired() : activationUsed());

  const trust: DeviceTrust = {
    evaluate,

    async check(userId, device) {
      const decision = await evaluate(userId, device);
      const now = clock.now();
      if (decision.trusted) {
        // A revoke that lands between the read and this UPDATE wins: no bypass.
        const stillActive = await repository.touch(userId, decision.deviceId, now, device.fingerprint.ipAddress);
        if (!stillActive) return { trusted: false, reason: 'inactive' };
        await repository.recordEvents([event(userId, decision.deviceId, 'trust_used', device)], now);
        return { trusted: true, deviceId: decision.deviceId };
      }
      if (decision.reason === 'fingerprint_mismatch') {
        await repository.recordEvents([event(userId, decision.deviceId, 'fingerprint_mismatch', device)], now);
      }
      return decision;
    },

    async createPendingDevice(userId, device) {
      const now = clock.now();
      const token = generateToken('activation');
      const fp = device.fingerprint;
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
      };
      await repository.insertActivation(row, event(userId, row.id, 'activation_created', device));
      return {
        id: row.id,
        device_name: row.device_name,
        device_fingerprint: row.fingerprint,
        activation_token: token,
        expires_at: row.expires_at,
        is_active: false,
      };
    },

    async reanchor(userId, deviceId, device) {
      const now = clock.now();
      const fp = device.fingerprint;
      return repository.transaction(async (trx) => {
        const updated = await repository.reanchor(trx, userId, deviceId, now, {
          fingerprint: fp.fingerprint,
          components: JSON.stringify(fp.components),
          browser: fp.browser,
          os: fp.os,
          device_type: fp.deviceType,
          user_agent: device.userAgent.slice(0, MAX_USER_AGENT_STORED),
          last_ip_address: fp.ipAddress,
        });
        if (updated) await insertEvents(trx, [event(userId, deviceId, 'fingerprint_updated', device)], now);
        return updated;
      });
    },

    revokeAll: (userId, meta) => revokeAll(userId, meta),
  };

  async function revokeAll(userId: string, meta: EventMeta | undefined): Promise<number> {
    const now = clock.now();
    return repository.transaction(async (trx) => {
      const ids = await repository.revokeAll(trx, userId, now);
      if (ids.length > 0) {
        await insertEvents(trx, [event(userId, null, 'revoked_all', meta), ...ids.map((id) => event(userId, id, 'revoked', meta))], now);
      }
      return ids.length;
    });
  }

  return {
    trust,
    trustTtlMs,

    async activate(userId: string, token: string, deviceName: string | undefined, device: RequestDevice) {
      const { row } = await findUsableActivation(userId, token, device);
      const deviceToken = generateToken('device');
      const tokenHash = hashToken(deviceToken);
      const now = clock.now();
      const fp = device.fingerprint;
      const summary = await repository.transaction(async (trx) => {
        if (!(await repository.consumeActivation(trx, row.id, userId, now, 'activated'))) throw lostConsume(row.expires_at, now);
        const { token_hash: _hash, expires_at: _expires, consumed_at: _consumed, outcome: _outcome, ...recorded } = row;
        const deviceRow = {
          ...recorded,
          device_name: deviceName ?? row.device_name,
          status: 'active' as const,
          device_token_hash: tokenHash,
          last_ip_address: fp.ipAddress,
          trusted_at: now,
          last_used_at: now,
          expires_at: now + trustTtlMs,
          revoked_at: null,
        };
        await repository.insertDevice(trx, deviceRow);
        const evicted = await repository.evictBeyond(trx, userId, maxTrustedDevices, now);
        await insertEvents(trx, [event(userId, row.id, 'activated', device), ...evicted.map((id) => event(userId, id, 'evicted', device))], now);
        return deviceRow;
      });
      return { device: view(summary, tokenHash), deviceToken };
    },

    async skip(userId: string, token: string, device: RequestDevice): Promise<void> {
      const { row } = await findUsableActivation(userId, token, device);
      const now = clock.now();
      await repository.transaction(async (trx) => {
        if (!(await repository.consumeActivation(trx, row.id, userId, now, 'skipped'))) throw lostConsume(row.expires_at, now);
        await insertEvents(trx, [event(userId, row.id, 'activation_skipped', device)], now);
      });
    },

    notFound,

    async list(userId: string, currentDeviceToken: string | undefined): Promise<DeviceView[]> {
      const hash = hashOfDeviceToken(currentDeviceToken);
      const rows = await repository.listActive(userId, clock.now());
      return rows.map((row) => view(row, hash));
    },

    /** Revokes one device; `wasCurrent` tells whether it was the caller's own device. */
    async revoke(userId: string, deviceId: string, meta: EventMeta, currentDeviceToken: string | undefined): Promise<{ wasCurrent: boolean }> {
      const now = clock.now();
      const tokenHash = await repository.transaction(async (trx) => {
        const revoked = await repository.revoke(trx, userId, deviceId, now);
        if (revoked === undefined) return undefined;
        await insertEvents(trx, [event(userId, deviceId, 'revoked', meta)], now);
        return revoked;
      });
      if (tokenHash === undefined) notFound();
      return { wasCurrent: tokenHash === hashOfDeviceToken(currentDeviceToken) };
    },

    revokeAll,

    async rename(userId: string, deviceId: string, name: string, currentDeviceToken: string | undefined): Promise<DeviceView> {
      const row = await repository.rename(userId, deviceId, name, clock.now());
      return view(row ?? notFound(), hashOfDeviceToken(currentDeviceToken));
    },

    async events(userId: string, limit: number, before: string | undefined): Promise<{ events: DeviceEvent[]; nextBefore: string | null }> {
      const rows = await repository.listEvents(userId, limit + 1, before);
      const page = rows.slice(0, limit);
      return { events: page, nextBefore: rows.length > limit ? page[page.length - 1]!.id : null };
    },
  };
}

export type DevicesService = ReturnType<typeof createDevicesService>;
