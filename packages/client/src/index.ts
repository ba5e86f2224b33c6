// @pushgate/client: a typed backend client for pushgate's gRPC API, and the generated bindings.

export { status as GrpcStatus } from '@grpc/grpc-js';
export { PushgateClient } from './client.js';
export { CursorExpiredError, PushgateClientError } from './errors.js';
export {
  DeliveryMode,
  type InboxMessage,
  type ReceiptEvent,
  ReceiptEventKind,
  RemovalPolicy,
  WaitFor,
} from './gen/pushgate/v1/inbox.js';
export { type PresenceEvent, PresenceEventKind } from './gen/pushgate/v1/presence.js';
export {
  type BatchSummary,
  type DeleteInboxResponse,
  type DeliveryAttempt,
  DeliveryStatus,
  type DisconnectSessionsResponse,
  type GetMessageResponse,
  type ListInboxResponse,
  type ListSessionsResponse,
  type PushToUserResponse,
  type PushToUsersResponse,
  type SessionDelivery,
  type UserPushResult,
} from './gen/pushgate/v1/push_service.js';
export type { Session } from './gen/pushgate/v1/session.js';
export type { CallOptions, Pem, PushgateClientOptions, RetryEvent, TlsOptions } from './options.js';
export { PresenceStream, type WatchPresenceOptions } from './presence-stream.js';
export { ReceiptStream, type WatchReceiptsOptions } from './receipt-stream.js';
export type {
  DeleteInboxInput,
  DeliveryModeName,
  DisconnectSessionsInput,
  ListInboxInput,
  ListSessionsInput,
  PushToUserInput,
  PushToUsersInput,
  RemovalName,
  WaitForName,
} from './requests.js';
export type { RetryOptions } from './retry.js';
