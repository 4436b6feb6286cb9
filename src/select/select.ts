/**
 * The record selector: pure, no I/O, no clock or randomness of its own (`rand` is an argument).
 * (service, query family, client location, regions, health) -> addresses + TTL + ECS scope + trace.
 *
 * A region is usable for a query of family F when:
 *   drained  VIPs of F  healthy VIPs (all families) >= minHealthy  healthy VIPs of F  -> usable
 *   yes      -          -                                          -                     no  (drained: never, bar `fallback: all` with fallbackIncludesDrained)
 *   no       none       -                                          -                     no  (nothing to answer for F)
 *   no       some       no                                         -                     no  (down)
 *   no       some       yes                                        0                     no  (down for F)
 *   no       some       yes                                        >= 1                  yes
 * A VIP counts as healthy when its check is up, or unknown and the service says unknown is up, or
 * it has no check. Regions of weight 0 are standby: used only when no weighted region is usable.
 *
 * Policies rank the usable regions; the first is answered (and the next ones with `fill`):
 *   failover     configured order                           scope 0 (same for every client)
 *   weighted     rendezvous hash of the client network      scope = affinity bucket (/24, /56)
 *   geo          distance, nearest first (equally near       scope = GeoIP network prefix, or the longer
 *                regions, within 1 km, share by hash)         of it and the bucket when shared
 *   geo-latency  fibre RTT model + measured check latency;  scope = GeoIP prefix, or the longer of it
 *                regions within toleranceMs of the best       and the bucket when several regions
 *                share by rendezvous hash                     shared by hash
 * An unlocated client's GeoIP network (the one that said "no location") counts like a located one's.
 * With no client location, geo has no geographic preference and shares by weight; geo-latency
 * compares the measured check latencies alone (those within toleranceMs of the best share by weight).
 * A region without a measurement (no check, or no successful round yet) counts at the mean of the
 * measured regions of the pool (0 when none is measured): neither ahead nor behind by its missing value.
 * A check's latency is the EWMA its health generation published (`publishedMs`), not the one of its
 * last round: the answer moves only when the poller publishes a move (more than max(2 ms, 25%)), so
 * a cached answer, a worker's and the one-process server's are the same answer, even for a region at
 * the edge of the tolerance window, and an EWMA wobbling at that edge does not flap the answer.
 * When no region is usable for the family but some region is up (its VIPs of the other family), the
 * answer is NODATA and no fallback applies: the fallback is for when no region is healthy.
 * When no region is usable the service's fallback applies: as-if-healthy (the same selection with
 * every non-drained region taken as up; a region answers its VIPs that are healthy all the same, as
 * one below its minHealthy has, else all of them), all (every non-drained VIP), static (configured
 * addresses), none (NODATA).
 */
import type { ClientLocation, Region, Service, Vip, VipHealth } from '../model/gslb.js'
import { fibreRttMs, greatCircleKm } from './distance.js'
import { rendezvousScore } from './hash.js'

export interface SelectContext {
  regions: ReadonlyMap<string, Region>
  health: (checkKey: string) => VipHealth | undefined
  rand: () => number
}

export type CandidateStatus = 'usable' | 'standby' | 'drained' | 'down' | 'no-address-of-family' | 'unknown-region'

export interface Candidate {
  region: string
  status: CandidateStatus
  weight: number
  healthyVips: number
  vipsOfFamily: number
  distanceKm: number | null
  /** The mean published check latency of the region's healthy VIPs (VipHealth.publishedMs). */
  measuredMs: number | null
  estimateMs: number | null
  score: number | null
  chosen: boolean
  why: string
}

export interface Selection {
  addresses: string[]
  ttl: number
  /** ECS scope prefix: how much of the client address this answer depended on. */
  scope: number
  /** Regions answered, in order. */
  regions: string[]
  /** The fallback used, or null when healthy regions answered. */
  fallback: Service['fallback'] | null
  candidates: Candidate[]
  /** One line saying how the choice was made. */
  reason: string
  /**
   * What about the client the choice depended on: nothing, its location (the GeoIP point), its
   * affinity bucket (/24, /56), or both. The ECS scope follows from it (`scopeOf`), and the answer
   * cache keys the answer by exactly this.
   */
  dependsOn: Dependence
  /**
   * How the addresses were drawn, so an answer can be re-drawn without selecting again: from each
   * group in order, `take` consecutive addresses of `pool` starting at a random one (wrapping).
   */
  groups: AnswerGroup[]
}

export type Dependence = 'none' | 'location' | 'bucket' | 'both'

export interface AnswerGroup {
  /** Every address the group draws from, in configured order. */
  pool: string[]
  take: number
}

