import type { Command } from 'commander';
import { DeliveryStatus, deliveryStatusToJSON, type PushToUserResponse } from '../gen/pushgate/v1/push_service.js';
import { CALL_DEADLINE_MS, type NodeApi } from './connection.js';
import { invalidArgument } from './exit-codes.js';
import { durationMs, repeatable } from './options.js';
import { cell, latency, plural, sessionJson, shortEnum, table, writeJson } from './output.js';

interface PushOptions {
  readonly user: string;
  readonly event: string;
  readonly data?: string;
  readonly clientType: readonly string[];
  readonly timeout?: string;
  readonly ack: boolean;
  readonly messageId?: string;
  readonly json?: boolean;
}

/** Without --timeout the node's default applies, which may be as long as its maximum: leave room for that. */
const DEFAULT_ACK_ROOM_MS = 120_000;

export function definePush(program: Command, run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>): Command {
  return program
    .command('push')
    .description('push an event to the sessions of a user and show what each session did with it')
    .requiredOption('--user <id>', 'the user to push to')
    .requiredOption('--event <name>', 'Socket.IO event name the clients listen to, e.g. notice')
    .option('--data <json>', 'the event’s payload: any JSON value, e.g. \'{"id":1}\' (default: none)')
    .addOption(repeatable('--client-type <type>', 'only sessions of this client type', 'every client type'))
    .option('--timeout <duration>', 'how long each session has to ack: milliseconds or 5s (default: the node’s PUSHGATE_ACK_TIMEOUT_MS)')
    .option('--no-ack', 'fire and forget: ask for no acks; each reachable session is reported SENT')
    .option('--message-id <id>', 'your id for this message, echoed in the result (default: one the node makes)')
    .option('--json', 'print the response as JSON, for scripts')
    .action(async (options: PushOptions, command: Command) =>
      run(command, async (api) => {
        const ackTimeoutMs = options.timeout === undefined ? 0 : durationMs('--timeout', options.timeout, 'ms');
        const response = await api.call(
          'pushToUser',
          {
            userId: options.user,
            event: options.event,
            data: parseData(options.data),
            clientTypes: [...options.clientType],
            ackTimeoutMs,
            noAck: !options.ack,
            messageId: options.messageId ?? '',
          },
          CALL_DEADLINE_MS + (options.ack ? ackTimeoutMs || DEFAULT_ACK_ROOM_MS : 0),
        );
        if (options.json) writeJson(pushJson(response));
        else process.stdout.write(pushReport(options, response));
      }),
    );
}

function parseData(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`--data must be JSON (quote strings: '"hello"'): ${(err as Error).message}`);
  }
}

function pushReport(options: PushOptions, response: PushToUserResponse): string {
  const sent = response.deliveries.filter((d) => d.status === DeliveryStatus.DELIVERY_STATUS_SENT).length;
  const counts = options.ack
    ? `${response.acked} acked, ${response.timedOut} timed out, ${response.failed} failed`
    : `${sent} sent, ${response.failed} failed`;
  const summary = `message ${response.messageId} to user ${options.user}: ${plural(response.deliveries.length, 'session')}, ${counts}\n`;
  if (response.deliveries.length === 0) {
    const types = options.clientType.length > 0 ? ` of client type ${options.clientType.join(', ')}` : '';
    return `user ${options.user} has no live session${types}: nothing was pushed\n${summary}`;
  }
  const rows = response.deliveries.map((d) => [
    d.session?.sessionId ?? '',
    d.session?.clientType ?? '',
    d.session?.nodeId ?? '',
    shortEnum(deliveryStatusToJSON(d.status), 'DELIVERY_STATUS_'),
    latency(d.latencyUs),
    cell(d.error !== '' ? d.error : d.ackData === undefined ? '' : JSON.stringify(d.ackData)),
  ]);
  return table(['session', 'client type', 'node', 'status', 'latency', 'ack data / error'], rows) + summary;
}

function pushJson(response: PushToUserResponse): unknown {
  return {
    messageId: response.messageId,
    acked: response.acked,
    timedOut: response.timedOut,
    failed: response.failed,
    deliveries: response.deliveries.map((d) => ({
      session: sessionJson(d.session),
      status: deliveryStatusToJSON(d.status),
      latencyUs: d.latencyUs,
      ...(d.ackData !== undefined && { ackData: d.ackData }),
      error: d.error,
    })),
  };
}
