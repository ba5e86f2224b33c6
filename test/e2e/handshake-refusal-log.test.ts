import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startNode, type TestNode } from '../support/node.js';
import { connectError } from '../support/socket-client.js';
import { signToken } from '../support/tokens.js';

/** Refused socket handshakes are audit lines, but a flood of bad tokens must not flood the log. */

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
});

it('logs refused handshakes with code and address, at most 10 lines a second, counting the rest, never a token', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  node = await startNode({}, createLogger('info', sink));
  const forged = await signToken('mallory', { secret: 'a-different-secret-of-at-least-32-characters!!' });

  const refusals = await Promise.all(Array.from({ length: 60 }, () => connectError(node!.httpUrl, { token: forged, clientType: 'web' })));
  expect(new Set(refusals.map((r) => r.code))).toEqual(new Set(['token_signature_invalid']));
  // Past the one-second window, the next refusal carries the count of those left out.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await connectError(node.httpUrl, { clientType: 'web' });

  const logged = lines.filter((line) => line.msg === 'socket handshake refused');
  expect(logged.length).toBeLessThanOrEqual(21);
  expect(logged.length + logged.reduce((sum, line) => sum + Number(line.suppressed ?? 0), 0)).toBe(61);
  expect(logged[0]).toMatchObject({ level: 30, code: 'token_signature_invalid', address: expect.stringContaining('127.0.0.1') });
  expect(logged.at(-1)).toMatchObject({ code: 'token_missing' });
  expect(JSON.stringify(lines)).not.toContain(forged);
});
