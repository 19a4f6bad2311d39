/**
 * The rate-limit store of scale-out mode: counters in Redis, so every
 * instance counts against one shared limit; when Redis cannot answer (not
 * connected, a command fails or times out), counters in this process's
 * memory instead. A lost Redis thus degrades to per-instance limits: never a
 * 500, and never "no limit at all" (what @fastify/rate-limit's skipOnError
 * would do). The switch is logged once each way, not once per request.
 *
 * Both halves are @fastify/rate-limit's own stores, so keys, TTLs and the
 * Retry-After arithmetic are exactly the plugin's.
 */
import { createRequire } from 'node:module';
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';

interface Counter {
  current: number;
  ttl: number;
}
type Callback = (error: Error | null, result?: Counter) => void;

/** The store contract of @fastify/rate-limit 10 as store/*.js implement it; its public types omit timeWindow and max. */
interface Store {
  incr(key: string, callback: Callback, timeWindow: number, max: number): void;
  child(routeOptions: object): Store;
}

interface StoreOptions {
  continueExceeding?: boolean;
  exponentialBackoff?: boolean;
}

// The plugin's stores are CommonJS files outside its typed entry point.
const require = createRequire(import.meta.url);
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as new (
  continueExceeding: boolean | undefined,
  exponentialBackoff: boolean | undefined,
  redis: Redis,
  key: string,
) => Store;
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as new (
  continueExceeding: boolean | undefined,
  exponentialBackoff: boolean | undefined,
) => Store;

/** A store class for @fastify/rate-limit's `store` option (the plugin instantiates it with its options). */
export function redisStoreWithLocalFallback(redis: Redis, nameSpace: string, log: FastifyBaseLogger): FastifyRateLimitStoreCtor {
  let degraded = false;

  const useLocal = (reason: Error) => {
    if (degraded) return;
    degraded = true;
    log.warn({ err: reason }, 'rate limits: Redis unavailable, counting per instance until it answers again');
  };
  const useRedis = () => {
    if (!degraded) return;
    degraded = false;
    log.info('rate limits: Redis answers again, counters are shared');
  };

  class FallbackStore implements Store {
    constructor(
      private readonly shared: Store,
      private readonly local: Store,
    ) {}

    incr(key: string, callback: Callback, timeWindow: number, max: number): void {
      const fallBack = (reason: Error) => {
        useLocal(reason);
        this.local.incr(key, callback, timeWindow, max);
      };
      // Not connected: answer from memory now rather than wait for a reconnect.
      if (redis.status !== 'ready') return fallBack(new Error(`Redis connection is ${redis.status}`));
      this.shared.incr(
        key,
        (error, result) => {
          if (error || !result) return fallBack(error ?? new Error('Redis returned no counter'));
          useRedis();
          callback(null, result);
        },
        timeWindow,
        max,
      );
    }

    child(routeOptions: object): Store {
      return new FallbackStore(this.shared.child(routeOptions), this.local.child(routeOptions));
    }
  }

  class RedisWithLocalFallbackStore extends FallbackStore {
    constructor(options: StoreOptions) {
      super(
        new RedisStore(options.continueExceeding, options.exponentialBackoff, redis, nameSpace),
        new LocalStore(options.continueExceeding, options.exponentialBackoff),
      );
    }
  }
  return RedisWithLocalFallbackStore as unknown as FastifyRateLimitStoreCtor;
}
