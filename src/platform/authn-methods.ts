/**
 * How a person authenticated: the `amr` (RFC 8176 authentication method
 * reference values) and `acr` (authentication context class) that access
 * tokens carry and that the step-up gate reads (docs/step-up.md).
 *
 * amr values used:
 * - `pwd`: the password.
 * - `otp`: a one-time password: a TOTP code or a backup code (each is used once).
 * - `hwk`: a WebAuthn key bound to one device (a security key, a non-synced platform key).
 * - `swk`: a WebAuthn key that can leave its hardware (a synced, "multi-device" passkey).
 * - `mfa`: more than one factor was performed (password + code or key; a passkey with user verification).
 * - `device`: not RFC 8176 — a trusted device stood in for the second factor. It never counts as a factor.
 *
 * acr values: `ACR.multiFactor` when `mfa` is among the methods, else `ACR.singleFactor`.
 */

export type Amr = 'pwd' | 'otp' | 'hwk' | 'swk' | 'mfa' | 'device';

export const AMR_VALUES: readonly Amr[] = ['pwd', 'otp', 'hwk', 'swk', 'mfa', 'device'];

export const ACR = {
  /** One factor was performed (the password; a trusted device may have stood in for the second). */
  singleFactor: 'urn:trusted-devices:acr:single-factor',
  /** A second factor was performed (or a passkey with user verification). */
  multiFactor: 'urn:trusted-devices:acr:multi-factor',
} as const;

export type Acr = (typeof ACR)[keyof typeof ACR];

export const acrOf = (amr: readonly string[]): Acr => (amr.includes('mfa') ? ACR.multiFactor : ACR.singleFactor);

/** The second factors: performing one of them after the first makes the sign-in multi-factor. */
export const SECOND_FACTOR_METHODS: readonly Amr[] = ['otp', 'hwk', 'swk'];

/** Stored as one space-separated text column (sessions.amr). */
export const formatAmr = (amr: readonly Amr[]): string => amr.join(' ');
export const parseAmr = (text: string): Amr[] => text.split(' ').filter((m): m is Amr => (AMR_VALUES as readonly string[]).includes(m));

/** The WebAuthn amr of a credential: a synced passkey is software-held, a device-bound key hardware-held. */
export const webauthnAmr = (deviceType: 'singleDevice' | 'multiDevice' | string): Amr => (deviceType === 'multiDevice' ? 'swk' : 'hwk');

/**
 * The methods of a session after a factor performed now: the earlier
 * factors (a trusted device's stand-in dropped: a real factor replaced it),
 * the new one, and `mfa` when a second factor is among them.
 */
export function amrAfter(earlier: readonly Amr[], performed: Amr): Amr[] {
  const factors = new Set<Amr>(earlier.filter((m) => m !== 'device' && m !== 'mfa'));
  factors.add(performed);
  const list = AMR_VALUES.filter((m) => factors.has(m));
  const multi = list.some((m) => SECOND_FACTOR_METHODS.includes(m)) && (list.length > 1 || earlier.includes('mfa'));
  return multi ? [...list, 'mfa'] : list;
}
