import { describe, expect, it, vi } from 'vitest';
import { InboxService } from '../../src/domain/inbox-service.js';
import { type Outcome, outcome, type PushMessage, type PushRequest } from '../../src/domain/push.js';
import { PushService } from '../../src/domain/push-service.js';
import { ReceiptService } from '../../src/domain/receipt-service.js';
import type { SessionRecord } from '../../src/domain/session.js';
import {
  type CloseReason,
  NO_OTHER_NODES,
  type RemoteNodes,
  type SessionCloser,
  type SessionTransport,
} from '../../src/domain/session-transport.js';
import { PushgateError } from '../../src/errors.js';
import { MemoryInbox } from '../../src/inbox/memory-inbox.js';
import { MemoryReceiptStore } from '../../src/receipts/memory-receipts.js';
import { MemorySessionRegistry } from '../../src/registry/memory-registry.js';
import { refusal } from '../support/refusal.js';
import { sessionRecord } from '../support/session-record.js';

/**
 * PushService on the real memory registry. Its collaborators on the other side (this node's
 * sockets, the other nodes) are small recording stand-ins that answer what each test chooses.
 */

const THIS_NODE = 'node-a';

function record(userId: string, sessionId: string, nodeId: string, clientType = 'web'): SessionRecord {
  return sessionRecord(userId, sessionId, { nodeId, clientType });
}

function request(userId: string, clientTypes: readonly string[] = []): PushRequest {
  return {
    userId,
    clientTypes,
    event: 'order.updated',
    data: { orderId: 7 },
    ackTimeoutMs: 1500,
    noAck: false,
    messageId: 'msg-1',
    sentAtMs: 1_700_000_000_000,
  };
}

