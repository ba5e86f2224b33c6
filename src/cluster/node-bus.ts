import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Cancel, type Cancellation } from '../domain/cancellation.js';
import type { PushMessage } from '../domain/push.js';
import type { CloseReason } from '../domain/session-transport.js';
import type { BusTransport } from './bus-transport.js';

/** A request one node sends another. */
export type BusRequest =
  | { readonly type: 'push'; readonly sessionIds: readonly string[]; readonly push: PushMessage }
  | {
      readonly type: 'disconnect';
      readonly sessionIds: readonly string[];
      /** Absent from nodes older than the per-user cap: they only kicked. */
      readonly reason?: CloseReason;
      readonly notice: string;
    };

/** Everything on a node's channel: requests (and their cancellation) from others, replies to its own. */
type Envelope =
  | { readonly kind: 'request'; readonly id: string; readonly from: string; readonly expiresAtMs: number; readonly body: BusRequest }
  | { readonly kind: 'cancel'; readonly id: string; readonly from: string }
  | { readonly kind: 'reply'; readonly id: string; readonly from: string; readonly body: unknown };

/**
 * Serves one request; `signal` aborts when the requester cancels or the bus closes. The reply is
 * useful only within `remainingMs`: after that the requester has given up.
 */
export type BusHandler = (request: BusRequest, from: string, signal: Cancellation, remainingMs: number) => Promise<unknown>;

/** Why a request to another node produced no reply; the message names the node. */
export class NodeUnreachableError extends Error {
  override readonly name = 'NodeUnreachableError';
}

/** Told of every request this node sent, once settled (metrics); must be cheap and must not throw. */
export interface BusObserver {
  requested(type: BusRequest['type'], outcome: 'ok' | 'timeout' | 'error', seconds: number): void;
}

interface Pending {
  readonly resolve: (body: unknown) => void;
  readonly reject: (err: Error, outcome?: 'timeout' | 'error') => void;
}

/**
 * Request/reply between nodes, over any BusTransport (Redis sharded pub/sub, or in memory in
 * tests): each node listens for requests and for the replies to its requests. Sending reports how
 * many listeners received a message, so a request to a node that is not listening fails at once;
 * one that is listening but silent fails at the caller's timeout. Each request carries its expiry
 * on the cluster's shared clock, and a node that receives it too late (it was paused or cut off)
 * drops it, so nothing reported FAILED is delivered afterwards. Nothing is retried.
 */
export class NodeBus {
  private readonly pending = new Map<string, Pending>();
  /** Requests this node is serving, by requester and id, so a cancel can stop them. */
  private readonly serving = new Map<string, Cancel>();
  private handler: BusHandler | undefined;

  constructor(
    private readonly deps: {
      readonly transport: BusTransport;
      readonly nodeId: string;
      readonly log: Logger;
      /** The cluster's shared clock (Redis server time), so a request's expiry means the same on every node. */
      readonly now: () => number;
      readonly observer?: BusObserver;
    },
  ) {}

  async start(handler: BusHandler): Promise<void> {
    this.handler = handler;
    await this.deps.transport.listen(this.deps.nodeId, (message) => this.receive(message));
  }

