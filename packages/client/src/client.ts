import { createRequire } from 'node:module';
import { Metadata, status } from '@grpc/grpc-js';
import { isServiceError, toClientError } from './errors.js';
import type { InboxMessage } from './gen/pushgate/v1/inbox.js';
import {
  type DeleteInboxRequest,
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
  type PushToUserRequest,
  type PushToUserResponse,
  type PushToUsersResponse,
} from './gen/pushgate/v1/push_service.js';
import type { Session } from './gen/pushgate/v1/session.js';
import {
  type CallOptions,
  channelCredentials,
  channelOptionsOf,
  DEFAULT_DEADLINE_MS,
  PUSH_DEADLINE_MARGIN_MS,
  type PushgateClientOptions,
  positiveMs,
} from './options.js';
import { PresenceStream, type WatchPresenceOptions } from './presence-stream.js';
import { ReceiptStream, type WatchReceiptsOptions } from './receipt-stream.js';
import {
  type DeleteInboxInput,
  type DisconnectSessionsInput,
  deleteInboxRequest,
  type ListInboxInput,
  type ListSessionsInput,
  type PushToUserInput,
  type PushToUsersInput,
  pushToUserRequest,
  pushToUsersRequest,
} from './requests.js';
import { backoffMs, type RetryPolicy, retryPolicy, sleep } from './retry.js';
import { everyPage, type Invoke, once } from './unary.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

type Method = 'PushToUser' | 'ListSessions' | 'DisconnectSessions' | 'ListInbox' | 'DeleteInbox' | 'GetMessage';

/**
 * A backend's client for one pushgate deployment (any node: they share state in cluster mode).
 * Each method returns a promise, or an async iterator for streams and listings; every call takes
 * an AbortSignal. Retries on UNAVAILABLE are limited to calls that may safely run twice: see the
 * README ("Retries") for which and why. Call `close()` when done.
 */
export class PushgateClient {
  /** The generated grpc-js client, for anything this class does not cover. */
  readonly raw: PushServiceClient;
  private readonly apiKey: string | undefined;
  private readonly deadlineMs: number;
  private readonly retry: RetryPolicy;
  private readonly onRetry: PushgateClientOptions['onRetry'];

  constructor(options: PushgateClientOptions) {
    if (typeof options?.address !== 'string' || options.address === '') {
      throw new TypeError('address is required: the node’s gRPC address as host:port');
    }
    if (options.apiKey !== undefined && (options.apiKey === '' || /\s/.test(options.apiKey))) {
      throw new TypeError('apiKey must be a non-empty string without whitespace');
    }
    this.apiKey = options.apiKey;
    this.deadlineMs = positiveMs(options.deadlineMs, 'deadlineMs', DEFAULT_DEADLINE_MS);
    this.retry = retryPolicy(options.retry);
    this.onRetry = options.onRetry;
    this.raw = new PushServiceClient(options.address, channelCredentials(options), channelOptionsOf(options, version));
  }

  /**
   * Pushes an event to every live session of a user and resolves with one delivery per session,
   * and whether it is `stored` in the user's inbox. Retried on UNAVAILABLE only with your own
   * `messageId`: the server then remembers the push (PUSHGATE_IDEMPOTENCY_WINDOW_S) and answers a
   * repeat with the first call's result (`duplicate: true`) instead of delivering again. Without
   * one, a retry after the connection broke mid-call could reach the clients twice: never retried.
   */
  pushToUser(input: PushToUserInput, options: CallOptions = {}): Promise<PushToUserResponse> {
    const request = pushToUserRequest(input);
    const ackWaitMs = input.noAck ? 0 : (input.ackTimeoutMs ?? 0);
    const deadlineMs = options.deadlineMs ?? Math.max(this.deadlineMs, ackWaitMs + PUSH_DEADLINE_MARGIN_MS);
    return this.unary('PushToUser', this.raw.pushToUser.bind(this.raw) as Invoke<PushToUserRequest, PushToUserResponse>, request, {
      ...options,
      deadlineMs,
      retry: request.messageId !== '',
    });
  }

