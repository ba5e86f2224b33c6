import type { Command } from 'commander';
import { type ReceiptEvent, receiptEventKindToJSON } from '../gen/pushgate/v1/inbox.js';
import { WatchReceiptsRequest, type WatchReceiptsResponse } from '../gen/pushgate/v1/push_service.js';
import type { NodeApi } from './connection.js';
import { follow } from './follow.js';
import { repeatable } from './options.js';
import { isoTime, shortEnum } from './output.js';

interface ReceiptsOptions {
  readonly user: readonly string[];
  readonly resume?: string;
  readonly json?: boolean;
}

export function defineReceipts(
  program: Command,
  run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>,
): Command {
  return program
    .command('receipts')
    .description('follow receipt events (late acks, acks of replays, stored, expired, dropped, deleted), one line each, until Ctrl-C')
    .addOption(repeatable('--user <id>', 'only this user', 'every user'))
    .option('--resume <cursor>', 'continue after this cursor (the last one a stream showed), on any node; default: from now on')
    .option('--json', 'print each event as one line of JSON, for scripts')
    .addHelpText('after', '\nCtrl-C (SIGINT) or SIGTERM ends the stream and exits 0; stderr then names the last cursor to --resume from.\n')
    .action(async (options: ReceiptsOptions, command: Command) =>
      run(command, (api) => {
        const request = WatchReceiptsRequest.fromPartial({ userIds: [...options.user], resumeAfter: options.resume ?? '' });
        const call = api.client.watchReceipts(request, api.metadata());
        const who = options.user.length === 0 ? 'every user' : `user ${options.user.join(', ')}`;
        process.stderr.write(`watching receipts of ${who} at ${api.config.address} (Ctrl-C to stop)\n`);
        return follow(call, options.resume ?? '', ({ event }: WatchReceiptsResponse) =>
          event === undefined
            ? []
            : [{ cursor: event.cursor, line: options.json ? `${JSON.stringify(eventJson(event))}\n` : eventLine(event) }],
        );
      }),
    );
}

function eventLine(event: ReceiptEvent): string {
  const kind = shortEnum(receiptEventKindToJSON(event.kind), 'RECEIPT_EVENT_KIND_');
  const fields = [`message=${event.messageId}`, `user=${event.userId}`];
  if (event.sessionId !== '') fields.push(`session=${event.sessionId}`, `client-type=${event.clientType}`, `replay=${event.replay}`);
  fields.push(`cursor=${event.cursor}`);
  return `${isoTime(event.at)}  ${kind.padEnd(8)} ${fields.join(' ')}\n`;
}

function eventJson(event: ReceiptEvent): unknown {
  return {
    kind: receiptEventKindToJSON(event.kind),
    messageId: event.messageId,
    userId: event.userId,
    sessionId: event.sessionId,
    clientType: event.clientType,
    replay: event.replay,
    at: isoTime(event.at),
    cursor: event.cursor,
  };
}
