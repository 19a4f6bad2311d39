/**
 * Access-token cost per algorithm (docs/performance.md, "Access-token
 * algorithms"): sign, verify of a token never seen (a cache miss: the
 * signature check) and verify of a token seen before (a cache hit), through
 * the service's own createAccessTokens (fast-jwt, verification cache on).
 *
 *   node --import tsx bench/jwt-algorithms.ts [tokens=5000] [rounds=5]
 */
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../src/platform/clock.ts';
import { type AccessTokenKeys, createAccessTokens } from '../src/platform/crypto/access-tokens.ts';
import { generateSigningKeyPem, parseSigningKey } from '../src/platform/crypto/signing-keys.ts';

const tokens = Number(process.argv[2] ?? 5000);
const rounds = Number(process.argv[3] ?? 5);
const clock = new ManualClock(Date.now());

const configurations: Record<string, AccessTokenKeys> = {
  HS256: { algorithm: 'HS256', secret: randomBytes(32) },
  EdDSA: { algorithm: 'EdDSA', signingKey: parseSigningKey(generateSigningKeyPem('EdDSA')) },
  ES256: { algorithm: 'ES256', signingKey: parseSigningKey(generateSigningKeyPem('ES256')) },
};

const perOp = (start: bigint, count: number) => Number(process.hrtime.bigint() - start) / 1000 / count;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

console.log(`${tokens} distinct tokens, median of ${rounds} rounds (algorithms interleaved within each round), µs per operation`);
const results = new Map(Object.keys(configurations).map((name) => [name, { signs: [] as number[], misses: [] as number[], hits: [] as number[], length: 0 }]));
for (let round = 0; round < rounds; round++) {
  // Interleaved: a burst of load from elsewhere on the machine falls on every algorithm alike.
  for (const [name, keys] of Object.entries(configurations)) {
    const r = results.get(name)!;
    // A fresh instance per round: an empty cache, so the first pass is all misses.
    const accessTokens = createAccessTokens({ keys, issuer: 'bench', audience: 'bench-api', ttlSeconds: 900, clock });
    const issued: string[] = [];
    let start = process.hrtime.bigint();
    for (let i = 0; i < tokens; i++) issued.push(accessTokens.issue({ userId: `user-${i}`, sessionId: `session-${i}`, authTime: clock.now(), amr: ['pwd'] }));
    r.signs.push(perOp(start, tokens));
    r.length = issued[0]!.length;
    start = process.hrtime.bigint();
    for (const token of issued) if (accessTokens.verify(token) === null) throw new Error('a fresh token did not verify');
    r.misses.push(perOp(start, tokens));
    start = process.hrtime.bigint();
    for (let pass = 0; pass < 4; pass++) for (const token of issued) if (accessTokens.verify(token) === null) throw new Error('miss');
    r.hits.push(perOp(start, tokens * 4));
  }
}
console.log('| algorithm | token bytes | sign | verify, cache miss | verify, cache hit |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, r] of results) {
  console.log(`| ${name} | ${r.length} | ${median(r.signs).toFixed(1)} | ${median(r.misses).toFixed(1)} | ${median(r.hits).toFixed(1)} |`);
}
