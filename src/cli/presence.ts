import type { Command } from 'commander';
import { type PresenceEvent, PresenceEventKind, presenceEventKindToJSON } from '../gen/pushgate/v1/presence.js';
import { WatchPresenceRequest, type WatchPresenceResponse } from '../gen/pushgate/v1/push_service.js';
import type { NodeApi } from './connection.js';
import { follow } from './follow.js';
import { repeatable } from './options.js';
import { isoTime, sessionJson, shortEnum } from './output.js';

interface PresenceOptions {
  readonly user: readonly string[];
  readonly snapshot?: boolean;
  readonly resume?: string;
  readonly json?: boolean;
}

export function definePresence(
  program: Command,
  run: (command: Command, action: (api: NodeApi) => Promise<void>) => Promise<void>,
): Command {
  return program
    .command('presence')
    .description('follow presence events (connects, disconnects, users online/offline), one line each, until Ctrl-C')
    .addOption(repeatable('--user <id>', 'only this user', 'every user'))
    .option('--snapshot', 'first list the sessions already live, then SNAPSHOT_COMPLETE, then live events')
    .option('--resume <cursor>', 'continue after this cursor (the last one a stream showed), on any node')
    .option('--json', 'print each event as one line of JSON, for scripts')
    .addHelpText('after', '\nCtrl-C (SIGINT) or SIGTERM ends the stream and exits 0; stderr then names the last cursor to --resume from.\n')
    .action(async (options: PresenceOptions, command: Command) => run(command, (api) => watch(api, options)));
}

const EVENTS_PER_MESSAGE = 100;

/** Resolves when the stream ends cleanly: stopped by a signal, a closed stdout, or ended by the node. */
function watch(api: NodeApi, options: PresenceOptions): Promise<void> {
  const request = WatchPresenceRequest.fromPartial({
    userIds: [...options.user],
    includeSnapshot: options.snapshot === true,
    resumeAfter: options.resume ?? '',
    // Whatever is already waiting comes in one message: a busy cluster costs the node less per event.
    maxEventsPerMessage: EVENTS_PER_MESSAGE,
  });
  const call = api.client.watchPresence(request, api.metadata());
  const who = options.user.length === 0 ? 'every user' : `user ${options.user.join(', ')}`;
  process.stderr.write(`watching presence of ${who} at ${api.config.address} (Ctrl-C to stop)\n`);
  return follow(call, options.resume ?? '', (response: WatchPresenceResponse) =>
    (response.event === undefined ? response.events : [response.event]).map((event) => ({
      cursor: event.cursor,
      line: options.json ? `${JSON.stringify(eventJson(event))}\n` : eventLine(event),
    })),
  );
}

function eventLine(event: PresenceEvent): string {
  const kind = shortEnum(presenceEventKindToJSON(event.kind), 'PRESENCE_EVENT_KIND_');
  const fields: string[] = [];
  if (event.kind !== PresenceEventKind.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE) {
    fields.push(`user=${event.userId}`);
    if (event.session !== undefined) {
      fields.push(`session=${event.session.sessionId}`, `client-type=${event.session.clientType}`, `node=${event.session.nodeId}`);
    }
    if (event.reason !== '') fields.push(`reason=${event.reason}`);
    fields.push(`sessions=${event.sessionCount}`);
  }
  fields.push(`cursor=${event.cursor}`);
  return `${isoTime(event.at)}  ${kind.padEnd(20)} ${fields.join(' ')}\n`;
}

function eventJson(event: PresenceEvent): unknown {
  return {
    kind: presenceEventKindToJSON(event.kind),
    userId: event.userId,
    ...(event.session !== undefined && { session: sessionJson(event.session) }),
    reason: event.reason,
    at: isoTime(event.at),
    sessionCount: event.sessionCount,
    cursor: event.cursor,
  };
}
