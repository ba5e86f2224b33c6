import { ServerInterceptingCall, type ServerInterceptor, status as Status } from '@grpc/grpc-js';

/** Told of every finished gRPC call; must be cheap and must not throw. */
export interface CallObserver {
  /**
   * @param method the method's short name (`PushToUser`, `Check`, …); the observer bounds the set
   * @param code the gRPC status the call ended with (CANCELLED when the client went away)
   * @param errorCode pushgate's error code from the trailers, when the call failed with one
   */
  finished(method: string, code: Status, seconds: number, errorCode: string | undefined): void;
}

/**
 * Times every call from its start to its status and reports it once. Placed innermost (first in
 * the list) so that the refusals of the auth gate, which answers from its own layer, pass through
 * it too. A call the client cancels has no status to send; it is reported at the cancel.
 */
export function callMetricsInterceptor(observer: CallObserver): ServerInterceptor {
  return (method, call) => {
    const startedAt = performance.now();
    const name = method.path.slice(method.path.lastIndexOf('/') + 1);
    let reported = false;
    const report = (code: Status, errorCode: string | undefined): void => {
      if (reported) return;
      reported = true;
      observer.finished(name, code, (performance.now() - startedAt) / 1000, errorCode);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onCancel: () => report(Status.CANCELLED, 'cancelled'),
        }),
      sendStatus: (status, next) => {
        const errorCode = status.code === Status.OK ? undefined : status.metadata?.get('pushgate-error-code')[0];
        report(status.code, typeof errorCode === 'string' ? errorCode : undefined);
        next(status);
      },
    });
  };
}