function acked(ackData: unknown): Outcome {
  return { status: 'acked', latencyUs: 1234, ackData, error: '' };
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

type Answer = (sessionIds: readonly string[]) => Outcome[] | Promise<Outcome[]>;

interface DeliverCall {
  readonly nodeId: string;
  readonly sessionIds: readonly string[];
  readonly message: PushMessage;
  readonly signal: AbortSignal;
}

/** This node's sockets: records each delivery and answers with `answer` (every session acked unless told otherwise). */
class RecordingTransport implements SessionTransport {
  readonly calls: DeliverCall[] = [];
  answer: Answer = (ids) => ids.map((id) => acked(`local:${id}`));

  deliver(sessionIds: readonly string[], message: PushMessage, signal: AbortSignal): Promise<Outcome[]> {
    this.calls.push({ nodeId: THIS_NODE, sessionIds: [...sessionIds], message, signal });
    return Promise.resolve(this.answer(sessionIds));
  }
}

class RecordingCloser implements SessionCloser {
  readonly calls: { sessionIds: string[]; reason: string; notice: string }[] = [];
  /** Ids this node holds no more: skipped, as the contract says. */
  readonly gone = new Set<string>();

  async disconnect(sessionIds: readonly string[], reason: CloseReason, notice: string): Promise<string[]> {
    this.calls.push({ sessionIds: [...sessionIds], reason, notice });
    return sessionIds.filter((id) => !this.gone.has(id));
  }
}

/** The other nodes: per node an answer for deliveries and whether it confirms a disconnect. */
class RecordingRemote implements RemoteNodes {
  readonly calls: DeliverCall[] = [];
  readonly disconnectCalls: { nodeId: string; sessionIds: string[]; notice: string; signal: AbortSignal }[] = [];
  readonly answers = new Map<string, Answer>();
  readonly unreachable = new Set<string>();

  deliver(nodeId: string, sessionIds: readonly string[], message: PushMessage, signal: AbortSignal): Promise<Outcome[]> {
    this.calls.push({ nodeId, sessionIds: [...sessionIds], message, signal });
    const answer = this.answers.get(nodeId) ?? ((ids) => ids.map((id) => acked(`${nodeId}:${id}`)));
    return Promise.resolve(answer(sessionIds));
  }

  async disconnect(
    nodeId: string,
    sessionIds: readonly string[],
    _reason: CloseReason,
    notice: string,
    signal: AbortSignal,
  ): Promise<string[]> {
    this.disconnectCalls.push({ nodeId, sessionIds: [...sessionIds], notice, signal });
    if (this.unreachable.has(nodeId)) throw new Error(`no reply from ${nodeId} within 2000 ms`);
    return [...sessionIds];
  }
}

/** The service on a fresh registry; `otherNodes` replaces the recording stand-in for the other nodes. */
function setup(otherNodes?: RemoteNodes) {
  const registry = new MemorySessionRegistry();
  const lookup = vi.spyOn(registry, 'lookup');
  const local = new RecordingTransport();
  const closer = new RecordingCloser();
  const remote = new RecordingRemote();
  const inbox = new InboxService({
    inbox: new MemoryInbox(),
    settings: { maxMessagesPerUser: 100, whenFull: 'drop_oldest', replayBatch: 100 },
    clientTypes: ['app', 'pc', 'web'],
    replayAckTimeoutMs: 1000,
  });
  const receipts = new ReceiptService({ store: new MemoryReceiptStore(), retentionMs: 60_000 });
  const service = new PushService({ nodeId: THIS_NODE, registry, local, closer, remote: otherNodes ?? remote, inbox, receipts });
  return { registry, lookup, local, closer, remote, service };
}

/** One user with sessions on three nodes, registered interleaved: s1 is the oldest connection. */
async function spreadUser(registry: MemorySessionRegistry): Promise<void> {
  await registry.register(record('u1', 's1', 'node-a'));
  await registry.register(record('u1', 's2', 'node-b'));
  await registry.register(record('u1', 's3', 'node-a'));
  await registry.register(record('u1', 's4', 'node-c'));
  await registry.register(record('u1', 's5', 'node-b'));
  await registry.register(record('someone-else', 'x1', 'node-b'));
}

const live = (): AbortSignal => new AbortController().signal;

describe('PushService.push', () => {
  it('looks the user up once and sends each owning node one delivery with its own sessions', async () => {
    const { registry, lookup, local, remote, service } = setup();
    await spreadUser(registry);
    const signal = live();

    await service.push(request('u1'), signal);

    expect(lookup).toHaveBeenCalledTimes(1);
    expect(local.calls.map((c) => c.sessionIds)).toEqual([['s1', 's3']]);
    const byNode = Object.fromEntries(remote.calls.map((c) => [c.nodeId, c.sessionIds]));
    expect(byNode).toEqual({ 'node-b': ['s2', 's5'], 'node-c': ['s4'] });
    expect(remote.calls).toHaveLength(2);
    // Every part carries the message itself and the caller's signal.
    for (const call of [...local.calls, ...remote.calls]) {
      expect(call.signal).toBe(signal);
      expect(call.message).toMatchObject({
        event: 'order.updated',
        data: { orderId: 7 },
        ackTimeoutMs: 1500,
        noAck: false,
        messageId: 'msg-1',
      });
    }
  });

  it('delivers to this node alone, in one call, when it holds every session', async () => {
    const { registry, local, remote, service } = setup();
    await registry.register(record('u1', 's1', THIS_NODE));
    await registry.register(record('u1', 's2', THIS_NODE));

    const result = await service.push(request('u1'), live());

    expect(local.calls.map((c) => c.sessionIds)).toEqual([['s1', 's2']]);
    expect(remote.calls).toEqual([]);
    expect(result.deliveries.map((d) => [d.session.sessionId, d.ackData])).toEqual([
      ['s1', 'local:s1'],
      ['s2', 'local:s2'],
    ]);
  });

  it('returns deliveries in lookup order (oldest connection first) though the other nodes answer before this one', async () => {
    const { registry, local, remote, service } = setup();
    await spreadUser(registry);
    const answered: string[] = [];
    const remotesAnswered = deferred();
    remote.answers.set('node-b', (ids) => {
      answered.push('node-b');
      return [outcome('failed', 'node-b says no'), acked({ on: 'b', id: ids[1] })];
    });
    remote.answers.set('node-c', () => {
      answered.push('node-c');
      remotesAnswered.resolve();
      return [outcome('disconnected', 'gone')];
    });
    // This node answers last.
    local.answer = async () => {
      await remotesAnswered.promise;
      answered.push(THIS_NODE);
      return [acked({ on: 'a' }), outcome('timeout')];
    };

    const result = await service.push(request('u1'), live());

    expect(answered).toEqual(['node-b', 'node-c', THIS_NODE]);
    expect(result.messageId).toBe('msg-1');
    expect(result.deliveries.map((d) => [d.session.sessionId, d.session.nodeId, d.status, d.ackData, d.error])).toEqual([
      ['s1', 'node-a', 'acked', { on: 'a' }, ''],
      ['s2', 'node-b', 'failed', undefined, 'node-b says no'],
      ['s3', 'node-a', 'timeout', undefined, ''],
      ['s4', 'node-c', 'disconnected', undefined, 'gone'],
      ['s5', 'node-b', 'acked', { on: 'b', id: 's5' }, ''],
    ]);
    expect(result.deliveries[0]!.latencyUs).toBe(1234);
    // Disconnected counts as failed; each session is counted once.
    expect({ acked: result.acked, timedOut: result.timedOut, failed: result.failed }).toEqual({ acked: 2, timedOut: 1, failed: 2 });
  });

  it('counts sent (no ack asked) as neither acked, timed out nor failed', async () => {
    const { registry, local, service } = setup();
    await registry.register(record('u1', 's1', THIS_NODE));
    await registry.register(record('u1', 's2', THIS_NODE));
    local.answer = (ids) => ids.map(() => outcome('sent'));

    const result = await service.push({ ...request('u1'), noAck: true }, live());

    expect(local.calls[0]!.message.noAck).toBe(true);
    expect(result.deliveries.map((d) => d.status)).toEqual(['sent', 'sent']);
    expect({ acked: result.acked, timedOut: result.timedOut, failed: result.failed }).toEqual({ acked: 0, timedOut: 0, failed: 0 });
  });

  it('passes the client type filter to the lookup and delivers only to matching sessions', async () => {
    const { registry, lookup, local, remote, service } = setup();
    await registry.register(record('u1', 's-web', THIS_NODE, 'web'));
    await registry.register(record('u1', 's-ios', 'node-b', 'ios'));
    await registry.register(record('u1', 's-android', THIS_NODE, 'android'));

    const result = await service.push(request('u1', ['ios', 'android']), live());

    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup.mock.calls[0]![0]).toBe('u1');
    expect(lookup.mock.calls[0]![1]).toEqual({ clientTypes: ['ios', 'android'] });
    expect(local.calls.map((c) => c.sessionIds)).toEqual([['s-android']]);
    expect(remote.calls.map((c) => [c.nodeId, c.sessionIds])).toEqual([['node-b', ['s-ios']]]);
    expect(result.deliveries.map((d) => d.session.sessionId)).toEqual(['s-ios', 's-android']);
  });

  it('returns an empty result for a user with no sessions and calls no transport', async () => {
    const { registry, lookup, local, remote, service } = setup();
    await registry.register(record('u2', 's1', THIS_NODE));

    const result = await service.push(request('nobody'), live());

    expect(result).toEqual({ messageId: 'msg-1', deliveries: [], acked: 0, timedOut: 0, failed: 0, stored: false });
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(local.calls).toEqual([]);
    expect(remote.calls).toEqual([]);
  });

  it('rejects with the signal’s reason and calls no transport when the signal aborted before the lookup', async () => {
    const { registry, local, remote, service } = setup();
    await spreadUser(registry);
    const controller = new AbortController();
    const reason = new PushgateError('deadline_exceeded', 'deadline passed');
    controller.abort(reason);

    await expect(service.push(request('u1'), controller.signal)).rejects.toBe(reason);
    expect(local.calls).toEqual([]);
    expect(remote.calls).toEqual([]);
  });

  it('rejects at once when the signal aborts while the lookup runs, and calls no transport once the lookup ends', async () => {
    const { registry, lookup, local, remote, service } = setup();
    await spreadUser(registry);
    const lookupStarted = deferred();
    const release = deferred();
    const realLookup = MemorySessionRegistry.prototype.lookup.bind(registry);
    lookup.mockImplementation(async (userId, filter) => {
      lookupStarted.resolve();
      await release.promise;
      return realLookup(userId, filter);
    });
    const controller = new AbortController();
    const reason = new PushgateError('cancelled', 'caller went away');

    const pushed = service.push(request('u1'), controller.signal);
    await lookupStarted.promise;
    controller.abort(reason);
    expect(await refusal(pushed)).toBe(reason);

    // The lookup ends after the caller left: nothing is delivered.
    release.resolve();
    await lookup.mock.results[0]!.value;
    await new Promise((resolve) => setImmediate(resolve));
    expect(local.calls).toEqual([]);
    expect(remote.calls).toEqual([]);
  });

  it('rejects with cancelled when the signal aborts with a reason that is not a PushgateError', async () => {
    const { registry, service } = setup();
    await spreadUser(registry);
    const controller = new AbortController();
    controller.abort(new Error('socket hang up'));

    const err = await refusal(service.push(request('u1'), controller.signal));
    expect(err.code).toBe('cancelled');
  });

  it('with NO_OTHER_NODES fails the sessions of another node with an error naming it and still delivers the local ones', async () => {
    const { registry, local, service } = setup(NO_OTHER_NODES);
    await registry.register(record('u1', 's1', THIS_NODE));
    await registry.register(record('u1', 's2', 'node-z'));

    const result = await service.push(request('u1'), live());

    expect(local.calls.map((c) => c.sessionIds)).toEqual([['s1']]);
    expect(result.deliveries.map((d) => [d.session.sessionId, d.status])).toEqual([
      ['s1', 'acked'],
      ['s2', 'failed'],
    ]);
    expect(result.deliveries[1]!.error).toContain('node-z');
    expect({ acked: result.acked, failed: result.failed }).toEqual({ acked: 1, failed: 1 });
  });
});

