import type { IncomingMessage } from 'node:http';
import type { ServerOptions } from 'socket.io';
import { PushgateError } from '../errors.js';

export interface OriginPolicyOptions {
  /** PUSHGATE_ALLOWED_ORIGINS (alias PUSHGATE_CORS_ORIGINS): exact origins, or `*`. */
  readonly allowed: readonly string[];
  readonly dev: boolean;
}

/**
 * Which browser pages may open a socket. Checked on every engine.io handshake, websocket and
 * long-polling alike (websockets are not subject to CORS, so a browser on any site could
 * otherwise open one with the user's cookies and address). Later requests of a connection carry
 * its session id, which only the page that passed this check has.
 *
 * - No Origin header (native apps, backends, other servers): allowed; only browsers send one.
 * - The page's own site (Origin host equals the request's Host): always allowed.
 * - Otherwise the origin must be in the allowlist (`*` allows any); with no allowlist, any origin
 *   is allowed in dev mode only.
 */
export class OriginPolicy {
  private readonly allowAny: boolean;

  constructor(private readonly options: OriginPolicyOptions) {
    this.allowAny = options.allowed.includes('*') || (options.allowed.length === 0 && options.dev);
  }

  /** The refusal for this handshake request, or undefined when its origin may connect. */
  check(request: IncomingMessage): PushgateError | undefined {
    const origin = request.headers.origin;
    if (origin === undefined || this.allowAny || this.options.allowed.includes(origin) || sameSite(origin, request)) return undefined;
    return new PushgateError(
      'origin_not_allowed',
      `origin_not_allowed: origin ${JSON.stringify(origin.slice(0, 200))} may not connect (PUSHGATE_ALLOWED_ORIGINS)`,
    );
  }

  /** CORS for the long-polling transport, consistent with `check`: the response names exactly the origins allowed. */
  cors(): ServerOptions['cors'] | undefined {
    if (this.allowAny) return this.options.allowed.includes('*') ? { origin: '*' } : { origin: true };
    return this.options.allowed.length > 0 ? { origin: [...this.options.allowed] } : undefined;
  }
}

function sameSite(origin: string, request: IncomingMessage): boolean {
  const host = request.headers.host;
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
