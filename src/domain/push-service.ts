import type { SessionRegistry } from '../registry/session-registry.js';
import { summarize, type Delivery, type PushRequest, type PushResult, type SessionTransport } from './push.js';
import type { SessionFilter, SessionRecord } from './session.js';

export interface PushServiceDeps {
  readonly nodeId: string;
  readonly registry: SessionRegistry;
  /** Delivers to the sessions this node holds. */
  readonly local: SessionTransport;
}

/**
 * The fan-out: one registry lookup, then each owning node's transport delivers to its sessions.
 * Free of transport types so it can be driven by gRPC, a CLI or a test alike.
 */
export class PushService {
  constructor(private readonly deps: PushServiceDeps) {}

  async push(request: PushRequest, signal: AbortSignal): Promise<PushResult> {
    const sessions = await this.deps.registry.lookup(request.userId, { clientTypes: request.clientTypes });
    if (sessions.length === 0 || signal.aborted) return summarize(request.messageId, []);

    const { nodeId, local } = this.deps;
    // The common case on one node: every session is ours, hand the lookup result over as is.
    if (sessions.every((s) => s.nodeId === nodeId)) {
      return summarize(request.messageId, await local.deliver(sessions, request, signal));
    }
    const mine = sessions.filter((s) => s.nodeId === nodeId);
    const delivered = mine.length > 0 ? await local.deliver(mine, request, signal) : [];
    const foreign = sessions.filter((s) => s.nodeId !== nodeId).map(unreachable);
    return summarize(request.messageId, [...delivered, ...foreign]);
  }

  listSessions(userId: string, filter: SessionFilter): Promise<SessionRecord[]> {
    return this.deps.registry.lookup(userId, filter);
  }
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
