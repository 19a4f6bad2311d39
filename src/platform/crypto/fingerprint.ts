/**
 * Device fingerprint (docs/fingerprint.md, docs/trust-model.md).
 *
 * Derives, from one request, a set of keyed *components* and one
 * *fingerprint*:
 *   - stable components: browser family, OS and device type (parsed from the
 *     User-Agent with bowser; the browser VERSION is deliberately dropped so an
 *     upgrade keeps the device), and every client signal of the optional
 *     `x-device-fingerprint` header (`signal.<key>`);
 *   - one soft component: `ip_prefix`, the /24 (IPv4) or /48 (IPv6) network.
 * Each component is HMAC-SHA-256(key, `${name}\u0000${canonicalValue}`), hex.
 * The fingerprint is an HMAC over the sorted stable components (not ip_prefix).
 *
 * Stored: only these hashes plus the display strings (browser, OS, device
 * type, IP). Raw client signals are never returned, stored or logged.
 *
 * Threats: a fingerprint is NOT a secret (anyone can copy a User-Agent and
 * replay signals), so it never bypasses MFA on its own: it only gates a
 * device token (docs/trust-model.md). The HMAC is keyed with FINGERPRINT_KEY, so a leaked
 * database cannot be matched against a plain SHA-256 of guessed inputs, nor
 * correlated with another service's fingerprints. Header input is bounded
 * (4 KiB, 32 keys, 64-char keys, 512-char values) before any work is done.
 *
 * Pure module: no I/O, no Fastify. Runs on every login, so the key object,
 * the weight table and recent User-Agent parses are prepared once.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import Bowser from 'bowser';
import { AppError, type FieldProblem } from '../errors.ts';
import { isIPv4Address, networkAddress, parseIpAddress } from '../ip.ts';

export type ClientSignals = Record<string, string | number | boolean>;

export interface FingerprintInput {
  ip: string;
  userAgent: string | undefined;
  /** Raw `x-device-fingerprint` header value. */
  clientSignals: string | undefined;
}

export interface DeviceFingerprint {
  /** Hex HMAC-SHA-256 of the canonical set of stable components (shown by the API). */
  fingerprint: string;
  /** Component name -> hex HMAC-SHA-256 of its value (stable ones + soft 'ip_prefix'). */
  components: Record<string, string>;
  browser: string;
  os: string;
  deviceType: string;
  /** The IP as given (stored for display; not secret). */
  ipAddress: string;
}

export interface SimilarityResult {
  score: number;
  matches: boolean;
  /** Names of the differing components (never values), sorted. */
  differing: string[];
}

/** A current request matches a recorded device when similarity >= this. */
export const SIMILARITY_THRESHOLD = 0.8;
export const FINGERPRINT_HEADER_MAX_BYTES = 4096;
export const MAX_SIGNAL_KEYS = 32;
export const MAX_SIGNAL_KEY_LENGTH = 64;
export const MAX_SIGNAL_VALUE_LENGTH = 512;
/** Only this prefix of the User-Agent is parsed (bounds the regex work). */
export const MAX_USER_AGENT_PARSE_LENGTH = 1024;

export const SIGNAL_PREFIX = 'signal.';
/** Components that must be equal on both sides; otherwise the score is 0. */
export const GATE_COMPONENTS: readonly string[] = Object.freeze(['browser', 'os']);
/** Weight of a signal that is not in COMPONENT_WEIGHTS. */
export const DEFAULT_SIGNAL_WEIGHT = 1;
/**
 * Weights of the non-gate components (see docs/fingerprint.md for the why).
 * Chosen so that what changes on the SAME browser in ordinary use (zoom or
 * a move to another monitor: screen size, pixel ratio, text rendering; a
 * browser update; a new network) stays above the threshold, while what
 * tells two machines apart (GPU, core count, memory) weighs enough that a
 * different machine falls below it.
 */
export const COMPONENT_WEIGHTS: Readonly<Record<string, number>> = Object.freeze({
  device_type: 3,
  'signal.webgl': 4,
  'signal.platform': 3,
  'signal.hardware_concurrency': 2,
  'signal.canvas': 2, // geometry only: identical at every zoom / pixel ratio
  'signal.timezone': 2,
  'signal.language': 2,
  'signal.canvas_text': 1, // text rendering: changes with the pixel ratio
  'signal.color_depth': 1,
  'signal.device_memory': 1,
  'signal.touch_points': 1,
  // Screen size changes with every monitor, dock and zoom level: named in
  // `differing`, never counted. (Older clients still send it.)
  'signal.screen': 0,
  ip_prefix: 0.5,
});

