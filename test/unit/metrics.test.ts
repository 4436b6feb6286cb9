import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import { test } from 'node:test'
import { pino } from 'pino'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { buildZoneSet } from '../../src/config/load.js'
import { DnsHandler } from '../../src/dns/handler.js'
import { DROPPED_PROCESS_METRICS, Metrics, removedSeries } from '../../src/metrics/index.js'
import { parseExposition } from '../helpers/metrics.js'
import { ROOT } from '../helpers/server.js'
import { buildQuery, tsigRecord } from '../helpers/wire.js'

const zoneText = `origin: m.test
soa: { mname: ns1, rname: h }
ns: [ns1]
records: { ns1: { A: 192.0.2.53 } }
regions:
  one: { location: { lat: 0, lon: 0 }, vips: [192.0.2.1] }
services:
  www: {}
`
const set = buildZoneSet([{ file: 'm.yaml', text: zoneText }], () => 1, 1)

function query(name: string, type: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]))
  return Buffer.concat([Buffer.from([0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, type >> 8, type & 255, 0, 1])])
}

test('every metric is named meridian_<subsystem>_<name>_<unit>, counters ending in _total', async () => {
  const m = new Metrics({ processMetrics: false })
  for (const metric of await m.registry.getMetricsAsJSON()) {
    assert.match(metric.name, /^meridian_(dns|health|region|config)_[a-z_]+$/, metric.name)
    if (String(metric.type) === 'counter') assert.match(metric.name, /_total$/, metric.name)
    if (String(metric.type) === 'histogram') assert.match(metric.name, /_seconds$/, metric.name)
  }
})

test('docs/api.md names every series Meridian exports besides the process defaults, and names none it does not', async () => {
  const m = new Metrics({ processMetrics: false })
  // Every optional family a server registers (workers, GeoIP, zone files), so that the registry holds them all.
  m.workers(() => 2)
  m.geodb(() => new Date(0))
  m.config(() => false)
  const exported = (await m.registry.getMetricsAsJSON()).map((metric) => metric.name).sort()
  const md = await readFile(path.join(ROOT, 'docs', 'api.md'), 'utf8')
  const section = md.slice(md.indexOf('What `/metrics` has'), md.indexOf('**A removed zone'))
  for (const name of exported) assert.ok(new RegExp(`\\b${name}\\b`).test(section), `docs/api.md names ${name}`)
  // Named there: the series above, and the process families by their prefixes.
  const named = new Set(section.match(/\bmeridian_[a-z_]*[a-z]\b/g) ?? [])
  for (const name of named) assert.ok(exported.includes(name) || /^meridian_(process|nodejs)_/.test(name), `${name} (docs/api.md) is exported`)
})

test('queries are counted by zone, type and rcode, GSLB answers by region, drops apart', async () => {
  const m = new Metrics({ processMetrics: false })
  const h = new DnsHandler(() => set, pino({ level: 'silent' }), {}, undefined, m)
  h.handle(query('www.m.test', 1), 'udp', '192.0.2.9')
  h.handle(query('www.m.test', 1), 'udp', '192.0.2.9')
  h.handle(query('nope.m.test', 1), 'udp', '192.0.2.9')
  h.handle(query('example.com', 28), 'udp', '192.0.2.9')
  h.handle(Buffer.from([1, 2, 3]), 'udp', '192.0.2.9')
  const text = await m.render()
  assert.match(text, /meridian_dns_queries_total\{zone="m\.test",qtype="A",rcode="NOERROR"\} 2/)
  assert.match(text, /meridian_dns_queries_total\{zone="m\.test",qtype="A",rcode="NXDOMAIN"\} 1/)
  assert.match(text, /meridian_dns_queries_total\{zone="",qtype="AAAA",rcode="REFUSED"\} 1/)
  assert.match(text, /meridian_dns_answers_total\{zone="m\.test",service="www\.m\.test",region="one"\} 2/)
  assert.match(text, /meridian_dns_dropped_total 1/)
})

