import { isPushgateError, PushgateError } from '../errors.js';

/** ioredis's wording, in words an operator reading a gRPC status acts on. */
export function describeRedisError(err: Error): string {
  // The last one is rate-limiter-flexible's wording when it will not send on a client that is not ready.
  if (['enableOfflineQueue', 'Connection is closed', 'Redis connection is not ready'].some((text) => err.message.includes(text))) {
    return 'not connected to Redis (REDIS_URL); reconnecting';
  }
  if (err.message.includes('timed out')) return 'Redis did not answer in time (PUSHGATE_REDIS_COMMAND_TIMEOUT_MS)';
  return `Redis error: ${err.message}`;
}

/**
 * Runs a Redis call; any failure to reach Redis becomes `registry_unavailable` (UNAVAILABLE to a
 * gRPC caller), its message opening with what is unavailable.
 */
export async function callRedis<T>(run: () => Promise<T>, what = 'session registry'): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isPushgateError(err)) throw err;
    const cause = err instanceof Error ? err : new Error(String(err));
    throw new PushgateError('registry_unavailable', `${what} unavailable: ${describeRedisError(cause)}`, { cause: err });
  }
}
