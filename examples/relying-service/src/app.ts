/**
 * A relying service: a separate Fastify app that accepts the Trusted Devices
 * service's access tokens without sharing any secret with it. It fetches the
 * public keys from the service's /.well-known/jwks.json (jose's remote JWK
 * set: cached, refetched when a token names a kid it has not seen, at most
 * once per 30 s) and checks, for every request:
 *
 * - the signature, with the key the token's kid names, and only ES256/EdDSA
 *   (never HS256 or none: the algorithm list is pinned here too);
 * - iss = the service's JWT_ISSUER, aud = THIS service's audience (the
 *   service's JWT_AUDIENCE), exp/nbf with a small clock tolerance;
 * - typ = at+jwt (RFC 9068), so no other JWT the issuer signs passes.
 *
 * Revocation at once (OpenID Shared Signals, docs/integration.md): with
 * `sharedSignals` set, it is a push receiver (RFC 8935) at `POST /ssf/events`.
 * Each Security Event Token is checked like a token (signature through the
 * same JWK set, ES256/EdDSA only, `typ: secevent+jwt`, the transmitter's
 * `iss`, this receiver's `aud`) and the request must carry the Authorization
 * header this receiver gave when it subscribed. A CAEP `session-revoked`
 * names the session (`sub_id.session.id` = the access tokens' `sid`): from
 * then on, every access token of that session is refused here, though
 * unexpired. The revoked ids are kept for one access-token lifetime (after
 * that, the tokens expire by themselves). Without `sharedSignals` it cannot
 * see a session ended less than one access-token lifetime ago.
 *
 * Or, with `sharedSignals.poll`, it is a poll receiver (RFC 8936) instead:
 * no endpoint of its own, it long-polls the transmitter's poll URL with its
 * admin key (`returnImmediately: false`: the transmitter answers as soon as
 * a SET is written, or after a few seconds with none), checks each SET the
 * same way, and acknowledges it on the next poll (`ack`; a SET it refuses
 * goes back in `setErrs`). Nothing has to reach the relying service from
 * outside, at the price of one open request at a time.
 *
 * `subscribe()` creates the stream (push or poll) with the relying service's
 * admin key (scope `ssf:streams`).
 *
 * Webhooks (docs/integration.md "Webhooks"): with `webhooks.secret` (the
 * service's WEBHOOK_SECRET) it takes the service's webhooks at
 * `POST /webhooks`, each verified with the `standardwebhooks` package
 * (signature, timestamp within 5 minutes) before it is read.
 *
 * It also reads how the person signed in (docs/step-up.md): `auth_time`
 * (when the last factor was actually performed), `amr` (RFC 8176 values;
 * `device` when a trusted device stood in for the second factor) and `acr`,
 * and guards its own sensitive action the RFC 9470 way: `POST /sensitive`
 * needs a multi-factor sign-in at most STEP_UP_MAX_AGE seconds old, else
 * 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
export const DEVICE_COMPLIANCE_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change';
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

export interface SharedSignalsOptions {
  /** The transmitter's issuer (its /.well-known/ssf-configuration `issuer`): every SET's `iss`. */
  issuer: string;
  /** This receiver's audience: the name of its admin key (the stream's `aud`). */
  audience: string;
  /** Push: the Authorization header the transmitter must send (given when subscribing). */
  authorization?: string;
  /** Poll instead of push: the stream's poll URL (its `delivery.endpoint_url`) and the admin key that owns the stream. */
  poll?: PollOptions;
  /** How long a revoked session id is remembered: the access-token lifetime (default 15 min). */
  accessTokenTtlSeconds?: number;
}

export interface PollOptions {
  endpointUrl: string;
  adminKey: string;
  /** Wait after a failed poll (default 1 s). */
  retryMs?: number;
}

/** What the example took from the webhooks (for its own tests and logs). */
export interface WebhookLog {
  events: Array<{ id: string; type: string; data: { type: string; user_id: string; session_id: string | null } }>;
}

/** What a receiver learned from the SETs it took (for the example's own tests and logs). */
export interface SignalLog {
  events: Array<{ jti: string; type: string; subject: unknown }>;
}