/**
 * The ECS scope prefix of an answer that depended on `dep` of a client whose GeoIP network and
 * affinity bucket have these prefixes (both capped by the locator at the source prefix). The GeoIP
 * network counts for a client it did not locate too: that network is what said "no location" (an
 * empty part of the database's tree, a private block), and the rest of the bucket may be located.
 */
export function scopeOf(dep: Dependence, geoPrefix: number, bucketPrefix: number): number {
  switch (dep) {
    case 'none':
      return 0
    case 'location':
      return geoPrefix
    case 'bucket':
      return bucketPrefix
    case 'both':
      return Math.max(geoPrefix, bucketPrefix)
  }
}

interface Evaluated {
  c: Candidate
  region: Region
  vips: Vip[] // healthy VIPs of the family
  /** Up as a region (not drained, enough healthy VIPs), only not usable for the family asked: no VIP of it, or none of it healthy. */
  upForOther: boolean
}

function evaluate(service: Service, family: 4 | 6, client: ClientLocation, ctx: SelectContext, asIfHealthy: boolean): Evaluated[] {
  const out: Evaluated[] = []
  for (const name of service.regions) {
    const region = ctx.regions.get(name)
    const c: Candidate = { region: name, status: 'down', weight: region?.weight ?? 0, healthyVips: 0, vipsOfFamily: 0, distanceKm: null, measuredMs: null, estimateMs: null, score: null, chosen: false, why: '' }
    if (!region) {
      c.status = 'unknown-region'
      c.why = 'not defined in the zone'
      out.push({ c, region: { name, location: { lat: 0, lon: 0 }, vips: [], weight: 0, drained: true, minHealthy: 1 }, vips: [], upForOther: false })
      continue
    }
    let healthy = 0
    let upForOther = false
    const vips: Vip[] = []
    let msSum = 0
    let msCount = 0
    let ofFamily = 0
    // As if healthy, the region's VIPs of the family that are healthy all the same (a region below
    // its minHealthy), else all of them: a VIP known down is answered only with no better one.
    const reallyUp: Vip[] = []
    for (const v of region.vips) {
      if (v.family === family) ofFamily++
      // Healthy: checked up, or unknown where the service counts unknown as up, or not checked at all.
      const h = v.checkKey === null ? undefined : ctx.health(v.checkKey)
      const state = v.checkKey === null ? 'up' : (h?.state ?? 'unknown')
      const up = state === 'up' || (state === 'unknown' && service.unknownAs === 'up')
      if (asIfHealthy) {
        healthy++
        if (v.family !== family) continue
        vips.push(v)
        if (up) reallyUp.push(v)
        continue
      }
      if (!up) continue
      healthy++
      const ms = h === undefined ? null : h.publishedMs !== undefined ? h.publishedMs : h.ewmaMs
      if (ms != null) {
        msSum += ms
        msCount++
      }
      if (v.family === family) vips.push(v)
    }
    if (reallyUp.length > 0 && reallyUp.length < vips.length) vips.splice(0, vips.length, ...reallyUp)
    c.healthyVips = healthy
    c.vipsOfFamily = ofFamily
    c.measuredMs = msCount > 0 ? msSum / msCount : null
    if (client.point) c.distanceKm = greatCircleKm(client.point, region.location)
    if (region.drained) {
      c.status = 'drained'
      c.why = 'drained by the operator'
    } else if (c.vipsOfFamily === 0) {
      c.status = 'no-address-of-family'
      c.why = `no IPv${family} VIP`
      upForOther = healthy > 0 && healthy >= region.minHealthy
    } else if (healthy < region.minHealthy || vips.length === 0) {
      upForOther = healthy > 0 && healthy >= region.minHealthy
      c.status = 'down'
      c.why = `${healthy} healthy VIP(s), needs ${region.minHealthy}${vips.length === 0 ? ` and one of IPv${family}` : ''}`
    } else {
      c.status = region.weight > 0 ? 'usable' : 'standby'
      c.why = region.weight > 0 ? 'healthy' : 'healthy standby (weight 0)'
    }
    out.push({ c, region, vips, upForOther })
  }
  return out
}

/** `geo`: regions whose distances differ by no more than this are equally near (shared by weight). */
const GEO_TIE_KM = 1

/**
 * The regions within `within` of the least `value` (`near`, in the pool's order: geo and
 * geo-latency share them by hash) and the others, by `value` and then by name (`rest`).
 */
