import { isPushgateError, PushgateError } from '../errors.js';

/** ioredis's wording, in words an operator reading a gRPC status acts on. */
export function describeRedisError(err: Error): string {
  if (err.message.includes('enableOfflineQueue') || err.message.includes('Connection is closed')) {
    return 'not connected to Redis (REDIS_URL); reconnecting';
  }
  if (err.message.includes('timed out')) return 'Redis did not answer in time (PUSHGATE_REDIS_COMMAND_TIMEOUT_MS)';
  return `Redis error: ${err.message}`;
}

/** Runs a Redis call; any failure to reach Redis becomes `registry_unavailable` (UNAVAILABLE to a gRPC caller). */
export async function callRedis<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isPushgateError(err)) throw err;
    throw new PushgateError('registry_unavailable', `session registry unavailable: ${describeRedisError(err as Error)}`, { cause: err });
  }
}
