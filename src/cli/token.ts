import type { Command } from 'commander';
import { SignJWT } from 'jose';
import { MINTING_SETTINGS, type MintingConfig, parseMinting } from '../config/client.js';
import { addOptions, createReader, type Env, envOnlyHelp } from '../config/settings.js';
import { isWellFormed, MAX_USER_ID_LENGTH } from '../domain/session.js';
import { invalidArgument, usageError } from './exit-codes.js';
import { durationMs } from './options.js';
import { writeJson } from './output.js';

interface TokenOptions {
  readonly user: string;
  readonly clientType?: string;
  readonly ttl?: string;
  readonly json?: boolean;
}

const DEFAULT_TTL_SECONDS = 3600;

export function defineToken(program: Command, env: Env): Command {
  const command = program
    .command('token')
    .description('mint a client token (a JWT a Socket.IO client sends as auth.token), signed as the nodes verify')
    .requiredOption('--user <id>', 'the user the token is for (its sub claim)')
    .option('--client-type <type>', 'the clientType the client will send; shown in --json as the ready auth object')
    .option('--ttl <duration>', 'how long the token is valid: seconds or 30m, 1h, 7d (default 1h, at most PUSHGATE_MAX_TOKEN_TTL)')
    .option('--json', 'print {token, userId, expiresAt, auth} as JSON')
    .addHelpText(
      'after',
      '\nThe token is signed with the node’s own setting: PUSHGATE_JWT_SECRET (HS256), or PUSHGATE_JWT_PRIVATE_KEY, the private half of\n' +
        'the PUSHGATE_JWT_PUBLIC_KEY the nodes verify with (RS256/ES256). The client type is not part of the token: a client picks it at connect.\n',
    );
  addOptions(command, 'Signing (the node’s settings):', MINTING_SETTINGS);
  command.addHelpText('after', envOnlyHelp(MINTING_SETTINGS));
  return command.action(async (options: TokenOptions) => {
    const minting = parseMinting(createReader(MINTING_SETTINGS, command.opts(), env));
    const ttlSeconds = ttlOf(options.ttl, minting.maxTokenTtlSeconds);
    requireUserId(options.user);
    const issuedAtS = Math.floor(Date.now() / 1000);
    const expiresAt = new Date((issuedAtS + ttlSeconds) * 1000);
    const token = await mint(minting, options.user, issuedAtS, expiresAt);
    if (!options.json) {
      process.stdout.write(`${token}\n`);
      return;
    }
    const clientType = options.clientType?.trim().toLowerCase();
    writeJson({
      token,
      userId: options.user,
      expiresAt: expiresAt.toISOString(),
      auth: { token, ...(clientType !== undefined && { clientType }) },
    });
  });
}

function ttlOf(value: string | undefined, maxSeconds: number): number {
  if (value === undefined) return Math.min(DEFAULT_TTL_SECONDS, maxSeconds);
  const ms = durationMs('--ttl', value, 's');
  if (ms < 1000 || ms % 1000 !== 0) throw usageError(`--ttl must be a whole number of seconds, at least 1, got "${value}"`);
  if (ms / 1000 > maxSeconds) {
    throw usageError(`--ttl ${value} is longer than PUSHGATE_MAX_TOKEN_TTL (${maxSeconds} s): nodes would refuse the token`);
  }
  return ms / 1000;
}

/** The same rule the edge applies to a token's sub, so a token minted here is never refused for it. */
function requireUserId(userId: string): void {
  if (userId.length === 0 || userId.length > MAX_USER_ID_LENGTH) {
    throw invalidArgument(`--user must be a user id of 1-${MAX_USER_ID_LENGTH} characters`);
  }
  if (!isWellFormed(userId)) throw invalidArgument('--user is not well-formed Unicode');
}

function mint(minting: MintingConfig, userId: string, issuedAtS: number, expiresAt: Date): Promise<string> {
  const { key } = minting;
  let jwt = new SignJWT({})
    .setProtectedHeader({ alg: key.algorithm, typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt(issuedAtS)
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000));
  if (minting.issuer !== undefined) jwt = jwt.setIssuer(minting.issuer);
  if (minting.audience !== undefined) jwt = jwt.setAudience(minting.audience);
  return jwt.sign(key.algorithm === 'HS256' ? key.secret : key.privateKey);
}
