/**
 * What the answer cache's tests share: the zone they answer from, and small helpers. Both
 * answer-cache.test.ts (fixed queries) and hot-path-fuzz.test.ts (random ones) compare a handler
 * with the cache against one without over this zone.
 */
import assert from 'node:assert/strict'
import type { GeoLookup } from '../../src/dns/client.js'
import type { AnswerCacheOptions } from '../../src/dns/answer-cache.js'
import { DnsHandler } from '../../src/dns/handler.js'
import type { MoveLog } from '../../src/health/moves.js'
import { createLogger } from '../../src/log.js'
import { Metrics } from '../../src/metrics/index.js'
import type { VipHealth } from '../../src/model/gslb.js'
import type { ZoneSet } from '../../src/model/types.js'

/** c.test: static records, a CNAME to a service, and GSLB services of every policy over three regions. */
export const CACHE_ZONE = `origin: c.test
soa: { mname: ns1, rname: h, minimum: 10 }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  "@": { MX: { preference: 5, exchange: mx }, TXT: apex }
  mx: { A: 192.0.2.25, AAAA: "2001:db8::25" }
  static: { A: [192.0.2.1, 192.0.2.2], TXT: hello }
  alias: { CNAME: geo }
regions:
  eu: { location: { country: GB }, vips: [198.51.100.1, 198.51.100.2, 198.51.100.3, "2001:db8:e::1"], check: { url: "http://{vip}:80/" } }
  us: { location: { country: US }, vips: [203.0.113.1, 203.0.113.2, "2001:db8:a::1", "2001:db8:a::2"], check: { url: "http://{vip}:80/" } }
  jp: { location: { country: JP }, vips: [192.0.2.101], weight: 300 }
services:
  geo: { policy: geo, answers: 2 }
  near: { policy: geo-latency, toleranceMs: 10000, answers: 1 }
  lat: { policy: geo-latency, answers: 2, fill: true }
  wtd: { policy: weighted, answers: 1 }
  fo: { policy: failover, regions: [eu, us], fallback: static, fallbackAddresses: [192.0.2.200] }
  none: { policy: geo, regions: [eu], fallback: none }
`

/** A zone below c.test, for answers from the longest zone. */
export const SUB_ZONE = `origin: sub.c.test
soa: { mname: ns1.c.test., rname: h, minimum: 20 }
ns: [ns1.c.test.]
records:
  www: { A: 192.0.2.7 }
`

/** A counter's value in the Prometheus text of `metrics`. */
export async function counter(metrics: Metrics, name: string): Promise<number> {
  const text = await metrics.render()
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN)
}

/** IPv6 text (a zone index dropped, a dotted IPv4 tail allowed) as 32 hex digits. */
export function expand(v6: string): string {
  const [head = '', tail = ''] = v6.replace(/%.*$/, '').split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  if (t.at(-1)?.includes('.')) {
    const q = t.pop()!.split('.').map(Number)
    t.push(((q[0]! << 8) | q[1]!).toString(16), ((q[2]! << 8) | q[3]!).toString(16))
  }
  return [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t].map((x) => x.padStart(4, '0')).join('')
}

/** What the handlers answer from; the tests change it between queries as the poller and the store would. */
export interface World {
  set: ZoneSet
  generation: number
  health: Map<string, VipHealth>
  /** When set, the checks that moved, by generation (as HealthPoller keeps them); handlers() passes it on as movedSince. */
  moved?: MoveLog
  /** The state generation, when it is not `generation` (latency moves move only `generation`). */
  stateGeneration?: number
}

/** HealthPoller.movedSince over a world's `moved` log. */
export function movedSinceOf(world: World): ((generation: number, visit: (key: string, at: number) => void) => boolean) | undefined {
  const m = world.moved
  return m && ((generation, visit) => m.since(generation, world.generation, visit))
}

/**
 * A handler with the answer cache (default bounds unless given) and one without, over the same
 * world and GeoIP stand-in `geo`, sharing a fixed `rand`; `cachedGeo` (default `geo`) is the cached
 * handler's GeoIP, the plain one always uses `geo`.
 */
export function handlers(world: World, geo: GeoLookup, answerCache?: AnswerCacheOptions, cachedGeo: GeoLookup = geo): { cached: DnsHandler; plain: DnsHandler; metrics: Metrics } {
  const gslb = { geo, health: (k: string) => world.health.get(k), rand: () => 0.37, generations: () => ({ generation: world.generation, stateGeneration: world.stateGeneration ?? world.generation }), movedSince: movedSinceOf(world) }
  const log = createLogger('silent')
  const metrics = new Metrics({ processMetrics: false })
  const cached = new DnsHandler(() => world.set, log, answerCache ? { answerCache } : {}, { ...gslb, geo: cachedGeo }, metrics)
  const plain = new DnsHandler(() => world.set, log, { answerCache: { maxEntries: 0, maxBytes: 0 } }, gslb)
  assert.ok(cached.cache, 'the cache is on by default')
  assert.equal(plain.cache, undefined)
  return { cached, plain, metrics }
}
