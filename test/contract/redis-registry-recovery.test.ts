import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ClusterKeys } from '../../src/cluster/cluster-keys.js';
import { Membership } from '../../src/cluster/membership.js';
import type { PresenceEvent } from '../../src/domain/presence.js';
import type { SessionRecord } from '../../src/domain/session.js';
import { createLogger } from '../../src/logger.js';
import { indexMember, userKey } from '../../src/registry/redis-keys.js';
import type { RedisSessionRegistry } from '../../src/registry/redis-registry.js';
import { redisRegistryHarness } from '../support/redis-registries.js';
import { sessionRecord } from '../support/session-record.js';
import { waitFor } from '../support/wait.js';

/**
 * The Redis registry never wedges on a record: no script decodes one, reads skip what does not
 * parse, and a re-sync that still meets a record it cannot sync sets that record aside (with a
 * warning naming it) instead of failing for ever, so the node becomes healthy.
 */

const { connect, nodes: startNodes, onCleanup } = redisRegistryHarness('recover', 1000);
const memberships: Membership[] = [];
onCleanup(async () => {
  for (const membership of memberships.splice(0)) await membership.stop();
});

/** Log lines as objects, for the warnings a test expects. */
function logLines(): { lines: Record<string, unknown>[]; write(line: string): void } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
}

/** Nodes sharing one prefix; node i is `node-<letter>`. */
function nodes(count: number, log = logLines()) {
  return startNodes(count, { logTo: log });
}

/** Membership for one registry, as cluster mode runs it; resolves once started (it syncs first). */
async function membershipOf(
  registry: RedisSessionRegistry,
  prefix: string,
  nodeId: string,
): Promise<{ membership: Membership; healthy: () => boolean }> {
  let healthy = false;
  const membership = new Membership({
    client: connect(),
    registry: registry.recovery,
    keys: new ClusterKeys(prefix),
    nodeId,
    leaseTtlMs: 3000,
    reapIntervalMs: 60_000,
    log: createLogger('silent'),
    onHealthChange: (now) => (healthy = now),
  });
  await waitFor('the membership connection', () => (membership as unknown as { deps: { client: Redis } }).deps.client.status === 'ready');
  memberships.push(membership);
  await membership.start();
  return { membership, healthy: () => healthy };
}

function session(userId: string, sessionId: string, nodeId = 'node-a'): SessionRecord {
  return sessionRecord(userId, sessionId, { nodeId, remoteAddress: '10.0.0.1', userAgent: 'test' });
}

function collect(registry: RedisSessionRegistry): PresenceEvent[] {
  const events: PresenceEvent[] = [];
  registry.subscribe((event) => events.push(event));
  return events;
}

describe('re-sync sets bad records aside', () => {
  it('syncs the rest of a batch that fails on one record, sets that one aside with a warning naming it, and the node becomes healthy', async () => {
    const log = logLines();
    const {
      registries: [a],
      prefix,
    } = await nodes(1, log);
    for (const id of ['s-1', 's-2', 's-3']) await a!.register(session('u1', id));
    // A record this node holds that cannot be written: its sync call fails on its data, not on Redis.
    const bad = { ...session('u2', 's-bad'), connectedAtMs: 10n as unknown as number };
    await expect(a!.register(bad)).rejects.toThrow();
    // Redis lost its data: the node must put everything back.
    await connect('reader').flushall();

    const { healthy } = await membershipOf(a!, prefix, 'node-a');

    expect(healthy()).toBe(true);
    expect((await a!.lookup('u1')).map((s) => s.sessionId).sort()).toEqual(['s-1', 's-2', 's-3']);
    expect(await a!.lookup('u2')).toEqual([]);
    const warnings = log.lines.filter((line) => line.sessionId === 's-bad');
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.msg)).toContain('set aside');
    // Not retried: the next sync has nothing to do and warns no more.
    expect(a!.recovery.needsSync).toBe(false);
    expect(await a!.recovery.sync()).toEqual({ restored: 0, departed: 0 });
    expect(log.lines.filter((line) => line.sessionId === 's-bad')).toHaveLength(1);
  });

  it('wedges on nothing written into Redis by hand: garbage records, last-seen values and set members', async () => {
    const {
      registries: [a, b],
      keys,
      prefix,
    } = await nodes(2);
    const k = keys.shard(0);
    const u1 = k.user(userKey('u1'));
    const admin = connect('reader');
    await a!.register(session('u1', 's-1'));
    await a!.register(session('u1', 's-2'));
    // A held session's record and last-seen overwritten with garbage…
    await admin.hset(u1, 'r:s-1', '{not json');
    await admin.hset(u1, 's:s-1', 'garbage');
    // …a session left in this node's set that it no longer holds, with a garbage record…
    const leftover = indexMember('u1', 's-9');
    await admin.zadd(k.byUser, 0, leftover);
    await admin.sadd(k.node('node-a'), leftover);
    await admin.hset(u1, 'o:s-9', 'node-a', 'r:s-9', '\u00ff garbage');
    // …and a set member that is no index member at all.
    await admin.sadd(k.node('node-a'), 'no-separator-here');
    const seen = collect(b!);

    // Reads skip what does not parse; a refresh over a garbage last-seen does not fail its batch.
    expect((await b!.lookup('u1')).map((s) => s.sessionId).sort()).toEqual(['s-2']);
    await a!.touch('u1', 's-2', Date.now() + 1000);
    await a!.touch('u1', 's-1', Date.now() + 1000);
    await waitFor('the refreshes to be written', async () => Number(await admin.hget(u1, 's:s-1')) > 0);

    // Taking the lease for the first time syncs the node.
    const { healthy } = await membershipOf(a!, prefix, 'node-a');
    expect(healthy()).toBe(true);
    // The held session's record is whole again; the leftover is gone, announced; the stray member dropped.
    expect((await b!.lookup('u1')).map((s) => s.sessionId).sort()).toEqual(['s-1', 's-2']);
    expect(await admin.sismember(k.node('node-a'), 'no-separator-here')).toBe(0);
    expect(await admin.zscore(k.byUser, leftover)).toBeNull();
    await waitFor('the leftover’s departure', () => seen.some((e) => e.kind === 'session_disconnected'));
    const departure = seen.find((e) => e.kind === 'session_disconnected')!;
    expect([departure.userId, departure.sessionCount]).toEqual(['u1', 2]);

    // A snapshot pages over a garbage record too.
    await admin.hset(u1, 'r:s-2', 'garbage again');
    const page = await b!.sessionsPage([], undefined, 10);
    expect(page.sessions.map((s) => s.sessionId)).toEqual(['s-1']);
    expect(page.sessionCounts).toEqual([2]);
    // And a reaper removes whatever is left of the node.
    expect(await b!.recovery.reapNode('node-a')).toBe(2);
    expect(await b!.lookup('u1')).toEqual([]);
  });
});

