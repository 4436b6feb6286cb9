/**
 * GET /v1/health: every check target as the poller sees it (state, since, last and EWMA response
 * time, last error, recent transitions, and which zone/region/VIP uses it), and every region's state
 * computed from its VIPs the way the selector counts them.
 */
import type { TargetHealth } from '../health/state.js'
import type { ZoneSet } from '../model/types.js'

/** The poller's snapshot (health/poller.ts HealthView). */
export interface HealthSnapshot {
  readonly generation: number
  readonly targets: ReadonlyMap<string, TargetHealth>
}

export interface TargetReport {
  key: string
  state: TargetHealth['state']
  since: string
  lastCheckAt: string | null
  lastOk: boolean | null
  lastStatus: number | null
  lastLatencyMs: number | null
  ewmaMs: number | null
  /** The EWMA the poller last published (moves of more than max(2 ms, 25%)): what geo-latency steers by. */
  publishedMs: number | null
  lastError: string | null
  lastErrorAt: string | null
  checks: number
  restored: boolean
  transitions: { from: string; to: string; at: string; reason: string }[]
  usedBy: { zone: string; region: string; vip: string }[]
}

export interface RegionReport {
  zone: string
  region: string
  /** up: at least minHealthy VIPs up; unknown: only with VIPs not yet checked; down; drained. */
  state: 'up' | 'down' | 'unknown' | 'drained'
  drained: boolean
  weight: number
  minHealthy: number
  healthyVips: number
  vips: { address: string; check: string | null; state: 'up' | 'down' | 'unknown' | 'unchecked' }[]
}

export interface HealthReport {
  generation: number
  targets: TargetReport[]
  regions: RegionReport[]
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10)

export function healthReport(set: ZoneSet, view: HealthSnapshot): HealthReport {
  const usedBy = new Map<string, TargetReport['usedBy']>()
  const regions: RegionReport[] = []
  for (const zone of set.zones.values()) {
    for (const region of zone.regions.values()) {
      const vips = region.vips.map((v) => {
        if (v.checkKey === null) return { address: v.address, check: null, state: 'unchecked' as const }
        let list = usedBy.get(v.checkKey)
        if (!list) usedBy.set(v.checkKey, (list = []))
        list.push({ zone: zone.origin, region: region.name, vip: v.address })
        return { address: v.address, check: v.checkKey, state: view.targets.get(v.checkKey)?.state ?? ('unknown' as const) }
      })
      const up = vips.filter((v) => v.state === 'up' || v.state === 'unchecked').length
      const unknown = vips.filter((v) => v.state === 'unknown').length
      const state = region.drained ? 'drained' : up >= region.minHealthy ? 'up' : up + unknown >= region.minHealthy ? 'unknown' : 'down'
      regions.push({ zone: zone.origin, region: region.name, state, drained: region.drained, weight: region.weight, minHealthy: region.minHealthy, healthyVips: up, vips })
    }
  }
  const targets: TargetReport[] = [...view.targets].map(([key, t]) => ({
    key,
    state: t.state,
    since: new Date(t.since).toISOString(),
    lastCheckAt: iso(t.lastCheckAt),
    lastOk: t.lastOk,
    lastStatus: t.lastStatus,
    lastLatencyMs: r1(t.lastLatencyMs),
    ewmaMs: r1(t.ewmaMs),
    publishedMs: r1(t.publishedMs),
    lastError: t.lastError,
    lastErrorAt: iso(t.lastErrorAt),
    checks: t.checks,
    restored: t.restored,
    transitions: t.transitions.map((x) => ({ from: x.from, to: x.to, at: new Date(x.at).toISOString(), reason: x.reason })),
    usedBy: usedBy.get(key) ?? [],
  }))
  return { generation: view.generation, targets, regions }
}
