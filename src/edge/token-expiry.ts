import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import { TOKEN_REFRESH_EVENT } from '../domain/events.js';
import { isPushgateError } from '../errors.js';
import type { TokenVerifier } from './token-verifier.js';

/** setTimeout's longest wait; a later expiry is reached in steps. */
const MAX_TIMER_MS = 2_147_483_647;

export interface TokenExpiryOptions {
  readonly userId: string;
  readonly expiresAtMs: number;
  readonly verifier: TokenVerifier;
  /** Closes the socket: its token expired and no fresh one came. */
  readonly onExpired: () => void;
  readonly log: Logger;
}

/** What a client's `pushgate:refresh` ack receives. */
export type RefreshAnswer =
  | { readonly ok: true; readonly expiresAt: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/**
 * Keeps a socket no longer than its token is valid: at the token's exp the socket is closed
 * (`onExpired`), unless the client first sends `pushgate:refresh` with a fresh token for the same
 * user, acked with `{ ok: true, expiresAt }` (or `{ ok: false, code, message }` for a token that is
 * refused; the old expiry then still holds). Returns the function that stops watching, for when
 * the socket closes.
 */
export function watchTokenExpiry(socket: Socket, options: TokenExpiryOptions): () => void {
  let timer: NodeJS.Timeout | undefined;
  // A refresh still being verified when the socket closes must not schedule a timer nobody clears
  // (it would hold the closed socket until the token's exp: up to PUSHGATE_MAX_TOKEN_TTL).
  let stopped = false;
  const schedule = (atMs: number): void => {
    clearTimeout(timer);
    const waitMs = atMs - Date.now();
    timer = setTimeout(() => (waitMs > MAX_TIMER_MS ? schedule(atMs) : options.onExpired()), Math.max(0, Math.min(waitMs, MAX_TIMER_MS)));
  };
  const refresh = (token: unknown, ack: unknown): void => {
    const answer = typeof ack === 'function' ? (ack as (answer: RefreshAnswer) => void) : () => {};
    if (typeof token !== 'string' || token === '') {
      answer({ ok: false, code: 'token_missing', message: `send the fresh token as the first argument of ${TOKEN_REFRESH_EVENT}` });
      return;
    }
    options.verifier.verify(token).then(
      ({ userId, expiresAtMs }) => {
        if (stopped) return;
        if (userId !== options.userId) {
          answer({ ok: false, code: 'token_claims_invalid', message: 'the fresh token is for another user' });
          return;
        }
        schedule(expiresAtMs);
        answer({ ok: true, expiresAt: new Date(expiresAtMs).toISOString() });
      },
      (err: unknown) => {
        if (!isPushgateError(err)) options.log.error({ err }, 'token refresh failed');
        answer(
          isPushgateError(err)
            ? { ok: false, code: err.code, message: err.message }
            : { ok: false, code: 'internal', message: 'internal error' },
        );
      },
    );
  };
  socket.on(TOKEN_REFRESH_EVENT, refresh);
  schedule(options.expiresAtMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket.off(TOKEN_REFRESH_EVENT, refresh);
  };
}
