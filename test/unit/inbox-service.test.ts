import { describe, expect, it } from 'vitest';
import { InboxService, type ReplayTarget } from '../../src/domain/inbox-service.js';
import { type Outcome, outcome, type PushMessage, type PushRequest, type PushResult, withSession } from '../../src/domain/push.js';
import { MemoryInbox } from '../../src/inbox/memory-inbox.js';
import { sessionRecord } from '../support/session-record.js';

/** The inbox rules over the real memory inbox; the replay target stands in for a session's socket. */

const NOW = 1_700_000_000_000;

function service(inbox = new MemoryInbox(), maxMessagesPerUser = 100): { inbox: MemoryInbox; service: InboxService } {
  const inboxService = new InboxService({
    inbox,
    settings: { maxMessagesPerUser, whenFull: 'drop_oldest', replayBatch: 2 },
    clientTypes: ['app', 'pc', 'web'],
    replayAckTimeoutMs: 1000,
    now: () => NOW,
  });
  return { inbox, service: inboxService };
}

function push(messageId: string, overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    userId: 'u1',
    clientTypes: [],
    event: 'notice',
    data: { messageId },
    ackTimeoutMs: 1000,
    noAck: false,
    messageId,
    sentAtMs: NOW - 5,
    storage: { mode: 'store', ttlMs: 60_000, removal: 'any_session' },
    ...overrides,
  };
}

function result(request: PushRequest, outcomes: [clientType: string, outcome: Outcome][]): PushResult {
  const deliveries = outcomes.map(([clientType, o], i) => withSession(sessionRecord(request.userId, `s${i}`, { clientType }), o));
  return {
    messageId: request.messageId,
    deliveries,
    acked: deliveries.filter((d) => d.status === 'acked').length,
    timedOut: 0,
    failed: 0,
    stored: false,
  };
}

const ACKED: Outcome = { status: 'acked', latencyUs: 1, ackData: undefined, error: '' };

/** A session that records what it is sent and answers with `answer` (acked unless told otherwise). */
function target(answer: (message: PushMessage) => Outcome | Promise<Outcome> = () => ACKED, live: string[] = []) {
  const sent: PushMessage[] = [];
  const session: ReplayTarget & { sent: PushMessage[]; open: boolean } = {
    session: sessionRecord('u1', 's-app', { clientType: 'app' }),
    sent,
    open: true,
    send: async (message) => {
      sent.push(message);
      return answer(message);
    },
    hasLive: (messageId) => live.includes(messageId),
  };
  return session;
}

async function stored(inbox: MemoryInbox, userId = 'u1'): Promise<string[]> {
  return (await inbox.list(userId, 0, 100, NOW)).messages.map((m) => m.messageId);
}

describe('InboxService.settle', () => {
  it('keeps a STORE_IF_UNACKED push nobody acked, counting the deliveries made as attempts', async () => {
    const { inbox, service: inboxService } = service();
    const request = push('m1', { storage: { mode: 'store_if_unacked', ttlMs: 60_000, removal: 'any_session' } });
    const settled = await inboxService.settle(request, result(request, [['app', outcome('timeout')]]));
    expect(settled.stored).toBe(true);
    const [kept] = (await inbox.list('u1', 0, 10, NOW)).messages;
    expect(kept).toMatchObject({ messageId: 'm1', attempts: 1, expiresAtMs: NOW - 5 + 60_000, sentAtMs: NOW - 5 });
  });

  it('does not keep a STORE_IF_UNACKED push one session acked', async () => {
    const { inbox, service: inboxService } = service();
    const request = push('m1', { storage: { mode: 'store_if_unacked', ttlMs: 60_000, removal: 'any_session' } });
    const settled = await inboxService.settle(
      request,
      result(request, [
        ['app', outcome('timeout')],
        ['pc', ACKED],
      ]),
    );
    expect(settled.stored).toBe(false);
    expect(await stored(inbox)).toEqual([]);
  });

  it('removes a STORE push with its live ack, or keeps it until every client type acked (EACH_CLIENT_TYPE)', async () => {
    const { inbox, service: inboxService } = service();
    const anyAck = push('any');
    await inboxService.keepBeforeSend(anyAck, 0);
    expect((await inboxService.settle(anyAck, result(anyAck, [['web', ACKED]]))).stored).toBe(false);

    // No client-type filter: every configured type must ack it.
    const eachType = push('each', { storage: { mode: 'store', ttlMs: 60_000, removal: 'each_client_type' } });
    await inboxService.keepBeforeSend(eachType, 0);
    const partly = await inboxService.settle(
      eachType,
      result(eachType, [
        ['app', ACKED],
        ['pc', ACKED],
      ]),
    );
    expect(partly.stored).toBe(true);
    expect((await inbox.list('u1', 0, 10, NOW)).messages[0]).toMatchObject({ messageId: 'each', ackedTypes: ['app', 'pc'] });
    expect(await inbox.ack('u1', 'each', 'web')).toBe('removed');
  });

  it('leaves live pushes alone', async () => {
    const { inbox, service: inboxService } = service();
    const request = push('live', { storage: undefined });
    const plain = result(request, [['app', outcome('timeout')]]);
    expect(await inboxService.settle(request, plain)).toBe(plain);
    expect(await stored(inbox)).toEqual([]);
  });
});

describe('InboxService.replay', () => {
  it('sends every stored message for the client type in push order, and the acks remove them', async () => {
    const { inbox, service: inboxService } = service();
    for (const id of ['a', 'b', 'c']) await inboxService.keepBeforeSend(push(id), 0);
    await inboxService.keepBeforeSend(push('for-web', { clientTypes: ['web'] }), 0);
    const session = target();

    expect(await inboxService.replay(session)).toBe(3);
    expect(session.sent.map((m) => [m.messageId, m.replay, m.attempt, m.sentAtMs])).toEqual([
      ['a', true, 1, NOW - 5],
      ['b', true, 1, NOW - 5],
      ['c', true, 1, NOW - 5],
    ]);
    await expect.poll(() => stored(inbox)).toEqual(['for-web']);
  });

  it('keeps what the session did not ack, for its next connection (attempt counts up)', async () => {
    const { service: inboxService } = service();
    await inboxService.keepBeforeSend(push('a'), 0);
    await inboxService.replay(target(() => outcome('timeout')));
    const again = target();
    await inboxService.replay(again);
    expect(again.sent.map((m) => m.attempt)).toEqual([2]);
  });

  it('also sends messages stored while the replay runs, and skips one already on its way live', async () => {
    const { inbox, service: inboxService } = service();
    await inboxService.keepBeforeSend(push('first'), 0);
    let storedLate = false;
    const session = target(async () => {
      if (!storedLate) {
        storedLate = true;
        await inboxService.keepBeforeSend(push('late'), 0);
        await inboxService.keepBeforeSend(push('live-too'), 0);
      }
      return ACKED;
    }, ['live-too']);
    expect(await inboxService.replay(session)).toBe(2);
    expect(session.sent.map((m) => m.messageId)).toEqual(['first', 'late']);
    await expect.poll(() => stored(inbox)).toEqual(['live-too']);
  });

  it('stops when the session closes', async () => {
    const { service: inboxService } = service();
    for (const id of ['a', 'b', 'c']) await inboxService.keepBeforeSend(push(id), 0);
    const session = target(() => {
      session.open = false;
      return outcome('disconnected');
    });
    expect(await inboxService.replay(session)).toBe(1);
  });
});
