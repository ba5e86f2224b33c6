import { type ClientReadableStream, type ServiceError, status } from '@grpc/grpc-js';

/** One event of a followed stream: its cursor, and the line printed for it. */
export interface FollowedEvent {
  readonly cursor: string;
  readonly line: string;
}

/**
 * Prints a server stream's events until Ctrl-C (SIGINT), SIGTERM, a closed stdout, or the node
 * ending it; then names the last cursor on stderr, to continue from with `--resume`. Resolves on
 * those clean ends, rejects with the call's error otherwise.
 */
export function follow<M>(
  call: ClientReadableStream<M>,
  resumedFrom: string,
  eventsOf: (message: M) => Iterable<FollowedEvent>,
): Promise<void> {
  let lastCursor = resumedFrom;
  let stopped = false;
  return new Promise<void>((resolve, reject) => {
    const stop = (): void => {
      stopped = true;
      call.cancel();
    };
    // Someone piping into `head` has read enough: that is a normal end too, not a crash.
    const onStdoutError = (err: NodeJS.ErrnoException): void => (err.code === 'EPIPE' ? stop() : reject(err));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.stdout.on('error', onStdoutError);
    let finished = false;
    // grpc-js may emit 'end' after 'error' (it ends the stream, then reports the status): the first one counts.
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stdout.off('error', onStdoutError);
      // A refused start (a bad --resume) has no cursor worth repeating.
      if (lastCursor !== '' && (err === undefined || lastCursor !== resumedFrom))
        process.stderr.write(`last cursor: ${lastCursor} (continue with --resume ${lastCursor})\n`);
      if (err === undefined) resolve();
      else reject(err);
    };
    call.on('data', (message: M) => {
      for (const event of eventsOf(message)) {
        if (stopped) return;
        if (event.cursor !== '') lastCursor = event.cursor;
        process.stdout.write(event.line);
      }
    });
    call.on('end', () => {
      if (!stopped && !finished) process.stderr.write('the node ended the stream\n');
      finish();
    });
    call.on('error', (err: ServiceError) => finish(stopped && err.code === status.CANCELLED ? undefined : err));
  });
}
