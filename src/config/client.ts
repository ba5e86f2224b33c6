import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { AUTH_SETTINGS } from './auth.js';
import { SERVER_SETTINGS } from './server.js';
import type { SettingsReader, Spec } from './settings.js';

/**
 * The settings of the operator commands (`pushgate push`, `sessions`, `presence`, `kick`,
 * `token`): how they reach a node, and how `token` signs. Where a setting means the same as the
 * server's it has the server's name, so one environment serves both.
 */
export interface ConnectionConfig {
  /** host:port of a node's gRPC API. */
  readonly address: string;
  /** Sent as `authorization: Bearer <key>`; undefined: none. */
  readonly apiKey: string | undefined;
  /** Undefined: plaintext. */
  readonly tls: ClientTls | undefined;
}

export interface ClientTls {
  /** PEM CA bundle to trust; undefined: the system's roots. */
  readonly ca: Buffer | undefined;
  /** PEM client certificate chain and key, for mutual TLS; both or neither. */
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  /** The name to expect in the server's certificate, when it differs from the address's host. */
  readonly serverName: string | undefined;
}

export const CONNECTION_SETTINGS = {
  address: {
    flag: '--address <host:port>',
    env: 'PUSHGATE_ADDRESS',
    fallback: '127.0.0.1:<PUSHGATE_GRPC_PORT or 50051>',
    help: 'gRPC API of the node to call',
  },
  // Env only, read for the default address: a shell set up for the node reaches it as it is.
  grpcPort: { ...SERVER_SETTINGS.grpcPort, envOnly: true, help: 'the node’s gRPC port, when PUSHGATE_ADDRESS is unset' },
  apiKey: {
    flag: '',
    env: 'PUSHGATE_API_KEY',
    envOnly: true,
    help: 'API key the commands send (the secret part of one PUSHGATE_API_KEYS entry)',
  },
  apiKeyFile: { flag: '--api-key-file <path>', env: 'PUSHGATE_API_KEY_FILE', help: 'file holding the API key to send' },
  tls: { flag: '--tls', env: 'PUSHGATE_TLS', boolean: true, fallback: 'off', help: 'call over TLS, trusting the system’s CAs' },
  tlsCa: { flag: '--tls-ca <path>', env: 'PUSHGATE_TLS_CA', help: 'PEM CA bundle to trust for the node’s certificate (implies --tls)' },
  tlsCert: { flag: '--tls-cert <path>', env: 'PUSHGATE_TLS_CERT', help: 'PEM client certificate, for mutual TLS (implies --tls)' },
  tlsKey: { flag: '--tls-key <path>', env: 'PUSHGATE_TLS_KEY', help: 'PEM private key of the client certificate' },
  tlsServerName: {
    flag: '--tls-server-name <name>',
    env: 'PUSHGATE_TLS_SERVER_NAME',
    help: 'name to expect in the node’s certificate, if not the address’s host',
  },
} as const satisfies Record<string, Spec>;

export type ConnectionKey = keyof typeof CONNECTION_SETTINGS;

const DEFAULT_GRPC_PORT = 50051;

export function parseConnection(settings: SettingsReader<ConnectionKey>): ConnectionConfig {
  const { raw, int, bool, describe } = settings;
  const address = raw('address') ?? `127.0.0.1:${raw('grpcPort') === undefined ? DEFAULT_GRPC_PORT : int('grpcPort', 1, 65535)}`;
  // Without a port grpc-js would quietly call port 443: name the mistake instead.
  if (!/^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(address) && !/^unix:\S+$/.test(address)) {
    throw new ConfigError(
      `${describe('address')} must be host:port (e.g. 127.0.0.1:50051 or [::1]:50051) or unix:<path>, got "${address}"`,
    );
  }
  const apiKeyFile = raw('apiKeyFile');
  let apiKey = raw('apiKey');
  if (apiKeyFile !== undefined) {
    if (apiKey !== undefined) throw new ConfigError(`set either ${describe('apiKey')} or ${describe('apiKeyFile')}, not both`);
    apiKey = readText(apiKeyFile, describe('apiKeyFile')).trim();
    if (apiKey === '') throw new ConfigError(`${describe('apiKeyFile')} names an empty file: ${apiKeyFile}`);
  }
  const file = (key: 'tlsCa' | 'tlsCert' | 'tlsKey'): Buffer | undefined => {
    const path = raw(key);
    return path === undefined ? undefined : Buffer.from(readText(path, describe(key)));
  };
  const ca = file('tlsCa');
  const cert = file('tlsCert');
  const key = file('tlsKey');
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(`${describe('tlsCert')} and ${describe('tlsKey')} go together: set both for mutual TLS, or neither`);
  }
  const serverName = raw('tlsServerName');
  const tls = bool('tls') || ca !== undefined || cert !== undefined || serverName !== undefined;
  return Object.freeze({ address, apiKey, tls: tls ? Object.freeze({ ca, cert, key, serverName }) : undefined });
}

