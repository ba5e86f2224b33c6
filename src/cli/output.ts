import Table from 'cli-table3';
import { deliveryStatusToJSON, type SessionDelivery } from '../gen/pushgate/v1/push_service.js';
import type { Session } from '../gen/pushgate/v1/session.js';

/** A plain table: no colours, so piped output and tests see text only. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const t = new Table({ head: [...head], style: { head: [], border: [] } });
  t.push(...rows.map((row) => [...row]));
  return `${t.toString()}\n`;
}

/** Cuts a cell so one long value (an ack payload, a user agent) cannot make a table unreadable. */
export function cell(text: string, max = 60): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function isoTime(date: Date | undefined): string {
  return date === undefined ? '' : date.toISOString();
}

export function latency(latencyUs: number): string {
  return latencyUs > 0 ? `${(latencyUs / 1000).toFixed(1)} ms` : '';
}

/** `DELIVERY_STATUS_ACKED` → `ACKED`: the enum's prefix says nothing in a column headed "status". */
export function shortEnum(name: string, prefix: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * A session in --json output: every field, the proto's JSON names, times as RFC 3339. Unlike the
 * proto's own toJSON, empty values stay, so a script reads the same shape every time.
 */
export function sessionJson(session: Session | undefined): Record<string, string> | undefined {
  if (session === undefined) return undefined;
  return {
    sessionId: session.sessionId,
    userId: session.userId,
    clientType: session.clientType,
    nodeId: session.nodeId,
    connectedAt: isoTime(session.connectedAt),
    lastSeenAt: isoTime(session.lastSeenAt),
    remoteAddress: session.remoteAddress,
    userAgent: session.userAgent,
  };
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The table columns of one session's push result (after any leading columns of the caller). */
export const DELIVERY_COLUMNS = ['session', 'client type', 'node', 'status', 'latency', 'ack data / error'] as const;

export function deliveryRow(d: SessionDelivery): string[] {
  return [
    d.session?.sessionId ?? '',
    d.session?.clientType ?? '',
    d.session?.nodeId ?? '',
    shortEnum(deliveryStatusToJSON(d.status), 'DELIVERY_STATUS_'),
    latency(d.latencyUs),
    cell(d.error !== '' ? d.error : d.ackData === undefined ? '' : JSON.stringify(d.ackData)),
  ];
}

/** One session's push result for --json: every field, the status by its proto name. */
export function deliveryJson(d: SessionDelivery): unknown {
  return {
    session: sessionJson(d.session),
    status: deliveryStatusToJSON(d.status),
    latencyUs: d.latencyUs,
    ...(d.ackData !== undefined && { ackData: d.ackData }),
    error: d.error,
  };
}