const HEADER = 'x-device-fingerprint';
const KEY_PATTERN = /^[A-Za-z0-9_.-]+$/;
const MIN_KEY_BYTES = 32;
const FINGERPRINT_DOMAIN = '\u0000device-fingerprint.v1\u0000';

function invalid(message: string, details: FieldProblem[]): AppError {
  return new AppError('INVALID_FINGERPRINT', message, { details });
}

/**
 * Parses and bounds the `x-device-fingerprint` header. undefined or blank → {}.
 * Keys are lower-cased (so `Timezone` and `timezone` are one signal); a key
 * given twice after lower-casing is rejected. Values are never echoed back.
 */
export function parseClientSignals(header: string | undefined): ClientSignals {
  if (header === undefined || header.trim() === '') return {};
  if (header.length > FINGERPRINT_HEADER_MAX_BYTES || Buffer.byteLength(header, 'utf8') > FINGERPRINT_HEADER_MAX_BYTES) {
    throw invalid('The device fingerprint header is too large.', [
      { field: HEADER, message: `must be at most ${FINGERPRINT_HEADER_MAX_BYTES} bytes` },
    ]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw invalid('The device fingerprint header is not valid JSON.', [
      { field: HEADER, message: 'must be a JSON object' },
    ]);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid('The device fingerprint header must be a JSON object.', [
      { field: HEADER, message: 'must be a JSON object' },
    ]);
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length > MAX_SIGNAL_KEYS) {
    throw invalid('The device fingerprint header has too many signals.', [
      { field: HEADER, message: `must have at most ${MAX_SIGNAL_KEYS} keys` },
    ]);
  }
  const problems: FieldProblem[] = [];
  const out: ClientSignals = {};
  entries.forEach(([rawKey, value], index) => {
    // Invalid keys are identified by position, never echoed (they are client text).
    if (rawKey.length === 0 || rawKey.length > MAX_SIGNAL_KEY_LENGTH || !KEY_PATTERN.test(rawKey)) {
      problems.push({
        field: HEADER,
        message: `key #${index + 1} must be 1-${MAX_SIGNAL_KEY_LENGTH} characters of A-Z a-z 0-9 _ . -`,
      });
      return;
    }
    const key = rawKey.toLowerCase();
    const field = `${HEADER}.${key}`;
    if (Object.hasOwn(out, key)) {
      problems.push({ field, message: 'is given more than once (keys are case-insensitive)' });
      return;
    }
    if (typeof value === 'string' && value.length > MAX_SIGNAL_VALUE_LENGTH) {
      problems.push({ field, message: `must be at most ${MAX_SIGNAL_VALUE_LENGTH} characters` });
    } else if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) {
      // defineProperty: a "__proto__" key stays a plain own property (no prototype change)
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    } else {
      problems.push({ field, message: 'must be a string, number or boolean' });
    }
  });
  if (problems.length > 0) {
    throw invalid('The device fingerprint header is not valid.', problems);
  }
  return out;
}

/** Canonical text of a signal value: trimmed NFC string, shortest number, true/false. */
function canonicalSignal(value: string | number | boolean): string {
  if (typeof value === 'string') return value.trim().normalize('NFC');
  return String(value); // numbers: JS shortest round-trip form (8 and 8.0 → "8"); booleans: "true"/"false"
}

// ---------------------------------------------------------------------------
// IP network prefix

/**
 * Network prefix of an IP: /24 for IPv4 ("203.0.113.0/24"), /48 for IPv6
 * ("2001:db8:1::/48", RFC 5952 text). IPv4-mapped IPv6 counts as IPv4.
 * Brackets and a zone id are ignored. Anything else → "unknown".
 */
export function ipNetworkPrefix(ip: string): string {
  let text = ip.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const address = parseIpAddress(text);
  if (address === null) return 'unknown';
  if (isIPv4Address(address)) return `${networkAddress(address, 24).toString()}/24`;
  return `${networkAddress(address, 48).toRFC5952String()}/48`;
}

// ---------------------------------------------------------------------------
// User-Agent

interface DeviceDescription {
  browser: string;
  os: string;
  deviceType: string;
}

const DEVICE_TYPES = new Set(['desktop', 'mobile', 'tablet', 'tv', 'bot']);
const UNKNOWN_DEVICE: DeviceDescription = Object.freeze({ browser: 'Unknown', os: 'Unknown', deviceType: 'unknown' });
const DESCRIBE_CACHE_SIZE = 256;
const describeCache = new Map<string, DeviceDescription>();

