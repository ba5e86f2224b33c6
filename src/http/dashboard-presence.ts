import type { Logger } from 'pino';
import type { PresenceService } from '../domain/presence-service.js';
import { isPushgateError } from '../errors.js';

/** One presence event as the dashboard lists it; `seq` orders them for polling (`after`). */
export interface RecentEvent {
  readonly seq: number;
  readonly kind: string;
  readonly userId: string;
  readonly sessionId: string;
  readonly clientType: string;
  readonly nodeId: string;
  readonly reason: string;
  readonly atMs: number;
  readonly sessionCount: number;
}

export interface RecentPresenceOptions {
  /** Events kept: the newest ones. */
  readonly size: number;
  /** The watch ends when no dashboard has asked for events for this long. */
  readonly idleMs: number;
}

/**
 * The newest presence events of every user, for the dashboard: one live watch on the presence
 * service (like a WatchPresence stream, counted against the node's stream bound), opened when a
 * dashboard first asks and closed once none has asked for `idleMs`. A watch that ends (overflow,
 * shutdown) is reopened by the next request; the gap is reported, never papered over.
 */
export class RecentPresence {
  private readonly ring: RecentEvent[] = [];
  private seq = 0;
  private watching: AbortController | undefined;
  private lastAskedMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Why the last watch ended on its own, if it did; shown on the page. */
  private problem: string | undefined;

  constructor(
    private readonly presence: PresenceService,
    private readonly options: RecentPresenceOptions,
    private readonly log: Logger,
  ) {}

  /** Events after `after` (a seq), oldest first, and whether the feed is being followed. */
  since(after: number): { events: RecentEvent[]; latest: number; live: boolean; problem: string | undefined } {
    this.lastAskedMs = Date.now();
    if (this.watching === undefined) this.start();
    return {
      events: this.ring.filter((e) => e.seq > after),
      latest: this.seq,
      live: this.watching !== undefined,
      problem: this.problem,
    };
  }

  /** Ends the watch now (tests, shutdown). */
  close(): void {
    this.watching?.abort();
  }

  /** Whether a watch is open: tests see it close when the dashboards go away. */
  get open(): boolean {
    return this.watching !== undefined;
  }

  private start(): void {
    const controller = new AbortController();
    let watch: ReturnType<PresenceService['watch']>;
    try {
      watch = this.presence.watch({ userIds: [], from: { kind: 'live' }, caller: '' }, controller.signal);
    } catch (err) {
      this.problem = isPushgateError(err) ? err.message : 'the presence feed could not be followed';
      return;
    }
    this.problem = undefined;
    this.watching = controller;
    this.idleTimer = setInterval(
      () => {
        if (Date.now() - this.lastAskedMs > this.options.idleMs) controller.abort();
      },
      Math.max(100, Math.floor(this.options.idleMs / 2)),
    );
    this.idleTimer.unref();
    void (async () => {
      try {
        for await (const event of watch) {
          this.ring.push({
            seq: ++this.seq,
            kind: event.kind,
            userId: event.userId,
            sessionId: event.session?.sessionId ?? '',
            clientType: event.session?.clientType ?? '',
            nodeId: event.session?.nodeId ?? '',
            reason: event.reason,
            atMs: event.atMs,
            sessionCount: event.sessionCount,
          });
          if (this.ring.length > this.options.size) this.ring.shift();
        }
      } catch (err) {
        if (!controller.signal.aborted) {
          this.problem = isPushgateError(err) ? err.message : 'the presence feed failed';
          this.log.warn({ err }, 'dashboard presence watch ended');
        }
      } finally {
        clearInterval(this.idleTimer);
        this.watching = undefined;
      }
    })();
  }
}
