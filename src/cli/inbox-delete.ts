import type { Command } from 'commander';
import type { NodeApi } from './connection.js';
import { usageError } from './exit-codes.js';
import { plural, writeJson } from './output.js';

interface InboxDeleteOptions {
  readonly user: string;
  readonly all?: boolean;
  readonly json?: boolean;
}

export function defineInboxDelete(
  program: Command,
  run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>,
): Command {
  return program
    .command('inbox-delete')
    .description('remove messages from a user’s offline inbox (chosen ones, or --all): they are not replayed any more')
    .argument('[message-id...]', 'the messages to remove (see pushgate inbox)')
    .requiredOption('--user <id>', 'the user whose inbox to change')
    .option('--all', 'remove every message of the user’s inbox')
    .option('--json', 'print {"deleted": n} as JSON, for scripts')
    .action(async (messageIds: readonly string[], options: InboxDeleteOptions, command: Command) =>
      run(command, async (api) => {
        if (options.all === true && messageIds.length > 0) throw usageError('give message ids or --all, not both');
        if (options.all !== true && messageIds.length === 0) throw usageError('name the message ids to remove, or pass --all');
        const { deleted } = await api.call('deleteInbox', { userId: options.user, messageIds: [...messageIds], all: options.all === true });
        if (options.json) {
          writeJson({ deleted });
          return;
        }
        const asked = options.all ? 'every message' : plural(messageIds.length, 'message id');
        process.stdout.write(`removed ${plural(deleted, 'message')} from the inbox of user ${options.user} (asked: ${asked})\n`);
      }),
    );
}
