/**
 * The flood of `npm run bench:login-flood`, in a process of its own: the
 * measuring process times the owner's and the newcomers' logins, and a load
 * generator sharing its event loop would add its own delays to theirs (at
 * 5,000 requests per second it did: the owner's times measured the bench, not
 * the server). Started under `nice` by default (FLOOD_NICE): a real flood's
 * generator runs on the attacker's machines, not on the server's cores.
 *
 * argv: base URL, connections, seconds, address pattern (one | rotate64 |
 * unique), first request number. Prints one JSON line: {total, statuses}.
 */
import autocannon from 'autocannon';

const [base, connections, seconds, pattern, offset] = process.argv.slice(2);
const floodIp: Record<string, (i: number) => string> = {
  one: () => '198.51.100.1',
  rotate64: (i) => `10.64.0.${(i % 64) + 1}`,
  unique: (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
};
const ip = floodIp[pattern!];
if (!base || !ip) throw new Error('usage: login-flood-worker <base> <connections> <seconds> <one|rotate64|unique> <offset>');

let n = Number(offset ?? 0);
const statuses: Record<number, number> = {};
const result = await autocannon({
  url: base,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      method: 'POST',
      path: '/api/v1/auth/login',
      setupRequest: (request) => {
        const i = n++;
        return {
          ...request,
          headers: { 'content-type': 'application/json', 'x-forwarded-for': ip(i), 'user-agent': 'flood' },
          body: JSON.stringify({ email: `flood-${i}@example.com`, password: 'Wrong-Password-1' }),
        };
      },
      onResponse: (status) => void (statuses[status] = (statuses[status] ?? 0) + 1),
    },
  ],
});
process.stdout.write(`${JSON.stringify({ total: result.requests.total, statuses })}\n`);
