/**
 * Expiry: sessions past their idle or absolute end are ended (at that end, with
 * a `session_expired` event), devices past their trust lifetime are marked
 * `expired` (with an event). Pruning: spent MFA and WebAuthn challenges and activation tokens, expired refresh
 * tokens, expired device proof challenges and retired device tokens (in
 * bounded batches), devices past their trust lifetime (marked `expired`, with an
 * event), ended devices and events past EVENT_RETENTION_DAYS, finished
 * webhook outbox rows. Runs every
 * few minutes in the process (unref'd timer) and as `npm run prune`.
 *
 * Single-flight: the next run is scheduled only when the previous one has
 * finished (src/platform/single-flight.ts). With a timer that fired
 * regardless, a run slower than the interval (a short interval, a million
 * devices) was joined by the next ones, and together they starved requests.
 *
 * Bounded: every statement touches at most BATCH_SIZE rows, chosen through an
 * index (no statement scans a table; test/ops/housekeeping-bounded.test.ts reads
 * the plans), and a step loops batch after batch, yielding to the event loop
 * in between so requests keep being served, up to MAX_BATCHES_PER_RUN (a
 * backlog beyond that is worked off by the next runs). Independent: a step
 * that fails is logged and reported, and the other steps still run, so one
 * broken step can no longer keep everything else from ever being pruned.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { type Clock, DAY, MINUTE, systemClock } from '../platform/clock.ts';
import type { Config } from '../platform/config.ts';
import { startSingleFlight } from '../platform/single-flight.ts';
import type { DatabaseHandle } from '../store/connect.ts';
import { createDevicesRepository } from '../store/devices.repository.ts';
import { createMfaRepository } from '../store/mfa.repository.ts';
import { createAccountRepository } from '../store/account.repository.ts';
import { createSessionsRepository } from '../store/sessions.repository.ts';
import { createWebhooksRepository } from '../store/webhook-outbox.repository.ts';
import { createWebauthnRepository } from '../store/webauthn.repository.ts';
import { createHistory, historyOptionsFor } from '../store/history.ts';
import { createSsfRepository } from '../store/ssf.repository.ts';

export const BATCH_SIZE = 500;
export const MAX_BATCHES_PER_RUN = 200;

export interface PruneResult {
  challenges: number;
  activationTokens: number;
  refreshTokens: number;
  devicesExpired: number;
  devicesDeleted: number;
  sessionsDeleted: number;
  /** Sessions past their idle or absolute end, ended at that end with a `session_expired` event. */
  sessionsExpired: number;
  events: number;
  webhookOutbox: number;
  ssfOutbox: number;
  /** Verification, reset and report tokens a day past expiry (kept that long so a late click gets 410, not 400). */
  emailTokens: number;
  deviceChallenges: number;
  retiredDeviceTokens: number;
  webauthnChallenges: number;
  /** The steps that failed this run (each is logged); the others ran. */
  failed: Array<Exclude<keyof PruneResult, 'failed'>>;
}

export interface PruneOptions {
  batchSize?: number;
  log?: Pick<FastifyBaseLogger, 'warn'>;
}

/** Runs one batch after another until a batch comes back short (or the run's cap). */
async function drain(batch: (limit: number) => Promise<number>, batchSize: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
    const count = await batch(batchSize);
    total += count;
    if (count < batchSize) break;
    await yieldToEventLoop();
  }
  return total;
}

