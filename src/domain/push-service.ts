import { PushgateError } from '../errors.js';
import { untilAborted } from './abortable.js';
import { BatchFanOut } from './batch-fan-out.js';
import type { Cancellation } from './cancellation.js';
import type { InboxService } from './inbox-service.js';
import {
  type BatchItem,
  type BatchPushRequest,
  BatchTally,
  type Outcome,
  outcome,
  type PushMessage,
  type PushRequest,
  type PushResult,
  summarize,
  type UserPushResult,
  userMessageId,
  withSession,
} from './push.js';
import type { SessionFilter, SessionRecord } from './session.js';
import { type PageRequest, pageOf, type SessionPage } from './session-page.js';
import type { SessionRegistry } from './session-registry.js';
import type { CloseReason, RemoteNodes, SessionCloser, SessionTransport } from './session-transport.js';

export interface PushServiceDeps {
  readonly nodeId: string;
  readonly registry: SessionRegistry;
  /** Delivers to the sessions this node holds. */
  readonly local: SessionTransport;
  /** Closes sessions this node holds. */
  readonly closer: SessionCloser;
  /** Reaches other nodes' sessions; NO_OTHER_NODES on a single node. */
  readonly remote: RemoteNodes;
  /** Told of every push's result (metrics); none by default. */
  readonly observer?: PushObserver;
  /** The offline inbox, for pushes with a storing delivery mode. */
  readonly inbox: InboxService;
}

/**
 * Watches pushes go by, e.g. to count them. Called once per push after its result is known, so
 * it costs the delivery path nothing; it must not throw.
 */
export interface PushObserver {
  pushed(request: PushRequest, result: PushResult): void;
  /** The push failed as a whole (the registry was unreachable, the call was cancelled). */
  pushFailed(): void;
}

/**
 * The fan-out: one registry lookup, then the sessions are grouped by owning node (one message per
 * node, not per session) and every node's part is delivered at once. Free of transport types so it
 * can be driven by gRPC, a CLI or a test alike.
 */
export class PushService {
  constructor(private readonly deps: PushServiceDeps) {}

  async push(request: PushRequest, signal: Cancellation): Promise<PushResult> {
    const { observer } = this.deps;
    if (observer === undefined) return this.fanOut(request, signal);
    let result: PushResult;
    try {
      result = await this.fanOut(request, signal);
    } catch (err) {
      observer.pushFailed();
      throw err;
    }
    observer.pushed(request, result);
    return result;
  }

  private async fanOut(request: PushRequest, signal: Cancellation): Promise<PushResult> {
    if (request.storage === undefined) return this.fanOutLive(request, signal);
    const { inbox } = this.deps;
    // Kept before anything is sent: a node that dies mid-delivery loses nothing.
    if (request.storage.mode === 'store') await untilAborted(inbox.keepBeforeSend(request), signal);
    // Settled even when the call was cancelled: a push that reached nobody is then kept, not lost.
    return inbox.settle(request, await this.fanOutLive(request, signal));
  }

  private async fanOutLive(request: PushRequest, signal: Cancellation): Promise<PushResult> {
    const sessions = await untilAborted(this.deps.registry.lookup(request.userId, { clientTypes: request.clientTypes }), signal);
    if (sessions.length === 0 || signal.aborted) return summarize(request.messageId, []);

    const { nodeId } = this.deps;
    // A PushRequest is a PushMessage: the nodes ignore the user and filter, already resolved here.
    const message: PushMessage = request;
    // The common case on one node: every session is ours, one delivery in lookup order.
    if (sessions.every((s) => s.nodeId === nodeId)) {
      const outcomes = await this.deps.local.deliver(idsOf(sessions), message, signal);
      return summarize(
        request.messageId,
        sessions.map((session, i) => withSession(session, outcomes[i]!)),
      );
    }
    const groups = otherNodesFirst(byNode(sessions), nodeId);
    const parts = await Promise.all(groups.map(([owner, owned]) => this.deliverTo(owner, idsOf(owned), message, signal)));
    // Back in lookup order (oldest connection first), whichever node answered first.
    const bySession = new Map<string, Outcome>();
    for (const [g, [, owned]] of groups.entries()) {
      for (const [i, session] of owned.entries()) bySession.set(session.sessionId, parts[g]![i]!);
    }
    return summarize(
      request.messageId,
      sessions.map((session) => withSession(session, bySession.get(session.sessionId)!)),
    );
  }

