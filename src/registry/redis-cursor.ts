import { PushgateError } from '../errors.js';
import { encodePosition, parsePosition, type StreamPosition } from '../redis/stream-position.js';

/** Where a reader stands in one shard's event stream; `n` is the event's number in the shard. */
export type ShardPosition = StreamPosition;

export { compareIds } from '../redis/stream-position.js';

/**
 * A presence cursor in cluster mode: one position per shard, so a reader resuming on any node
 * continues every shard's stream where it left off. Text form: `<epoch>-<ms>-<seq>-<n>` per
 * shard, joined by dots; clients treat it as opaque.
 */
export type RedisCursor = readonly ShardPosition[];

export function encodeCursor(cursor: RedisCursor): string {
  return cursor.map(encodePosition).join('.');
}

/** Parses a cursor of a registry with `shards` shards; anything else is the caller's mistake. */
export function decodeCursor(text: string, shards: number): RedisCursor {
  const parts = text.split('.');
  if (parts.length !== shards) {
    const why =
      parts.length > 1 || parsePosition(parts[0] ?? '') !== undefined
        ? ` (it has ${parts.length} shard positions, this deployment ${shards})`
        : '';
    throw new PushgateError('invalid_argument', `cursor "${text.slice(0, 64)}" is not a presence cursor of this deployment${why}`);
  }
  return parts.map((part) => {
    const position = parsePosition(part);
    if (position === undefined) throw new PushgateError('invalid_argument', `cursor "${text.slice(0, 64)}" is not a presence cursor`);
    return position;
  });
}
