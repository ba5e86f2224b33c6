import { type Command, Option } from 'commander';
import { DeliveryMode, RemovalPolicy, WaitFor } from '../gen/pushgate/v1/inbox.js';
import { DeliveryStatus, type PushToUserResponse } from '../gen/pushgate/v1/push_service.js';
import { CALL_DEADLINE_MS, type NodeApi } from './connection.js';
import { invalidArgument, usageError } from './exit-codes.js';
import { durationMs, repeatable } from './options.js';
import { DELIVERY_COLUMNS, deliveryJson, deliveryRow, plural, table, writeJson } from './output.js';
import { pushBatch, usersOf } from './push-batch.js';

interface PushOptions {
  readonly user: readonly string[];
  readonly usersFile?: string;
  readonly event: string;
  readonly data?: string;
  readonly clientType: readonly string[];
  readonly timeout?: string;
  readonly ack: boolean;
  readonly messageId?: string;
  readonly store?: boolean;
  readonly storeIfUnacked?: boolean;
  readonly ttl?: string;
  readonly eachClientType?: boolean;
  readonly waitFor?: 'all' | 'any' | 'none';
  readonly json?: boolean;
}

/** Without --timeout the node's default applies, which may be as long as its maximum: leave room for that. */
const DEFAULT_ACK_ROOM_MS = 120_000;

