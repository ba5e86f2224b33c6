import type { RemovalPolicy } from '../domain/inbox.js';
import type { StoragePolicy, WaitFor } from '../domain/push.js';
import { PushgateError } from '../errors.js';
import { DeliveryMode, RemovalPolicy as RemovalPolicyField, WaitFor as WaitForField } from '../gen/pushgate/v1/inbox.js';

/** The inbox settings a push request is checked against. */
export interface StorageLimits {
  /** PUSHGATE_INBOX_TTL_S: a stored push's lifetime when it gives no ttl_seconds. */
  readonly defaultTtlS: number;
  /** PUSHGATE_INBOX_MAX_TTL_S. */
  readonly maxTtlS: number;
}

interface StorageFields {
  readonly deliveryMode: DeliveryMode;
  readonly ttlSeconds: number;
  readonly removal: RemovalPolicyField;
  readonly noAck: boolean;
}

function invalid(message: string): PushgateError {
  return new PushgateError('invalid_argument', message);
}

const REMOVALS: Readonly<Record<number, RemovalPolicy>> = {
  [RemovalPolicyField.REMOVAL_POLICY_UNSPECIFIED]: 'any_session',
  [RemovalPolicyField.REMOVAL_POLICY_ANY_SESSION]: 'any_session',
  [RemovalPolicyField.REMOVAL_POLICY_EACH_CLIENT_TYPE]: 'each_client_type',
};

/**
 * delivery_mode, ttl_seconds and removal of a push: undefined for a live push (the default, and
 * what every push made before the inbox existed is). Options that only make sense with a storing
 * mode are refused without one, so a caller who forgot the mode hears about it.
 */
const WAIT_FOR: Readonly<Record<number, WaitFor>> = {
  [WaitForField.WAIT_FOR_UNSPECIFIED]: 'all',
  [WaitForField.WAIT_FOR_ALL]: 'all',
  [WaitForField.WAIT_FOR_ANY]: 'any',
  [WaitForField.WAIT_FOR_NONE]: 'none',
};

/** wait_for of a PushToUser: when the call returns. Fire-and-forget pushes have nothing to wait for. */
export function waitForOf(value: WaitForField, noAck: boolean): WaitFor {
  const waitFor = WAIT_FOR[value];
  if (waitFor === undefined) throw invalid(`wait_for ${value} is not a WaitFor value`);
  if (noAck && waitFor !== 'all') throw invalid('wait_for ANY or NONE needs acks: no_ack cannot be set with it');
  return waitFor;
}

export function storageOf(request: StorageFields, limits: StorageLimits): StoragePolicy | undefined {
  const { deliveryMode, ttlSeconds, removal } = request;
  const removalPolicy = REMOVALS[removal];
  if (removalPolicy === undefined) throw invalid(`removal ${removal} is not a RemovalPolicy value`);
  if (deliveryMode === DeliveryMode.DELIVERY_MODE_UNSPECIFIED || deliveryMode === DeliveryMode.DELIVERY_MODE_LIVE) {
    if (ttlSeconds !== 0) throw invalid('ttl_seconds is only used with delivery_mode STORE_IF_UNACKED or STORE');
    if (removal !== RemovalPolicyField.REMOVAL_POLICY_UNSPECIFIED) {
      throw invalid('removal is only used with delivery_mode STORE_IF_UNACKED or STORE');
    }
    return undefined;
  }
  let mode: StoragePolicy['mode'];
  if (deliveryMode === DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED) mode = 'store_if_unacked';
  else if (deliveryMode === DeliveryMode.DELIVERY_MODE_STORE) mode = 'store';
  else throw invalid(`delivery_mode ${deliveryMode} is not a DeliveryMode value`);
  if (request.noAck)
    throw invalid('no_ack cannot be set with delivery_mode STORE_IF_UNACKED or STORE: a stored message leaves the inbox when acked');
  if (ttlSeconds > limits.maxTtlS) {
    throw invalid(`ttl_seconds must be at most ${limits.maxTtlS} (PUSHGATE_INBOX_MAX_TTL_S), got ${ttlSeconds}`);
  }
  const ttlS = ttlSeconds === 0 ? limits.defaultTtlS : ttlSeconds;
  return { mode, ttlMs: ttlS * 1000, removal: removalPolicy };
}