describe('a user’s hash written by hand', () => {
  it('is read for what parses: a stray field, a record under another session’s field, a record without last_seen are no failure', async () => {
    const {
      registries: [a, b],
      keys,
    } = await nodes(2);
    const k = keys.shard(0);
    const u1 = k.user(userKey('u1'));
    const admin = connect('reader');
    const kept = { ...session('u1', 's-1'), lastSeenAtMs: Date.now() + 5000 };
    const other = { ...session('u1', 's-2'), lastSeenAtMs: Date.now() + 6000 };
    await a!.register(kept);
    await a!.register(other);
    // A field of no known kind, s-2's record moved under another field, and a record with no s: field.
    await admin.hset(u1, 'zz', 'whatever', 'r:s-x', (await admin.hget(u1, 'r:s-2'))!, 's:s-x', '5');
    await admin.hdel(u1, 's:s-1');
    // s-1 without its last_seen_at reads as last seen when it connected.
    expect(await b!.lookup('u1')).toEqual([{ ...kept, lastSeenAtMs: kept.connectedAtMs }, other]);
    expect((await b!.lookupMany(['u1', 'u2'])).get('u1')!.map((s) => s.sessionId)).toEqual(['s-1', 's-2']);
    // The hand-made fields change nothing for the sessions the registry wrote: removal still announces them.
    expect((await a!.unregister('u1', 's-2', 'client_disconnect'))?.sessionId).toBe('s-2');
    expect(await admin.hexists(u1, 'r:s-2')).toBe(0);
    // A user key holding another type fails that user's lookups only, as an unavailable registry.
    await admin.set(k.user(userKey('u-wrong')), 'not a hash');
    await expect(b!.lookup('u-wrong')).rejects.toMatchObject({ code: 'registry_unavailable' });
    expect((await b!.lookup('u1')).map((s) => s.sessionId)).toEqual(['s-1']);
  });
});

describe('a user id with a lone UTF-16 surrogate (registered past edge validation)', () => {
  const userId = 'user-\ud800-x';

  it('can be registered, looked up, unregistered, reaped and re-synced, and its events read', async () => {
    const {
      registries: [a, b],
    } = await nodes(2);
    const seen = collect(b!);
    const first = session(userId, 'lone-1');
    await a!.register(first);
    expect(await b!.lookup(userId)).toEqual([first]);
    expect(await a!.unregister(userId, 'lone-1', 'client_disconnect')).toEqual(first);
    expect(await b!.lookup(userId)).toEqual([]);

    await a!.register(session(userId, 'lone-2'));
    expect(await b!.recovery.reapNode('node-a')).toBe(1);
    expect(await b!.lookup(userId)).toEqual([]);

    // After its sessions were reaped (or Redis lost its data) the node puts them back.
    expect(await a!.recovery.sync()).toEqual({ restored: 1, departed: 0 });
    expect((await b!.lookup(userId)).map((s) => s.sessionId)).toEqual(['lone-2']);
    await connect('reader').flushall();
    expect(await a!.recovery.sync()).toEqual({ restored: 1, departed: 0 });
    expect((await b!.lookup(userId)).map((s) => [s.userId, s.sessionId])).toEqual([[userId, 'lone-2']]);
    const page = await b!.sessionsPage([userId], undefined, 10);
    expect(page.sessions.map((s) => [s.userId, s.sessionId])).toEqual([[userId, 'lone-2']]);

    await waitFor('the events', () => seen.filter((e) => e.kind === 'session_disconnected').length >= 2);
    expect(seen.filter((e) => e.kind === 'session_disconnected').map((e) => [e.session!.userId, e.session!.sessionId, e.reason])).toEqual([
      [userId, 'lone-1', 'client_disconnect'],
      [userId, 'lone-2', 'node_lost'],
    ]);
  });
});
