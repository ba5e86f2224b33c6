import type { Command } from 'commander';
import type { NodeApi } from './connection.js';
import { repeatable } from './options.js';
import { plural, sessionJson, table, writeJson } from './output.js';

interface KickOptions {
  readonly user: string;
  readonly session: readonly string[];
  readonly clientType: readonly string[];
  readonly reason?: string;
  readonly json?: boolean;
}

export function defineKick(program: Command, run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>): Command {
  return program
    .command('kick')
    .description('close sessions of a user; each client is told why (event "pushgate:disconnect") before its socket closes')
    .requiredOption('--user <id>', 'the user whose sessions to close')
    .addOption(repeatable('--session <id>', 'only this session', 'every session'))
    .addOption(repeatable('--client-type <type>', 'only sessions of this client type', 'every client type'))
    .option('--reason <text>', 'the reason the clients receive (default: kicked)')
    .option('--json', 'print {"disconnected": [...]} as JSON, for scripts')
    .action(async (options: KickOptions, command: Command) =>
      run(command, async (api) => {
        const response = await api.call('disconnectSessions', {
          userId: options.user,
          sessionIds: [...options.session],
          clientTypes: [...options.clientType],
          reason: options.reason ?? '',
        });
        if (options.json) {
          writeJson({ disconnected: response.disconnected.map(sessionJson) });
          return;
        }
        const closed = response.disconnected;
        if (closed.length === 0) {
          process.stdout.write(`user ${options.user} had no matching live session: nothing was closed\n`);
          return;
        }
        const rows = closed.map((s) => [s.sessionId, s.clientType, s.nodeId]);
        process.stdout.write(
          `${table(['session', 'client type', 'node'], rows)}closed ${plural(closed.length, 'session')} of user ${options.user} (reason: ${options.reason ?? 'kicked'})\n`,
        );
      }),
    );
}
