import type { Logger } from 'pino';
import type { Config, RedisConfig } from '../config.js';
import type { SessionCloser } from '../domain/push.js';
import { RedisKeys } from '../registry/redis-keys.js';
import { RedisSessionRegistry } from '../registry/redis-registry.js';
import { defineScripts, type RedisClient } from '../registry/redis-scripts.js';
import { Membership } from './membership.js';
import { NodeBus } from './node-bus.js';
import { connectRedis, openRedis } from './redis-connection.js';
import { BusRemoteNodes, serveRemoteRequests, type HeldSessions } from './remote-nodes.js';

/** How long a stopping node lets a connection say goodbye to Redis before dropping it. */
const QUIT_TIMEOUT_MS = 500;

/** last_seen_at refreshes are batched this long: pongs come every ping interval per session. */
const TOUCH_FLUSH_MS = 1000;

/**
 * Everything cluster mode adds to a node, built from REDIS_URL: the Redis registry, the node's
 * membership (lease, reaping, re-sync) and the bus to other nodes. App owns its lifecycle.
 */
export class ClusterMode {
  readonly registry: RedisSessionRegistry;
  readonly remote: BusRemoteNodes;
  readonly bus: NodeBus;
  private readonly membership: Membership;
  private readonly clients: RedisClient[] = [];
  private readonly command: RedisClient;
  private readonly subscriber: RedisClient;

  constructor(
    private readonly config: Config & { readonly redis: RedisConfig },
    private readonly log: Logger,
    onHealthChange: (healthy: boolean) => void,
  ) {
    const { redis, nodeId } = config;
    const keys = new RedisKeys(redis.keyPrefix, redis.shards);
    this.command = this.open('command');
    this.subscriber = this.open('subscriber');
    const scripts = defineScripts(this.command);
    this.registry = new RedisSessionRegistry({
      client: this.command,
      scripts,
      openReader: () => {
        const reader = this.open('reader');
        // Connection failures are retried by ioredis; the reader's loop waits for it meanwhile.
        reader.connect().catch(() => undefined);
        return reader;
      },
      keys,
      nodeId,
      retention: config.presenceRetention,
      retentionMs: config.presenceRetentionMs,
      touchFlushMs: TOUCH_FLUSH_MS,
      log,
    });
    this.bus = new NodeBus({ publisher: this.command, subscriber: this.subscriber, keys, nodeId, log, now: () => this.membership.now() });
    this.remote = new BusRemoteNodes(this.bus, redis.nodeReplyGraceMs);
    this.membership = new Membership({
      client: this.command,
      scripts,
      registry: this.registry,
      keys,
      nodeId,
      leaseTtlMs: redis.leaseTtlMs,
      reapIntervalMs: redis.reapIntervalMs,
      log,
      onHealthChange: (healthy) => {
        if (healthy) log.info('cluster mode: Redis reachable and lease held; serving');
        else log.warn('cluster mode: Redis unreachable or lease not renewed; reporting NOT_SERVING');
        onHealthChange(healthy);
      },
    });
  }

  get healthy(): boolean {
    return this.membership.isHealthy;
  }

  /**
   * Connects to Redis (failing with a message naming REDIS_URL), starts following the presence
   * streams, takes the lease and starts serving other nodes' requests with the local sessions.
   */
  async start(local: HeldSessions, closer: SessionCloser): Promise<void> {
    const { redis } = this.config;
    const connectTimeoutMs = Math.max(redis.commandTimeoutMs * 2, 3000);
    let leased = false;
    try {
      await connectRedis(this.command, redis, connectTimeoutMs);
      await requireRedis7(this.command);
      await connectRedis(this.subscriber, redis, connectTimeoutMs);
      await this.registry.start();
      // The lease renewal also reads the Redis clock the bus's request expiries are measured on.
      await this.membership.start();
      leased = true;
      await this.bus.start(serveRemoteRequests({ local, closer, replyMarginMs: Math.floor(redis.nodeReplyGraceMs / 2), log: this.log }));
    } catch (err) {
      // A node that cannot join leaves no connection or reader behind (tests start nodes in-process).
      if (leased) await this.membership.stop();
      await this.registry.close();
      for (const client of this.clients) client.disconnect();
      throw err;
    }
  }

  /** After the node's sessions were closed (and unregistered): give up the lease, then disconnect. */
  async stop(): Promise<void> {
    this.bus.close();
    await this.membership.stop();
    await this.registry.close();
    await Promise.all(this.clients.map((client) => closeClient(client)));
  }

  private open(role: 'command' | 'reader' | 'subscriber'): RedisClient {
    const client = openRedis(this.config.redis, role, this.config.nodeId);
    // ioredis reports every failed reconnect as an 'error' event; membership reports health instead.
    client.on('error', (err: Error) => this.log.debug({ err: err.message, role }, 'redis connection error'));
    this.clients.push(client);
    return client;
  }
}

/** QUIT when Redis answers; a stopping node never waits on a Redis that is away (the subscriber queues commands). */
async function closeClient(client: RedisClient): Promise<void> {
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

/** Sharded pub/sub and the stream commands the registry uses arrived in Redis 7.0: say so at start, not at the first push. */
async function requireRedis7(client: RedisClient): Promise<void> {
  const info = await client.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  if (Number(version.split('.')[0]) < 7) {
    throw new Error(`cluster mode needs Redis 7.0 or later; REDIS_URL points at Redis ${version}`);
  }
}
