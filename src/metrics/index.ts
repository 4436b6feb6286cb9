/**
 * metrics/: the Prometheus registry and every metric Meridian exports (a leaf: anyone may import it).
 * Names follow `meridian_<subsystem>_<name>_<unit>`; counters end in `_total` (test/unit/metrics.test.ts).
 *
 *   meridian_dns_queries_total{zone,qtype,rcode}          every answered query (its question's zone; "" when none matched)
 *   meridian_dns_dropped_total                            messages dropped unanswered
 *   meridian_dns_answers_total{zone,service,region}       GSLB answers, by the region answered first
 *   meridian_health_checks_total{target,result}           health check rounds, result ok | fail
 *   meridian_health_check_duration_seconds{target}        check round time (histogram)
 *   meridian_health_state_changes_total{target,state}     transitions, by the state entered
 *   meridian_region_up{zone,region}                       1 while the region has its healthy VIPs
 *   meridian_region_drained{zone,region}                  1 while drained by the operator
 *   meridian_config_reloads_total{result}                 zone set loads, result ok | error
 *   meridian_config_last_reload_successful                0 while the zone files on disk are rejected, else 1
 *   meridian_geodb_reloads_total{result}                  GeoIP database files taken (ok) or refused (error)
 *   meridian_geodb_build_timestamp_seconds                when the GeoIP database answering was built
 *   meridian_dns_cache_hits_total                         queries answered from the answer cache
 *   meridian_dns_cache_misses_total                       hot-path queries the cache did not hold
 *   meridian_dns_cache_nxdomain_total                     NXDOMAIN answered on the hot path (zone name index, SOA template)
 *   meridian_dns_cache_entries                            entries in the answer cache (answers and markers)
 *   meridian_dns_cache_bytes                              octets the answer cache accounts for
 * Query-path counts are tallies (`n++`, one Map lookup on the full path, none on a cache hit) folded
 * into their labelled counter children when /metrics is read.
 *
 * A zone removed from the zone set takes its series with it, and so does a service or a region
 * removed from a zone that stays, and a region a service that stays no longer uses (forgetSeries(),
 * called on each swap with removedSeries()): they go
 * stale in Prometheus, and the zone, service or region added again counts from 0 (a counter reset
 * to rate()). Otherwise a server whose zones and services come and go (one per customer) would
 * keep a series per name it ever had. With DNS workers each worker forgets in the same way, and the
 * control process strips the series from what workers and dead workers left it (cluster/metrics.ts).
 *
 * Process metrics (`meridian_process_*`, `meridian_nodejs_*`): prom-client's defaults under the prefix
 * `meridian_`, except its per-GC histogram (`meridian_nodejs_gc_duration_seconds`) unless asked for
 * (`--gc-metrics`) and its three gauges named `_total` (DROPPED_PROCESS_METRICS): see processMetrics().
 * They were `meridian_process_process_*` and `meridian_process_nodejs_*` before (docs/api.md lists the renames).
 */
import { createRequire } from 'node:module'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ServedZoneSet } from '../model/types.js'

const RCODES: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 9: 'NOTAUTH', 16: 'BADVERS' }
const QTYPES: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 41: 'OPT', 251: 'IXFR', 252: 'AXFR', 255: 'ANY', 257: 'CAA' }

/**
 * The query type a query is counted under: its own when it has a label of its own (QTYPES), else 0
 * (labelled `other`). Tallies are keyed by it, so that queries of random types (65,536 of them, per
 * zone and rcode) all add to one tally rather than each leaving one behind.
 */
export function countedQtype(qtype: number): number {
  return QTYPES[qtype] === undefined ? 0 : qtype
}

export interface RegionSample {
  zone: string
  region: string
  up: boolean
  drained: boolean
}

type Inc = { inc(n?: number): void }

/**
 * A count the query path adds to with `n++` (no call, no label hashing); folded into its Prometheus
 * counter child when /metrics is read.
 */
export interface Tally {
  n: number
}

interface Folded extends Tally {
  readonly into: Inc
  /** The zone (and service, region) the series is labelled with (null: none), and how it is removed from its counter. */
  readonly labels: SeriesLabels | null
  readonly remove: (() => void) | null
}

