/**
 * Runs the relying-service example:
 *
 *   TRUSTED_DEVICES_URL=http://127.0.0.1:3000 PORT=4000 node --import tsx examples/relying-service/src/main.ts
 *   curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:4000/whoami
 *
 * Shared Signals (optional): SSF_ADMIN_KEY + SSF_AUDIENCE subscribe a stream;
 * SSF_DELIVERY=poll polls it (RFC 8936) instead of having it pushed
 * (RFC 8935, the default; PUBLIC_URL is then where the service reaches this
 * one). Webhooks (optional): WEBHOOK_SECRET = the service's WEBHOOK_SECRET,
 * with the service's WEBHOOK_URL pointing at this one's /webhooks.
 */
import { randomBytes } from 'node:crypto';
import { buildRelyingService, subscribe } from './app.ts';

const base = (process.env.TRUSTED_DEVICES_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
// Shared Signals (optional): the service's PUBLIC_URL is the SETs' issuer; the admin key's name is their audience.
const adminKey = process.env.SSF_ADMIN_KEY;
const ssfIssuer = (process.env.TRUSTED_DEVICES_PUBLIC_URL ?? base).replace(/\/$/, '');
const authorization = `Bearer ${randomBytes(32).toString('base64url')}`;
const audience = process.env.SSF_AUDIENCE;
const poll = process.env.SSF_DELIVERY === 'poll';
if (process.env.SSF_DELIVERY !== undefined && !['poll', 'push'].includes(process.env.SSF_DELIVERY)) throw new Error('SSF_DELIVERY: push (default) or poll');
if (adminKey && !audience) throw new Error('SSF_AUDIENCE: the name of the admin key (the SETs are addressed to it)');
const port = Number(process.env.PORT ?? 4000);
const publicUrl = (process.env.PUBLIC_URL ?? `http://127.0.0.1:${port}`).replace(/\/$/, '');

// A poll stream exists before the receiver starts (it polls from its start); a push stream needs the receiver listening first.
const pollStream = adminKey && poll ? await subscribe({ transmitterUrl: base, issuer: ssfIssuer, adminKey, poll: true }) : undefined;
const app = await buildRelyingService({
  jwksUrl: `${base}/.well-known/jwks.json`,
  issuer: process.env.JWT_ISSUER ?? 'trusted-devices',
  audience: process.env.JWT_AUDIENCE ?? 'trusted-devices-api',
  ...(adminKey && audience
    ? { sharedSignals: { issuer: ssfIssuer, audience, ...(pollStream ? { poll: { endpointUrl: pollStream.delivery.endpoint_url, adminKey } } : { authorization }) } }
    : {}),
  ...(process.env.WEBHOOK_SECRET ? { webhooks: { secret: process.env.WEBHOOK_SECRET } } : {}),
});
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port });
if (pollStream) {
  process.stdout.write(`subscribed: stream ${pollStream.stream_id}, polled at ${pollStream.delivery.endpoint_url}\n`);
} else if (adminKey) {
  const stream = await subscribe({ transmitterUrl: base, issuer: ssfIssuer, adminKey, endpointUrl: `${publicUrl}/ssf/events`, authorization });
  process.stdout.write(`subscribed: stream ${stream.stream_id}, pushed to ${publicUrl}/ssf/events\n`);
}
process.stdout.write(`relying service on ${process.env.HOST ?? '127.0.0.1'}:${port}, keys from ${base}/.well-known/jwks.json\n`);
