/**
 * What the account sends, and when.
 *
 * Enqueue side (`createAccountMail`): called by requests. Each call is one
 * INSERT into the outbox holding only non-secret facts (device name,
 * browser/OS, IP, time, device id): no token, no rendered body. It never
 * throws: a mail that cannot be queued is logged and the request that
 * caused it still succeeds (docs/email.md: sending never fails the request).
 *
 * Compose side (`createAccountMailComposer`): called by the background
 * sender. It mints the single-use token of the mail's link at send time
 * (so it exists only as a hash in email_tokens and as plain text in the mail
 * itself, never in the outbox, a file other than the mail, or a log) and
 * renders the plain-text and HTML parts. A password-reset row for an address
 * with no account is dropped here, off the request path: the request did the
 * same single INSERT either way.
 *
 * Token lifetimes: verification 24 h, reset 30 min, report 7 days, counted
 * from when the mail is sent.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { type Clock, DAY, MINUTE } from '../../platform/clock.ts';
import type { Database, EmailTokenPurpose, MailKind } from '../../store/schema.ts';
import { describeDevice } from '../../platform/crypto/fingerprint.ts';
import type { Composer } from './mail.sender.ts';
import { type MailContent, renderMail } from '../../platform/mail/templates.ts';
import { enqueueMail, type OutboxRow } from '../../store/mail-outbox.repository.ts';
import { generateToken, hashToken, newId, type TokenKind } from '../../platform/crypto/tokens.ts';
import type { AccountRepository } from '../../store/account.repository.ts';
import { describeLocation, GEO_ATTRIBUTION, type GeoLocator, NO_GEO, publicLocation } from '../../platform/geo.ts';

export const VERIFICATION_TTL_MS = DAY;
export const RESET_TTL_MS = 30 * MINUTE;
export const REPORT_TTL_MS = 7 * DAY;
/** Mismatch alerts an attacker holding the password and a copied token could repeat: one per device per hour. */
const MISMATCH_ALERT_BUCKET_MS = 60 * MINUTE;

/**
 * A new-sign-in alert waits this long before it is sent: when the person
 * trusts the device on the same page meanwhile, the "device trusted" alert
 * says it all and this one is dropped (docs/security-center.md).
 */
export const NEW_SIGN_IN_ALERT_DELAY_MS = MINUTE;

/** What an alert says about the device and request it concerns (an Actor will do: its session is the one "This wasn't me" ends). */
export type AlertContext =
  | { ipAddress: string | null; userAgent: string | null; deviceId?: string | null; deviceName?: string | null; sessionId?: string | null }
  | { type: 'system' };

const facts = (context: AlertContext) =>
  'ipAddress' in context
    ? { ipAddress: context.ipAddress, userAgent: context.userAgent, deviceId: context.deviceId ?? null, deviceName: context.deviceName ?? null, sessionId: context.sessionId ?? null }
    : { ipAddress: null, userAgent: null, deviceId: null, deviceName: null, sessionId: null };

/** A sign-in the owner is told about (docs/security-center.md). */
export interface NewSignInAlert {
  sessionId: string;
  ipAddress: string;
  userAgent: string;
  deviceName: string;
  /** The account had not seen this device (no valid device token, unknown fingerprint). */
  newDevice: boolean;
  /** Impossible travel: where the previous sign-in was and how far. */
  travel: { from: string | null; km: number } | null;
}

type Payload = Record<string, string | number | null>;

