/**
 * What the DNS workers get over IPC (src/cluster/): the zone set survives Node's `advanced`
 * serialization whole (Maps, Buffers, nested plain objects), anything that would not is named
 * before it is sent, the restart backoff, and the /metrics merge of the control process and its workers.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { deserialize, serialize } from 'node:v8'
import { Counter, Registry } from 'prom-client'
import { foldRetired, mergeMetrics, SeriesRemovals, withoutSeries, type MetricsJson } from '../../src/cluster/metrics.js'
import { DNS_V8_FLAGS, restartDelay, unsetDnsV8Flags, workerExecArgv } from '../../src/cluster/primary.js'
import { cloneProblem } from '../../src/cluster/protocol.js'
import { buildZoneSet } from '../../src/config/load.js'
import { countryLocation, placeLocation } from '../../src/geo/index.js'
import { Metrics, RemovedSeries } from '../../src/metrics/index.js'
import { servedOnly } from '../../src/model/types.js'
import { SerialBook } from '../../src/store/serials.js'
import { docsYaml } from '../helpers/docs.js'
import { ROOT } from '../helpers/server.js'

const docsExample = () => docsYaml('zones.md', 'Complete example')

async function zoneSet() {
  const demo = await readFile(path.join(ROOT, 'zones', 'gslb.example.test.yaml'), 'utf8')
  const sources = [
    { file: 'shop.example.com.yaml', text: await docsExample() },
    { file: 'gslb.example.test.yaml', text: demo },
  ]
  return buildZoneSet(sources, new SerialBook(undefined).plan().serialOf, 7, { countryPoint: countryLocation, cityPoint: placeLocation })
}

describe('the zone set over IPC', () => {
  test('the docs example and the demo zone are plain data and come back equal from the structured clone', async () => {
    const set = await zoneSet()
    assert.equal(cloneProblem(set), null)
    const back = deserialize(serialize(set)) as typeof set
    assert.deepStrictEqual(back, set)
    // TXT character-strings stay Buffers (not plain Uint8Arrays): the encoder writes them as they are.
    const txt = back.zones.get('shop.example.com')!.nodes.get('shop.example.com')!.rrsets.get(16)!
    assert.ok(txt.length === 2 && txt.every((rr) => rr.data!.every((b) => Buffer.isBuffer(b))))
    assert.ok(back.zones.get('gslb.example.test')!.services.size > 0 && back.checks.size > 0)
  })

  test('DNS workers get each zone without its definition (the admin API reads it, DNS never does): the rest the same values, far fewer octets', async () => {
    const set = await zoneSet()
    const served = servedOnly(set)
    assert.equal(cloneProblem(served), null)
    assert.equal(served.generation, set.generation)
    assert.equal(served.checks, set.checks)
    assert.deepEqual([...served.zones.keys()], [...set.zones.keys()])
    for (const [origin, zone] of set.zones) {
      const s = served.zones.get(origin)!
      assert.equal('definition' in s, false)
      assert.deepEqual(Object.keys(s), Object.keys(zone).filter((k) => k !== 'definition'))
      for (const k of Object.keys(s) as (keyof typeof s)[]) assert.equal(s[k], zone[k], k)
    }
    // The store's set is left as it was.
    assert.ok([...set.zones.values()].every((z) => z.definition.origin === z.origin))
    const octets = serialize(served).length
    assert.ok(octets < 0.75 * serialize(set).length, `${octets} of ${serialize(set).length} octets`)
  })

  test('what the structured clone would change or refuse is named with its path', () => {
    class Thing {
      x = 1
    }
    assert.equal(cloneProblem({ a: [1, { b: new Map([['k', { c: Buffer.from('x') }]]) }] }), null)
    assert.match(cloneProblem({ a: [1, { b: new Map([['k', { c: new Thing() }]]) }] })!, /^\.a\[1\]\.b\.get\("k"\)\.c is an instance of Thing/)
    assert.match(cloneProblem({ zones: new Map([['z', { f: () => 1 }]]) })!, /^\.zones\.get\("z"\)\.f is a function$/)
    assert.match(cloneProblem({ s: new Set([Symbol('x')]) })!, /is a symbol/)
  })
})

describe('worker restarts', () => {
  test('back off from 100 ms, doubling per death within a minute, at most 30 s', () => {
    assert.deepEqual([1, 2, 3, 4, 9, 10, 20].map(restartDelay), [100, 200, 400, 800, 25600, 30000, 30000])
  })
})

describe('/metrics of a control process and its workers', () => {
  const scrape = (text: string, line: string) => text.split('\n').filter((l) => l.startsWith(line))
  test('DNS counters are summed over the workers; the control process metrics appear once, as they are', async () => {
    const primary = new Metrics()
    primary.reload(true)
    const w1 = new Metrics({ processMetrics: false })
    const w2 = new Metrics({ processMetrics: false })
    for (let i = 0; i < 3; i++) w1.query('a.test', 1, 0)
    for (let i = 0; i < 4; i++) w2.query('a.test', 1, 0)
    w2.query('a.test', 28, 3)
    w1.drop()
    const json = async (m: Metrics) => (await m.registry.getMetricsAsJSON()) as unknown as MetricsJson
    const text = await mergeMetrics(await json(primary), [await json(w1), await json(w2)])
    assert.deepEqual(scrape(text, 'meridian_dns_queries_total{'), ['meridian_dns_queries_total{zone="a.test",qtype="A",rcode="NOERROR"} 7', 'meridian_dns_queries_total{zone="a.test",qtype="AAAA",rcode="NXDOMAIN"} 1'])
    assert.deepEqual(scrape(text, 'meridian_dns_dropped_total '), ['meridian_dns_dropped_total 1'])
    assert.deepEqual(scrape(text, 'meridian_config_reloads_total{'), ['meridian_config_reloads_total{result="ok"} 1', 'meridian_config_reloads_total{result="error"} 0'])
    // prom-client would omit the start time of a cluster; there is one control process: it stays.
    assert.equal(scrape(text, 'meridian_process_start_time_seconds ').length, 1)
    for (const l of text.split('\n').filter((x) => x.startsWith('# HELP '))) assert.equal(text.split(l + '\n').length, 2, `once: ${l}`)
  })

  test('a dead worker leaves its counters, not its gauges', async () => {
    const r = new Registry()
    new Counter({ name: 'c_total', help: 'c', registers: [r] }).inc(5)
    const g = new (await import('prom-client')).Gauge({ name: 'g', help: 'g', registers: [r] })
    g.set(9)
    const j = (await r.getMetricsAsJSON()) as unknown as MetricsJson
    const retired = await foldRetired(await foldRetired([], j), j)
    assert.deepEqual(
      retired.map((m) => [m.name, (m.values as { value: number }[]).map((v) => v.value)]),
      [['c_total', [10]]],
    )
  })
})

describe('a removed zone in the totals of the workers', () => {
  const json = async (m: Metrics) => (await m.registry.getMetricsAsJSON()) as unknown as MetricsJson
  const series = async (j: MetricsJson[]) => (await mergeMetrics([], j)).split('\n').filter((l) => /^meridian_dns_(queries|answers)_total\{/.test(l))

  test('withoutSeries strips the series of the zones named, of every metric, and leaves the rest as they were', async () => {
    const w = new Metrics({ processMetrics: false })
    w.query('gone.test', 1, 0)
    w.query('kept.test', 1, 0)
    w.query('', 28, 5)
    w.answer('gone.test', 'www.gone.test', 'eu')
    w.answer('kept.test', 'www.kept.test', 'eu')
    const j = await json(w)
    const stripped = withoutSeries(j, new RemovedSeries([{ zone: 'gone.test' }]))
    assert.deepEqual(await series([stripped]), [
      'meridian_dns_queries_total{zone="kept.test",qtype="A",rcode="NOERROR"} 1',
      'meridian_dns_queries_total{zone="",qtype="AAAA",rcode="REFUSED"} 1',
      'meridian_dns_answers_total{zone="kept.test",service="www.kept.test",region="eu"} 1',
    ])
    assert.equal((await series([j])).length, 5, 'the report itself is not changed')
    assert.equal(withoutSeries(j, new RemovedSeries()), j)
  })

  test('a report made before a worker applied the removal is stripped of the zone, also once it is back; later ones are not; a removal every worker reported past is forgotten', async () => {
    const r = new SeriesRemovals()
    r.removed([{ zone: 'a.test' }, { zone: 'b.test' }], 5)
    r.removed([{ zone: 'a.test' }], 8) // back at 6 or 7, removed again
    assert.deepEqual([...r.staleIn(4)], [{ zone: 'a.test' }, { zone: 'b.test' }])
    assert.deepEqual([...r.staleIn(5)], [{ zone: 'a.test' }])
    assert.deepEqual([...r.staleIn(8)], [])
    r.prune(7)
    assert.equal(r.size, 1)
    assert.deepEqual([...r.staleIn(4)], [{ zone: 'a.test' }])
    r.prune(8)
    assert.equal(r.size, 0)
  })

  test('withoutSeries strips the series of a service or a region removed from a zone that stays, and only those', async () => {
    const w = new Metrics({ processMetrics: false })
    w.query('z.test', 1, 0)
    w.answer('z.test', 'www.z.test', 'eu')
    w.answer('z.test', 'www.z.test', 'us')
    w.answer('z.test', 'api.z.test', 'eu')
    w.answer('other.test', 'api.other.test', 'us')
    const j = await json(w)
    assert.deepEqual(await series([withoutSeries(j, new RemovedSeries([{ zone: 'z.test', service: 'www.z.test' }]))]), [
      'meridian_dns_queries_total{zone="z.test",qtype="A",rcode="NOERROR"} 1',
      'meridian_dns_answers_total{zone="z.test",service="api.z.test",region="eu"} 1',
      'meridian_dns_answers_total{zone="other.test",service="api.other.test",region="us"} 1',
    ])
    assert.deepEqual(await series([withoutSeries(j, new RemovedSeries([{ zone: 'z.test', region: 'us' }]))]), [
      'meridian_dns_queries_total{zone="z.test",qtype="A",rcode="NOERROR"} 1',
      'meridian_dns_answers_total{zone="z.test",service="www.z.test",region="eu"} 1',
      'meridian_dns_answers_total{zone="z.test",service="api.z.test",region="eu"} 1',
      'meridian_dns_answers_total{zone="other.test",service="api.other.test",region="us"} 1',
    ])
    const r = new SeriesRemovals()
    r.removed([{ zone: 'z.test', service: 'www.z.test' }, { zone: 'z.test', region: 'us' }], 3)
    assert.deepEqual([...r.staleIn(2)], [{ zone: 'z.test', service: 'www.z.test' }, { zone: 'z.test', region: 'us' }], 'a service and a region of one zone are two removals')
  })

  test('a dead worker\'s kept counters lose the zone too, and a fold of them with the zone gives nothing back', async () => {
    const w = new Metrics({ processMetrics: false })
    for (let i = 0; i < 3; i++) w.query('gone.test', 1, 0)
    w.query('kept.test', 1, 0)
    const retired = await foldRetired([], await json(w))
    assert.deepEqual(await series([withoutSeries(retired, new RemovedSeries([{ zone: 'gone.test' }]))]), ['meridian_dns_queries_total{zone="kept.test",qtype="A",rcode="NOERROR"} 1'])
  })
})

describe('workerExecArgv', () => {
  test('adds the DNS V8 flags to the parent\'s node arguments', () => {
    assert.deepEqual(workerExecArgv([], undefined), [...DNS_V8_FLAGS])
    assert.deepEqual(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', ...DNS_V8_FLAGS])
  })
  test('keeps a flag the operator set, in node\'s arguments or NODE_OPTIONS, in either spelling, and adds the others', () => {
    assert.deepEqual(workerExecArgv(['--max-semi-space-size=16'], undefined), ['--max-semi-space-size=16', '--heap-growing-percent=50'])
    assert.deepEqual(workerExecArgv(['--max_semi_space_size', '8'], undefined), ['--max_semi_space_size', '8', '--heap-growing-percent=50'])
    assert.deepEqual(workerExecArgv(['--heap_growing_percent=25'], '--trace-gc --max-semi-space-size=2'), ['--heap_growing_percent=25'])
    assert.deepEqual(unsetDnsV8Flags([], '--max-semi-space-size=2'), ['--heap-growing-percent=50'])
    assert.deepEqual(unsetDnsV8Flags([...DNS_V8_FLAGS], undefined), [])
  })
  test('the meridian executable\'s #! line gives node exactly these flags, and npm start runs the executable', async () => {
    const first = (await readFile(path.join(ROOT, 'src', 'cli.ts'), 'utf8')).split('\n')[0]!
    assert.equal(first, `#!/usr/bin/env -S node ${DNS_V8_FLAGS.join(' ')}`)
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> }
    assert.equal(pkg.bin.meridian, 'dist/src/cli.js')
    assert.match(pkg.scripts.start!, /^\.\/dist\/src\/cli\.js demo/)
    assert.match(pkg.scripts.build!, /chmod \+x dist\/src\/cli\.js/)
  })
})
