/**
 * The offline location lookup (src/platform/geo.ts) on the shipped DB-IP lite
 * city database: known public addresses, private and reserved ranges, IPv6,
 * and what is read when (nothing for a private address; only the file of the
 * address's family). No network: the database is a file in node_modules.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { createGeoLocator, describeLocation, distanceKm, shippedDatabase } from '../../src/platform/geo.ts';

/** A locator that counts the files it reads. */
function counting() {
  const reads: string[] = [];
  const geo = createGeoLocator({
    readFile: async (path) => {
      reads.push(path);
      return readFile(path);
    },
  });
  return { geo, reads };
}

describe('offline location', () => {
  const { geo, reads } = counting();

  test('known public addresses: RIPE NCC in Amsterdam, NIC.br in São Paulo', async () => {
    const ams = await geo.locate('193.0.6.139');
    assert.ok(ams);
    assert.match(ams.city ?? '', /^Amsterdam/);
    assert.equal(ams.region, 'North Holland');
    assert.equal(ams.country, 'Netherlands');
    assert.equal(ams.country_code, 'NL');
    assert.ok(ams.latitude !== null && Math.abs(ams.latitude - 52.37) < 0.5);

    const sp = await geo.locate('200.160.2.3');
    assert.ok(sp);
    assert.equal(sp.region, 'Sao Paulo');
    assert.equal(sp.country, 'Brazil');
    assert.equal(sp.country_code, 'BR');
    assert.ok(sp.latitude !== null && Math.abs(sp.latitude + 23.56) < 0.5);
    assert.match(describeLocation(sp) ?? '', /Sao Paulo, Brazil$/);
    // Only the IPv4 file was read, once.
    assert.deepEqual(reads, [shippedDatabase().ipv4]);
  });

  test('private, loopback, link-local, shared, documentation and other reserved addresses → null, without reading anything', async () => {
    const fresh = counting();
    for (const ip of [
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '127.0.0.1',
      '169.254.1.1',
      '100.64.0.1',
      '192.0.2.1',
      '198.51.100.7',
      '203.0.113.10',
      '0.0.0.0',
      '255.255.255.255',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      '2001:db8::1',
      'ff02::1',
      'not an address',
      '',
      '127.1',
    ]) {
      assert.equal(await fresh.geo.locate(ip), null, ip);
    }
    assert.equal(await fresh.geo.locate(null), null);
    assert.deepEqual(fresh.reads, [], 'no database file read for non-public addresses');
  });

  test('IPv6: a public address reads the IPv6 file; an IPv4-mapped one is its IPv4 address', async () => {
    const fresh = counting();
    const ripe6 = await fresh.geo.locate('2001:67c:2e8:22::c100:68b');
    assert.equal(ripe6?.country_code, 'NL');
    assert.equal(ripe6?.city, 'Amsterdam');
    assert.deepEqual(fresh.reads, [shippedDatabase().ipv6]);
    const mapped = await fresh.geo.locate('::ffff:193.0.6.139');
    assert.equal(mapped?.country_code, 'NL');
    assert.deepEqual(fresh.reads, [shippedDatabase().ipv6, shippedDatabase().ipv4]);
  });

  test('GEOIP_MMDB_PATH: one named file serves every lookup; an unreadable one answers null and is reported once', async () => {
    const errors: unknown[] = [];
    const broken = createGeoLocator({ mmdbPath: '/nonexistent/file.mmdb', onError: (e) => errors.push(e) });
    assert.equal(await broken.locate('193.0.6.139'), null);
    assert.equal(await broken.locate('200.160.2.3'), null);
    assert.equal(errors.length, 1);

    const v6only = createGeoLocator({ mmdbPath: shippedDatabase().ipv6 });
    assert.equal((await v6only.locate('2001:67c:2e8:22::c100:68b'))?.country_code, 'NL');
  });

  test('distance: Amsterdam to São Paulo is about 9,800 km', async () => {
    const ams = (await geo.locate('193.0.6.139'))!;
    const sp = (await geo.locate('200.160.2.3'))!;
    const km = distanceKm({ latitude: ams.latitude!, longitude: ams.longitude! }, { latitude: sp.latitude!, longitude: sp.longitude! });
    assert.ok(km > 9500 && km < 10100, String(km));
  });
});
