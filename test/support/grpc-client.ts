import { type CallOptions, type ChannelCredentials, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  DeleteInboxRequest,
  type DeleteInboxResponse,
  DisconnectSessionsRequest,
  type DisconnectSessionsResponse,
  ListInboxRequest,
  type ListInboxResponse,
  ListSessionsRequest,
  type ListSessionsResponse,
  PushServiceClient,
  PushToUserRequest,
  type PushToUserResponse,
} from '../../src/gen/pushgate/v1/push_service.js';

/** A promise-returning PushService client, as a backend service in TypeScript would write one. */
export class TestPushClient {
  readonly raw: PushServiceClient;

  /** Plaintext unless `channelCredentials` says otherwise (TLS, with a client certificate for mutual TLS). */
  constructor(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure()) {
    this.raw = new PushServiceClient(address, channelCredentials);
  }

  pushToUser(request: Partial<PushToUserRequest>, options: Partial<CallOptions> = {}): Promise<PushToUserResponse> {
    return this.call('pushToUser', PushToUserRequest.fromPartial(request), options);
  }

  listSessions(request: Partial<ListSessionsRequest>, options: Partial<CallOptions> = {}): Promise<ListSessionsResponse> {
    return this.call('listSessions', ListSessionsRequest.fromPartial(request), options);
  }

  disconnectSessions(request: Partial<DisconnectSessionsRequest>, options: Partial<CallOptions> = {}): Promise<DisconnectSessionsResponse> {
    return this.call('disconnectSessions', DisconnectSessionsRequest.fromPartial(request), options);
  }

  listInbox(request: Partial<ListInboxRequest>, options: Partial<CallOptions> = {}): Promise<ListInboxResponse> {
    return this.call('listInbox', ListInboxRequest.fromPartial(request), options);
  }

  deleteInbox(request: Partial<DeleteInboxRequest>, options: Partial<CallOptions> = {}): Promise<DeleteInboxResponse> {
    return this.call('deleteInbox', DeleteInboxRequest.fromPartial(request), options);
  }

  close(): void {
    this.raw.close();
  }

  private call<Res>(
    method: 'pushToUser' | 'listSessions' | 'disconnectSessions' | 'listInbox' | 'deleteInbox',
    request: object,
    options: Partial<CallOptions>,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method].bind(this.raw) as unknown as (
        req: object,
        metadata: Metadata,
        options: Partial<CallOptions>,
        callback: (err: ServiceError | null, res: Res) => void,
      ) => void;
      fn(request, new Metadata(), options, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }
}

/** Rejection of a gRPC call as a ServiceError, for asserting on code and details. */
export async function grpcError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
