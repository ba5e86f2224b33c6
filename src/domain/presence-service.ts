import { PushgateError } from '../errors.js';
import { PresenceWatch, type WatchOptions, type WatchStart } from './presence-watch.js';

export interface WatchRequest {
  /** The users whose events to watch; empty for every user. */
  readonly userIds: readonly string[];
  readonly from: WatchStart;
  /**
   * The authenticated caller's name, counted against `maxStreamsPerCaller`; '' for a caller that
   * is not authenticated (loopback or explicitly allowed), counted against the node's bound only.
   */
  readonly caller: string;
}

/** The feed and the per-watch bounds (see WatchOptions), and how many watches may be open. */
export interface PresenceServiceOptions extends WatchOptions {
  /** Watches open at once on this node; one more is refused with `too_many_streams`. */
  readonly maxStreams: number;
  /** Watches one named caller may have open at once; one more is refused with `too_many_streams`. */
  readonly maxStreamsPerCaller: number;
}

/**
 * Presence for any reader — the gRPC WatchPresence stream today, a dashboard or a CLI tomorrow:
 * each watch is an async iterator of events in order, paced by its reader and bounded in memory
 * (see PresenceWatch). The service knows every open watch, so shutdown can end them all, and it
 * bounds how many are open, on the node and per caller.
 */
export class PresenceService {
  private readonly active = new Set<PresenceWatch>();
  /** Open watches per named caller; a caller leaves the map with its last watch. */
  private readonly perCaller = new Map<string, number>();

  constructor(private readonly options: PresenceServiceOptions) {}

  /**
   * Starts a watch; it ends when `signal` aborts, when its reader stops iterating, or on its own
   * (overflow, shutdown). Throws `too_many_streams` when the node or the caller is at its bound.
   */
  watch(request: WatchRequest, signal: AbortSignal): PresenceWatch {
    if (signal.aborted) throw new PushgateError('cancelled', 'call cancelled before its presence stream started');
    const { caller } = request;
    this.checkRoom(caller);
    const watch: PresenceWatch = new PresenceWatch(this.options, new Set(request.userIds), request.from, signal, () => {
      this.active.delete(watch);
      if (caller !== '') this.countCaller(caller, -1);
    });
    this.active.add(watch);
    if (caller !== '') this.countCaller(caller, 1);
    return watch;
  }

  /** Open watches: lets tests and metrics see that readers clean up. */
  get size(): number {
    return this.active.size;
  }

  /**
   * Shutdown is about to close every local session at once. That burst is queued whole for each
   * watch rather than mistaken for a slow reader (it arrives faster than any reader can take it);
   * memory stays bounded by the sessions this node holds, and `endAll` follows.
   */
  acceptFinalBurst(): void {
    for (const watch of this.active) watch.unbounded = true;
  }

  /** Ends every watch, e.g. at shutdown: each reader still gets what was queued for it, then the end. */
  endAll(): void {
    for (const watch of [...this.active]) watch.finish();
  }

  private checkRoom(caller: string): void {
    const { maxStreams, maxStreamsPerCaller } = this.options;
    if (this.active.size >= maxStreams) {
      throw new PushgateError(
        'too_many_streams',
        `this node already has ${this.active.size} presence streams open, its limit (PUSHGATE_MAX_WATCH_STREAMS); close one or try another node`,
      );
    }
    const mine = caller === '' ? 0 : (this.perCaller.get(caller) ?? 0);
    if (mine >= maxStreamsPerCaller) {
      throw new PushgateError(
        'too_many_streams',
        `caller "${caller}" already has ${mine} presence streams open, the limit per caller (PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER); close one first`,
      );
    }
  }

  private countCaller(caller: string, delta: 1 | -1): void {
    const count = (this.perCaller.get(caller) ?? 0) + delta;
    if (count > 0) this.perCaller.set(caller, count);
    else this.perCaller.delete(caller);
  }
}

export type { PresenceWatch, WatchStart };