export async function pruneExpired(
  database: DatabaseHandle,
  config: Pick<Config, 'eventRetentionDays'> & Partial<Pick<Config, 'webhook' | 'jwtAlgorithm' | 'publicUrl'>>,
  clock: Clock = systemClock,
  options: PruneOptions = {},
): Promise<PruneResult> {
  const now = clock.now();
  const retention = config.eventRetentionDays * DAY;
  const batchSize = options.batchSize ?? BATCH_SIZE;
  // Expiring a device or a session writes an event: with webhooks configured, its outbox row too.
  const history = createHistory(historyOptionsFor(config));
  const devices = createDevicesRepository(database.db, history);
  const mfa = createMfaRepository(database.db);
  const sessions = createSessionsRepository(database.db);
  const webauthn = createWebauthnRepository(database.db, history);
  const account = createAccountRepository(database.db);
  const webhooks = createWebhooksRepository(database.db);
  const ssf = createSsfRepository(database.db);

  const steps: Array<[Exclude<keyof PruneResult, 'failed'>, (limit: number) => Promise<number>]> = [
    // Expiry first: devices and sessions it ends are then counted by the retention below from their expiry.
    ['devicesExpired', async (limit) => (await devices.expireDevices(now, limit)).length],
    ['sessionsExpired', async (limit) => (await sessions.expireSessions(history, now, limit)).length],
    ['challenges', (limit) => mfa.deleteExpiredChallenges(now, limit)],
    // Kept a day past expiry so a late activate still gets 410, not 404.
    ['activationTokens', (limit) => devices.deleteSpentActivations(now - DAY, limit)],
    ['refreshTokens', (limit) => sessions.deleteExpiredRefreshTokens(now, limit)],
    ['devicesDeleted', (limit) => devices.deleteEndedDevicesBefore(now - retention, limit)],
    // Ended sessions stay listed in the history's subjects for the retention period.
    ['sessionsDeleted', (limit) => sessions.deleteDeadBefore(now - retention, limit)],
    ['events', (limit) => devices.deleteEventsBefore(now - retention, limit)],
    ['webauthnChallenges', (limit) => webauthn.deleteExpiredChallenges(now, limit)],
    // Kept a day past expiry so a late click still gets "expired", not "invalid".
    ['emailTokens', (limit) => account.deleteExpiredTokens(now - DAY, limit)],
    ['deviceChallenges', (limit) => devices.deleteExpiredChallenges(now, limit)],
    ['retiredDeviceTokens', (limit) => devices.deleteExpiredRetiredTokens(now, limit)],
    // Delivered webhooks after a day; dead ones (never delivered) kept as long as events, for inspection.
    ['webhookOutbox', (limit) => webhooks.pruneFinished(now - DAY, now - retention, limit)],
    // Security Event Tokens likewise: delivered or acknowledged after a day, given up after the retention.
    ['ssfOutbox', (limit) => ssf.pruneFinished(now - DAY, now - retention, limit)],
  ];
  const result: PruneResult = { challenges: 0, activationTokens: 0, refreshTokens: 0, devicesExpired: 0, devicesDeleted: 0, sessionsDeleted: 0, sessionsExpired: 0, events: 0, webauthnChallenges: 0, emailTokens: 0, deviceChallenges: 0, retiredDeviceTokens: 0, webhookOutbox: 0, ssfOutbox: 0, failed: [] };
  for (const [name, batch] of steps) {
    try {
      result[name] = await drain(batch, batchSize);
    } catch (error) {
      result.failed.push(name);
      options.log?.warn({ err: error, step: name }, 'housekeeping step failed; the other steps still run');
    }
  }
  return result;
}

export interface HousekeepingOptions {
  database: DatabaseHandle;
  config: Config;
  log: FastifyBaseLogger;
  /** The pause between the end of one run and the start of the next. */
  intervalMs?: number;
  firstDelayMs?: number;
  /** One run (default: pruneExpired); a seam for tests. */
  prune?: () => Promise<unknown>;
}

/** Prunes in the background until stopped; returns stop(), which resolves once a run in progress has finished. */
export function startHousekeeping(options: HousekeepingOptions): () => Promise<void> {
  const prune = options.prune ?? (() => pruneExpired(options.database, options.config, systemClock, { log: options.log }));
  return startSingleFlight(
    async () => {
      const result = await prune();
      options.log.debug({ result }, 'housekeeping done');
    },
    { name: 'housekeeping', log: options.log, intervalMs: options.intervalMs ?? 5 * MINUTE, firstDelayMs: options.firstDelayMs ?? 5_000 },
  );
}
