import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Rate, RateLimiter } from '../domain/rate-limiter.js';
import type { RedisClient } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { TOKEN_BUCKET_EPSILON_MS, tokenBucket } from './memory-rate-limiter.js';

/**
 * The token bucket of memory-rate-limiter.ts, one step of it, run by rate-limiter-flexible's
 * RateLimiterRedis in place of its own script (option `customIncrTtlLuaScript`). Its own script is
 * a fixed window whose expiry is whole seconds (EX): it cannot express 20/s with a burst of 5, and
 * a window under a second never expires at all. The library passes the ARGV below and rejects the
 * call when the first reply element exceeds its `points` (here `burst`).
 *
 * KEYS[1]  the bucket: when it is full again, in ms on the Redis clock (absent: full)
 * ARGV[1]  tokens to take (1)
 * ARGV[2]  unused: the library's whole-second key lifetime (see `keyLifetimeS`)
 * ARGV[3]  burst (the limiter's points)
 * ARGV[4]  burst / perSecond: seconds an empty bucket takes to fill (the limiter's duration)
 * Reply    admitted: {tokens in use (≤ burst), ms until full}
 *          refused:  {burst + 1, ms until the next token}; nothing is written
 */
const TOKEN_BUCKET_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local take = tonumber(ARGV[1])
local burst = tonumber(ARGV[3])
local depth = tonumber(ARGV[4]) * 1000
local interval = depth / burst
local full_at = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local full_after = full_at + take * interval - now
if full_after > depth + ${TOKEN_BUCKET_EPSILON_MS} then
  return {burst + 1, math.ceil(full_after - depth)}
end
redis.call('SET', KEYS[1], string.format('%.3f', now + full_after), 'PX', math.ceil(full_after))
return {math.min(burst, math.ceil(full_after / interval - ${TOKEN_BUCKET_EPSILON_MS})), math.ceil(full_after)}
`;

export interface RedisRateLimiterOptions {
  /** A command connection: no offline queue and a command timeout (as src/redis/connection.ts opens it). */
  readonly client: RedisClient;
  /** The deployment's key prefix (PUSHGATE_REDIS_PREFIX). */
  readonly keyPrefix: string;
}

interface Limiter {
  readonly limiter: RateLimiterRedis;
  /**
   * Passed as `customDuration`: the library only runs a script for keys that live a whole second
   * or more (it floors the duration to seconds), and a bucket may refill faster. The script sets
   * the real expiry itself, to the millisecond.
   */
  readonly keyLifetimeS: number;
}

/**
 * Rate limits for the whole cluster: every node's limiter draws from the same bucket in Redis,
 * `<prefix>ratelimit:<perSecond>/<burst>:{<key>}`. The hash tag keeps all of one caller's buckets
 * in one Redis Cluster slot. Time is the Redis server's clock, so nodes' clocks need not agree.
 *
 * A command never waits for Redis to come back: the limiter refuses to send while the client is
 * not ready, and the client's command timeout bounds a call Redis does not answer. Either way
 * `consume` rejects with `registry_unavailable`; callers decide whether to fail open.
 *
 * rate-limiter-flexible defines one command (`rlflxIncr`) per client, shared by every
 * RateLimiterRedis on it: only limiters with this script may live on the client passed here.
 */
export class RedisRateLimiter implements RateLimiter {
  /** One per distinct rate (a few: one per scope), made on first use. */
  private readonly limiters = new Map<string, Limiter>();

  constructor(private readonly options: RedisRateLimiterOptions) {}

  async consume(key: string, rate: Rate): Promise<number> {
    const { limiter, keyLifetimeS } = this.limiterFor(rate);
    // The library rejects with a RateLimiterRes for a refused call: that is an answer, not a failure.
    return callRedis(
      () =>
        limiter.consume(`{${key}}`, 1, { customDuration: keyLifetimeS }).then(
          () => 0,
          (err: unknown) => {
            if (err instanceof RateLimiterRes) return Math.max(1, err.msBeforeNext);
            throw err;
          },
        ),
      'rate limits',
    );
  }

  /** Forgets the limiters; the client belongs to the caller, who closes it. */
  async close(): Promise<void> {
    this.limiters.clear();
  }

  private limiterFor(rate: Rate): Limiter {
    const id = `${rate.perSecond}/${rate.burst}`;
    let entry = this.limiters.get(id);
    if (entry === undefined) {
      const { depthMs } = tokenBucket(rate);
      entry = {
        limiter: new RateLimiterRedis({
          storeClient: this.options.client,
          keyPrefix: `${this.options.keyPrefix}ratelimit:${id}`,
          points: rate.burst,
          duration: depthMs / 1000,
          customIncrTtlLuaScript: TOKEN_BUCKET_LUA,
          rejectIfRedisNotReady: true,
        }),
        keyLifetimeS: Math.max(1, Math.ceil(depthMs / 1000)),
      };
      this.limiters.set(id, entry);
    }
    return entry;
  }
}
