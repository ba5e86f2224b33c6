import { PushgateError } from '../errors.js';

/**
 * A receipt cursor in Redis: where a reader stands in the events stream. Text form
 * `<epoch>-<ms>-<seq>-<n>`; clients treat it as opaque.
 */
export interface StreamPosition {
  /** Identity of the stream: positions of another epoch (before Redis lost its data) mean nothing here. */
  readonly epoch: string;
  /** Stream entry id, `<ms>-<seq>`; `0-0` before the first event. */
  readonly id: string;
  /** The event's number (1, 2, 3…; 0 before the first): tells whether events after it were trimmed. */
  readonly n: number;
}

const CURSOR = /^(\d{1,20})-(\d{1,16})-(\d{1,16})-(\d{1,16})$/;

export function encodeCursor(position: StreamPosition): string {
  return `${position.epoch}-${position.id}-${position.n}`;
}

export function decodeCursor(text: string): StreamPosition {
  const match = CURSOR.exec(text);
  if (match === null) throw new PushgateError('invalid_argument', `"${text.slice(0, 64)}" is not a receipt cursor`);
  return { epoch: match[1]!, id: `${match[2]}-${match[3]}`, n: Number(match[4]) };
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

export function cursorExpired(cursor: string, oldest: string): PushgateError {
  return new PushgateError(
    'cursor_expired',
    `receipt cursor "${cursor.slice(0, 64)}" is older than the retained receipt events (or from before the store lost them); the oldest cursor still held is ${oldest}`,
    { details: { oldest_cursor: oldest } },
  );
}
