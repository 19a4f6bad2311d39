/**
 * The bench's references (plain JavaScript, run by plain Node like the
 * service's bundle, so neither side pays for a loader):
 *
 * - REFERENCE=bare: a Fastify route that returns a constant JSON body on the
 *   list's path. The ceiling of Node's HTTP server + Fastify on this machine.
 * - REFERENCE=jose (issue 11's yardstick): Fastify 5, the bearer token
 *   verified as an HS256 JWT by jose on every request (no cache; issuer,
 *   audience, typ checked), then ONE prepared better-sqlite3 SELECT of the
 *   caller's active devices by the indexed user_id (the primary key's
 *   prefix), returned as JSON (Fastify's default serialiser). No session
 *   check, no metrics, no logging, no security headers, no response schema:
 *   what a minimal "list my devices" endpoint costs.
 * - REFERENCE=floor (issue 27's floor, defined exactly): the same as jose
 *   with the two costs a careful minimal endpoint would not pay: the key is
 *   imported ONCE as a CryptoKey (HS256: WebCrypto HMAC; ES256: the SPKI key)
 *   instead of jose re-importing raw bytes on every call, and the route has a
 *   response schema, so Fastify serialises with a pre-compiled serialiser.
 *   Still no verification cache, no session check, no metrics, no logging,
 *   no security headers.
 *
 *   PORT=3001 REFERENCE=bare node bench/reference-server.mjs
 *   PORT=3001 REFERENCE=jose DATABASE_PATH=./bench.db JWT_SECRET=<hex> node bench/reference-server.mjs
 *   (or JWT_PUBLIC_KEY=<SPKI PEM> for ES256 tokens: `npm run bench -- --jwt-algorithm ES256`)
 */
import BetterSqlite3 from 'better-sqlite3';
import Fastify from 'fastify';
import { importSPKI, jwtVerify } from 'jose';

const app = Fastify({ logger: false });
const mode = process.env.REFERENCE ?? 'bare';

if (mode === 'bare') {
  const body = { success: true, data: { devices: [], total_count: 0 }, message: 'OK' };
  app.get('/api/v1/devices', async () => body);
} else if (mode === 'jose' || mode === 'floor') {
  // HS256 with JWT_SECRET (hex), or ES256 with JWT_PUBLIC_KEY (SPKI PEM): whichever signed the bench's tokens.
  const es256 = Boolean(process.env.JWT_PUBLIC_KEY);
  const raw = es256 ? undefined : Buffer.from(process.env.JWT_SECRET ?? '', 'hex');
  if ((!es256 && raw.length < 32) || !process.env.DATABASE_PATH) throw new Error(`REFERENCE=${mode} needs JWT_SECRET (hex) or JWT_PUBLIC_KEY, and DATABASE_PATH`);
  const secret = es256
    ? await importSPKI(process.env.JWT_PUBLIC_KEY, 'ES256')
    : mode === 'floor'
      ? await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
      : raw;
  const algorithms = [es256 ? 'ES256' : 'HS256'];
  const issuer = process.env.JWT_ISSUER ?? 'trusted-devices';
  const audience = process.env.JWT_AUDIENCE ?? 'trusted-devices-api';
  const sqlite = new BetterSqlite3(process.env.DATABASE_PATH);
  sqlite.pragma('journal_mode = WAL');
  const list = sqlite.prepare(
    `select id, device_name, browser, os, device_type, user_agent, ip_address, last_ip_address, created_at, trusted_at, last_used_at, expires_at
       from trusted_devices where user_id = ? and status = 'active' and expires_at > ?`,
  );
  const text = { type: 'string' };
  const nullableText = { type: ['string', 'null'] };
  const schema =
    mode === 'floor'
      ? {
          response: {
            200: {
              type: 'object',
              properties: {
                success: { type: 'boolean' },
                data: {
                  type: 'object',
                  properties: {
                    devices: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          id: text, device_name: nullableText, browser: nullableText, os: nullableText, device_type: nullableText,
                          user_agent: nullableText, ip_address: nullableText, last_ip_address: nullableText,
                          created_at: { type: 'number' }, trusted_at: { type: ['number', 'null'] }, last_used_at: { type: ['number', 'null'] }, expires_at: { type: 'number' },
                        },
                      },
                    },
                    total_count: { type: 'integer' },
                  },
                },
                message: text,
              },
            },
          },
        }
      : {};
  app.get('/api/v1/devices', { schema }, async (request, reply) => {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) return reply.code(401).send({ success: false });
    let payload;
    try {
      ({ payload } = await jwtVerify(header.slice(7), secret, { algorithms, issuer, audience, typ: 'at+jwt' }));
    } catch {
      return reply.code(401).send({ success: false });
    }
    const devices = list.all(payload.sub, Date.now());
    return { success: true, data: { devices, total_count: devices.length }, message: 'OK' };
  });
  app.addHook('onClose', async () => sqlite.close());
} else {
  throw new Error(`REFERENCE must be bare, jose or floor (got ${mode})`);
}
app.get('/healthz', async () => ({ status: 'ok' }));

const port = Number(process.env.PORT ?? 3001);
await app.listen({ host: '127.0.0.1', port });
const stop = () => {
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