/** The labels of a series that name what the zone set holds (a series of a zone has `zone`, some also `service`, `region`). */
export interface SeriesLabels {
  readonly zone?: unknown
  readonly service?: unknown
  readonly region?: unknown
}

/**
 * Something gone from the zone set, whose series go with it: a zone (every series labelled with
 * it), a service or a region of a zone that stays (the series labelled with the zone and it), or
 * both: a region that a service of a zone that stays no longer uses (the series labelled with all
 * three), though the zone keeps the region.
 */
export interface Removal {
  readonly zone: string
  readonly service?: string
  readonly region?: string
}

/**
 * What `before` had that `after` no longer has: its zones gone, and in the zones that stay, the
 * services and regions gone, and the regions a service that stays no longer uses (those the zone
 * keeps: a region gone from the zone is one removal for all its services).
 */
export function removedSeries(before: ServedZoneSet, after: ServedZoneSet): Removal[] {
  const removed: Removal[] = []
  for (const [zone, was] of before.zones) {
    const is = after.zones.get(zone)
    if (!is) removed.push({ zone })
    else if (is !== was) {
      for (const [service, svc] of was.services) {
        const now = is.services.get(service)
        if (!now) removed.push({ zone, service })
        else if (now !== svc && !sameList(now.regions, svc.regions)) for (const region of svc.regions) if (!now.regions.includes(region) && is.regions.has(region)) removed.push({ zone, service, region })
      }
      for (const region of was.regions.keys()) if (!is.regions.has(region)) removed.push({ zone, region })
    }
  }
  return removed
}

/** Whether two lists hold the same items in the same order: a service whose regions did not change (nearly every one at a swap) is passed over at once. */
function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** One key per removal (a zone, a zone's service, a zone's region, a zone's service's region). */
export const removalKey = (r: Removal): string =>
  JSON.stringify(
    r.service !== undefined && r.region !== undefined ? [r.zone, 'sr', r.service, r.region] : r.service !== undefined ? [r.zone, 's', r.service] : r.region !== undefined ? [r.zone, 'r', r.region] : [r.zone],
  )

/** A set of removals, and whether a series falls under one of them. */
export class RemovedSeries implements Iterable<Removal> {
  private readonly byKey = new Map<string, Removal>()

  constructor(removals: Iterable<Removal> = []) {
    for (const r of removals) this.add(r)
  }

  add(r: Removal): void {
    this.byKey.set(removalKey(r), r)
  }

  /** Whether the series labelled `labels` goes: its zone removed, or its service or region in it, or that region from that service. */
  has(labels: SeriesLabels): boolean {
    const { zone, service, region } = labels
    if (typeof zone !== 'string') return false
    return (
      this.byKey.has(removalKey({ zone })) ||
      (typeof service === 'string' && this.byKey.has(removalKey({ zone, service }))) ||
      (typeof region === 'string' && this.byKey.has(removalKey({ zone, region }))) ||
      (typeof service === 'string' && typeof region === 'string' && this.byKey.has(removalKey({ zone, service, region })))
    )
  }

  get size(): number {
    return this.byKey.size
  }

  [Symbol.iterator](): Iterator<Removal> {
    return this.byKey.values()
  }
}

export class Metrics {
  readonly registry = new Registry()
  private readonly queries: Counter<'zone' | 'qtype' | 'rcode'>
  private readonly dropped: Counter
  private readonly answers: Counter<'zone' | 'service' | 'region'>
  private readonly checks: Counter<'target' | 'result'>
  private readonly checkSeconds: Histogram<'target'>
  private readonly changes: Counter<'target' | 'state'>
  private readonly reloads: Counter<'result'>
  /** Tallies by label key, folded at scrape time. */
  private readonly tallies = new Map<string, Folded>()
  readonly hitTally: Tally
  readonly missTally: Tally
  readonly nxdomainTally: Tally
  readonly graceTally: Tally
  private cacheSource: () => { entries: number; bytes: number } = () => ({ entries: 0, bytes: 0 })
  private regionSource: () => Iterable<RegionSample> = () => []
  private targetSource: () => Iterable<[string, 'up' | 'down' | 'unknown']> = () => []
  private workerDeaths: Counter | undefined
  private geodbReloads: Counter<'result'> | undefined

