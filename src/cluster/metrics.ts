/**
 * /metrics with DNS workers: the control process's own registry (health checks, reloads, region
 * gauges, process metrics) plus the workers' registries (the DNS counters), summed with prom-client's
 * AggregatorRegistry. The control process answers no DNS, so its DNS counters stay at zero and
 * nothing is counted twice. Counters of workers that died are kept (as last reported), so a summed
 * counter never goes down when a worker is replaced.
 */
import { AggregatorRegistry } from 'prom-client'

/** One metric of a registry's `getMetricsAsJSON()` (prom-client types `type` as an enum; it is the type's name). */
interface MetricJson {
  name: string
  help: string
  type: unknown
  aggregator?: string
  values: unknown[]
}
/** A registry's `getMetricsAsJSON()`, as it crosses the IPC channel. */
export type MetricsJson = MetricJson[]

/**
 * Sums `workers` (and `retired`) into `primary`. A metric only the control process has (its process
 * metrics) is reported as it is, whatever aggregator prom-client gives it for a cluster ('omit' for
 * the start time, 'average' for event loop lag): there is one of it.
 */
export async function mergeMetrics(primary: MetricsJson, workers: MetricsJson[]): Promise<string> {
  const fromWorkers = new Set<string>()
  for (const w of workers) for (const m of w) fromWorkers.add(m.name)
  const own = primary.map((m) => (fromWorkers.has(m.name) ? m : { ...m, aggregator: 'first' }))
  return AggregatorRegistry.aggregate([own, ...workers]).metrics()
}

/** The series of a registry that outlive its process in a total: counters and histograms (not gauges). */
export const lasting = (j: MetricsJson): MetricsJson => j.filter((m) => m.type === 'counter' || m.type === 'histogram')

/** The counters and histograms of `a` and `b` summed: what a dead worker leaves to the total. */
export async function foldRetired(a: MetricsJson, b: MetricsJson): Promise<MetricsJson> {
  return (await AggregatorRegistry.aggregate([lasting(a), lasting(b)]).getMetricsAsJSON()) as unknown as MetricsJson
}
