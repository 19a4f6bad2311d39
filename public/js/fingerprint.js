/**
 * Client fingerprint collector for the `x-device-fingerprint` header (SPEC §3).
 *
 * A small hand-written module (no library): it gathers a handful of coarse,
 * stable browser signals and returns them as a flat JSON object. The server
 * hashes every signal separately under its own key and compares the set with
 * a similarity score, so one signal changing (a new monitor, a browser update)
 * does not break trust on its own. A fingerprint is not a secret and never
 * bypasses MFA by itself: trust also needs the HttpOnly device-token cookie.
 *
 * Contract of the header value (checked by `encodeFingerprint`):
 * - a JSON object of at most 32 keys, keys matching [A-Za-z0-9_.-]{1,64};
 * - scalar values only (string, finite number, boolean), strings ≤ 512 chars;
 * - the whole value ≤ 4 KiB, and pure ASCII (non-ASCII characters are written
 *   as JSON \u escapes, so `fetch` accepts it as a header value and the server
 *   parses back the same string).
 *
 * Stability: the same browser gives the same values across reloads, and
 * across the ordinary changes of one browser: zoom, a move to another monitor
 * (pixel ratio, screen and window size), a browser update, a new network.
 * So nothing time-, window- or screen-dependent is collected (no timezone
 * offset, which changes with DST; no window or screen size). The canvas is
 * hashed in two parts: `canvas` draws geometry only (shapes, a gradient, a
 * blend), which Chromium, Firefox and Safari rasterise identically at every
 * device-pixel ratio; `canvas_text` draws text, whose hinting and
 * anti-aliasing change with the ratio, and the server weighs it lightly.
 * Only built-in generic fonts are used. Browsers that deliberately randomise
 * canvas read-outs (Brave, Firefox with resistFingerprinting, Safari private
 * windows) are detected by drawing twice; then the canvas keys are left out
 * rather than sending noise. Per-session noise cannot be detected this way;
 * the server's similarity threshold absorbs it.
 *
 * The result is computed once per page and cached, because the temporary
 * (MFA) and activation tokens are bound to the fingerprint they were issued to.
 */

const MAX_KEYS = 32;
const MAX_STRING = 512;
const MAX_BYTES = 4096;
const KEY_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const CANVAS_HASH_HEX_CHARS = 32; // 128 bits is plenty to tell drawings apart
const WEBGL_MAX_CHARS = 200;

/** @type {Promise<Record<string, string|number|boolean>>|undefined} */
let cached;

/** Collect (once per page) the signals. Never rejects. */
export function collectFingerprint() {
  cached ??= collect().catch(() => ({}));
  return cached;
}

/** The header value: ASCII JSON, validated against the contract above. */
export async function fingerprintHeader() {
  return encodeFingerprint(await collectFingerprint());
}

/**
 * Serialise signals to the header value, enforcing the limits: drops invalid
 * keys and non-scalar values, truncates strings, and stops adding keys before
 * the size limit would be passed.
 * @param {Record<string, unknown>} signals
 */
export function encodeFingerprint(signals) {
  /** @type {Record<string, string|number|boolean>} */
  const out = {};
  let count = 0;
  for (const [key, raw] of Object.entries(signals)) {
    if (count >= MAX_KEYS || !KEY_RE.test(key)) continue;
    let value = /** @type {any} */ (raw);
    if (typeof value === 'string') value = value.slice(0, MAX_STRING);
    else if (typeof value === 'number') { if (!Number.isFinite(value)) continue; }
    else if (typeof value !== 'boolean') continue;
    if (value === '') continue;
    const candidate = { ...out, [key]: value };
    if (toAsciiJson(candidate).length > MAX_BYTES) continue;
    out[key] = value;
    count += 1;
  }
  return toAsciiJson(out);
}

function toAsciiJson(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

async function collect() {
  const nav = /** @type {any} */ (navigator);
  const scr = globalThis.screen;
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

function attempt(fn) {
  try {
    const value = fn();
    return value === null || value === undefined || Number.isNaN(value) ? undefined : value;
  } catch {
    return undefined;
  }
}

/** Draws a fixed scene and hashes the pixels; undefined when unavailable or randomised. */
async function canvasSignal(draw) {
  try {
    const first = paint(draw);
    if (!first) return undefined;
    const second = paint(draw);
    if (first !== second) return undefined; // the browser adds noise: not a stable signal
    return (await hashHex(first)).slice(0, CANVAS_HASH_HEX_CHARS);
  } catch {
    return undefined;
  }
}

function paint(draw) {
  const canvas = document.createElement('canvas');
  canvas.width = 240;
  canvas.height = 60;
  const ctx = canvas.getContext('2d');
  if (!ctx) return undefined;
  draw(ctx);
  return canvas.toDataURL('image/png');
}

/** Geometry only: the same pixels at every zoom level / device-pixel ratio. */
function drawShapes(ctx) {
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

/** Text: font rasterisation identifies the machine, but changes with the pixel ratio. */
function drawText(ctx) {
  ctx.textBaseline = 'top';
  ctx.fillStyle = '#069';
  ctx.font = '14px sans-serif';
  ctx.fillText('Trusted devices, 0123 <canvas> \u2713', 2, 15);
  ctx.fillStyle = 'rgba(102, 204, 0, 0.7)';
  ctx.font = '16px serif';
  ctx.fillText('Trusted devices, 0123 <canvas> \u2713', 4, 32);
}

function webglRenderer() {
  const canvas = document.createElement('canvas');
  const gl = /** @type {WebGLRenderingContext|null} */ (canvas.getContext('webgl') || canvas.getContext('experimental-webgl'));
  if (!gl) return undefined;
  try {
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return typeof renderer === 'string' && renderer ? renderer.slice(0, WEBGL_MAX_CHARS) : undefined;
  } finally {
    gl.getExtension('WEBGL_lose_context')?.loseContext();
  }
}

/** SHA-256 hex via Web Crypto; FNV-1a (deterministic, non-cryptographic) where Web Crypto is unavailable (plain-http non-localhost origins). */
async function hashHex(text) {
  const data = new TextEncoder().encode(text);
  if (globalThis.crypto?.subtle) {
    const digest = await crypto.subtle.digest('SHA-256', data);
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  // Four 32-bit FNV-1a lanes with different seeds → 128 bits of hex.
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
