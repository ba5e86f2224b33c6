import type { Command } from 'commander';
import type { Session } from '../gen/pushgate/v1/session.js';
import type { NodeApi } from './connection.js';
import { CliError } from './exit-codes.js';
import { positiveInt, repeatable } from './options.js';
import { cell, isoTime, plural, sessionJson, table, writeJson } from './output.js';

interface SessionsOptions {
  readonly user: string;
  readonly clientType: readonly string[];
  readonly pageSize?: string;
  readonly json?: boolean;
}

/** Far more pages than a user can have sessions for; reaching it means the node keeps handing out tokens. */
const MAX_PAGES = 10_000;

export function defineSessions(
  program: Command,
  run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>,
): Command {
  return program
    .command('sessions')
    .description('list the live sessions of a user, on every node, oldest connection first')
    .requiredOption('--user <id>', 'the user whose sessions to list')
    .addOption(repeatable('--client-type <type>', 'only sessions of this client type', 'every client type'))
    .option('--page-size <n>', 'sessions per ListSessions call; every page is fetched (default: the node’s PUSHGATE_MAX_LIST_PAGE_SIZE)')
    .option('--json', 'print {"sessions": [...]} as JSON, for scripts')
    .action(async (options: SessionsOptions, command: Command) =>
      run(command, async (api) => {
        const pageSize = options.pageSize === undefined ? 0 : positiveInt('--page-size', options.pageSize, 1_000_000);
        const sessions = await listAll(api, options.user, options.clientType, pageSize);
        if (options.json) writeJson({ sessions: sessions.map(sessionJson) });
        else process.stdout.write(sessionsReport(options.user, sessions));
      }),
    );
}

/** Follows next_page_token to the last page. */
async function listAll(api: NodeApi, userId: string, clientTypes: readonly string[], pageSize: number): Promise<Session[]> {
  const sessions: Session[] = [];
  let pageToken = '';
  for (let page = 0; page < MAX_PAGES; page++) {
    const response = await api.call('listSessions', { userId, clientTypes: [...clientTypes], pageSize, pageToken });
    sessions.push(...response.sessions);
    if (response.nextPageToken === '') return sessions;
    pageToken = response.nextPageToken;
  }
  throw new CliError('INTERNAL', `the node returned more than ${MAX_PAGES} pages of sessions; stopped`, 13);
}

function sessionsReport(userId: string, sessions: readonly Session[]): string {
  if (sessions.length === 0) return `user ${userId} has no live session\n`;
  const rows = sessions.map((s) => [
    s.sessionId,
    s.clientType,
    s.nodeId,
    isoTime(s.connectedAt),
    isoTime(s.lastSeenAt),
    s.remoteAddress,
    cell(s.userAgent, 40),
  ]);
  const head = ['session', 'client type', 'node', 'connected', 'last seen', 'address', 'user agent'];
  return `${table(head, rows)}${plural(sessions.length, 'session')} of user ${userId}\n`;
}