  /**
   * Pushes an event to every live session of many users. Yields each user's result as the server
   * streams it (`userResult`: the user, its derived message id, its deliveries), then one message
   * with `summary`, last. Never retried, even with a messageId: the server deduplicates single
   * pushes only, and users already reported were pushed to.
   * Breaking out of the loop or aborting `options.signal` cancels the call (the server then stops
   * waiting for acks); a failure throws a PushgateClientError.
   */
  async *pushToUsers(input: PushToUsersInput, options: CallOptions = {}): AsyncGenerator<PushToUsersResponse, void, undefined> {
    const request = pushToUsersRequest(input);
    const ackWaitMs = input.noAck ? 0 : (input.ackTimeoutMs ?? 0);
    const deadlineMs = positiveMs(
      options.deadlineMs ?? Math.max(this.deadlineMs, ackWaitMs + PUSH_DEADLINE_MARGIN_MS),
      'deadlineMs',
      this.deadlineMs,
    );
    const { signal } = options;
    signal?.throwIfAborted();
    const call = this.raw.pushToUsers(request, this.metadata(options.metadata), { deadline: new Date(Date.now() + deadlineMs) });
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    let ended = false;
    try {
      for await (const message of call as AsyncIterable<PushToUsersResponse>) yield message;
      ended = true;
    } catch (err) {
      ended = true;
      if (signal?.aborted) throw signal.reason;
      throw isServiceError(err) ? toClientError('PushToUsers', err) : err;
    } finally {
      signal?.removeEventListener('abort', cancel);
      if (!ended) call.cancel();
    }
  }

  /** One page of a user's live sessions, oldest first. Retried on UNAVAILABLE (a read). */
  listSessions(input: ListSessionsInput, options: CallOptions = {}): Promise<ListSessionsResponse> {
    const request = ListSessionsRequest.fromPartial({
      userId: input.userId,
      clientTypes: [...(input.clientTypes ?? [])],
      pageSize: input.pageSize ?? 0,
      pageToken: input.pageToken ?? '',
    });
    return this.unary('ListSessions', this.raw.listSessions.bind(this.raw) as Invoke<ListSessionsRequest, ListSessionsResponse>, request, {
      ...options,
      retry: true,
    });
  }

  /**
   * Every live session of a user, page after page (`pageSize` per call), as an async iterator.
   * Each page has its own deadline and retries; the signal stops the listing between and during pages.
   */
  allSessions(input: Omit<ListSessionsInput, 'pageToken'>, options: CallOptions = {}): AsyncGenerator<Session, void, undefined> {
    return everyPage(async (pageToken) => {
      const page = await this.listSessions({ ...input, pageToken }, options);
      return { items: page.sessions, nextPageToken: page.nextPageToken };
    });
  }

  /**
   * Closes sessions of a user and resolves with those that were live. Not retried: running it
   * again is harmless, but a retry could not report the sessions the first attempt already closed.
   */
  disconnectSessions(input: DisconnectSessionsInput, options: CallOptions = {}): Promise<DisconnectSessionsResponse> {
    const request = DisconnectSessionsRequest.fromPartial({
      userId: input.userId,
      sessionIds: [...(input.sessionIds ?? [])],
      clientTypes: [...(input.clientTypes ?? [])],
      reason: input.reason ?? '',
    });
    return this.unary(
      'DisconnectSessions',
      this.raw.disconnectSessions.bind(this.raw) as Invoke<DisconnectSessionsRequest, DisconnectSessionsResponse>,
      request,
      { ...options, retry: false },
    );
  }

  /** One page of a user's offline inbox, oldest first. Retried on UNAVAILABLE (a read). */
  listInbox(input: ListInboxInput, options: CallOptions = {}): Promise<ListInboxResponse> {
    const request = ListInboxRequest.fromPartial({ userId: input.userId, pageSize: input.pageSize ?? 0, pageToken: input.pageToken ?? '' });
    return this.unary('ListInbox', this.raw.listInbox.bind(this.raw) as Invoke<ListInboxRequest, ListInboxResponse>, request, {
      ...options,
      retry: true,
    });
  }

