import type { WireWriter } from './wire-writer.js';

/**
 * A client's ack data as google.protobuf.Value, by hand (see push-encoding.ts), the same bytes as
 * ts-proto's Value.encode(Value.wrap(v)). Acks come from JSON, so this takes JSON values only:
 * null, booleans, numbers, strings, arrays and plain objects, nested at most MAX_DEPTH deep. For
 * anything else writeValue answers false and the caller leaves the message to ts-proto, so odd
 * values are encoded (or refused) exactly as before.
 */

/** Deeper than any ack the edge accepts (PUSHGATE_MAX_ACK_DEPTH); deeper values go to ts-proto. */
const MAX_DEPTH = 64;

/** Writes the content of the Value message for `value`; false (and a partial write) if it is not JSON. */
export function writeValue(out: WireWriter, value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case 'boolean':
      out.varintField(32, value ? 1 : 0);
      return true;
    case 'number':
      out.double(17, value);
      return true;
    case 'string':
      out.string(26, value);
      return true;
    case 'object':
      if (value === null) {
        out.varintField(8, 0);
        return true;
      }
      if (depth >= MAX_DEPTH) return false;
      return Array.isArray(value) ? writeList(out, value, depth) : writeStruct(out, value, depth);
    default:
      return false;
  }
}

function writeList(out: WireWriter, list: readonly unknown[], depth: number): boolean {
  const start = out.begin(50);
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    const at = out.begin(10);
    // ts-proto wraps a hole or undefined as an empty Value.
    if (item !== undefined && !writeValue(out, item, depth + 1)) return false;
    out.end(at);
  }
  out.end(start);
  return true;
}

function writeStruct(out: WireWriter, object: object, depth: number): boolean {
  const prototype = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) return false;
  const start = out.begin(42);
  // Struct.wrap's order: Object.keys, copied into a fresh object and read back.
  for (const key of Object.keys(object)) {
    // In that fresh object this key would set the prototype, and the field would be lost.
    if (key === '__proto__') return false;
    const item = (object as Record<string, unknown>)[key];
    if (item === undefined) continue;
    const entry = out.begin(10);
    out.stringField(10, key);
    const inner = out.begin(18);
    if (!writeValue(out, item, depth + 1)) return false;
    out.end(inner);
    out.end(entry);
  }
  out.end(start);
  return true;
}
