import { expect, it } from 'vitest';
import { clusterTestHooks, startCluster } from '../support/cluster.js';
import type { TestNode } from '../support/node.js';
import { DISCONNECTED, presenceStreams, summary } from '../support/presence-watch.js';
import { connectError } from '../support/socket-client.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

/**
 * The per-user session cap counts the user's sessions on every node (one registry lookup per
 * handshake), and evict_oldest closes the oldest session wherever it is held.
 */

const { cleanups, redis } = clusterTestHooks();
const { watchLive } = presenceStreams(cleanups);

async function cluster(env: Record<string, string>): Promise<TestNode[]> {
  const started = await startCluster(redis().url, 2, env);
  cleanups.push(() => started.stop());
  return started.nodes;
}

async function listed(node: TestNode, userId: string): Promise<string[]> {
  return (await node.client.listSessions({ userId })).sessions.map((s) => s.sessionId);
}

it('refuses a session over the cap counting the sessions other nodes hold', async () => {
  const [a, b] = await cluster({ PUSHGATE_MAX_SESSIONS_PER_USER: '2' });
  await a!.connect('roamer', 'app');
  await b!.connect('roamer', 'app');
  await waitFor('both sessions in the registry', async () => (await listed(a!, 'roamer')).length === 2);
  expect((await connectError(a!.httpUrl, { token: await signToken('roamer'), clientType: 'web' })).code).toBe('too_many_sessions');
  expect((await connectError(b!.httpUrl, { token: await signToken('roamer'), clientType: 'web' })).code).toBe('too_many_sessions');
});

it('evicts the oldest session from the node that holds it (evict_oldest)', async () => {
  const [a, b] = await cluster({ PUSHGATE_MAX_SESSIONS_PER_USER: '2', PUSHGATE_SESSION_LIMIT_POLICY: 'evict_oldest' });
  const oldest = await a!.connect('roamer', 'app');
  const notices: unknown[] = [];
  oldest.on('pushgate:disconnect', (notice: unknown) => notices.push(notice));
  const oldestId = oldest.id!;
  await b!.connect('roamer', 'app');
  await waitFor('both sessions in the registry', async () => (await listed(b!, 'roamer')).length === 2);
  const watcher = await watchLive(b!, { userIds: ['roamer'] });
  const newest = await b!.connect('roamer', 'web');
  await waitFor('the oldest session, on the other node, to be closed', () => !oldest.connected);
  expect(notices).toEqual([{ reason: 'too_many_sessions' }]);
  // Presence says why, although another node closed it.
  await waitFor('its departure on the presence stream', () => watcher.events.some((e) => e.kind === DISCONNECTED));
  expect(summary(watcher.events).filter(([kind]) => kind === DISCONNECTED)).toEqual([
    [DISCONNECTED, 'roamer', oldestId, 'too_many_sessions', 2],
  ]);
  await waitFor('the registry to hold the two newest', async () => {
    const ids = await listed(a!, 'roamer');
    return ids.length === 2 && !ids.includes(oldestId) && ids.includes(newest.id!);
  });
});
