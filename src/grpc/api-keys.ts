import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type Scope = 'push' | 'read' | 'admin';
export const SCOPES: readonly Scope[] = ['push', 'read', 'admin'];

/** Who made a call, as far as the API knows: a key's or certificate's name and what it may do. */
export interface Caller {
  /** The key's or certificate's name, for logs and limits; '' when the API needs no authentication. */
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
}

interface StoredKey {
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  /** SHA-256 of the secret: the secret itself is never kept. */
  readonly digest: Buffer;
}

/** Thrown for a keys file or variable that cannot be used; the message names where and what, never a secret. */
export class ApiKeysError extends Error {
  override readonly name = 'ApiKeysError';
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const HASHED = /^sha256:([0-9a-f]{64})$/;
/** 24 characters of a random key (base64url) are 144 bits: more than enough, and short keys are typos. */
const MIN_SECRET_LENGTH = 24;

/**
 * The API keys callers present as `authorization: Bearer <key>`. Each has a name (what logs and
 * rate limits see) and scopes. Given as lines `name:scope,scope:secret` — the secret either the key
 * itself or `sha256:<hex digest>` of it, so a keys file need not hold usable keys — or as JSON
 * `[{ "name", "scopes": [...], "key" | "sha256" }]`. Several keys may share a name, so a caller's
 * key can be rotated without downtime: add the new one, switch the caller, remove the old one.
 *
 * Presented keys are hashed and compared against every stored digest in constant time.
 */
export class ApiKeys {
  private keys: readonly StoredKey[];

  constructor(private readonly source: { readonly file: string | undefined; readonly inline: string | undefined }) {
    this.keys = this.load();
  }

  /**
   * True when keys are configured at all: callers must then authenticate. A keys file that holds
   * no key (yet) refuses every caller; it never opens the API.
   */
  get configured(): boolean {
    return this.source.file !== undefined || this.source.inline !== undefined;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Re-reads the keys (SIGHUP): added keys work and removed ones stop working at once. Keeps the old keys if the new ones are unusable. */
  reload(): void {
    this.keys = this.load();
  }

  /** The caller a presented key belongs to, or undefined for a key that is not (or no longer) configured. */
  verify(presented: string): Caller | undefined {
    const digest = sha256(presented);
    let found: StoredKey | undefined;
    // No early exit: every stored digest is compared, so timing says nothing about which one matched.
    for (const key of this.keys) {
      if (timingSafeEqual(key.digest, digest) && found === undefined) found = key;
    }
    return found === undefined ? undefined : { name: found.name, scopes: found.scopes };
  }

  private load(): StoredKey[] {
    const keys: StoredKey[] = [];
    if (this.source.file !== undefined)
      keys.push(...parseKeys(readKeysFile(this.source.file), `PUSHGATE_API_KEYS_FILE (${this.source.file})`));
    if (this.source.inline !== undefined) keys.push(...parseKeys(this.source.inline, 'PUSHGATE_API_KEYS'));
    const digests = new Set<string>();
    for (const key of keys) {
      const hex = key.digest.toString('hex');
      if (digests.has(hex)) throw new ApiKeysError(`API key "${key.name}" has the same secret as another key; every key needs its own`);
      digests.add(hex);
    }
    return keys;
  }
}

function readKeysFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ApiKeysError(`PUSHGATE_API_KEYS_FILE (${path}) cannot be read: ${(err as Error).message}`);
  }
}

function parseKeys(text: string, where: string): StoredKey[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) return parseJsonKeys(trimmed, where);
  return trimmed
    .split(/[\n;]/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line, i) => {
      // The secret is last and may itself contain ':' (a sha256: digest does).
      const [name, scopes, ...secret] = line.split(':');
      if (name === undefined || scopes === undefined || secret.length === 0) {
        throw new ApiKeysError(`${where}, key ${i + 1}: expected name:scope,scope:secret`);
      }
      return storedKey(name, scopes.split(','), secret.join(':'), `${where}, key ${i + 1}`);
    });
}

function parseJsonKeys(text: string, where: string): StoredKey[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ApiKeysError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(list)) throw new ApiKeysError(`${where} must be a JSON array of keys, or { "keys": [...] }`);
  return list.map((entry: unknown, i) => {
    const { name, scopes, key, sha256: digest } = (entry ?? {}) as Record<string, unknown>;
    const at = `${where}, key ${i + 1}`;
    if (typeof name !== 'string' || !Array.isArray(scopes)) throw new ApiKeysError(`${at}: needs "name" and "scopes"`);
    if ((typeof key === 'string') === (typeof digest === 'string'))
      throw new ApiKeysError(`${at}: needs exactly one of "key" and "sha256"`);
    return storedKey(name, scopes.map(String), typeof key === 'string' ? key : `sha256:${String(digest)}`, at);
  });
}

function storedKey(name: string, scopes: readonly string[], secret: string, at: string): StoredKey {
  if (!NAME.test(name)) throw new ApiKeysError(`${at}: the name must be 1-64 characters of A-Z a-z 0-9 . _ -`);
  const unknown = scopes.find((scope) => !SCOPES.includes(scope as Scope));
  if (unknown !== undefined || scopes.length === 0) {
    throw new ApiKeysError(
      `${at} ("${name}"): scopes must be some of ${SCOPES.join(', ')}${unknown === undefined ? '' : `, got "${unknown.slice(0, 16)}"`}`,
    );
  }
  const hashed = HASHED.exec(secret);
  if (hashed === null && secret.length < MIN_SECRET_LENGTH) {
    throw new ApiKeysError(`${at} ("${name}"): the key must be at least ${MIN_SECRET_LENGTH} characters, or sha256:<64 hex digits> of one`);
  }
  return { name, scopes: new Set(scopes as Scope[]), digest: hashed === null ? sha256(secret) : Buffer.from(hashed[1]!, 'hex') };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
