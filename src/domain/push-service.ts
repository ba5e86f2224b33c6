import { PushgateError } from '../errors.js';
import { untilAborted } from './abortable.js';
import { BatchFanOut } from './batch-fan-out.js';
import type { Cancellation } from './cancellation.js';
import type { IdempotentPushes } from './idempotent-push.js';
import type { InboxService } from './inbox-service.js';
import { byNode, idsOf, NodeDelivery, otherNodesFirst } from './node-delivery.js';
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
import { ReceiptService } from './receipt-service.js';
import type { SessionFilter, SessionRecord } from './session.js';
import { type PageRequest, pageOf, type SessionPage } from './session-page.js';
import type { SessionRegistry } from './session-registry.js';
import type { CloseReason, RemoteNodes, SessionCloser, SessionTransport } from './session-transport.js';
import { pushTracked, type TrackedPushDeps } from './tracked-push.js';

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
  /** Receipts of tracked pushes (ReceiptService.tracks). */
  readonly receipts: ReceiptService;
  /** Bookkeeping of a tracked push after its call returned failed (receipts, inbox); it must not throw. */
  readonly onBackgroundError?: (err: unknown) => void;
  /** Pushes with the caller's own message id, delivered once per window; undefined: idempotency is off. */
  readonly idempotent?: IdempotentPushes;
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
  private readonly tracked: TrackedPushDeps;
  private readonly delivery: NodeDelivery;

  constructor(private readonly deps: PushServiceDeps) {
    this.delivery = new NodeDelivery(deps);
    this.tracked = {
      lookup: (request, signal) => this.lookup(request, signal),
      deliver: (sessions, message, signal, onOutcome) => this.delivery.deliver(sessions, message, signal, onOutcome),
      inbox: deps.inbox,
      receipts: deps.receipts,
      onBackgroundError: deps.onBackgroundError ?? (() => {}),
    };
  }

  /** Not async itself: a push is on the hot path, and each async layer costs a promise and a turn. */
  push(request: PushRequest, signal: Cancellation): Promise<PushResult> {
    const { idempotent } = this.deps;
    if (idempotent !== undefined && request.callerMessageId === true) {
      return idempotent.run(request, signal, () => this.pushOnce(request, signal));
    }
    return this.pushOnce(request, signal);
  }

  private async pushOnce(request: PushRequest, signal: Cancellation): Promise<PushResult> {
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
    if (ReceiptService.tracks(request)) return pushTracked(this.tracked, request, signal);
    const sessions = await this.lookup(request, signal);
    if (sessions.length === 0 || signal.aborted) return summarize(request.messageId, []);
    // A PushRequest is a PushMessage: the nodes ignore the user and filter, already resolved here.
    const outcomes = await this.delivery.deliver(sessions, request, signal);
    return summarize(
      request.messageId,
      sessions.map((session, i) => withSession(session, outcomes[i]!)),
    );
  }

  private lookup(request: PushRequest, signal: Cancellation): Promise<SessionRecord[]> {
    return untilAborted(this.deps.registry.lookup(request.userId, { clientTypes: request.clientTypes }), signal);
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
    if (storage !== undefined) {
      // Each user's message has a receipt, opened before anything is sent (see pushTracked).
      const requests = userIds.map((userId) => userRequest(request, userId));
      await untilAborted(Promise.all(requests.map((r) => this.deps.receipts.opened(r))), signal);
      if (storage.mode === 'store') {
        const keeps = requests.map((r) => this.deps.inbox.keepBeforeSend(r, found.get(r.userId)?.length ?? 0));
        await untilAborted(Promise.all(keeps), signal);
      }
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
    await Promise.all(settled.map((result) => this.deps.receipts.delivered(result))).catch(this.tracked.onBackgroundError);
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
}

/** One user's push within a batch: its own message id, the batch's event, data and options. */
function userRequest(request: BatchPushRequest, userId: string): PushRequest {
  const { event, data, ackTimeoutMs, noAck, sentAtMs, clientTypes, storage } = request;
  return { event, data, ackTimeoutMs, noAck, sentAtMs, clientTypes, storage, userId, messageId: userMessageId(request.messageId, userId) };
}
