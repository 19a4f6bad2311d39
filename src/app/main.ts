/**
 * The process entry point: the only file that reads process.env and listens.
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close
 * storage, exit 0 (close-with-grace, with a deadline).
 */
import closeWithGrace from 'close-with-grace';
import { buildApp } from './build-app.ts';
import { ConfigError, loadConfig } from '../platform/config.ts';
import { connectDatabase } from '../store/connect.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { resolveKeys } from '../platform/keys.ts';
import { startHousekeeping } from './housekeeping.ts';
import { createWebhookSender } from '../features/webhooks/webhooks.service.ts';
import { createAccountMailComposer } from '../features/account/account-mail.ts';
import { createAccountRepository } from '../store/account.repository.ts';
import { systemClock } from '../platform/clock.ts';
import { createMailSender } from '../features/account/mail.sender.ts';
import { createMailTransport } from '../platform/mail/transport.ts';
import { createOutboxRepository } from '../store/mail-outbox.repository.ts';
import { createHistory, historyOptionsFor } from '../store/history.ts';
import { createServiceMetrics } from '../platform/metrics.ts';
import { createSsfSender } from '../features/ssf/ssf.sender.ts';
import { createEncryptor } from '../platform/crypto/encryption.ts';
import { createSetSigner } from '../platform/crypto/security-event-tokens.ts';
import { createSsfRepository } from '../store/ssf.repository.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const keys = resolveKeys(config);

  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  const database = connectDatabase(config.databaseUrl, {
    poolSize: config.databasePoolSize,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    onBackgroundError: (error) => app?.log.warn({ err: error }, 'database connection error'),
  });
  await migrateToLatest(database.db);

  // Fail fast rather than queue: while Redis is away, rate limits count in
  // memory (src/platform/http/rate-limit-store.ts) and ioredis reconnects behind them.
  // ioredis is loaded only when it is used (≈ 5 MB of resident memory otherwise: docs/performance.md).
  const redis = config.redisUrl
    ? new (await import('ioredis')).Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, commandTimeout: 500 })
    : undefined;
  // One warning per outage, not one per reconnect attempt.
  let redisDown = false;
  redis?.on('error', (error) => {
    if (redisDown || !app) return;
    redisDown = true;
    app.log.warn({ err: error }, 'redis connection error (reconnecting in the background)');
  });
  redis?.on('ready', () => {
    if (redisDown) app?.log.info('redis connection restored');
    redisDown = false;
  });

  // One set of metrics for the app's /metrics and the senders' failure counters.
  const metrics = createServiceMetrics();
  app = await buildApp({ config, keys, database, redis, metrics });
  if (config.cookieSecure === 'auto') {
    app.log.warn(
      'COOKIE_SECURE=auto: cookies are Secure on https and on localhost/loopback, and NOT Secure on plain http from any other host. Set COOKIE_SECURE=true when the service is only reached over https.',
    );
  }
  const stopHousekeeping = startHousekeeping({ database, config, log: app.log, intervalMs: config.housekeepingIntervalSeconds * 1000 });
  // Webhooks: deliveries run beside the requests, never inside them.
  const stopWebhooks = config.webhook ? createWebhookSender({ db: database.db, config: config.webhook, clock: systemClock, log: app.log, onFailure: (givenUp) => metrics.deliveryFailed('webhooks', givenUp) }).start() : async () => {};
  // Shared Signals push: SETs are signed with the asymmetric access-token key (none in HS256 mode: no SETs are written then).
  const stopSsf =
    config.jwtAlgorithm !== 'HS256' && keys.jwtSigningKey
      ? createSsfSender({
          repository: createSsfRepository(database.db),
          encryptor: createEncryptor(keys.dataEncryptionKey),
          signer: createSetSigner(keys.jwtSigningKey),
          clock: systemClock,
          log: app.log,
          onFailure: (givenUp) => metrics.deliveryFailed('ssf', givenUp),
        }).start()
      : async () => {};
  // Account mail: requests only queue it; this instance's sender delivers its share.
  const mailTransport = createMailTransport(config, app.log);
  const stopMail = createMailSender({
    // A sent alert is a line of the account's history (`alert_sent`), written with the row marked sent.
    outbox: createOutboxRepository(database.db, createHistory(historyOptionsFor(config))),
    transport: mailTransport,
    compose: createAccountMailComposer({ repository: createAccountRepository(database.db), clock: systemClock, publicUrl: config.publicUrl }),
    clock: systemClock,
    log: app.log,
    onFailure: (givenUp) => metrics.deliveryFailed('mail', givenUp),
  }).start();

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app?.log.error({ err }, 'shutting down after an error');
    else app?.log.info({ signal }, 'shutting down');
    // The background loops finish the run in flight (each is bounded) while the
    // requests drain; the transport and the database close after all of them.
    await Promise.all([stopHousekeeping(), stopMail(), stopWebhooks(), stopSsf(), app?.close()]);
    mailTransport.close();
    await database.close();
    redis?.disconnect();
  });

  await app.listen({ host: config.host, port: config.port });
}

main().catch((error) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
