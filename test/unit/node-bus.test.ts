import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBusNetwork } from '../../src/cluster/memory-bus-transport.js';
import { type BusHandler, type BusObserver, type BusRequest, NodeBus, NodeUnreachableError } from '../../src/cluster/node-bus.js';
import { BusRemoteNodes, serveRemoteRequests } from '../../src/cluster/remote-nodes.js';
import type { Cancellation } from '../../src/domain/cancellation.js';
import type { Outcome, PushMessage, PushRequest } from '../../src/domain/push.js';
import type { CloseReason, SessionCloser, SessionTransport } from '../../src/domain/session-transport.js';
import { createLogger } from '../../src/logger.js';
import { waitFor } from '../support/wait.js';

/**
 * The node bus with several nodes in one process on the in-memory network: request/reply matching,
 * failing fast or at the timeout, expiry on the shared clock, cancellation, shutdown, and the push
 * and disconnect requests of BusRemoteNodes served by serveRemoteRequests on a fake local transport.
 * The clock is the test's: it moves only when a test moves it, while timeouts run on real timers.
 */

/** A timeout no test waits for: a request failing before it failed for another reason. */
const LONG_TIMEOUT_MS = 5000;
/** What "at once" means next to LONG_TIMEOUT_MS. */
const AT_ONCE_MS = 500;

const log = createLogger('silent');
let network: MemoryBusNetwork;
let clockMs: number;
const buses: NodeBus[] = [];

beforeEach(() => {
  network = new MemoryBusNetwork();
  clockMs = Date.UTC(2024, 0, 1);
});

afterEach(() => {
  for (const bus of buses.splice(0)) bus.close();
});

/** A started bus for `nodeId` on this test's network and clock, closed after the test. */
async function startNode(nodeId: string, handler: BusHandler = echo): Promise<NodeBus> {
  const bus = new NodeBus({ transport: network.transport(), nodeId, log, now: () => clockMs });
  buses.push(bus);
  await bus.start(handler);
  return bus;
}

/** Replies with what it was asked, by whom, and how long it had. */
const echo: BusHandler = async (request, from, _signal, remainingMs) => ({ request, from, remainingMs });

function pushTo(...sessionIds: string[]): BusRequest {
  return {
    type: 'push',
    sessionIds,
    push: { event: 'news', data: { n: 1 }, ackTimeoutMs: 1000, noAck: false, messageId: 'm-1', sentAtMs: 1_700_000_000_000 },
  };
}

