/**
 * IP address parsing for the places that group clients by network (the rate
 * limits' /64, the fingerprint's /24 and /48). ipaddr.js does the parsing and
 * the prefix arithmetic; node:net decides what counts as an address, because
 * ipaddr.js also takes the loose IPv4 spellings of inet_aton ("127.1",
 * "0x7f.0.0.1") that no socket reports and the tests refuse.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * A literal address (dotted-quad IPv4, or IPv6 with an optional zone id),
 * with IPv4-mapped IPv6 (::ffff:192.0.2.1, also in hex) given back as the
 * IPv4 address it carries. Anything else → null.
 */
export function parseIpAddress(text: string): IpAddress | null {
  if (isIP(text) === 0) return null;
  return ipaddr.process(text);
}

export function isIPv4Address(address: IpAddress): address is ipaddr.IPv4 {
  return address.kind() === 'ipv4';
}

/** The network address of `address`'s first `bits` bits (the zone id, if any, dropped). */
export function networkAddress(address: ipaddr.IPv4, bits: number): ipaddr.IPv4;
export function networkAddress(address: ipaddr.IPv6, bits: number): ipaddr.IPv6;
export function networkAddress(address: IpAddress, bits: number): IpAddress {
  if (isIPv4Address(address)) return ipaddr.IPv4.networkAddressFromCIDR(`${address.toString()}/${bits}`);
  return ipaddr.IPv6.networkAddressFromCIDR(`${new ipaddr.IPv6(address.parts).toString()}/${bits}`);
}
