import { PushgateError } from '../errors.js';

/** Where a reader stands in one shard's event stream. */
export interface ShardPosition {
  /** Identity of the stream (see the `epoch` key): positions of another epoch mean nothing here. */
  readonly epoch: string;
  /** Stream entry id, `<ms>-<seq>`; `0-0` before the first event. */
  readonly id: string;
  /** The event's number in the shard (1, 2, 3…; 0 before the first): tells whether events after it were trimmed. */
  readonly n: number;
}

/**
 * A presence cursor in cluster mode: one position per shard, so a reader resuming on any node
 * continues every shard's stream where it left off. Text form: `<epoch>-<ms>-<seq>-<n>` per
 * shard, joined by dots; clients treat it as opaque.
 */
export type RedisCursor = readonly ShardPosition[];

const COMPONENT = /^(\d{1,20})-(\d{1,16})-(\d{1,16})-(\d{1,16})$/;

export function encodeCursor(cursor: RedisCursor): string {
  return cursor.map((p) => `${p.epoch}-${p.id}-${p.n}`).join('.');
}

/** Parses a cursor of a registry with `shards` shards; anything else is the caller's mistake. */
export function decodeCursor(text: string, shards: number): RedisCursor {
  const parts = text.split('.');
  if (parts.length !== shards) {
    const why =
      parts.length > 1 || COMPONENT.test(parts[0] ?? '') ? ` (it has ${parts.length} shard positions, this deployment ${shards})` : '';
    throw new PushgateError('invalid_argument', `cursor "${text.slice(0, 64)}" is not a presence cursor of this deployment${why}`);
  }
  return parts.map((part) => {
    const match = COMPONENT.exec(part);
    if (match === null) throw new PushgateError('invalid_argument', `cursor "${text.slice(0, 64)}" is not a presence cursor`);
    return { epoch: match[1]!, id: `${match[2]}-${match[3]}`, n: Number(match[4]) };
  });
}

/** Orders stream entry ids (`<ms>-<seq>`); negative when a comes first. */
export function compareIds(a: string, b: string): number {
  const dashA = a.indexOf('-');
  const dashB = b.indexOf('-');
  const msA = Number(a.slice(0, dashA));
  const msB = Number(b.slice(0, dashB));
  if (msA !== msB) return msA - msB;
  return Number(a.slice(dashA + 1)) - Number(b.slice(dashB + 1));
}