export interface RelyingServiceOptions {
  /** e.g. https://auth.example.com/.well-known/jwks.json */
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Least time between two JWKS fetches caused by unknown kids (jose's cooldown; default 30 s). */
  jwksCooldownMs?: number;
  /** How recent a factor POST /sensitive needs (seconds; default 600, the service's default). */
  stepUpMaxAgeSeconds?: number;
  /** Receive revocations (push, or poll with `poll`) from the Trusted Devices service. */
  sharedSignals?: SharedSignalsOptions;
  /** Take the service's webhooks at POST /webhooks, verified with this secret (the service's WEBHOOK_SECRET, whsec_…). */
  webhooks?: { secret: string };
}

/** The sessions a relying service has been told are over, each until its last access token has expired. */
export class RevokedSessions {
  private readonly until = new Map<string, number>();
  constructor(private readonly ttlMs: number) {}
  add(sessionId: string, now = Date.now()): void {
    this.until.set(sessionId, now + this.ttlMs);
  }
  has(sessionId: string, now = Date.now()): boolean {
    const until = this.until.get(sessionId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.until.delete(sessionId);
    return false;
  }
}

/** Checks one SET as RFC 8417 and SSF ask, and applies it. Throws a { err, description } for RFC 8935's 400 answer. */
export async function takeSecurityEvent(set: string, jwks: JWTVerifyGetKey, options: SharedSignalsOptions, revoked: RevokedSessions, log: SignalLog): Promise<void> {
  let payload;
  try {
    ({ payload } = await jwtVerify(set, jwks, { issuer: options.issuer, audience: options.audience, algorithms: ['ES256', 'EdDSA'], typ: 'secevent+jwt' }));
  } catch (error) {
    const claim = error instanceof errors.JWTClaimValidationFailed ? error.claim : undefined;
    throw { err: claim === 'iss' ? 'invalid_issuer' : claim === 'aud' ? 'invalid_audience' : 'invalid_key', description: 'The SET did not verify.' };
  }
  const events = payload.events as Record<string, unknown> | undefined;
  if (payload.sub !== undefined || payload.exp !== undefined || typeof payload.jti !== 'string' || typeof events !== 'object' || events === null) {
    throw { err: 'invalid_request', description: 'Not a Shared Signals SET.' };
  }
  const subject = payload.sub_id as { format?: string; session?: { format?: string; id?: unknown } } | undefined;
  for (const type of Object.keys(events)) {
    log.events.push({ jti: payload.jti, type, subject });
    if (type === SESSION_REVOKED && subject?.format === 'complex' && subject.session?.format === 'opaque' && typeof subject.session.id === 'string') revoked.add(subject.session.id);
    // credential-change and device-compliance-change: the sessions they end come as session-revoked SETs of their own.
  }
}

/** The service's acr for a sign-in that performed a second factor (docs/step-up.md). */
export const MULTI_FACTOR_ACR = 'urn:trusted-devices:acr:multi-factor';

declare module 'fastify' {
  interface FastifyRequest {
    user: { id: string; sessionId: string; authTime: number; amr: string[]; acr: string } | null;
  }
}

export async function buildRelyingService(options: RelyingServiceOptions): Promise<FastifyInstance> {
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: options.jwksCooldownMs ?? 30_000 });
  const app = Fastify({ logger: false });
  app.decorateRequest('user', null);
  const signals = options.sharedSignals;
  const revoked = new RevokedSessions((signals?.accessTokenTtlSeconds ?? 900) * 1000 + 10_000);
  const signalLog: SignalLog = { events: [] };
  app.decorate('signalLog', signalLog);
  const webhookLog: WebhookLog = { events: [] };
  app.decorate('webhookLog', webhookLog);