  /**
   * processMetrics: prom-client's default process metrics (default true). gcMetrics: with them, its
   * histogram of garbage-collection pauses (default false, see processMetrics()).
   */
  constructor(options: { processMetrics?: boolean; gcMetrics?: boolean } = {}) {
    const registers = [this.registry]
    const fold = () => this.fold()
    if (options.processMetrics ?? true) processMetrics(this.registry, options.gcMetrics ?? false)
    this.queries = new Counter({ name: 'meridian_dns_queries_total', help: 'DNS queries answered, by zone, query type and rcode', labelNames: ['zone', 'qtype', 'rcode'], registers, collect: fold })
    this.dropped = new Counter({ name: 'meridian_dns_dropped_total', help: 'DNS messages dropped unanswered (no readable header, or a response)', registers })
    this.answers = new Counter({ name: 'meridian_dns_answers_total', help: 'GSLB answers, by the region answered first', labelNames: ['zone', 'service', 'region'], registers, collect: fold })
    this.checks = new Counter({ name: 'meridian_health_checks_total', help: 'Health check rounds, by target and result', labelNames: ['target', 'result'], registers })
    this.checkSeconds = new Histogram({ name: 'meridian_health_check_duration_seconds', help: 'Health check round time', labelNames: ['target'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers })
    this.changes = new Counter({ name: 'meridian_health_state_changes_total', help: 'Health state transitions, by target and the state entered', labelNames: ['target', 'state'], registers })
    this.reloads = new Counter({ name: 'meridian_config_reloads_total', help: 'ServedZone set loads, by result', labelNames: ['result'], registers })
    for (const result of ['ok', 'error']) this.reloads.inc({ result }, 0)
    const hits = new Counter({ name: 'meridian_dns_cache_hits_total', help: 'Queries answered from the answer cache', registers, collect: fold })
    const misses = new Counter({ name: 'meridian_dns_cache_misses_total', help: 'Hot-path queries whose answer the cache did not hold', registers, collect: fold })
    this.hitTally = this.tally('hits', hits)
    this.missTally = this.tally('misses', misses)
    const nxdomains = new Counter({ name: 'meridian_dns_cache_nxdomain_total', help: 'NXDOMAIN answered on the hot path, from the zone set\'s name index and the SOA template (neither a hit nor a miss)', registers, collect: fold })
    this.nxdomainTally = this.tally('nxdomain', nxdomains)
    const grace = new Counter({ name: 'meridian_dns_cache_latency_grace_total', help: 'Cache hits served within the latency grace: a geo-latency answer built before the last latency move (--latency-grace); counted in the hits too', registers, collect: fold })
    this.graceTally = this.tally('grace', grace)
    const source = () => this.cacheSource()
    new Gauge({ name: 'meridian_dns_cache_entries', help: 'Entries in the answer cache (answers and markers)', registers, collect() { this.set(source().entries) } })
    new Gauge({ name: 'meridian_dns_cache_bytes', help: 'Octets the answer cache accounts for (buffers plus a fixed overhead per entry)', registers, collect() { this.set(source().bytes) } })
    // Region gauges are read from the zone set and health view at scrape time.
    const regions = () => this.regionSource()
    const regionGauge = (name: string, help: string, value: (r: RegionSample) => boolean) =>
      new Gauge({
        name,
        help,
        labelNames: ['zone', 'region'],
        registers,
        collect() {
          this.reset()
          for (const r of regions()) this.set({ zone: r.zone, region: r.region }, value(r) ? 1 : 0)
        },
      })
    regionGauge('meridian_region_up', '1 while the region has its healthy VIPs, else 0', (r) => r.up)
    regionGauge('meridian_region_drained', '1 while the region is drained by the operator, else 0', (r) => r.drained)
    // Each check target's state, read from the health view at scrape time (no series while unknown).
    const targets = () => this.targetSource()
    new Gauge({
      name: 'meridian_health_target_up',
      help: '1 while the check target is up, 0 while down (no series while its state is unknown)',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset()
        for (const [target, state] of targets()) if (state !== 'unknown') this.set({ target }, state === 'up' ? 1 : 0)
      },
    })
  }

