import { randomUUID } from 'node:crypto';
import type { Cancellation } from '../domain/cancellation.js';
import type { IdempotencyClaim, IdempotencyStore } from '../domain/idempotency.js';
import type { RedisClient } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { defineScripts, type Scripts } from '../redis/scripts.js';
import { closedError, requireDurationMs } from './memory-idempotency.js';

/** The idempotency store's Lua scripts (src/idempotency/lua), by the command name each is defined under. */
const FILES = {
  idemComplete: 'complete-1',
  idemRelease: 'release-1',
} as const;

/** What `registry_unavailable` messages say is unavailable. */
const WHAT = 'idempotency store';
const DEFAULT_POLL_MS = 100;
/** A waitFor's first re-read comes this soon (most pushes finish within a few ms), then the pause doubles up to pollMs. */
const FIRST_POLL_MS = 5;

const RUNNING = 'running:';
const DONE = 'done:';
/** A result with lone surrogates, as JSON (see LONE_SURROGATE). */
const DONE_JSON = 'done~';
/**
 * A JS string may hold lone surrogates; Redis gets UTF-8, where each becomes U+FFFD, so two keys
 * (or a result and what is read back) would differ in memory and agree in Redis. Such strings go
 * as JSON, which escapes them, under another marker, so they can match no plain string.
 */
const LONE_SURROGATE = /\p{Cs}/u;

export interface RedisIdempotencyOptions {
  /** A command connection (no offline queue, a command timeout); the store defines its scripts on it. The caller closes it. */
  readonly client: RedisClient;
  /** Key prefix of the deployment; the store's keys are `<prefix>idem:<key>`. */
  readonly prefix: string;
  /** Longest pause between two reads of a key that a `waitFor` watches (default 100 ms). */
  readonly pollMs?: number;
}

type State = { readonly kind: 'absent' } | { readonly kind: 'running' } | { readonly kind: 'done'; readonly result: string };

const ABSENT: State = Object.freeze({ kind: 'absent' });
const RUNNING_STATE = Object.freeze({ kind: 'running' }) satisfies State & IdempotencyClaim;

/**
 * The cluster's IdempotencyStore: one Redis STRING per key, `running:<token>` with the lease as
 * its TTL while claimed, `done:<result>` with the window as its TTL once complete. Every operation
 * touches that one key, so keys spread over a Redis Cluster's slots (no hash tag needed). A claim
 * is one `SET NX PX GET` (Redis ≥ 7.0): it takes the key or returns what holds it, atomically.
 * `complete` and `release` compare the token and write in one Lua script. Redis does not tell a
 * waiter when a key changes, so `waitFor` re-reads the key, soon at first and then at most every
 * `pollMs`, until it is done or gone (released, or its lease expired).
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly scripts: Scripts<keyof typeof FILES>;
  private readonly pollMs: number;
  /** How to end each pending `waitFor` at close. */
  private readonly waits = new Set<(err: unknown) => void>();
  private closed = false;

  constructor(private readonly options: RedisIdempotencyOptions) {
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    requireDurationMs('pollMs', this.pollMs);
    this.scripts = defineScripts(options.client, new URL('./lua/', import.meta.url), FILES);
  }

  /** `waitFor`s not yet settled, for tests: 0 once every wait has ended. */
  get pendingWaits(): number {
    return this.waits.size;
  }

  async claim(key: string, leaseMs: number): Promise<IdempotencyClaim> {
    this.checkOpen();
    requireDurationMs('leaseMs', leaseMs);
    const token = randomUUID();
    const k = this.keyOf(key);
    const { client } = this.options;
    const held = await callRedis(
      () => this.scripts.observed('idemClaim', () => client.call('SET', k, RUNNING + token, 'PX', leaseMs, 'NX', 'GET')),
      WHAT,
    );
    if (held === null) return { kind: 'first', token };
    const state = readState(held);
    // The key was there a moment ago (SET NX failed), so it is not absent: it held a value.
    return state.kind === 'done' ? { kind: 'done', result: state.result } : RUNNING_STATE;
  }

  async complete(key: string, token: string, result: string, windowMs: number): Promise<void> {
    this.checkOpen();
    requireDurationMs('windowMs', windowMs);
    const k = this.keyOf(key);
    await callRedis(() => this.scripts.run('idemComplete', [k], [RUNNING + token, doneValue(result), windowMs]), WHAT);
  }

  async release(key: string, token: string): Promise<void> {
    this.checkOpen();
    const k = this.keyOf(key);
    await callRedis(() => this.scripts.run('idemRelease', [k], [RUNNING + token]), WHAT);
  }

  waitFor(key: string, signal: Cancellation): Promise<string | undefined> {
    if (this.closed) return Promise.reject(closedError());
    if (signal.aborted) return Promise.reject(signal.reason);
    const k = this.keyOf(key);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let pauseMs = FIRST_POLL_MS;
      let settled = false;
      const end = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waits.delete(fail);
        settle();
      };
      const fail = (err: unknown): void => end(() => reject(err));
      const onAbort = (): void => fail(signal.reason);
      const poll = (): void => {
        timer = undefined;
        this.read(k).then((state) => {
          if (settled) return;
          if (state.kind === 'running') {
            timer = setTimeout(poll, pauseMs);
            pauseMs = Math.min(pauseMs * 2, this.pollMs);
          } else end(() => resolve(state.kind === 'done' ? state.result : undefined));
        }, fail);
      };
      this.waits.add(fail);
      signal.addEventListener('abort', onAbort, { once: true });
      poll();
    });
  }

  /** Ends pending waits (they reject with `shutting_down`); the client belongs to the caller, who closes it. */
  async close(): Promise<void> {
    this.closed = true;
    for (const fail of [...this.waits]) fail(closedError());
  }

  private checkOpen(): void {
    if (this.closed) throw closedError();
  }

  private read(k: string): Promise<State> {
    const { client } = this.options;
    return callRedis(() => this.scripts.observed('idemWait', () => client.get(k)), WHAT).then(readState);
  }

  private keyOf(key: string): string {
    const { prefix } = this.options;
    return LONE_SURROGATE.test(key) ? `${prefix}idem~${JSON.stringify(key)}` : `${prefix}idem:${key}`;
  }
}

function doneValue(result: string): string {
  return LONE_SURROGATE.test(result) ? DONE_JSON + JSON.stringify(result) : DONE + result;
}

function readState(value: unknown): State {
  if (value === null) return ABSENT;
  if (typeof value === 'string') {
    if (value.startsWith(RUNNING)) return RUNNING_STATE;
    if (value.startsWith(DONE)) return { kind: 'done', result: value.slice(DONE.length) };
    if (value.startsWith(DONE_JSON)) return { kind: 'done', result: JSON.parse(value.slice(DONE_JSON.length)) as string };
  }
  throw new Error(`idempotency key holds a value this store did not write: ${String(value).slice(0, 40)}`);
}
