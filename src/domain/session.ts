/** Longest user id pushgate accepts, wherever one comes in (token, query, request). */
export const MAX_USER_ID_LENGTH = 256;

/** One live client connection of a user, as the registry stores it. Times are epoch milliseconds. */
export interface SessionRecord {
  readonly sessionId: string;
  readonly userId: string;
  readonly clientType: string;
  readonly nodeId: string;
  readonly connectedAtMs: number;
  lastSeenAtMs: number;
  readonly remoteAddress: string;
  readonly userAgent: string;
}

/** Narrows a user's sessions; an empty or missing list matches everything. */
export interface SessionFilter {
  readonly clientTypes?: readonly string[];
  readonly sessionIds?: readonly string[];
}

export function matchesFilter(session: SessionRecord, filter: SessionFilter | undefined): boolean {
  if (filter === undefined) return true;
  const { clientTypes, sessionIds } = filter;
  if (clientTypes !== undefined && clientTypes.length > 0 && !clientTypes.includes(session.clientType)) return false;
  if (sessionIds !== undefined && sessionIds.length > 0 && !sessionIds.includes(session.sessionId)) return false;
  return true;
}
