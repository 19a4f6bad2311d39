/**
 * Formatting of dates, durations and user agents for display. Every date is
 * written in ONE locale: the page's language (<html lang>), so the text
 * around a date and the date itself never mix languages.
 */
import { h } from './dom.js';

export const LOCALE = document.documentElement.lang || 'en';
const absolute = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(LOCALE, { timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(LOCALE, { numeric: 'auto' });

const parse = (iso) => {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
};

export const formatDateTime = (iso) => (parse(iso) ? absolute.format(parse(iso)) : '—');
export const formatDate = (iso) => (parse(iso) ? dateOnly.format(parse(iso)) : '—');
export const formatTime = (iso) => (parse(iso) ? timeOnly.format(parse(iso)) : '—');

/** "5 minutes ago", "in 30 days", "now". */
export function formatRelative(iso, now = Date.now()) {
  const d = parse(iso);
  if (!d) return '—';
  const seconds = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  /** @type {Array<[Intl.RelativeTimeFormatUnit, number, number]>} */
  // [unit, seconds per unit, use from this many seconds on]; days up to two
  // months, so a 30-day trust reads "in 30 days", not "next month".
  const units = [
    ['year', 31_536_000, 31_536_000],
    ['month', 2_592_000, 5_184_000],
    ['day', 86_400, 86_400],
    ['hour', 3_600, 3_600],
    ['minute', 60, 0],
  ];
  for (const [unit, size, from] of units) {
    if (abs >= from) return relative.format(Math.round(seconds / size), unit);
  }
  return '—';
}

/** A <time> element: visible text `text` (default: absolute), full date in the title. */
export function timeEl(iso, text) {
  const d = parse(iso);
  if (!d) return h('span', { text: '—' });
  return h('time', { datetime: d.toISOString(), title: absolute.format(d), text: text ?? absolute.format(d) });
}

/** Rough "Browser on OS" from a User-Agent string, for history rows. */
export function summarizeUserAgent(ua) {
  if (!ua) return 'Unknown browser';
  const browser =
    /Edg(e|A|iOS)?\//.test(ua) ? 'Edge'
    : /OPR\/|Opera/.test(ua) ? 'Opera'
    : /Firefox\/|FxiOS/.test(ua) ? 'Firefox'
    : /Chrome\/|CriOS|Chromium/.test(ua) ? 'Chrome'
    : /Safari\//.test(ua) ? 'Safari'
    : /curl|node|undici|python|okhttp/i.test(ua) ? 'API client'
    : 'Unknown browser';
  const os =
    /iPhone|iPad|iPod/.test(ua) ? 'iOS'
    : /Android/.test(ua) ? 'Android'
    : /Windows/.test(ua) ? 'Windows'
    : /CrOS/.test(ua) ? 'ChromeOS'
    : /Mac OS X|Macintosh/.test(ua) ? 'macOS'
    : /Linux/.test(ua) ? 'Linux'
    : '';
  return os ? `${browser} on ${os}` : browser;
}

/** "Windows 10/11", "macOS 10.15.7", "Android 14", "iOS 17.2", "Linux x86_64"… from a User-Agent. */
export function osVersion(ua) {
  if (!ua) return '';
  let m;
  if ((m = /(?:iPhone|iPad|iPod).*? OS (\d+(?:_\d+)*)/.exec(ua))) return `iOS ${m[1].replace(/_/g, '.')}`;
  if ((m = /Android (\d+(?:\.\d+)*)/.exec(ua))) return `Android ${m[1]}`;
  if ((m = /Windows NT (\d+\.\d+)/.exec(ua))) return m[1] === '10.0' ? 'Windows 10/11' : `Windows NT ${m[1]}`;
  if ((m = /CrOS \S+ (\d+)/.exec(ua))) return `ChromeOS ${m[1]}`;
  if ((m = /Mac OS X (\d+(?:[_.]\d+)*)/.exec(ua))) return `macOS ${m[1].replace(/_/g, '.')}`;
  if ((m = /Linux (x86_64|aarch64|i686|armv\w+)/.exec(ua))) return `Linux ${m[1]}`;
  return '';
}

/** "Chrome 131" from a User-Agent (major version only). */
export function browserVersion(ua) {
  if (!ua) return '';
  const patterns = [
    ['Edge', /Edg(?:e|A|iOS)?\/(\d+)/],
    ['Opera', /OPR\/(\d+)/],
    ['Firefox', /(?:Firefox|FxiOS)\/(\d+)/],
    ['Chrome', /(?:Chrome|CriOS)\/(\d+)/],
    ['Safari', /Version\/(\d+(?:\.\d+)?).*Safari\//],
  ];
  for (const [name, re] of patterns) {
    const m = re.exec(ua);
    if (m) return `${name} ${m[1]}`;
  }
  return '';
}

/** 'mobile' | 'tablet' | 'desktop' from a User-Agent (for history rows, which carry no device_type). */
export function deviceTypeOf(ua) {
  if (!ua) return 'desktop';
  if (/iPad|Tablet|Android(?!.*Mobile)/.test(ua)) return 'tablet';
  if (/Mobi|iPhone|iPod|Android/.test(ua)) return 'mobile';
  return 'desktop';
}

/** "Amsterdam, North Holland, Netherlands" from an API location (docs/security-center.md); null when unknown. */
export function formatLocation(location) {
  if (!location) return null;
  const parts = [location.city, location.region, location.country || location.country_code].filter(Boolean);
  const unique = parts.filter((p, i) => parts.indexOf(p) === i);
  return unique.length ? unique.join(', ') : null;
}

/** Why the code is asked, as a sentence (the mfa_reason of the sign-in answer). */
export const MFA_REASON_SENTENCES = {
  new_device: 'We ask because this browser isn’t one of your trusted devices.',
  trust_expired: 'We ask because this device’s trust has expired. You can trust it again after the code.',
  device_revoked: 'We ask because this device is no longer trusted (it was removed, or your account’s security changed).',
  proof_missing: 'We ask because this device could not prove it holds its key (was its browser data cleared?).',
  proof_failed: 'We ask because this device’s key check failed.',
  fingerprint_mismatch: 'We ask because this browser doesn’t match the trusted device its cookie belongs to.',
  unusual_location: 'We ask because this sign-in comes from far away from your previous one — farther than anyone could travel in between. Your trusted device doesn’t skip the code this time.',
  trust_check_failed: 'We ask because we couldn’t check this device’s trust just now.',
};
export const mfaReasonSentence = (reason) => MFA_REASON_SENTENCES[reason] ?? (reason ? 'We ask for a code to keep your account safe.' : null);
