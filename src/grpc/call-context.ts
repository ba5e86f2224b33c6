import { randomUUID } from 'node:crypto';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { PushgateError } from '../errors.js';

/** What every server call has, unary or streaming. */
type Call = Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'once' | 'off'>;

/** The caller's `x-request-id` if it sent a sane one, else a fresh id. */
export function requestIdOf(call: Pick<Call, 'metadata'>): string {
  const given = call.metadata.get('x-request-id')[0];
  return typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : randomUUID();
}

/**
 * An AbortSignal for every wait of one call: it aborts when the caller cancels (`cancelled`) or
 * the call's deadline passes (`deadline_exceeded`), and on any of `alsoOn` (a stream's `close`,
 * when its connection is gone). `release` stops listening once the call is done.
 */
export function abortSignalOf(call: Call, alsoOn: readonly string[] = []): { readonly signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onGone = (): void => controller.abort(new PushgateError('cancelled', 'the call ended'));
  const onCancelled = (): void => {
    const deadline = call.getDeadline();
    const passed = deadline !== Infinity && new Date(deadline).getTime() <= Date.now();
    controller.abort(
      passed
        ? new PushgateError('deadline_exceeded', 'the call’s deadline passed')
        : new PushgateError('cancelled', 'the caller cancelled the call'),
    );
  };
  call.once('cancelled', onCancelled);
  for (const event of alsoOn) call.once(event, onGone);
  return {
    signal: controller.signal,
    release: () => {
      call.off('cancelled', onCancelled);
      for (const event of alsoOn) call.off(event, onGone);
    },
  };
}
