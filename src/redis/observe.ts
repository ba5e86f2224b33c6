import type { RedisClient } from './client.js';

/** Told of every Lua script call on an observed client (metrics); must be cheap and must not throw. */
export interface RedisObserver {
  /** `operation` is the script's command name (`pgLookup`, `pgLease`, …): a bounded set from the code's own tables. */
  command(operation: string, seconds: number, failed: boolean): void;
  /** The connection reported an error (a failed reconnect, a dropped socket). */
  connectionError(): void;
}

/**
 * Observers by client. Scripts are defined on a client by the room that owns them (registry,
 * cluster) before the node decides what to observe, and several nodes share one process in tests:
 * keying by client keeps each node's counts its own without threading an observer through every room.
 */
const observers = new WeakMap<RedisClient, RedisObserver>();

/** From now on, script calls on this client and its connection errors are reported to `observer`. */
export function observeRedis(client: RedisClient, observer: RedisObserver): void {
  observers.set(client, observer);
  client.on('error', () => observer.connectionError());
}

export function observerOf(client: RedisClient): RedisObserver | undefined {
  return observers.get(client);
}
