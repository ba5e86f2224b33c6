import { PushgateError } from '../errors.js';
import { encodePosition, parsePosition, type StreamPosition } from '../redis/stream-position.js';

export { compareIds, type StreamPosition } from '../redis/stream-position.js';

/**
 * A receipt cursor in Redis: where a reader stands in the events stream, one `StreamPosition`.
 * Text form `<epoch>-<ms>-<seq>-<n>`; clients treat it as opaque.
 */
export function encodeCursor(position: StreamPosition): string {
  return encodePosition(position);
}

export function decodeCursor(text: string): StreamPosition {
  const position = parsePosition(text);
  if (position === undefined) throw new PushgateError('invalid_argument', `"${text.slice(0, 64)}" is not a receipt cursor`);
  return position;
}

export function cursorExpired(cursor: string, oldest: string): PushgateError {
  return new PushgateError(
    'cursor_expired',
    `receipt cursor "${cursor.slice(0, 64)}" is older than the retained receipt events (or from before the store lost them); the oldest cursor still held is ${oldest}`,
    { details: { oldest_cursor: oldest } },
  );
}
