/** Formatting of dates, durations and user agents for display. */
import { h } from './dom.js';

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

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
