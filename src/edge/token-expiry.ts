import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import { TOKEN_REFRESH_EVENT } from '../domain/events.js';
import { isPushgateError } from '../errors.js';
import { type Expiring, ExpiryClock } from './expiry-clock.js';
import type { TokenVerifier } from './token-verifier.js';

/** A session whose token is watched: its socket, its user, and its place in the clock. */
export interface TokenHolder extends Expiring {
  readonly socket: Socket;
  readonly record: { readonly userId: string };
}

export interface TokenExpiryOptions<T extends TokenHolder> {
  readonly verifier: TokenVerifier;
  /** The watched session of a socket, if it still is one. */
  readonly sessionOf: (socket: Socket) => T | undefined;
  /** Closes the session: its token expired and no fresh one came. */
  readonly onExpired: (session: T) => void;
  readonly log: Logger;
}

/** What a client's `pushgate:refresh` ack receives. */
export type RefreshAnswer =
  | { readonly ok: true; readonly expiresAt: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/**
 * Keeps each socket no longer than its token is valid: at the token's exp the session is closed
 * (`onExpired`), unless the client first sends `pushgate:refresh` with a fresh token for the same
 * user, acked with `{ ok: true, expiresAt }` (or `{ ok: false, code, message }` for a token that is
 * refused; the old expiry then still holds).
 *
 * One clock serves the whole node, and every socket shares one refresh listener (Socket.IO calls
 * it with the socket as `this`), so a watched session costs no timer and no closure of its own.
 */
export class TokenExpiry<T extends TokenHolder> {
  private readonly clock: ExpiryClock<T>;
  private readonly onRefresh: (this: Socket, token: unknown, ack: unknown) => void;

  constructor(private readonly options: TokenExpiryOptions<T>) {
    this.clock = new ExpiryClock(options.onExpired);
    const expiry = this;
    this.onRefresh = function (this: Socket, token: unknown, ack: unknown): void {
      expiry.refresh(this, token, ack);
    };
  }

  /** Sessions watched. */
  get size(): number {
    return this.clock.size;
  }

  /** When the session's token expires, or undefined if it is not watched. */
  expiryOf(session: T): number | undefined {
    return this.clock.expiryOf(session);
  }

  /** Starts watching a session whose token expires at `expiresAtMs`, and listens for its refreshes. */
  watch(session: T, expiresAtMs: number): void {
    this.clock.watch(session, expiresAtMs);
    session.socket.on(TOKEN_REFRESH_EVENT, this.onRefresh);
  }

  /** Stops watching (its socket closed): nothing is left scheduled, and a refresh still being verified is ignored. */
  unwatch(session: T): void {
    this.clock.unwatch(session);
    session.socket.off(TOKEN_REFRESH_EVENT, this.onRefresh);
  }

  /** Stops watching every session. */
  close(): void {
    this.clock.clear();
  }

  private refresh(socket: Socket, token: unknown, ack: unknown): void {
    const answer = typeof ack === 'function' ? (ack as (answer: RefreshAnswer) => void) : () => {};
    const session = this.options.sessionOf(socket);
    if (session === undefined || !this.clock.has(session)) return;
    if (typeof token !== 'string' || token === '') {
      answer({ ok: false, code: 'token_missing', message: `send the fresh token as the first argument of ${TOKEN_REFRESH_EVENT}` });
      return;
    }
    this.options.verifier.verify(token).then(
      ({ userId, expiresAtMs }) => {
        // The socket closed while the token was verified: nothing may be scheduled for it now
        // (it would hold the closed socket until the fresh token's exp).
        if (!this.clock.has(session)) return;
        if (userId !== session.record.userId) {
          answer({ ok: false, code: 'token_claims_invalid', message: 'the fresh token is for another user' });
          return;
        }
        this.clock.watch(session, expiresAtMs);
        answer({ ok: true, expiresAt: new Date(expiresAtMs).toISOString() });
      },
      (err: unknown) => {
        if (!isPushgateError(err)) this.options.log.error({ err }, 'token refresh failed');
        answer(
          isPushgateError(err)
            ? { ok: false, code: err.code, message: err.message }
            : { ok: false, code: 'internal', message: 'internal error' },
        );
      },
    );
  }
}