  query(zone: string, qtype: number, rcode: number): void {
    this.queryTally(zone, qtype, rcode).n++
  }

  /** The tally of queries of one (zone, qtype, rcode): cached answers keep it and add to it directly. */
  queryTally(zone: string, qtype: number, rcode: number): Tally {
    const counted = countedQtype(qtype)
    const key = `q|${zone}|${counted}|${rcode}`
    return this.tallies.get(key) ?? this.zoneTally(key, { zone }, this.queries, [zone, QTYPES[counted] ?? 'other', RCODES[rcode] ?? String(rcode)])
  }

  answer(zone: string, service: string, region: string): void {
    this.answerTally(zone, service, region).n++
  }

  answerTally(zone: string, service: string, region: string): Tally {
    const key = `a|${zone}|${service}|${region}`
    return this.tallies.get(key) ?? this.zoneTally(key, { zone, service, region }, this.answers, [zone, service, region])
  }

  /** A tally of a counter without labels (the cache's, each made once). */
  private tally(key: string, into: Inc): Tally {
    const t: Folded = { n: 0, into, labels: null, remove: null }
    this.tallies.set(key, t)
    return t
  }

  /** A new tally of a per-zone counter's series `values` (`named`: its zone, service, region labels). */
  private zoneTally(key: string, named: SeriesLabels, counter: Counter<string>, values: string[]): Tally {
    const t: Folded = { n: 0, into: counter.labels(...values), labels: named, remove: () => counter.remove(...values) }
    this.tallies.set(key, t)
    return t
  }

  /**
   * Drops every series of these zones, services and regions (removed from the zone set), with their
   * tallies and what they held unfolded. Call it when the set without them is swapped in: a tally a
   * cached answer still holds belongs to the old set, whose entries are never served again (the
   * cache checks the set), so the name added again starts from new tallies at 0.
   */
  forgetSeries(removals: Iterable<Removal>): void {
    const gone = new RemovedSeries(removals)
    if (gone.size === 0) return
    for (const [key, t] of this.tallies) {
      if (t.labels === null || !gone.has(t.labels)) continue
      this.tallies.delete(key)
      t.remove?.()
    }
  }

  /** Adds every tally into its counter (at scrape time; cheap when nothing moved). */
  private fold(): void {
    for (const t of this.tallies.values()) {
      if (t.n > 0) {
        t.into.inc(t.n)
        t.n = 0
      }
    }
  }

  /** Where the cache gauges read from at scrape time. */
  cache(source: () => { entries: number; bytes: number }): void {
    this.cacheSource = source
  }

  drop(): void {
    this.dropped.inc()
  }

  checkResult(target: string, ok: boolean, latencyMs: number): void {
    this.checks.labels(target, ok ? 'ok' : 'fail').inc()
    this.checkSeconds.labels(target).observe(latencyMs / 1000)
  }

  /** Drops the series of check targets no longer checked (a removed region, the old key of an edited check). */
  forgetTargets(targets: Iterable<string>): void {
    for (const target of targets) {
      for (const result of ['ok', 'fail']) this.checks.remove(target, result)
      this.checkSeconds.remove(target)
      for (const state of ['up', 'down', 'unknown']) this.changes.remove(target, state)
    }
  }

  stateChange(target: string, state: string): void {
    this.changes.labels(target, state).inc()
  }

  reload(ok: boolean): void {
    this.reloads.labels(ok ? 'ok' : 'error').inc()
  }

  /** Where the region gauges read from at scrape time. */
  regions(source: () => Iterable<RegionSample>): void {
    this.regionSource = source
  }

  /** Where meridian_health_target_up reads each check target's state (the poller's view). */
  targets(source: () => Iterable<[string, 'up' | 'down' | 'unknown']>): void {
    this.targetSource = source
  }

