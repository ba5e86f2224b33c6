import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Inbox, InboxLimits, NewStoredMessage, StoredMessage } from '../../src/domain/inbox.js';
import { isPushgateError } from '../../src/errors.js';

/**
 * The behaviour every Inbox must have (see the contract in src/domain/inbox.ts). Run it from a
 * `*.test.ts` file with a factory that returns a fresh, empty store for each call:
 *
 *   describeInbox('MemoryInbox', async () => { const inbox = new MemoryInbox(); return { inbox, peer: async () => inbox }; });
 *
 * `peer` opens another handle on the same store, as a second node has (an inbox that serves one
 * node returns itself). Times are real epoch ms (a Redis inbox sets key expiries from them).
 */
export interface InboxFixture {
  readonly inbox: Inbox;
  peer(): Promise<Inbox>;
}

export function describeInbox(name: string, factory: () => Promise<InboxFixture>): void {
  describe(`Inbox contract: ${name}`, () => {
    const roomy: InboxLimits = { maxMessages: 100, whenFull: 'refuse_new' };
    const hour = 3_600_000;
    let fixture: InboxFixture;
    let inbox: Inbox;
    let now: number;
    const opened: Inbox[] = [];

    beforeEach(async () => {
      fixture = await factory();
      inbox = fixture.inbox;
      opened.push(inbox);
      now = Date.now();
    });

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((i) => i.close()));
    });

    function message(userId: string, messageId: string, more: Partial<NewStoredMessage> = {}): NewStoredMessage {
      return {
        messageId,
        userId,
        event: 'chat',
        data: { text: `hello ${messageId}`, n: [1, { deep: true }] },
        clientTypes: [],
        removal: 'any_session',
        requiredTypes: [],
        sentAtMs: now - 5,
        expiresAtMs: now + hour,
        attempts: 1,
        ...more,
      };
    }

    async function storeAll(userId: string, ids: readonly string[], more: Partial<NewStoredMessage> = {}, limits = roomy) {
      for (const id of ids) expect((await inbox.store(message(userId, id, more), limits, now)).stored).toBe(true);
    }

    async function ids(userId: string, at = now): Promise<string[]> {
      return (await inbox.list(userId, 0, 1000, at)).messages.map((m) => m.messageId);
    }

    const idsOf = (messages: readonly StoredMessage[]): string[] => messages.map((m) => m.messageId);

    async function failure(promise: Promise<unknown>): Promise<unknown> {
      return promise.then(
        () => undefined,
        (err: unknown) => err,
      );
    }

    it('stores messages and lists them whole, in store order, a page at a time', async () => {
      const stored = message('alice', 'm1', { clientTypes: ['app'], removal: 'each_client_type', requiredTypes: ['app'], attempts: 2 });
      expect(await inbox.store(stored, roomy, now)).toEqual({ stored: true, dropped: [] });
      await storeAll('alice', ['m2', 'm3', 'm4', 'm5']);

      const first = await inbox.list('alice', 0, 2, now);
      expect(first.messages[0]).toEqual({ ...stored, seq: first.messages[0]!.seq, ackedTypes: [] });
      expect(idsOf(first.messages)).toEqual(['m1', 'm2']);
      expect(first.nextAfterSeq).toBe(first.messages[1]!.seq);
      const second = await inbox.list('alice', first.nextAfterSeq!, 2, now);
      expect(idsOf(second.messages)).toEqual(['m3', 'm4']);
      const last = await inbox.list('alice', second.nextAfterSeq!, 2, now);
      expect(idsOf(last.messages)).toEqual(['m5']);
      expect(last.nextAfterSeq).toBeUndefined();

      const seqs = [...first.messages, ...second.messages, ...last.messages].map((m) => m.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(5);
      // A page that ends exactly at the last message says so.
      expect((await inbox.list('alice', second.messages[0]!.seq - 1, 3, now)).nextAfterSeq).toBeUndefined();
      expect(await inbox.list('nobody', 0, 10, now)).toEqual({ messages: [], nextAfterSeq: undefined });
    });

    it('hands out copies: changing a returned message changes nothing stored', async () => {
      await storeAll('alice', ['m1']);
      const [got] = (await inbox.list('alice', 0, 10, now)).messages;
      try {
        (got!.data as { text: string }).text = 'changed';
        (got!.clientTypes as string[]).push('web');
      } catch {
        // a frozen list refuses the change: as good
      }
      const [again] = (await inbox.list('alice', 0, 10, now)).messages;
      expect(again!.data).toEqual({ text: 'hello m1', n: [1, { deep: true }] });
      expect(again!.clientTypes).toEqual([]);
    });

    it('keeps seq growing after removals', async () => {
      await storeAll('alice', ['m1', 'm2']);
      const before = (await inbox.list('alice', 0, 10, now)).messages.at(-1)!.seq;
      await inbox.remove('alice', ['m2']);
      await storeAll('alice', ['m3']);
      expect((await inbox.list('alice', 0, 10, now)).messages.at(-1)!.seq).toBeGreaterThan(before);
    });

    it('changes nothing when a message id is stored again', async () => {
      await storeAll('alice', ['m1', 'm2']);
      const before = await inbox.list('alice', 0, 10, now);
      const again = message('alice', 'm1', { data: 'other', event: 'other', expiresAtMs: now + 2 * hour });
      expect(await inbox.store(again, { maxMessages: 1, whenFull: 'drop_oldest' }, now)).toEqual({ stored: false, dropped: [] });
      expect(await inbox.list('alice', 0, 10, now)).toEqual(before);
    });

    it('drops the oldest messages of a full inbox with drop_oldest, reporting them oldest first', async () => {
      await storeAll('alice', ['m1', 'm2', 'm3']);
      const dropOldest: InboxLimits = { maxMessages: 3, whenFull: 'drop_oldest' };
      const result = await inbox.store(message('alice', 'm4'), dropOldest, now);
      expect(result.stored).toBe(true);
      expect(idsOf(result.dropped)).toEqual(['m1']);
      expect(result.dropped[0]).toMatchObject({ userId: 'alice', data: { text: 'hello m1' }, attempts: 1 });
      expect(await ids('alice')).toEqual(['m2', 'm3', 'm4']);

      // A lower cap than before drops as many as it takes.
      const shrunk = await inbox.store(message('alice', 'm5'), { maxMessages: 1, whenFull: 'drop_oldest' }, now);
      expect(idsOf(shrunk.dropped)).toEqual(['m2', 'm3', 'm4']);
      expect(await ids('alice')).toEqual(['m5']);
    });

    it('refuses a new message into a full inbox with refuse_new: inbox_full', async () => {
      const twoOnly: InboxLimits = { maxMessages: 2, whenFull: 'refuse_new' };
      await storeAll('alice', ['m1', 'm2'], {}, twoOnly);
      const err = await failure(inbox.store(message('alice', 'm3'), twoOnly, now));
      expect(isPushgateError(err) && err.code).toBe('inbox_full');
      expect((err as Error).message).toContain('PUSHGATE_INBOX_MAX_MESSAGES');
      expect(await ids('alice')).toEqual(['m1', 'm2']);
      await storeAll('bob', ['m3'], {}, twoOnly);
    });

    it('counts only unexpired messages against the cap (expired ones wait for expire)', async () => {
      const twoOnly: InboxLimits = { maxMessages: 2, whenFull: 'drop_oldest' };
      await storeAll('alice', ['old1', 'old2'], { expiresAtMs: now + 10 }, twoOnly);
      const later = now + 20;
      expect(await inbox.store(message('alice', 'new1'), twoOnly, later)).toEqual({ stored: true, dropped: [] });
      expect(idsOf((await inbox.store(message('alice', 'new2'), twoOnly, later)).dropped)).toEqual([]);
      expect(idsOf((await inbox.store(message('alice', 'new3'), twoOnly, later)).dropped)).toEqual(['new1']);
      expect(idsOf(await inbox.expire(later, 10))).toEqual(['old1', 'old2']);
    });

    it('replays to a client type only what its filter admits, counting attempts up', async () => {
      await storeAll('alice', ['m1'], { clientTypes: ['app'], attempts: 1 });
      await storeAll('alice', ['m2'], { clientTypes: ['web'] });
      await storeAll('alice', ['m3'], { clientTypes: ['web', 'app'], attempts: 0 });
      await storeAll('alice', ['m4']);

      const claimed = await inbox.claimForReplay('alice', 'app', 0, 10, now);
      expect(idsOf(claimed)).toEqual(['m1', 'm3', 'm4']);
      expect(claimed.map((m) => m.attempts)).toEqual([2, 1, 2]);
      expect((await inbox.claimForReplay('alice', 'app', 0, 10, now)).map((m) => m.attempts)).toEqual([3, 2, 3]);
      expect(idsOf(await inbox.claimForReplay('alice', 'pc', 0, 10, now))).toEqual(['m4']);
      const listed = (await inbox.list('alice', 0, 10, now)).messages;
      expect(listed.map((m) => m.attempts)).toEqual([3, 1, 2, 4]);
    });

    it('replays after a seq and at most `limit` messages', async () => {
      await storeAll('alice', ['m1', 'm2', 'm3', 'm4']);
      const [m1, m2] = (await inbox.list('alice', 0, 2, now)).messages;
      expect(idsOf(await inbox.claimForReplay('alice', 'app', m1!.seq, 2, now))).toEqual(['m2', 'm3']);
      expect(idsOf(await inbox.claimForReplay('alice', 'app', m2!.seq, 10, now))).toEqual(['m3', 'm4']);
      expect(await inbox.claimForReplay('alice', 'app', 0, 0, now)).toEqual([]);
      expect(idsOf((await inbox.list('alice', m1!.seq, 10, now)).messages)).toEqual(['m2', 'm3', 'm4']);
    });

    it('removes an any_session message at its first ack; a second ack is unknown', async () => {
      await storeAll('alice', ['m1', 'm2']);
      expect(await inbox.ack('alice', 'm1', 'web')).toBe('removed');
      expect(await inbox.ack('alice', 'm1', 'web')).toBe('unknown');
      expect(await inbox.ack('alice', 'never', 'web')).toBe('unknown');
      expect(await inbox.ack('bob', 'm2', 'web')).toBe('unknown');
      expect(await ids('alice')).toEqual(['m2']);
    });

    it('keeps an each_client_type message until every required type acked', async () => {
      await storeAll('alice', ['m1'], { removal: 'each_client_type', requiredTypes: ['app', 'web'] });
      expect(await inbox.ack('alice', 'm1', 'pc')).toBe('kept');
      expect((await inbox.list('alice', 0, 10, now)).messages[0]!.ackedTypes).toEqual([]);
      expect(await inbox.ack('alice', 'm1', 'app')).toBe('kept');
      expect(await inbox.ack('alice', 'm1', 'app')).toBe('kept');
      expect((await inbox.list('alice', 0, 10, now)).messages[0]!.ackedTypes).toEqual(['app']);
      expect(await inbox.claimForReplay('alice', 'app', 0, 10, now)).toEqual([]);
      expect(idsOf(await inbox.claimForReplay('alice', 'web', 0, 10, now))).toEqual(['m1']);
      expect(await inbox.ack('alice', 'm1', 'web')).toBe('removed');
      expect(await inbox.ack('alice', 'm1', 'web')).toBe('unknown');
      expect(await ids('alice')).toEqual([]);
    });

    it('removes the messages named, or all, and says how many it removed', async () => {
      await storeAll('alice', ['m1', 'm2', 'm3', 'm4']);
      await storeAll('bob', ['m1']);
      expect(await inbox.remove('alice', ['m2', 'never', 'm2', 'm4'])).toEqual(['m2', 'm4']);
      expect(await inbox.remove('alice', [])).toEqual([]);
      expect(await ids('alice')).toEqual(['m1', 'm3']);
      expect((await inbox.remove('alice', 'all')).sort()).toEqual(['m1', 'm3']);
      expect(await ids('alice')).toEqual([]);
      expect(await inbox.remove('alice', 'all')).toEqual([]);
      expect(await ids('bob')).toEqual(['m1']);
      expect(await inbox.expire(now + 2 * hour, 100)).toHaveLength(1);
    });

    it('hides expired messages from list and replay, and expire reports each exactly once', async () => {
      await storeAll('alice', ['soon'], { expiresAtMs: now + 100 });
      await storeAll('alice', ['later'], { expiresAtMs: now + 200 });
      await storeAll('bob', ['at-once'], { expiresAtMs: now });
      expect(await ids('alice', now + 100)).toEqual(['later']);
      expect(idsOf(await inbox.claimForReplay('alice', 'app', 0, 10, now + 150))).toEqual(['later']);

      const first = await inbox.expire(now + 150, 10);
      expect(idsOf(first).sort()).toEqual(['at-once', 'soon']);
      expect(first.find((m) => m.messageId === 'soon')).toMatchObject({ userId: 'alice', data: { text: 'hello soon' }, attempts: 1 });
      expect(await inbox.expire(now + 150, 10)).toEqual([]);
      expect(await inbox.ack('alice', 'soon', 'app')).toBe('unknown');
      const second = await inbox.expire(now + 1000, 10);
      expect(second.map((m) => [m.userId, m.messageId, m.attempts])).toEqual([['alice', 'later', 2]]);
      expect(await ids('alice', now)).toEqual([]);
    });

    it('expires at most `limit` messages a call', async () => {
      await storeAll('alice', ['m1', 'm2', 'm3'], { expiresAtMs: now + 10 });
      await storeAll('bob', ['m1', 'm2'], { expiresAtMs: now + 10 });
      const got = [await inbox.expire(now + 10, 2), await inbox.expire(now + 10, 2), await inbox.expire(now + 10, 2)];
      expect(got.map((batch) => batch.length)).toEqual([2, 2, 1]);
      expect(await inbox.expire(now + 10, 2)).toEqual([]);
    });

    it('reports each expired message once when several handles expire at once', async () => {
      const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
      for (const user of users) await storeAll(user, ['a', 'b', 'c', 'd'], { expiresAtMs: now + 10 });
      await storeAll('u1', ['kept'], { expiresAtMs: now + hour });
      const peer = await fixture.peer();
      opened.push(peer);
      const sweeps = await Promise.all([inbox, peer, inbox, peer].map((handle) => handle.expire(now + 50, 7)));
      const rest = await Promise.all([inbox.expire(now + 50, 100), peer.expire(now + 50, 100)]);
      const reported = [...sweeps, ...rest].flat().map((m) => `${m.userId}/${m.messageId}`);
      expect(reported.sort()).toEqual(users.flatMap((u) => ['a', 'b', 'c', 'd'].map((id) => `${u}/${id}`)).sort());
      expect(await ids('u1')).toEqual(['kept']);
    });

    it('keeps users with odd ids apart (NUL, line breaks, braces, prefixes of each other)', async () => {
      const users = ['a', 'a\0', '\0a', 'a\0\0b', 'a\0\x01', '{s0}x', 'line\nbreak', 'ü{}\r\n\t'];
      for (const [i, user] of users.entries()) await storeAll(user, [`m${i}`, 'shared', '\0\0odd'], { expiresAtMs: now + 10 });
      for (const [i, user] of users.entries()) {
        const { messages } = await inbox.list(user, 0, 100, now);
        expect(messages.map((m) => [m.userId, m.messageId])).toEqual([`m${i}`, 'shared', '\0\0odd'].map((id) => [user, id]));
      }
      expect(await inbox.ack('a\0', 'shared', 'app')).toBe('removed');
      expect(await ids('a')).toEqual(['m0', 'shared', '\0\0odd']);
      const expired = await inbox.expire(now + 10, 1000);
      expect(expired).toHaveLength(users.length * 3 - 1);
      for (const m of expired) expect(users).toContain(m.userId);
      expect(
        expired
          .filter((m) => m.userId === 'a\0')
          .map((m) => m.messageId)
          .sort(),
      ).toEqual(['\0\0odd', 'm1']);
    });

    it('never hands one user’s message to another (random operations against a model)', async () => {
      const users = ['x', 'x\0', 'y{1}'];
      type Op = { kind: 'store' | 'ack' | 'remove' | 'claim' | 'list'; user: number; id: number };
      const op = fc.record({
        kind: fc.constantFrom<Op['kind']>('store', 'store', 'ack', 'remove', 'claim', 'list'),
        user: fc.nat(users.length - 1),
        id: fc.nat(4),
      });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
          const tag = `r${++run}:`;
          const model = users.map(() => new Set<string>());
          for (const { kind, user, id } of ops) {
            const userId = tag + users[user]!;
            const messageId = `m${id}`;
            const held = model[user]!;
            if (kind === 'store') {
              expect((await inbox.store(message(userId, messageId), roomy, now)).stored).toBe(!held.has(messageId));
              held.add(messageId);
            } else if (kind === 'ack') {
              expect(await inbox.ack(userId, messageId, 'app')).toBe(held.delete(messageId) ? 'removed' : 'unknown');
            } else if (kind === 'remove') {
              expect(await inbox.remove(userId, [messageId])).toEqual(held.delete(messageId) ? [messageId] : []);
            } else {
              const got =
                kind === 'claim'
                  ? await inbox.claimForReplay(userId, 'app', 0, 100, now)
                  : (await inbox.list(userId, 0, 100, now)).messages;
              expect(got.every((m) => m.userId === userId)).toBe(true);
              expect(new Set(idsOf(got))).toEqual(held);
            }
          }
          for (const [user, held] of model.entries())
            expect((await inbox.remove(tag + users[user]!, 'all')).sort()).toEqual([...held.keys()].sort());
        }),
        { numRuns: 40 },
      );
    });
  });
}