/** A handler that records every call and answers when the test says, or when its signal aborts. */
class HeldHandler {
  readonly calls: { request: BusRequest; from: string; signal: Cancellation; answer: (body: unknown) => void }[] = [];
  readonly handle: BusHandler = (request, from, signal) =>
    new Promise((resolve) => {
      this.calls.push({ request, from, signal, answer: resolve });
      signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
}

/** The error a request rejects with, and how long it took; fails if it resolves. */
async function failure(request: Promise<unknown>): Promise<{ error: Error; elapsedMs: number }> {
  const started = performance.now();
  const outcome = await request.then(
    (reply) => new Error(`expected the request to fail, but it resolved with ${JSON.stringify(reply)}`),
    (err: unknown) => err,
  );
  const elapsedMs = performance.now() - started;
  if (!(outcome instanceof NodeUnreachableError)) throw outcome;
  return { error: outcome, elapsedMs };
}

async function idle(...nodes: NodeBus[]): Promise<void> {
  await waitFor('no request in flight on any node', () => nodes.every((bus) => bus.inFlight === 0), { timeoutMs: 2000 });
}

describe('NodeBus', () => {
  describe('request and reply', () => {
    it("resolves with the serving node's reply, which knows who asked and how long it has", async () => {
      const a = await startNode('node-a');
      await startNode('node-b');

      const reply = await a.request('node-b', pushTo('s-1'), 3000, new AbortController().signal);

      expect(reply).toEqual({ request: pushTo('s-1'), from: 'node-a', remainingMs: 3000 });
      expect(a.inFlight).toBe(0);
    });

    it('matches two concurrent requests to the same node to their own replies, whichever is answered first', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);
      const signal = new AbortController().signal;

      const first = a.request('node-b', pushTo('s-first'), LONG_TIMEOUT_MS, signal);
      const second = a.request('node-b', pushTo('s-second'), LONG_TIMEOUT_MS, signal);
      await waitFor('both requests to be served', () => served.calls.length === 2);
      expect(a.inFlight).toBe(2);
      expect(b.inFlight).toBe(2);

      const [callFirst, callSecond] = served.calls;
      expect(callFirst?.request).toEqual(pushTo('s-first'));
      // The second is answered first: replies are matched by id, not by order.
      callSecond?.answer({ reply: 'to the second' });
      expect(await second).toEqual({ reply: 'to the second' });
      callFirst?.answer({ reply: 'to the first' });
      expect(await first).toEqual({ reply: 'to the first' });
      await idle(a, b);
    });

    it('serves requests from several nodes, each reply going to the node that asked', async () => {
      await startNode('node-server');
      const clients = await Promise.all(['node-1', 'node-2', 'node-3'].map((id) => startNode(id)));

      const replies = await Promise.all(
        clients.map((bus, i) => bus.request('node-server', pushTo(`s-${i}`), 3000, new AbortController().signal)),
      );

      expect(replies.map((reply) => (reply as { from: string }).from)).toEqual(['node-1', 'node-2', 'node-3']);
      expect(replies.map((reply) => (reply as { request: BusRequest }).request)).toEqual([pushTo('s-0'), pushTo('s-1'), pushTo('s-2')]);
    });
  });

  describe('failures', () => {
    it('fails at once, naming the node, when nobody listens as the target', async () => {
      const a = await startNode('node-a');

      const { error, elapsedMs } = await failure(a.request('node-gone', pushTo('s-1'), LONG_TIMEOUT_MS, new AbortController().signal));

      expect(error.message).toContain('node node-gone');
      expect(error.message).toContain('not listening');
      expect(elapsedMs).toBeLessThan(AT_ONCE_MS);
      expect(a.inFlight).toBe(0);
    });

    it('fails at the timeout, naming the node, when the target listens but is silent; nothing stays in flight', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);
      network.pause('node-b');

      const { error, elapsedMs } = await failure(a.request('node-b', pushTo('s-1'), 60, new AbortController().signal));

      expect(error.message).toBe('node node-b did not answer within 60 ms');
      expect(elapsedMs).toBeGreaterThanOrEqual(55);
      expect(elapsedMs).toBeLessThan(60 + AT_ONCE_MS);
      expect(a.inFlight).toBe(0);
      expect(b.inFlight).toBe(0);
      expect(served.calls).toEqual([]);
    });

    it('fails at once, naming the target, when this node is cut off from the wire; works again once healed', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);
      network.cut('node-a');

      const { error, elapsedMs } = await failure(a.request('node-b', pushTo('s-1'), LONG_TIMEOUT_MS, new AbortController().signal));

      expect(error.message).toMatch(/^cannot reach node node-b: /);
      expect(error.message).toContain('cut off');
      expect(elapsedMs).toBeLessThan(AT_ONCE_MS);
      expect(a.inFlight).toBe(0);

      network.heal('node-a');
      const reply = a.request('node-b', pushTo('s-2'), LONG_TIMEOUT_MS, new AbortController().signal);
      await waitFor('node-b to serve the request sent after the heal', () => served.calls.length === 1);
      expect(served.calls[0]?.request).toEqual(pushTo('s-2'));
      served.calls[0]?.answer('ok');
      expect(await reply).toBe('ok');
      await idle(a, b);
    });

    it('ignores malformed messages on the wire and keeps serving', async () => {
      const a = await startNode('node-a');
      const b = await startNode('node-b');
      const raw = network.transport();

      expect(await raw.send('node-b', 'not json {')).toBe(1);
      expect(await raw.send('node-b', '')).toBe(1);
      // JSON, but not a bus message: nothing to act on, and nothing may throw.
      for (const shape of [
        null,
        42,
        'text',
        [],
        { kind: 'request', id: 'r', from: 'node-x', body: {} },
        { kind: 'other', id: 'x', from: 'y' },
      ]) {
        expect(await raw.send('node-b', JSON.stringify(shape))).toBe(1);
      }
      // Well-formed, but a reply and a cancel nobody is waiting for.
      expect(await raw.send('node-b', JSON.stringify({ kind: 'reply', id: 'unknown', from: 'node-x', body: 1 }))).toBe(1);
      expect(await raw.send('node-b', JSON.stringify({ kind: 'cancel', id: 'unknown', from: 'node-x' }))).toBe(1);

      // Sent after them on the same channel: served only once they were handled.
      expect(await a.request('node-b', pushTo('s-1'), 3000, new AbortController().signal)).toEqual({
        request: pushTo('s-1'),
        from: 'node-a',
        remainingMs: 3000,
      });
      await idle(a, b);
    });
  });

  describe('expiry on the shared clock', () => {
    it('does not serve a request that reaches the node after its expiry (the node was paused past the timeout)', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);
      network.pause('node-b');

      const { error } = await failure(a.request('node-b', pushTo('s-late'), 50, new AbortController().signal));
      expect(error.message).toContain('node node-b');
      clockMs += 51;
      network.resume('node-b');

      // Sent after the late one on the same channel: once this one is served, the late one was handled.
      const next = a.request('node-b', pushTo('s-next'), LONG_TIMEOUT_MS, new AbortController().signal);
      await waitFor('node-b to serve the next request', () => served.calls.length > 0);
      expect(served.calls.map((call) => call.request)).toEqual([pushTo('s-next')]);
      served.calls[0]?.answer('ok');
      expect(await next).toBe('ok');
      await idle(a, b);
    });

    it('measures expiry on the shared clock, not on timers: a late request is served while the clock says it is in time', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);
      network.pause('node-b');

      await failure(a.request('node-b', pushTo('s-late'), 50, new AbortController().signal));
      clockMs += 49;
      network.resume('node-b');

      await waitFor('node-b to serve the late request', () => served.calls.length === 1);
      expect(served.calls[0]?.request).toEqual(pushTo('s-late'));
      served.calls[0]?.answer('too late to matter');
      await idle(a, b);
    });
  });

  describe('cancellation', () => {
    it("rejects at once when the requester's signal aborts, and aborts the serving node's handler", async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);
      const call = new AbortController();

      const reply = a.request('node-b', pushTo('s-1'), LONG_TIMEOUT_MS, call.signal);
      await waitFor('node-b to serve the request', () => served.calls.length === 1);
      const signal = served.calls[0]!.signal;
      expect(signal.aborted).toBe(false);
      expect(a.inFlight).toBe(1);
      expect(b.inFlight).toBe(1);

      call.abort();
      const { error, elapsedMs } = await failure(reply);

      expect(error.message).toContain('node node-b');
      expect(elapsedMs).toBeLessThan(AT_ONCE_MS);
      expect(a.inFlight).toBe(0);
      await waitFor("node-b's handler to see the cancel", () => signal.aborted);
      await idle(a, b);
    });

    it('does not send a request whose signal has already aborted', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);

      const { error } = await failure(a.request('node-b', pushTo('s-1'), LONG_TIMEOUT_MS, AbortSignal.abort()));
      expect(error.message).toContain('node node-b');
      expect(a.inFlight).toBe(0);

      const next = a.request('node-b', pushTo('s-next'), LONG_TIMEOUT_MS, new AbortController().signal);
      await waitFor('node-b to serve the next request', () => served.calls.length > 0);
      expect(served.calls.map((call) => call.request)).toEqual([pushTo('s-next')]);
      served.calls[0]?.answer('ok');
      await next;
      await idle(a, b);
    });
  });

  describe('close()', () => {
    it("fails this node's pending requests with 'shutting down'", async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      await startNode('node-b', served.handle);

      const reply = a.request('node-b', pushTo('s-1'), LONG_TIMEOUT_MS, new AbortController().signal);
      await waitFor('node-b to serve the request', () => served.calls.length === 1);
      a.close();
      const { error, elapsedMs } = await failure(reply);

      expect(error.message).toBe('this node is shutting down');
      expect(elapsedMs).toBeLessThan(AT_ONCE_MS);
      expect(a.inFlight).toBe(0);
    });

    it('aborts the requests it serves, and stops listening: new requests to it fail at once', async () => {
      const served = new HeldHandler();
      const a = await startNode('node-a');
      const b = await startNode('node-b', served.handle);

      void a.request('node-b', pushTo('s-1'), LONG_TIMEOUT_MS, new AbortController().signal).catch(() => undefined);
      await waitFor('node-b to serve the request', () => served.calls.length === 1);
      b.close();

      expect(served.calls[0]?.signal.aborted).toBe(true);
      expect(b.inFlight).toBe(0);
      const { error, elapsedMs } = await failure(a.request('node-b', pushTo('s-2'), LONG_TIMEOUT_MS, new AbortController().signal));
      expect(error.message).toContain('node node-b is registered but not listening');
      expect(elapsedMs).toBeLessThan(AT_ONCE_MS);
    });
  });

  describe('observer (metrics)', () => {
    /** A requester whose every settled request is recorded: type, outcome, seconds. */
    async function observedNode(nodeId: string): Promise<{ bus: NodeBus; seen: [string, string, number][] }> {
      const seen: [string, string, number][] = [];
      const observer: BusObserver = { requested: (type, outcome, seconds) => seen.push([type, outcome, seconds]) };
      const bus = new NodeBus({ transport: network.transport(), nodeId, log, now: () => clockMs, observer });
      buses.push(bus);
      await bus.start(echo);
      return { bus, seen };
    }

    it('is told once per request, with its outcome: ok, timeout, error (nobody listening, cancelled before or while asked)', async () => {
      const { bus: a, seen } = await observedNode('node-a');
      await startNode('node-b', new HeldHandler().handle);
      await startNode('node-c');

      await a.request('node-c', pushTo('s-1'), LONG_TIMEOUT_MS, new AbortController().signal);
      await failure(a.request('node-b', pushTo('s-2'), 40, new AbortController().signal));
      await failure(a.request('node-gone', pushTo('s-3'), LONG_TIMEOUT_MS, new AbortController().signal));
      await failure(a.request('node-c', pushTo('s-4'), LONG_TIMEOUT_MS, AbortSignal.abort()));
      const cancel = new AbortController();
      const cancelled = failure(a.request('node-b', pushTo('s-5'), LONG_TIMEOUT_MS, cancel.signal));
      cancel.abort();
      await cancelled;

      expect(seen.map(([type, outcome]) => [type, outcome])).toEqual([
        ['push', 'ok'],
        ['push', 'timeout'],
        ['push', 'error'],
        ['push', 'error'],
        ['push', 'error'],
      ]);
      // The timeout is reported after it ran out, not before.
      expect(seen[1]![2]).toBeGreaterThanOrEqual(0.035);
      expect(a.inFlight).toBe(0);
    });

    it('puts the request on the wire in the call itself, before any timer or listener of its own runs', async () => {
      const sent: string[] = [];
      const transport = network.transport();
      const recording = {
        listen: transport.listen.bind(transport),
        close: transport.close.bind(transport),
        send: (nodeId: string, message: string) => {
          sent.push(nodeId);
          return transport.send(nodeId, message);
        },
      };
      const a = new NodeBus({ transport: recording, nodeId: 'node-a', log, now: () => clockMs });
      buses.push(a);
      await a.start(echo);
      await startNode('node-b');

      const reply = a.request('node-b', pushTo('s-1'), LONG_TIMEOUT_MS, new AbortController().signal);

      expect(sent).toEqual(['node-b']);
      await reply;
    });
  });
});

