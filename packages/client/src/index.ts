// @pushgate/client: a typed backend client for pushgate's gRPC API, and the generated bindings.

export { status as GrpcStatus } from '@grpc/grpc-js';
export {
  type DisconnectSessionsInput,
  type ListSessionsInput,
  PushgateClient,
  type PushToUserInput,
  type PushToUsersInput,
} from './client.js';
export { CursorExpiredError, PushgateClientError } from './errors.js';
export { type PresenceEvent, PresenceEventKind } from './gen/pushgate/v1/presence.js';
export {
  type BatchSummary,
  DeliveryStatus,
  type DisconnectSessionsResponse,
  type ListSessionsResponse,
  type PushToUserResponse,
  type PushToUsersResponse,
  type SessionDelivery,
  type UserPushResult,
} from './gen/pushgate/v1/push_service.js';
export type { Session } from './gen/pushgate/v1/session.js';
export type { CallOptions, Pem, PushgateClientOptions, RetryEvent, TlsOptions } from './options.js';
export { PresenceStream, type WatchPresenceOptions } from './presence-stream.js';
export type { RetryOptions } from './retry.js';
