import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A node started with startNode runs in the test process: a full collection before each reading
// makes the numbers what is held, not garbage waiting to be collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export const MiB = 1024 * 1024;

/** Heap plus memory outside it (the Buffers ws and net queue), after a full collection. */
export function heldBytes(): number {
  // Twice: the first collection runs finalizers that free what the second reclaims.
  gc();
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}
