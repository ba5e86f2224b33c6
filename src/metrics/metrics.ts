import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { PushRequest, PushResult } from '../domain/push.js';
import type { PushObserver } from '../domain/push-service.js';
import { ERROR_CODES } from '../errors.js';
import {
  ACK_BUCKETS,
  CALL_BUCKETS,
  DELIVERY_STATUSES,
  DISCONNECT_REASONS,
  GRPC_METHODS,
  GRPC_STATUS_NAMES,
  outcomeOf,
  PUSH_OUTCOMES,
  streamEndReason,
} from './labels.js';
import { type CounterSeries, type HistogramSeries, PlainCounter, PlainHistogram } from './plain-metrics.js';

/** What the gauges read at scrape time: nothing on the hot path keeps them up to date. */
export interface MetricSources {
  /** The client types a session may have (PUSHGATE_CLIENT_TYPES): each gets a sessions line, 0 included. */
  readonly clientTypes: readonly string[];
  /** This node's live sessions (LocalSessions.all()), counted by client type at each scrape. */
  readonly sessions: () => Iterable<{ readonly record: { readonly clientType: string } }>;
  /** Open WatchPresence streams on this node. */
  readonly watches: () => number;
  /** Cluster mode only: whether the node holds its lease (and reaches Redis). Undefined on a single node: no lease gauge. */
  readonly leaseHeld: (() => boolean) | undefined;
}

type Children<K extends string, C> = Readonly<Record<K, C>>;