test('a TSIG-signed query is counted as NOTAUTH, a NOTIFY of EDNS version 1 as BADVERS, by name', async () => {
  const m = new Metrics({ processMetrics: false })
  const h = new DnsHandler(() => set, pino({ level: 'silent' }), {}, undefined, m)
  h.handle(buildQuery({ name: 'www.m.test', type: 1, arcount: 1, trailing: tsigRecord() }), 'udp', '192.0.2.9')
  h.handle(buildQuery({ opcode: 4, name: 'm.test', type: 6, opt: { version: 1 } }), 'udp', '192.0.2.9')
  const text = await m.render()
  assert.match(text, /^meridian_dns_queries_total\{zone="m\.test",qtype="A",rcode="NOTAUTH"\} 1$/m)
  // Another opcode's question is not read (its format is its opcode's): no zone.
  assert.match(text, /^meridian_dns_queries_total\{zone="",qtype="other",rcode="BADVERS"\} 1$/m)
})

test('a query answered before its name is looked up (BADVERS, NOTAUTH, class CH, AXFR, a meta type) is counted under the zone its question falls in', async () => {
  const m = new Metrics({ processMetrics: false })
  const h = new DnsHandler(() => set, pino({ level: 'silent' }), {}, undefined, m)
  const cases: [Buffer, string][] = [
    [buildQuery({ name: 'www.m.test', type: 1, opt: { version: 1 } }), 'qtype="A",rcode="BADVERS"'],
    [buildQuery({ name: 'nope.m.test', type: 28, opt: { version: 1 } }), 'qtype="AAAA",rcode="BADVERS"'],
    [buildQuery({ name: 'www.m.test', type: 1, arcount: 1, trailing: tsigRecord() }), 'qtype="A",rcode="NOTAUTH"'],
    [buildQuery({ name: 'www.m.test', type: 16, class: 3 }), 'qtype="TXT",rcode="REFUSED"'],
    [buildQuery({ name: 'm.test', type: 252 }), 'qtype="AXFR",rcode="REFUSED"'],
    [buildQuery({ name: 'm.test', type: 41 }), 'qtype="OPT",rcode="FORMERR"'],
  ]
  for (const [q] of cases) assert.ok(h.handle(q, 'udp', '192.0.2.9'))
  // Outside every zone: no zone, as before.
  h.handle(buildQuery({ name: 'example.com', type: 1, opt: { version: 1 } }), 'udp', '192.0.2.9')
  const text = await m.render()
  for (const [, labels] of cases) assert.match(text, new RegExp(`^meridian_dns_queries_total\\{zone="m\\.test",${labels}\\} 1$`, 'm'))
  assert.match(text, /^meridian_dns_queries_total\{zone="",qtype="A",rcode="BADVERS"\} 1$/m)
  assert.doesNotMatch(text, /zone="",qtype="(AAAA|TXT|AXFR|OPT)"/)
})

test('queries of types without a label of their own share one tally, so random query types cannot grow the tallies', async () => {
  const m = new Metrics({ processMetrics: false })
  const h = new DnsHandler(() => set, pino({ level: 'silent' }), {}, undefined, m)
  const other = m.queryTally('m.test', 65280, 0)
  for (const qtype of [65281, 300, 4242, 65535]) assert.equal(m.queryTally('m.test', qtype, 0), other, `qtype ${qtype}`)
  assert.notEqual(m.queryTally('m.test', 1, 0), other)
  for (let qtype = 300; qtype < 1300; qtype++) h.handle(query('www.m.test', qtype), 'udp', '192.0.2.9')
  const tallies = (m as unknown as { tallies: Map<string, unknown> }).tallies
  assert.ok(tallies.size < 10, `${tallies.size} tallies after 1,000 query types`)
  const text = await m.render()
  assert.match(text, /^meridian_dns_queries_total\{zone="m\.test",qtype="other",rcode="NOERROR"\} 1000$/m)
})

