import { createPublicKey, type KeyObject } from 'node:crypto';
import { errors, type JWTVerifyOptions, jwtVerify, SignJWT } from 'jose';
import type { AuthConfig } from '../config/config.js';
import { isWellFormed, MAX_USER_ID_LENGTH } from '../domain/session.js';
import { PushgateError } from '../errors.js';

/** Tokens issued this far in the future are still accepted: servers' clocks are never exactly in step. */
const CLOCK_SKEW_SECONDS = 60;

export interface VerifiedToken {
  readonly userId: string;
  /** When the token's exp passes: a socket it opened is closed then, unless refreshed. */
  readonly expiresAtMs: number;
}

/** Verifies client tokens: a JWT whose `sub` is the user id and whose `exp` is required. */
export class TokenVerifier {
  private readonly key: Uint8Array | KeyObject;
  private readonly options: JWTVerifyOptions;

  constructor(private readonly auth: AuthConfig) {
    let algorithm = 'HS256';
    if (auth.jwtPublicKey !== undefined) {
      const key = createPublicKey(auth.jwtPublicKey);
      algorithm = key.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
      this.key = key;
    } else {
      this.key = new TextEncoder().encode(auth.jwtSecret);
    }
    this.options = {
      algorithms: [algorithm],
      requiredClaims: ['exp', 'sub'],
      ...(auth.jwtIssuer !== undefined && { issuer: auth.jwtIssuer }),
      ...(auth.jwtAudience !== undefined && { audience: auth.jwtAudience }),
    };
  }

  /** Resolves to the verified user id and the token's expiry, or throws a PushgateError whose code says what was wrong. */
  async verify(token: string): Promise<VerifiedToken> {
    let sub: unknown;
    let exp: number | undefined;
    let iat: number | undefined;
    try {
      ({
        payload: { sub, exp, iat },
      } = await jwtVerify(token, this.key, this.options));
    } catch (err) {
      throw tokenError(err);
    }
    const nowS = Date.now() / 1000;
    if (iat !== undefined && iat > nowS + CLOCK_SKEW_SECONDS) {
      throw new PushgateError(
        'token_claims_invalid',
        `token claim "iat" is in the future (more than ${CLOCK_SKEW_SECONDS} s of clock skew)`,
      );
    }
    // exp is required (requiredClaims): a token valid for years is a stolen token that never dies.
    const lifetimeS = exp! - (iat ?? nowS);
    if (lifetimeS > this.auth.maxTokenTtlSeconds) {
      throw new PushgateError(
        'token_claims_invalid',
        `token claim "exp" is ${Math.round(lifetimeS)} s after "iat", longer than the ${this.auth.maxTokenTtlSeconds} s allowed (PUSHGATE_MAX_TOKEN_TTL)`,
      );
    }
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_USER_ID_LENGTH) {
      throw new PushgateError('token_claims_invalid', `token claim "sub" must be a user id of 1-${MAX_USER_ID_LENGTH} characters`);
    }
    if (!isWellFormed(sub)) {
      throw new PushgateError('token_claims_invalid', 'token claim "sub" is not well-formed Unicode (it holds a lone surrogate)');
    }
    return { userId: sub, expiresAtMs: exp! * 1000 };
  }

  /** Development tokens, signed with the configured or generated HS256 secret. */
  canMint(): boolean {
    return this.auth.jwtSecret !== undefined;
  }

  async mint(userId: string, ttlSeconds: number): Promise<string> {
    if (this.auth.jwtSecret === undefined) {
      throw new PushgateError('dev_mode_disabled', 'tokens cannot be minted when PUSHGATE_JWT_PUBLIC_KEY is used');
    }
    let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime(`${ttlSeconds}s`);
    if (this.auth.jwtIssuer !== undefined) jwt = jwt.setIssuer(this.auth.jwtIssuer);
    if (this.auth.jwtAudience !== undefined) jwt = jwt.setAudience(this.auth.jwtAudience);
    return jwt.sign(this.key as Uint8Array);
  }
}

function tokenError(err: unknown): PushgateError {
  if (err instanceof errors.JWTExpired) {
    return new PushgateError('token_expired', 'token expired (exp claim is in the past)', { cause: err });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new PushgateError('token_claims_invalid', `token claim "${err.claim}" is invalid: ${err.message}`, { cause: err });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new PushgateError('token_signature_invalid', 'token signature is invalid (forged, or signed with another key)', { cause: err });
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new PushgateError(
      'token_algorithm_not_allowed',
      `token is signed with an algorithm this server does not accept: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return new PushgateError('token_malformed', `token is not a valid JWT: ${(err as Error).message}`, { cause: err });
}