/** How `pushgate token` signs: the node's HS256 secret, or the private half of its public key. */
export interface MintingConfig {
  readonly key:
    | { readonly algorithm: 'HS256'; readonly secret: Uint8Array }
    | { readonly algorithm: 'RS256' | 'ES256'; readonly privateKey: KeyObject };
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** The node's PUSHGATE_MAX_TOKEN_TTL: a longer token would be refused. */
  readonly maxTokenTtlSeconds: number;
}

export const MINTING_SETTINGS = {
  jwtSecret: AUTH_SETTINGS.jwtSecret,
  jwtPublicKey: AUTH_SETTINGS.jwtPublicKey,
  jwtPrivateKey: {
    flag: '--jwt-private-key <pem-or-path>',
    env: 'PUSHGATE_JWT_PRIVATE_KEY',
    help: 'private key matching PUSHGATE_JWT_PUBLIC_KEY (PEM text or a path), for `pushgate token` only; the node never needs it',
  },
  jwtIssuer: AUTH_SETTINGS.jwtIssuer,
  jwtAudience: AUTH_SETTINGS.jwtAudience,
  maxTokenTtl: AUTH_SETTINGS.maxTokenTtl,
} as const satisfies Record<string, Spec>;

export type MintingKey = keyof typeof MINTING_SETTINGS;

export function parseMinting(settings: SettingsReader<MintingKey>): MintingConfig {
  const { raw, int, describe } = settings;
  const secret = raw('jwtSecret');
  const privateValue = raw('jwtPrivateKey');
  const publicValue = raw('jwtPublicKey');
  if (secret !== undefined && privateValue !== undefined) {
    throw new ConfigError(`set either ${describe('jwtSecret')} or ${describe('jwtPrivateKey')}, not both`);
  }
  let key: MintingConfig['key'];
  if (secret !== undefined) {
    if (secret.length < 32) throw new ConfigError(`${describe('jwtSecret')} must be at least 32 characters, as on the node`);
    key = { algorithm: 'HS256', secret: new TextEncoder().encode(secret) };
  } else if (privateValue !== undefined) {
    const privateKey = privateKeyOf(privateValue, describe('jwtPrivateKey'));
    if (publicValue !== undefined) checkPair(privateKey, publicValue, describe('jwtPrivateKey'), describe('jwtPublicKey'));
    key = { algorithm: privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256', privateKey };
  } else if (publicValue !== undefined) {
    throw new ConfigError(
      `${describe('jwtPublicKey')} only verifies tokens; minting one needs the private key: set ${describe('jwtPrivateKey')} to its PEM text or path`,
    );
  } else {
    throw new ConfigError(
      `nothing to sign with: set ${describe('jwtSecret')} (the node's HS256 secret) or ${describe('jwtPrivateKey')} (the private half of its ${describe('jwtPublicKey')}); ` +
        'a development node with a generated secret mints tokens at GET /dev/token instead',
    );
  }
  return Object.freeze({
    key,
    issuer: raw('jwtIssuer'),
    audience: raw('jwtAudience'),
    maxTokenTtlSeconds: int('maxTokenTtl', 60, 30 * 24 * 3600),
  });
}

/** The --help lines the server's help adds for these settings (every PUSHGATE_* variable is listed there). */
export function operatorSettingsHelp(): string {
  const specs: Spec[] = [...Object.values(CONNECTION_SETTINGS), MINTING_SETTINGS.jwtPrivateKey];
  const lines = specs.filter((spec) => spec.env !== SERVER_SETTINGS.grpcPort.env).map((spec) => `  ${spec.env}  ${spec.help}\n`);
  return `\nRead by the operator commands (pushgate push, sessions, presence, kick, token; see pushgate <command> --help):\n${lines.join('')}`;
}

function readText(path: string, named: string): string {
  if (!existsSync(path)) throw new ConfigError(`${named} names a file that does not exist: ${path}`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${named} cannot be read: ${(err as Error).message}`);
  }
}

function privateKeyOf(value: string, named: string): KeyObject {
  const pem = value.includes('-----BEGIN') ? value : readText(value, named);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`${named} is not a valid PEM private key: ${(err as Error).message}`);
  }
  const { modulusLength, namedCurve } = key.asymmetricKeyDetails ?? {};
  const usable =
    key.asymmetricKeyType === 'rsa' ? (modulusLength ?? 0) >= 2048 : key.asymmetricKeyType === 'ec' && namedCurve === 'prime256v1';
  if (!usable)
    throw new ConfigError(`${named} must be an RSA key of at least 2048 bits (RS256) or an EC P-256 key (ES256), as the node verifies`);
  return key;
}

/** A private key that does not match the node's public key would mint tokens every node refuses. */
function checkPair(privateKey: KeyObject, publicValue: string, privateNamed: string, publicNamed: string): void {
  const pem = publicValue.includes('-----BEGIN') ? publicValue : readText(publicValue, publicNamed);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(`${publicNamed} is not a valid PEM public key: ${(err as Error).message}`);
  }
  const spki = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
  if (spki(createPublicKey(privateKey)) !== spki(publicKey)) {
    throw new ConfigError(`${privateNamed} is not the private half of ${publicNamed}: nodes would refuse every token it signs`);
  }
}
