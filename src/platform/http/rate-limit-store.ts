/**
 * The counters behind the rate limits (src/platform/http/rate-limits.ts): fixed
 * windows, one counter per key, each expiring with its window.
 *
 * - `hit` adds one to several counters at once and answers each one's count
 *   and remaining time; `undo` takes one back (an attempt that turned out not
 *   to count: a successful sign-in, a request refused by another counter);
 *   `clear` forgets a counter (a password reset lifts the per-account lock).
 *   Counting BEFORE the work and undoing after is what keeps concurrent
 *   requests from outrunning a limit.
 * - With REDIS_URL, counters live in Redis (INCR + PEXPIRE in one Lua
 *   script), shared by every instance. When Redis cannot answer (not
 *   connected, a command fails or times out), this process's memory counts
 *   instead: a lost Redis degrades to per-instance limits, never to a 500
 *   and never to "no limit at all". The switch is logged once each way.
 * - In memory, counters are never evicted to make room: a spray of new keys
 *   must not push a victim's counter out (an LRU of 5,000 keys did). Expired
 *   counters are swept; at MAX_KEYS live counters a new key is refused
 *   (fail closed, 429) until some expire, and that is logged.
 *
 * Threats: brute force and credential stuffing (the counters), memory
 * exhaustion by many keys (the cap), a lost Redis (the fallback).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';

export interface CounterHit {
  key: string;
  windowMs: number;
}

export interface CounterState {
  count: number;
  /** Milliseconds until the counter's window ends. */
  ttlMs: number;
}

export interface CounterStore {
  hit(hits: readonly CounterHit[]): Promise<CounterState[]>;
  undo(keys: readonly string[]): Promise<void>;
  /** Forgets counters (a password reset, a sign-in from a known device: docs/security.md). */
  clear(keys: readonly string[]): Promise<void>;
}

/** Live in-memory counters at most (~200 bytes each: tens of MB at worst). */
export const MAX_KEYS = 200_000;
const SWEEP_EVERY_MS = 60_000;

export function createMemoryCounterStore(clock: Clock, options: { maxKeys?: number; log?: FastifyBaseLogger } = {}): CounterStore {
  const maxKeys = options.maxKeys ?? MAX_KEYS;
  const counters = new Map<string, { count: number; endsAt: number }>();
  let lastSweepAt = clock.now();
  let full = false;

  const sweep = (now: number) => {
    for (const [key, counter] of counters) if (counter.endsAt <= now) counters.delete(key);
    lastSweepAt = now;
  };

  const hitOne = ({ key, windowMs }: CounterHit, now: number): CounterState => {
    const counter = counters.get(key);
    if (counter !== undefined && counter.endsAt > now) {
      counter.count++;
      return { count: counter.count, ttlMs: counter.endsAt - now };
    }
    if (counter === undefined && counters.size >= maxKeys) {
      // Only when full, and at most once a second: a full sweep is O(keys).
      if (now - lastSweepAt >= 1000) sweep(now);
      if (counters.size >= maxKeys) {
        if (!full) options.log?.warn({ keys: counters.size }, 'rate limits: in-memory counters full; new keys are refused until some expire');
        full = true;
        return { count: Number.MAX_SAFE_INTEGER, ttlMs: 1000 };
      }
    }
    full = false;
    counters.set(key, { count: 1, endsAt: now + windowMs });
    return { count: 1, ttlMs: windowMs };
  };

  return {
    async hit(hits) {
      const now = clock.now();
      if (now - lastSweepAt >= SWEEP_EVERY_MS) sweep(now);
      return hits.map((hit) => hitOne(hit, now));
    },
    async undo(keys) {
      const now = clock.now();
      for (const key of keys) {
        const counter = counters.get(key);
        if (counter === undefined || counter.endsAt <= now) continue;
        if (--counter.count <= 0) counters.delete(key);
      }
    },
    async clear(keys) {
      for (const key of keys) counters.delete(key);
    },
  };
}

// KEYS: the counters; ARGV: their windows in ms. Returns count, ttl pairs.
const HIT_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i])
  local count = redis.call('INCR', key)
  local ttl = -1
  if count > 1 then ttl = redis.call('PTTL', key) end
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
return out`;

// Takes one back from live counters only (a DECR on a missing key would create one without expiry).
const UNDO_SCRIPT = `
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) > 0 then
    if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
  end
end
return 0`;

type RedisWithCounters = Redis & {
  tdCounterHit(...args: Array<string | number>): Promise<number[]>;
  tdCounterUndo(...args: Array<string | number>): Promise<number>;
};

export function createRedisCounterStore(redis: Redis, options: { prefix: string; log: FastifyBaseLogger; fallback: CounterStore }): CounterStore {
  const { prefix, log, fallback } = options;
  const client = redis as RedisWithCounters;
  if (typeof client.tdCounterHit !== 'function') {
    redis.defineCommand('tdCounterHit', { lua: HIT_SCRIPT });
    redis.defineCommand('tdCounterUndo', { lua: UNDO_SCRIPT });
  }
  let degraded = false;
  const useLocal = (reason: unknown) => {
    if (degraded) return;
    degraded = true;
    log.warn({ err: reason }, 'rate limits: Redis unavailable, counting per instance until it answers again');
  };
  const useRedis = () => {
    if (!degraded) return;
    degraded = false;
    log.info('rate limits: Redis answers again, counters are shared');
  };

  return {
    async hit(hits) {
      if (hits.length === 0) return [];
      // Not connected: answer from memory now rather than wait for a reconnect.
      if (redis.status !== 'ready') {
        useLocal(new Error(`Redis connection is ${redis.status}`));
        return fallback.hit(hits);
      }
      try {
        const keys = hits.map((h) => prefix + h.key);
        const flat = await client.tdCounterHit(keys.length, ...keys, ...hits.map((h) => h.windowMs));
        useRedis();
        return hits.map((_, i) => ({ count: Number(flat[2 * i]), ttlMs: Number(flat[2 * i + 1]) }));
      } catch (error) {
        useLocal(error);
        return fallback.hit(hits);
      }
    },
    async undo(keys) {
      if (keys.length === 0) return;
      if (redis.status !== 'ready') return fallback.undo(keys);
      try {
        await client.tdCounterUndo(keys.length, ...keys.map((key) => prefix + key));
      } catch {
        await fallback.undo(keys);
      }
    },
    async clear(keys) {
      if (keys.length === 0) return;
      // Both: the memory fallback may have counted while Redis was away.
      await fallback.clear(keys);
      if (redis.status !== 'ready') return;
      try {
        await redis.del(...keys.map((key) => prefix + key));
      } catch (error) {
        useLocal(error);
      }
    },
  };
}