function nearest(pool: Evaluated[], value: (e: Evaluated) => number, within: number): { best: number; near: Evaluated[]; rest: Evaluated[] } {
  const best = Math.min(...pool.map(value))
  const near = pool.filter((e) => value(e) <= best + within)
  const rest = pool.filter((e) => !near.includes(e)).sort((a, b) => value(a) - value(b) || a.region.name.localeCompare(b.region.name))
  return { best, near, rest }
}

/** Ranks the pool by the service's policy; returns the order and how the choice depends on the client. */
function rank(service: Service, pool: Evaluated[], client: ClientLocation): { order: Evaluated[]; dependsOn: Dependence; reason: string } {
  const byHash = (list: Evaluated[]) => {
    for (const e of list) e.c.score = rendezvousScore(client.bucket, e.region.name, Math.max(e.region.weight, 1))
    return [...list].sort((a, b) => b.c.score! - a.c.score!)
  }
  const noGeo = client.point === null
  switch (service.policy) {
    case 'failover':
      return { order: pool, dependsOn: 'none', reason: 'failover: first usable region in configured order' }
    case 'weighted':
      return { order: byHash(pool), dependsOn: 'bucket', reason: `weighted: rendezvous hash of client network ${client.bucket}` }
    case 'geo': {
      // No location is itself the GeoIP network's answer: the choice depends on it and on the bucket.
      if (noGeo) return { order: byHash(pool), dependsOn: 'both', reason: 'geo: client location unknown, shared by weight' }
      // Regions as near as the nearest (two regions placed by the same country, or one site): shared
      // by weight, not all to the one whose name sorts first.
      const { near, rest } = nearest(pool, (e) => e.c.distanceKm!, GEO_TIE_KM)
      if (near.length === 1) return { order: [...near, ...rest], dependsOn: 'location', reason: 'geo: nearest usable region' }
      return { order: [...byHash(near), ...rest], dependsOn: 'both', reason: `geo: ${near.length} usable regions equally near share by weight` }
    }
    case 'geo-latency': {
      // A region with no measurement (no check, or no successful round yet) counts at the mean of the
      // measured ones: as 0 it was ahead of every measured region by that region's check latency
      // (the selector review: a region without a check drew 1,000 of 1,000 unlocated clients).
      const measured = pool.filter((e) => e.c.measuredMs !== null)
      const unknownMs = measured.length > 0 ? measured.reduce((sum, e) => sum + e.c.measuredMs!, 0) / measured.length : 0
      for (const e of pool) e.c.estimateMs = (e.c.distanceKm === null ? 0 : fibreRttMs(e.c.distanceKm)) + (e.c.measuredMs ?? unknownMs)
      const { best, near, rest } = nearest(pool, (e) => e.c.estimateMs!, service.toleranceMs)
      if (near.length === 1) {
        return { order: [...near, ...rest], dependsOn: 'location', reason: `geo-latency: ${near[0]!.region.name} has the lowest latency estimate (${best.toFixed(1)} ms)` }
      }
      return {
        order: [...byHash(near), ...rest],
        dependsOn: 'both',
        reason: `geo-latency: ${near.length} regions within ${service.toleranceMs} ms of the best (${best.toFixed(1)} ms) share by weight`,
      }
    }
  }
}

/** Where drawing from a pool of `n` starts: a uniformly random index (the whole pool rotates). */
export const drawStart = (n: number, rand: () => number): number => (n < 2 ? 0 : Math.floor(rand() * n) % n)

/** The addresses of `groups`, drawn: `take` consecutive ones from each pool, from a random start. */
function draw(groups: readonly AnswerGroup[], rand: () => number): string[] {
  const out: string[] = []
  for (const g of groups) {
    const k = drawStart(g.pool.length, rand)
    for (let i = 0; i < g.take; i++) out.push(g.pool[(k + i) % g.pool.length]!)
  }
  return out
}