/** A node's sockets as the serving node sees them: chosen outcomes, and every call recorded. */
class FakeSessions implements SessionTransport {
  readonly calls: { sessionIds: readonly string[]; message: PushMessage; signal: AbortSignal }[] = [];

  constructor(
    private readonly outcomes: Readonly<Record<string, Outcome>>,
    /** Wait for the signal to abort before answering, as a push waiting for acks that never come. */
    private readonly holdUntilAborted = false,
  ) {}

  async deliver(sessionIds: readonly string[], message: PushMessage, signal: AbortSignal): Promise<Outcome[]> {
    this.calls.push({ sessionIds, message, signal });
    if (this.holdUntilAborted) {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return sessionIds.map(() => ({ status: 'failed', latencyUs: 0, ackData: undefined, error: 'cancelled' }));
    }
    return sessionIds.map(
      (id) => this.outcomes[id] ?? { status: 'disconnected', latencyUs: 0, ackData: undefined, error: `${id} is not held here` },
    );
  }
}

/** Closes the sessions it holds, and records every call. */
class FakeCloser implements SessionCloser {
  readonly calls: { sessionIds: readonly string[]; reason: string; notice: string }[] = [];

  constructor(private readonly held: ReadonlySet<string>) {}

  async disconnect(sessionIds: readonly string[], reason: CloseReason, notice: string): Promise<string[]> {
    this.calls.push({ sessionIds, reason, notice });
    return sessionIds.filter((id) => this.held.has(id));
  }
}

