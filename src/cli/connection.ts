import {
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { ConnectionConfig } from '../config/client.js';
import {
  DeleteInboxRequest,
  type DeleteInboxResponse,
  DisconnectSessionsRequest,
  type DisconnectSessionsResponse,
  GetMessageRequest,
  type GetMessageResponse,
  ListInboxRequest,
  type ListInboxResponse,
  ListSessionsRequest,
  type ListSessionsResponse,
  PushServiceClient,
  PushToUserRequest,
  type PushToUserResponse,
} from '../gen/pushgate/v1/push_service.js';

/** Unary calls without an ack wait in them get this long, so a silent address cannot hang a script. */
export const CALL_DEADLINE_MS = 30_000;

interface UnaryCalls {
  pushToUser: [PushToUserRequest, PushToUserResponse];
  listSessions: [ListSessionsRequest, ListSessionsResponse];
  disconnectSessions: [DisconnectSessionsRequest, DisconnectSessionsResponse];
  listInbox: [ListInboxRequest, ListInboxResponse];
  deleteInbox: [DeleteInboxRequest, DeleteInboxResponse];
  getMessage: [GetMessageRequest, GetMessageResponse];
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (err: ServiceError | null, response: Res) => void,
) => unknown;

/** One node's gRPC API as the commands call it: credentials, the API key, deadlines, and what an error hints at. */
export class NodeApi {
  readonly client: PushServiceClient;

  constructor(readonly config: ConnectionConfig) {
    const options: Partial<ClientOptions> = {};
    if (config.tls?.serverName !== undefined) {
      options['grpc.ssl_target_name_override'] = config.tls.serverName;
      options['grpc.default_authority'] = config.tls.serverName;
    }
    this.client = new PushServiceClient(config.address, channelCredentials(config), options);
  }

  /** The API key as the node reads it; empty metadata without one. */
  metadata(): Metadata {
    const metadata = new Metadata();
    if (this.config.apiKey !== undefined) metadata.set('authorization', `Bearer ${this.config.apiKey}`);
    return metadata;
  }

  call<M extends keyof UnaryCalls>(
    method: M,
    request: Partial<UnaryCalls[M][0]>,
    deadlineMs = CALL_DEADLINE_MS,
  ): Promise<UnaryCalls[M][1]> {
    const message = (messageFns[method] as { fromPartial(object: object): unknown }).fromPartial(request);
    const fn = (this.client[method] as unknown as Unary<UnaryCalls[M][0], UnaryCalls[M][1]>).bind(this.client);
    return new Promise((resolve, reject) => {
      fn(message as UnaryCalls[M][0], this.metadata(), { deadline: Date.now() + deadlineMs }, (err, response) =>
        err ? reject(err) : resolve(response),
      );
    });
  }

  /** A few words after the node's own message, for the failures an operator fixes on their side. */
  hint(err: ServiceError): string {
    switch (err.code) {
      case status.UNAVAILABLE:
        return ` (calling ${this.config.address}: is a node listening there? set --address / PUSHGATE_ADDRESS)`;
      case status.UNAUTHENTICATED:
        return this.config.apiKey === undefined ? ' (no API key sent: set PUSHGATE_API_KEY or --api-key-file)' : '';
      case status.DEADLINE_EXCEEDED:
        return ` (calling ${this.config.address})`;
      default:
        return '';
    }
  }

  close(): void {
    this.client.close();
  }
}

const messageFns = {
  pushToUser: PushToUserRequest,
  listSessions: ListSessionsRequest,
  disconnectSessions: DisconnectSessionsRequest,
  listInbox: ListInboxRequest,
  deleteInbox: DeleteInboxRequest,
  getMessage: GetMessageRequest,
};

function channelCredentials(config: ConnectionConfig): ChannelCredentials {
  const tls = config.tls;
  if (tls === undefined) return credentials.createInsecure();
  silenceIpServerNameWarning();
  return credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

/**
 * grpc-js hands an IP address to TLS as the server name, for which Node prints a deprecation
 * warning (DEP0123) on stderr, whose one line belongs to the command's own error. The certificate is
 * still checked against the address; nothing there is the operator's to fix. Only that warning is dropped.
 */
function silenceIpServerNameWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}
