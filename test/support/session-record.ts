import type { SessionRecord } from '../../src/domain/session.js';

/** A session record as the edge would register it, connected now; a test overrides what it cares about. */
export function sessionRecord(userId: string, sessionId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    sessionId,
    userId,
    clientType: 'web',
    nodeId: 'node-a',
    connectedAtMs: now,
    lastSeenAtMs: now,
    remoteAddress: '10.0.0.7',
    userAgent: 'agent',
    ...overrides,
  };
}
