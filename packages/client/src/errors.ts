import { type Metadata, type ServiceError, status } from '@grpc/grpc-js';

/** gRPC status names by code, for messages a person reads ("UNAVAILABLE", not 14). */
const STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(status)
    .filter(([, value]) => typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

/**
 * A failed call, as the server (or the channel) reported it. `code` is the gRPC status;
 * `pushgateCode` is pushgate's own error code from the `pushgate-error-code` trailer
 * (`invalid_argument`, `rate_limited`, `cursor_expired`, …), empty when the status came from
 * the channel rather than the server. `details` holds the other `pushgate-*` trailers without
 * their prefix (`retry-after-ms`, `oldest-cursor`, …).
 */
export class PushgateClientError extends Error {
  override readonly name: string = 'PushgateClientError';
  readonly code: status;
  readonly codeName: string;
  readonly pushgateCode: string;
  readonly details: Readonly<Record<string, string>>;
  /** The method that failed, e.g. "ListSessions". */
  readonly method: string;

  constructor(method: string, code: status, message: string, trailers: Readonly<Record<string, string>>, options?: ErrorOptions) {
    super(`${method} failed: ${STATUS_NAMES[code] ?? code}: ${message}`, options);
    this.method = method;
    this.code = code;
    this.codeName = STATUS_NAMES[code] ?? String(code);
    this.pushgateCode = trailers['error-code'] ?? '';
    this.details = trailers;
  }
}

/**
 * A presence or receipt stream could not resume: its last cursor is older than the events the
 * server still holds (PUSHGATE_PRESENCE_RETENTION…), or the feed was reset (a fresh Redis). Events
 * between `cursor` and `oldestCursor` are lost. For presence, start again with a snapshot
 * (`includeSnapshot: true`) or let the stream do it with `onCursorExpired: 'snapshot'`; for
 * receipts, read the state of the messages you care about with getMessage.
 */
export class CursorExpiredError extends PushgateClientError {
  override readonly name = 'CursorExpiredError';
  /** The cursor the stream tried to resume after. */
  readonly cursor: string;
  /** The oldest cursor the server still holds, if it said. */
  readonly oldestCursor: string | undefined;

  constructor(source: PushgateClientError, cursor: string) {
    super(source.method, source.code, source.message.replace(/^\w+ failed: \w+: /, ''), source.details, { cause: source });
    this.cursor = cursor;
    this.oldestCursor = source.details['oldest-cursor'];
  }
}

/** Turns grpc-js's ServiceError into a PushgateClientError with the pushgate trailers read out. */
export function toClientError(method: string, err: ServiceError): PushgateClientError {
  return new PushgateClientError(method, err.code, err.details || err.message, pushgateTrailers(err.metadata), { cause: err });
}

function pushgateTrailers(metadata: Metadata | undefined): Record<string, string> {
  const trailers: Record<string, string> = {};
  if (metadata === undefined) return trailers;
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (key.startsWith('pushgate-') && typeof value === 'string') trailers[key.slice('pushgate-'.length)] = value;
  }
  return trailers;
}

/** True for a status that grpc-js produced with a code (a ServiceError), as opposed to anything else thrown. */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}

/** A PushgateClientError (or a subclass), told apart by its fields so two copies of the package still agree. */
export function isPushgateError(err: unknown): err is PushgateClientError {
  return err instanceof Error && typeof (err as Partial<PushgateClientError>).pushgateCode === 'string';
}

/** The server no longer holds the events after a stream's cursor. */
export function isCursorExpired(error: PushgateClientError): boolean {
  return error.code === status.FAILED_PRECONDITION && error.pushgateCode === 'cursor_expired';
}
