import { MAX_SESSIONS_PAGE, type PresenceFeed } from '../domain/presence.js';

/**
 * What the dashboard shows beside its forms: a census of the registry (sessions per node and client
 * type, users online) and rates read from the node's Prometheus registry. Both are computed only
 * while a dashboard asks for them, and at most every few seconds however many are open.
 */

/** One metric as prom-client's `Registry.getMetricsAsJSON()` gives it (declared here: http/ imports no packages). */
export interface MetricJson {
  readonly name: string;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Readonly<Record<string, string | number | undefined>>;
    readonly metricName?: string;
  }[];
}

/** The node's metrics registry (prom-client's `Registry` fits); absent when metrics are off. */
export interface MetricsReader {
  getMetricsAsJSON(): Promise<readonly MetricJson[]>;
}

export const PUSHES_METRIC = 'pushgate_pushes_total';
export const ACK_LATENCY_METRIC = 'pushgate_ack_latency_seconds';

export interface Census {
  readonly atMs: number;
  readonly sessions: number;
  /** Users with at least one session; a lower bound when `capped`. */
  readonly usersOnline: number;
  /** node id → client type → sessions. */
  readonly byNode: Record<string, Record<string, number>>;
  /** True when the registry held more than `maxPages` pages: the counts cover only the pages read. */
  readonly capped: boolean;
  readonly pagesRead: number;
}

export interface CensusOptions {
  /** Pages of MAX_SESSIONS_PAGE sessions read per census at most: the cap on its cost. */
  readonly maxPages: number;
  /** A census younger than this is served as it is. */
  readonly maxAgeMs: number;
}

/**
 * Counts the whole registry (every node's sessions, in cluster mode) through the presence feed's
 * snapshot pages, the same reads a WatchPresence snapshot makes. Concurrent callers share one read.
 */
export class RegistryCensus {
  private last: Census | undefined;
  private reading: Promise<Census> | undefined;

  constructor(
    private readonly feed: Pick<PresenceFeed, 'sessionsPage'>,
    private readonly options: CensusOptions,
    private readonly now: () => number = Date.now,
  ) {}

  current(): Promise<Census> {
    if (this.last !== undefined && this.now() - this.last.atMs < this.options.maxAgeMs) return Promise.resolve(this.last);
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<Census> {
    const byNode: Record<string, Record<string, number>> = {};
    let sessions = 0;
    let usersOnline = 0;
    // A user's sessions are consecutive and users keep their order across pages, so counting the
    // changes of user id counts users without holding a set of them.
    let lastUser: string | undefined;
    let token: string | undefined;
    let pagesRead = 0;
    do {
      const page = await this.feed.sessionsPage([], token, MAX_SESSIONS_PAGE);
      pagesRead++;
      for (const session of page.sessions) {
        sessions++;
        if (session.userId !== lastUser) usersOnline++;
        lastUser = session.userId;
        const node = byNode[session.nodeId] ?? {};
        byNode[session.nodeId] = node;
        node[session.clientType] = (node[session.clientType] ?? 0) + 1;
      }
      token = page.next;
    } while (token !== undefined && pagesRead < this.options.maxPages);
    this.last = { atMs: this.now(), sessions, usersOnline, byNode, capped: token !== undefined, pagesRead };
    return this.last;
  }
}

interface Sample {
  readonly atMs: number;
  /** outcome → pushes so far. */
  readonly pushes: ReadonlyMap<string, number>;
  /** Cumulative histogram: upper bounds (seconds, Infinity last) and counts so far. */
  readonly buckets: readonly (readonly [number, number])[];
}

export interface Rates {
  /** Length of the window the rates cover, ms; 0 when fewer than two samples exist yet. */
  readonly windowMs: number;
  /** outcome → pushes per second over the window. */
  readonly pushesPerSecond: Record<string, number>;
  /** Ack latency percentiles (seconds) over the window; null with no acks in it. */
  readonly ackLatency: { readonly p50: number; readonly p95: number; readonly p99: number; readonly count: number } | null;
}

/**
 * Samples the push counter and the ack latency histogram (at most one sample a second, a short
 * ring) and derives the rates over the last `windowMs`: pushes per second by outcome from the
 * counter's increase, and latency percentiles from the increase of each histogram bucket,
 * interpolated linearly inside the bucket the percentile falls in (as Prometheus'
 * histogram_quantile does).
 */
export class MetricsSampler {
  private readonly samples: Sample[] = [];

  constructor(
    private readonly metrics: MetricsReader,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async rates(): Promise<Rates> {
    const atMs = this.now();
    const newest = this.samples.at(-1);
    if (newest === undefined || atMs - newest.atMs >= 1000) {
      this.samples.push(sampleOf(atMs, await this.metrics.getMetricsAsJSON()));
      // Older than two windows is never read again.
      while (this.samples.length > 2 && atMs - this.samples[0]!.atMs > 2 * this.windowMs) this.samples.shift();
    }
    const latest = this.samples.at(-1)!;
    // The oldest sample still in the window, else the newest one before it.
    const base = this.samples.find((s) => latest.atMs - s.atMs <= this.windowMs && s !== latest) ?? this.samples.at(-2);
    if (base === undefined) return { windowMs: 0, pushesPerSecond: {}, ackLatency: null };
    const seconds = (latest.atMs - base.atMs) / 1000;
    const pushesPerSecond: Record<string, number> = {};
    for (const [outcome, count] of latest.pushes) pushesPerSecond[outcome] = Math.max(0, count - (base.pushes.get(outcome) ?? 0)) / seconds;
    const delta = latest.buckets.map(([le, count]) => [le, count - (base.buckets.find(([b]) => b === le)?.[1] ?? 0)] as const);
    return { windowMs: latest.atMs - base.atMs, pushesPerSecond, ackLatency: percentiles(delta) };
  }
}

function sampleOf(atMs: number, metrics: readonly MetricJson[]): Sample {
  const pushes = new Map<string, number>();
  for (const { labels, value } of metrics.find((m) => m.name === PUSHES_METRIC)?.values ?? []) {
    const outcome = String(labels.outcome ?? '');
    pushes.set(outcome, (pushes.get(outcome) ?? 0) + value);
  }
  // Summed over any other labels the histogram may carry.
  const byBound = new Map<number, number>();
  for (const { labels, value, metricName } of metrics.find((m) => m.name === ACK_LATENCY_METRIC)?.values ?? []) {
    if (metricName !== `${ACK_LATENCY_METRIC}_bucket`) continue;
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + value);
  }
  return { atMs, pushes, buckets: [...byBound].sort(([a], [b]) => a - b) };
}

/** p50/p95/p99 of a cumulative histogram; null when it counts nothing. */
export function percentiles(buckets: readonly (readonly [number, number])[]): Rates['ackLatency'] {
  const count = buckets.at(-1)?.[1] ?? 0;
  if (count <= 0) return null;
  return { p50: quantile(buckets, 0.5), p95: quantile(buckets, 0.95), p99: quantile(buckets, 0.99), count };
}

function quantile(buckets: readonly (readonly [number, number])[], q: number): number {
  const target = q * buckets.at(-1)![1];
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of buckets) {
    if (cumulative >= target && cumulative > below) {
      // Past the last finite bound nothing is known but that it is larger: report that bound.
      if (le === Number.POSITIVE_INFINITY) return lower;
      return lower + (le - lower) * ((target - below) / (cumulative - below));
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}