  /** Every message of a user's inbox, page after page, as an async iterator (like allSessions). */
  allInbox(input: Omit<ListInboxInput, 'pageToken'>, options: CallOptions = {}): AsyncGenerator<InboxMessage, void, undefined> {
    return everyPage(async (pageToken) => {
      const page = await this.listInbox({ ...input, pageToken }, options);
      return { items: page.messages, nextPageToken: page.nextPageToken };
    });
  }

  /**
   * Removes chosen messages (`messageIds`) or all (`all: true`) from a user's inbox; resolves with
   * how many were there. Not retried, like disconnectSessions: running it again is harmless, but a
   * retry would count 0 for what the first attempt removed.
   */
  deleteInbox(input: DeleteInboxInput, options: CallOptions = {}): Promise<DeleteInboxResponse> {
    return this.unary(
      'DeleteInbox',
      this.raw.deleteInbox.bind(this.raw) as Invoke<DeleteInboxRequest, DeleteInboxResponse>,
      deleteInboxRequest(input),
      {
        ...options,
        retry: false,
      },
    );
  }

  /**
   * A message's receipt: each session's latest outcome (late acks and replays included), whether
   * it is stored, and why it left the inbox. Rejects with NOT_FOUND (`message_not_found`) for a
   * message the server keeps no receipt of. Retried on UNAVAILABLE (a read).
   */
  getMessage(messageId: string, options: CallOptions = {}): Promise<GetMessageResponse> {
    return this.unary(
      'GetMessage',
      this.raw.getMessage.bind(this.raw) as Invoke<GetMessageRequest, GetMessageResponse>,
      GetMessageRequest.fromPartial({ messageId }),
      { ...options, retry: true },
    );
  }

  /**
   * Receipt events (acked, stored, expired, dropped, deleted) as an async iterator that reconnects
   * after UNAVAILABLE, a draining node or an overflow, and resumes after the last cursor it
   * delivered. See ReceiptStream.
   */
  watchReceipts(request: WatchReceiptsOptions = {}, options: Pick<CallOptions, 'signal' | 'metadata'> = {}): ReceiptStream {
    return new ReceiptStream({
      raw: this.raw,
      request,
      metadata: () => this.metadata(options.metadata),
      retry: this.retry,
      onRetry: this.onRetry,
      signal: options.signal,
    });
  }

  /**
   * Presence events as an async iterator that survives node restarts: after UNAVAILABLE, the end
   * of the stream (a node draining) or an overflow, it reconnects with backoff and resumes after
   * the last cursor it delivered, so no event is lost or repeated. See WatchPresenceOptions for
   * what happens when the cursor has expired.
   */
  watchPresence(request: WatchPresenceOptions = {}, options: Pick<CallOptions, 'signal' | 'metadata'> = {}): PresenceStream {
    return new PresenceStream({
      raw: this.raw,
      request,
      metadata: () => this.metadata(options.metadata),
      retry: this.retry,
      onRetry: this.onRetry,
      signal: options.signal,
    });
  }

  /** Closes the channel; calls still running fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.raw.close();
  }

  private metadata(extra: Readonly<Record<string, string>> | undefined): Metadata {
    const metadata = new Metadata();
    if (this.apiKey !== undefined) metadata.set('authorization', `Bearer ${this.apiKey}`);
    for (const [key, value] of Object.entries(extra ?? {})) metadata.set(key, value);
    return metadata;
  }

  private async unary<Req, Res>(
    method: Method,
    invoke: Invoke<Req, Res>,
    request: Req,
    options: CallOptions & { retry: boolean },
  ): Promise<Res> {
    const { signal } = options;
    const deadline = Date.now() + positiveMs(options.deadlineMs, 'deadlineMs', this.deadlineMs);
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await once(invoke, request, this.metadata(options.metadata), deadline, signal);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (!isServiceError(err)) throw err;
        const error = toClientError(method, err);
        const delayMs = backoffMs(this.retry, attempt);
        const retryable = options.retry && error.code === status.UNAVAILABLE && attempt < this.retry.maxAttempts;
        if (!retryable || Date.now() + delayMs >= deadline) throw error;
        this.onRetry?.({ method, error, attempt, delayMs });
        await sleep(delayMs, signal);
      }
    }
  }
}