describe('BusRemoteNodes over the bus, served by serveRemoteRequests', () => {
  const REPLY_GRACE_MS = 1000;
  const REPLY_MARGIN_MS = 200;
  const ACK_TIMEOUT_MS = 10_000;

  /** A push as the engine hands it over: with the user and filter the serving node does not need. */
  const push: PushRequest = {
    userId: 'user-1',
    clientTypes: ['web'],
    event: 'news',
    data: { title: 'héllo 🚀', items: [1, 2, 3] },
    ackTimeoutMs: ACK_TIMEOUT_MS,
    noAck: false,
    messageId: 'm-42',
    sentAtMs: 1_700_000_000_000,
  };

  const acked: Outcome = { status: 'acked', latencyUs: 1234, ackData: { read: true, note: 'ü' }, error: '' };
  const timedOut: Outcome = { status: 'timeout', latencyUs: 0, ackData: undefined, error: 'no ack within 10000 ms' };
  const gone: Outcome = { status: 'disconnected', latencyUs: 0, ackData: undefined, error: 'session left' };

  /** node-a asks, node-b serves with `local` and `closer`. */
  async function twoNodes(local: SessionTransport, closer: SessionCloser = new FakeCloser(new Set())) {
    const a = await startNode('node-a');
    const b = await startNode('node-b', serveRemoteRequests({ local, closer, replyMarginMs: REPLY_MARGIN_MS }));
    return { a, b, remote: new BusRemoteNodes(a, REPLY_GRACE_MS) };
  }

  it("returns each session's outcome in the requested order, and hands the serving node only the push itself", async () => {
    const local = new FakeSessions({ 's-1': acked, 's-2': timedOut, 's-3': gone });
    const { a, b, remote } = await twoNodes(local);

    const outcomes = await remote.deliver('node-b', ['s-3', 's-1', 's-2'], push, new AbortController().signal);

    expect(outcomes).toEqual([gone, acked, timedOut]);
    expect(local.calls).toHaveLength(1);
    expect(local.calls[0]?.sessionIds).toEqual(['s-3', 's-1', 's-2']);
    expect(local.calls[0]?.message).toEqual({
      event: 'news',
      data: push.data,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      noAck: false,
      messageId: 'm-42',
      sentAtMs: push.sentAtMs,
    });
    await idle(a, b);
  });

  it('puts outcomes back in the requested order and fails, naming the node, a session the serving node did not report', async () => {
    const a = await startNode('node-a');
    // A serving node answering out of order and leaving s-3 out.
    await startNode('node-b', async () => ({
      deliveries: [
        { sessionId: 's-2', status: 'acked', latencyUs: 7, ackData: 'yes', error: '' },
        { sessionId: 's-1', status: 'timeout', latencyUs: 0, error: 'no ack' },
      ],
    }));
    const remote = new BusRemoteNodes(a, REPLY_GRACE_MS);

    const outcomes = await remote.deliver('node-b', ['s-1', 's-2', 's-3'], push, new AbortController().signal);

    expect(outcomes).toEqual([
      { status: 'timeout', latencyUs: 0, ackData: undefined, error: 'no ack' },
      { status: 'acked', latencyUs: 7, ackData: 'yes', error: '' },
      { status: 'failed', latencyUs: 0, ackData: undefined, error: 'node node-b did not report on this session' },
    ]);
  });

  it('fails every session, naming the node, when the node cannot be reached', async () => {
    const a = await startNode('node-a');
    const remote = new BusRemoteNodes(a, REPLY_GRACE_MS);

    const outcomes = await remote.deliver('node-gone', ['s-1', 's-2'], push, new AbortController().signal);

    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'failed']);
    for (const o of outcomes) expect(o.error).toContain('node node-gone');
  });

  it('shortens the ack timeout of a push that arrives late, keeping the reply margin, and never below 1 ms', async () => {
    const local = new FakeSessions({ 's-1': acked });
    const { a, b, remote } = await twoNodes(local);
    const signal = new AbortController().signal;
    // The requester waits ACK_TIMEOUT_MS + REPLY_GRACE_MS for the reply; the late push arrives this much after it was sent.
    const lateBy = async (delayMs: number): Promise<number> => {
      network.pause('node-b');
      const outcomes = remote.deliver('node-b', ['s-1'], push, signal);
      clockMs += delayMs;
      network.resume('node-b');
      expect(await outcomes).toEqual([acked]);
      return local.calls.at(-1)!.message.ackTimeoutMs;
    };

    expect(await lateBy(0)).toBe(ACK_TIMEOUT_MS);
    expect(await lateBy(REPLY_GRACE_MS - REPLY_MARGIN_MS)).toBe(ACK_TIMEOUT_MS);
    // 500 ms left: 300 for the acks, 200 for the reply.
    expect(await lateBy(ACK_TIMEOUT_MS + REPLY_GRACE_MS - 500)).toBe(500 - REPLY_MARGIN_MS);
    // 50 ms left, less than the margin.
    expect(await lateBy(ACK_TIMEOUT_MS + REPLY_GRACE_MS - 50)).toBe(1);
    await idle(a, b);
  });

  it('fails its sessions at once when the caller cancels, and the cancel reaches the local delivery on the serving node', async () => {
    const local = new FakeSessions({}, true);
    const { a, b, remote } = await twoNodes(local);
    const call = new AbortController();

    const outcomes = remote.deliver('node-b', ['s-1', 's-2'], push, call.signal);
    await waitFor('node-b to hand the push to its sessions', () => local.calls.length === 1);
    const started = performance.now();
    call.abort();

    const result = await outcomes;
    expect(performance.now() - started).toBeLessThan(AT_ONCE_MS);
    expect(result.map((o) => o.status)).toEqual(['failed', 'failed']);
    for (const o of result) expect(o.error).toContain('node node-b');
    await waitFor("the serving node's delivery to see the cancel", () => local.calls[0]?.signal.aborted);
    await idle(a, b);
  });

  it('disconnect returns only the ids the serving node closed', async () => {
    const closer = new FakeCloser(new Set(['s-1', 's-3', 's-other']));
    const { a, b, remote } = await twoNodes(new FakeSessions({}), closer);

    const closed = await remote.disconnect('node-b', ['s-1', 's-2', 's-3'], 'kicked', 'bye for now', new AbortController().signal);

    expect(closed).toEqual(['s-1', 's-3']);
    expect(closer.calls).toEqual([{ sessionIds: ['s-1', 's-2', 's-3'], reason: 'kicked', notice: 'bye for now' }]);
    await idle(a, b);
  });

  it('disconnect carries its reason to the serving node (the session cap evicts with too_many_sessions)', async () => {
    const closer = new FakeCloser(new Set(['s-1']));
    const { a, b, remote } = await twoNodes(new FakeSessions({}), closer);

    await remote.disconnect('node-b', ['s-1'], 'too_many_sessions', 'too_many_sessions', new AbortController().signal);

    expect(closer.calls).toEqual([{ sessionIds: ['s-1'], reason: 'too_many_sessions', notice: 'too_many_sessions' }]);
    await idle(a, b);
  });

  it('disconnect keeps to the ids asked about, in the order asked, whatever the serving node reports', async () => {
    const a = await startNode('node-a');
    // A serving node reporting out of order, and a session nobody asked it to close.
    await startNode('node-b', async () => ({ closed: ['s-9', 's-3', 's-1'] }));
    const remote = new BusRemoteNodes(a, REPLY_GRACE_MS);

    expect(await remote.disconnect('node-b', ['s-1', 's-2', 's-3'], 'kicked', 'bye', new AbortController().signal)).toEqual(['s-1', 's-3']);
  });

  it('disconnect rejects, naming the node, when the node cannot be reached', async () => {
    const a = await startNode('node-a');
    const remote = new BusRemoteNodes(a, REPLY_GRACE_MS);

    const { error } = await failure(remote.disconnect('node-gone', ['s-1'], 'kicked', 'bye', new AbortController().signal));

    expect(error.message).toContain('node node-gone');
  });
});
