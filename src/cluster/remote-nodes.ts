import type { Cancellation } from '../domain/cancellation.js';
import type { DeliveryStatus, Outcome, PushMessage } from '../domain/push.js';
import type { CloseReason, RemoteNodes, SessionCloser, SessionTransport } from '../domain/session-transport.js';
import type { BusHandler, NodeBus } from './node-bus.js';

/** One session's outcome as a node reports it to the requester. */
interface WireOutcome {
  readonly sessionId: string;
  readonly status: DeliveryStatus;
  readonly latencyUs: number;
  readonly ackData?: unknown;
  readonly error: string;
}

interface PushReply {
  readonly deliveries: readonly WireOutcome[];
}

interface DisconnectReply {
  readonly closed: readonly string[];
}

/** A disconnect waits this long for another node to confirm, at most (the call's deadline may be shorter). */
const DISCONNECT_TIMEOUT_MS = 5000;

/** Pushes and disconnects for sessions held by other nodes, over the cluster bus. */
export class BusRemoteNodes implements RemoteNodes {
  constructor(
    private readonly bus: NodeBus,
    /** Extra wait past the ack timeout for the reply to travel back. */
    private readonly replyGraceMs: number,
  ) {}

  async deliver(nodeId: string, sessionIds: readonly string[], message: PushMessage, signal: Cancellation): Promise<Outcome[]> {
    const timeoutMs = (message.noAck ? 0 : message.ackTimeoutMs) + this.replyGraceMs;
    // Only what the owner needs: a PushRequest handed in as the message carries user and filter too.
    const { event, data, ackTimeoutMs, noAck, messageId, sentAtMs, tracked } = message;
    let reply: PushReply;
    try {
      reply = (await this.bus.request(
        nodeId,
        { type: 'push', sessionIds, push: { event, data, ackTimeoutMs, noAck, messageId, sentAtMs, tracked } },
        timeoutMs,
        signal,
      )) as PushReply;
    } catch (err) {
      return sessionIds.map(() => failed((err as Error).message));
    }
    const reported = new Map(reply.deliveries.map((d) => [d.sessionId, d]));
    return sessionIds.map((sessionId) => {
      const wire = reported.get(sessionId);
      if (wire === undefined) return failed(`node ${nodeId} did not report on this session`);
      return { status: wire.status, latencyUs: wire.latencyUs, ackData: wire.ackData, error: wire.error };
    });
  }

  async disconnect(
    nodeId: string,
    sessionIds: readonly string[],
    reason: CloseReason,
    notice: string,
    signal: Cancellation,
  ): Promise<string[]> {
    const reply = (await this.bus.request(
      nodeId,
      { type: 'disconnect', sessionIds, reason, notice },
      DISCONNECT_TIMEOUT_MS,
      signal,
    )) as DisconnectReply;
    const closed = new Set(reply.closed);
    return sessionIds.filter((id) => closed.has(id));
  }
}

/**
 * Serves other nodes' requests with this node's sessions: a push is delivered as a local push (its
 * wait ends early if the requester cancels), a disconnect closes local sessions.
 */
export function serveRemoteRequests(deps: {
  readonly local: SessionTransport;
  readonly closer: SessionCloser;
  /** Time kept back for the reply to travel when a request arrives late. */
  readonly replyMarginMs: number;
}): BusHandler {
  return async (request, _from, signal, remainingMs) => {
    switch (request.type) {
      case 'push': {
        const { push, sessionIds } = request;
        // A request that arrived late still gets its answer back before the requester gives up.
        const ackTimeoutMs = Math.max(1, Math.min(push.ackTimeoutMs, remainingMs - deps.replyMarginMs));
        // A session that already left this node is reported DISCONNECTED by the local delivery.
        const outcomes = await deps.local.deliver(sessionIds, { ...push, ackTimeoutMs }, signal);
        return { deliveries: outcomes.map((o, i) => toWire(sessionIds[i]!, o)) } satisfies PushReply;
      }
      case 'disconnect': {
        const closed = await deps.closer.disconnect(request.sessionIds, request.reason ?? 'kicked', request.notice);
        return { closed } satisfies DisconnectReply;
      }
    }
  };
}

function toWire(sessionId: string, outcome: Outcome): WireOutcome {
  return {
    sessionId,
    status: outcome.status,
    latencyUs: outcome.latencyUs,
    ...(outcome.ackData !== undefined && { ackData: outcome.ackData }),
    error: outcome.error,
  };
}

function failed(error: string): Outcome {
  return { status: 'failed', latencyUs: 0, ackData: undefined, error };
}
