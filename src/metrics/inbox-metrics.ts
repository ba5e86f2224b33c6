import { Counter, type Registry } from 'prom-client';
import type { InboxObserver } from '../domain/inbox-service.js';

/**
 * The offline inbox's counters: what was kept, dropped, replayed and expired, and what failed
 * (also handed to `onFailure`, for the log).
 */
export function inboxMetrics(registry: Registry, onFailure: (operation: string, err: unknown) => void): InboxObserver {
  const registers = [registry];
  const stored = new Counter({ name: 'pushgate_inbox_stored_total', help: 'Pushes kept in an offline inbox.', registers });
  const dropped = new Counter({
    name: 'pushgate_inbox_dropped_total',
    help: 'Stored messages dropped unacked to make room in a full inbox (PUSHGATE_INBOX_FULL_POLICY drop_oldest).',
    registers,
  });
  const replayed = new Counter({
    name: 'pushgate_inbox_replayed_total',
    help: 'Stored messages sent to sessions as they connected.',
    registers,
  });
  const expired = new Counter({
    name: 'pushgate_inbox_expired_total',
    help: 'Stored messages that reached their TTL unacked and left the inbox.',
    registers,
  });
  const failures = new Counter({
    name: 'pushgate_inbox_failures_total',
    help: 'Inbox operations off the call path that failed (ack of a replayed message, expiry sweep), by operation; retried later.',
    labelNames: ['operation'],
    registers,
  });
  for (const operation of ['ack', 'expire']) failures.labels(operation).inc(0);
  return {
    stored: (count) => stored.inc(count),
    dropped: (messages) => dropped.inc(messages.length),
    replayed: (count) => replayed.inc(count),
    expired: (messages) => expired.inc(messages.length),
    failed: (operation, err) => {
      failures.labels(operation === 'ack' ? 'ack' : 'expire').inc();
      onFailure(operation, err);
    },
  };
}
