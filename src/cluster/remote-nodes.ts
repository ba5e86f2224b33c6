import type { Logger } from 'pino';
import type { Delivery, DeliveryStatus, PushRequest, RemoteNodes, SessionCloser, SessionTransport } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';
import type { BusHandler, NodeBus } from './node-bus.js';

/** One session's outcome as a node reports it to the requester. */
interface WireDelivery {
  readonly sessionId: string;
  readonly status: DeliveryStatus;
  readonly latencyUs: number;
  readonly ackData?: unknown;
  readonly error: string;
}

interface PushReply {
  readonly deliveries: readonly WireDelivery[];
}

interface DisconnectReply {
  readonly closed: readonly string[];
}

/** The sessions this node holds: delivers to them and finds them by id. */
export type HeldSessions = SessionTransport & { get(sessionId: string): { readonly record: SessionRecord } | undefined };

/** A disconnect waits this long for another node to confirm, at most (the call's deadline may be shorter). */
const DISCONNECT_TIMEOUT_MS = 5000;

/** Pushes and disconnects for sessions held by other nodes, over the cluster bus. */
export class BusRemoteNodes implements RemoteNodes {
  constructor(
    private readonly bus: NodeBus,
    /** Extra wait past the ack timeout for the reply to travel back. */
    private readonly replyGraceMs: number,
  ) {}

  async deliver(nodeId: string, sessions: readonly SessionRecord[], push: PushRequest, signal: AbortSignal): Promise<Delivery[]> {
    const timeoutMs = (push.noAck ? 0 : push.ackTimeoutMs) + this.replyGraceMs;
    let reply: PushReply;
    try {
      reply = (await this.bus.request(
        nodeId,
        {
          type: 'push',
          sessionIds: sessions.map((s) => s.sessionId),
          push: { event: push.event, data: push.data, ackTimeoutMs: push.ackTimeoutMs, noAck: push.noAck, messageId: push.messageId },
        },
        timeoutMs,
        signal,
      )) as PushReply;
    } catch (err) {
      return sessions.map((session) => failed(session, (err as Error).message));
    }
    const reported = new Map(reply.deliveries.map((d) => [d.sessionId, d]));
    return sessions.map((session) => {
      const delivery = reported.get(session.sessionId);
      if (delivery === undefined) return failed(session, `node ${nodeId} did not report on this session`);
      return { session, status: delivery.status, latencyUs: delivery.latencyUs, ackData: delivery.ackData, error: delivery.error };
    });
  }

  async disconnect(nodeId: string, sessions: readonly SessionRecord[], notice: string, signal: AbortSignal): Promise<SessionRecord[]> {
    const reply = (await this.bus.request(
      nodeId,
      { type: 'disconnect', sessionIds: sessions.map((s) => s.sessionId), notice },
      DISCONNECT_TIMEOUT_MS,
      signal,
    )) as DisconnectReply;
    const closed = new Set(reply.closed);
    return sessions.filter((s) => closed.has(s.sessionId));
  }
}

/**
 * Serves other nodes' requests with this node's sessions: a push is delivered as a local push (its
 * wait ends early if the requester cancels), a disconnect closes local sessions.
 */
export function serveRemoteRequests(deps: {
  readonly local: HeldSessions;
  readonly closer: SessionCloser;
  /** Time kept back for the reply to travel when a request arrives late. */
  readonly replyMarginMs: number;
  readonly log: Logger;
}): BusHandler {
  const recordsOf = (sessionIds: readonly string[]): SessionRecord[] =>
    // A session that already left this node is reported DISCONNECTED by the local delivery.
    sessionIds.map((id) => deps.local.get(id)?.record ?? goneSession(id));
  return async (request, _from, signal, remainingMs) => {
    switch (request.type) {
      case 'push': {
        const { push } = request;
        // A request that arrived late still gets its answer back before the requester gives up.
        const ackTimeoutMs = Math.max(1, Math.min(push.ackTimeoutMs, remainingMs - deps.replyMarginMs));
        const deliveries = await deps.local.deliver(recordsOf(request.sessionIds), { ...push, ackTimeoutMs, userId: '', clientTypes: [] }, signal);
        return { deliveries: deliveries.map(toWire) } satisfies PushReply;
      }
      case 'disconnect': {
        const closed = await deps.closer.disconnect(recordsOf(request.sessionIds), 'kicked', request.notice);
        return { closed: closed.map((s) => s.sessionId) } satisfies DisconnectReply;
      }
    }
  };
}

function toWire(delivery: Delivery): WireDelivery {
  return {
    sessionId: delivery.session.sessionId,
    status: delivery.status,
    latencyUs: delivery.latencyUs,
    ...(delivery.ackData !== undefined && { ackData: delivery.ackData }),
    error: delivery.error,
  };
}

function failed(session: SessionRecord, error: string): Delivery {
  return { session, status: 'failed', latencyUs: 0, ackData: undefined, error };
}

function goneSession(sessionId: string): SessionRecord {
  return { sessionId, userId: '', clientType: '', nodeId: '', connectedAtMs: 0, lastSeenAtMs: 0, remoteAddress: '', userAgent: '' };
}