/** Browser family (no version), OS and device type, for display and hashing. */
export function describeDevice(userAgent: string | undefined): { browser: string; os: string; deviceType: string } {
  const ua = (userAgent ?? '').slice(0, MAX_USER_AGENT_PARSE_LENGTH).trim();
  if (ua === '') return { ...UNKNOWN_DEVICE };
  let description = describeCache.get(ua);
  if (description === undefined) {
    description = parseUserAgent(ua);
    if (describeCache.size >= DESCRIBE_CACHE_SIZE) {
      const oldest = describeCache.keys().next().value;
      if (oldest !== undefined) describeCache.delete(oldest);
    }
    describeCache.set(ua, description);
  }
  return { ...description };
}

function parseUserAgent(ua: string): DeviceDescription {
  try {
    const parser = Bowser.getParser(ua, true);
    const browser = parser.getBrowserName() || 'Unknown';
    const os = parser.getOSName() || 'Unknown';
    const platform = parser.getPlatformType(true);
    const deviceType = DEVICE_TYPES.has(platform) ? platform : 'unknown';
    return Object.freeze({ browser, os, deviceType });
  } catch {
    return UNKNOWN_DEVICE;
  }
}

// ---------------------------------------------------------------------------
// Components and fingerprint

export function createFingerprinter(key: Buffer): { compute(input: FingerprintInput): DeviceFingerprint } {
  if (!Buffer.isBuffer(key) || key.length < MIN_KEY_BYTES) {
    throw new Error(`The fingerprint key must be at least ${MIN_KEY_BYTES} bytes.`);
  }
  const secret: KeyObject = createSecretKey(key); // copied once; the caller's buffer may be reused

  const hmac = (text: string): string => createHmac('sha256', secret).update(text, 'utf8').digest('hex');
  const component = (name: string, canonicalValue: string): string => hmac(`${name}\u0000${canonicalValue}`);

  return {
    compute(input: FingerprintInput): DeviceFingerprint {
      const signals = parseClientSignals(input.clientSignals); // throws 422 first: no work on bad input
      const { browser, os, deviceType } = describeDevice(input.userAgent);

      const stable: Record<string, string> = {
        browser: component('browser', browser.toLowerCase()),
        os: component('os', os.toLowerCase()),
        device_type: component('device_type', deviceType),
      };
      for (const [signalKey, value] of Object.entries(signals)) {
        const name = SIGNAL_PREFIX + signalKey;
        stable[name] = component(name, canonicalSignal(value));
      }

      const names = Object.keys(stable).sort();
      const fingerprint = hmac(FINGERPRINT_DOMAIN + names.map((n) => `${n}=${stable[n]}`).join('\n'));

      const components: Record<string, string> = {};
      for (const n of names) components[n] = stable[n]!;
      const prefix = ipNetworkPrefix(input.ip);
      if (prefix !== 'unknown') components.ip_prefix = component('ip_prefix', prefix);

      return { fingerprint, components, browser, os, deviceType, ipAddress: input.ip };
    },
  };
}

// ---------------------------------------------------------------------------
// Similarity

function weightOf(name: string): number {
  return COMPONENT_WEIGHTS[name] ?? DEFAULT_SIGNAL_WEIGHT;
}

/**
 * Weighted agreement of two component sets, in [0, 1].
 * Gates (browser, os) must be present and equal on both sides, else score 0.
 * Every other component present on either side counts with its weight; it
 * agrees only if present and equal on both. Nothing left to compare → 1.
 */
export function similarity(recorded: Record<string, string>, current: Record<string, string>): SimilarityResult {
  const differing: string[] = [];
  let gatesHold = true;
  for (const gate of GATE_COMPONENTS) {
    const r = Object.hasOwn(recorded, gate) ? recorded[gate] : undefined;
    const c = Object.hasOwn(current, gate) ? current[gate] : undefined;
    if (r === undefined || c === undefined || r !== c) {
      gatesHold = false;
      differing.push(gate);
    }
  }

  let total = 0;
  let agreeing = 0;
  const names = new Set([...Object.keys(recorded), ...Object.keys(current)]);
  for (const name of names) {
    if (GATE_COMPONENTS.includes(name)) continue;
    const weight = weightOf(name);
    total += weight;
    const r = Object.hasOwn(recorded, name) ? recorded[name] : undefined;
    const c = Object.hasOwn(current, name) ? current[name] : undefined;
    if (r !== undefined && r === c) agreeing += weight;
    else differing.push(name);
  }
  differing.sort();

  if (!gatesHold) return { score: 0, matches: false, differing };
  const raw = total === 0 ? 1 : agreeing / total;
  const score = Math.round(raw * 10_000) / 10_000;
  return { score, matches: score >= SIMILARITY_THRESHOLD, differing };
}
