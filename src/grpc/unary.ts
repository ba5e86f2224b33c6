import type { handleUnaryCall } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { abortError } from '../domain/abortable.js';
import { Cancel, type Cancellation } from '../domain/cancellation.js';
import type { CallCaps } from './call-caps.js';
import { abortOnEnd, callerOf, msLeft, requestIdOf, usersOf } from './call-context.js';
import { requireDecoded } from './payload-size.js';
import { toGrpcError } from './status.js';

export interface CallContext {
  /** Aborts when the caller cancels or its deadline passes; pass it to every wait. */
  readonly signal: Cancellation;
  /** The authenticated caller's name ('' when the API needs no authentication), for logs. */
  readonly caller: string;
  readonly requestId: string;
  /** Milliseconds from the call's start to the caller's deadline; Infinity when it set none. */
  readonly msLeft: number;
}

/** Counts unary calls in flight so shutdown can let them finish. */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  begin(): void {
    this.count++;
  }

  end(): void {
    if (--this.count === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  get size(): number {
    return this.count;
  }

  /** Resolves true when no call is in flight, or false after `timeoutMs`, whichever comes first. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.waiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([idle, late]);
    clearTimeout(timer);
    return result;
  }
}

/** What every unary call needs from the node. */
export interface UnaryDeps {
  readonly inFlight: InFlight;
  readonly log: Logger;
  /** PUSHGATE_GRPC_MAX_CALL_MS: the deadline of a call that comes without one, or with a later one. */
  readonly caps: CallCaps;
}

/**
 * Adapts an async handler to grpc-js: cancellation and deadline (the caller's, capped by `caps`)
 * become the call's Cancellation (a plain Cancel, not an AbortSignal: see cancellation.ts), errors go through the one status mapping (tagged with the
 * request id), and the call is counted while in flight. The answer goes out as soon as the signal
 * aborts, with its reason (`deadline_exceeded` at the cap), even if the handler has not settled
 * yet; the call stays counted, and its timer and listeners stay, until the handler does.
 * A request its deserializer could not decode is refused before the handler runs. Successful
 * calls are logged at debug only: nothing per push at info.
 */
export function unary<Req extends object, Res>(
  method: string,
  { inFlight, log, caps }: UnaryDeps,
  handler: (request: Req, context: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const signal = new Cancel();
    const stopListening = abortOnEnd(call, signal);
    const left = msLeft(call);
    const cap = caps.add(left, signal);
    const caller = callerOf(call);
    // Made only when something logs it: most calls never do, and a fresh id is a UUID.
    let requestId: string | undefined;
    const context: CallContext = {
      signal,
      caller,
      get requestId() {
        requestId ??= requestIdOf(call);
        return requestId;
      },
      msLeft: left,
    };
    inFlight.begin();
    const started = log.isLevelEnabled('debug') ? performance.now() : 0;
    let answered = false;
    const answer = (send: () => void): void => {
      if (answered) return;
      answered = true;
      try {
        send();
      } catch (err) {
        log.error({ err, method }, 'answering a call failed');
      }
    };
    const fail = (err: unknown): void =>
      answer(() => callback(toGrpcError(err, log, context.requestId, method, caller, usersOf(call.request))));
    // The answer goes out at the abort, whether or not the handler has settled.
    const onAbort = (): void => fail(abortError(signal));
    signal.addEventListener('abort', onAbort);
    const settled = (): void => {
      signal.removeEventListener('abort', onAbort);
      stopListening();
      caps.release(cap);
      inFlight.end();
    };
    let result: Promise<Res>;
    try {
      result = handler(requireDecoded(call.request), context);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (response) => {
        settled();
        answer(() => {
          if (started > 0)
            log.debug({ method, requestId: context.requestId, caller, durationMs: performance.now() - started }, 'call done');
          callback(null, response);
        });
      },
      (err: unknown) => {
        settled();
        fail(err);
      },
    );
  };
}
