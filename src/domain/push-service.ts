import type { SessionRegistry } from '../registry/session-registry.js';
import { summarize, type Delivery, type PushRequest, type PushResult, type RemoteNodes, type SessionCloser, type SessionTransport } from './push.js';
import type { SessionFilter, SessionRecord } from './session.js';
import { PushgateError } from '../errors.js';
import { untilAborted } from './abortable.js';

export interface PushServiceDeps {
  readonly nodeId: string;
  readonly registry: SessionRegistry;
  /** Delivers to the sessions this node holds. */
  readonly local: SessionTransport;
  /** Closes sessions this node holds. */
  readonly closer: SessionCloser;
  /** Reaches other nodes' sessions; NO_OTHER_NODES on a single node. */
  readonly remote: RemoteNodes;
}

/** A single node reaches no other node: a session held elsewhere (never the case with the memory registry) fails. */
export const NO_OTHER_NODES: RemoteNodes = {
  deliver: async (_nodeId, sessions) => sessions.map(unreachable),
  disconnect: async () => [],
};

/**
 * The fan-out: one registry lookup, then the sessions are grouped by owning node (one message per
 * node, not per session) and every node's part is delivered at once. Free of transport types so it
 * can be driven by gRPC, a CLI or a test alike.
 */
export class PushService {
  constructor(private readonly deps: PushServiceDeps) {}

  async push(request: PushRequest, signal: AbortSignal): Promise<PushResult> {
    const sessions = await untilAborted(this.deps.registry.lookup(request.userId, { clientTypes: request.clientTypes }), signal);
    if (sessions.length === 0 || signal.aborted) return summarize(request.messageId, []);

    const { nodeId, local, remote } = this.deps;
    // The common case on one node: every session is ours, hand the lookup result over as is.
    if (sessions.every((s) => s.nodeId === nodeId)) {
      return summarize(request.messageId, await local.deliver(sessions, request, signal));
    }
    const parts = await Promise.all(
      [...byNode(sessions)].map(([owner, owned]) =>
        owner === nodeId ? local.deliver(owned, request, signal) : remote.deliver(owner, owned, request, signal),
      ),
    );
    // Back in lookup order (oldest connection first), whichever node answered first.
    const bySession = new Map<string, Delivery>();
    for (const part of parts) for (const delivery of part) bySession.set(delivery.session.sessionId, delivery);
    return summarize(request.messageId, sessions.map((s) => bySession.get(s.sessionId)!));
  }

  listSessions(userId: string, filter: SessionFilter, signal: AbortSignal): Promise<SessionRecord[]> {
    return untilAborted(this.deps.registry.lookup(userId, filter), signal);
  }

  /**
   * Closes the matching sessions on whichever nodes hold them; resolves with those closed. If a
   * node holding some of them does not answer, the others are still closed and the call fails with
   * `node_unreachable` naming it: a retry closes what is left (closed sessions are gone).
   */
  async disconnect(userId: string, filter: SessionFilter, notice: string, signal: AbortSignal): Promise<SessionRecord[]> {
    const sessions = await this.listSessions(userId, filter, signal);
    const { nodeId, closer, remote } = this.deps;
    const groups = [...byNode(sessions)];
    const parts = await Promise.allSettled(
      groups.map(([owner, owned]) =>
        owner === nodeId ? closer.disconnect(owned, 'kicked', notice) : remote.disconnect(owner, owned, notice, signal),
      ),
    );
    const failures = parts.flatMap((part, i) => (part.status === 'rejected' ? [`${groups[i]![0]}: ${(part.reason as Error).message}`] : []));
    if (failures.length > 0) {
      const closed = parts.reduce((count, part) => count + (part.status === 'fulfilled' ? part.value.length : 0), 0);
      throw new PushgateError('node_unreachable', `closed ${closed} session(s), but not those held by ${failures.join('; ')}`);
    }
    return parts.flatMap((part) => (part.status === 'fulfilled' ? part.value : []));
  }

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

function unreachable(session: SessionRecord): Delivery {
  return {
    session,
    status: 'failed',
    latencyUs: 0,
    ackData: undefined,
    error: `session is held by node ${session.nodeId}, which this node cannot reach without cluster mode`,
  };
}
