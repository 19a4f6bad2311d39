/**
 * Browser helper, typed, so any web app can use it:
 * - the client signals of the `x-device-fingerprint` header, as documented in
 *   docs/fingerprint.md: this file;
 * - device keys (docs/trust-model.md): the IndexedDB key store
 *   (./indexeddb-device-keys.ts) and the WebCrypto primitives
 *   (./device-key.ts), re-exported for apps that drive the sign-in themselves;
 * - the client (./index.ts) and a Web Storage token store, so a page that
 *   loads only this module has everything: the service's web app creates
 *   its client here in cookie-refresh mode.
 *
 *   import { fingerprintHeader } from '<this package>/browser';
 *   createTrustedDevicesClient({ baseUrl, fingerprint: fingerprintHeader });
 *   // deviceKeys defaults to indexedDbDeviceKeyStore() wherever IndexedDB exists.
 *
 * The service's own web app uses this very module: `npm run client:generate`
 * compiles it to the plain ES module public/js/vendor/trusted-devices-browser.js
 * (clients/typescript/scripts/browser-module.ts), so there is one collector
 * and one key store.
 *
 * The server hashes every signal separately under its own key and compares
 * the set with a similarity score, so one signal changing (a new monitor, a
 * browser update) does not break trust on its own. A fingerprint is not a
 * secret and never bypasses MFA by itself (trust also needs the device token).
 *
 * Contract of the header value (enforced by `encodeFingerprint`): a JSON
 * object of at most 32 keys matching [A-Za-z0-9_.-]{1,64}; scalar values only
 * (string, finite number, boolean), strings ≤ 512 characters; the whole value
 * ≤ 4 KiB and pure ASCII (non-ASCII as JSON \u escapes, so `fetch` accepts it
 * as a header value and the server parses back the same string).
 *
 * Stability: nothing time-, window- or screen-dependent is collected (no
 * timezone offset, which changes with DST; no window or screen size, which
 * change with zoom and monitors). The canvas is hashed in two parts: `canvas`
 * draws geometry only, which browsers rasterise identically at every
 * device-pixel ratio; `canvas_text` draws text (generic fonts only), whose
 * rasterisation changes with the ratio, and the server weighs it lightly. A
 * canvas read-out the browser randomises (drawn twice, different) is left out
 * rather than sent as noise. The result is computed once per page: the MFA
 * and activation tokens are bound to the fingerprint they were issued to.
 */

import type { TokenName, TokenStore } from './index.ts';

export { createDeviceKey, deviceKeyAccount, type DeviceKeyPair, type DeviceKeyStore, deviceKeysSupported, type PublicDeviceJwk, signChallenge } from './device-key.ts';
export { DEVICE_KEY_DATABASE, indexedDbAvailable, indexedDbDeviceKeyStore, type IndexedDbDeviceKeyStore, indexedDbSessionKeyStore, SESSION_KEY_RECORD } from './indexeddb-device-keys.ts';
// The client itself, for apps that load this one module (the service's web app: cookie-refresh mode, `request()`).
export {
  type ClientOptions,
  createTrustedDevicesClient,
  deviceBoundPath,
  type HttpMethod,
  memoryTokenStore,
  type RequestOptions,
  sessionOpeningPath,
  type SignedOutReason,
  signedOutReason,
  type StepUpFactor,
  StepUpRequiredError,
  type TokenName,
  type TokenStore,
  type TrustedDevicesClient,
  TrustedDevicesError,
} from './index.ts';

/** A synchronous string store: Web Storage, or a Map where the browser refuses it. */
export interface KeyValueStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

/**
 * `sessionStorage` / `localStorage`, or an in-memory map where the browser
 * blocks Web Storage (some privacy modes): values then last as long as the page.
 */
export function webStorage(name: 'sessionStorage' | 'localStorage'): KeyValueStore {
  try {
    const storage: Any = (globalThis as Any)[name];
    const probe = '__td_probe__';
    storage.setItem(probe, '1');
    storage.removeItem(probe);
    return { get: (k) => storage.getItem(k), set: (k, v) => storage.setItem(k, v), remove: (k) => storage.removeItem(k) };
  } catch {
    const values = new Map<string, string>();
    return { get: (k) => values.get(k) ?? null, set: (k, v) => void values.set(k, v), remove: (k) => void values.delete(k) };
  }
}

/**
 * A TokenStore over Web Storage, each token under `<prefix><name>`
 * (`td.access_token`). Synchronous, so an app can read it without awaiting.
 * With the cookie-refresh mode only the access token (15 minutes) is ever
 * stored: sessionStorage keeps it across reloads of this tab and no longer.
 */
export function webStorageTokenStore(name: 'sessionStorage' | 'localStorage' = 'sessionStorage', prefix = 'td.'): TokenStore & { get(name: TokenName): string | undefined } {
  const storage = webStorage(name);
  return {
    get: (token) => storage.get(prefix + token) ?? undefined,
    set: (token, value) => (value === undefined ? storage.remove(prefix + token) : storage.set(prefix + token, value)),
  };
}

export type Signals = Record<string, string | number | boolean>;

export const FINGERPRINT_LIMITS = { maxKeys: 32, maxString: 512, maxBytes: 4096, key: /^[A-Za-z0-9_.-]{1,64}$/ } as const;
const CANVAS_HASH_HEX_CHARS = 32;
const WEBGL_MAX_CHARS = 200;

let cached: Promise<Signals> | undefined;

/** The signals of this browser (collected once per page; never rejects). */
export function collectFingerprint(): Promise<Signals> {
  cached ??= collect()
    .then((raw) => Object.fromEntries(Object.entries(raw).filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))) as Signals)
    .catch((): Signals => ({}));
  return cached;
}