export function createAccountMail(options: { db: Kysely<Database>; clock: Clock; log: FastifyBaseLogger; geo?: GeoLocator }) {
  const { db, clock, log } = options;
  const geo = options.geo ?? NO_GEO;
  const whereIs = async (ip: string | null) => {
    try {
      return describeLocation(publicLocation(await geo.locate(ip)));
    } catch {
      return null;
    }
  };

  async function enqueue(kind: MailKind, userId: string | null, recipient: string | null, payload: Payload, dedupeKey?: string, notBefore?: number): Promise<void> {
    try {
      await enqueueMail(db, { id: newId(), kind, userId, recipient, payload, ...(dedupeKey !== undefined ? { dedupeKey } : {}), ...(notBefore !== undefined ? { notBefore } : {}) }, clock.now());
    } catch (error) {
      log.warn({ err: { message: error instanceof Error ? error.message : String(error) }, kind }, 'mail not queued');
    }
  }

  const alert = async (kind: MailKind, userId: string, source: AlertContext, dedupeKey?: string, extra: Payload = {}) => {
    const context = facts(source);
    const { browser, os } = describeDevice(context.userAgent ?? undefined);
    return enqueue(kind, userId, null, {
      at: clock.now(),
      ip: context.ipAddress,
      location: await whereIs(context.ipAddress),
      browser,
      os,
      device_id: context.deviceId,
      device_name: context.deviceName,
      session_id: context.sessionId,
      ...extra,
    }, dedupeKey);
  };

  return {
    verifyEmail: (userId: string) => enqueue('verify_email', userId, null, { at: clock.now() }),
    /** The same single INSERT whether or not the address has an account (docs/email.md). */
    passwordReset: (email: string, source: AlertContext) => {
      const context = facts(source);
      return enqueue('password_reset', null, email, { at: clock.now(), ip: context.ipAddress, ...describeDevice(context.userAgent ?? undefined) });
    },
    deviceTrusted: (userId: string, context: AlertContext) => alert('alert_device_trusted', userId, context),
    passwordChanged: (userId: string, context: AlertContext) => alert('alert_password_changed', userId, context),
    mfaDisabled: (userId: string, context: AlertContext) => alert('alert_mfa_disabled', userId, context),
    backupCodesRegenerated: (userId: string, context: AlertContext) => alert('alert_backup_codes_regenerated', userId, context),
    deviceProofFailed: (userId: string, context: AlertContext) =>
      alert('alert_proof_failed', userId, context, `proof:${facts(context).deviceId}:${Math.floor(clock.now() / MISMATCH_ALERT_BUCKET_MS)}`),
    deviceTokenReused: (userId: string, context: AlertContext) => alert('alert_token_reused', userId, context),
    /** A bound session's refresh came with another key's proof: the session was ended (docs/sessions.md). */
    sessionProofFailed: (userId: string, context: AlertContext) => alert('alert_session_proof_failed', userId, context),
    fingerprintMismatch: (userId: string, context: AlertContext) =>
      alert('alert_fingerprint_mismatch', userId, context, `mismatch:${facts(context).deviceId}:${Math.floor(clock.now() / MISMATCH_ALERT_BUCKET_MS)}`),
    mfaEnabled: (userId: string, context: AlertContext) => alert('alert_mfa_enabled', userId, context),
    backupCodeUsed: (userId: string, context: AlertContext) => alert('alert_backup_code_used', userId, context),
    passkeyAdded: (userId: string, context: AlertContext, passkeyName: string) => alert('alert_passkey_added', userId, context, undefined, { passkey_name: passkeyName }),
    passkeyRemoved: (userId: string, context: AlertContext, passkeyName: string) => alert('alert_passkey_removed', userId, context, undefined, { passkey_name: passkeyName }),
    /** A sign-in from a device the account had not seen, or from impossibly far: one mail per session. */
    async newSignIn(userId: string, signIn: NewSignInAlert): Promise<void> {
      const now = clock.now();
      const { browser, os } = describeDevice(signIn.userAgent);
      await enqueue(
        'alert_new_sign_in',
        userId,
        null,
        {
          at: now,
          ip: signIn.ipAddress,
          location: await whereIs(signIn.ipAddress),
          browser,
          os,
          device_id: null,
          device_name: signIn.deviceName,
          session_id: signIn.sessionId,
          new_device: signIn.newDevice ? 1 : 0,
          travel_from: signIn.travel?.from ?? null,
          travel_km: signIn.travel === null ? null : Math.round(signIn.travel.km),
        },
        `sign-in:${signIn.sessionId}`,
        // Impossible travel is told at once; a new device waits a minute (it may be trusted on the same page).
        signIn.travel === null ? now + NEW_SIGN_IN_ALERT_DELAY_MS : undefined,
      );
    },
  };
}

