import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { dirname } from 'node:path';

/**
 * `profileStart` / `profileStop` ops for a bench child (see `serve` in children.ts): a CPU profile
 * of that process over a chosen window. Children are SIGKILLed, so `--cpu-prof` would never write one.
 * `allocationsStart` / `allocationsStop`: a sampling heap profile of every allocation in the window,
 * collected or not (what feeds the GC per operation; unlike CPU time, not skewed by a busy machine).
 */
export function profilerOps(): Record<string, (body: Record<string, unknown>) => Promise<Record<string, unknown>>> {
  const profiler = new Session();
  profiler.connect();
  return {
    async profileStart() {
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      return {};
    },
    /** Writes the profile to `body.path` (a .cpuprofile for Chrome DevTools or speedscope). */
    async profileStop(body) {
      const { profile } = await profiler.post('Profiler.stop');
      await mkdir(dirname(String(body.path)), { recursive: true });
      await writeFile(String(body.path), JSON.stringify(profile));
      return {};
    },
    async allocationsStart() {
      await profiler.post('HeapProfiler.enable');
      await profiler.post('HeapProfiler.startSampling', {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      return {};
    },
    /** Writes the profile to `body.path` (a .heapprofile for Chrome DevTools or speedscope). */
    async allocationsStop(body) {
      const { profile } = await profiler.post('HeapProfiler.stopSampling');
      await mkdir(dirname(String(body.path)), { recursive: true });
      await writeFile(String(body.path), JSON.stringify(profile));
      return {};
    },
  };
}
