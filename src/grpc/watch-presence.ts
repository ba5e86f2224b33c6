import { once } from 'node:events';
import { status as GrpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { PresenceEvent } from '../domain/presence.js';
import type { WatchPresenceRequest, WatchPresenceResponse } from '../gen/pushgate/v1/push_service.js';
import type { SessionRegistry } from '../registry/session-registry.js';
import { encodePresenceEvent } from './encode.js';
import { toGrpcError } from './status.js';
import { requestIdOf } from './unary.js';
import { requireId } from './validate.js';

const METHOD = 'WatchPresence';

type Call = ServerWritableStream<WatchPresenceRequest, WatchPresenceResponse>;

export interface PresenceStreamsDeps {
  readonly registry: SessionRegistry;
  /** Messages a reader may leave unread before its stream is ended with RESOURCE_EXHAUSTED. */
  readonly bufferSize: number;
  readonly log: Logger;
}

/**
 * Serves WatchPresence. Each stream subscribes to registry events, filters by user, and writes
 * through the call's own buffer; the buffer's length is the backpressure signal. A stream that
 * reaches `bufferSize` unsent messages is unsubscribed at once (memory stays bounded) and ended
 * with RESOURCE_EXHAUSTED after what it already holds.
 */
export class PresenceStreams {
  private readonly active = new Set<PresenceStream>();

  constructor(private readonly deps: PresenceStreamsDeps) {}

  readonly handle = (call: Call): void => {
    let users: ReadonlySet<string>;
    try {
      users = new Set(call.request.userIds.map((id, i) => requireId(id, `user_ids[${i}]`)));
    } catch (err) {
      call.emit('error', toGrpcError(err, this.deps.log, requestIdOf(call), METHOD));
      return;
    }
    const stream = new PresenceStream(call, users, this.deps, () => this.active.delete(stream));
    this.active.add(stream);
    stream.start(call.request.includeSnapshot).catch((err: unknown) => stream.fail(err));
  };

  get size(): number {
    return this.active.size;
  }

  /**
   * Shutdown is about to close every local session at once. That burst is written whole to each
   * stream rather than mistaken for a slow reader (it arrives faster than any reader can take it);
   * memory stays bounded by the sessions this node holds, and `endAll` follows.
   */
  acceptFinalBurst(): void {
    for (const stream of this.active) stream.unbounded = true;
  }

  /** Ends every stream with OK, e.g. at shutdown, after the last events were written. */
  endAll(): void {
    for (const stream of [...this.active]) stream.end();
  }
}

class PresenceStream {
  private unsubscribe: (() => void) | undefined;
  /** Live events held back while the snapshot is being written, so order is kept. */
  private held: PresenceEvent[] | undefined;
  private closed = false;
  /** Aborted when the stream closes: ends any wait for the reader. */
  private readonly stopped = new AbortController();
  /** Set for the shutdown burst: no overflow check (see PresenceStreams.acceptFinalBurst). */
  unbounded = false;

  constructor(
    private readonly call: Call,
    private readonly users: ReadonlySet<string>,
    private readonly deps: PresenceStreamsDeps,
    private readonly onClosed: () => void,
  ) {
    call.once('cancelled', () => this.close());
    call.once('close', () => this.close());
    call.once('error', () => this.close());
  }

  async start(includeSnapshot: boolean): Promise<void> {
    if (includeSnapshot) this.held = [];
    this.unsubscribe = this.deps.registry.subscribe((event) => this.onEvent(event));
    if (!includeSnapshot) return;
    const sessions = await this.deps.registry.snapshot([...this.users]);
    const counts = new Map<string, number>();
    for (const session of sessions) counts.set(session.userId, (counts.get(session.userId) ?? 0) + 1);
    const at = Date.now();
    // A snapshot may be far larger than the buffer: it is paced by the reader instead of bounded,
    // while live events wait in `held` (bounded), then follow in order.
    for (const session of sessions) {
      const sessionCount = counts.get(session.userId)!;
      await this.writePaced({ kind: 'session_connected', userId: session.userId, session, reason: 'snapshot', atMs: at, sessionCount });
    }
    await this.writePaced({ kind: 'snapshot_complete', userId: '', session: undefined, reason: '', atMs: at, sessionCount: 0 });
    for (let i = 0; this.held !== undefined && i < this.held.length; i++) await this.writePaced(this.held[i]!);
    this.held = undefined;
  }

  private async writePaced(event: PresenceEvent): Promise<void> {
    if (this.closed) return;
    if (!this.call.write({ event: encodePresenceEvent(event) })) await this.drained();
  }

  /** Resolves when the call's buffer has drained, or at once when the stream closes. */
  private async drained(): Promise<void> {
    await once(this.call, 'drain', { signal: this.stopped.signal }).catch(() => undefined);
  }

  private onEvent(event: PresenceEvent): void {
    if (this.users.size > 0 && !this.users.has(event.userId)) return;
    if (this.held !== undefined) {
      if (this.held.length >= this.deps.bufferSize) this.overflow();
      else this.held.push(event);
      return;
    }
    this.write(event);
  }

  private write(event: PresenceEvent): void {
    if (this.closed) return;
    if (!this.unbounded && this.call.writableLength >= this.deps.bufferSize) {
      this.overflow();
      return;
    }
    this.call.write({ event: encodePresenceEvent(event) });
  }

  private overflow(): void {
    if (this.closed) return;
    this.deps.log.info({ bufferSize: this.deps.bufferSize }, 'presence stream reader fell behind; ending its stream');
    this.finish({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: `presence stream fell more than ${this.deps.bufferSize} events behind (PUSHGATE_PRESENCE_BUFFER); resubscribe with include_snapshot`,
    });
  }

  fail(err: unknown): void {
    this.finish(toGrpcError(err, this.deps.log, requestIdOf(this.call), METHOD));
  }

  end(): void {
    this.finish(undefined);
  }

  private finish(error: { code: GrpcStatus; details: string } | undefined): void {
    if (this.closed) return;
    this.close();
    if (error === undefined) this.call.end();
    else this.call.emit('error', error);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopped.abort();
    this.held = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.onClosed();
  }
}
