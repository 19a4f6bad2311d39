/**
 * The admin API (docs/admin-and-webhooks.md): a help desk looks a user up by email, lists
 * and revokes the user's devices and sessions, reads the user's events.
 *
 * Keys: `tdk_` + 256 random bits (src/platform/crypto/tokens.ts), created by
 * `npm run admin -- create-key` and shown once; only SHA-256(key) is stored.
 * A key lives until revoked by name (`revoke-key`); a revoked or unknown key
 * is 401 at once, on every instance (each request reads the key row by its
 * hash: no cache). Each key carries scopes; a route needs its scope (403).
 *
 * Separation: an admin key is never an access token (it is not a JWT, so
 * every user route refuses it) and an access token is never an admin key
 * (it has no `tdk_` prefix, so /admin refuses it before any lookup).
 *
 * Same rules as the user: revocations run the same rows of what ends what (docs/sessions.md)
 * (src/domain/ledger.ts) with an admin actor (cause `admin`). Audit: every admin
 * action is an event in the user's history whose actor is the key's name:
 * revocations write their what-ends-what events; reads write `admin_viewed` (its
 * subject name says what was read) before reading; an admin "end every
 * session" always writes `sessions_revoked_all`, like "revoke all devices"
 * always writes `revoked_all`.
 *
 * Threats: a leaked key (shown once, hashed at rest, revocable, scoped,
 * rate-limited per key, every use in the user's history); a user token
 * escalating to admin; admin actions that leave no trace.
 */
import type { Kysely } from 'kysely';
import type { UsersRepository } from '../../store/users.repository.ts';
import type { Clock } from '../../platform/clock.ts';
import { MINUTE } from '../../platform/clock.ts';
import { lockUser } from '../../store/locks.ts';
import type { Database } from '../../store/schema.ts';
import type { DeviceDirectory, MfaStatus, SessionDirectory } from '../../domain/contracts.ts';
import { AppError, UnauthorizedError } from '../../platform/errors.ts';
import { type Actor, type History } from '../../store/history.ts';
import { NothingToEnd, type Revocation } from '../../domain/ledger.ts';
import { generateToken, hashToken, isId, looksLike, newId } from '../../platform/crypto/tokens.ts';
import type { AdminRepository } from '../../store/admin.repository.ts';