  /**
   * With DNS workers (the control process's registry): how many are answering now, read at scrape
   * time, and a counter of their deaths. A one-process server has neither.
   */
  workers(answering: () => number): void {
    new Gauge({ name: 'meridian_dns_workers_answering', help: 'DNS worker processes answering now (bound, not dead)', registers: [this.registry], collect() { this.set(answering()) } })
    this.workerDeaths = new Counter({ name: 'meridian_dns_worker_deaths_total', help: 'DNS worker processes that died unasked (each is replaced, with a backoff when it keeps dying)', registers: [this.registry] })
  }

  workerDeath(): void {
    this.workerDeaths?.inc()
  }

  /**
   * The GeoIP database (the server's registry, not a worker's): when the one answering was built,
   * read at scrape time (an alert on its age catches an update job that stopped), and a counter of
   * the reloads that found a new file, by result.
   */
  geodb(buildEpoch: () => Date): void {
    new Gauge({ name: 'meridian_geodb_build_timestamp_seconds', help: 'When the GeoIP database answering now was built (its build_epoch), in Unix seconds', registers: [this.registry], collect() { this.set(buildEpoch().getTime() / 1000) } })
    this.geodbReloads = new Counter({ name: 'meridian_geodb_reloads_total', help: 'GeoIP database files found replaced and taken (ok) or refused (error: the last good database keeps answering)', labelNames: ['result'], registers: [this.registry] })
    // Both series from the start, so that an increase() alert sees the first error.
    for (const result of ['ok', 'error']) this.geodbReloads.inc({ result }, 0)
  }

  /**
   * The zone files (the server's registry, not a worker's): 1 while the files on disk are those of
   * the set serving or a set they loaded, 0 while the last reload rejected them (the last good set
   * keeps serving), read at scrape time: what an alert on a bad file left on disk reads, as
   * Prometheus's own prometheus_config_last_reload_successful.
   */
  config(rejected: () => boolean): void {
    new Gauge({ name: 'meridian_config_last_reload_successful', help: '1 while the zone files load (the set serving is theirs), 0 while the last reload rejected them and the last good set keeps serving', registers: [this.registry], collect() { this.set(rejected() ? 0 : 1) } })
  }

  geodbReload(ok: boolean): void {
    this.geodbReloads?.labels(ok ? 'ok' : 'error').inc()
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }
}

/** The options collectDefaultMetrics() gives each of its collectors. */
const PROCESS_METRICS_CONFIG = { prefix: 'meridian_', eventLoopMonitoringPrecision: 10 }
/**
 * prom-client's gauges named like counters (`_total` is for counters: Prometheus naming
 * conventions): each is the sum of the gauge of the same name without it (`sum(meridian_nodejs_active_handles)`).
 */
export const DROPPED_PROCESS_METRICS = ['meridian_nodejs_active_resources_total', 'meridian_nodejs_active_handles_total', 'meridian_nodejs_active_requests_total']
const requireCjs = createRequire(import.meta.url)

/**
 * prom-client's default process metrics, registered collector by collector so that the GC histogram
 * can be left out (`gc`: with it).
 *
 * Why leave it out: it observes every garbage collection through perf_hooks. Each scavenge of a busy
 * DNS process (~80 a second at full load) then makes a JS callback and ~3 KB that outlive the next
 * scavenge, so every scavenge also worked through a remembered set with a helper thread, which on
 * one CPU the DNS thread waits for. Measured (docs/benchmarks.md, session 12): 3,184 octets promoted
 * per scavenge with it, ~200 without; the p99 at half load lower without it in 9 of 9 interleaved pairs.
 *
 * How: the names are `collectDefaultMetrics.metricsList`, each the module of that name under
 * prom-client/lib/metrics/ that collectDefaultMetrics itself runs. Those paths are not prom-client's
 * documented API: test/unit/metrics.test.ts compares the result with collectDefaultMetrics' own, so
 * a version that moves or changes them fails it.
 */
function processMetrics(register: Registry, gc: boolean): void {
  const config = { ...PROCESS_METRICS_CONFIG, register }
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === 'gc' && !gc) continue
    const collector = requireCjs(`prom-client/lib/metrics/${name}`) as (r: Registry, c: typeof config) => void
    collector(register, config)
  }
  for (const name of DROPPED_PROCESS_METRICS) register.removeSingleMetric(name)
}
