import { once } from 'node:events';
import { status as GrpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { PresenceEvent } from '../domain/presence.js';
import { isPushgateError, PushgateError } from '../errors.js';
import type { WatchPresenceRequest, WatchPresenceResponse } from '../gen/pushgate/v1/push_service.js';
import type { SessionRegistry } from '../registry/session-registry.js';
import { encodePresenceEvent } from './encode.js';
import { toGrpcError } from './status.js';
import { requestIdOf } from './unary.js';
import { requireId } from './validate.js';

const METHOD = 'WatchPresence';

/** Events read from the registry's feed per call while catching up. */
const PAGE_SIZE = 500;

type Call = ServerWritableStream<WatchPresenceRequest, WatchPresenceResponse>;

export interface PresenceStreamsDeps {
  readonly registry: SessionRegistry;
  /** Messages a reader may leave unread before its stream is ended with RESOURCE_EXHAUSTED. */
  readonly bufferSize: number;
  readonly log: Logger;
}

/** Where a stream starts: live only, after a snapshot, or after a cursor the client already saw. */
type StartFrom = { kind: 'live' } | { kind: 'snapshot' } | { kind: 'resume'; cursor: string };

/**
 * Serves WatchPresence. Each stream subscribes to registry events, filters by user, and writes
 * through the call's own buffer; the buffer's length is the backpressure signal. A stream that
 * reaches `bufferSize` unsent messages is unsubscribed at once (memory stays bounded) and ended
 * with RESOURCE_EXHAUSTED after what it already holds.
 *
 * A stream that starts from a snapshot or a cursor first catches up from the registry's feed
 * (`readAfter`), paced by the reader, while live events wait in a bounded queue; then it writes
 * the queued events the feed did not already cover, and goes live.
 */
export class PresenceStreams {
  private readonly active = new Set<PresenceStream>();

  constructor(private readonly deps: PresenceStreamsDeps) {}

  readonly handle = (call: Call): void => {
    let users: ReadonlySet<string>;
    let from: StartFrom;
    try {
      users = new Set(call.request.userIds.map((id, i) => requireId(id, `user_ids[${i}]`)));
      from = startOf(call.request);
    } catch (err) {
      call.emit('error', toGrpcError(err, this.deps.log, requestIdOf(call), METHOD));
      return;
    }
    const stream = new PresenceStream(call, users, this.deps, () => this.active.delete(stream));
    this.active.add(stream);
    stream.start(from).catch((err: unknown) => stream.fail(err));
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
  /** Live events held back while catching up, so order is kept. */
  private held: PresenceEvent[] | undefined;
  /**
   * Feed position this stream caught up to; undefined for a live-only stream. A live event not
   * after it was already written from the feed: a subscription may deliver an event after
   * `readAfter` returned it (at once for held events, and later too in an asynchronous registry).
   * It stays where catch-up ended: a live event's own cursor may lag this position on other
   * shards (cluster mode), so advancing to it could make written events look new again.
   */
  private position: string | undefined;
  /** The first event the subscription delivered while catching up, wanted or not: where live events begin. */
  private firstLive: PresenceEvent | undefined;
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

  async start(from: StartFrom): Promise<void> {
    if (from.kind !== 'live') this.held = [];
    // Subscribed before the snapshot or the first read, so every change after that point is either
    // in the feed pages or held (or both: `position` tells which to skip).
    this.unsubscribe = this.deps.registry.subscribe(
      (event) => this.onEvent(event),
      (reason) => this.lostEvents(reason),
    );
    if (from.kind === 'live') return;
    this.position = from.kind === 'snapshot' ? await this.writeSnapshot() : from.cursor;
    await this.catchUp(from.kind === 'resume');
    await this.releaseHeld();
  }

  /** Writes every session live now, then SNAPSHOT_COMPLETE; resolves to the feed position they reflect. */
  private async writeSnapshot(): Promise<string> {
    const { sessions, cursor } = await this.deps.registry.snapshot([...this.users]);
    const counts = new Map<string, number>();
    for (const session of sessions) counts.set(session.userId, (counts.get(session.userId) ?? 0) + 1);
    const at = Date.now();
    // A snapshot may be far larger than the buffer: it is paced by the reader instead of bounded,
    // while live events wait in `held` (bounded), then follow in order.
    for (const session of sessions) {
      const sessionCount = counts.get(session.userId)!;
      await this.writePaced({ kind: 'session_connected', userId: session.userId, session, reason: 'snapshot', atMs: at, sessionCount, cursor });
    }
    await this.writePaced({ kind: 'snapshot_complete', userId: '', session: undefined, reason: '', atMs: at, sessionCount: 0, cursor });
    return cursor;
  }

  /**
   * Writes the feed's events after `position`, page by page and paced like the snapshot, until a
   * read comes back empty or reaches where the subscription began (from there `held` has every
   * event; waiting for an empty read could take forever while sessions keep changing). When
   * resuming, the first read is what checks the client's cursor, so a bad one fails the stream
   * before anything is written.
   */
  private async catchUp(resuming: boolean): Promise<void> {
    for (let first = true; !this.closed; first = false) {
      const page = await this.readPage(resuming && first);
      if (page.length === 0) return;
      for (const event of page) {
        if (this.wants(event)) await this.writePaced(event);
      }
      this.position = page.at(-1)!.cursor;
      this.dropCoveredHeld();
      if (this.firstLive !== undefined && !this.isNew(this.firstLive)) return;
    }
  }

  private async readPage(clientCursor: boolean): Promise<PresenceEvent[]> {
    try {
      return await this.deps.registry.readAfter(this.position!, PAGE_SIZE);
    } catch (err) {
      throw clientCursor ? namingResumeAfter(err) : err;
    }
  }

  /** Held events the feed has now covered would only be skipped later; freeing them keeps `held` from overflowing on a long catch-up. */
  private dropCoveredHeld(): void {
    if (this.held === undefined) return;
    const firstNew = this.held.findIndex((event) => this.isNew(event));
    this.held.splice(0, firstNew === -1 ? this.held.length : firstNew);
  }

  /** Writes the held events the feed did not cover, in order (more may arrive meanwhile), then goes live. */
  private async releaseHeld(): Promise<void> {
    for (let i = 0; this.held !== undefined && i < this.held.length; i++) {
      const event = this.held[i]!;
      if (!this.isNew(event)) continue;
      await this.writePaced(event);
    }
    this.held = undefined;
    this.firstLive = undefined;
  }

  private async writePaced(event: PresenceEvent): Promise<void> {
    if (this.closed) return;
    if (!this.call.write({ event: encodePresenceEvent(event) })) await this.drained();
  }

  /** Resolves when the call's buffer has drained, or at once when the stream closes. */
  private async drained(): Promise<void> {
    await once(this.call, 'drain', { signal: this.stopped.signal }).catch(() => undefined);
  }

  private wants(event: PresenceEvent): boolean {
    return this.users.size === 0 || this.users.has(event.userId);
  }

  /** False for an event this stream already wrote from the feed. */
  private isNew(event: PresenceEvent): boolean {
    return this.position === undefined || this.deps.registry.follows(event, this.position);
  }

  private onEvent(event: PresenceEvent): void {
    if (this.held !== undefined) this.firstLive ??= event;
    if (!this.wants(event)) return;
    if (this.held !== undefined) {
      if (this.held.length >= this.deps.bufferSize) this.overflow();
      else this.held.push(event);
      return;
    }
    if (!this.isNew(event)) return;
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

  /** The registry could not deliver every event (a cluster node's feed fell behind): the reader must resume. */
  private lostEvents(reason: string): void {
    this.unsubscribe = undefined;
    this.deps.log.warn({ reason }, 'presence stream missed events; ending it');
    this.finish({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: `presence stream missed events: ${reason}; resume with resume_after set to the last cursor received, or resubscribe with include_snapshot`,
    });
  }

  private overflow(): void {
    if (this.closed) return;
    this.deps.log.info({ bufferSize: this.deps.bufferSize }, 'presence stream reader fell behind; ending its stream');
    this.finish({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: `presence stream fell more than ${this.deps.bufferSize} events behind (PUSHGATE_PRESENCE_BUFFER); resume with resume_after set to the last cursor received, or resubscribe with include_snapshot`,
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

/** Longer than any cursor a registry hands out (cluster cursors hold a position per shard); refused before it reaches the registry. */
const MAX_CURSOR_LENGTH = 65_536;

function startOf(request: WatchPresenceRequest): StartFrom {
  const resuming = request.resumeAfter !== '';
  if (request.includeSnapshot && resuming) {
    throw new PushgateError(
      'invalid_argument',
      'include_snapshot and resume_after cannot be combined: resume_after continues a stream from its last cursor, include_snapshot starts over',
    );
  }
  if (request.resumeAfter.length > MAX_CURSOR_LENGTH) {
    throw new PushgateError('invalid_argument', `resume_after must be at most ${MAX_CURSOR_LENGTH} characters`);
  }
  if (request.includeSnapshot) return { kind: 'snapshot' };
  if (resuming) return { kind: 'resume', cursor: request.resumeAfter };
  return { kind: 'live' };
}

/** The registry's refusal of the client's own cursor, worded to name the request field it came from. */
function namingResumeAfter(err: unknown): unknown {
  if (!isPushgateError(err) || (err.code !== 'invalid_argument' && err.code !== 'cursor_expired')) return err;
  return new PushgateError(err.code, `resume_after: ${err.message}`, { cause: err, details: err.details });
}
