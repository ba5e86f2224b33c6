import { afterEach } from 'vitest';
import { startNode, type TestNode } from './node.js';

export interface TestNodes {
  /** Steps run after each test, last registered first: streams and clients before the node they use. */
  readonly cleanups: (() => unknown)[];
  /** Starts a node (startNode's env overrides) that is stopped after the test. */
  start(env?: Record<string, string>): Promise<TestNode>;
}

/** For a test file whose tests each start their own nodes: registers the afterEach that cleans up. */
export function testNodes(): TestNodes {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    cleanups,
    async start(env = {}) {
      const node = await startNode(env);
      cleanups.push(() => node.stop());
      return node;
    },
  };
}
