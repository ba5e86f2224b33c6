/** Longest user id pushgate accepts, wherever one comes in (token, query, request). */
export const MAX_USER_ID_LENGTH = 256;

/**
 * False for a string with a lone UTF-16 surrogate: it has no UTF-8 form, so it cannot be stored
 * (the registry's Lua cjson refuses it) or sent on. A JWT's JSON can carry one (`"\ud800"`), from
 * a login service that signs whatever it is given.
 */
export function isWellFormed(value: string): boolean {
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

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
