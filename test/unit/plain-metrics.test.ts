import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainCounter, PlainHistogram } from '../../src/metrics/plain-metrics.js';

/** The exposition of one registry, with the metric's name made neutral so two registries compare line by line. */
async function exposition(registry: Registry, name: string): Promise<string> {
  return (await registry.metrics()).replaceAll(name, 'm');
}

describe('plain metrics', () => {
  it('expose a histogram exactly as prom-client does for the same observations, labelled or not', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const buckets = [0.001, 0.01, 0.1, 1];
    const reference = new Histogram({ name: 'ref_seconds', help: 'h', labelNames: ['method'], buckets, registers: [theirs] });
    const plain = new PlainHistogram({ name: 'plain_seconds', help: 'h', labelNames: ['method'], buckets, registers: [ours] });
    const values = [0, 0.001, 0.0010001, 0.05, 0.1, 2, 7.5, 0.0004];
    for (const [i, value] of values.entries()) {
      const method = i % 2 === 0 ? 'PushToUser' : 'ListSessions';
      reference.labels(method).observe(value);
      plain.series(method).observe(value);
    }
    expect(await exposition(ours, 'plain_seconds')).toBe(await exposition(theirs, 'ref_seconds'));
    expect(await ours.getMetricsAsJSON()).toHaveLength(1);
  });

  it('expose counters as prom-client does, zero-valued series included, and reset them', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Counter({ name: 'ref_total', help: 'h', labelNames: ['method', 'code'], registers: [theirs] });
    const plain = new PlainCounter({ name: 'plain_total', help: 'h', labelNames: ['method', 'code'], registers: [ours] });
    reference.labels('PushToUser', 'OK').inc(3);
    reference.labels('PushToUser', 'CANCELLED').inc(0);
    plain.series('PushToUser', 'OK').inc();
    plain.series('PushToUser', 'OK').inc(2);
    plain.series('PushToUser', 'CANCELLED');
    expect(await exposition(ours, 'plain_total')).toBe(await exposition(theirs, 'ref_total'));

    ours.resetMetrics();
    expect(await ours.metrics()).toContain('plain_total{method="PushToUser",code="OK"} 0');
    expect(() => plain.series('PushToUser')).toThrow(/2 label value/);
  });
});
