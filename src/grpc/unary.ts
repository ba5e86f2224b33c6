import type { handleUnaryCall } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { abortSignalOf, requestIdOf } from './call-context.js';
import { toGrpcError } from './status.js';

export interface CallContext {
  /** Aborts when the caller cancels or its deadline passes; pass it to every wait. */
  readonly signal: AbortSignal;
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

/**
 * Adapts an async handler to grpc-js: cancellation and deadline become an AbortSignal, errors go
 * through the one status mapping (tagged with the request id), and the call is counted while in
 * flight. Successful calls are logged at debug only: nothing per push at info.
 */
export function unary<Req, Res>(
  method: string,
  inFlight: InFlight,
  log: Logger,
  handler: (request: Req, context: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const { signal, release } = abortSignalOf(call);
    inFlight.begin();
    const started = log.isLevelEnabled('debug') ? performance.now() : 0;
    let result: Promise<Res>;
    try {
      result = handler(call.request, { signal });
    } catch (err) {
      result = Promise.reject(err);
    }
    result
      .then(
        (response) => {
          if (started > 0) {
            log.debug({ method, requestId: requestIdOf(call), durationMs: performance.now() - started }, 'call done');
          }
          callback(null, response);
        },
        (err: unknown) => callback(toGrpcError(err, log, requestIdOf(call), method)),
      )
      .finally(() => {
        release();
        inFlight.end();
      })
      .catch((err: unknown) => log.error({ err, method }, 'answering a call failed'));
  };
}