  /**
   * Sends a request and resolves with the reply. Rejects with NodeUnreachableError when the
   * transport cannot take it, no node listens, no reply comes within `timeoutMs`, or `signal` aborts (the
   * target is then told to stop). Leaves nothing behind once settled.
   */
  request(nodeId: string, body: BusRequest, timeoutMs: number, signal: Cancellation): Promise<unknown> {
    const { observer } = this.deps;
    if (signal.aborted) {
      observer?.requested(body.type, 'error', 0);
      return Promise.reject(new NodeUnreachableError(`call cancelled before node ${nodeId} was asked`));
    }
    const startedAt = observer === undefined ? 0 : performance.now();
    const id = randomUUID();
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: 'ok' | 'timeout' | 'error'): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        observer?.requested(body.type, outcome, (performance.now() - startedAt) / 1000);
      };
      const onAbort = (): void => {
        settle('error');
        void this.send(nodeId, { kind: 'cancel', id, from: this.deps.nodeId }).catch(() => undefined);
        reject(new NodeUnreachableError(`call cancelled or its deadline passed before node ${nodeId} answered`));
      };
      this.pending.set(id, {
        resolve: (reply) => {
          settle('ok');
          resolve(reply);
        },
        reject: (err, outcome = 'error') => {
          settle(outcome);
          reject(err);
        },
      });
      // On the wire first: the cross-node push waits on this message, not on the bookkeeping below,
      // which runs while it travels (a reply cannot arrive before this turn of the event loop ends).
      const expiresAtMs = this.deps.now() + timeoutMs;
      this.send(nodeId, { kind: 'request', id, from: this.deps.nodeId, expiresAtMs, body }).then(
        (listeners) => {
          if (listeners === 0)
            this.fail(
              id,
              `node ${nodeId} is registered but not listening (it may have died; its sessions are reaped when its lease lapses)`,
            );
        },
        (err: unknown) => this.fail(id, `cannot reach node ${nodeId}: ${(err as Error).message}`),
      );
      timer = setTimeout(() => this.fail(id, `node ${nodeId} did not answer within ${timeoutMs} ms`, 'timeout'), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Requests awaiting a reply plus requests being served: zero when the bus is idle. */
  get inFlight(): number {
    return this.pending.size + this.serving.size;
  }

  /** Stops listening; pending requests fail, served ones are aborted. */
  close(): void {
    this.deps.transport.close();
    for (const id of [...this.pending.keys()]) this.fail(id, 'this node is shutting down');
    for (const cancel of this.serving.values()) cancel.abort();
    this.serving.clear();
  }

  private fail(id: string, message: string, outcome: 'timeout' | 'error' = 'error'): void {
    this.pending.get(id)?.reject(new NodeUnreachableError(message), outcome);
  }

  private send(nodeId: string, envelope: Envelope): Promise<number> {
    return this.deps.transport.send(nodeId, JSON.stringify(envelope));
  }

  private receive(message: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch (err) {
      this.deps.log.warn({ err }, 'ignoring a malformed cluster bus message');
      return;
    }
    if (!isEnvelope(envelope)) {
      this.deps.log.warn({ message: message.slice(0, 200) }, 'ignoring a cluster bus message of unknown shape');
      return;
    }
    switch (envelope.kind) {
      case 'reply':
        this.pending.get(envelope.id)?.resolve(envelope.body);
        return;
      case 'cancel':
        this.serving.get(`${envelope.from}/${envelope.id}`)?.abort();
        return;
      case 'request':
        void this.serve(envelope);
        return;
    }
  }

  private async serve(envelope: Extract<Envelope, { kind: 'request' }>): Promise<void> {
    // The requester has already reported this request's outcome (FAILED, at its timeout); acting
    // on it now, say after this node was paused, would deliver a push the caller was told failed.
    const remainingMs = envelope.expiresAtMs - this.deps.now();
    if (remainingMs <= 0) {
      this.deps.log.info(
        { from: envelope.from, lateMs: -remainingMs },
        'dropping a request from another node that expired before it was served',
      );
      return;
    }
    const key = `${envelope.from}/${envelope.id}`;
    const cancel = new Cancel();
    this.serving.set(key, cancel);
    try {
      const body = await this.handler!(envelope.body, envelope.from, cancel, remainingMs);
      if (cancel.aborted) return;
      await this.send(envelope.from, { kind: 'reply', id: envelope.id, from: this.deps.nodeId, body });
    } catch (err) {
      // The requester fails its sessions at its own timeout; nothing else to tell it.
      this.deps.log.warn({ err, from: envelope.from }, 'serving a request from another node failed');
    } finally {
      this.serving.delete(key);
    }
  }
}

/** Other software (or an older pushgate) on the same channel must not crash this node: check before acting. */
function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const { kind, id, from, expiresAtMs } = value as Record<string, unknown>;
  if (typeof id !== 'string' || typeof from !== 'string') return false;
  if (kind === 'request')
    return typeof expiresAtMs === 'number' && Number.isFinite(expiresAtMs) && typeof (value as { body?: unknown }).body === 'object';
  return kind === 'reply' || kind === 'cancel';
}
