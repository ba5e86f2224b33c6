/**
 * Where a reader stands in an event stream that carries an epoch and numbered events (the
 * `ensure_epoch` / `feed_position` / `oldest_position` helpers of lua/prelude.lua). Rooms build
 * their cursors from it; clients treat the text form as opaque.
 */
export interface StreamPosition {
  /** Identity of the stream (see the epoch key): positions of another epoch (before Redis lost its data) mean nothing here. */
  readonly epoch: string;
  /** Stream entry id, `<ms>-<seq>`; `0-0` before the first event. */
  readonly id: string;
  /** The event's number (1, 2, 3…; 0 before the first): tells whether events after it were trimmed. */
  readonly n: number;
}

const POSITION = /^(\d{1,20})-(\d{1,16})-(\d{1,16})-(\d{1,16})$/;

/** Text form `<epoch>-<ms>-<seq>-<n>`. */
export function encodePosition(position: StreamPosition): string {
  return `${position.epoch}-${position.id}-${position.n}`;
}

/** The position `text` stands for, or undefined when it is not one (the caller words the refusal). */
export function parsePosition(text: string): StreamPosition | undefined {
  const match = POSITION.exec(text);
  return match === null ? undefined : { epoch: match[1]!, id: `${match[2]}-${match[3]}`, n: Number(match[4]) };
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
