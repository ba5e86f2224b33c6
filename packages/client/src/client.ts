import { createRequire } from 'node:module';
import { type ClientUnaryCall, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { isServiceError, toClientError } from './errors.js';
import {
  DisconnectSessionsRequest,
  type DisconnectSessionsResponse,
  ListSessionsRequest,
  type ListSessionsResponse,
  PushServiceClient,
  PushToUserRequest,
  type PushToUserResponse,
  PushToUsersRequest,
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
import { backoffMs, type RetryPolicy, retryPolicy, sleep } from './retry.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** A push: who, which event, what data (any JSON value), and how to wait for acks. */
export interface PushToUserInput {
  readonly userId: string;
  readonly event: string;
  /** Any JSON value; the client receives it as the event's first argument. */
  readonly data?: unknown;
  /** Only sessions of these client types; all when empty. */
  readonly clientTypes?: readonly string[];
  /** Per-session ack wait in ms; 0 or absent: the server's default. */
  readonly ackTimeoutMs?: number;
  /** Fire and forget: each reachable session is reported SENT. */
  readonly noAck?: boolean;
  /** Echoed in the response; the server generates one when empty. */
  readonly messageId?: string;
}

/** A batch push: one event to every live session of many users (up to the server's PUSHGATE_MAX_BATCH_USERS). */
export interface PushToUsersInput extends Omit<PushToUserInput, 'userId'> {
  /** The users; duplicates count once. */
  readonly userIds: readonly string[];
  /** The batch's id, echoed in the summary; each user's is `<messageId>:<userId>`. Generated when empty. */
  readonly messageId?: string;
}

export interface ListSessionsInput {
  readonly userId: string;
  readonly clientTypes?: readonly string[];
  /** Sessions per page; 0 or absent: the server's maximum. */
  readonly pageSize?: number;
  /** The previous page's nextPageToken. */
  readonly pageToken?: string;
}

export interface DisconnectSessionsInput {
  readonly userId: string;
  /** Only these sessions; all (after clientTypes) when empty. */
  readonly sessionIds?: readonly string[];
  readonly clientTypes?: readonly string[];
  /** Told to each client before its socket closes; the server's default is "kicked". */
  readonly reason?: string;
}

type Method = 'PushToUser' | 'ListSessions' | 'DisconnectSessions';
type Invoke<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (err: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

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
   * Pushes an event to every live session of a user and resolves with one delivery per session.
   * Never retried: the server does not deduplicate message ids, so a push retried after the
   * connection broke mid-call could reach the clients twice. On UNAVAILABLE, decide yourself.
   */
  pushToUser(input: PushToUserInput, options: CallOptions = {}): Promise<PushToUserResponse> {
    const request = PushToUserRequest.fromPartial({
      userId: input.userId,
      event: input.event,
      data: input.data,
      clientTypes: [...(input.clientTypes ?? [])],
      ackTimeoutMs: input.ackTimeoutMs ?? 0,
      noAck: input.noAck ?? false,
      messageId: input.messageId ?? '',
    });
    const ackWaitMs = input.noAck ? 0 : (input.ackTimeoutMs ?? 0);
    const deadlineMs = options.deadlineMs ?? Math.max(this.deadlineMs, ackWaitMs + PUSH_DEADLINE_MARGIN_MS);
    return this.unary('PushToUser', this.raw.pushToUser.bind(this.raw) as Invoke<PushToUserRequest, PushToUserResponse>, request, {
      ...options,
      deadlineMs,
      retry: false,
    });
  }

  /**
   * Pushes an event to every live session of many users. Yields each user's result as the server
   * streams it (`userResult`: the user, its derived message id, its deliveries), then one message
   * with `summary`, last. Never retried, like pushToUser: users already reported were pushed to.
   * Breaking out of the loop or aborting `options.signal` cancels the call (the server then stops
   * waiting for acks); a failure throws a PushgateClientError.
   */
  async *pushToUsers(input: PushToUsersInput, options: CallOptions = {}): AsyncGenerator<PushToUsersResponse, void, undefined> {
    const request = PushToUsersRequest.fromPartial({
      userIds: [...input.userIds],
      event: input.event,
      data: input.data,
      clientTypes: [...(input.clientTypes ?? [])],
      ackTimeoutMs: input.ackTimeoutMs ?? 0,
      noAck: input.noAck ?? false,
      messageId: input.messageId ?? '',
    });
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
  async *allSessions(input: Omit<ListSessionsInput, 'pageToken'>, options: CallOptions = {}): AsyncGenerator<Session, void, undefined> {
    let pageToken = '';
    do {
      const page = await this.listSessions({ ...input, pageToken }, options);
      yield* page.sessions;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
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

function once<Req, Res>(
  invoke: Invoke<Req, Res>,
  request: Req,
  metadata: Metadata,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = invoke(request, metadata, { deadline: new Date(deadline) }, (err, response) => {
      signal?.removeEventListener('abort', cancel);
      if (err !== null) reject(err);
      else resolve(response);
    });
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
  });
}
