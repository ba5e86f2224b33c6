import type { BenchServer } from '../../bench/lib/fixtures.js';
import { type Internals, internals, sleep } from '../lib/internals.js';
import { listedSessions } from '../lib/registry-view.js';

// What the gone-mid-ack scenario measures on the node: its internals, and when vanished sessions
// leave ListSessions.

/** The node's event-loop delay since the last reset (then resets it): what its lateness owes to load. */
export async function loopDelay(server: BenchServer): Promise<{ p99Ms: number; maxMs: number }> {
  const answer = await server.child.request<{ loopDelay: { p99Ms: number; maxMs: number } }>('internals', { resetDelay: true });
  return answer.loopDelay;
}

/** What differs from the idle baseline, as a sentence part; '' when nothing does. */
export function leftovers(now: Internals, baseline: Internals): string {
  const differs: string[] = [];
  for (const key of ['localSessions', 'pendingWaits', 'presenceSubscribers', 'callsInFlight', 'sockets'] as const)
    if (now[key] !== 0) differs.push(`${key} ${now[key]} (0 expected)`);
  // Timers and handles of the idle node: the same as before any session came.
  for (const key of ['timers', 'handles'] as const)
    if (now[key] > baseline[key]) differs.push(`${key} ${now[key]} (baseline ${baseline[key]})`);
  return differs.join(', ');
}

/**
 * Polls the node until it is back to its idle baseline (or `timeoutMs` passed); answers what it
 * saw last and what still differed then ('' when clean).
 */
export async function backToBaseline(server: BenchServer, baseline: Internals, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await internals(server, { gc: true });
    const differs = leftovers(now, baseline);
    if (differs === '' || Date.now() > deadline) return differs;
    await sleep(100);
  }
}

/**
 * From `faultMs` on, lists the sessions of `users` again and again until none of `gone` is
 * listed (or `timeoutMs` passed): per session, how long after the fault it was first missing.
 * Sessions still listed at the end are answered as `stillListed`. `sweepMs` is the polling's
 * resolution (a full ListSessions sweep of the users).
 */
export async function timeUntilUnlisted(
  server: BenchServer,
  users: readonly string[],
  gone: ReadonlySet<string>,
  faultMs: number,
  timeoutMs: number,
): Promise<{ goneMs: number[]; stillListed: string[]; sweepMs: number }> {
  const waiting = new Set(gone);
  const goneMs: number[] = [];
  let sweeps = 0;
  const started = Date.now();
  while (waiting.size > 0 && Date.now() - faultMs < timeoutMs) {
    const listed = await listedSessions(server.client, users);
    sweeps++;
    const now = Date.now();
    for (const id of waiting)
      if (!listed.has(id)) {
        waiting.delete(id);
        goneMs.push(now - faultMs);
      }
    if (waiting.size > 0) await sleep(10);
  }
  return { goneMs, stillListed: [...waiting], sweepMs: sweeps === 0 ? 0 : (Date.now() - started) / sweeps };
}
