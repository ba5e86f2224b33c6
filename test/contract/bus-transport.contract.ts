import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BusTransport } from '../../src/cluster/bus-transport.js';
import { waitFor } from '../support/wait.js';

/** Transports for several nodes on one wire (one in-memory network, one Redis), fresh for each test. */
export interface BusWire {
  /** A transport for one more node on this wire, not yet listening. */
  transport(): Promise<BusTransport>;
  /** Releases what the wire holds (connections). Every transport it handed out is closed by then. */
  close(): Promise<void>;
}

/**
 * The behaviour every BusTransport must have (see src/cluster/bus-transport.ts). Run it from a
 * `*.test.ts` file with a factory that returns a fresh wire for each test:
 *
 *   describeBusTransport('MemoryBusNetwork', async () => memoryWire());
 *
 * Node ids are the same in every test: a wire must keep tests apart (a key prefix per wire). Nothing
 * here waits a fixed time: arrivals are polled for, and an absence is proven by a later message on
 * the same node's channel arriving first (a node receives its messages in send order).
 */
export function describeBusTransport(name: string, factory: () => Promise<BusWire>): void {
  describe(`BusTransport contract: ${name}`, () => {
    let wire: BusWire;
    const transports: BusTransport[] = [];

    beforeEach(async () => {
      wire = await factory();
    });

    afterEach(async () => {
      for (const transport of transports.splice(0)) transport.close();
      await wire.close();
    });

    /** A transport that only sends (it never listens), closed after the test. */
    async function sender(): Promise<BusTransport> {
      const transport = await wire.transport();
      transports.push(transport);
      return transport;
    }

    /** A transport listening as `nodeId`, with everything it has received so far. */
    async function node(nodeId: string): Promise<{ transport: BusTransport; received: string[] }> {
      const transport = await sender();
      const received: string[] = [];
      await transport.listen(nodeId, (message) => received.push(message));
      return { transport, received };
    }

    async function arrived(received: readonly string[], count: number, what: string): Promise<void> {
      await waitFor(`${count} messages for ${what} (got ${received.length})`, () => received.length >= count, { timeoutMs: 3000 });
    }

    it('delivers a message to the node it is addressed to, intact: unicode, control characters, ~100 KB of JSON', async () => {
      const from = await sender();
      const a = await node('node-a');
      const unicode = 'héllo wörld — 你好, мир, مرحبا 🚀👩‍💻 e\u0301 \u0000 tab\tnewline\ncrlf\r\n "quotes" \\ end';
      const large = JSON.stringify({
        kind: 'request',
        body: { sessionIds: Array.from({ length: 1000 }, (_, i) => `session-${i}-ü`), data: 'x🚀'.repeat(30_000) },
      });
      expect(large.length).toBeGreaterThan(100_000);

      await from.send('node-a', unicode);
      await from.send('node-a', large);
      await from.send('node-a', '');

      await arrived(a.received, 3, 'node-a');
      expect(a.received[0]).toBe(unicode);
      expect(a.received[1]).toBe(large);
      expect(JSON.parse(a.received[1]!)).toEqual(JSON.parse(large));
      expect(a.received).toEqual([unicode, large, '']);
    });

    it('delivers the messages to one node in the order they were sent, sends not awaited one by one', async () => {
      const from = await sender();
      const a = await node('node-a');
      const messages = Array.from({ length: 200 }, (_, i) => `message ${i}`);

      expect(await Promise.all(messages.map((message) => from.send('node-a', message)))).toEqual(messages.map(() => 1));

      await arrived(a.received, messages.length, 'node-a');
      expect(a.received).toEqual(messages);
    });

    it('send resolves to 1 when one node listens, and a listening node can send too', async () => {
      const a = await node('node-a');
      const b = await node('node-b');

      expect(await a.transport.send('node-b', 'from a')).toBe(1);
      expect(await b.transport.send('node-a', 'from b')).toBe(1);

      await arrived(b.received, 1, 'node-b');
      await arrived(a.received, 1, 'node-a');
      expect(b.received).toEqual(['from a']);
      expect(a.received).toEqual(['from b']);
    });

    it('send resolves to 0 for a node that never listened, and nothing reaches it when it listens later', async () => {
      const from = await sender();

      expect(await from.send('node-nobody', 'lost')).toBe(0);

      const late = await node('node-nobody');
      expect(await from.send('node-nobody', 'first seen')).toBe(1);
      await arrived(late.received, 1, 'node-nobody');
      expect(late.received).toEqual(['first seen']);
    });

    it('send resolves to 0 for a node after its close()', async () => {
      const from = await sender();
      const a = await node('node-a');
      expect(await from.send('node-a', 'while listening')).toBe(1);

      a.transport.close();

      // close() needs no answer from the wire, so the wire may take a moment to notice.
      await waitFor('a send to the closed node to report no receiver', async () => (await from.send('node-a', 'after close')) === 0, {
        timeoutMs: 500,
      });
    });

    it('hands a node only the messages addressed to it', async () => {
      const from = await sender();
      const a = await node('node-a');
      const b = await node('node-b');

      await from.send('node-a', 'a-1');
      await from.send('node-b', 'b-1');
      await from.send('node-b', 'b-2');
      await from.send('node-c', 'c-1');
      await from.send('node-a', 'a-2');
      // Each node's last message: once it arrives, everything sent to that node before it has too.
      await from.send('node-a', 'a-end');
      await from.send('node-b', 'b-end');

      await arrived(a.received, 3, 'node-a');
      await arrived(b.received, 3, 'node-b');
      expect(a.received).toEqual(['a-1', 'a-2', 'a-end']);
      expect(b.received).toEqual(['b-1', 'b-2', 'b-end']);
    });

    it('stops handing messages over at close(): a successor listening as the same node gets what follows, the closed one nothing', async () => {
      const from = await sender();
      const old = await node('node-a');
      await from.send('node-a', 'before close');
      await arrived(old.received, 1, 'the first listener of node-a');

      old.transport.close();
      const successor = await node('node-a');
      await from.send('node-a', 'after close 1');
      await from.send('node-a', 'after close 2');

      await arrived(successor.received, 2, 'the successor of node-a');
      expect(successor.received).toEqual(['after close 1', 'after close 2']);
      expect(old.received).toEqual(['before close']);
    });
  });
}