/**
 * This node's Prometheus metrics, in a registry of its own (tests run several nodes in one
 * process). The transports record through small observer objects (`push`, `edge`, `grpc`, `bus`,
 * `redis`) matching the interfaces each room declares for itself, so no room but this one and the
 * composition root knows prom-client. Every label value comes from a fixed list (unknown values
 * become `other`) and each label child used per push is bound once, here, not looked up per call.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly push: PushObserver;
  readonly edge: {
    connected(clientType: string): void;
    disconnected(reason: string): void;
    refused(code: string): void;
  };
  readonly grpc: { finished(method: string, code: number, seconds: number, errorCode: string | undefined): void };
  readonly bus: { requested(type: string, outcome: 'ok' | 'timeout' | 'error', seconds: number): void };
  readonly redis: { command(operation: string, seconds: number, failed: boolean): void; connectionError(): void };

  constructor(sources: MetricSources) {
    const registers = [this.registry];

    new Gauge({
      name: 'pushgate_sessions',
      help: "This node's live client sessions, by client type.",
      labelNames: ['client_type'],
      registers,
      collect() {
        this.reset();
        for (const clientType of sources.clientTypes) this.set({ client_type: clientType }, 0);
        for (const { record } of sources.sessions()) this.inc({ client_type: record.clientType });
      },
    });
    new Gauge({
      name: 'pushgate_presence_subscribers',
      help: 'Open WatchPresence streams on this node.',
      registers,
      collect() {
        this.set(sources.watches());
      },
    });
    const leaseHeld = sources.leaseHeld;
    if (leaseHeld !== undefined) {
      new Gauge({
        name: 'pushgate_lease_held',
        help: 'Cluster mode: 1 while this node holds its lease and reaches Redis, else 0. Absent on a single node.',
        registers,
        collect() {
          this.set(leaseHeld() ? 1 : 0);
        },
      });
    }

    // Pushes, deliveries and ack latency: derived from each PushResult, off the delivery path, in
    // plain series (plain-metrics.ts): these are recorded several times per push.
    const pushes = new PlainCounter({
      name: 'pushgate_pushes_total',
      help: 'PushToUser calls taken by this node, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    const deliveries = new PlainCounter({
      name: 'pushgate_deliveries_total',
      help: 'Per-session outcomes of the pushes this node took, by status.',
      labelNames: ['status'],
      registers,
    });
    const ackLatency = new PlainHistogram({
      name: 'pushgate_ack_latency_seconds',
      help: 'Emit to client ack, per acked delivery.',
      buckets: ACK_BUCKETS,
      registers,
    }).series();
    const byOutcome = bindSeries(pushes, PUSH_OUTCOMES);
    const byStatus = bindSeries(deliveries, DELIVERY_STATUSES);
    this.push = {
      pushed(request: PushRequest, result: PushResult): void {
        const n = result.deliveries.length;
        byOutcome[outcomeOf(request, result)].inc();
        if (n === 0) return;
        if (result.acked === n) byStatus.acked.inc(n);
        else {
          for (const delivery of result.deliveries) byStatus[delivery.status].inc();
        }
        if (result.acked === 0) return;
        for (const delivery of result.deliveries) if (delivery.status === 'acked') ackLatency.observe(delivery.latencyUs / 1e6);
      },
      pushFailed(): void {
        byOutcome.error.inc();
      },
    };

    // The Socket.IO edge.
    const connects = new Counter({
      name: 'pushgate_connects_total',
      help: 'Sessions that connected to this node, by client type.',
      labelNames: ['client_type'],
      registers,
    });
    const disconnects = new Counter({
      name: 'pushgate_disconnects_total',
      help: 'Sessions of this node that ended, by presence reason.',
      labelNames: ['reason'],
      registers,
    });
    const refusals = new Counter({
      name: 'pushgate_handshake_refusals_total',
      help: 'Client connections refused at the handshake (or engine.io admission), by error code.',
      labelNames: ['code'],
      registers,
    });
    const byClientType = bind(connects, sources.clientTypes);
    const byReason = bind(disconnects, DISCONNECT_REASONS);
    const byCode = bind(refusals, Object.keys(ERROR_CODES));
    this.edge = {
      connected: (clientType) => (byClientType[clientType] ?? connects.labels('other')).inc(),
      disconnected: (reason) => (byReason[reason as (typeof DISCONNECT_REASONS)[number]] ?? disconnects.labels('other')).inc(),
      refused: (code) => (byCode[code] ?? refusals.labels('other')).inc(),
    };

    // The gRPC API, and the presence streams it serves.
    const calls = new PlainCounter({
      name: 'pushgate_grpc_calls_total',
      help: 'gRPC calls finished by this node, by method and status (refusals by the auth gate included).',
      labelNames: ['method', 'code'],
      registers,
    });
    const callDuration = new PlainHistogram({
      name: 'pushgate_grpc_call_duration_seconds',
      help: 'gRPC call duration, start to status, by method (streams included: their whole life).',
      labelNames: ['method'],
      buckets: CALL_BUCKETS,
      registers,
    });
    const streamsEnded = new Counter({
      name: 'pushgate_presence_streams_ended_total',
      help: 'WatchPresence streams that ended, by reason (shutdown, cancelled, overflow, cursor_expired, refused, …).',
      labelNames: ['reason'],
      registers,
    });
    const methods = new Set(GRPC_METHODS);
    // Per method: its duration series, and its calls series by status code, made on first use.
    const byMethod = new Map<string, { duration: HistogramSeries; byCode: CounterSeries[] }>();
    for (const method of [...GRPC_METHODS, 'other']) byMethod.set(method, { duration: callDuration.series(method), byCode: [] });
    this.grpc = {
      finished(method, code, seconds, errorCode) {
        const name = methods.has(method) ? method : 'other';
        const series = byMethod.get(name)!;
        const codeName = GRPC_STATUS_NAMES[code] ?? 'other';
        let count = series.byCode[code];
        if (count === undefined) {
          count = calls.series(name, codeName);
          series.byCode[code] = count;
        }
        count.inc();
        series.duration.observe(seconds);
        if (name === 'WatchPresence') streamsEnded.labels(streamEndReason(codeName, errorCode)).inc();
      },
    };

    // Cluster mode: the node bus and Redis.
    const busRequests = new Counter({
      name: 'pushgate_bus_requests_total',
      help: 'Requests this node sent to other nodes over the bus, by type and outcome.',
      labelNames: ['type', 'outcome'],
      registers,
    });
    const busDuration = new PlainHistogram({
      name: 'pushgate_bus_request_duration_seconds',
      help: 'Request to reply (or failure) over the node bus, by type.',
      labelNames: ['type'],
      buckets: CALL_BUCKETS,
      registers,
    });
    this.bus = {
      requested(type, outcome, seconds) {
        const label = type === 'push' || type === 'disconnect' ? type : 'other';
        busRequests.labels(label, outcome).inc();
        busDuration.series(label).observe(seconds);
      },
    };
    const redisDuration = new PlainHistogram({
      name: 'pushgate_redis_command_duration_seconds',
      help: "Redis calls (registry and lease scripts, and the registry's plain lookups), by operation.",
      labelNames: ['operation'],
      buckets: CALL_BUCKETS,
      registers,
    });
    const redisErrors = new Counter({
      name: 'pushgate_redis_errors_total',
      help: 'Failed Redis calls by operation, and connection errors (operation "connection").',
      labelNames: ['operation'],
      registers,
    });
    this.redis = {
      // Operations are script names from the code's own tables: a bounded set (one series each).
      command(operation, seconds, failed) {
        redisDuration.series(operation).observe(seconds);
        if (failed) redisErrors.labels(operation).inc();
      },
      connectionError() {
        redisErrors.labels('connection').inc();
      },
    };
  }

  /** The text exposition format, for `/metrics`: this node's metrics and the process's. */
  render(): Promise<string> {
    return Registry.merge([this.registry, processRegistry()]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

let processMetrics: Registry | undefined;

/**
 * prom-client's default metrics (CPU, memory, GC, event-loop lag) describe the process, not a
 * node, and start an event-loop monitor and a GC observer that cannot be stopped: so they are
 * collected once per process, whatever number of Apps it runs (tests run many), and merged into
 * each node's exposition.
 */
function processRegistry(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

/**
 * One child per label value, created once: recording is then a property read and an add. Each
 * starts at 0, so a rate over it exists before its first event.
 */
function bind<K extends string>(
  counter: Counter<string>,
  values: readonly K[],
): Children<K, CounterChild> & Partial<Record<string, CounterChild>> {
  const children: Record<string, CounterChild> = {};
  for (const value of values) {
    const child = counter.labels(value);
    child.inc(0);
    children[value] = child;
  }
  return children as Children<K, CounterChild>;
}

type CounterChild = ReturnType<Counter<string>['labels']>;

/** One series per label value, bound once, each exported from 0 so a rate over it exists before its first event. */
function bindSeries<K extends string>(counter: PlainCounter, values: readonly K[]): Children<K, CounterSeries> {
  const series: Record<string, CounterSeries> = {};
  for (const value of values) series[value] = counter.series(value);
  return series as Children<K, CounterSeries>;
}
