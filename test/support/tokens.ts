import { SignJWT } from 'jose';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export interface TokenOptions {
  readonly secret?: string;
  /** Seconds from now; negative for an expired token. Omit `exp` entirely with `null`. */
  readonly expiresIn?: number | null;
  readonly alg?: string;
}

/** Signs a client token the way a backend would. */
export async function signToken(userId: string | undefined, options: TokenOptions = {}): Promise<string> {
  const { secret = TEST_SECRET, expiresIn = 3600, alg = 'HS256' } = options;
  let jwt = new SignJWT({}).setProtectedHeader({ alg }).setIssuedAt();
  if (userId !== undefined) jwt = jwt.setSubject(userId);
  if (expiresIn !== null) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}