describe('PushService.listSessions', () => {
  const ALL = { size: 100, token: '' };

  it('returns the matching sessions in lookup order', async () => {
    const { registry, service } = setup();
    await spreadUser(registry);

    const { sessions, nextPageToken } = await service.listSessions('u1', { sessionIds: ['s4', 's2'] }, ALL, live());

    expect(sessions.map((s) => s.sessionId)).toEqual(['s2', 's4']);
    expect(nextPageToken).toBe('');
  });

  it('pages through every session once, even when one leaves and one connects between pages', async () => {
    const { registry, service } = setup();
    await spreadUser(registry);

    const first = await service.listSessions('u1', {}, { size: 2, token: '' }, live());
    expect(first.sessions.map((s) => s.sessionId)).toEqual(['s1', 's2']);
    expect(first.nextPageToken).not.toBe('');
    // s2 (already listed) and s3 (not yet) leave; s6 connects after everyone else.
    await registry.unregister('u1', 's2', 'client_disconnect');
    await registry.unregister('u1', 's3', 'client_disconnect');
    await registry.register(record('u1', 's6', 'node-a'));

    const second = await service.listSessions('u1', {}, { size: 2, token: first.nextPageToken }, live());
    const third = await service.listSessions('u1', {}, { size: 2, token: second.nextPageToken }, live());

    expect(second.sessions.map((s) => s.sessionId)).toEqual(['s4', 's5']);
    expect(third.sessions.map((s) => s.sessionId)).toEqual(['s6']);
    expect(third.nextPageToken).toBe('');
  });

  it('refuses a token that is not its own or belongs to another user or filter, naming page_token', async () => {
    const { registry, service } = setup();
    await spreadUser(registry);
    const { nextPageToken } = await service.listSessions('u1', {}, { size: 1, token: '' }, live());

    for (const [userId, filter, token] of [
      ['u1', {}, 'not-a-token'],
      ['u1', {}, Buffer.from('[1,2]').toString('base64url')],
      ['someone-else', {}, nextPageToken],
      ['u1', { clientTypes: ['web'] }, nextPageToken],
    ] as const) {
      const err = await service.listSessions(userId, filter, { size: 1, token }, live()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PushgateError);
      expect(err).toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('page_token') });
    }
  });

  it('rejects with the signal’s reason when it aborted', async () => {
    const { registry, service } = setup();
    await spreadUser(registry);
    const controller = new AbortController();
    const reason = new PushgateError('deadline_exceeded', 'deadline passed');
    controller.abort(reason);

    await expect(service.listSessions('u1', {}, ALL, controller.signal)).rejects.toBe(reason);
  });
});

