import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { PushgateError } from '../errors.js';
import {
  DeleteInboxRequest,
  DisconnectSessionsRequest,
  GetMessageRequest,
  ListInboxRequest,
  ListSessionsRequest,
  PushServiceService,
  PushToUserRequest,
  PushToUsersRequest,
  WatchPresenceRequest,
  WatchReceiptsRequest,
} from '../gen/pushgate/v1/push_service.js';

/**
 * What the API learns from a request's wire bytes before decoding it. grpc-js answers a
 * deserializer that throws with a bare INTERNAL, without our trailers, so these deserializers never
 * throw: a request they refuse is recorded here, and its handler refuses it through the one error
 * mapping (`requireDecoded`, `dataFactsOf`).
 */

export interface DecodeLimits {
  /** PUSHGATE_MAX_PAYLOAD_BYTES: a smaller request cannot hold a larger `data`, so its size is not measured. */
  readonly scanAboveBytes: number;
  /** PUSHGATE_MAX_DATA_DEPTH. */
  readonly maxDataDepth: number;
}

/** PushService with deserializers that never throw; the pushes' also measure `data` (see pushDecoder). */
export function pushServiceDefinition(limits: DecodeLimits): typeof PushServiceService {
  const { pushToUser, pushToUsers, listSessions, watchPresence, disconnectSessions, listInbox, deleteInbox, getMessage, watchReceipts } =
    PushServiceService;
  return {
    ...PushServiceService,
    pushToUser: {
      ...pushToUser,
      requestDeserialize: pushDecoder(PushToUserRequest, 'PushToUserRequest', limits.scanAboveBytes, limits.maxDataDepth),
    },
    pushToUsers: {
      ...pushToUsers,
      requestDeserialize: pushDecoder(PushToUsersRequest, 'PushToUsersRequest', limits.scanAboveBytes, limits.maxDataDepth),
    },
    listSessions: { ...listSessions, requestDeserialize: tolerant(ListSessionsRequest, 'ListSessionsRequest') },
    watchPresence: { ...watchPresence, requestDeserialize: tolerant(WatchPresenceRequest, 'WatchPresenceRequest') },
    disconnectSessions: { ...disconnectSessions, requestDeserialize: tolerant(DisconnectSessionsRequest, 'DisconnectSessionsRequest') },
    listInbox: { ...listInbox, requestDeserialize: tolerant(ListInboxRequest, 'ListInboxRequest') },
    deleteInbox: { ...deleteInbox, requestDeserialize: tolerant(DeleteInboxRequest, 'DeleteInboxRequest') },
    getMessage: { ...getMessage, requestDeserialize: tolerant(GetMessageRequest, 'GetMessageRequest') },
    watchReceipts: { ...watchReceipts, requestDeserialize: tolerant(WatchReceiptsRequest, 'WatchReceiptsRequest') },
  };
}

/** Why a request could not be decoded, by the blank request that stands in for it. */
const undecodable = new WeakMap<object, string>();

/** Throws `invalid_argument` for a request its deserializer could not decode; else returns it. */
export function requireDecoded<T extends object>(request: T): T {
  const reason = undecodable.get(request);
  if (reason !== undefined) throw new PushgateError('invalid_argument', reason);
  return request;
}

interface MessageType<T> {
  decode(input: Uint8Array): T;
  fromPartial(object: object): T;
}

/** A deserializer that returns a blank request, marked undecodable, where decoding would throw. */
function tolerant<T extends object>(type: MessageType<T>, name: string, decode = (buffer: Buffer) => type.decode(buffer)) {
  return (buffer: Buffer): T => {
    try {
      return decode(buffer);
    } catch (err) {
      const blank = type.fromPartial({});
      undecodable.set(blank, `request is not a valid pushgate.v1.${name}: ${(err as Error).message}`);
      return blank;
    }
  };
}

/** What the deserializer found in a push request's `data` bytes, for the handler to enforce. */
export interface DataFacts {
  /** Encoded size of `data`; 0 when the request was too small to be worth measuring. */
  readonly bytes: number;
  /** The depth limit `data` is nested deeper than; `data` was then left out of the request, undecoded. */
  readonly depthOver: number | undefined;
}

const NO_FACTS: DataFacts = { bytes: 0, depthOver: undefined };
const dataFacts = new WeakMap<object, DataFacts>();

export function dataFactsOf(request: PushToUserRequest | PushToUsersRequest): DataFacts {
  return dataFacts.get(request) ?? NO_FACTS;
}

/** `data` in PushToUserRequest and PushToUsersRequest alike. */
const DATA_FIELD = 3;

