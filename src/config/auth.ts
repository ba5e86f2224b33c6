import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/** How the Socket.IO edge verifies client tokens. */
export interface AuthConfig {
  /** HS256 secret; undefined when a public key is used. */
  readonly jwtSecret: string | undefined;
  /** PEM public key (RS256 or ES256); undefined when a secret is used. */
  readonly jwtPublicKey: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  /** True when the secret was generated because PUSHGATE_DEV is on and none was given. */
  readonly secretGenerated: boolean;
  /** Legacy mode: trust `userId` from the query string when no token is sent. */
  readonly insecureQueryAuth: boolean;
  /** Longest a token may be valid (exp after iat, or after now without iat), in seconds. */
  readonly maxTokenTtlSeconds: number;
}

export const AUTH_SETTINGS = {
  jwtSecret: { flag: '', env: 'PUSHGATE_JWT_SECRET', envOnly: true, help: 'HS256 secret for client tokens (at least 32 characters)' },
  jwtPublicKey: {
    flag: '--jwt-public-key <pem-or-path>',
    env: 'PUSHGATE_JWT_PUBLIC_KEY',
    help: 'RS256/ES256 public key (PEM text or a file path), instead of a secret',
  },
  jwtIssuer: { flag: '--jwt-issuer <iss>', env: 'PUSHGATE_JWT_ISSUER', help: 'required `iss` claim of client tokens' },
  jwtAudience: { flag: '--jwt-audience <aud>', env: 'PUSHGATE_JWT_AUDIENCE', help: 'required `aud` claim of client tokens' },
  maxTokenTtl: {
    flag: '--max-token-ttl <seconds>',
    env: 'PUSHGATE_MAX_TOKEN_TTL',
    fallback: '604800',
    help: 'longest lifetime (exp − iat) a client token may have, in seconds',
  },
  insecureQueryAuth: {
    flag: '--insecure-query-auth',
    env: 'PUSHGATE_INSECURE_QUERY_AUTH',
    boolean: true,
    fallback: 'off',
    help: 'UNSAFE: trust userId from the query string (legacy clients)',
  },
} as const satisfies Record<string, Spec>;

export type AuthKey = keyof typeof AUTH_SETTINGS;

/**
 * `dev` is the parsed development mode (a server setting): without a secret or a key it allows a
 * generated secret. The reader also reaches the `dev` setting, only to name it in an error.
 */
export function parseAuth(settings: SettingsReader<AuthKey | 'dev'>, dev: boolean): AuthConfig {
  const { raw, bool, int, describe } = settings;
  const insecureQueryAuth = bool('insecureQueryAuth');
  const secret = raw('jwtSecret');
  const keyValue = raw('jwtPublicKey');
  if (secret !== undefined && keyValue !== undefined) {
    throw new ConfigError(`set either ${describe('jwtSecret')} or ${describe('jwtPublicKey')}, not both`);
  }
  if (secret !== undefined && secret.length < 32) {
    throw new ConfigError(`${describe('jwtSecret')} must be at least 32 characters (HS256 needs 256 bits of key)`);
  }
  let publicKey: string | undefined;
  if (keyValue !== undefined) {
    const named = describe('jwtPublicKey');
    publicKey = keyValue.includes('-----BEGIN') ? keyValue : readKeyFile(keyValue, named);
    const unusable = unusableKeyReason(publicKey, named);
    if (unusable !== undefined) {
      throw new ConfigError(`${named} must be an RSA (RS256) or EC P-256 (ES256) public key, got ${unusable}`);
    }
  }
  const generate = secret === undefined && publicKey === undefined;
  if (generate && !dev) {
    throw new ConfigError(
      `no way to verify client tokens: set ${describe('jwtSecret')} or ${describe('jwtPublicKey')} (or ${describe('dev')}=1 for a generated development secret)`,
    );
  }
  return Object.freeze({
    jwtSecret: generate ? randomBytes(32).toString('base64url') : secret,
    jwtPublicKey: publicKey,
    jwtIssuer: raw('jwtIssuer'),
    jwtAudience: raw('jwtAudience'),
    secretGenerated: generate,
    insecureQueryAuth,
    maxTokenTtlSeconds: int('maxTokenTtl', 60, 30 * 24 * 3600),
  });
}

/** `named` is how errors name the setting the path came from. */
function readKeyFile(path: string, named: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${named} is neither PEM text nor a readable file: ${(err as Error).message}`);
  }
}

/** Undefined for a key RS256 or ES256 can verify with; otherwise what the key is instead. */
function unusableKeyReason(pem: string, named: string): string | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(`${named} is not a valid PEM public key: ${(err as Error).message}`);
  }
  const { modulusLength, namedCurve } = key.asymmetricKeyDetails ?? {};
  // RS256 verification refuses RSA keys under 2048 bits; ES256 is defined on P-256 only.
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (modulusLength ?? 0) >= 2048 ? undefined : `a ${modulusLength}-bit RSA key (at least 2048 bits needed)`;
    case 'ec':
      return namedCurve === 'prime256v1' ? undefined : `an EC key on curve ${namedCurve}`;
    default:
      return key.asymmetricKeyType ?? 'an unknown key type';
  }
}
