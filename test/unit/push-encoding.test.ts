import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { Delivery, DeliveryStatus, UserPushResult } from '../../src/domain/push.js';
import { PushToUserResponse, PushToUsersResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { BatchItemMessage, type BatchMessageContent, encodeBatchItem, encodePushResult, PushResultMessage } from '../../src/grpc/encode.js';
import { serializePushToUserResponse, serializePushToUsersResponse } from '../../src/grpc/push-encoding.js';
import { sessionRecord } from '../support/session-record.js';

// The hand-written serializers must give ts-proto's bytes for every message, whichever path they take.
const tsProtoUsers = (m: PushToUsersResponse) => Buffer.from(PushToUsersResponse.encode(m).finish());
const tsProtoUser = (m: PushToUserResponse) => Buffer.from(PushToUserResponse.encode(m).finish());

/** Both serializers on `item`, against ts-proto's bytes of the plain message (and of the lazy one, read through its fields). */
function expectTsProtoBytes(item: BatchMessageContent): void {
  const expected = tsProtoUsers(encodeBatchItem(item));
  expect(serializePushToUsersResponse(new BatchItemMessage(item))).toEqual(expected);
  expect(tsProtoUsers(new BatchItemMessage(item))).toEqual(expected);
  expect(serializePushToUsersResponse(encodeBatchItem(item))).toEqual(expected);
  if (item.kind === 'user') {
    const single = tsProtoUser(encodePushResult(item.result));
    expect(serializePushToUserResponse(new PushResultMessage(item.result))).toEqual(single);
    expect(tsProtoUser(new PushResultMessage(item.result))).toEqual(single);
  }
}

function delivery(sessionId: string, status: DeliveryStatus, overrides: Partial<Delivery> = {}): Delivery {
  const session = sessionRecord('u1', sessionId, { connectedAtMs: 1_700_000_000_123, lastSeenAtMs: 1_700_000_001_000 });
  return { session, status, latencyUs: status === 'acked' ? 1234 : 0, ackData: undefined, error: '', ...overrides };
}

function userResult(deliveries: Delivery[], userId = 'u1'): UserPushResult {
  const count = (s: DeliveryStatus) => deliveries.filter((d) => d.status === s).length;
  return {
    userId,
    messageId: `batch-1:${userId}`,
    deliveries,
    acked: count('acked'),
    timedOut: count('timeout'),
    failed: count('failed') + count('disconnected'),
    stored: false,
  };
}

const ACKS: unknown[] = [
  { ok: true },
  null,
  0,
  -0,
  42.5,
  -1e300,
  '',
  'plain',
  'ünïcødé ✓ 😀',
  'lone \ud800 surrogate',
  true,
  false,
  [],
  {},
  [1, 'two', null, [3, [4]], { five: 5 }],
  { '': 'empty key', nested: { deeper: { list: [true, false, null] } }, ключ: 'значение', 10: 'ten', 2: 'two' },
  { skipped: undefined, kept: 1 },
  [undefined, 1],
  { long: 'x'.repeat(300), list: Array.from({ length: 200 }, (_, i) => i) },
];

describe('push response serializers', () => {
  it('gives ts-proto’s bytes for user results of every status and ack value', () => {
    const statuses: DeliveryStatus[] = ['acked', 'timeout', 'disconnected', 'sent', 'failed'];
    for (const ackData of ACKS) {
      const deliveries = statuses.map((status, i) =>
        delivery(`s${i}`, status, status === 'acked' ? { ackData } : { error: status === 'failed' ? 'slow_consumer: ü' : '' }),
      );
      expectTsProtoBytes({ kind: 'user', result: userResult(deliveries) });
      // Several users in one message (max_results_per_message): the same results under user_results.
      expectTsProtoBytes({ kind: 'users', results: [userResult(deliveries), userResult([], 'nobody'), userResult(deliveries, 'u2')] });
    }
  });

  it('gives ts-proto’s bytes for users without sessions, empty and long strings, and large numbers', () => {
    const cases: UserPushResult[] = [
      userResult([], 'nobody'),
      userResult([], ''),
      { ...userResult([delivery('s', 'acked')]), messageId: '' },
      userResult([
        delivery('s'.repeat(200), 'acked', {
          latencyUs: 0xffffffff,
          session: {
            ...sessionRecord('ü'.repeat(100), 'x', { connectedAtMs: 0, lastSeenAtMs: 999 }),
            userAgent: 'Mozilla/5.0 '.repeat(40),
          },
        }),
        delivery('t', 'timeout', {
          session: sessionRecord('u', 't', { connectedAtMs: 8.64e15, lastSeenAtMs: 1_000, remoteAddress: '', userAgent: '' }),
        }),
      ]),
    ];
    for (const result of cases) expectTsProtoBytes({ kind: 'user', result });
  });

  it('grows its buffer for a large message, and each message keeps its own bytes', () => {
    const many = userResult(
      Array.from({ length: 60 }, (_, i) =>
        delivery(`s${i}`, 'acked', {
          ackData: { note: 'n'.repeat(150) },
          session: { ...sessionRecord('u1', `s${i}`), userAgent: 'UA/1.0 '.repeat(30) },
        }),
      ),
    );
    const small = userResult([delivery('s', 'timeout')]);
    const large = serializePushToUsersResponse(new BatchItemMessage({ kind: 'user', result: many }));
    const after = serializePushToUsersResponse(new BatchItemMessage({ kind: 'user', result: small }));
    expect(large.length).toBeGreaterThan(20_000);
    expect(large).toEqual(tsProtoUsers(encodeBatchItem({ kind: 'user', result: many })));
    expect(after).toEqual(tsProtoUsers(encodeBatchItem({ kind: 'user', result: small })));
  });

  it('gives ts-proto’s bytes for the summary', () => {
    const summaries = [
      { messageId: 'b', users: 1000, usersWithoutSessions: 3, sessions: 2997, acked: 2990, timedOut: 4, failed: 3, sent: 0, stored: 1000 },
      { messageId: '', users: 0, usersWithoutSessions: 0, sessions: 0, acked: 0, timedOut: 0, failed: 0, sent: 0, stored: 0 },
      { messageId: 'b', users: 1, usersWithoutSessions: 0, sessions: 2 ** 32 - 1, acked: 0, timedOut: 0, failed: 0, sent: 200, stored: 0 },
    ];
    for (const summary of summaries) expectTsProtoBytes({ kind: 'summary', summary });
    expect(serializePushToUsersResponse({ userResults: [] })).toEqual(tsProtoUsers({ userResults: [] }));
  });

  it('encodes JSON acks itself, without ts-proto', () => {
    const users = vi.spyOn(PushToUsersResponse, 'encode');
    const user = vi.spyOn(PushToUserResponse, 'encode');
    try {
      for (const ackData of ACKS) {
        const result = userResult([delivery('s', 'acked', { ackData }), delivery('t', 'timeout')]);
        serializePushToUsersResponse(new BatchItemMessage({ kind: 'user', result }));
        serializePushToUsersResponse(
          new BatchItemMessage({
            kind: 'summary',
            summary: {
              messageId: 'b',
              users: 1,
              usersWithoutSessions: 0,
              sessions: 2,
              acked: 1,
              timedOut: 1,
              failed: 0,
              sent: 0,
              stored: 1,
            },
          }),
        );
        serializePushToUserResponse(new PushResultMessage(result));
      }
      expect(users).not.toHaveBeenCalled();
      expect(user).not.toHaveBeenCalled();
    } finally {
      users.mockRestore();
      user.mockRestore();
    }
  });

  it('leaves what it does not take to ts-proto: same bytes, or the same refusal', () => {
    const odd: unknown[] = [
      new Date(5),
      new Map([[1, 2]]),
      Buffer.from('ab'),
      Object.create({ inherited: 1 }),
      JSON.parse('{"__proto__": 1, "a": 2}'),
    ];
    let deep: unknown = 1;
    for (let i = 0; i < 80; i++) deep = [deep];
    for (const ackData of [...odd, deep]) expectTsProtoBytes({ kind: 'user', result: userResult([delivery('s', 'acked', { ackData })]) });
    for (const connectedAtMs of [-1_500, 1.5, Number.NaN, 9e15]) {
      const result = userResult([delivery('s', 'sent', { session: sessionRecord('u', 's', { connectedAtMs }) })]);
      let expected: Buffer | Error;
      try {
        expected = tsProtoUsers(encodeBatchItem({ kind: 'user', result }));
      } catch (err) {
        expected = err as Error;
      }
      if (expected instanceof Error)
        expect(() => serializePushToUsersResponse(new BatchItemMessage({ kind: 'user', result }))).toThrow(expected.message);
      else expect(serializePushToUsersResponse(new BatchItemMessage({ kind: 'user', result }))).toEqual(expected);
    }
    for (const bad of [() => 1, Symbol('s'), 10n]) {
      const item: BatchMessageContent = { kind: 'user', result: userResult([delivery('s', 'acked', { ackData: bad })]) };
      expect(() => serializePushToUsersResponse(new BatchItemMessage(item))).toThrow(/Unsupported any value type/);
    }
    const negative = { ...userResult([delivery('s', 'acked')]), acked: -1 };
    expect(() => serializePushToUserResponse(new PushResultMessage(negative))).toThrow(/invalid uint32/);
    const unknownStatus = userResult([delivery('s', 'acked', { status: 'lost' as DeliveryStatus })]);
    expect(() => serializePushToUsersResponse(new BatchItemMessage({ kind: 'user', result: unknownStatus }))).toThrow(/invalid int32/);
  });

  it('gives ts-proto’s bytes for any results: random strings, statuses, times, counts and JSON acks (property)', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    const session = fc.record({
      sessionId: text,
      userId: text,
      clientType: text,
      nodeId: text,
      connectedAtMs: fc.integer({ min: 0, max: 8.64e15 }),
      lastSeenAtMs: fc.integer({ min: 0, max: 8.64e15 }),
      remoteAddress: text,
      userAgent: fc.string({ maxLength: 300 }),
    });
    const deliveryOf = fc.record({
      session,
      status: fc.constantFrom<DeliveryStatus>('acked', 'timeout', 'disconnected', 'sent', 'failed'),
      latencyUs: fc.integer({ min: 0, max: 0xffffffff }),
      ackData: fc.option(fc.jsonValue({ maxDepth: 4 }), { nil: undefined }),
      error: text,
    });
    const result = fc.record({
      userId: text,
      messageId: text,
      deliveries: fc.array(deliveryOf, { maxLength: 5 }),
      acked: fc.integer({ min: 0, max: 0xffffffff }),
      timedOut: fc.integer({ min: 0, max: 0xffffffff }),
      failed: fc.integer({ min: 0, max: 0xffffffff }),
      stored: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(result, { minLength: 1, maxLength: 4 }), (results) => {
        expectTsProtoBytes({ kind: 'user', result: results[0]! });
        expectTsProtoBytes({ kind: 'users', results });
      }),
      { numRuns: 300 },
    );
  });
});
