import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { PushToUserRequest } from '../gen/pushgate/v1/push_service.js';

const DATA_FIELD = 3;

/**
 * Size of the encoded `data` field of a decoded PushToUserRequest, recorded by the deserializer so
 * the handler can enforce PUSHGATE_MAX_PAYLOAD_BYTES without re-encoding anything. Only requests
 * larger than `scanAboveBytes` are scanned: a smaller request cannot hold a larger `data`.
 */
export function pushToUserDecoder(scanAboveBytes: number): (buffer: Buffer) => PushToUserRequest {
  return (buffer) => {
    const request = PushToUserRequest.decode(buffer);
    if (buffer.length > scanAboveBytes) dataBytes.set(request, encodedFieldBytes(buffer, DATA_FIELD));
    return request;
  };
}

const dataBytes = new WeakMap<PushToUserRequest, number>();

/** The encoded size of `data`, or 0 when the request was too small to be worth measuring. */
export function dataBytesOf(request: PushToUserRequest): number {
  return dataBytes.get(request) ?? 0;
}

/** Bytes taken by every occurrence of a length-delimited top-level field; a shallow scan, no decoding. */
function encodedFieldBytes(buffer: Uint8Array, field: number): number {
  const reader = new BinaryReader(buffer);
  let total = 0;
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    const start = reader.pos;
    reader.skip(wireType);
    if (fieldNo === field && wireType === WireType.LengthDelimited) total += reader.pos - start;
  }
  return total;
}