export const ADMIN_SCOPES = ['users:read', 'devices:read', 'devices:write', 'sessions:read', 'sessions:write', 'events:read', 'ssf:streams'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

export const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The caller of an admin route. */
export interface AdminPrincipal {
  keyId: string;
  name: string;
  scopes: ReadonlySet<string>;
}

/** Where the admin request came from, for the actor of its events. */
export interface AdminRequest {
  principal: AdminPrincipal;
  ipAddress: string;
  userAgent: string | null;
}

export class AdminKeyError extends Error {}

/** Key management for the operator's command (src/app/admin-cli.ts). */
export function createAdminKeys(repository: AdminRepository, clock: Clock) {
  return {
    /** Returns the key: the only time it exists outside the caller. */
    async create(name: string, scopes: readonly string[]): Promise<{ key: string; name: string; scopes: string[] }> {
      if (!KEY_NAME.test(name)) throw new AdminKeyError('The name must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.');
      const wanted = [...new Set(scopes.map((s) => s.trim()).filter((s) => s !== ''))];
      if (wanted.length === 0) throw new AdminKeyError(`Give at least one scope: ${ADMIN_SCOPES.join(', ')}.`);
      const unknown = wanted.filter((s) => !(ADMIN_SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0) throw new AdminKeyError(`Unknown scope(s): ${unknown.join(', ')}. Known: ${ADMIN_SCOPES.join(', ')}.`);
      const key = generateToken('admin');
      const inserted = await repository.insert({ id: newId(), name, key_hash: hashToken(key), scopes: wanted.join(','), created_at: clock.now(), revoked_at: null, last_used_at: null });
      if (!inserted) throw new AdminKeyError(`A key named "${name}" exists (or existed): names are kept forever, as they name the actor in users' histories.`);
      return { key, name, scopes: wanted };
    },

    list: () => repository.list(),

    async revoke(name: string): Promise<void> {
      if (!(await repository.revoke(name, clock.now()))) throw new AdminKeyError(`No live key named "${name}".`);
    },
  };
}

export interface AdminServiceOptions {
  /** The one event writer (it also fills the outboxes). */
  history: History;
  db: Kysely<Database>;
  repository: AdminRepository;
  users: UsersRepository;
  mfa: MfaStatus;
  devices: DeviceDirectory;
  sessions: SessionDirectory;
  revocation: Revocation;
  clock: Clock;
}

export function createAdminService(options: AdminServiceOptions) {
  const { db, repository, users, mfa, devices, sessions, revocation, clock, history } = options;

  const actorOf = (request: AdminRequest): Actor => ({ type: 'admin', name: request.principal.name, ipAddress: request.ipAddress, userAgent: request.userAgent });
  const userNotFound = () => new AppError('USER_NOT_FOUND');

  async function requireUser(userId: string) {
    const user = isId(userId) ? await users.findById(userId) : undefined;
    if (!user) throw userNotFound();
    return user;
  }

  /** Records the read in the user's history first: a read that cannot be recorded does not happen. */
  async function viewed(request: AdminRequest, userId: string, what: 'account' | 'devices' | 'sessions' | 'events'): Promise<void> {
    await history.append(db, [{ userId, type: 'admin_viewed', subjectName: what, actor: actorOf(request) }], clock.now());
  }

  async function profile(user: { id: string; email: string; display_name: string | null; created_at: number }) {
    return { user_id: user.id, email: user.email, display_name: user.display_name, mfa_enabled: await mfa.isEnabled(user.id), created_at: user.created_at };
  }

  return {
    /** The bearer check of /admin: an admin key, live. Anything else is 401. */
    async authenticate(key: string): Promise<AdminPrincipal> {
      if (!looksLike('admin', key)) throw new UnauthorizedError('A valid admin API key is required.');
      const row = await repository.findLiveByHash(hashToken(key));
      if (!row) throw new UnauthorizedError('This admin API key is not valid or has been revoked.');
      const now = clock.now();
      if (row.last_used_at === null || now - row.last_used_at >= MINUTE) await repository.touch(row.id, now, MINUTE);
      return { keyId: row.id, name: row.name, scopes: new Set(row.scopes.split(',')) };
    },

    requireScope(principal: AdminPrincipal, scope: AdminScope): void {
      if (!principal.scopes.has(scope)) {
        throw new AppError('FORBIDDEN', `This admin API key lacks the "${scope}" scope.`, { details: { required_scope: scope } });
      }
    },

    async findUserByEmail(request: AdminRequest, email: string) {
      const user = await users.findByEmail(email.trim().toLowerCase());
      if (!user) throw userNotFound();
      await viewed(request, user.id, 'account');
      return profile(user);
    },

    async getUser(request: AdminRequest, userId: string) {
      const user = await requireUser(userId);
      await viewed(request, user.id, 'account');
      return profile(user);
    },

    async listDevices(request: AdminRequest, userId: string) {
      await requireUser(userId);
      await viewed(request, userId, 'devices');
      return devices.list(userId, undefined);
    },

    async listSessions(request: AdminRequest, userId: string) {
      await requireUser(userId);
      await viewed(request, userId, 'sessions');
      // No session is the admin's own: none is current.
      return sessions.list(userId, '');
    },

    async events(request: AdminRequest, userId: string, limit: number, before: string | undefined) {
      await requireUser(userId);
      await viewed(request, userId, 'events');
      return devices.events(userId, limit, before);
    },

    /** The "revoke one device" row of what ends what (docs/sessions.md), as the user's own revoke. */
    async revokeDevice(request: AdminRequest, userId: string, deviceId: string): Promise<{ sessionsEnded: number }> {
      await requireUser(userId);
      if (!isId(deviceId)) throw new AppError('DEVICE_NOT_FOUND');
      try {
        const ended = await revocation.run({ kind: 'device_revoked', userId, deviceId, actor: actorOf(request) });
        return { sessionsEnded: ended.sessions.length };
      } catch (error) {
        if (error instanceof NothingToEnd) throw new AppError('DEVICE_NOT_FOUND');
        throw error;
      }
    },

    /** The "revoke all devices" row of what ends what (docs/sessions.md). */
    async revokeAllDevices(request: AdminRequest, userId: string): Promise<{ revoked: number; sessionsEnded: number }> {
      await requireUser(userId);
      const ended = await revocation.run({ kind: 'all_devices_revoked', userId, actor: actorOf(request) });
      return { revoked: ended.devices.length, sessionsEnded: ended.sessions.length };
    },

    /** The "end one session" row of what ends what (docs/sessions.md). */
    async endSession(request: AdminRequest, userId: string, sessionId: string): Promise<void> {
      await requireUser(userId);
      if (!isId(sessionId)) throw new AppError('SESSION_NOT_FOUND');
      try {
        await revocation.run({ kind: 'session_ended', userId, sessionId, actor: actorOf(request) });
      } catch (error) {
        if (error instanceof NothingToEnd) throw new AppError('SESSION_NOT_FOUND');
        throw error;
      }
    },

    /** "Sign out everywhere": every session ends; recorded even when none was live. */
    async endAllSessions(request: AdminRequest, userId: string): Promise<number> {
      await requireUser(userId);
      const actor = actorOf(request);
      const { sessions: ended } = await revocation.run({ kind: 'sessions_ended', userId, actor }, async (trx) => {
        await lockUser(trx, userId); // the what-ends-what lock order: the user's row first (src/store/locks.ts)
        await history.append(trx, [{ userId, type: 'sessions_revoked_all', cause: 'admin', actor }], clock.now());
      });
      return ended.length;
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
