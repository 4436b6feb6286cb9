/**
 * /metrics with DNS workers: the control process's own registry (health checks, reloads, region
 * gauges, process metrics) plus the workers' registries (the DNS counters), summed with prom-client's
 * AggregatorRegistry. The control process answers no DNS, so its DNS counters stay at zero and
 * nothing is counted twice. Counters of workers that died are kept (as last reported), so a summed
 * counter never goes down when a worker is replaced. A zone removed from the set, or a service or
 * region removed from a zone, takes its series out of all of these (withoutSeries, SeriesRemovals):
 * what live workers reported, what dead ones left.
 */
import { AggregatorRegistry } from 'prom-client'
import { removalKey, RemovedSeries, type Removal, type SeriesLabels } from '../metrics/index.js'

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

/** `json` without the series that fall under `removed` (the others as they are). */
export function withoutSeries(json: MetricsJson, removed: RemovedSeries): MetricsJson {
  if (removed.size === 0) return json
  const gone = (v: unknown) => {
    const labels = (v as { labels?: SeriesLabels }).labels
    return labels !== undefined && removed.has(labels)
  }
  return json.map((m) => (m.values.some(gone) ? { ...m, values: m.values.filter((v) => !gone(v)) } : m))
}

/**
 * Zones, services and regions removed from the set the workers were sent, each with the sequence
 * number of the 'zones' message that removed it. A worker forgets their series when it applies
 * that message (Metrics.forgetSeries), and tags each report with the sequence number of the set it
 * had then: a report made before (a worker that has not seen the removal yet) still holds the old
 * series, which staleIn() names so they are stripped, also when the name is back by then (its
 * counts start again from the worker's new tallies, in reports made since). A removal is kept
 * until every worker has reported from a set at least as new (prune()).
 */
export class SeriesRemovals {
  private readonly at = new Map<string, { removal: Removal; seq: number }>()

  removed(removals: Iterable<Removal>, seq: number): void {
    for (const removal of removals) this.at.set(removalKey(removal), { removal, seq })
  }

  /** What a report made under set `seq` must not show. */
  staleIn(seq: number): RemovedSeries {
    const stale = new RemovedSeries()
    for (const { removal, seq: at } of this.at.values()) if (seq < at) stale.add(removal)
    return stale
  }

  /** Forgets the removals older than `oldest`: no report made before them can still come. */
  prune(oldest: number): void {
    for (const [key, { seq }] of this.at) if (seq <= oldest) this.at.delete(key)
  }

  get size(): number {
    return this.at.size
  }
}