export type AccountMail = ReturnType<typeof createAccountMail>;

const PURPOSE: Record<EmailTokenPurpose, { kind: TokenKind; ttlMs: number; retireOthers: boolean }> = {
  verify_email: { kind: 'emailVerification', ttlMs: VERIFICATION_TTL_MS, retireOthers: true },
  password_reset: { kind: 'passwordReset', ttlMs: RESET_TTL_MS, retireOthers: true },
  report: { kind: 'report', ttlMs: REPORT_TTL_MS, retireOthers: false },
};

const when = (ms: unknown): string => (typeof ms === 'number' ? `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC` : 'unknown');
const str = (value: unknown, fallback = 'unknown'): string => (typeof value === 'string' && value !== '' ? value : fallback);

export function createAccountMailComposer(options: { repository: AccountRepository; clock: Clock; publicUrl: string }): Composer {
  const { repository, clock, publicUrl } = options;

  async function mint(row: OutboxRow, userId: string, purpose: EmailTokenPurpose, deviceId: string | null, sessionId: string | null = null): Promise<string> {
    const spec = PURPOSE[purpose];
    const token = generateToken(spec.kind);
    const now = clock.now();
    await repository.insertToken(
      {
        id: newId(),
        user_id: userId,
        purpose,
        token_hash: hashToken(token),
        device_id: deviceId,
        session_id: sessionId,
        mail_id: row.id,
        created_at: now,
        expires_at: now + spec.ttlMs,
        consumed_at: null,
      },
      spec.retireOthers,
    );
    return token;
  }

  // Tokens travel in the URL fragment (never sent to any server, so never in an
  // access log) except the report link, whose shape docs/email.md fixes; that page
  // redirects to the fragment form at once (src/features/account/account.routes.ts).
  const link = (path: string, token: string) => `${publicUrl}${path}${encodeURIComponent(token)}`;

  return async (row) => {
    const payload = JSON.parse(row.payload) as Payload;
    const user = await repository.findRecipient(row.user_id !== null ? { userId: row.user_id } : { email: row.recipient ?? '' });
    if (user === undefined) return null;
    const greeting = `Hello ${user.display_name ?? user.email},`;
    // The device's current name (a mismatch alert knows only its id).
    if (typeof payload.device_id === 'string' && payload.device_name == null) {
      payload.device_name = await repository.deviceName(payload.device_id);
    }
    const sessionId = typeof payload.session_id === 'string' ? payload.session_id : null;
    const session = sessionId === null ? undefined : await repository.session(sessionId);
    // The name of the device that acted: its session's (a trusted device's name once it has one).
    if (payload.device_name == null && session !== undefined) payload.device_name = session.device_name;
    const location = typeof payload.location === 'string' && payload.location !== '' ? payload.location : null;
    const requestFacts: Array<[string, string]> = [
      ['Browser', `${str(payload.browser)} on ${str(payload.os)}`],
      ...(location !== null ? [['Approximate location', location] as [string, string]] : []),
      ['IP address', str(payload.ip)],
      ['Time', when(payload.at)],
    ];
    const deviceFacts: Array<[string, string]> = [['Device', str(payload.device_name, 'unnamed device')], ...requestFacts];
    // The DB-IP lite licence: its attribution wherever a location is shown.
    const attribution = location !== null ? [`Locations are approximate: ${GEO_ATTRIBUTION.text} (${GEO_ATTRIBUTION.url}).`] : [];
    // "This wasn't me" on an alert about something a session did: ends that session, and the device trusted from it.
    const sessionReport = async () =>
      sessionId !== null ? { action: { label: 'This wasn’t me', url: link('/security/report?token=', await mint(row, user.id, 'report', null, sessionId)) } } : {};
    const sessionReportNote = '“This wasn’t me” signs that session out, and un-trusts its device if it was trusted (the link works once, for 7 days). Then change your password.';
    const resetHint = `If this wasn't you, reset your password now: ${publicUrl}/#/forgot-password`;
    let content: MailContent;

    switch (row.kind) {
      case 'verify_email': {
        if (user.email_verified_at !== null) return null;
        content = {
          subject: 'Confirm your email address',
          greeting,
          paragraphs: ['Please confirm that this is your email address, so we can reach you about your account’s security.'],
          action: { label: 'Confirm email address', url: link('/#/verify-email?token=', await mint(row, user.id, 'verify_email', null)) },
          footnotes: ['The link works once and expires in 24 hours. If you did not create an account, ignore this message.'],
        };
        break;
      }
      case 'password_reset': {
        content = {
          subject: 'Reset your password',
          greeting,
          paragraphs: ['Someone (hopefully you) asked to reset the password of your account.'],
          facts: requestFacts,
          action: { label: 'Choose a new password', url: link('/#/reset-password?token=', await mint(row, user.id, 'password_reset', null)) },
          footnotes: [
            'The link works once and expires in 30 minutes. Resetting signs you out everywhere and un-trusts every device; two-step verification stays on.',
            'If you did not ask for this, ignore this message: your password stays as it is.',
          ],
        };
        break;
      }
      case 'alert_device_trusted':
      case 'alert_fingerprint_mismatch': {
        const deviceId = typeof payload.device_id === 'string' ? payload.device_id : null;
        const trusted = row.kind === 'alert_device_trusted';
        content = {
          subject: trusted ? 'A new device was trusted on your account' : 'Someone used a trusted-device key from another browser',
          greeting,
          paragraphs: trusted
            ? ['A device was just trusted on your account: it can now sign in without a code from your authenticator app.']
            : [
                'A sign-in presented the key of one of your trusted devices, but from a browser or system that does not match that device. We asked for your second factor instead of trusting it.',
                'If this wasn’t you, someone has your password and a copy of that device’s key.',
              ],
          facts: deviceFacts,
          ...(deviceId !== null ? { action: { label: 'This wasn’t me', url: link('/security/report?token=', await mint(row, user.id, 'report', deviceId)) } } : {}),
          footnotes: [
            '“This wasn’t me” un-trusts that device and signs it out (the link works once, for 7 days). Then change your password.',
            'If it was you, there is nothing to do.',
          ],
        };
        break;
      }
      case 'alert_proof_failed': {
        const deviceId = typeof payload.device_id === 'string' ? payload.device_id : null;
        content = {
          subject: 'A copy of a trusted device’s key was used without the device',
          greeting,
          paragraphs: [
            'A sign-in presented the key of one of your trusted devices, but could not prove it was that device (the device holds a second key that never leaves it). We asked for your second factor instead of trusting it.',
            'If this wasn’t you, someone has your password and a copy of that device’s cookie.',
          ],
          facts: deviceFacts,
          ...(deviceId !== null ? { action: { label: 'This wasn’t me', url: link('/security/report?token=', await mint(row, user.id, 'report', deviceId)) } } : {}),
          footnotes: ['“This wasn’t me” un-trusts that device and signs it out (the link works once, for 7 days). Then change your password.', 'If it was you, there is nothing to do.'],
        };
        break;
      }
      case 'alert_token_reused': {
        content = {
          subject: 'A trusted device was revoked: its key was copied',
          greeting,
          paragraphs: [
            'An old copy of one of your trusted devices’ keys was used after that device had already moved on to a new one: two parties held it. We un-trusted the device and signed it out; its next sign-in asks for your second factor.',
          ],
          facts: deviceFacts,
          footnotes: [resetHint, 'If you restored that device from a backup, sign in on it again: nothing else is needed.'],
        };
        break;
      }
      case 'alert_session_proof_failed': {
        content = {
          subject: 'A copy of one of your sessions was used, and signed out',
          greeting,
          paragraphs: [
            'A browser tried to keep one of your sessions going with a copy of its cookie, but could not prove it was the browser that signed in (that browser holds a key that never leaves it). We signed that session out.',
            'If you did not copy your browser profile yourself, something on that computer may have read its cookies.',
          ],
          facts: deviceFacts,
          footnotes: [resetHint, 'Your other sessions and trusted devices are unchanged.'],
        };
        break;
      }
      case 'alert_password_changed':
      case 'alert_mfa_disabled':
      case 'alert_backup_codes_regenerated': {
        const what = {
          alert_password_changed: ['Your password was changed', 'The password of your account was just changed. Every trusted device was un-trusted and your other sessions were signed out.'],
          alert_mfa_disabled: ['Two-step verification was turned off', 'Two-step verification was just turned off on your account: signing in now needs only your password. Every trusted device was un-trusted.'],
          alert_backup_codes_regenerated: ['New backup codes were generated', 'New backup codes were just generated for your account; the old ones no longer work. Every trusted device was un-trusted.'],
        }[row.kind];
        content = { subject: what[0]!, greeting, paragraphs: [what[1]!], facts: requestFacts, footnotes: [resetHint, 'If it was you, there is nothing to do.'] };
        break;
      }
      case 'alert_new_sign_in': {
        const travelled = typeof payload.travel_km === 'number';
        // Trusted on the same page within the minute: the "device trusted" mail said it all.
        if (!travelled && session?.device_id != null) return null;
        content = {
          subject: travelled ? 'Sign-in from an unusual location' : 'New sign-in to your account',
          greeting,
          paragraphs: [
            travelled
              ? `Your account was signed in to from ${location ?? 'an unknown place'}, ${payload.travel_km} km from your previous sign-in${typeof payload.travel_from === 'string' ? ` (${payload.travel_from})` : ''} — farther than anyone could travel in the time between. We asked for your second factor even on a trusted device.`
              : 'Your account was just signed in to from a device it had not seen before.',
          ],
          facts: deviceFacts,
          ...(await sessionReport()),
          footnotes: [sessionReportNote, 'If it was you, there is nothing to do.'],
        };
        break;
      }
      case 'alert_passkey_added':
      case 'alert_passkey_removed':
      case 'alert_mfa_enabled':
      case 'alert_backup_code_used': {
        const passkey = str(payload.passkey_name, 'unnamed');
        const what = {
          alert_passkey_added: [`A passkey was added: ${passkey}`, `A passkey or security key named “${passkey}” was added to your account. A passkey can sign in without your password.`],
          alert_passkey_removed: [`A passkey was removed: ${passkey}`, `The passkey or security key named “${passkey}” was removed from your account; devices it made trusted were un-trusted.`],
          alert_mfa_enabled: ['Two-step verification was turned on', 'Two-step verification was just turned on for your account: signing in now needs a code from your authenticator app (or a passkey) after your password.'],
          alert_backup_code_used: ['A backup code was used to sign in', 'One of your backup codes was just used to sign in; it cannot be used again.'],
        }[row.kind];
        content = { subject: what[0]!, greeting, paragraphs: [what[1]!], facts: deviceFacts, ...(await sessionReport()), footnotes: [sessionReportNote, 'If it was you, there is nothing to do.'] };
        break;
      }
      default:
        return null;
    }
    content.footnotes = [...(content.footnotes ?? []), ...attribution];
    return { to: user.email, ...renderMail(content) };
  };
}
