/**
 * Runs the relying-service example:
 *
 *   TRUSTED_DEVICES_URL=http://127.0.0.1:3000 PORT=4000 node --import tsx examples/relying-service/src/main.ts
 *   curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:4000/whoami
 */
import { randomBytes } from 'node:crypto';
import { buildRelyingService, subscribe } from './app.ts';

const base = (process.env.TRUSTED_DEVICES_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
// Shared Signals (optional): the service's PUBLIC_URL is the SETs' issuer; the admin key's name is their audience.
const adminKey = process.env.SSF_ADMIN_KEY;
const ssfIssuer = (process.env.TRUSTED_DEVICES_PUBLIC_URL ?? base).replace(/\/$/, '');
const authorization = `Bearer ${randomBytes(32).toString('base64url')}`;
const audience = process.env.SSF_AUDIENCE;
if (adminKey && !audience) throw new Error('SSF_AUDIENCE: the name of the admin key (the SETs are addressed to it)');
const app = await buildRelyingService({
  jwksUrl: `${base}/.well-known/jwks.json`,
  issuer: process.env.JWT_ISSUER ?? 'trusted-devices',
  audience: process.env.JWT_AUDIENCE ?? 'trusted-devices-api',
  ...(adminKey && audience ? { sharedSignals: { issuer: ssfIssuer, audience, authorization } } : {}),
});
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 4000) });
if (adminKey) {
  const publicUrl = (process.env.PUBLIC_URL ?? `http://127.0.0.1:${process.env.PORT ?? 4000}`).replace(/\/$/, '');
  const stream = await subscribe({ transmitterUrl: base, issuer: ssfIssuer, adminKey, endpointUrl: `${publicUrl}/ssf/events`, authorization });
  process.stdout.write(`subscribed: stream ${stream.stream_id}, pushed to ${publicUrl}/ssf/events\n`);
}
process.stdout.write(`relying service on ${process.env.HOST ?? '127.0.0.1'}:${process.env.PORT ?? 4000}, keys from ${base}/.well-known/jwks.json\n`);
