import type { Logger } from 'pino';
import type { SessionRecord } from '../domain/session.js';
import { type RegistryKeys, userKey } from './redis-keys.js';
import type { RegistryScripts } from './registry-scripts.js';

/** Sessions per touch script: keeps each script short, and its argument list well within what a call can spread. */
const TOUCHES_PER_SCRIPT = 2000;

/** A last_seen_at refresh waiting for the next batch. */
interface Touch {
  readonly userId: string;
  readonly atMs: number;
}

/**
 * Batches last_seen_at refreshes: pongs come every ping interval per session, so writing each
 * would cost a round trip per session per interval. They are written once per `flushMs`, one
 * script per shard; until then reads see them through `overlay`, so a node reads its own writes.
 * A lost batch is retried by the next pong.
 */
export class LastSeenBatcher {
  private touches = new Map<string, Touch>();
  /** The batch being written: still overlaid on reads until Redis has it. */
  private flushing = new Map<string, Touch>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      readonly scripts: RegistryScripts;
      readonly keys: RegistryKeys;
      readonly flushMs: number;
      readonly log: Logger;
    },
  ) {
    this.timer = setInterval(() => void this.flush(), deps.flushMs);
    this.timer.unref();
  }

  touch(userId: string, sessionId: string, atMs: number): void {
    const pending = this.touches.get(sessionId);
    if (pending === undefined || pending.atMs < atMs) this.touches.set(sessionId, { userId, atMs });
  }

  /** A session that left: its refreshes are moot. */
  forget(sessionId: string): void {
    this.touches.delete(sessionId);
    this.flushing.delete(sessionId);
  }

  /**
   * Takes the refreshes Redis may not have yet; call it before a read is sent (a batch flushed
   * while the read is in flight may land after it), and apply the result to what the read returns.
   */
  overlay(): (sessions: SessionRecord[]) => SessionRecord[] {
    const pending = [this.flushing, this.touches];
    return (sessions) => {
      for (const batch of pending) {
        if (batch.size === 0) continue;
        for (const session of sessions) {
          const touch = batch.get(session.sessionId);
          if (touch !== undefined && touch.userId === session.userId && touch.atMs > session.lastSeenAtMs)
            session.lastSeenAtMs = touch.atMs;
        }
      }
      return sessions;
    };
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async flush(): Promise<void> {
    if (this.touches.size === 0 || this.flushing.size > 0) return;
    this.flushing = this.touches;
    this.touches = new Map();
    // Per shard: each session's user hash (the script's keys), its last_seen_at field and time (its arguments).
    const byShard = new Map<number, { keys: string[]; args: (string | number)[] }>();
    for (const [sessionId, { userId, atMs }] of this.flushing) {
      const shard = this.deps.keys.shardOf(userId);
      const batch = byShard.get(shard) ?? { keys: [], args: [] };
      byShard.set(shard, batch);
      batch.keys.push(this.deps.keys.shard(shard).user(userKey(userId)));
      batch.args.push(`s:${sessionId}`, atMs);
    }
    for (const { keys, args } of byShard.values()) {
      for (let i = 0; i < keys.length; i += TOUCHES_PER_SCRIPT) {
        const part = keys.slice(i, i + TOUCHES_PER_SCRIPT);
        await this.deps.scripts.run('pgTouch', part, args.slice(2 * i, 2 * (i + part.length))).catch((err: unknown) => {
          this.deps.log.debug({ err }, 'last_seen_at refresh failed; the next heartbeat retries');
        });
      }
    }
    this.flushing = new Map();
  }
}