  /**
   * A batch push: the same message to every session of many users. One `lookupMany` (one round
   * trip per registry shard), then every session of the batch is grouped by owning node and each
   * node gets one delivery (one bus request for a remote node), as for a single push. Each user's
   * result is yielded as soon as all its sessions have outcomes, with every other result complete
   * by then: users without sessions at once,
   * users on this node as their own sessions settle, users on another node when that node
   * replies. The summary comes last. Leaving the iteration early (or `signal` aborting) ends every
   * wait still open, so no ack wait outlives the call.
   */
  async *pushMany(request: BatchPushRequest, signal: Cancellation): AsyncGenerator<BatchItem, void, undefined> {
    const { observer } = this.deps;
    const userIds = [...new Set(request.userIds)];
    let found: Map<string, SessionRecord[]>;
    try {
      found = await untilAborted(this.deps.registry.lookupMany(userIds, { clientTypes: request.clientTypes }), signal);
    } catch (err) {
      observer?.pushFailed();
      throw err;
    }
    const { storage } = request;
    if (storage?.mode === 'store') {
      await untilAborted(Promise.all(userIds.map((userId) => this.deps.inbox.keepBeforeSend(userRequest(request, userId)))), signal);
    }
    const batch = new BatchFanOut(request, userIds, found, observer);
    const stop = new AbortController();
    const onAbort = (): void => stop.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.deliverBatch(batch, request, stop.signal);
      const tally = new BatchTally(request.messageId);
      for (;;) {
        const first = batch.next() ?? (await batch.ready());
        if (first === undefined) break;
        const results = [first];
        for (let result = batch.next(); result !== undefined; result = batch.next()) results.push(result);
        if (storage !== undefined) await this.settleBatch(request, results);
        for (const result of results) tally.add(result);
        yield { kind: 'users', results };
      }
      yield { kind: 'summary', summary: tally.summary() };
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A consumer that stopped reading (cancelled call) leaves no ack wait behind.
      stop.abort();
    }
  }

  /** Storing batch pushes: each user's result goes through the inbox as for a single push. */
  private async settleBatch(request: BatchPushRequest, results: UserPushResult[]): Promise<void> {
    const settled = await Promise.all(results.map((result) => this.deps.inbox.settle(userRequest(request, result.userId), result)));
    for (const [i, result] of settled.entries()) results[i] = { ...results[i]!, stored: result.stored };
  }

  /** One delivery per owning node for the whole batch; outcomes flow into `batch` as they come. */
  private deliverBatch(batch: BatchFanOut, message: PushMessage, signal: Cancellation): void {
    const { nodeId } = this.deps;
    // The nodes get the batch's message: the event and data are the same for every user.
    const plain: PushMessage = {
      event: message.event,
      data: message.data,
      ackTimeoutMs: message.ackTimeoutMs,
      noAck: message.noAck,
      messageId: message.messageId,
      sentAtMs: message.sentAtMs,
    };
    for (const [owner, slots] of otherNodesFirst(batch.byNode(), nodeId)) {
      const ids = slots.map((slot) => slot.session.sessionId);
      const early = owner === nodeId ? (i: number, o: Outcome) => batch.settle(slots[i]!, o) : undefined;
      const delivered =
        owner === nodeId ? this.deps.local.deliver(ids, plain, signal, early) : this.deps.remote.deliver(owner, ids, plain, signal);
      delivered.then(
        (outcomes) => {
          for (const [i, slot] of slots.entries()) batch.settle(slot, outcomes[i] ?? outcome('failed', 'no outcome reported'));
        },
        (err: unknown) => {
          const failed = outcome('failed', `delivery to node ${owner} failed: ${(err as Error).message}`);
          for (const slot of slots) batch.settle(slot, failed);
        },
      );
    }
  }

  /** One page of a user's sessions matching the filter, oldest connection first. */
  async listSessions(userId: string, filter: SessionFilter, page: PageRequest, signal: Cancellation): Promise<SessionPage> {
    const sessions = await untilAborted(this.deps.registry.lookup(userId, filter), signal);
    const listing = [userId, ...[...(filter.clientTypes ?? [])].sort()].join('\n');
    return pageOf(sessions, listing, page);
  }

  /**
   * Closes the matching sessions on whichever nodes hold them; resolves with those closed. If a
   * node holding some of them does not answer, the others are still closed and the call fails with
   * `node_unreachable` naming it: a retry closes what is left (closed sessions are gone).
   */
  async disconnect(
    userId: string,
    filter: SessionFilter,
    notice: string,
    signal: Cancellation,
    reason: CloseReason = 'kicked',
  ): Promise<SessionRecord[]> {
    const sessions = await untilAborted(this.deps.registry.lookup(userId, filter), signal);
    const { nodeId, closer, remote } = this.deps;
    const groups = [...byNode(sessions)];
    const parts = await Promise.allSettled(
      groups.map(([owner, owned]) =>
        owner === nodeId ? closer.disconnect(idsOf(owned), reason, notice) : remote.disconnect(owner, idsOf(owned), reason, notice, signal),
      ),
    );
    const closed = new Set<string>();
    const failures: string[] = [];
    parts.forEach((part, i) => {
      if (part.status === 'fulfilled') for (const id of part.value) closed.add(id);
      else failures.push(`${groups[i]![0]}: ${(part.reason as Error).message}`);
    });
    if (failures.length > 0) {
      throw new PushgateError('node_unreachable', `closed ${closed.size} session(s), but not those held by ${failures.join('; ')}`);
    }
    return sessions.filter((s) => closed.has(s.sessionId));
  }

  private deliverTo(owner: string, sessionIds: readonly string[], message: PushMessage, signal: Cancellation): Promise<Outcome[]> {
    return owner === this.deps.nodeId
      ? this.deps.local.deliver(sessionIds, message, signal)
      : this.deps.remote.deliver(owner, sessionIds, message, signal);
  }
}

/** One user's push within a batch: its own message id, the batch's event, data and options. */
function userRequest(request: BatchPushRequest, userId: string): PushRequest {
  const { event, data, ackTimeoutMs, noAck, sentAtMs, clientTypes, storage } = request;
  return { event, data, ackTimeoutMs, noAck, sentAtMs, clientTypes, storage, userId, messageId: userMessageId(request.messageId, userId) };
}

function idsOf(sessions: readonly SessionRecord[]): string[] {
  return sessions.map((s) => s.sessionId);
}

/** Other nodes' groups first: their requests travel through the bus while this node emits to its own sockets. */
function otherNodesFirst<T>(groups: Map<string, T>, nodeId: string): [string, T][] {
  return [...groups].sort(([a], [b]) => Number(a === nodeId) - Number(b === nodeId));
}

function byNode(sessions: readonly SessionRecord[]): Map<string, SessionRecord[]> {
  const groups = new Map<string, SessionRecord[]>();
  for (const session of sessions) {
    const group = groups.get(session.nodeId);
    if (group === undefined) groups.set(session.nodeId, [session]);
    else group.push(session);
  }
  return groups;
}
