import type { Logger } from 'pino';
import type { Config, RedisConfig } from '../config/config.js';
import type { SessionCloser, SessionTransport } from '../domain/session-transport.js';
import { RedisIdempotencyStore } from '../idempotency/redis-idempotency.js';
import { InboxKeys } from '../inbox/inbox-keys.js';
import { RedisInbox } from '../inbox/redis-inbox.js';
import { RedisReceiptStore } from '../receipts/redis-receipts.js';
import type { RedisClient } from '../redis/client.js';
import { closeRedis, connectRedis, openRedis, requireRedis7 } from '../redis/connection.js';
import { observeRedis, type RedisObserver } from '../redis/observe.js';
import { RegistryKeys } from '../registry/redis-keys.js';
import { RedisSessionRegistry } from '../registry/redis-registry.js';
import { ClusterKeys } from './cluster-keys.js';
import { Membership } from './membership.js';
import { type BusObserver, NodeBus } from './node-bus.js';
import { RedisBusTransport } from './redis-bus-transport.js';
import { BusRemoteNodes, serveRemoteRequests } from './remote-nodes.js';

/** last_seen_at refreshes are batched this long: pongs come every ping interval per session. */
const TOUCH_FLUSH_MS = 1000;

/**
 * Everything cluster mode adds to a node, built from REDIS_URL: the Redis registry, the node's
 * membership (lease, reaping, re-sync) and the bus to other nodes. App owns its lifecycle.
 */
export class ClusterMode {
  readonly registry: RedisSessionRegistry;
  /** The offline inbox, kept in each user's registry shard. */
  readonly inbox: RedisInbox;
  /** Receipts and their event stream, shared by every node. */
  readonly receipts: RedisReceiptStore;
  /** Remembered push results by message id, shared by every node. */
  readonly idempotency: RedisIdempotencyStore;
  readonly remote: BusRemoteNodes;
  readonly bus: NodeBus;
  private readonly membership: Membership;
  private readonly clients: RedisClient[] = [];
  /** The command connection (no offline queue, command timeout), shared with what else the node keeps in Redis (rate limits). */
  readonly command: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly redis: RedisConfig;
  /** Set by stop(): the lease is given up on purpose. */
  private leaving = false;

  constructor(
    config: Pick<Config, 'server' | 'presence'> & { readonly redis: RedisConfig },
    private readonly log: Logger,
    onHealthChange: (healthy: boolean) => void,
    /** Metrics: the bus's requests and the Redis connections' script calls and errors. */
    private readonly observers: { readonly bus?: BusObserver; readonly redis?: RedisObserver } = {},
  ) {
    const { redis, server, presence } = config;
    const { nodeId } = server;
    this.redis = redis;
    this.command = this.open('command', nodeId);
    this.subscriber = this.open('subscriber', nodeId);
    const registryKeys = new RegistryKeys(redis.keyPrefix, redis.shards);
    this.registry = new RedisSessionRegistry({
      client: this.command,
      openReader: () => this.openReader(nodeId),
      keys: registryKeys,
      nodeId,
      retention: presence.retention,
      retentionMs: presence.retentionMs,
      touchFlushMs: TOUCH_FLUSH_MS,
      log,
    });
    this.inbox = new RedisInbox({
      client: this.command,
      keys: new InboxKeys((userId) => registryKeys.tag(registryKeys.shardOf(userId))),
      shardTags: Array.from({ length: redis.shards }, (_, shard) => registryKeys.tag(shard)),
    });
    this.receipts = new RedisReceiptStore({
      client: this.command,
      openReader: () => this.openReader(nodeId),
      prefix: redis.keyPrefix,
      retention: presence.retention,
      retentionMs: presence.retentionMs,
      log,
    });
    this.idempotency = new RedisIdempotencyStore({ client: this.command, prefix: redis.keyPrefix });
    const keys = new ClusterKeys(redis.keyPrefix);
    const transport = new RedisBusTransport({ publisher: this.command, subscriber: this.subscriber, keys });
    this.bus = new NodeBus({ transport, nodeId, log, now: () => this.membership.now(), observer: observers.bus });
    this.remote = new BusRemoteNodes(this.bus, redis.nodeReplyGraceMs);
    this.membership = new Membership({
      client: this.command,
      registry: this.registry.recovery,
      keys,
      nodeId,
      leaseTtlMs: redis.leaseTtlMs,
      reapIntervalMs: redis.reapIntervalMs,
      log,
      onHealthChange: (healthy) => {
        if (healthy) log.info('cluster mode: Redis reachable and lease held; serving');
        // Giving up the lease on the way out is not trouble: no warning for an operator to chase.
        else if (this.leaving) log.info('cluster mode: lease given up; leaving the cluster');
        else log.warn('cluster mode: Redis unreachable or lease not renewed; reporting NOT_SERVING');
        onHealthChange(healthy);
      },
    });
  }

  get healthy(): boolean {
    return this.membership.isHealthy;
  }

  /** Ids of the nodes holding a live lease, this one included while it holds its own. */
  liveNodes(): Promise<string[]> {
    return this.membership.liveNodes();
  }

  /**
   * Connects to Redis (failing with a message naming REDIS_URL), starts following the presence
   * streams, takes the lease and starts serving other nodes' requests with the local sessions.
   */
  async start(local: SessionTransport, closer: SessionCloser): Promise<void> {
    const { redis } = this;
    const connectTimeoutMs = Math.max(redis.commandTimeoutMs * 2, 3000);
    let leased = false;
    try {
      await connectRedis(this.command, redis, connectTimeoutMs);
      await requireRedis7(this.command);
      await connectRedis(this.subscriber, redis, connectTimeoutMs);
      await this.registry.start();
      await this.receipts.start();
      // The lease renewal also reads the Redis clock the bus's request expiries are measured on.
      await this.membership.start();
      leased = true;
      await this.bus.start(serveRemoteRequests({ local, closer, replyMarginMs: Math.floor(redis.nodeReplyGraceMs / 2) }));
    } catch (err) {
      // A node that cannot join leaves no connection or reader behind (tests start nodes in-process).
      if (leased) await this.membership.stop();
      await this.registry.close();
      await this.receipts.close();
      for (const client of this.clients) client.disconnect();
      throw err;
    }
  }

  /** After the node's sessions were closed (and unregistered): give up the lease, then disconnect. */
  async stop(): Promise<void> {
    this.leaving = true;
    this.bus.close();
    await this.membership.stop();
    await this.registry.close();
    await this.receipts.close();
    await this.idempotency.close();
    await Promise.all(this.clients.map((client) => closeRedis(client)));
  }

  /** A connection for blocking stream reads (presence, receipts), connecting in the background. */
  private openReader(nodeId: string): RedisClient {
    const reader = this.open('reader', nodeId);
    // Connection failures are retried by ioredis; the reader's loop waits for it meanwhile.
    reader.connect().catch(() => undefined);
    return reader;
  }

  private open(role: 'command' | 'reader' | 'subscriber', nodeId: string): RedisClient {
    const client = openRedis(this.redis, role, nodeId);
    // ioredis reports every failed reconnect as an 'error' event; membership reports health instead.
    client.on('error', (err: Error) => this.log.debug({ err: err.message, role }, 'redis connection error'));
    if (this.observers.redis !== undefined) observeRedis(client, this.observers.redis);
    this.clients.push(client);
    return client;
  }
}