test('health results, state changes, reloads and region gauges are exported', async () => {
  const m = new Metrics({ processMetrics: false })
  m.checkResult('http://a/healthz#1', true, 12)
  m.checkResult('http://a/healthz#1', false, 2000)
  m.stateChange('http://a/healthz#1', 'down')
  m.reload(true)
  m.reload(false)
  m.regions(() => [{ zone: 'm.test', region: 'one', up: false, drained: true }])
  const text = await m.render()
  assert.match(text, /meridian_health_checks_total\{target="http:\/\/a\/healthz#1",result="ok"\} 1/)
  assert.match(text, /meridian_health_check_duration_seconds_count\{target="http:\/\/a\/healthz#1"\} 2/)
  assert.match(text, /meridian_health_state_changes_total\{target="http:\/\/a\/healthz#1",state="down"\} 1/)
  assert.match(text, /meridian_config_reloads_total\{result="error"\} 1/)
  assert.match(text, /meridian_region_up\{zone="m\.test",region="one"\} 0/)
  assert.match(text, /meridian_region_drained\{zone="m\.test",region="one"\} 1/)
})

test('each check target\'s state: 1 up, 0 down, no series while unknown, read at scrape time', async () => {
  const m = new Metrics({ processMetrics: false })
  let view: [string, 'up' | 'down' | 'unknown'][] = [['http://a/#1', 'up'], ['http://b/#2', 'down'], ['http://c/#3', 'unknown']]
  m.targets(() => view)
  const lines = async () => (await m.render()).split('\n').filter((l) => l.startsWith('meridian_health_target_up{'))
  assert.deepEqual(await lines(), ['meridian_health_target_up{target="http://a/#1"} 1', 'meridian_health_target_up{target="http://b/#2"} 0'])
  view = [['http://a/#1', 'down']]
  assert.deepEqual(await lines(), ['meridian_health_target_up{target="http://a/#1"} 0'], 'a target gone has no series')
})

test('the series of a check target no longer checked are dropped; the others stay', async () => {
  const m = new Metrics({ processMetrics: false })
  for (const target of ['http://gone/#1', 'http://kept/#2']) {
    m.checkResult(target, true, 12)
    m.checkResult(target, false, 2000)
    m.stateChange(target, 'up')
  }
  m.forgetTargets(['http://gone/#1', 'http://never-seen/#3'])
  const text = await m.render()
  assert.doesNotMatch(text, /gone/)
  assert.equal(text.split('\n').filter((l) => l.includes('target="http://kept/#2"')).length, 3 + 14, 'ok, fail, up, and the histogram (11 buckets, +Inf, sum, count)')
})

test('a zone removed from the set takes its query and answer series with it; added again, it counts from 0', async () => {
  const o = { file: 'o.yaml', text: 'origin: o.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\nrecords: { ns1: { A: 192.0.2.54 } }\n' }
  const other = buildZoneSet([o], () => 1, 2)
  const both = buildZoneSet([{ file: 'm.yaml', text: zoneText }, o], () => 1, 3)
  const m = new Metrics({ processMetrics: false })
  let current = both
  const h = new DnsHandler(() => current, pino({ level: 'silent' }), {}, undefined, m)
  const ask = () => {
    h.handle(query('www.m.test', 1), 'udp', '192.0.2.9')
    h.handle(query('nope.m.test', 1), 'udp', '192.0.2.9')
    h.handle(query('ns1.o.test', 1), 'udp', '192.0.2.9')
  }
  // Twice each, the second from the answer cache (its entries hold the tallies).
  ask()
  ask()
  await m.render()
  ask() // counted, not folded yet: dropped with the zone
  assert.deepEqual(removedSeries(both, other), [{ zone: 'm.test' }])
  assert.deepEqual(removedSeries(other, both), [])
  current = other
  m.forgetSeries(removedSeries(both, other))
  const gone = await m.render()
  assert.doesNotMatch(gone, /zone="m\.test"/)
  assert.match(gone, /^meridian_dns_queries_total\{zone="o\.test",qtype="A",rcode="NOERROR"\} 3$/m)
  // The name is no longer Meridian's: counted under no zone.
  h.handle(query('www.m.test', 1), 'udp', '192.0.2.9')
  assert.doesNotMatch(await m.render(), /zone="m\.test"/)
  // Added again: a new set, as every reload and change builds (the cache's entries of the old one stay invalid).
  current = buildZoneSet([{ file: 'm.yaml', text: zoneText }, o], () => 1, 4)
  ask()
  ask()
  const back = await m.render()
  assert.match(back, /^meridian_dns_queries_total\{zone="m\.test",qtype="A",rcode="NOERROR"\} 2$/m)
  assert.match(back, /^meridian_dns_queries_total\{zone="m\.test",qtype="A",rcode="NXDOMAIN"\} 2$/m)
  assert.match(back, /^meridian_dns_answers_total\{zone="m\.test",service="www\.m\.test",region="one"\} 2$/m)
  assert.match(back, /^meridian_dns_queries_total\{zone="o\.test",qtype="A",rcode="NOERROR"\} 5$/m)
})