/**
 * The deserializer of a push request (field 3 is `data`). It measures the encoded `data` (for PUSHGATE_MAX_PAYLOAD_BYTES,
 * without re-encoding anything) and its nesting, without recursion and before the recursive
 * decoding could go deep: `data` nested deeper than `maxDataDepth` is left out of the decoding and
 * recorded (`dataFactsOf`), so the handler refuses it with `invalid_argument`.
 */
export function pushDecoder<T extends object>(
  type: MessageType<T>,
  name: string,
  scanAboveBytes: number,
  maxDataDepth: number,
): (buffer: Buffer) => T {
  // Each level of nesting takes at least four bytes (two tags, two lengths): a shorter request cannot be too deep.
  const deepAtBytes = 4 * (maxDataDepth + 1);
  return tolerant(type, name, (buffer) => {
    const measure = buffer.length > scanAboveBytes;
    if (!measure && buffer.length < deepAtBytes) return type.decode(buffer);
    const fields = fieldsOf(buffer, DATA_FIELD);
    const bytes = measure ? fields.reduce((sum, f) => sum + f.end - f.lengthStart, 0) : 0;
    const tooDeep =
      buffer.length >= deepAtBytes && fields.some((f) => nestedDeeperThan(buffer.subarray(f.valueStart, f.end), maxDataDepth));
    const request = type.decode(tooDeep ? without(buffer, fields) : buffer);
    dataFacts.set(request, { bytes, depthOver: tooDeep ? maxDataDepth : undefined });
    return request;
  });
}

/** Where one occurrence of a length-delimited field lies: its tag, its length prefix, its value, its end. */
interface FieldSpan {
  readonly tagStart: number;
  readonly lengthStart: number;
  readonly valueStart: number;
  readonly end: number;
}

/** Every occurrence of a length-delimited top-level field; a shallow scan, no decoding. */
function fieldsOf(buffer: Uint8Array, field: number): FieldSpan[] {
  const reader = new BinaryReader(buffer);
  const spans: FieldSpan[] = [];
  while (reader.pos < reader.len) {
    const tagStart = reader.pos;
    const [fieldNo, wireType] = reader.tag();
    const lengthStart = reader.pos;
    if (fieldNo !== field || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType);
      continue;
    }
    const length = reader.uint32();
    const valueStart = reader.pos;
    reader.pos += length;
    if (reader.pos > reader.len) throw new Error('premature EOF');
    spans.push({ tagStart, lengthStart, valueStart, end: reader.pos });
  }
  return spans;
}

/** The buffer without the given spans (in order, not overlapping). */
function without(buffer: Buffer, spans: readonly FieldSpan[]): Buffer {
  const kept: Buffer[] = [];
  let from = 0;
  for (const span of spans) {
    kept.push(buffer.subarray(from, span.tagStart));
    from = span.end;
  }
  kept.push(buffer.subarray(from));
  return Buffer.concat(kept);
}

/** google.protobuf.Value and the messages it nests through (a struct's fields are map entries). */
type Kind = 'value' | 'struct' | 'entry' | 'list';

/** The message a length-delimited field holds on the way down: Value.struct_value, Value.list_value, Struct.fields, the entry's value, ListValue.values. */
function childKind(parent: Kind, fieldNo: number): Kind | undefined {
  switch (parent) {
    case 'value':
      return fieldNo === 5 ? 'struct' : fieldNo === 6 ? 'list' : undefined;
    case 'struct':
      return fieldNo === 1 ? 'entry' : undefined;
    case 'entry':
      return fieldNo === 2 ? 'value' : undefined;
    case 'list':
      return fieldNo === 1 ? 'value' : undefined;
  }
}

/**
 * True when the encoded google.protobuf.Value holds structs and lists nested more than `maxDepth`
 * levels deep (`{}` and `[]` are one level, a scalar none). Iterative, with an explicit stack of
 * where each open message ends, so no input can exhaust the call stack. Malformed bytes end the
 * scan (false); the decoding then refuses them.
 */
function nestedDeeperThan(value: Uint8Array, maxDepth: number): boolean {
  const reader = new BinaryReader(value);
  const ends = [reader.len];
  const kinds: Kind[] = ['value'];
  let depth = 0;
  while (ends.length > 0) {
    const end = ends.at(-1)!;
    if (reader.pos >= end) {
      const closed = kinds.pop();
      ends.pop();
      if (closed === 'struct' || closed === 'list') depth--;
      continue;
    }
    const [fieldNo, wireType] = reader.tag();
    const child = wireType === WireType.LengthDelimited ? childKind(kinds.at(-1)!, fieldNo) : undefined;
    if (child === undefined) {
      reader.skip(wireType);
      continue;
    }
    const childEnd = reader.uint32() + reader.pos;
    if (childEnd > end) return false;
    if ((child === 'struct' || child === 'list') && ++depth > maxDepth) return true;
    ends.push(childEnd);
    kinds.push(child);
  }
  return false;
}