/** The x-device-fingerprint header value for this browser. */
export async function fingerprintHeader(): Promise<string> {
  return encodeFingerprint(await collectFingerprint());
}

/**
 * Serialises signals to the header value within the service's limits: drops
 * invalid keys, empty strings and non-scalar values, truncates strings, stops
 * adding keys before 4 KiB; pure ASCII (non-ASCII as \u escapes).
 */
export function encodeFingerprint(signals: Record<string, unknown>): string {
  const out: Signals = {};
  let count = 0;
  for (const [key, raw] of Object.entries(signals)) {
    if (count >= FINGERPRINT_LIMITS.maxKeys || !FINGERPRINT_LIMITS.key.test(key)) continue;
    let value: string | number | boolean;
    if (typeof raw === 'string') value = raw.slice(0, FINGERPRINT_LIMITS.maxString);
    else if (typeof raw === 'number' && Number.isFinite(raw)) value = raw;
    else if (typeof raw === 'boolean') value = raw;
    else continue;
    if (value === '') continue;
    if (toAsciiJson({ ...out, [key]: value }).length > FINGERPRINT_LIMITS.maxBytes) continue;
    out[key] = value;
    count += 1;
  }
  return toAsciiJson(out);
}

function toAsciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// The DOM is reached through globalThis so this module type-checks and imports without DOM typings.
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

async function collect(): Promise<Record<string, unknown>> {
  const nav: Any = (globalThis as Any).navigator ?? {};
  const scr: Any = (globalThis as Any).screen ?? {};
  return {
    timezone: attempt(() => Intl.DateTimeFormat().resolvedOptions().timeZone),
    language: attempt(() => {
      const list = Array.isArray(nav.languages) && nav.languages.length > 0 ? nav.languages : [nav.language];
      return list.filter(Boolean).join(',');
    }),
    platform: attempt(() => nav.userAgentData?.platform || nav.platform),
    color_depth: attempt(() => scr.colorDepth),
    hardware_concurrency: attempt(() => nav.hardwareConcurrency),
    device_memory: attempt(() => nav.deviceMemory),
    touch_points: attempt(() => nav.maxTouchPoints),
    canvas: await canvasSignal(drawShapes),
    canvas_text: await canvasSignal(drawText),
    webgl: attempt(webglRenderer),
  };
}

function attempt(fn: () => unknown): unknown {
  try {
    const value = fn();
    return value === null || value === undefined || Number.isNaN(value) ? undefined : value;
  } catch {
    return undefined;
  }
}

async function canvasSignal(draw: (ctx: Any) => void): Promise<string | undefined> {
  try {
    const first = paint(draw);
    if (!first) return undefined;
    if (first !== paint(draw)) return undefined; // the browser adds noise: not a stable signal
    return (await hashHex(first)).slice(0, CANVAS_HASH_HEX_CHARS);
  } catch {
    return undefined;
  }
}

function paint(draw: (ctx: Any) => void): string | undefined {
  const canvas: Any = (globalThis as Any).document.createElement('canvas');
  canvas.width = 240;
  canvas.height = 60;
  const ctx: Any = canvas.getContext('2d');
  if (!ctx) return undefined;
  draw(ctx);
  return canvas.toDataURL('image/png');
}

/** Geometry only: the same pixels at every zoom level / device-pixel ratio (docs/fingerprint.md). */
function drawShapes(ctx: Any): void {
  ctx.fillStyle = '#f60';
  ctx.fillRect(100, 1, 62, 20);
  const gradient = ctx.createLinearGradient(0, 0, 240, 0);
  gradient.addColorStop(0, '#069');
  gradient.addColorStop(1, 'rgba(102, 204, 0, 0.7)');
  ctx.fillStyle = gradient;
  ctx.fillRect(150, 30, 80, 25);
  ctx.globalCompositeOperation = 'multiply';
  ctx.fillStyle = 'rgb(255,0,255)';
  ctx.beginPath();
  ctx.arc(50, 30, 20, 0, Math.PI * 2, true);
  ctx.closePath();
  ctx.fill();
}

/** Text: identifies fonts, but changes with the pixel ratio (weighed lightly by the server). */
function drawText(ctx: Any): void {
  ctx.textBaseline = 'top';
  ctx.fillStyle = '#069';
  ctx.font = '14px sans-serif';
  ctx.fillText('Trusted devices, 0123 <canvas> \u2713', 2, 15);
  ctx.fillStyle = 'rgba(102, 204, 0, 0.7)';
  ctx.font = '16px serif';
  ctx.fillText('Trusted devices, 0123 <canvas> \u2713', 4, 32);
}

function webglRenderer(): string | undefined {
  const canvas: Any = (globalThis as Any).document.createElement('canvas');
  const gl: Any = canvas.getContext('webgl') || canvas.getContext('experimental-webgl');
  if (!gl) return undefined;
  try {
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return typeof renderer === 'string' && renderer ? renderer.slice(0, WEBGL_MAX_CHARS) : undefined;
  } finally {
    gl.getExtension('WEBGL_lose_context')?.loseContext();
  }
}

/** SHA-256 hex via Web Crypto; four FNV-1a lanes (deterministic, not cryptographic) where Web Crypto is missing (plain-http origins). */
async function hashHex(text: string): Promise<string> {
  const data = new TextEncoder().encode(text);
  if (globalThis.crypto?.subtle) {
    const digest = await globalThis.crypto.subtle.digest('SHA-256', data);
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  let hex = '';
  for (const seed of [0x811c9dc5, 0x01000193, 0x9e3779b9, 0x85ebca6b]) {
    let h = seed >>> 0;
    for (const byte of data) {
      h ^= byte;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    hex += h.toString(16).padStart(8, '0');
  }
  return hex;
}
