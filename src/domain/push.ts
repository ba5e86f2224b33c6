import type { SessionRecord } from './session.js';

export type DeliveryStatus = 'acked' | 'timeout' | 'disconnected' | 'sent' | 'failed';

/** One validated push, as the transports hand it to the engine. */
export interface PushRequest {
  readonly userId: string;
  readonly event: string;
  /** Any JSON value; passed to Socket.IO as is. */
  readonly data: unknown;
  readonly clientTypes: readonly string[];
  readonly ackTimeoutMs: number;
  readonly noAck: boolean;
  readonly messageId: string;
}

export interface Delivery {
  readonly session: SessionRecord;
  status: DeliveryStatus;
  /** Emit to ack, microseconds; 0 unless acked. */
  latencyUs: number;
  /** The client's first ack argument; undefined unless acked with one. */
  ackData: unknown;
  /** Why it failed or disconnected; empty otherwise. */
  error: string;
}

export interface PushResult {
  readonly messageId: string;
  readonly deliveries: Delivery[];
  readonly acked: number;
  readonly timedOut: number;
  readonly failed: number;
}

/**
 * Hands a push to sessions held by one node and collects their outcomes. The local implementation
 * talks to this node's sockets; cluster mode adds one that forwards to another node.
 *
 * Contract: resolves with exactly one delivery per session, in the given order, no later than
 * `ackTimeoutMs` after the call (or at once when `signal` aborts, with the unsettled ones FAILED),
 * and leaves no timer, listener or pending ack behind once resolved.
 */
export interface SessionTransport {
  deliver(sessions: readonly SessionRecord[], push: PushRequest, signal: AbortSignal): Promise<Delivery[]>;
}

/** Closes sessions this node holds; each client is told `notice` first. Resolves with those closed. */
export interface SessionCloser {
  disconnect(sessions: readonly SessionRecord[], reason: 'kicked', notice: string): Promise<SessionRecord[]>;
}

/**
 * Reaches sessions held by other nodes (cluster mode). Same contract as SessionTransport, per node:
 * exactly one delivery per session, in the given order, by the ack timeout plus a grace period for
 * the reply, never a hang: sessions of a node that cannot be reached or does not answer are FAILED
 * with an error naming the node.
 */
export interface RemoteNodes {
  deliver(nodeId: string, sessions: readonly SessionRecord[], push: PushRequest, signal: AbortSignal): Promise<Delivery[]>;
  /** Closes sessions held by `nodeId`; resolves with those it closed (none if it cannot be reached). */
  disconnect(nodeId: string, sessions: readonly SessionRecord[], notice: string, signal: AbortSignal): Promise<SessionRecord[]>;
}

export function summarize(messageId: string, deliveries: Delivery[]): PushResult {
  let acked = 0;
  let timedOut = 0;
  let failed = 0;
  for (const delivery of deliveries) {
    if (delivery.status === 'acked') acked++;
    else if (delivery.status === 'timeout') timedOut++;
    else if (delivery.status === 'failed' || delivery.status === 'disconnected') failed++;
  }
  return { messageId, deliveries, acked, timedOut, failed };
}