export function definePush(program: Command, run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>): Command {
  return program
    .command('push')
    .description('push an event to the sessions of a user (or of many: PushToUsers) and show what each session did with it')
    .addOption(
      new Option('--user <id>', 'a user to push to (repeat for several: one batch call)')
        .argParser((value: string, previous: readonly string[]) => [...previous, value])
        .default([], 'none'),
    )
    .option('--users-file <path>', 'push to the users listed in this file, one id per line (- for stdin), beside any --user')
    .requiredOption('--event <name>', 'Socket.IO event name the clients listen to, e.g. notice')
    .option('--data <json>', 'the event’s payload: any JSON value, e.g. \'{"id":1}\' (default: none)')
    .addOption(repeatable('--client-type <type>', 'only sessions of this client type', 'every client type'))
    .option('--timeout <duration>', 'how long each session has to ack: milliseconds or 5s (default: the node’s PUSHGATE_ACK_TIMEOUT_MS)')
    .option('--no-ack', 'fire and forget: ask for no acks; each reachable session is reported SENT')
    .option(
      '--message-id <id>',
      'your id for this message, echoed in the result; one user: a repeat within the node’s PUSHGATE_IDEMPOTENCY_WINDOW_S is not delivered again (default: one the node makes)',
    )
    .addOption(
      new Option('--store', 'keep it in the user’s offline inbox until a session acks it (replayed on connect)').conflicts(
        'storeIfUnacked',
      ),
    )
    .option('--store-if-unacked', 'keep it in the user’s offline inbox only when no session acked it now')
    .option('--ttl <duration>', 'how long a stored message is kept: seconds or 10m, 7d (default: the node’s PUSHGATE_INBOX_TTL_S)')
    .option('--each-client-type', 'a stored message stays until one session of each client type acked it (default: any session’s ack)')
    .addOption(
      new Option(
        '--wait-for <when>',
        'return when all sessions answered, at the first ack, or once sent (one user only; later acks go to receipts)',
      )
        .choices(['all', 'any', 'none'])
        .conflicts('ack'),
    )
    .option('--json', 'print the response as JSON, for scripts (several users: one JSON line per user, then the summary)')
    .action(async (options: PushOptions, command: Command) =>
      run(command, async (api) => {
        const users = usersOf(options.user, options.usersFile);
        if (users.length === 0) throw usageError("required option '--user <id>' (or --users-file) not specified");
        const ackTimeoutMs = options.timeout === undefined ? 0 : durationMs('--timeout', options.timeout, 'ms');
        const deadlineMs = CALL_DEADLINE_MS + (options.ack ? ackTimeoutMs || DEFAULT_ACK_ROOM_MS : 0);
        const common = {
          event: options.event,
          data: parseData(options.data),
          clientTypes: [...options.clientType],
          ackTimeoutMs,
          noAck: !options.ack,
          messageId: options.messageId ?? '',
          ...storageOf(options),
        };
        if (users.length > 1 || options.usersFile !== undefined) {
          if (options.waitFor !== undefined)
            throw usageError('--wait-for is for one user (PushToUser); a push to several users waits for all');
          await pushBatch(api, { ...common, userIds: users }, deadlineMs, options.json === true, options.ack);
          return;
        }
        const user = users[0]!;
        const response = await api.call(
          'pushToUser',
          {
            userId: user,
            ...common,
            waitFor: options.waitFor === undefined ? WaitFor.WAIT_FOR_UNSPECIFIED : WAITS[options.waitFor],
          },
          deadlineMs,
        );
        if (options.json) writeJson(pushJson(response));
        else process.stdout.write(pushReport(user, options, response));
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

const WAITS = { all: WaitFor.WAIT_FOR_ALL, any: WaitFor.WAIT_FOR_ANY, none: WaitFor.WAIT_FOR_NONE } as const;

/** --store / --store-if-unacked and what only means something with them; the node refuses the rest too, but names no flag. */
function storageOf(options: PushOptions): { deliveryMode: DeliveryMode; ttlSeconds: number; removal: RemovalPolicy } {
  const deliveryMode = options.store
    ? DeliveryMode.DELIVERY_MODE_STORE
    : options.storeIfUnacked
      ? DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED
      : DeliveryMode.DELIVERY_MODE_UNSPECIFIED;
  if (deliveryMode === DeliveryMode.DELIVERY_MODE_UNSPECIFIED) {
    for (const [flag, given] of [
      ['--ttl', options.ttl !== undefined],
      ['--each-client-type', options.eachClientType === true],
    ] as const) {
      if (given) throw invalidArgument(`${flag} is for stored messages: add --store or --store-if-unacked`);
    }
  }
  const ttlMs = options.ttl === undefined ? 0 : durationMs('--ttl', options.ttl, 's');
  if (ttlMs % 1000 !== 0) throw usageError(`--ttl is whole seconds, got "${options.ttl}"`);
  return {
    deliveryMode,
    ttlSeconds: ttlMs / 1000,
    removal: options.eachClientType ? RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE : RemovalPolicy.REMOVAL_POLICY_UNSPECIFIED,
  };
}

function pushReport(user: string, options: PushOptions, response: PushToUserResponse): string {
  const sent = response.deliveries.filter((d) => d.status === DeliveryStatus.DELIVERY_STATUS_SENT).length;
  const pending = response.deliveries.filter((d) => d.status === DeliveryStatus.DELIVERY_STATUS_PENDING).length;
  const counts = options.ack
    ? `${response.acked} acked, ${response.timedOut} timed out, ${response.failed} failed${pending > 0 ? `, ${pending} pending` : ''}`
    : `${sent} sent, ${response.failed} failed`;
  const notes = [
    ...(response.stored ? ['stored in the inbox until acked'] : []),
    ...(response.duplicate
      ? ['duplicate: this message id was pushed before; nothing was delivered again, the result is the first push’s']
      : []),
  ];
  const summary =
    `message ${response.messageId} to user ${user}: ${plural(response.deliveries.length, 'session')}, ${counts}` +
    `${notes.map((note) => `; ${note}`).join('')}\n`;
  if (response.deliveries.length === 0) {
    const types = options.clientType.length > 0 ? ` of client type ${options.clientType.join(', ')}` : '';
    return `user ${user} has no live session${types}: ${response.stored ? 'kept for replay on connect' : 'nothing was pushed'}\n${summary}`;
  }
  return table([...DELIVERY_COLUMNS], response.deliveries.map(deliveryRow)) + summary;
}

function pushJson(response: PushToUserResponse): unknown {
  return {
    messageId: response.messageId,
    acked: response.acked,
    timedOut: response.timedOut,
    failed: response.failed,
    stored: response.stored,
    duplicate: response.duplicate,
    deliveries: response.deliveries.map(deliveryJson),
  };
}
