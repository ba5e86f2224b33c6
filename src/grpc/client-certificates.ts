import type { ServerInterceptingCallInterface } from '@grpc/grpc-js';
import { SCOPES, type Scope } from './api-keys.js';

/** What `call.getAuthContext()` returns; grpc-js does not export the type by name. */
export type AuthContext = ReturnType<ServerInterceptingCallInterface['getAuthContext']>;

const SETTING = 'PUSHGATE_GRPC_CLIENT_CERT_SCOPES';

/**
 * The scopes each client certificate subject (CN) is granted, from `billing=push,read;ops=admin`.
 * Undefined or blank: no certificate has any scope. Throws an Error naming the setting on a
 * malformed entry, an unknown scope, or a CN given twice (which of the two would count?).
 */
export function clientCertificateScopes(map: string | undefined): ReadonlyMap<string, ReadonlySet<Scope>> {
  const scopes = new Map<string, ReadonlySet<Scope>>();
  for (const entry of (map ?? '').split(';')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const subject = entry.slice(0, eq).trim();
    if (eq < 0 || subject === '') throw new Error(`${SETTING}: "${entry.trim()}" is not subject=scope,scope (e.g. billing=push,read)`);
    if (scopes.has(subject)) throw new Error(`${SETTING}: certificate subject "${subject}" is given twice`);
    const granted = new Set<Scope>();
    for (const scope of entry.slice(eq + 1).split(',')) {
      const name = scope.trim();
      if (!(SCOPES as readonly string[]).includes(name)) {
        throw new Error(`${SETTING}: "${name}" (for "${subject}") is not a scope; scopes are ${SCOPES.join(', ')}`);
      }
      granted.add(name as Scope);
    }
    scopes.set(subject, granted);
  }
  return scopes;
}

/**
 * The CN of the certificate the caller presented, or undefined when there is none. grpc-js only
 * reports a peer certificate that the server verified against PUSHGATE_GRPC_TLS_CLIENT_CA (on
 * plaintext, or TLS without client certificates, the context is empty). A subject with several
 * CNs or an empty one names nobody, so it is undefined too.
 */
export function certificateSubject(authContext: AuthContext): string | undefined {
  if (authContext.transportSecurityType !== 'ssl') return undefined;
  // Node gives an array for a multi-valued CN, whatever its type declarations say.
  const cn: unknown = authContext.sslPeerCertificate?.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
