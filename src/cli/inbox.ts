import type { Command } from 'commander';
import { type InboxMessage, removalPolicyToJSON } from '../gen/pushgate/v1/inbox.js';
import type { NodeApi } from './connection.js';
import { positiveInt } from './options.js';
import { cell, isoTime, plural, shortEnum, table, writeJson } from './output.js';

interface InboxOptions {
  readonly user: string;
  readonly limit: string;
  readonly pageSize?: string;
  readonly json?: boolean;
}

const DEFAULT_LIMIT = '1000';

export function defineInbox(program: Command, run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>): Command {
  return program
    .command('inbox')
    .description('list the messages kept in a user’s offline inbox (stored pushes no session has acked yet), oldest first')
    .requiredOption('--user <id>', 'the user whose inbox to list')
    .option('--limit <n>', 'show at most this many messages, paging through ListInbox as needed', DEFAULT_LIMIT)
    .option('--page-size <n>', 'messages per ListInbox call (default: the node’s PUSHGATE_MAX_LIST_PAGE_SIZE)')
    .option('--json', 'print {"messages": [...], "more": bool} as JSON, for scripts')
    .action(async (options: InboxOptions, command: Command) =>
      run(command, async (api) => {
        const limit = positiveInt('--limit', options.limit, 1_000_000);
        const pageSize = options.pageSize === undefined ? 0 : positiveInt('--page-size', options.pageSize, 1_000_000);
        const { messages, more } = await listUpTo(api, options.user, limit, pageSize);
        if (options.json) writeJson({ messages: messages.map(inboxMessageJson), more });
        else process.stdout.write(inboxReport(options.user, messages, more));
      }),
    );
}

/** Follows next_page_token until the last page or `limit` messages; `more` says whether messages were left unread. */
async function listUpTo(
  api: NodeApi,
  userId: string,
  limit: number,
  pageSize: number,
): Promise<{ messages: InboxMessage[]; more: boolean }> {
  const messages: InboxMessage[] = [];
  let pageToken = '';
  do {
    const asked = pageSize === 0 ? limit - messages.length : Math.min(pageSize, limit - messages.length);
    const page = await api.call('listInbox', { userId, pageSize: asked, pageToken });
    messages.push(...page.messages);
    pageToken = page.nextPageToken;
  } while (pageToken !== '' && messages.length < limit);
  return { messages: messages.slice(0, limit), more: pageToken !== '' || messages.length > limit };
}

function inboxReport(userId: string, messages: readonly InboxMessage[], more: boolean): string {
  if (messages.length === 0) return `user ${userId} has no stored message\n`;
  const rows = messages.map((m) => [
    m.messageId,
    m.event,
    isoTime(m.sentAt),
    isoTime(m.expiresAt),
    String(m.attempts),
    m.clientTypes.join(',') || 'all',
    removal(m),
    cell(m.data === undefined ? '' : JSON.stringify(m.data), 40),
  ]);
  const head = ['message', 'event', 'sent', 'expires', 'attempts', 'client types', 'removal', 'data'];
  const tail = more ? ' (there may be more: raise --limit)' : '';
  return `${table(head, rows)}${plural(messages.length, 'message')} in the inbox of user ${userId}${tail}\n`;
}

function removal(m: InboxMessage): string {
  const name = shortEnum(removalPolicyToJSON(m.removal), 'REMOVAL_POLICY_').toLowerCase();
  return m.ackedClientTypes.length > 0 ? `${name} (acked: ${m.ackedClientTypes.join(',')})` : name;
}

function inboxMessageJson(m: InboxMessage): unknown {
  return {
    messageId: m.messageId,
    event: m.event,
    ...(m.data !== undefined && { data: m.data }),
    clientTypes: m.clientTypes,
    removal: removalPolicyToJSON(m.removal),
    sentAt: isoTime(m.sentAt),
    expiresAt: isoTime(m.expiresAt),
    attempts: m.attempts,
    ackedClientTypes: m.ackedClientTypes,
    seq: m.seq,
  };
}
