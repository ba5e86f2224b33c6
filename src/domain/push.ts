import type { SessionRecord } from './session.js';

export type DeliveryStatus = 'acked' | 'timeout' | 'disconnected' | 'sent' | 'failed';

/** What a node needs to hand a push to the sockets it holds: no user, no filter, those were resolved before. */
export interface PushMessage {
  readonly event: string;
  /** Any JSON value; passed to Socket.IO as is. */
  readonly data: unknown;
  readonly ackTimeoutMs: number;
  readonly noAck: boolean;
  readonly messageId: string;
}

/** One validated push, as the transports hand it to the engine. */
export interface PushRequest extends PushMessage {
  readonly userId: string;
  readonly clientTypes: readonly string[];
}

/** How one session took a push, as the node holding it reports it. */
export interface Outcome {
  status: DeliveryStatus;
  /** Emit to ack, microseconds; 0 unless acked. */
  latencyUs: number;
  /** The client's first ack argument; undefined unless acked with one. */
  ackData: unknown;
  /** Why it failed or disconnected; empty otherwise. */
  error: string;
}

/** One session's outcome with the session it is about: what the caller gets. */
export interface Delivery extends Outcome {
  readonly session: SessionRecord;
}

export interface PushResult {
  readonly messageId: string;
  readonly deliveries: Delivery[];
  readonly acked: number;
  readonly timedOut: number;
  readonly failed: number;
}

export function outcome(status: DeliveryStatus, error = ''): Outcome {
  return { status, latencyUs: 0, ackData: undefined, error };
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