  const unauthorized = { error: { code: 'UNAUTHORIZED', message: 'A valid access token of the Trusted Devices service is required.' } };

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || request.url === '/ssf/events' || request.url === '/webhooks') return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([^\s]+)$/i.exec(header) : null;
    if (!match) return reply.code(401).header('www-authenticate', 'Bearer').send(unauthorized);
    try {
      const { payload } = await jwtVerify(match[1]!, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ['ES256', 'EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['sub', 'sid', 'exp', 'auth_time', 'amr', 'acr'],
        clockTolerance: 5,
      });
      if (payload.typ !== 'access' || typeof payload.sid !== 'string') throw new errors.JWTClaimValidationFailed('not an access token', payload);
      // Revoked at the service, pushed here: refused though unexpired.
      if (revoked.has(payload.sid)) throw new errors.JWTClaimValidationFailed('the session was revoked', payload, 'sid', 'revoked');
      const { auth_time: authTime, amr, acr } = payload;
      if (typeof authTime !== 'number' || !Array.isArray(amr) || !amr.every((m) => typeof m === 'string') || typeof acr !== 'string') {
        throw new errors.JWTClaimValidationFailed('auth_time, amr or acr malformed', payload);
      }
      request.user = { id: payload.sub!, sessionId: payload.sid, authTime, amr: amr as string[], acr };
    } catch (error) {
      // A JWKS that cannot be fetched is the relying service's outage, not the caller's fault.
      if (error instanceof errors.JWKSTimeout || (error instanceof Error && /fetch failed|ECONNREFUSED/.test(error.message))) {
        return reply.code(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The keys of the Trusted Devices service cannot be fetched.' } });
      }
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send(unauthorized);
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  if (signals?.poll) {
    const stop = startPolling(signals.poll, (set) => takeSecurityEvent(set, jwks, signals, revoked, signalLog), app.log);
    app.addHook('onClose', stop);
  }

  if (options.webhooks) {
    // Standard Webhooks signs the exact bytes: the body is read as a string, in this route's own scope.
    const verifier = new Webhook(options.webhooks.secret);
    await app.register(async (scope) => {
      scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => done(null, body));
      scope.post('/webhooks', async (request, reply) => {
        let payload: WebhookLog['events'][number];
        try {
          payload = verifier.verify(String(request.body), request.headers as Record<string, string>) as typeof payload;
        } catch (error) {
          if (error instanceof WebhookVerificationError) return reply.code(401).send({ error: { code: 'INVALID_SIGNATURE', message: error.message } });
          throw error;
        }
        webhookLog.events.push({ id: String(request.headers['webhook-id']), type: payload.type, data: payload.data });
        return reply.code(204).send();
      });
    });
  }

  if (signals?.authorization !== undefined) {
    const authorization = signals.authorization;
    // RFC 8935: the body is the SET itself.
    app.addContentTypeParser('application/secevent+jwt', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => done(null, body));
    app.post('/ssf/events', async (request, reply) => {
      if (request.headers.authorization !== authorization) return reply.code(401).send({ err: 'authentication_failed', description: 'Unknown transmitter.' });
      if (request.headers['content-type'] !== 'application/secevent+jwt' || typeof request.body !== 'string') {
        return reply.code(400).send({ err: 'invalid_request', description: 'A SET is sent as application/secevent+jwt.' });
      }
      try {
        await takeSecurityEvent(request.body, jwks, signals, revoked, signalLog);
      } catch (problem) {
        return reply.code(400).send(problem);
      }
      return reply.code(202).send();
    });
  }
  app.get('/whoami', async (request) => {
    const user = request.user!;
    return { user_id: user.id, session_id: user.sessionId, auth_time: user.authTime, amr: user.amr, acr: user.acr };
  });

  // RFC 9470 on this side: a sensitive action of the relying service itself. A trusted-device
  // sign-in (amr "device", acr single-factor) never passes; the user steps up at the service
  // (POST /api/v1/auth/step-up), and the new access token does.
  const maxAge = options.stepUpMaxAgeSeconds ?? 600;
  app.post('/sensitive', async (request, reply) => {
    const user = request.user!;
    const recent = Date.now() / 1000 - user.authTime <= maxAge;
    if (user.acr !== MULTI_FACTOR_ACR || !recent) {
      const description = recent ? 'A second factor is required' : 'More recent authentication is required';
      return reply
        .code(401)
        .header('www-authenticate', `Bearer error="insufficient_user_authentication", error_description="${description}", max_age=${maxAge}, acr_values="${MULTI_FACTOR_ACR}"`)
        .send({ error: { code: 'STEP_UP_REQUIRED', message: description } });
    }
    return { done: true };
  });

  await app.ready();
  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    signalLog: SignalLog;
    webhookLog: WebhookLog;
  }
}

