import type { Cancellation } from './cancellation.js';
import type { DisconnectReason } from './presence.js';
import type { Outcome, PushMessage } from './push.js';

/**
 * Hands a push to sessions held by this node and collects their outcomes (the edge's sockets).
 *
 * Contract: resolves with exactly one outcome per session id, in the given order, no later than
 * `ackTimeoutMs` after the call (or at once when `signal` aborts, with the unsettled ones FAILED),
 * and leaves no timer, listener or pending ack behind once resolved. A session id this node does
 * not hold (any more) is DISCONNECTED.
 *
 * `onOutcome`, when given, may be told a session's final outcome (by its index in `sessionIds`) as
 * soon as it is known, before the promise resolves, so a batch can report a user early; it is an
 * early notice only, at most once per index, and the resolved list stays the whole answer.
 */
export interface SessionTransport {
  deliver(
    sessionIds: readonly string[],
    message: PushMessage,
    signal: Cancellation,
    onOutcome?: (index: number, outcome: Outcome) => void,
  ): Promise<Outcome[]>;
}

/** Why a caller closes sessions, as presence reports it: a backend's kick, or the per-user session cap. */
export type CloseReason = Extract<DisconnectReason, 'kicked' | 'too_many_sessions'>;

/**
 * Closes sessions this node holds; each client is told `notice` first. Resolves, once they are out
 * of the registry, with the ids of those it closed (ids it does not hold are skipped).
 */
export interface SessionCloser {
  disconnect(sessionIds: readonly string[], reason: CloseReason, notice: string): Promise<string[]>;
}

/**
 * Reaches sessions held by other nodes (cluster mode). Same contract as SessionTransport, per node:
 * exactly one outcome per session id, in the given order, by the ack timeout plus a grace period
 * for the reply, never a hang: sessions of a node that cannot be reached or does not answer are
 * FAILED with an error naming the node.
 */
export interface RemoteNodes {
  deliver(nodeId: string, sessionIds: readonly string[], message: PushMessage, signal: Cancellation): Promise<Outcome[]>;
  /** Closes sessions held by `nodeId`; resolves with the ids it closed; rejects if the node does not confirm. */
  disconnect(nodeId: string, sessionIds: readonly string[], reason: CloseReason, notice: string, signal: Cancellation): Promise<string[]>;
}

/** A single node reaches no other node: a session held elsewhere (never the case with the memory registry) fails. */
export const NO_OTHER_NODES: RemoteNodes = {
  deliver: async (nodeId, sessionIds) =>
    sessionIds.map(() => ({
      status: 'failed',
      latencyUs: 0,
      ackData: undefined,
      error: `session is held by node ${nodeId}, which this node cannot reach without cluster mode`,
    })),
  disconnect: async () => [],
};
