/**
 * The vocabulary every floor shares about a request: the device behind it
 * (fingerprint, device token, proof) and who caused a change (the actor of
 * an event). Types and tiny helpers only; knows no feature.
 */
import type { DeviceFingerprint } from './crypto/fingerprint.ts';

/** What the service knows about the device making the request. */
export interface RequestDevice {
  fingerprint: DeviceFingerprint;
  userAgent: string;
  /** The device token from the cookie or the x-device-token header, if any. */
  deviceToken: string | undefined;
  /** The x-device-proof header, if any: `<challenge>.<base64url ES256 signature>` (docs/trust-model.md). */
  proof?: string | undefined;
}

/** Who caused an event. A user actor without a session is a sign-in attempt. */
export type Actor =
  | { type: 'user'; sessionId: string | null; ipAddress: string | null; userAgent: string | null }
  | { type: 'admin'; name: string; ipAddress: string | null; userAgent: string | null }
  | { type: 'system' };

export const SYSTEM: Actor = { type: 'system' };

/** A sign-in attempt as the actor of an event: the request, before any session exists. */
export const attemptActor = (device: RequestDevice): Actor => ({ type: 'user', sessionId: null, ipAddress: device.fingerprint.ipAddress, userAgent: device.userAgent });

/** User-Agents are stored up to this length (sessions, devices and events alike). */
export const MAX_USER_AGENT_STORED = 512;

/** "<Browser> on <OS>": the name a device or session gets until the user renames it. */
export function defaultDeviceName(browser: string, os: string): string {
  return `${browser} on ${os}`;
}

/** Emails are compared trimmed and lower-cased. */
export const normaliseEmail = (email: string): string => email.trim().toLowerCase();

/** Deliberately simple (one @, a dot in the domain, no spaces): deliverability is the mail server's call. */
export const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
