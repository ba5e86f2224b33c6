import { PushgateError } from '../errors.js';

/** Who may use the dashboard's API: an operator's name ('' when no keys are configured), or why not. */
export type OperatorVerdict = { readonly caller: string } | { readonly refusal: PushgateError };

/** The port the dashboard asks before every API call; app.ts wires it from the API keys. */
export interface OperatorAuth {
  check(authorization: string | undefined, remoteAddress: string | undefined): OperatorVerdict;
}

/** The API keys as the dashboard sees them (grpc/api-keys.ts's ApiKeys fits; http/ may not import it). */
export interface KeyVerifier {
  readonly configured: boolean;
  verify(presented: string): { readonly name: string; readonly scopes: ReadonlySet<string> } | undefined;
}

/** The API's security settings (config/api.ts's ApiConfig fits). */
export interface OperatorAuthOptions {
  /** PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED: with no keys, the API is open to anyone who reaches it; so is the dashboard. */
  readonly allowUnauthenticated: boolean;
  /** Mutual TLS: callers prove who they are by client certificate, which a browser's HTTP call cannot, so keys are required. */
  readonly tlsClientCa: string | undefined;
}

const ADMIN = 'admin';

/**
 * The gRPC API's rules, for a browser: with API keys configured, an `Authorization: Bearer <key>`
 * whose key has the `admin` scope (it pushes and kicks, and sees every user). With no keys the gRPC
 * API is loopback-only, so the dashboard is open to loopback callers only (the HTTP port usually
 * listens more widely), unless the operator opened the API to all.
 */
export function keyOperatorAuth(keys: KeyVerifier, options: OperatorAuthOptions): OperatorAuth {
  return {
    check(authorization, remoteAddress) {
      if (!keys.configured) {
        if (options.tlsClientCa !== undefined) {
          return refuse(
            'unauthenticated',
            'the dashboard needs an API key with the admin scope (PUSHGATE_API_KEYS or PUSHGATE_API_KEYS_FILE)',
          );
        }
        if (options.allowUnauthenticated || isLoopbackAddress(remoteAddress)) return { caller: '' };
        return refuse(
          'permission_denied',
          'with no API keys configured the dashboard answers loopback callers only; configure an admin API key to use it from elsewhere',
        );
      }
      const match = /^Bearer +(\S+)$/i.exec(authorization?.trim() ?? '');
      if (match === null) return refuse('unauthenticated', 'send an API key with the admin scope as Authorization: Bearer <key>');
      const caller = keys.verify(match[1]!);
      if (caller === undefined) return refuse('unauthenticated', 'the API key is not valid');
      if (!caller.scopes.has(ADMIN)) {
        return refuse('permission_denied', `API key "${caller.name}" lacks the admin scope the dashboard needs`);
      }
      return { caller: caller.name };
    },
  };
}

function refuse(code: 'unauthenticated' | 'permission_denied', message: string): OperatorVerdict {
  return { refusal: new PushgateError(code, message) };
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}
