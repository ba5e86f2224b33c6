import { existsSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/** The gRPC API's exposure: where it listens and how callers prove who they are. */
export interface ApiConfig {
  /** Bind address of the gRPC API, apart from the edge's: backends, not browsers, call it. */
  readonly host: string;
  /** UNSAFE: serve the API on a non-loopback address without caller authentication. */
  readonly allowUnauthenticated: boolean;
  /** API keys file (JSON or `name:scope,scope:secret-or-hash` lines); undefined: none. */
  readonly apiKeysFile: string | undefined;
  /** API keys given inline, same line format (one per line or separated by `;`). */
  readonly apiKeys: string | undefined;
  /** PEM certificate chain and key of the gRPC server; both or neither. */
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** PEM CA bundle: when set, callers must present a certificate it signed (mutual TLS). */
  readonly tlsClientCa: string | undefined;
  /** Certificate subject (CN) → scopes, for mutual TLS callers: `billing=push,read;ops=admin`. */
  readonly clientCertScopes: string | undefined;
  /** How often the certificate files are checked for changes (SIGHUP reloads at once). */
  readonly tlsReloadMs: number;
  /** Health and reflection need a caller's key (or certificate) too. */
  readonly authHealth: boolean;
}

export const API_SETTINGS = {
  grpcHost: { flag: '--grpc-host <address>', env: 'PUSHGATE_GRPC_HOST', fallback: '127.0.0.1', help: 'bind address of the gRPC API' },
  allowUnauthenticated: {
    flag: '--grpc-allow-unauthenticated',
    env: 'PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED',
    boolean: true,
    fallback: 'off',
    help: 'UNSAFE: serve the gRPC API off loopback without API keys or client certificates',
  },
  apiKeysFile: { flag: '--api-keys-file <path>', env: 'PUSHGATE_API_KEYS_FILE', help: 'API keys with scopes (see README, Security)' },
  apiKeys: {
    flag: '',
    env: 'PUSHGATE_API_KEYS',
    envOnly: true,
    help: 'API keys with scopes, inline: name:scope,scope:key lines or ;-separated',
  },
  tlsCert: { flag: '--grpc-tls-cert <path>', env: 'PUSHGATE_GRPC_TLS_CERT', help: 'PEM certificate chain of the gRPC server (TLS)' },
  tlsKey: { flag: '--grpc-tls-key <path>', env: 'PUSHGATE_GRPC_TLS_KEY', help: 'PEM private key of the gRPC server' },
  tlsClientCa: {
    flag: '--grpc-tls-client-ca <path>',
    env: 'PUSHGATE_GRPC_TLS_CLIENT_CA',
    help: 'PEM CA of client certificates: mutual TLS',
  },
  clientCertScopes: {
    flag: '--grpc-client-cert-scopes <map>',
    env: 'PUSHGATE_GRPC_CLIENT_CERT_SCOPES',
    help: 'client certificate CN to scopes, e.g. billing=push,read;ops=admin',
  },
  tlsReloadMs: {
    flag: '--grpc-tls-reload-ms <ms>',
    env: 'PUSHGATE_GRPC_TLS_RELOAD_MS',
    fallback: '60000',
    help: 'how often certificate files are checked for changes (SIGHUP: at once)',
  },
  authHealth: {
    flag: '--grpc-auth-health',
    env: 'PUSHGATE_GRPC_AUTH_HEALTH',
    boolean: true,
    fallback: 'off',
    help: 'health and reflection need a key or certificate too',
  },
} as const satisfies Record<string, Spec>;

export type ApiKey = keyof typeof API_SETTINGS;

export function parseApi(settings: SettingsReader<ApiKey>): ApiConfig {
  const { raw, int, bool, describe } = settings;
  const file = (key: 'apiKeysFile' | 'tlsCert' | 'tlsKey' | 'tlsClientCa'): string | undefined => {
    const path = raw(key);
    if (path !== undefined && !existsSync(path)) throw new ConfigError(`${describe(key)} names a file that does not exist: ${path}`);
    return path;
  };
  const tlsCert = file('tlsCert');
  const tlsKey = file('tlsKey');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(`${describe('tlsCert')} and ${describe('tlsKey')} go together: set both for TLS, or neither`);
  }
  const tlsClientCa = file('tlsClientCa');
  if (tlsClientCa !== undefined && tlsCert === undefined) {
    throw new ConfigError(`${describe('tlsClientCa')} (mutual TLS) needs ${describe('tlsCert')} and ${describe('tlsKey')}`);
  }
  const clientCertScopes = raw('clientCertScopes');
  if (clientCertScopes !== undefined && tlsClientCa === undefined) {
    throw new ConfigError(`${describe('clientCertScopes')} maps client certificates, which need ${describe('tlsClientCa')}`);
  }
  const host = raw('grpcHost') ?? '127.0.0.1';
  const allowUnauthenticated = bool('allowUnauthenticated');
  const apiKeysFile = file('apiKeysFile');
  const apiKeys = raw('apiKeys');
  const authenticated = apiKeysFile !== undefined || apiKeys !== undefined || tlsClientCa !== undefined;
  if (!authenticated && !allowUnauthenticated && !isLoopback(host)) {
    throw new ConfigError(
      `the gRPC API would listen on ${host} (${describe('grpcHost')}) with no caller authentication, so anyone who reaches it could push to, list and log out any user: ` +
        `set ${describe('apiKeysFile')} or ${describe('apiKeys')} (API keys) or ${describe('tlsClientCa')} (client certificates), ` +
        `or ${describe('allowUnauthenticated')}=1 to accept that`,
    );
  }
  return Object.freeze({
    host,
    allowUnauthenticated,
    apiKeysFile,
    apiKeys,
    tlsCert,
    tlsKey,
    tlsClientCa,
    clientCertScopes,
    tlsReloadMs: int('tlsReloadMs', 1000, 86_400_000),
    authHealth: bool('authHealth'),
  });
}

/** Loopback only: nothing off this machine can reach an API bound there. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
