import { Cluster, type ClusterNode, Redis, type RedisOptions } from 'ioredis';
import { type RedisConfig, redactUrl } from '../config/config.js';
import type { RedisClient } from './client.js';

/** Longest pause between reconnection attempts: Redis coming back is noticed within it. */
const MAX_RECONNECT_DELAY_MS = 1000;

export type ConnectionRole = 'command' | 'reader' | 'subscriber';

/**
 * Opens a connection to the configured Redis or Redis Cluster, not yet connected (`connect()` it).
 * Every role reconnects forever with a short capped backoff. Commands never queue while Redis is
 * away (they fail at once) and fail after `commandTimeoutMs` when Redis does not answer, so callers
 * get UNAVAILABLE quickly. Stream readers block on purpose, so they have no command timeout, and
 * drop a read cut by a reconnect instead of resending it (the reader re-checks where to continue).
 */
export function openRedis(config: RedisConfig, role: ConnectionRole, name: string): RedisClient {
  const [first] = config.urls;
  const url = new URL(first!);
  const options: RedisOptions = {
    lazyConnect: true,
    connectionName: `pushgate:${name}:${role}`,
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    ...(url.protocol === 'rediss:' && { tls: { servername: url.hostname } }),
    connectTimeout: Math.max(config.commandTimeoutMs, 1000),
    enableOfflineQueue: role === 'subscriber',
    // 0: a command caught by a connection loss fails at once (a blocked stream read included, so
    // its reader re-checks where to continue) instead of waiting for a reconnect that may not come.
    maxRetriesPerRequest: role === 'subscriber' ? null : 0,
    autoResendUnfulfilledCommands: role === 'subscriber',
    ...(role === 'command' && { commandTimeout: config.commandTimeoutMs }),
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
  };
  if (!config.cluster) {
    const db = Number(url.pathname.slice(1) || '0');
    return new Redis({ ...options, host: url.hostname, port: Number(url.port || 6379), db });
  }
  const nodes: ClusterNode[] = config.urls.map((u) => {
    const seed = new URL(u);
    return { host: seed.hostname, port: Number(seed.port || 6379) };
  });
  return new Cluster(nodes, {
    lazyConnect: true,
    // The node bus uses SSUBSCRIBE: ioredis then keeps a subscriber connection per master.
    shardedSubscribers: role === 'subscriber',
    enableOfflineQueue: options.enableOfflineQueue,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    redisOptions: options,
  });
}

/** Connects, failing with a message naming REDIS_URL (without its password) if Redis does not answer in time. */
export async function connectRedis(client: RedisClient, config: RedisConfig, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  // ioredis rejects connect() with a bare "Connection is closed." and reports why (WRONGPASS,
  // NOAUTH, ECONNREFUSED…) only as an 'error' event: keep the last one for the message.
  let lastError: Error | undefined;
  const onError = (err: Error): void => {
    lastError = err;
  };
  client.on('error', onError);
  try {
    await Promise.race([client.connect(), late]);
  } catch (err) {
    client.disconnect();
    const where = config.urls.map(redactUrl).join(', ');
    throw new Error(`cannot reach Redis at ${where} (REDIS_URL): ${connectFailure(err as Error, lastError)}`);
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}

function connectFailure(err: Error, lastError: Error | undefined): string {
  const reason = lastError?.message ?? err.message;
  if (/^(WRONGPASS|NOAUTH)/.test(reason)) {
    return `Redis refused the credentials (${reason.split(' ')[0]}): check the user and password in REDIS_URL`;
  }
  return lastError === undefined ? err.message : `${err.message} (${reason})`;
}

/** How long a stopping node lets a connection say goodbye to Redis before dropping it. */
const QUIT_TIMEOUT_MS = 500;

/** QUIT when Redis answers; a stopping node never waits on a Redis that is away (the subscriber queues commands). */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)));
  await Promise.race([client.quit().catch(() => undefined), late]);
  clearTimeout(timer);
  client.disconnect();
}

/** Sharded pub/sub and the stream commands pushgate uses arrived in Redis 7.0: say so at start, not at the first push. */
export async function requireRedis7(client: RedisClient): Promise<void> {
  const info = await client.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  if (Number(version.split('.')[0]) < 7) {
    throw new Error(`cluster mode needs Redis 7.0 or later; REDIS_URL points at Redis ${version}`);
  }
}
