/**
 * Pruning: spent MFA and WebAuthn challenges and activation tokens, expired refresh
 * tokens, devices past their trust lifetime (marked `expired`, with an
 * event), ended devices and events past EVENT_RETENTION_DAYS, finished
 * webhook outbox rows. Runs every
 * few minutes in the process (unref'd timer) and as `npm run prune`.
 * Each statement is indexed by its time column.
 */
import type { FastifyBaseLogger } from 'fastify';
import { type Clock, DAY, MINUTE, systemClock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { DatabaseHandle } from '../db/connect.ts';
import { createDevicesRepository } from '../devices/devices.repository.ts';
import { createMfaRepository } from '../mfa/mfa.repository.ts';
import { createSessionsRepository } from '../sessions/sessions.repository.ts';
import { createWebhooksRepository } from '../webhooks/webhooks.repository.ts';
import { createWebauthnRepository } from '../webauthn/webauthn.repository.ts';

export interface PruneResult {
  challenges: number;
  activationTokens: number;
  refreshTokens: number;
  devicesExpired: number;
  devicesDeleted: number;
  sessionsDeleted: number;
  events: number;
  webhookOutbox: number;
  webauthnChallenges: number;
}

export async function pruneExpired(database: DatabaseHandle, config: Pick<Config, 'eventRetentionDays'>, clock: Clock = systemClock): Promise<PruneResult> {
  const now = clock.now();
  const retention = config.eventRetentionDays * DAY;
  const devices = createDevicesRepository(database.db);
  const sessions = createSessionsRepository(database.db);
  const devicesExpired = (await devices.expireDevices(now)).length;
  return {
    challenges: await createMfaRepository(database.db).deleteExpiredChallenges(now),
    // Kept a day past expiry so a late activate still gets 410, not 404.
    activationTokens: await devices.deleteSpentActivations(now - DAY),
    refreshTokens: await sessions.deleteExpiredRefreshTokens(now),
    devicesExpired,
    devicesDeleted: await devices.deleteEndedDevicesBefore(now - retention),
    // Ended sessions stay listed in the history's subjects for the retention period.
    sessionsDeleted: await sessions.deleteDeadBefore(now - retention),
    events: await devices.deleteEventsBefore(now - retention),
    // Delivered webhooks after a day; dead ones (never delivered) kept as long as events, for inspection.
    webhookOutbox: await createWebhooksRepository(database.db).pruneFinished(now - DAY, now - retention),
    webauthnChallenges: await createWebauthnRepository(database.db).deleteExpiredChallenges(now),
  };
}

export function startHousekeeping(options: { database: DatabaseHandle; config: Config; log: FastifyBaseLogger; intervalMs?: number }): () => void {
  const run = () =>
    pruneExpired(options.database, options.config)
      .then((result) => options.log.debug({ result }, 'housekeeping done'))
      .catch((error) => options.log.warn({ err: error }, 'housekeeping failed'));
  const timer = setInterval(run, options.intervalMs ?? 5 * MINUTE);
  timer.unref();
  const first = setTimeout(run, 5_000);
  first.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(first);
  };
}
