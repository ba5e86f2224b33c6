import { describe, expect, it } from 'vitest';
import type { InboxLimits, NewStoredMessage } from '../../src/domain/inbox.js';
import { isPushgateError } from '../../src/errors.js';
import { InboxKeys } from '../../src/inbox/inbox-keys.js';
import { MemoryInbox } from '../../src/inbox/memory-inbox.js';
import { RedisInbox } from '../../src/inbox/redis-inbox.js';
import type { RedisClient } from '../../src/redis/client.js';
import { RegistryKeys } from '../../src/registry/redis-keys.js';
import { redisTargets } from '../support/redis-targets.js';
import { waitFor } from '../support/wait.js';
import { describeInbox, type InboxFixture } from './inbox.contract.js';

/**
 * The Inbox contract on memory, on a private redis-server with one shard and with several, and on a
 * real three-master Redis Cluster, where a script touching keys outside the user's hash tag would
 * fail with CROSSSLOT. Then what only one of them has: the memory inbox's node-wide bound, the
 * Redis key layout and key expiry, and `registry_unavailable` when Redis is away.
 */

const { redis, cluster, commandTimeoutMs, config, connect, ownServer } = redisTargets('inbox-test');
let prefixes = 0;

/** Inbox keys and shard tags wired from the registry's keys, as a node wires them. */
function wiring(prefix: string, shards: number): { keys: InboxKeys; shardTags: string[] } {
  const registry = new RegistryKeys(prefix, shards);
  const tag = (shard: number): string => `${registry.prefix}{s${shard}}:`;
  return { keys: new InboxKeys((userId) => tag(registry.shardOf(userId))), shardTags: Array.from({ length: shards }, (_, s) => tag(s)) };
}

/** A fresh inbox on its own key prefix; each peer is another client, as another node has. */
function redisFixture(newClient: () => RedisClient, shards: number): () => Promise<InboxFixture> {
  return async () => {
    const { keys, shardTags } = wiring(`ib${++prefixes}:`, shards);
    const open = (): RedisInbox => new RedisInbox({ client: newClient(), keys, shardTags });
    return { inbox: open(), peer: async () => open() };
  };
}

describeInbox('MemoryInbox', async () => {
  const inbox = new MemoryInbox();
  return { inbox, peer: async () => inbox };
});
describeInbox(
  'RedisInbox (one shard)',
  redisFixture(() => redis().client(), 1),
);
describeInbox(
  'RedisInbox (five shards)',
  redisFixture(() => redis().client(), 5),
);
describeInbox(
  'RedisInbox (Redis Cluster, four shards)',
  redisFixture(() => cluster().client(), 4),
);

const now = Date.now();
const limits: InboxLimits = { maxMessages: 10, whenFull: 'drop_oldest' };

