/**
 * Metrics from user code, as Ray's `ray.serve.metrics` (Counter, Gauge, Histogram): prom-client
 * metrics in a per-process registry that the replica reports with its own serve metrics, so they
 * appear on the head's `/metrics` next to `ray_serve_*`. Each sample gets the replica's
 * `deployment`, `replica` and `application` labels unless it sets them itself.
 *
 *   const hits = metrics.counter({ name: 'my_cache_hits_total', help: 'Cache hits', labelNames: ['kind'] });
 *   hits.inc({ kind: 'lru' });
 *
 * Creating a metric whose name exists returns the existing one, so constructors may run per replica
 * instance. The registry lives on `globalThis`: user code loaded through another module instance of
 * Rayline (a compiled copy, a loader) still reports into the same one.
 */
import {
  Counter,
  type CounterConfiguration,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';

const KEY = Symbol.for('rayline.serve.metrics.registry');

function registry(): Registry {
  const holder = globalThis as { [KEY]?: Registry };
  holder[KEY] ??= new Registry();
  return holder[KEY];
}

type Config<C> = Omit<C, 'registers'>;

function getOrCreate<M>(name: string, create: () => M): M {
  return (registry().getSingleMetric(name) as M | undefined) ?? create();
}

export const metrics = {
  /** The registry user metrics go to (for metric types other than the three below). */
  registry,
  counter<T extends string>(config: Config<CounterConfiguration<T>>): Counter<T> {
    return getOrCreate(config.name, () => new Counter({ ...config, registers: [registry()] }));
  },
  gauge<T extends string>(config: Config<GaugeConfiguration<T>>): Gauge<T> {
    return getOrCreate(config.name, () => new Gauge({ ...config, registers: [registry()] }));
  },
  histogram<T extends string>(config: Config<HistogramConfiguration<T>>): Histogram<T> {
    return getOrCreate(config.name, () => new Histogram({ ...config, registers: [registry()] }));
  },
};

/** The user metrics as prom-client JSON, labelled with the replica's identity (used by the replica). */
export function userMetricsJSON(
  labels: Record<string, string> = {},
): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
  const r = registry();
  r.setDefaultLabels(labels);
  return r.getMetricsAsJSON();
}
