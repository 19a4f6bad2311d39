/**
 * Runs the relying-service example:
 *
 *   TRUSTED_DEVICES_URL=http://127.0.0.1:3000 PORT=4000 node --import tsx examples/relying-service/src/main.ts
 *   curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:4000/whoami
 */
import { buildRelyingService } from './app.ts';

const base = (process.env.TRUSTED_DEVICES_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
const app = await buildRelyingService({
  jwksUrl: `${base}/.well-known/jwks.json`,
  issuer: process.env.JWT_ISSUER ?? 'trusted-devices',
  audience: process.env.JWT_AUDIENCE ?? 'trusted-devices-api',
});
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 4000) });
process.stdout.write(`relying service on ${process.env.HOST ?? '127.0.0.1'}:${process.env.PORT ?? 4000}, keys from ${base}/.well-known/jwks.json\n`);
