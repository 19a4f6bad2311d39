/**
 * buildApp(deps) → a ready Fastify instance that never listens.
 *
 * The composition root: it wires repositories → services → route plugins,
 * and installs the cross-cutting HTTP rules (README "API overview", docs/security.md; one error
 * handler, the envelope, no-store, security headers, CORS, body limit,
 * rate limits, log redaction, OpenAPI). Everything environmental (config,
 * keys, database, clock, Redis, log destination) comes in through deps.
 */
import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import fastifyCookie from '@fastify/cookie';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Histogram } from 'prom-client';
import { BACKLOG_COUNT_CAP, createServiceMetrics, type ServiceMetrics } from '../platform/metrics.ts';
import { createOutboxMetricsRepository } from '../store/outbox-metrics.repository.ts';
import { createAdminRepository } from '../store/admin.repository.ts';
import { adminRoutes } from '../features/admin/admin.routes.ts';
import { createAdminService } from '../features/admin/admin.service.ts';
import { createAccountMail } from '../features/account/account-mail.ts';
import { createAccountRepository } from '../store/account.repository.ts';
import { accountPages, accountRoutes } from '../features/account/account.routes.ts';
import { createAccountService } from '../features/account/account.service.ts';
import { authRoutes } from '../features/auth/auth.routes.ts';
import { createAuthService } from '../features/auth/auth.service.ts';
import { createUsersRepository } from '../store/users.repository.ts';
import { type Clock, systemClock } from '../platform/clock.ts';
import type { Config, Keys } from '../platform/config.ts';
import type { DatabaseHandle } from '../store/connect.ts';
import { createDevicesRepository, type DevicesRepository } from '../store/devices.repository.ts';
import { devicesRoutes } from '../features/devices/devices.routes.ts';
import { createDevicesService } from '../features/devices/devices.service.ts';
import { createFingerprinter } from '../platform/crypto/fingerprint.ts';
import { createAuthenticate } from '../platform/http/authenticate.ts';
import { createFrameworkErrorHandler, registerErrorHandling } from '../platform/http/error-handler.ts';
import { registerComponentSchemas, swaggerOptions } from './openapi.ts';
import { createMemoryCounterStore, createRedisCounterStore } from '../platform/http/rate-limit-store.ts';
import { installRateLimits, NO_LOGIN_FAILURES } from '../platform/http/rate-limits.ts';
import { createRequestDeviceReader } from '../platform/http/request-device.ts';
import { computeSecurityHeaders, securityHeaderOptions } from '../platform/http/security-headers.ts';
import { documentErrorResponses } from '../platform/http/error-responses.ts';
import { createSerializerFactory } from '../platform/http/serialization.ts';
import { createValidatorFactory, refuseLoneSurrogates } from '../platform/http/validation.ts';
import { createClientErrorHandler, createExpectationHandler, createRouteTable, installProtocolRules } from '../platform/http/protocol.ts';
import { createMfaRepository } from '../store/mfa.repository.ts';
import { mfaRoutes } from '../features/mfa/mfa.routes.ts';
import { createMfaService } from '../features/mfa/mfa.service.ts';
import { jwksRoutes } from '../features/jwks/jwks.routes.ts';
import { opsRoutes } from '../features/ops/ops.routes.ts';
import { createRevocation } from '../domain/ledger.ts';
import { createSessionsRepository, type SessionsRepository } from '../store/sessions.repository.ts';
import { sessionsRoutes } from '../features/sessions/sessions.routes.ts';
import { DBSC_PREFIX, dbscRoutes } from '../features/sessions/dbsc.routes.ts';
import { createSessionsService } from '../features/sessions/sessions.service.ts';
import { accessTokenKeysFor, createAccessTokens } from '../platform/crypto/access-tokens.ts';
import { createEncryptor } from '../platform/crypto/encryption.ts';
import { createPasswordHasher, type PasswordHasher } from '../platform/crypto/passwords.ts';
import { webPlugin } from '../features/web/web.plugin.ts';
import { ssfRoutes } from '../features/ssf/ssf.routes.ts';
import { createSsfService } from '../features/ssf/ssf.service.ts';
import { createSetSigner } from '../platform/crypto/security-event-tokens.ts';
import { createSsfRepository } from '../store/ssf.repository.ts';
import { createHistory, historyOptionsFor } from '../store/history.ts';
import { createGeoLocator, type GeoLocator } from '../platform/geo.ts';
import { createWebauthnRepository } from '../store/webauthn.repository.ts';
import { webauthnRoutes } from '../features/webauthn/webauthn.routes.ts';
import { securityRoutes } from '../features/security/security.routes.ts';
import { createSecurityService } from '../features/security/security.service.ts';
import { createWebauthnService } from '../features/webauthn/webauthn.service.ts';
import { installStepUp } from '../platform/http/step-up.ts';
import { SENSITIVE_OPERATION_IDS } from '../domain/step-up.ts';