test('a service or a region removed from a zone that stays takes its answer series with it; added again, it counts from 0', async () => {
  const zone = (services: string, regions = 'one: { location: { lat: 0, lon: 0 }, vips: [192.0.2.1] }\n  two: { location: { lat: 0, lon: 90 }, vips: [192.0.2.2] }') =>
    `origin: s.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\nrecords: { ns1: { A: 192.0.2.53 } }\nregions:\n  ${regions}\nservices:\n${services}`
  const www = '  www: { regions: [one] }\n'
  const api = '  api: { regions: [two] }\n'
  let gen = 10
  const build = (text: string) => buildZoneSet([{ file: 's.yaml', text }], () => 1, gen++)
  const full = build(zone(www + api))
  const m = new Metrics({ processMetrics: false })
  let current = full
  const h = new DnsHandler(() => current, pino({ level: 'silent' }), {}, undefined, m)
  const ask = (name: string, times: number) => {
    for (let i = 0; i < times; i++) h.handle(query(`${name}.s.test`, 1), 'udp', '192.0.2.9')
  }
  const swap = (next: typeof full) => {
    const removed = removedSeries(current, next)
    current = next
    m.forgetSeries(removed)
    return removed
  }
  const series = async () => (await m.render()).split('\n').filter((l) => l.startsWith('meridian_dns_answers_total{'))
  // Twice or more each: from the second on, from the answer cache (its entries hold the tallies).
  ask('www', 3)
  ask('api', 2)
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3', 'meridian_dns_answers_total{zone="s.test",service="api.s.test",region="two"} 2'])
  ask('api', 1) // counted, not folded yet: dropped with the service

  assert.deepEqual(swap(build(zone(www))), [{ zone: 's.test', service: 'api.s.test' }])
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3'], 'the service gone, the other kept')
  ask('api', 2) // no longer a service: no answer counted
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3'])
  assert.match(await m.render(), /^meridian_dns_queries_total\{zone="s\.test",qtype="A",rcode="NOERROR"\} 6$/m, 'the zone\'s query series are kept')

  assert.deepEqual(swap(build(zone(www + api))), [])
  ask('api', 2)
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3', 'meridian_dns_answers_total{zone="s.test",service="api.s.test",region="two"} 2'], 'created again: from 0')

  // Region two removed (api moved to one first, in the same change): the series answered by it go.
  assert.deepEqual(swap(build(zone(www + '  api: { regions: [one] }\n', 'one: { location: { lat: 0, lon: 0 }, vips: [192.0.2.1] }'))), [{ zone: 's.test', region: 'two' }])
  ask('api', 1)
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3', 'meridian_dns_answers_total{zone="s.test",service="api.s.test",region="one"} 1'])

  // Region two back, and api moved to it: api's series for one goes (the zone keeps region one,
  // and www's series for it stays).
  assert.deepEqual(swap(build(zone(www + api))), [{ zone: 's.test', service: 'api.s.test', region: 'one' }])
  ask('api', 2)
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3', 'meridian_dns_answers_total{zone="s.test",service="api.s.test",region="two"} 2'])
  // Moved back to one: from 0 there, and two's series goes.
  assert.deepEqual(swap(build(zone(www + '  api: { regions: [one] }\n'))), [{ zone: 's.test', service: 'api.s.test', region: 'two' }])
  ask('api', 1)
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3', 'meridian_dns_answers_total{zone="s.test",service="api.s.test",region="one"} 1'])
  // A service edited without dropping a region (another TTL) keeps its series.
  assert.deepEqual(swap(build(zone(www + '  api: { regions: [one], ttl: 20 }\n'))), [])
  ask('api', 1)
  assert.deepEqual(await series(), ['meridian_dns_answers_total{zone="s.test",service="www.s.test",region="one"} 3', 'meridian_dns_answers_total{zone="s.test",service="api.s.test",region="one"} 2'])
})

