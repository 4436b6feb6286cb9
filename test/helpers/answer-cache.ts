/**
 * What the answer cache's tests share: the zone they answer from, and small helpers. Both
 * answer-cache.test.ts (fixed queries) and hot-path-fuzz.test.ts (random ones) compare a handler
 * with the cache against one without over this zone.
 */
import type { Metrics } from '../../src/metrics/index.js'

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
