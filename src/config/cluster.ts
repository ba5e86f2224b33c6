import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/** Cluster mode: present when REDIS_URL is set. */
export interface RedisConfig {
  /** One URL, or for a Redis Cluster the seed nodes' URLs. */
  readonly urls: readonly string[];
  readonly cluster: boolean;
  /** Prepended to every key and channel, so several deployments can share one Redis. */
  readonly keyPrefix: string;
  /** Partitions of the registry; each is one hash slot. Every node of a deployment must agree. */
  readonly shards: number;
  /** A Redis command that has not answered by then fails (registry_unavailable). */
  readonly commandTimeoutMs: number;
  /** A node whose lease is this old is dead: its sessions are reaped. */
  readonly leaseTtlMs: number;
  /** How often each node looks for dead nodes to reap. */
  readonly reapIntervalMs: number;
  /** How long past a push's ack timeout a caller waits for another node's reply before failing its sessions. */
  readonly nodeReplyGraceMs: number;
}

export const CLUSTER_SETTINGS = {
  redisUrl: {
    flag: '--redis-url <url>',
    env: 'REDIS_URL',
    help: 'cluster mode: Redis URL (redis:// or rediss://); for a Redis Cluster, comma-separated seed URLs',
  },
  redisCluster: {
    flag: '--redis-cluster',
    env: 'PUSHGATE_REDIS_CLUSTER',
    boolean: true,
    fallback: 'off',
    help: 'REDIS_URL points at a Redis Cluster',
  },
  redisPrefix: {
    flag: '--redis-prefix <prefix>',
    env: 'PUSHGATE_REDIS_PREFIX',
    fallback: 'pushgate:',
    help: 'prefix of every Redis key and channel',
  },
  redisShards: {
    flag: '--redis-shards <n>',
    env: 'PUSHGATE_REDIS_SHARDS',
    fallback: '1',
    help: 'registry partitions (hash slots); raise on a Redis Cluster; same on every node',
  },
  redisCommandTimeoutMs: {
    flag: '--redis-command-timeout-ms <ms>',
    env: 'PUSHGATE_REDIS_COMMAND_TIMEOUT_MS',
    fallback: '2000',
    help: 'a Redis command slower than this fails with UNAVAILABLE',
  },
  nodeLeaseMs: {
    flag: '--node-lease-ms <ms>',
    env: 'PUSHGATE_NODE_LEASE_MS',
    fallback: '15000',
    help: 'cluster node lease TTL; refreshed every third of it',
  },
  reapIntervalMs: {
    flag: '--reap-interval-ms <ms>',
    env: 'PUSHGATE_REAP_INTERVAL_MS',
    fallback: '5000',
    help: 'how often nodes reap the sessions of nodes whose lease lapsed',
  },
  nodeReplyGraceMs: {
    flag: '--node-reply-grace-ms <ms>',
    env: 'PUSHGATE_NODE_REPLY_GRACE_MS',
    fallback: '500',
    help: 'wait past the ack timeout for another node’s push results',
  },
} as const satisfies Record<string, Spec>;

export type ClusterKey = keyof typeof CLUSTER_SETTINGS;

/** Undefined without REDIS_URL: one node with the in-memory registry. */
export function parseCluster(settings: SettingsReader<ClusterKey>): RedisConfig | undefined {
  const { raw, int, bool, describe } = settings;
  const value = raw('redisUrl');
  const cluster = bool('redisCluster');
  if (value === undefined) {
    if (cluster) throw new ConfigError(`${describe('redisCluster')} is on but ${describe('redisUrl')} is not set`);
    return undefined;
  }
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`${describe('redisUrl')} must be redis://host:port or rediss://host:port, got "${redactUrl(url)}"`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new ConfigError(`${describe('redisUrl')} must use redis:// or rediss://, got "${redactUrl(url)}"`);
    }
  }
  if (urls.length > 1 && !cluster) {
    throw new ConfigError(`${describe('redisUrl')} lists ${urls.length} URLs; several seed URLs need ${describe('redisCluster')}=1`);
  }
  const keyPrefix = raw('redisPrefix') ?? 'pushgate:';
  if (!/^[\x21-\x7e]{0,64}$/.test(keyPrefix) || /[{}]/.test(keyPrefix)) {
    throw new ConfigError(`${describe('redisPrefix')} must be up to 64 printable characters without spaces or { }, got "${keyPrefix}"`);
  }
  const leaseTtlMs = int('nodeLeaseMs', 300, 600_000);
  const reapIntervalMs = int('reapIntervalMs', 100, 600_000);
  const commandTimeoutMs = int('redisCommandTimeoutMs', 50, 60_000);
  if (commandTimeoutMs * 2 > leaseTtlMs) {
    // A lease refresh (every third of the TTL) that can hang for half of it would let a live node lapse.
    throw new ConfigError(
      `${describe('redisCommandTimeoutMs')} (${commandTimeoutMs}) must be at most half of ${describe('nodeLeaseMs')} (${leaseTtlMs})`,
    );
  }
  return Object.freeze({
    urls: Object.freeze(urls),
    cluster,
    keyPrefix,
    shards: int('redisShards', 1, 1024),
    commandTimeoutMs,
    leaseTtlMs,
    reapIntervalMs,
    nodeReplyGraceMs: int('nodeReplyGraceMs', 0, 60_000),
  });
}

/** A Redis URL as it may appear in an error or a log: without its password. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // What does not parse cannot be told apart from its password: none of it is shown.
    return '<a URL that does not parse>';
  }
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}
