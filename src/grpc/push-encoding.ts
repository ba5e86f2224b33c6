import type { BatchSummary, Delivery, PushResult } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';
import { PushToUserResponse, PushToUsersResponse } from '../gen/pushgate/v1/push_service.js';
import { BatchItemMessage, type BatchMessageContent, DELIVERY_STATUS, PushResultMessage } from './encode.js';
import { writeValue } from './value-encoding.js';
import { varintSize, WireWriter } from './wire-writer.js';

/**
 * Response serializers for PushToUsers (one message per user, a thousand per batch) and
 * PushToUser. A message made by encode.ts (BatchItemMessage, PushResultMessage) is written straight
 * from the domain result it holds, in one pass over a buffer reused from message to message: no
 * ts-proto objects, dates or value wrappers, no writer forked per nested message. The bytes are ts-proto's
 * (the tests compare them). Any other message, or one holding what this does not take (an ack
 * value that is not JSON, a count that is not a uint32, a time before 1970), goes to ts-proto
 * whole, so it is encoded, or refused, exactly as before. grpc-js copies the bytes into its frame.
 */

/**
 * The serializers' buffer. They run synchronously, one message at a time, and hand out a copy of
 * what they wrote, so one buffer serves every call; it grows to the largest message seen.
 */
const scratch = new WireWriter();

export function serializePushToUsersResponse(message: PushToUsersResponse): Buffer {
  if (message instanceof BatchItemMessage) {
    const { item } = message;
    scratch.reset();
    if (writeContent(scratch, item)) return scratch.take();
  }
  return viaTsProto(PushToUsersResponse.encode(message).finish());
}

export function serializePushToUserResponse(message: PushToUserResponse): Buffer {
  if (message instanceof PushResultMessage) {
    scratch.reset();
    if (writeResult(scratch, undefined, message.result)) return scratch.take();
  }
  return viaTsProto(PushToUserResponse.encode(message).finish());
}

function viaTsProto(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const isUint32 = (n: unknown): n is number => typeof n === 'number' && n >>> 0 === n;
const isString = (s: unknown): s is string => typeof s === 'string';

function writeContent(out: WireWriter, content: BatchMessageContent): boolean {
  if (content.kind === 'summary') return writeSummary(out, content.summary);
  if (content.kind === 'user') return writeResult(out, content.result.userId, content.result);
  return content.results.every((result) => writeResult(out, result.userId, result, USER_RESULTS_TAG));
}

/** PushToUsersResponse's user_result (field 1) and user_results (field 3), length-delimited. */
const USER_RESULT_TAG = 10;
const USER_RESULTS_TAG = 26;

/**
 * A PushToUsersResponse holding a user's result (under `tag`: user_result, or one of user_results;
 * `userId` given), or a PushToUserResponse (`userId` undefined): the same message but for the user
 * id, which shifts its field numbers by one. False, with a partial write, for what ts-proto is left
 * to encode or refuse.
 */
function writeResult(out: WireWriter, userId: string | undefined, result: PushResult, tag = USER_RESULT_TAG): boolean {
  const { messageId, deliveries, acked, timedOut, failed } = result;
  if (!isString(messageId) || !isUint32(acked) || !isUint32(timedOut) || !isUint32(failed)) return false;
  let start = 0;
  let shift = 0;
  if (userId !== undefined) {
    if (!isString(userId)) return false;
    start = out.begin(tag);
    shift = 8;
    out.stringField(10, userId);
  }
  out.stringField(10 + shift, messageId);
  for (const delivery of deliveries) {
    const at = out.begin(18 + shift);
    if (!writeDelivery(out, delivery)) return false;
    out.end(at);
  }
  if (acked !== 0) out.varintField(24 + shift, acked);
  if (timedOut !== 0) out.varintField(32 + shift, timedOut);
  if (failed !== 0) out.varintField(40 + shift, failed);
  if (result.stored) out.varintField(48 + shift, 1);
  // PushToUserResponse only: batches are not idempotent per user.
  if (result.duplicate === true && userId === undefined) out.varintField(56, 1);
  if (userId !== undefined) out.end(start);
  return true;
}

function writeDelivery(out: WireWriter, delivery: Delivery): boolean {
  const { latencyUs, ackData, error } = delivery;
  const status = DELIVERY_STATUS[delivery.status];
  if (typeof status !== 'number' || !isUint32(latencyUs) || !isString(error)) return false;
  const at = out.begin(10);
  if (!writeSession(out, delivery.session)) return false;
  out.end(at);
  if (status !== 0) out.varintField(16, status);
  if (latencyUs !== 0) out.varintField(24, latencyUs);
  if (ackData !== undefined) {
    const value = out.begin(34);
    if (!writeValue(out, ackData)) return false;
    out.end(value);
  }
  out.stringField(42, error);
  return true;
}

function writeSession(out: WireWriter, session: SessionRecord): boolean {
  const { sessionId, userId, clientType, nodeId, connectedAtMs, lastSeenAtMs, remoteAddress, userAgent } = session;
  if (!isString(sessionId) || !isString(userId) || !isString(clientType) || !isString(nodeId)) return false;
  if (!isString(remoteAddress) || !isString(userAgent) || !isTimestamp(connectedAtMs) || !isTimestamp(lastSeenAtMs)) return false;
  out.stringField(10, sessionId);
  out.stringField(18, userId);
  out.stringField(26, clientType);
  out.stringField(34, nodeId);
  writeTimestamp(out, 42, connectedAtMs);
  writeTimestamp(out, 50, lastSeenAtMs);
  out.stringField(58, remoteAddress);
  out.stringField(66, userAgent);
  return true;
}

/** Whether `new Date(ms)` keeps `ms` and makes a Timestamp with no negative field; the rest goes to ts-proto. */
function isTimestamp(ms: number): boolean {
  return Number.isInteger(ms) && ms >= 0 && ms <= 8.64e15;
}

/** The Timestamp ts-proto makes of `new Date(ms)`: seconds then nanos, each omitted when 0. */
function writeTimestamp(out: WireWriter, tag: number, ms: number): void {
  const seconds = Math.trunc(ms / 1_000);
  const nanos = (ms % 1_000) * 1_000_000;
  out.delimited(tag, (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (nanos === 0 ? 0 : 1 + varintSize(nanos)));
  if (seconds !== 0) out.varintField(8, seconds);
  if (nanos !== 0) out.varintField(16, nanos);
}

/** A PushToUsersResponse holding the summary (field 2). */
function writeSummary(out: WireWriter, summary: BatchSummary): boolean {
  const { messageId, users, usersWithoutSessions, sessions, acked, timedOut, failed, sent, stored } = summary;
  const counts = [users, usersWithoutSessions, sessions, acked, timedOut, failed, sent, stored];
  if (!isString(messageId) || !counts.every(isUint32)) return false;
  const start = out.begin(18);
  out.stringField(10, messageId);
  counts.forEach((n, i) => {
    if (n !== 0) out.varintField(16 + 8 * i, n);
  });
  out.end(start);
  return true;
}
