import type { Cancellation } from './cancellation.js';
import type { Outcome, PushMessage } from './push.js';
import type { SessionRecord } from './session.js';
import type { RemoteNodes, SessionTransport } from './session-transport.js';

/**
 * Hands one message to sessions wherever they are: one delivery per owning node (a bus request for
 * another node, this node's sockets directly), outcomes back in the sessions' order.
 */
export class NodeDelivery {
  constructor(private readonly deps: { readonly nodeId: string; readonly local: SessionTransport; readonly remote: RemoteNodes }) {}

  /**
   * Resolves with one outcome per session, in the given order. `onOutcome`, when given, hears of
   * outcomes as soon as each is known: this node's sessions one by one, another node's all at its
   * reply, and every node's group as it completes (so an outcome may be told twice).
   */
  deliver(
    sessions: readonly SessionRecord[],
    message: PushMessage,
    signal: Cancellation,
    onOutcome?: (index: number, outcome: Outcome) => void,
  ): Promise<Outcome[]> {
    const { nodeId, local } = this.deps;
    // The common case on one node: every session is ours, one delivery in lookup order (no async layer of its own).
    if (sessions.every((s) => s.nodeId === nodeId)) return local.deliver(idsOf(sessions), message, signal, onOutcome);
    return this.deliverAcrossNodes(sessions, message, signal, onOutcome);
  }

  private async deliverAcrossNodes(
    sessions: readonly SessionRecord[],
    message: PushMessage,
    signal: Cancellation,
    onOutcome: ((index: number, outcome: Outcome) => void) | undefined,
  ): Promise<Outcome[]> {
    const { nodeId, local, remote } = this.deps;
    const groups = otherNodesFirst(byNode(sessions), nodeId);
    const index = new Map(sessions.map((session, i) => [session.sessionId, i]));
    const parts = await Promise.all(
      groups.map(([owner, owned]) => {
        const early = onOutcome && ((i: number, o: Outcome) => onOutcome(index.get(owned[i]!.sessionId)!, o));
        const part =
          owner === nodeId ? local.deliver(idsOf(owned), message, signal, early) : remote.deliver(owner, idsOf(owned), message, signal);
        // A node's last outcome, or another node's whole reply, may be the first ack a caller waits for.
        if (early === undefined) return part;
        return part.then((outcomes) => {
          for (const [i, o] of outcomes.entries()) early(i, o);
          return outcomes;
        });
      }),
    );
    // Back in lookup order (oldest connection first), whichever node answered first.
    const outcomes: Outcome[] = new Array(sessions.length);
    for (const [g, [, owned]] of groups.entries()) {
      for (const [i, session] of owned.entries()) outcomes[index.get(session.sessionId)!] = parts[g]![i]!;
    }
    return outcomes;
  }
}

export function idsOf(sessions: readonly SessionRecord[]): string[] {
  return sessions.map((s) => s.sessionId);
}

/** Other nodes' groups first: their requests travel through the bus while this node emits to its own sockets. */
export function otherNodesFirst<T>(groups: Map<string, T>, nodeId: string): [string, T][] {
  return [...groups].sort(([a], [b]) => Number(a === nodeId) - Number(b === nodeId));
}

export function byNode(sessions: readonly SessionRecord[]): Map<string, SessionRecord[]> {
  const groups = new Map<string, SessionRecord[]>();
  for (const session of sessions) {
    const group = groups.get(session.nodeId);
    if (group === undefined) groups.set(session.nodeId, [session]);
    else group.push(session);
  }
  return groups;
}
