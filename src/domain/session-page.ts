import { PushgateError } from '../errors.js';
import type { SessionRecord } from './session.js';

/** One page of a user's sessions, oldest connection first. */
export interface SessionPage {
  readonly sessions: SessionRecord[];
  /** Continues the listing after this page; '' when this page is the last. */
  readonly nextPageToken: string;
}

export interface PageRequest {
  /** At most this many sessions (already within the server's maximum). */
  readonly size: number;
  /** '' for the first page. */
  readonly token: string;
}

/**
 * Cuts one page out of a user's sessions. The token names the last session returned (its
 * connection time and id) rather than an offset, so sessions that leave between pages do not make
 * the next page skip anyone, and sessions that connect meanwhile (being newest) land on a later
 * page. It also names the user and filter, so a token is not silently reused for another listing.
 */
export function pageOf(sessions: readonly SessionRecord[], listing: string, page: PageRequest): SessionPage {
  const ordered = [...sessions].sort(byConnection);
  let start = 0;
  if (page.token !== '') {
    const after = decodeToken(page.token, listing);
    start = ordered.findIndex((s) => byConnection(s, after) > 0);
    if (start === -1) start = ordered.length;
  }
  const end = Math.min(start + page.size, ordered.length);
  const last = ordered[end - 1];
  return {
    sessions: ordered.slice(start, end),
    nextPageToken: end < ordered.length && last !== undefined ? encodeToken(last, listing) : '',
  };
}

type Position = Pick<SessionRecord, 'connectedAtMs' | 'sessionId'>;

function byConnection(a: Position, b: Position): number {
  return a.connectedAtMs - b.connectedAtMs || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}

function encodeToken(last: Position, listing: string): string {
  return Buffer.from(JSON.stringify([listing, last.connectedAtMs, last.sessionId])).toString('base64url');
}

function decodeToken(token: string, listing: string): Position {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || typeof parsed[1] !== 'number' || typeof parsed[2] !== 'string') {
    throw new PushgateError('invalid_argument', 'page_token is not a token this server returned');
  }
  if (parsed[0] !== listing) {
    throw new PushgateError(
      'invalid_argument',
      'page_token belongs to another listing: keep user_id and client_types as in the first page',
    );
  }
  return { connectedAtMs: parsed[1], sessionId: parsed[2] };
}
