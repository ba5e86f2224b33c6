import type { Command } from 'commander';
import { deliveryModeToJSON, ReceiptEventKind, receiptEventKindToJSON } from '../gen/pushgate/v1/inbox.js';
import type { DeliveryAttempt, GetMessageResponse } from '../gen/pushgate/v1/push_service.js';
import type { NodeApi } from './connection.js';
import { deliveryJson, deliveryRow, isoTime, plural, shortEnum, table, writeJson } from './output.js';

interface MessageOptions {
  readonly json?: boolean;
}

export function defineMessage(
  program: Command,
  run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>,
): Command {
  return program
    .command('message')
    .description(
      'show what became of a push (GetMessage): each session’s latest status, acks that came after the call, replays, the inbox; ' +
        'kept for pushes with your own --message-id, a storing mode or --wait-for any/none (exit 5, NOT_FOUND, otherwise)',
    )
    .argument('<message-id>', 'the push’s message id (a batch push: <batch id>:<user id>)')
    .option('--json', 'print the receipt as JSON, for scripts')
    .action(async (messageId: string, options: MessageOptions, command: Command) =>
      run(command, async (api) => {
        const receipt = await api.call('getMessage', { messageId });
        if (options.json) writeJson(receiptJson(receipt));
        else process.stdout.write(receiptReport(receipt));
      }),
    );
}

function receiptReport(r: GetMessageResponse): string {
  const mode = shortEnum(deliveryModeToJSON(r.deliveryMode), 'DELIVERY_MODE_').toLowerCase();
  const inbox = r.stored
    ? `stored, expires ${isoTime(r.expiresAt)}`
    : r.removed !== ReceiptEventKind.RECEIPT_EVENT_KIND_UNSPECIFIED
      ? `left the inbox ${isoTime(r.removedAt)}: ${shortEnum(receiptEventKindToJSON(r.removed), 'RECEIPT_EVENT_KIND_').toLowerCase()}`
      : 'not stored';
  const header = `message ${r.messageId} to user ${r.userId}: event ${r.event}, sent ${isoTime(r.sentAt)}, ${mode}; ${inbox}\n`;
  if (r.deliveries.length === 0) return `${header}no session has been sent it yet\n`;
  const rows = r.deliveries.map((d, i) => {
    const [session, clientType, node, status, latency, ackOrError] = deliveryRow(d);
    const attempt = r.attempts[i];
    return [
      session!,
      clientType!,
      node!,
      status!,
      String(attempt?.attempt ?? ''),
      attempt?.replay ? 'yes' : 'no',
      isoTime(attempt?.at),
      latency!,
      ackOrError!,
    ];
  });
  const head = ['session', 'client type', 'node', 'status', 'attempt', 'replay', 'at', 'latency', 'ack data / error'];
  return `${header}${table(head, rows)}${plural(r.deliveries.length, 'session')}\n`;
}

function receiptJson(r: GetMessageResponse): unknown {
  return {
    messageId: r.messageId,
    userId: r.userId,
    event: r.event,
    sentAt: isoTime(r.sentAt),
    deliveryMode: deliveryModeToJSON(r.deliveryMode),
    stored: r.stored,
    expiresAt: isoTime(r.expiresAt),
    removed: receiptEventKindToJSON(r.removed),
    removedAt: isoTime(r.removedAt),
    deliveries: r.deliveries.map((d, i) => ({ ...(deliveryJson(d) as object), ...attemptJson(r.attempts[i]) })),
  };
}

function attemptJson(a: DeliveryAttempt | undefined): { attempt: number; replay: boolean; at: string } {
  return { attempt: a?.attempt ?? 0, replay: a?.replay ?? false, at: isoTime(a?.at) };
}