export interface AppDeps {
  config: Readonly<Config>;
  keys: Keys;
  database: DatabaseHandle;
  clock?: Clock;
  passwordHasher?: PasswordHasher;
  /** Shared rate-limit store; in-process counters without it. */
  redis?: Redis;
  /** Where logs go (default stdout); tests pass a stream to inspect them. */
  logStream?: Writable;
  /** Test seam: wrap the devices repository (e.g. to inject storage faults). */
  wrapDevicesRepository?: (repository: DevicesRepository) => DevicesRepository;
  /** The service's metrics (src/platform/metrics.ts); main.ts shares them with the outbox senders. A fresh set without it. */
  metrics?: ServiceMetrics;
  /** Test seam: wrap the sessions repository (inject faults, or delays between statements to open race windows). */
  wrapSessionsRepository?: (repository: SessionsRepository) => SessionsRepository;
  /** The offline location lookup; by default the shipped database (or GEOIP_MMDB_PATH), loaded on first use. */
  geo?: GeoLocator;
}

export const API_PREFIX = '/api/v1';
export const BODY_LIMIT_BYTES = 16 * 1024;

/** Never logged: credentials, tokens, raw fingerprint signals. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-device-token"]',
  'req.headers["x-device-fingerprint"]',
  'req.headers["x-device-proof"]',
  'req.headers["x-session-proof"]',
  'req.headers["secure-session-response"]',
  'req.headers["sec-secure-session-id"]',
  'res.headers["set-cookie"]',
];

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, keys } = deps;
  const database = deps.database;
  const clock = deps.clock ?? systemClock;
  // Locations (docs/security-center.md): offline, a database file read on the first lookup of a public address.
  let geoErrorLogged = false;
  const geo =
    deps.geo ??
    createGeoLocator({
      mmdbPath: config.geoipMmdbPath,
      onError: (error, path) => {
        if (geoErrorLogged) return;
        geoErrorLogged = true;
        app.log.error({ err: { message: error instanceof Error ? error.message : String(error) }, path }, 'location database unreadable; locations are unknown');
      },
    });
  // The one event writer: with webhooks on, every event also writes its outbox row; every event records its actor's location.
  // The one event writer: with webhooks on, every event also writes its outbox row (and its SETs with Shared Signals); events record the location.
  const history = createHistory({ ...historyOptionsFor(config), geo });
  // Security headers and no-store on every answer: a constant, set in one step.
  const headers = computeSecurityHeaders(securityHeaderOptions(config.cookieSecure === true));

  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        // The path only: a query string may carry something secret.
        req: (req) => ({ method: req.method, path: req.url.split('?')[0], remoteAddress: req.ip }),
      },
      ...(deps.logStream ? { stream: deps.logStream } : {}),
    },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: config.trustProxy ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
    frameworkErrors: createFrameworkErrorHandler(headers),
    // Parser errors (bad request line, duplicate Content-Length, 431, 408) in the envelope (src/platform/http/protocol.ts).
    clientErrorHandler: createClientErrorHandler(headers),
    // Node's own missing-Host answer is a bare 400; the check is made in the envelope instead.
    http: { requireHostHeader: false },
    // Bodies are validated as typed; only the query string and path parameters are coerced (src/platform/http/validation.ts).
    schemaController: { compilersFactory: { buildValidator: createValidatorFactory(), buildSerializer: createSerializerFactory() as never } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('auth', null as never);
  const routes = createRouteTable(app);
  registerErrorHandling(app, routes, headers);
  app.server.on('checkExpectation', createExpectationHandler(headers));
  registerComponentSchemas(app);
  documentErrorResponses(app);
  // JSON only: a text/plain (or any other) body is 415, not a string to validate.
  app.removeContentTypeParser(['text/plain']);

  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
  installProtocolRules(app, routes);
  refuseLoneSurrogates(app);

  // Graceful shutdown: requests in flight at close time finish, and their
  // keep-alive connections are closed after the answer instead of holding
  // the server open until the idle timeout.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  const metrics = deps.metrics ?? createServiceMetrics();
  const registry = metrics.registry;
  collectDefaultMetrics({ register: registry });
  // The outbox gauges read the shared backlog from storage when scraped (bounded, indexed, at most every few seconds).
  const outboxMetrics = createOutboxMetricsRepository(database.db);
  metrics.readBacklogsWith(() => outboxMetrics.backlogs(BACKLOG_COUNT_CAP), () => clock.now(), (error) => app.log.warn({ err: error }, 'outbox backlog could not be read for /metrics'));
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // One labelled child per (method, route, status), looked up by a flat key: prom-client would hash the label object on every observe.
  const durationByLabels = new Map<string, ReturnType<typeof httpDuration.labels>>();
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unknown';
    const key = `${request.method} ${reply.statusCode} ${route}`;
    let child = durationByLabels.get(key);
    if (child === undefined) {
      child = httpDuration.labels({ method: request.method, route, status_code: String(reply.statusCode) });
      durationByLabels.set(key, child);
    }
    child.observe(reply.elapsedTime / 1000);
    done();
  });

  if (config.corsOrigins) {
    // Every method the API has (the default stops at GET, HEAD, POST: DELETE and PATCH could not be called).
    await app.register(fastifyCors, { origin: config.corsOrigins, credentials: true, maxAge: 600, methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'] });
  }
  await app.register(fastifyCookie);
  let loginFailures = NO_LOGIN_FAILURES;
  if (config.rateLimits === 'on') {
    // Shared counters in Redis, falling back to this instance's memory while Redis is lost.
    const memory = createMemoryCounterStore(clock, { log: app.log });
    loginFailures = installRateLimits(app, deps.redis ? createRedisCounterStore(deps.redis, { prefix: 'td-rl:', log: app.log, fallback: memory }) : memory);
  }

  await app.register(fastifySwagger, swaggerOptions);
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // Swagger UI sets its own CSP on its pages; keep them as strict as the rest (no framing) and usable over plain http.
    transformStaticCSP: (header) => header.replace(/upgrade-insecure-requests;?/, '').replace("frame-ancestors 'self'", "frame-ancestors 'none'"),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // Services: built once per app; nothing below runs per request.
  const users = createUsersRepository(database.db);
  const mfaRepository = createMfaRepository(database.db);
  const webauthnRepository = createWebauthnRepository(database.db, history);
  const baseDevicesRepository = createDevicesRepository(database.db, history);
  const devicesRepository = deps.wrapDevicesRepository?.(baseDevicesRepository) ?? baseDevicesRepository;
  const baseSessionsRepository = createSessionsRepository(database.db);
  const sessionsRepository = deps.wrapSessionsRepository?.(baseSessionsRepository) ?? baseSessionsRepository;
  const accessTokens = createAccessTokens({
    keys: accessTokenKeysFor(config.jwtAlgorithm, keys),
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    ttlSeconds: config.accessTokenTtlSeconds,
    clock,
  });
  const revocation = createRevocation({ db: database.db, history, devices: devicesRepository, sessions: sessionsRepository, mfa: mfaRepository, clock });
  const sessions = createSessionsService({
    history,
    db: database.db,
    repository: sessionsRepository,
    revocation,
    accessTokens,
    clock,
    refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
    sessionMaxAgeDays: config.sessionMaxAgeDays,
    sessionIdleDays: config.sessionIdleDays,
    boundAccessTokenTtlSeconds: config.boundAccessTokenTtlSeconds,
    // The devices feature owns the proof challenges (one table, one consumption for device and session proofs).
    challenges: { issueChallenge: () => devices.issueChallenge(), consume: (challenge) => devices.consumeChallenge(challenge) },
    alerts: { sessionProofFailed: (userId, context) => accountMail.sessionProofFailed(userId, context) },
    log: app.log,
    geo,
  });
  // Session activity recorded in memory is written before storage closes (src/app/main.ts closes it after the app).
  app.addHook('onClose', () => sessions.flushActivity());
  const mfa = createMfaService({
    repository: mfaRepository,
    revocation,
    encryptor: createEncryptor(keys.dataEncryptionKey),
    dataEncryptionKey: keys.dataEncryptionKey,
    clock,
    webauthnCredentials: webauthnRepository,
  });
  // Account email: requests only queue mail (src/store/mail-outbox.repository.ts); src/app/main.ts runs the sender.
  const accountMail = createAccountMail({ db: database.db, clock, log: app.log, geo });
  const passwords = deps.passwordHasher ?? createPasswordHasher(undefined, config.passwordHashConcurrency);
  const devices = createDevicesService({
    history,
    repository: devicesRepository,
    sessions: sessionsRepository,
    revocation,
    alerts: accountMail,
    clock,
    activationTokenTtlSeconds: config.activationTokenTtlSeconds,
    deviceTrustTtlDays: config.deviceTrustTtlDays,
    maxTrustedDevices: config.maxTrustedDevices,
    deviceTokenReuseGraceSeconds: config.deviceTokenReuseGraceSeconds,
    geo,
  });
  const webauthn = createWebauthnService({
    repository: webauthnRepository,
    clock,
    relyingParty: config.webauthn,
    log: app.log,
    revocation,
    totpEnabled: (userId) => mfa.totpEnabled(userId),
    revokeGrantedBy: (trx, userId, credentialId, actor) => devices.revokeGrantedBy(trx, userId, credentialId, actor),
  });
  const auth = createAuthService({
    users,
    mfaRepository,
    mfa,
    deviceTrust: devices.trust,
    sessions,
    sessionAuthentication: sessions,
    revocation,
    passwords,
    clock,
    mfaChallengeTtlSeconds: config.mfaChallengeTtlSeconds,
    log: app.log,
    webauthn: webauthn.factor,
    accountMail,
    securityCenter: { db: database.db, history, geo, signIns: sessions, impossibleTravelKmh: config.impossibleTravelKmh },
  });
  const account = createAccountService({
    repository: createAccountRepository(database.db, history),
    revocation,
    users,
    mail: accountMail,
    passwords,
    clock,
    loginFailures,
  });

  // Each route plugin gets its own feature's service, the seams of others it
  // needs (src/domain/contracts.ts) and the per-request helpers.
  const http = {
    config,
    requestDevice: createRequestDeviceReader(createFingerprinter(keys.fingerprintKey)),
    authenticate: createAuthenticate(accessTokens, sessions),
  };

  // Step-up (docs/step-up.md): the gate on every sensitive operation of the one list, before their routes are registered.
  installStepUp(app, SENSITIVE_OPERATION_IDS, { maxAgeSeconds: config.stepUpMaxAgeSeconds, clock, secondFactorMethods: (userId) => mfa.methods(userId) });

  await app.register(authRoutes, { ...http, auth, sessions, devices, onLoginOutcome: metrics.loginOutcome, prefix: `${API_PREFIX}/auth` });
  await app.register(mfaRoutes, { ...http, mfa, accounts: auth, alerts: accountMail, sessionAuthentication: sessions, prefix: `${API_PREFIX}/mfa` });
  await app.register(devicesRoutes, { ...http, devices, prefix: `${API_PREFIX}/devices` });
  await app.register(sessionsRoutes, { ...http, sessions, prefix: `${API_PREFIX}/sessions` });
  await app.register(securityRoutes, { ...http, security: createSecurityService({ db: database.db }), prefix: `${API_PREFIX}/security` });
  await app.register(dbscRoutes, { ...http, sessions, prefix: DBSC_PREFIX });
  const admin = createAdminService({
    history,
    db: database.db,
    repository: createAdminRepository(database.db),
    users,
    mfa,
    devices,
    sessions,
    revocation,
    clock,
  });
  await app.register(adminRoutes, { admin, prefix: `${API_PREFIX}/admin` });
  await app.register(webauthnRoutes, { ...http, webauthn, accounts: auth, alerts: accountMail, prefix: API_PREFIX });
  await app.register(accountRoutes, { ...http, account, prefix: API_PREFIX });
  await app.register(accountPages);
  await app.register(opsRoutes, { ping: database.ping, registry });
  await app.register(jwksRoutes, { accessTokens, loadedAt: clock.now() });
  // Shared Signals: SETs are signed with the asymmetric access-token key; with HS256 there is none to verify them with (docs/integration.md).
  if (config.jwtAlgorithm !== 'HS256' && keys.jwtSigningKey) {
    const ssf = createSsfService({
      repository: createSsfRepository(database.db),
      encryptor: createEncryptor(keys.dataEncryptionKey),
      signer: createSetSigner(keys.jwtSigningKey),
      clock,
      issuer: config.publicUrl,
    });
    await app.register(ssfRoutes, { ssf, adminKeys: admin });
  }
  await app.register(webPlugin);

  await app.ready();
  return app;
}
