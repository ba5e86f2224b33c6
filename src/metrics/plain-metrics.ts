import type { Registry } from 'prom-client';

/**
 * Counters and histograms for what is recorded on every push, kept in plain numbers. prom-client
 * hashes the label values of every `inc` and `observe` (~0.5–1 µs each, seven per push: a few
 * per cent of a push's CPU in the server's profile); here a series is bound once to its label
 * values and recording is an add. They register in a prom-client Registry like its own metrics and
 * give the same exposition (the Registry reads them through `get`), so `/metrics`, Registry.merge
 * and getMetricsAsJSON see no difference.
 */
interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

interface PlainMetricOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  readonly registers: readonly Registry[];
}

abstract class PlainMetric<S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  private readonly labelNames: readonly string[];
  private readonly bound = new Map<string, { readonly labels: Record<string, string>; readonly series: S }>();

  constructor(options: PlainMetricOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    // The Registry's type wants prom-client's own classes; it only calls name, get and reset.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for these label values (in `labelNames` order), made on first use: keep it, it is what records. */
  series(...values: string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name} takes ${this.labelNames.length} label value(s), got ${values.length}`);
    }
    const key = values.join('\u0000');
    let entry = this.bound.get(key);
    if (entry === undefined) {
      const labels = Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]!]));
      entry = { labels, series: this.newSeries() };
      this.bound.set(key, entry);
    }
    return entry.series;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const { labels, series } of this.bound.values()) this.export(labels, series, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const { series } of this.bound.values()) this.clear(series);
  }

  protected abstract newSeries(): S;
  protected abstract export(labels: Record<string, string>, series: S, into: MetricValue[]): void;
  protected abstract clear(series: S): void;
}

export class CounterSeries {
  value = 0;

  inc(by = 1): void {
    this.value += by;
  }
}

export class PlainCounter extends PlainMetric<CounterSeries> {
  readonly type = 'counter';

  protected newSeries(): CounterSeries {
    return new CounterSeries();
  }

  protected export(labels: Record<string, string>, series: CounterSeries, into: MetricValue[]): void {
    into.push({ labels, value: series.value });
  }

  protected clear(series: CounterSeries): void {
    series.value = 0;
  }
}

export class HistogramSeries {
  /** Per bucket, not cumulative (the exposition adds them up); the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class PlainHistogram extends PlainMetric<HistogramSeries> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  constructor(options: PlainMetricOptions & { readonly buckets: readonly number[] }) {
    super(options);
    this.bounds = [...options.buckets].sort((a, b) => a - b);
  }

  protected newSeries(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }

  protected export(labels: Record<string, string>, series: HistogramSeries, into: MetricValue[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    for (const [i, bound] of this.bounds.entries()) {
      cumulative += series.counts[i]!;
      into.push({ labels: { le: bound, ...labels }, value: cumulative, metricName: bucket });
    }
    into.push({ labels: { le: '+Inf', ...labels }, value: series.count, metricName: bucket });
    into.push({ labels, value: series.sum, metricName: `${this.name}_sum` });
    into.push({ labels, value: series.count, metricName: `${this.name}_count` });
  }

  protected clear(series: HistogramSeries): void {
    series.counts.fill(0);
    series.sum = 0;
    series.count = 0;
  }
}
