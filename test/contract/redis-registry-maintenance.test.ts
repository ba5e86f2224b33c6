import { describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../../src/domain/presence.js';
import type { SessionRecord } from '../../src/domain/session.js';
import type { RedisSessionRegistry } from '../../src/registry/redis-registry.js';
import { redisRegistryHarness } from '../support/redis-registries.js';
import type { TestRedis } from '../support/redis-server.js';
import { sessionRecord } from '../support/session-record.js';
import { waitFor } from '../support/wait.js';

/**
 * What the Redis registry does for cluster membership, beyond the SessionRegistry contract:
 * reaping a dead node's sessions exactly once, syncing a node back after Redis lost its data or
 * after its sessions were reaped, and noticing events trimmed before they were read.
 */

const harness = redisRegistryHarness('maint', 200);
const { connect } = harness;
const redis = (): TestRedis => harness.redis();

/** Several registries (nodes) sharing one key prefix, as nodes of one deployment do. */
async function nodes(count: number, { retention = 1000, shards = 2 } = {}): Promise<RedisSessionRegistry[]> {
  return (await harness.nodes(count, { retention, shards })).registries;
}

function session(userId: string, sessionId: string, nodeId: string): SessionRecord {
  return sessionRecord(userId, sessionId, { nodeId, remoteAddress: '10.0.0.1', userAgent: 'test' });
}

function collect(registry: RedisSessionRegistry): PresenceEvent[] {
  const events: PresenceEvent[] = [];
  registry.subscribe((event) => events.push(event));
  return events;
}

function summary(events: readonly PresenceEvent[]): [string, string, string | undefined, string][] {
  return events.map((e) => [e.kind, e.userId, e.session?.sessionId, e.reason]);
}

describe('reapNode', () => {
  it('removes a dead node’s sessions and announces each with node_lost exactly once, however many reapers race', async () => {
    const [a, b, c] = await nodes(3);
    const seenByB = collect(b!);
    const seenByC = collect(c!);
    await a!.register(session('u1', 'a-1', 'node-a'));
    await a!.register(session('u1', 'a-2', 'node-a'));
    await a!.register(session('u2', 'a-3', 'node-a'));
    await b!.register(session('u1', 'b-1', 'node-b'));
    // Start counting once both nodes have read the registrations (nodes read the feed a moment behind).
    for (const seen of [seenByB, seenByC]) {
      await waitFor('the registrations', () => seen.length >= 6);
      seen.splice(0);
    }

    const reaped = await Promise.all([
      b!.recovery.reapNode('node-a'),
      c!.recovery.reapNode('node-a'),
      b!.recovery.reapNode('node-a'),
      c!.recovery.reapNode('node-a'),
    ]);
    expect(reaped.reduce((sum, n) => sum + n, 0)).toBe(3);

    expect((await b!.lookup('u1')).map((s) => s.sessionId)).toEqual(['b-1']);
    expect(await b!.lookup('u2')).toEqual([]);
    const expected = expect.arrayContaining([
      ['session_disconnected', 'u1', 'a-1', 'node_lost'],
      ['session_disconnected', 'u1', 'a-2', 'node_lost'],
      ['session_disconnected', 'u2', 'a-3', 'node_lost'],
      ['user_offline', 'u2', 'a-3', 'node_lost'],
    ]);
    for (const seen of [seenByB, seenByC]) {
      await waitFor('four node_lost events', () => seen.length >= 4);
      // A later write proves nothing else was coming before it.
      if (seen === seenByB) await b!.register(session('u3', 'b-2', 'node-b'));
      await waitFor('the marker event', () => seen.some((e) => e.userId === 'u3'));
      const lost = seen.filter((e) => e.userId !== 'u3');
      expect(lost).toHaveLength(4);
      expect(summary(lost)).toEqual(expected);
    }
  });

  it('reaps a node of several batches with four reapers racing: every session removed and announced once, a moved one kept', async () => {
    const [a, b, c] = await nodes(3);
    const seen = collect(c!);
    // 1,200 sessions of 300 users on two shards: more than one reap batch (500) per shard.
    const mine = Array.from({ length: 1200 }, (_, i) => session(`user-${i % 300}`, `a-${i}`, 'node-a'));
    for (const s of mine) await a!.register(s);
    // One session moved to node-b (registered there again): node-a's set still names it, node-b owns it.
    await b!.register(session('user-7', 'a-7', 'node-b'));
    await waitFor('the registrations', () => seen.filter((e) => e.kind === 'session_connected').length >= 1200);
    seen.splice(0);

    const reaped = await Promise.all([b, c, b, c].map((reaper) => reaper!.recovery.reapNode('node-a')));
    expect(reaped.reduce((sum, n) => sum + n, 0)).toBe(1199);

    await b!.register(session('marker', 'b-m', 'node-b'));
    await waitFor('the marker event', () => seen.some((e) => e.userId === 'marker'));
    const lost = seen.filter((e) => e.kind === 'session_disconnected');
    expect(lost).toHaveLength(1199);
    expect(new Set(lost.map((e) => e.session!.sessionId)).size).toBe(1199);
    expect(lost.every((e) => e.reason === 'node_lost')).toBe(true);
    expect(seen.filter((e) => e.kind === 'user_offline')).toHaveLength(299);
    expect((await b!.lookup('user-7')).map((s) => [s.sessionId, s.nodeId])).toEqual([['a-7', 'node-b']]);
    expect((await b!.sessionsPage([], undefined, 1000)).sessions.map((s) => s.sessionId).sort()).toEqual(['a-7', 'b-m']);
  }, 30_000);

  it('leaves sessions of other nodes alone and is a no-op for a node without sessions', async () => {
    const [a, b] = await nodes(2);
    await a!.register(session('u1', 'a-1', 'node-a'));
    expect(await b!.recovery.reapNode('node-z')).toBe(0);
    expect(await b!.recovery.reapNode('node-b')).toBe(0);
    expect((await b!.lookup('u1')).map((s) => s.sessionId)).toEqual(['a-1']);
  });
});

describe('sync', () => {
  it('after Redis lost its data, re-registers the node’s live sessions without announcing anything', async () => {
    const [a, b] = await nodes(2);
    await a!.register(session('u1', 'a-1', 'node-a'));
    await a!.register(session('u1', 'a-2', 'node-a'));
    await b!.register(session('u1', 'b-1', 'node-b'));
    const seen = collect(b!);

    await connect('reader').flushall();
    expect(await b!.lookup('u1')).toEqual([]);
    expect(await a!.recovery.sync()).toEqual({ restored: 2, departed: 0 });
    expect(await b!.recovery.sync()).toEqual({ restored: 1, departed: 0 });

    expect((await b!.lookup('u1')).map((s) => s.sessionId).sort()).toEqual(['a-1', 'a-2', 'b-1']);
    await b!.register(session('u9', 'marker', 'node-b'));
    await waitFor('the marker event', () => seen.some((e) => e.userId === 'u9'));
    expect(seen.filter((e) => e.userId !== 'u9')).toEqual([]);
  });

  it('after its sessions were reaped, re-registers them and announces their return', async () => {
    const [a, b] = await nodes(2);
    const seen = collect(b!);
    await a!.register(session('u1', 'a-1', 'node-a'));
    await b!.recovery.reapNode('node-a');
    await waitFor('node_lost', () => seen.length >= 4);

    expect(await a!.recovery.sync()).toEqual({ restored: 1, departed: 0 });
    await waitFor('the return', () => seen.length >= 6);
    expect(summary(seen)).toEqual([
      ['user_online', 'u1', 'a-1', ''],
      ['session_connected', 'u1', 'a-1', ''],
      ['session_disconnected', 'u1', 'a-1', 'node_lost'],
      ['user_offline', 'u1', 'a-1', 'node_lost'],
      ['user_online', 'u1', 'a-1', ''],
      ['session_connected', 'u1', 'a-1', ''],
    ]);
    // The marker is spent: a second sync changes nothing and announces nothing.
    expect(await a!.recovery.sync()).toEqual({ restored: 0, departed: 0 });
  });

  it('announces the return of sessions reaped while the node was already syncing them back', async () => {
    // Finding of the reliability suite (Redis blackholed past the lease): the node read its reaped
    // marker, then another node reaped it, then the node's sync script put the sessions back
    // without announcing them: presence said they left and never said they came back.
    const [a, b] = await nodes(2);
    const seen = collect(b!);
    await a!.register(session('u1', 'a-1', 'node-a'));
    const scripts = (a!.recovery as unknown as { deps: { scripts: { run(name: string, ...rest: unknown[]): Promise<unknown> } } }).deps
      .scripts;
    const run = scripts.run.bind(scripts);
    let reapFirst = true;
    scripts.run = async (name: string, ...rest: unknown[]) => {
      if (name === 'pgSync' && reapFirst) {
        reapFirst = false;
        expect(await b!.recovery.reapNode('node-a')).toBe(1);
      }
      return run(name, ...rest);
    };
    expect(await a!.recovery.sync()).toEqual({ restored: 1, departed: 0 });
    await waitFor('the return', () => seen.length >= 6);
    expect(summary(seen).slice(2)).toEqual([
      ['session_disconnected', 'u1', 'a-1', 'node_lost'],
      ['user_offline', 'u1', 'a-1', 'node_lost'],
      ['user_online', 'u1', 'a-1', ''],
      ['session_connected', 'u1', 'a-1', ''],
    ]);
    // The script spent the marker: the next sync announces nothing.
    expect(await a!.recovery.sync()).toEqual({ restored: 0, departed: 0 });
  });

  it('fails a batch lookup and a snapshot page (pipelined reads) with registry_unavailable within the command timeout while Redis hangs', async () => {
    const [a] = await nodes(1);
    await a!.register(session('u1', 'a-1', 'node-a'));
    await redis().pause(800);
    const started = Date.now();
    await expect(a!.lookupMany(['u1', 'u2', 'u3'])).rejects.toMatchObject({ code: 'registry_unavailable' });
    await expect(a!.sessionsPage([], undefined, 10)).rejects.toMatchObject({ code: 'registry_unavailable' });
    // Two calls, each bounded by the 200 ms command timeout, not by the pause.
    expect(Date.now() - started).toBeLessThan(700);
    await waitFor(
      'Redis to answer again',
      () =>
        a!.lookupMany(['u1']).then(
          (found) => found.get('u1')!.length === 1,
          () => false,
        ),
      {
        timeoutMs: 3000,
      },
    );
  });

  it('announces a session that closed while Redis could not be told, once Redis answers again', async () => {
    const [a, b] = await nodes(2);
    const seen = collect(b!);
    await a!.register(session('u1', 'a-1', 'node-a'));
    await a!.register(session('u1', 'a-2', 'node-a'));
    await waitFor('the registrations', () => seen.length >= 3);
    seen.splice(0);

    await redis().pause(600);
    await expect(a!.unregister('u1', 'a-1', 'client_disconnect')).rejects.toMatchObject({ code: 'registry_unavailable' });
    expect(a!.recovery.needsSync).toBe(true);
    await waitFor(
      'Redis to answer again',
      () =>
        b!.lookup('u1').then(
          () => true,
          () => false,
        ),
      { timeoutMs: 3000 },
    );

    // The command may have run after its timeout; either way the session ends gone and announced once.
    await a!.recovery.sync();
    expect(a!.recovery.needsSync).toBe(false);
    expect((await b!.lookup('u1')).map((s) => s.sessionId)).toEqual(['a-2']);
    await b!.register(session('u9', 'marker', 'node-b'));
    await waitFor('the marker event', () => seen.some((e) => e.userId === 'u9'));
    expect(summary(seen.filter((e) => e.userId === 'u1'))).toEqual([['session_disconnected', 'u1', 'a-1', 'client_disconnect']]);
  });
});

describe('feed gaps', () => {
  it('ends subscriptions that cannot be told every event when events were trimmed before this node read them', async () => {
    const [a, b] = await nodes(2, { retention: 3, shards: 1 });
    const gaps: string[] = [];
    b!.subscribe(
      () => {},
      (reason) => gaps.push(reason),
    );
    // Hold b's reader back: a paused Redis serves nobody, so write through a's queue-less client after it.
    await redis().pause(300);
    const writes = Array.from({ length: 8 }, (_, i) => a!.register(session(`u${i}`, `s-${i}`, 'node-a')).catch(() => undefined));
    await Promise.all(writes);
    for (let i = 0; i < 8; i++) await a!.register(session(`v${i}`, `t-${i}`, 'node-a'));
    await waitFor('a gap to be reported', () => gaps.length > 0, { timeoutMs: 5000 });
    expect(gaps[0]).toContain('PUSHGATE_PRESENCE_RETENTION');
    expect(b!.subscriberCount()).toBe(0);
  });
});