/**
 * The poll receiver's loop (RFC 8936): one long poll at a time, each
 * acknowledging what the previous one returned and this receiver took, and
 * reporting what it refused (`setErrs`). A SET is acknowledged only after it
 * was applied, so a crash in between means it comes again (at least once;
 * applying a revocation twice is harmless). Returns stop().
 */
export function startPolling(poll: PollOptions, take: (set: string) => Promise<void>, log: FastifyInstance['log']): () => Promise<void> {
  const stopping = new AbortController();
  let ack: string[] = [];
  let setErrs: Record<string, { err: string; description: string }> = {};
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        const res = await fetch(poll.endpointUrl, {
          method: 'POST',
          headers: { authorization: `Bearer ${poll.adminKey}`, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ ack, ...(Object.keys(setErrs).length > 0 ? { setErrs } : {}), maxEvents: 50, returnImmediately: false }),
          signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(30_000)]),
        });
        if (res.status !== 200) throw new Error(`poll: HTTP ${res.status}`);
        const { sets } = (await res.json()) as { sets: Record<string, string>; moreAvailable: boolean };
        // Sent with the request just answered: settled at the transmitter.
        ack = [];
        setErrs = {};
        for (const [jti, set] of Object.entries(sets)) {
          try {
            await take(set);
            ack.push(jti);
          } catch (problem) {
            setErrs[jti] = problem as { err: string; description: string };
          }
        }
      } catch (error) {
        if (stopping.signal.aborted) break;
        log.warn({ err: error }, 'Shared Signals poll failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, poll.retryMs ?? 1000));
      }
    }
  })();
  return async () => {
    stopping.abort();
    await loop;
  };
}

/** The transmitter's metadata, checked: its issuer is the one this receiver trusts. */
async function metadata(transmitterUrl: string, issuer: string) {
  const res = await fetch(`${transmitterUrl}/.well-known/ssf-configuration`);
  if (!res.ok) throw new Error(`ssf-configuration: HTTP ${res.status}`);
  const meta = (await res.json()) as { issuer: string; configuration_endpoint: string; delivery_methods_supported: string[] };
  if (meta.issuer !== issuer) throw new Error(`the transmitter says its issuer is ${meta.issuer}, not ${issuer}`);
  return meta;
}

export const PUSH = 'urn:ietf:rfc:8935';
export const POLL = 'urn:ietf:rfc:8936';

/**
 * Creates a stream of the revocation events: pushed to `endpointUrl` (this
 * service's POST /ssf/events, with `authorization`), or, with `poll: true`,
 * waiting to be polled at the URL the answer's `delivery.endpoint_url` names.
 */
export async function subscribe(options: { transmitterUrl: string; issuer: string; adminKey: string } & ({ endpointUrl: string; authorization: string; poll?: false } | { poll: true })) {
  const meta = await metadata(options.transmitterUrl, options.issuer);
  if (!meta.delivery_methods_supported.includes(options.poll ? POLL : PUSH)) throw new Error('the transmitter does not offer that delivery method');
  const res = await fetch(meta.configuration_endpoint, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      delivery: options.poll ? { method: POLL } : { method: PUSH, endpoint_url: options.endpointUrl, authorization_header: options.authorization },
      events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE, DEVICE_COMPLIANCE_CHANGE],
      description: 'relying-service example',
    }),
  });
  if (res.status !== 201) throw new Error(`create stream: HTTP ${res.status}`);
  const stream = (await res.json()) as { stream_id: string; iss: string; aud: string; delivery: { method: string; endpoint_url: string } };
  if (stream.iss !== options.issuer) throw new Error('the stream names another issuer');
  return stream;
}
