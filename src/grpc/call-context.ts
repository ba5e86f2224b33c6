import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { PushgateError } from '../errors.js';
import { capped } from './call-caps.js';

/** What every server call has, unary or streaming. */
type Call = Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'once' | 'off'>;

/** The caller's `x-request-id` if it sent a sane one, else a fresh id. */
export function requestIdOf(call: Pick<Call, 'metadata'>): string {
  const given = call.metadata.get('x-request-id')[0];
  return typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : randomUUID();
}

/**
 * The authenticated caller's name, or '' when the call is not authenticated. The authentication
 * interceptor sets `pushgate-caller` and strips any value the client sent, so it can be trusted here.
 */
export function callerOf(call: Pick<Call, 'metadata'>): string {
  const caller = call.metadata.get('pushgate-caller')[0];
  return typeof caller === 'string' ? caller : '';
}

export interface SignalOptions {
  /** Call events that also end every wait (a stream's `close`, when its connection is gone). */
  readonly alsoOn?: readonly string[];
  /**
   * The longest the call may run (PUSHGATE_GRPC_MAX_CALL_MS): a call without a deadline, or with a
   * later one, gets this one. Unset for streams, which may run for as long as they are read.
   */
  readonly maxMs?: number;
}

/**
 * An AbortSignal for every wait of one stream: it aborts when the caller cancels (`cancelled`), when
 * the call's deadline or the server's cap `maxMs` passes (`deadline_exceeded`), and on any of
 * `alsoOn`. `release` stops listening and clears the cap's timer once the call is done. (Streams
 * take a real AbortSignal: they hand it to Node, e.g. `once(call, 'drain', { signal })`; unary
 * calls take the lighter Cancel, see unary.ts.)
 */
export function abortSignalOf(call: Call, { alsoOn = [], maxMs }: SignalOptions = {}): { readonly signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const stopListening = abortOnEnd(call, controller, alsoOn);
  const timer = maxMs !== undefined && msLeft(call) > maxMs ? setTimeout(() => controller.abort(capped(maxMs)), maxMs) : undefined;
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      stopListening();
    },
  };
}

/**
 * Aborts `target` when the caller cancels or the call's deadline passes (grpc-js says `cancelled`
 * for both; the reason tells them apart), and on any of `alsoOn`. Returns what stops listening.
 */
export function abortOnEnd(call: Call, target: { abort(reason: unknown): void }, alsoOn: readonly string[] = []): () => void {
  const onGone = (): void => target.abort(new PushgateError('cancelled', 'the call ended'));
  const onCancelled = (): void => {
    const deadline = call.getDeadline();
    const passed = deadline !== Infinity && new Date(deadline).getTime() <= Date.now();
    target.abort(
      passed
        ? new PushgateError('deadline_exceeded', 'the call’s deadline passed')
        : new PushgateError('cancelled', 'the caller cancelled the call'),
    );
  };
  call.once('cancelled', onCancelled);
  for (const event of alsoOn) call.once(event, onGone);
  return () => {
    call.off('cancelled', onCancelled);
    for (const event of alsoOn) call.off(event, onGone);
  };
}

/** Time until the call's own deadline; Infinity when it has none. */
export function msLeft(call: Pick<Call, 'getDeadline'>): number {
  const deadline = call.getDeadline();
  return (deadline instanceof Date ? deadline.getTime() : deadline) - Date.now();
}

/** The user a request is about (user_id), or the first of the users it names (user_ids), for the audit line. */
export function usersOf(request: unknown): string | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const { userId, userIds } = request as { userId?: unknown; userIds?: unknown };
  if (typeof userId === 'string' && userId !== '') return userId.slice(0, 256);
  if (Array.isArray(userIds) && userIds.length > 0)
    return `${String(userIds[0]).slice(0, 256)}${userIds.length > 1 ? ` (+${userIds.length - 1})` : ''}`;
  return undefined;
}

/**
 * A wait for a stream call's next 'drain' that also ends when `stopped` aborts (the stream ended:
 * overflow, shutdown, cancel). One listener on `stopped` serves every wait: a busy stream waits often.
 */
export function drainOrEnd(call: EventEmitter, stopped: AbortSignal): () => Promise<void> {
  let wake: (() => void) | undefined;
  const onDrainOrEnd = (): void => {
    call.off('drain', onDrainOrEnd);
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  stopped.addEventListener('abort', onDrainOrEnd, { once: true });
  return () => {
    if (stopped.aborted) return Promise.resolve();
    call.once('drain', onDrainOrEnd);
    return new Promise((resolve) => (wake = resolve));
  };
}
