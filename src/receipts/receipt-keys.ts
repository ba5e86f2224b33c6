/**
 * The receipt store's Redis keys, built in one place (prefix P: the deployment's key prefix, which
 * config keeps free of `{` and `}`):
 *
 *   P rc:{<message key>}        HASH    one receipt (fields: lua/_common.lua), expiring with its retention
 *   P {receipt-events}          STREAM  every receipt event of the deployment
 *   P {receipt-events}epoch     HASH    the stream's identity and last event number
 *
 * A receipt's hash tag is its own message id, escaped (see messageKey), so receipts spread over a
 * Redis Cluster's slots. The stream and its epoch share the tag `{receipt-events}`: the scripts
 * that append and read events touch both, and a script's keys must share a slot.
 */
export class ReceiptKeys {
  readonly events: string;
  readonly epoch: string;

  constructor(private readonly prefix: string) {
    this.events = `${prefix}{receipt-events}`;
    this.epoch = `${prefix}{receipt-events}epoch`;
  }

  receipt(messageId: string): string {
    return `${this.prefix}rc:{${messageKey(messageId)}}`;
  }
}

/**
 * A message id as it appears inside a hash tag. Redis Cluster hashes what lies between the first
 * `{` and the next `}`, so a `}` in the id would cut the tag short and a `{` is confusing: both are
 * written `%7B`/`%7D`, and `%` itself `%25` so the form stays one-to-one. A lone surrogate (a JS
 * string may hold one) would reach Redis as U+FFFD and make two ids one key: it is written `%uXXXX`.
 * NUL and every other character stay as they are (keys are binary-safe).
 */
export function messageKey(messageId: string): string {
  return messageId.replace(/[%{}]|\p{Cs}/gu, (c) =>
    c.length === 1 && c.charCodeAt(0) < 0x80
      ? `%${c.charCodeAt(0).toString(16).toUpperCase()}`
      : `%u${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