function message(userId: string, messageId: string, expiresAtMs = now + 60_000): NewStoredMessage {
  return {
    messageId,
    userId,
    event: 'e',
    data: null,
    clientTypes: [],
    removal: 'any_session',
    requiredTypes: [],
    sentAtMs: now,
    expiresAtMs,
    attempts: 0,
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('MemoryInbox', () => {
  it('refuses past maxTotalMessages over all users, naming PUSHGATE_INBOX_MAX_TOTAL_MESSAGES', async () => {
    const inbox = new MemoryInbox({ maxTotalMessages: 3 });
    for (const user of ['a', 'b', 'c']) await inbox.store(message(user, 'm1'), limits, now);
    const err = await failure(inbox.store(message('d', 'm1'), limits, now));
    expect(isPushgateError(err) && err.code).toBe('inbox_full');
    expect((err as Error).message).toContain('PUSHGATE_INBOX_MAX_TOTAL_MESSAGES');
    // Dropping one of the user's own to make room keeps the total where it was.
    const result = await inbox.store(message('a', 'm2'), { maxMessages: 1, whenFull: 'drop_oldest' }, now);
    expect(result.dropped.map((m) => m.messageId)).toEqual(['m1']);
    // A message leaving makes room again; an expired one counts until expire takes it.
    expect(await inbox.ack('b', 'm1', 'app')).toBe('removed');
    await inbox.store(message('d', 'm1', now + 1), limits, now);
    expect(inbox.size).toBe(3);
    expect(isPushgateError(await failure(inbox.store(message('e', 'm1'), limits, now + 5)))).toBe(true);
    expect(await inbox.expire(now + 5, 10)).toHaveLength(1);
    await inbox.store(message('e', 'm1'), limits, now + 5);
  });
});

describe('RedisInbox on Redis', () => {
  it('keeps a user’s keys in the user’s registry shard, expiring a grace period after the latest expiry', async () => {
    const { keys, shardTags } = wiring('layout:', 2);
    const inbox = new RedisInbox({ client: redis().client(), keys, shardTags, keyGraceMs: 60_000 });
    const registry = new RegistryKeys('layout:', 2);
    const user = 'u{1}\0';
    await inbox.store(message(user, 'm1', now + 10_000), limits, now);
    await inbox.store(message(user, 'm2', now + 5_000), limits, now);
    const shard = registry.shardOf(user);
    const probe = redis().client();
    const uk = 'u{1}\0\x01';
    expect((await probe.keys('layout:*')).sort()).toEqual(
      [`layout:{s${shard}}:ib-exp`, `layout:{s${shard}}:ib:${uk}`, `layout:{s${shard}}:ibo:${uk}`, `layout:{s${shard}}:ibx:${uk}`].sort(),
    );
    for (const kind of ['ib', 'ibo', 'ibx']) {
      const ttl = await probe.pttl(`layout:{s${shard}}:${kind}:${uk}`);
      const expected = now + 10_000 + 60_000 - Date.now();
      expect(ttl).toBeGreaterThan(expected - 1000);
      expect(ttl).toBeLessThanOrEqual(expected + 5);
    }
    expect(await probe.pttl(`layout:{s${shard}}:ib-exp`)).toBe(-1);
    expect(await probe.zrange(`layout:{s${shard}}:ib-exp`, '0', '-1')).toEqual([`${uk}\0\0m2`, `${uk}\0\0m1`]);

    // A message stored already expired gives its user's keys the grace period from now, not from its expiry.
    const late = `late-${shard}`;
    await inbox.store(message(late, 'm3', 1), limits, now);
    expect(await probe.pttl(`layout:{s${registry.shardOf(late)}}:ib:${late}`)).toBeGreaterThan(59_000);
    expect((await inbox.expire(now, 10)).map((m) => [m.userId, m.messageId])).toEqual([[late, 'm3']]);
    expect(await inbox.remove(user, 'all')).toEqual(['m1', 'm2']);
    expect(await probe.exists(`layout:{s${shard}}:ibo:${uk}`, `layout:{s${shard}}:ibx:${uk}`, `layout:{s${shard}}:ib-exp`)).toBe(0);
  });

  it('leaves an unreadable record out of what it returns, and sweeps a sweep member written by hand', async () => {
    const { keys, shardTags } = wiring('junk:', 1);
    const inbox = new RedisInbox({ client: redis().client(), keys, shardTags });
    await inbox.store(message('u', 'm1', now + 1), limits, now);
    await inbox.store(message('u', 'm2', now + 1), limits, now);
    const probe = redis().client();
    await probe.hset('junk:{s0}:ib:u', 'm:m1', '{not json');
    await probe.zadd('junk:{s0}:ib-exp', '0', 'no separator');
    expect((await inbox.list('u', 0, 10, now)).messages.map((m) => m.messageId)).toEqual(['m2']);
    expect((await inbox.expire(now + 1, 10)).map((m) => m.messageId)).toEqual(['m2']);
    expect(await probe.zcard('junk:{s0}:ib-exp')).toBe(0);
  });

  it('rejects with registry_unavailable at once when Redis is gone', async () => {
    const server = await ownServer();
    const client = await connect(config(server));
    const { keys, shardTags } = wiring('away:', 2);
    const inbox = new RedisInbox({ client, keys, shardTags });
    expect((await inbox.store(message('u', 'm1'), limits, now)).stored).toBe(true);
    await server.stop();
    await waitFor('the client to see Redis gone', () => client.status !== 'ready');

    const started = performance.now();
    const calls = [
      inbox.store(message('u', 'm2'), limits, now),
      inbox.claimForReplay('u', 'app', 0, 10, now),
      inbox.ack('u', 'm1', 'app'),
      inbox.list('u', 0, 10, now),
      inbox.remove('u', 'all'),
      inbox.expire(now, 10),
    ];
    for (const err of await Promise.all(calls.map(failure))) {
      expect(isPushgateError(err) && err.code).toBe('registry_unavailable');
      expect((err as Error).message).toMatch(/^offline inbox unavailable: not connected to Redis/);
    }
    expect(performance.now() - started).toBeLessThan(commandTimeoutMs);
  });
});