describe('PushService.disconnect', () => {
  it('closes each node’s sessions in one call per node and returns the closed sessions in lookup order', async () => {
    const { registry, closer, remote, service } = setup();
    await spreadUser(registry);
    const signal = live();

    const closed = await service.disconnect('u1', {}, 'logged out elsewhere', signal);

    expect(closer.calls).toEqual([{ sessionIds: ['s1', 's3'], reason: 'kicked', notice: 'logged out elsewhere' }]);
    expect(Object.fromEntries(remote.disconnectCalls.map((c) => [c.nodeId, [c.sessionIds, c.notice]]))).toEqual({
      'node-b': [['s2', 's5'], 'logged out elsewhere'],
      'node-c': [['s4'], 'logged out elsewhere'],
    });
    expect(remote.disconnectCalls.every((c) => c.signal === signal)).toBe(true);
    expect(closed.map((s) => s.sessionId)).toEqual(['s1', 's2', 's3', 's4', 's5']);
    // A disconnect is no push.
    expect(remote.calls).toEqual([]);
  });

  it('applies the filter and leaves out sessions a node no longer held', async () => {
    const { registry, closer, remote, service } = setup();
    await spreadUser(registry);
    closer.gone.add('s3');

    const closed = await service.disconnect('u1', { sessionIds: ['s3', 's1', 's4'] }, 'bye', live());

    expect(closer.calls.map((c) => c.sessionIds)).toEqual([['s1', 's3']]);
    expect(remote.disconnectCalls.map((c) => [c.nodeId, c.sessionIds])).toEqual([['node-c', ['s4']]]);
    expect(closed.map((s) => s.sessionId)).toEqual(['s1', 's4']);
  });

  it('still closes the other nodes’ sessions when one node does not answer, then fails with node_unreachable naming it', async () => {
    const { registry, closer, remote, service } = setup();
    await spreadUser(registry);
    remote.unreachable.add('node-c');

    const err = await refusal(service.disconnect('u1', {}, 'bye', live()));

    expect(err.code).toBe('node_unreachable');
    expect(err.message).toContain('node-c');
    expect(err.message).toContain('no reply from node-c');
    expect(err.message).not.toContain('node-b');
    // s1, s3 here and s2, s5 on node-b were closed all the same.
    expect(err.message).toContain('closed 4 session(s)');
    expect(closer.calls.map((c) => c.sessionIds)).toEqual([['s1', 's3']]);
    expect(remote.disconnectCalls.map((c) => c.nodeId).sort()).toEqual(['node-b', 'node-c']);
  });

  it('closes nothing and calls no node for a user with no sessions', async () => {
    const { service, closer, remote } = setup();

    expect(await service.disconnect('nobody', {}, 'bye', live())).toEqual([]);
    expect(closer.calls).toEqual([]);
    expect(remote.disconnectCalls).toEqual([]);
  });

  it('rejects with the signal’s reason and closes nothing when the signal aborted', async () => {
    const { registry, closer, remote, service } = setup();
    await spreadUser(registry);
    const controller = new AbortController();
    const reason = new PushgateError('cancelled', 'caller went away');
    controller.abort(reason);

    await expect(service.disconnect('u1', {}, 'bye', controller.signal)).rejects.toBe(reason);
    expect(closer.calls).toEqual([]);
    expect(remote.disconnectCalls).toEqual([]);
  });
});
