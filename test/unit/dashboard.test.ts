import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { keyOperatorAuth } from '../../src/http/dashboard-auth.js';
import { ACK_LATENCY_METRIC, MetricsSampler, PUSHES_METRIC, percentiles, RegistryCensus } from '../../src/http/dashboard-stats.js';
import { MemorySessionRegistry } from '../../src/registry/memory-registry.js';
import { sessionRecord } from '../support/session-record.js';

/** The dashboard's pieces that need no server: who may use it, the census and its cap, the rates. */

const noKeys = { configured: false, verify: () => undefined };
const keys = {
  configured: true,
  verify: (key: string) =>
    key === 'admin-secret'
      ? { name: 'ops', scopes: new Set(['admin']) }
      : key === 'push-secret'
        ? { name: 'be', scopes: new Set(['push', 'read']) }
        : undefined,
};

describe('keyOperatorAuth', () => {
  it('with no keys, answers loopback callers only, unless the API was opened to all', () => {
    const auth = keyOperatorAuth(noKeys, { allowUnauthenticated: false, tlsClientCa: undefined });
    for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.8.9.10'])
      expect(auth.check(undefined, address)).toEqual({ caller: '' });
    for (const address of ['10.0.0.7', '::ffff:192.168.1.2', '2001:db8::1', undefined]) {
      const verdict = auth.check(undefined, address);
      expect('refusal' in verdict && verdict.refusal.code).toBe('permission_denied');
    }
    expect(keyOperatorAuth(noKeys, { allowUnauthenticated: true, tlsClientCa: undefined }).check(undefined, '10.0.0.7')).toEqual({
      caller: '',
    });
  });

  it('with client certificates only, refuses everyone: a browser call cannot present one', () => {
    const verdict = keyOperatorAuth(noKeys, { allowUnauthenticated: false, tlsClientCa: 'ca.pem' }).check(undefined, '127.0.0.1');
    expect('refusal' in verdict && [verdict.refusal.code, verdict.refusal.message]).toEqual([
      'unauthenticated',
      expect.stringContaining('PUSHGATE_API_KEYS'),
    ]);
  });

  it('with keys, wants a Bearer admin key from anywhere', () => {
    const auth = keyOperatorAuth(keys, { allowUnauthenticated: true, tlsClientCa: undefined });
    const code = (header: string | undefined): string | undefined => {
      const verdict = auth.check(header, '127.0.0.1');
      return 'refusal' in verdict ? verdict.refusal.code : undefined;
    };
    expect(code(undefined)).toBe('unauthenticated');
    expect(code('admin-secret')).toBe('unauthenticated');
    expect(code('Basic admin-secret')).toBe('unauthenticated');
    expect(code('Bearer wrong')).toBe('unauthenticated');
    expect(code('Bearer push-secret')).toBe('permission_denied');
    expect(auth.check('bearer  admin-secret', '10.1.2.3')).toEqual({ caller: 'ops' });
  });
});

describe('RegistryCensus', () => {
  it('counts sessions per node and client type and users online, across pages', async () => {
    const registry = new MemorySessionRegistry();
    // 1,500 sessions of 600 users: users span the page boundary at 1,000.
    for (let i = 0; i < 1500; i++) {
      await registry.register(
        sessionRecord(`u${i % 600}`, `s${i}`, { nodeId: i % 3 === 0 ? 'node-a' : 'node-b', clientType: i % 2 === 0 ? 'app' : 'web' }),
      );
    }
    const census = await new RegistryCensus(registry, { maxPages: 5, maxAgeMs: 0 }).current();
    expect(census).toMatchObject({ sessions: 1500, usersOnline: 600, capped: false, pagesRead: 2 });
    expect(census.byNode).toEqual({ 'node-a': { app: 250, web: 250 }, 'node-b': { app: 500, web: 500 } });
  });

  it('stops at the page cap and says so; serves a fresh census from memory and shares a read in progress', async () => {
    const registry = new MemorySessionRegistry();
    for (let i = 0; i < 1200; i++) await registry.register(sessionRecord(`u${i}`, `s${i}`));
    let reads = 0;
    const counted = {
      sessionsPage: (...args: Parameters<MemorySessionRegistry['sessionsPage']>) => {
        reads++;
        return registry.sessionsPage(...args);
      },
    };
    let now = 1000;
    const census = new RegistryCensus(counted, { maxPages: 1, maxAgeMs: 3000 }, () => now);
    const [a, b] = await Promise.all([census.current(), census.current()]);
    expect(a).toBe(b);
    expect(a).toMatchObject({ sessions: 1000, usersOnline: 1000, capped: true, pagesRead: 1 });
    expect(reads).toBe(1);
    now += 2999;
    await census.current();
    expect(reads).toBe(1);
    now += 1;
    await census.current();
    expect(reads).toBe(2);
  });
});

describe('ack latency percentiles and push rates', () => {
  it('interpolates inside the bucket the percentile falls in, and reports the last finite bound past it', () => {
    // 100 observations: 50 ≤ 0.01, 40 in (0.01, 0.1], 10 in (0.1, 1].
    const buckets = [
      [0.01, 50],
      [0.1, 90],
      [1, 100],
      [Number.POSITIVE_INFINITY, 100],
    ] as const;
    const p = percentiles(buckets)!;
    expect(p.count).toBe(100);
    expect(p.p50).toBeCloseTo(0.01, 6);
    expect(p.p95).toBeCloseTo(0.1 + 0.9 * 0.5, 6);
    expect(p.p99).toBeCloseTo(0.1 + 0.9 * 0.9, 6);
    expect(
      percentiles([
        [0.5, 0],
        [Number.POSITIVE_INFINITY, 4],
      ])!.p50,
    ).toBe(0.5);
    expect(
      percentiles([
        [0.5, 0],
        [Number.POSITIVE_INFINITY, 0],
      ]),
    ).toBeNull();
  });

  it('reads a prom-client registry: rates over the window, percentiles of the window’s observations only', async () => {
    const registry = new Registry();
    const pushes = new Counter({ name: PUSHES_METRIC, help: 'h', labelNames: ['outcome'], registers: [registry] });
    const latency = new Histogram({ name: ACK_LATENCY_METRIC, help: 'h', buckets: [0.001, 0.01, 0.1, 1], registers: [registry] });
    // Before the window: slow acks that must not count.
    for (let i = 0; i < 100; i++) latency.observe(0.5);
    pushes.inc({ outcome: 'all_acked' }, 100);
    let now = 0;
    const sampler = new MetricsSampler(registry, 10_000, () => now);
    expect(await sampler.rates()).toEqual({ windowMs: 0, pushesPerSecond: {}, ackLatency: null });

    now = 500; // under a second: no new sample
    pushes.inc({ outcome: 'all_acked' }, 1);
    expect((await sampler.rates()).windowMs).toBe(0);

    now = 2000;
    pushes.inc({ outcome: 'all_acked' }, 19);
    pushes.inc({ outcome: 'no_sessions' }, 4);
    for (let i = 0; i < 20; i++) latency.observe(0.005);
    const rates = await sampler.rates();
    expect(rates.windowMs).toBe(2000);
    expect(rates.pushesPerSecond).toEqual({ all_acked: 10, no_sessions: 2 });
    expect(rates.ackLatency).toMatchObject({ count: 20 });
    expect(rates.ackLatency!.p99).toBeLessThanOrEqual(0.01);
    expect(rates.ackLatency!.p50).toBeGreaterThan(0.001);
  });
});
