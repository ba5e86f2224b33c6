import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

// What the scenarios read off the machine: a process's CPU and RSS from /proc (so the load
// generator's own CPU is never counted), a redis-server's INFO deltas, and the result files.

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux this runs on (getconf CLK_TCK). */
const TICKS_PER_S = 100;

/** User + system CPU of a process so far, in ms (10 ms resolution: measure many operations). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
}

/** Resident set size of a process, in KB. */
export function rssKb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? Number.NaN);
}

export interface RedisSnapshot {
  readonly calls: Map<string, number>;
  readonly cpuMs: number;
}

/** INFO commandstats calls by command and used_cpu_sys + used_cpu_user of the server, in ms. */
export async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const [stats, cpu] = await Promise.all([redis.info('commandstats'), redis.info('cpu')]);
  const calls = new Map<string, number>();
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? Number.NaN);
  return { calls, cpuMs: (field('used_cpu_sys') + field('used_cpu_user')) * 1000 };
}

/** Commands and CPU between two snapshots, the snapshots' own INFO calls left out. */
export function redisDelta(before: RedisSnapshot, after: RedisSnapshot): { commands: Map<string, number>; total: number; cpuMs: number } {
  const commands = new Map<string, number>();
  let total = 0;
  for (const [name, calls] of after.calls) {
    const delta = calls - (before.calls.get(name) ?? 0) - (name === 'info' ? 2 : 0);
    if (delta > 0) {
      commands.set(name, delta);
      total += delta;
    }
  }
  return { commands, total, cpuMs: after.cpuMs - before.cpuMs };
}

/** "evalsha 1.00, smembers 0.50" — commands per operation (rarer than 1 in 200 operations left out: background work). */
export function perOp(commands: Map<string, number>, ops: number): string {
  return [...commands]
    .filter(([, calls]) => calls / ops >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([name, calls]) => `${name} ${(calls / ops).toFixed(2)}`)
    .join(', ');
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export type Row = Record<string, string | number>;

/** One scenario's outcome: table rows for people, figures for the capacity model, notes. */
export interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  readonly rows: Row[];
  /** Named per-operation figures (µs, KB, commands) the capacity model reads. */
  readonly inputs: Record<string, number>;
  readonly notes: string[];
}

export function markdownTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined): string => (typeof v === 'number' ? format(v) : (v ?? ''));
  return [
    `| ${columns.join(' | ')} |`,
    `|${columns.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${columns.map((c) => cell(r[c])).join(' | ')} |`),
  ].join('\n');
}

function format(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

const RESULTS = fileURLToPath(new URL('../results/', import.meta.url));

/** Writes bench/results/<date>-<scenario>[-quick].json and .md; returns the markdown. */
export function writeResult(result: ScenarioResult, meta: Record<string, unknown>): string {
  mkdirSync(RESULTS, { recursive: true });
  const name = `${new Date().toISOString().slice(0, 10)}-${result.scenario}${meta.quick ? '-quick' : ''}`;
  const inputs = Object.entries(result.inputs).map(([input, value]) => ({ input, value }));
  const md = [
    `## ${result.title}`,
    '',
    markdownTable(result.rows),
    '',
    ...(inputs.length > 0 ? ['Capacity-model inputs:', '', markdownTable(inputs), ''] : []),
    ...result.notes.map((n) => `- ${n}`),
    '',
    `Machine: ${meta.machine}; load while measuring: ${meta.load}.`,
    '',
  ].join('\n');
  writeFileSync(`${RESULTS}${name}.json`, `${JSON.stringify({ ...meta, ...result }, null, 2)}\n`);
  writeFileSync(`${RESULTS}${name}.md`, md);
  return md;
}

/**
 * redis-server's own CPU per ms of wall time with no work sent (its cron at `hz`, client
 * bookkeeping): subtracted from every Redis CPU figure so a per-operation cost is the operation's.
 */
export async function redisIdleCpuPerMs(redis: Redis, ms = 3000): Promise<number> {
  const before = await redisSnapshot(redis);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const after = await redisSnapshot(redis);
  return (after.cpuMs - before.cpuMs) / (performance.now() - started);
}