function pick(service: Service, family: 4 | 6, client: ClientLocation, ctx: SelectContext, asIfHealthy: boolean): { sel: Omit<Selection, 'fallback' | 'ttl'>; empty: boolean; upForOther: string[] } {
  const evaluated = evaluate(service, family, client, ctx, asIfHealthy)
  const usable = evaluated.filter((e) => e.c.status === 'usable')
  const pool = usable.length > 0 ? usable : evaluated.filter((e) => e.c.status === 'standby')
  if (pool.length === 0) {
    const upForOther = evaluated.filter((e) => e.upForOther).map((e) => e.region.name)
    return { sel: { addresses: [], scope: 0, dependsOn: 'none', groups: [], regions: [], candidates: evaluated.map((e) => e.c), reason: 'no usable region' }, empty: true, upForOther }
  }
  const { order, dependsOn, reason } = rank(service, pool, client)
  const groups: AnswerGroup[] = []
  const regions: string[] = []
  let taken = 0
  for (const e of order) {
    if (taken >= service.answers || (regions.length > 0 && !service.fill)) break
    // A VIP two regions share is answered once (RFC 2181 §5). Every group but the last takes its
    // whole pool, so leaving out the earlier pools' addresses is exact, whatever the draw.
    const fresh = e.vips.map((v) => v.address).filter((a) => !groups.some((g) => g.pool.includes(a)))
    if (fresh.length === 0) continue
    const take = Math.min(fresh.length, service.answers - taken)
    groups.push({ pool: fresh, take })
    taken += take
    regions.push(e.region.name)
    e.c.chosen = true
  }
  for (const e of evaluated) if (!e.c.chosen && (e.c.status === 'usable' || e.c.status === 'standby')) e.c.why += regions.length ? ', not chosen' : ''
  const sel = { addresses: draw(groups, ctx.rand), scope: scopeOf(dependsOn, client.geoPrefix, client.bucketPrefix), dependsOn, groups, regions, candidates: evaluated.map((e) => e.c), reason }
  return { sel, empty: false, upForOther: [] }
}

/**
 * A Selection, always built here with its fields in one order: as spreads of the pick's result
 * they took several hidden classes, and every read of one on the full path (the answer cache's
 * insert, the responder) went megamorphic (session 10, `--log-ic`).
 */
function selection(s: Omit<Selection, 'ttl' | 'fallback'>, ttl: number, fallback: Selection['fallback']): Selection {
  return { addresses: s.addresses, ttl, scope: s.scope, regions: s.regions, fallback, candidates: s.candidates, reason: s.reason, dependsOn: s.dependsOn, groups: s.groups }
}

/** The trace of a fallback: the regions it answered are the chosen ones (the health-only candidates had none). */
function markAnswered(candidates: Candidate[], regions: readonly string[]): void {
  for (const c of candidates) {
    if (!regions.includes(c.region)) continue
    c.chosen = true
    c.why += ', answered by the fallback'
  }
}

export function select(service: Service, family: 4 | 6, client: ClientLocation, ctx: SelectContext): Selection {
  const first = pick(service, family, client, ctx, false)
  if (!first.empty) return selection(first.sel, service.ttl, null)
  const { ttl, fallback } = service
  const candidates = first.sel.candidates
  if (first.upForOther.length > 0) {
    // Regions are up, only not for this family: NODATA, so clients use the other family's healthy
    // VIPs. A fallback here (the static sorry server, a VIP whose check is down) would draw the
    // clients that prefer IPv6 (Happy Eyeballs) away from healthy pools.
    const reason = `no region has a healthy IPv${family} VIP, but ${first.upForOther.join(', ')} ${first.upForOther.length > 1 ? 'are' : 'is'} up: NODATA, no fallback`
    return selection({ addresses: [], groups: [], regions: [], scope: 0, dependsOn: 'none', candidates, reason }, ttl, null)
  }
  switch (fallback) {
    case 'as-if-healthy': {
      const again = pick(service, family, client, ctx, true)
      markAnswered(candidates, again.sel.regions)
      return selection({ ...again.sel, candidates, reason: `no region is healthy; fallback as-if-healthy: ${again.sel.reason}` }, ttl, fallback)
    }
    case 'all': {
      const addresses: string[] = []
      const regions: string[] = []
      for (const name of service.regions) {
        const r = ctx.regions.get(name)
        if (!r || (r.drained && !service.fallbackIncludesDrained)) continue
        const vips = r.vips.filter((v) => v.family === family && !addresses.includes(v.address))
        if (vips.length === 0) continue
        addresses.push(...vips.map((v) => v.address))
        regions.push(name)
      }
      const groups = [{ pool: addresses, take: addresses.length }]
      markAnswered(candidates, regions)
      return selection({ addresses: draw(groups, ctx.rand), groups, regions, scope: 0, dependsOn: 'none', candidates, reason: 'no region is healthy; fallback all: every VIP' }, ttl, fallback)
    }
    case 'static': {
      const addresses = service.fallbackAddresses.filter((a) => a.includes(':') === (family === 6))
      const groups = [{ pool: addresses, take: addresses.length }]
      return selection({ addresses: draw(groups, ctx.rand), groups, regions: [], scope: 0, dependsOn: 'none', candidates, reason: 'no region is healthy; fallback static addresses' }, ttl, fallback)
    }
    case 'none':
      return selection({ addresses: [], groups: [], regions: [], scope: 0, dependsOn: 'none', candidates, reason: 'no region is healthy; fallback none: NODATA' }, ttl, fallback)
  }
}
