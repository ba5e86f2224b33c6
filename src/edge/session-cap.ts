import type { SessionRecord } from '../domain/session.js';
import { PushgateError } from '../errors.js';

export interface SessionCapOptions {
  /** PUSHGATE_MAX_SESSIONS_PER_USER; 0: off. */
  readonly max: number;
  readonly policy: 'refuse' | 'evict_oldest';
  /** The user's sessions across the cluster, oldest connection first (the registry lookup). */
  readonly sessionsOf: (userId: string) => Promise<SessionRecord[]>;
  /** Closes these sessions of the user with reason `too_many_sessions`, wherever they are held. */
  readonly evict: (userId: string, sessions: readonly SessionRecord[]) => void;
}

/**
 * The per-user session cap, counted across the cluster with one registry lookup per handshake.
 * At the cap, a new session is refused (`too_many_sessions`), or (evict_oldest) admitted while
 * the oldest sessions over the cap are closed. Handshakes of one user racing each other each see
 * the count before the others register, so the cap may be overshot by the number racing.
 */
export class SessionCap {
  constructor(private readonly options: SessionCapOptions) {}

  /** Throws the refusal the client gets in `connect_error`, or resolves when the session may register. */
  async admit(userId: string): Promise<void> {
    const { max, policy } = this.options;
    if (max === 0) return;
    const sessions = await this.options.sessionsOf(userId);
    if (sessions.length < max) return;
    if (policy === 'refuse') {
      throw new PushgateError(
        'too_many_sessions',
        `this user already has ${sessions.length} sessions, the most allowed (PUSHGATE_MAX_SESSIONS_PER_USER); close one first`,
      );
    }
    this.options.evict(userId, sessions.slice(0, sessions.length - max + 1));
  }
}