/** Resolves after the next garbage collection has been reported to perf_hooks' observers (allocating until there is one). */
function nextCollection(): Promise<void> {
  return new Promise((resolve) => {
    let seen = false
    const obs = new PerformanceObserver(() => {
      obs.disconnect()
      seen = true
      setImmediate(resolve)
    })
    obs.observe({ entryTypes: ['gc'] })
    const junk: object[] = []
    const churn = () => {
      for (let i = 0; i < 100_000; i++) junk[i & 1023] = { i }
      if (!seen) setImmediate(churn)
    }
    churn()
  })
}

test("process metrics are prom-client's defaults without the per-GC histogram, which --gc-metrics adds", async () => {
  const names = async (r: Registry) => (await r.getMetricsAsJSON()).map((m) => m.name).sort()
  const defaults = new Registry()
  collectDefaultMetrics({ register: defaults, prefix: 'meridian_' })
  // Less the gauges prom-client names like counters.
  const all = (await names(defaults)).filter((n) => !DROPPED_PROCESS_METRICS.includes(n))
  assert.equal(all.length, (await names(defaults)).length - 3)
  const gc = 'meridian_nodejs_gc_duration_seconds'
  assert.ok(all.includes(gc) && all.includes('meridian_process_resident_memory_bytes') && all.includes('meridian_nodejs_eventloop_lag_p99_seconds'))
  const dns = new Set(await names(new Metrics({ processMetrics: false }).registry))
  const processOnly = async (m: Metrics) => (await names(m.registry)).filter((n) => !dns.has(n))
  assert.deepEqual(await processOnly(new Metrics()), all.filter((n) => n !== gc))
  const withGc = new Metrics({ gcMetrics: true })
  assert.deepEqual(await processOnly(withGc), all)
  await nextCollection()
  assert.match(await withGc.render(), /^meridian_nodejs_gc_duration_seconds_count\{kind="\w+"\} [1-9]/m)
})


test('/metrics of one process passes a strict exposition parser: process metrics as meridian_process_* and meridian_nodejs_*, no gauge named _total', async () => {
  const m = new Metrics({ gcMetrics: true })
  await nextCollection()
  const families = parseExposition(await m.render())
  const names = [...families.keys()]
  assert.ok(names.includes('meridian_process_resident_memory_bytes'), 'was meridian_process_process_resident_memory_bytes')
  assert.ok(names.includes('meridian_process_cpu_seconds_total'))
  assert.ok(names.includes('meridian_nodejs_eventloop_lag_p99_seconds'), 'was meridian_process_nodejs_eventloop_lag_p99_seconds')
  assert.ok(names.includes('meridian_nodejs_active_handles'))
  assert.deepEqual(names.filter((n) => n.startsWith('meridian_process_process_') || n.startsWith('meridian_process_nodejs_')), [])
  for (const n of DROPPED_PROCESS_METRICS) assert.ok(!names.includes(n), n)
  for (const f of families.values()) assert.match(f.name, /^meridian_(dns|health|region|config|process|nodejs)_[a-z0-9_]+$/, f.name)
})
