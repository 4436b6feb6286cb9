import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { ClientLocation, GeoPoint, Region, Service, VipHealth } from '../../src/model/gslb.js'
import { fibreRttMs, greatCircleKm } from '../../src/select/distance.js'
import { hash53, rendezvousScore } from '../../src/select/hash.js'
import { select, type SelectContext } from '../../src/select/select.js'
import { prng } from '../../src/sim/prng.js'
import { sameMapCheck } from '../helpers/v8.js'

const DUBLIN = { lat: 53.35, lon: -6.26 }
const VIRGINIA = { lat: 38.9, lon: -77.4 }
const TOKYO = { lat: 35.68, lon: 139.69 }
const LONDON = { lat: 51.5, lon: -0.12 }
const NEW_YORK = { lat: 40.7, lon: -74 }
const OSAKA = { lat: 34.7, lon: 135.5 }

function region(name: string, location: GeoPoint, vips: string[], extra: Partial<Region> = {}): Region {
  return { name, location, vips: vips.map((a) => ({ address: a, family: a.includes(':') ? 6 : 4, checkKey: `http://${a}/healthz` })), weight: 100, drained: false, minHealthy: 1, ...extra }
}
const REGIONS = [
  region('us-east', VIRGINIA, ['127.0.1.1', '127.0.1.2', '2001:db8:1::1']),
  region('eu-west', DUBLIN, ['127.0.2.1', '2001:db8:2::1']),
  region('ap-northeast', TOKYO, ['127.0.3.1']),
]
function service(extra: Partial<Service> = {}): Service {
  return { name: 'www.z.test', regions: REGIONS.map((r) => r.name), policy: 'geo-latency', answers: 2, ttl: 30, fallback: 'as-if-healthy', fallbackAddresses: [], fallbackIncludesDrained: false, toleranceMs: 20, fill: false, unknownAs: 'up', ...extra }
}
function client(point: GeoPoint | null, bucket = '81.2.69.0', extra: Partial<ClientLocation> = {}): ClientLocation {
  return { point, country: null, continent: null, source: 'ecs', address: bucket, family: 4, geoPrefix: 20, bucket, bucketPrefix: 24, ...extra }
}
function ctx(regions: Region[] = REGIONS, health: Record<string, VipHealth> = {}, rand = prng(1)): SelectContext {
  return { regions: new Map(regions.map((r) => [r.name, r])), health: (k) => health[k] ?? { state: 'up' }, rand }
}
const down = (...addresses: string[]) => Object.fromEntries(addresses.map((a) => [`http://${a}/healthz`, { state: 'down' as const }]))
const networks = (n: number) => Array.from({ length: n }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0`)

describe('rendezvous hash', () => {
  // Pinned values: a client network keeps its region across Meridian versions only while these stay.
  const pinned: [string, string, number, number][] = [
    ['198.51.100.0/24', 'eu-west', 7480000783054592, 16.147151958816604],
    ['2001:db8:1::/56', 'us-east', 3940381577841988, 3.6286813485799816],
    ['none', 'ap-northeast', 1949797720591172, 1.9604017911568277],
  ]
  for (const [bucket, region, hash, score] of pinned) {
    test(`${bucket} x ${region} hashes and scores as it always has`, () => {
      assert.equal(hash53(bucket, region), hash)
      assert.equal(hash53(`${bucket}|${region}`), hash, 'the pair hashes as the joined string')
      assert.equal(rendezvousScore(bucket, region, 3), score)
    })
  }
})

describe('distance model', () => {
  test('great-circle distances and the fibre RTT model', () => {
    assert.ok(Math.abs(greatCircleKm(LONDON, TOKYO) - 9560) < 96)
    assert.ok(Math.abs(greatCircleKm(LONDON, NEW_YORK) - 5570) < 56)
    assert.equal(fibreRttMs(0), 5)
    assert.equal(fibreRttMs(1000), 20)
  })
})

describe('geo-latency (default)', () => {
  test('each client gets its nearest region, with the GeoIP prefix as scope', () => {
    for (const [where, expected] of [[LONDON, 'eu-west'], [NEW_YORK, 'us-east'], [OSAKA, 'ap-northeast']] as const) {
      const s = select(service(), 4, client(where), ctx())
      assert.deepEqual(s.regions, [expected])
      assert.equal(s.scope, 20)
      assert.equal(s.ttl, 30)
      assert.equal(s.fallback, null)
    }
  })
  test('regions within the tolerance share by weight, and the scope is the affinity bucket', () => {
    const near = [region('a', LONDON, ['192.0.2.1']), region('b', { lat: 51.6, lon: -0.2 }, ['192.0.2.2'])]
    const counts: Record<string, number> = { a: 0, b: 0 }
    for (const n of networks(2000)) {
      const s = select(service({ regions: ['a', 'b'] }), 4, client(LONDON, n), ctx(near))
      counts[s.regions[0]!]!++
      assert.equal(s.scope, 24)
    }
    assert.ok(Math.abs(counts.a! / 2000 - 0.5) < 0.05, JSON.stringify(counts))
  })
  test('measured check latency moves the choice: a slow nearest region loses to a faster one', () => {
    const ms = (ewmaMs: number) => ({ state: 'up' as const, ewmaMs })
    const health = { 'http://127.0.2.1/healthz': ms(200), 'http://2001:db8:2::1/healthz': ms(200), 'http://127.0.1.1/healthz': ms(5), 'http://127.0.1.2/healthz': ms(5), 'http://2001:db8:1::1/healthz': ms(5), 'http://127.0.3.1/healthz': ms(5) }
    const s = select(service(), 4, client(LONDON), ctx(REGIONS, health))
    assert.deepEqual(s.regions, ['us-east'])
  })
  test('a region with no latency measurement counts at the mean of the measured ones, not at 0: it neither draws every unlocated client nor the nearest ones of another', () => {
    // eu-west and us-east measured at 30 ms; ap-northeast has no check at all.
    const unchecked = REGIONS.map((r) => (r.name === 'ap-northeast' ? { ...r, vips: r.vips.map((v) => ({ ...v, checkKey: null })) } : r))
    const health = Object.fromEntries(['127.0.1.1', '127.0.1.2', '2001:db8:1::1', '127.0.2.1', '2001:db8:2::1'].map((a) => [`http://${a}/healthz`, { state: 'up' as const, ewmaMs: 30 }]))
    const counts: Record<string, number> = {}
    for (const n of networks(3000)) {
      const r = select(service(), 4, client(null, n), ctx(unchecked, health)).regions[0]!
      counts[r] = (counts[r] ?? 0) + 1
    }
    // All three at 30 ms: shared by weight (equal weights), not 3,000 to the unchecked one.
    for (const name of ['us-east', 'eu-west', 'ap-northeast']) assert.ok(Math.abs(counts[name]! / 3000 - 1 / 3) < 0.05, JSON.stringify(counts))
    // A London client stays with eu-west; measured slower than the mean, a region loses to the unchecked one as to any faster one.
    assert.deepEqual(select(service(), 4, client(LONDON), ctx(unchecked, health)).regions, ['eu-west'])
    const slowEu = { ...health, 'http://127.0.2.1/healthz': { state: 'up' as const, ewmaMs: 400 }, 'http://2001:db8:2::1/healthz': { state: 'up' as const, ewmaMs: 400 } }
    assert.notDeepEqual(select(service(), 4, client(LONDON), ctx(unchecked, slowEu)).regions, ['eu-west'])
  })
  test('with no client location every region shares by weight', () => {
    const seen = new Set<string>()
    for (const n of networks(300)) seen.add(select(service(), 4, client(null, n), ctx()).regions[0]!)
    assert.deepEqual([...seen].sort(), ['ap-northeast', 'eu-west', 'us-east'])
  })
  test('an unlocated client\'s scope covers its GeoIP network, which decided that it has no location', () => {
    // GeoIP put 81.2.69.128/26 in an empty part of its tree (/26); the rest of the /24 may be located
    // and answered by distance, so an answer that rests on "no location" is not the whole /24's.
    const unlocated = client(null, '81.2.69.0', { source: 'none', geoPrefix: 26 })
    for (const policy of ['geo', 'geo-latency'] as const) {
      const s = select(service({ policy }), 4, unlocated, ctx())
      assert.equal(s.scope, 26, `${policy}: shared by hash, scope /${s.scope}`)
    }
    const one = { 'http://127.0.1.1/healthz': { state: 'up' as const, ewmaMs: 5 }, 'http://127.0.2.1/healthz': { state: 'up' as const, ewmaMs: 90 }, 'http://127.0.3.1/healthz': { state: 'up' as const, ewmaMs: 90 } }
    const s = select(service(), 4, unlocated, ctx(REGIONS, one))
    assert.deepEqual(s.regions, ['us-east'])
    assert.equal(s.scope, 26, 'the one fastest region, whatever the bucket: the GeoIP network decided')
    assert.equal(select(service(), 4, { ...unlocated, geoPrefix: 8 }, ctx(REGIONS, one)).scope, 8, 'not the /24 bucket: no hash decided')
    assert.equal(select(service({ policy: 'weighted' }), 4, unlocated, ctx()).scope, 24, 'weighted never looks at the location')
  })
  test('fill takes the next best regions up to the answer count', () => {
    const s = select(service({ fill: true, answers: 3 }), 4, client(LONDON), ctx())
    assert.equal(s.addresses[0], '127.0.2.1')
    assert.deepEqual(s.regions, ['eu-west', 'us-east'])
    assert.deepEqual([...s.addresses.slice(1)].sort(), ['127.0.1.1', '127.0.1.2'])
  })
  test('fill and fallback all never answer an address twice when regions share a VIP', () => {
    // RFC 2181 §5: no duplicate records in an RRset; and a repeat takes a place another VIP could have.
    const shared = [region('a', LONDON, ['192.0.2.1', '192.0.2.9']), region('b', VIRGINIA, ['192.0.2.3', '192.0.2.9'])]
    const rand = prng(3)
    for (let i = 0; i < 50; i++) {
      const s = select(service({ regions: ['a', 'b'], answers: 3, fill: true }), 4, client(LONDON), ctx(shared, {}, rand))
      assert.deepEqual([...s.addresses].sort(), ['192.0.2.1', '192.0.2.3', '192.0.2.9'])
      const all = select(service({ regions: ['a', 'b'], fallback: 'all' }), 4, client(LONDON), ctx(shared, down('192.0.2.1', '192.0.2.3', '192.0.2.9'), rand))
      assert.deepEqual([...all.addresses].sort(), ['192.0.2.1', '192.0.2.3', '192.0.2.9'])
    }
  })
})

describe('health, drain and standby', () => {
  test('a region whose VIPs are down is skipped; the next nearest answers', () => {
    const s = select(service(), 4, client(LONDON), ctx(REGIONS, down('127.0.2.1', '2001:db8:2::1')))
    assert.deepEqual(s.regions, ['us-east'])
    assert.equal(s.candidates.find((c) => c.region === 'eu-west')!.status, 'down')
  })
  test('a region is up while one VIP is up, unless it needs more', () => {
    assert.deepEqual(select(service(), 4, client(NEW_YORK), ctx(REGIONS, down('127.0.1.1'))).addresses, ['127.0.1.2'])
    const strict = REGIONS.map((r) => (r.name === 'us-east' ? { ...r, minHealthy: 3 } : r))
    assert.deepEqual(select(service(), 4, client(NEW_YORK), ctx(strict, down('127.0.1.1'))).regions, ['eu-west'])
  })
  test('a drained region is never answered, even when it is the nearest and healthy', () => {
    const drained = REGIONS.map((r) => (r.name === 'eu-west' ? { ...r, drained: true } : r))
    for (const n of networks(200)) assert.notEqual(select(service(), 4, client(LONDON, n), ctx(drained)).regions[0], 'eu-west')
  })
  test('a weight-0 region is used only when no weighted region is usable', () => {
    const standby = REGIONS.map((r) => (r.name === 'eu-west' ? { ...r, weight: 0 } : r))
    assert.deepEqual(select(service(), 4, client(LONDON), ctx(standby)).regions, ['us-east'])
    const others = down('127.0.1.1', '127.0.1.2', '2001:db8:1::1', '127.0.3.1')
    assert.deepEqual(select(service(), 4, client(LONDON), ctx(standby, others)).regions, ['eu-west'])
  })
  test('unknown health counts as up by default and as down when the service says so', () => {
    const unknown = { 'http://127.0.2.1/healthz': { state: 'unknown' as const } }
    assert.deepEqual(select(service(), 4, client(LONDON), ctx(REGIONS, unknown)).regions, ['eu-west'])
    assert.deepEqual(select(service({ unknownAs: 'down' }), 4, client(LONDON), ctx(REGIONS, unknown)).regions, ['us-east'])
  })
  test('AAAA answers come only from regions with IPv6 VIPs', () => {
    const s = select(service(), 6, client(OSAKA), ctx())
    assert.notEqual(s.regions[0], 'ap-northeast')
    assert.ok(s.addresses.every((a) => a.includes(':')))
    assert.equal(s.candidates.find((c) => c.region === 'ap-northeast')!.status, 'no-address-of-family')
  })
  test('AAAA is NODATA, not a fallback, when regions are up but none has a healthy IPv6 VIP', () => {
    // Happy Eyeballs clients prefer AAAA: a fallback there (the sorry server, a dead VIP) would take
    // them from the healthy IPv4 pools, which the fallback is not for ("when no region is healthy").
    const v4only = [region('a', LONDON, ['192.0.2.1']), region('b', VIRGINIA, ['192.0.2.3'])]
    const svc = (fallback: Service['fallback']) => service({ regions: ['a', 'b'], fallback, fallbackAddresses: ['198.51.100.9', '2001:db8::99'] })
    for (const fallback of ['as-if-healthy', 'all', 'static', 'none'] as const) {
      const s = select(svc(fallback), 6, client(LONDON), ctx(v4only))
      assert.deepEqual(s.addresses, [], fallback)
      assert.equal(s.fallback, null, fallback)
      assert.equal(s.scope, 0)
    }
    const mixed = [region('a', LONDON, ['192.0.2.1', '2001:db8::1']), region('b', VIRGINIA, ['192.0.2.3'])]
    const s = select(svc('as-if-healthy'), 6, client(LONDON), ctx(mixed, down('2001:db8::1')))
    assert.deepEqual(s.addresses, [], 'not the IPv6 VIP whose check is down')
    assert.deepEqual(select(svc('as-if-healthy'), 4, client(LONDON), ctx(mixed, down('2001:db8::1'))).addresses, ['192.0.2.1'])
    // When the IPv4 side is down too, no region is healthy: the fallback applies to both families.
    const s2 = select(svc('static'), 6, client(LONDON), ctx(v4only, down('192.0.2.1', '192.0.2.3')))
    assert.deepEqual(s2.addresses, ['2001:db8::99'])
    assert.equal(s2.fallback, 'static')
  })
})

describe('fallback when no region is healthy', () => {
  const allDown = down('127.0.1.1', '127.0.1.2', '2001:db8:1::1', '127.0.2.1', '2001:db8:2::1', '127.0.3.1')
  test('as-if-healthy: a UK client still gets eu-west', () => {
    const s = select(service(), 4, client(LONDON), ctx(REGIONS, allDown))
    assert.deepEqual(s.regions, ['eu-west'])
    assert.equal(s.fallback, 'as-if-healthy')
  })
  test('as-if-healthy answers a region\'s VIPs that are up, when it has any: a region down by minHealthy does not hand out its dead VIPs', () => {
    // us-east needs 2 healthy VIPs; 127.0.1.2 is up, 127.0.1.1 and the IPv6 one down. The others are down.
    const strict = REGIONS.map((r) => (r.name === 'us-east' ? { ...r, minHealthy: 2 } : r))
    const health = down('127.0.1.1', '2001:db8:1::1', '127.0.2.1', '2001:db8:2::1', '127.0.3.1')
    const svc = service({ answers: 2 })
    for (const seed of [1, 2, 3, 4]) {
      const s = select(svc, 4, client(NEW_YORK), ctx(strict, health, prng(seed)))
      assert.equal(s.fallback, 'as-if-healthy')
      assert.deepEqual([s.regions, s.addresses], [['us-east'], ['127.0.1.2']], `seed ${seed}: only the VIP that is up`)
    }
    // With none of the family up (IPv6), all of them, as before.
    assert.deepEqual(select(svc, 6, client(NEW_YORK), ctx(strict, health)).addresses, ['2001:db8:1::1'])
    // And with every VIP of the region down, every one of them (checks may all be wrong at once).
    const allOfUs = select(svc, 4, client(NEW_YORK), ctx(strict, { ...health, ...down('127.0.1.2') }))
    assert.deepEqual([...allOfUs.addresses].sort(), ['127.0.1.1', '127.0.1.2'])
  })
  test('all: every non-drained VIP', () => {
    const drained = REGIONS.map((r) => (r.name === 'ap-northeast' ? { ...r, drained: true } : r))
    const s = select(service({ fallback: 'all' }), 4, client(LONDON), ctx(drained, allDown))
    assert.deepEqual([...s.addresses].sort(), ['127.0.1.1', '127.0.1.2', '127.0.2.1'])
    const withDrained = select(service({ fallback: 'all', fallbackIncludesDrained: true }), 4, client(LONDON), ctx(drained, allDown))
    assert.equal(withDrained.addresses.length, 4)
  })
  test('static: the configured addresses of the family', () => {
    const svc = service({ fallback: 'static', fallbackAddresses: ['192.0.2.99', '2001:db8::99'] })
    assert.deepEqual(select(svc, 4, client(LONDON), ctx(REGIONS, allDown)).addresses, ['192.0.2.99'])
    assert.deepEqual(select(svc, 6, client(LONDON), ctx(REGIONS, allDown)).addresses, ['2001:db8::99'])
  })
  test('the trace of a fallback marks the regions it answered as chosen', () => {
    const asIf = select(service(), 4, client(LONDON), ctx(REGIONS, allDown))
    assert.deepEqual(asIf.candidates.filter((c) => c.chosen).map((c) => c.region), ['eu-west'])
    const all = select(service({ fallback: 'all' }), 4, client(LONDON), ctx(REGIONS, allDown))
    assert.deepEqual(all.candidates.filter((c) => c.chosen).map((c) => c.region), all.regions)
  })
  test('none: no address (NODATA)', () => {
    const s = select(service({ fallback: 'none' }), 4, client(LONDON), ctx(REGIONS, allDown))
    assert.deepEqual(s.addresses, [])
    assert.equal(s.fallback, 'none')
  })
})

describe('weighted, affinity, failover and rotation', () => {
  const W = [region('a', LONDON, ['192.0.2.1'], { weight: 500 }), region('b', TOKYO, ['192.0.2.2'], { weight: 300 }), region('c', VIRGINIA, ['192.0.2.3'], { weight: 200 })]
  const wsvc = service({ policy: 'weighted', regions: ['a', 'b', 'c'] })
  test('over 10,000 client networks the shares are within 3 points of the weights', () => {
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
    for (const n of networks(10000)) counts[select(wsvc, 4, client(LONDON, n), ctx(W)).regions[0]!]!++
    assert.ok(Math.abs(counts.a! / 100 - 50) <= 3, JSON.stringify(counts))
    assert.ok(Math.abs(counts.b! / 100 - 30) <= 3, JSON.stringify(counts))
    assert.ok(Math.abs(counts.c! / 100 - 20) <= 3, JSON.stringify(counts))
  })
  test('a client network keeps its region while nothing changes, and the scope is its bucket', () => {
    for (const n of networks(100)) {
      const a = select(wsvc, 4, client(LONDON, n), ctx(W, {}, prng(1)))
      const b = select(wsvc, 4, client(LONDON, n), ctx(W, {}, prng(99)))
      assert.deepEqual(a.regions, b.regions)
      assert.equal(a.scope, 24)
    }
  })
  test('when one of three equal regions fails, only its own networks move (its share + 2 points at most)', () => {
    const E = W.map((r) => ({ ...r, weight: 100 }))
    const before = new Map(networks(10000).map((n) => [n, select(wsvc, 4, client(LONDON, n), ctx(E)).regions[0]]))
    let moved = 0
    let owned = 0
    for (const [n, was] of before) {
      const now = select(wsvc, 4, client(LONDON, n), ctx(E, down('192.0.2.2'))).regions[0]
      if (was === 'b') owned++
      if (now !== was) moved++
    }
    assert.equal(moved, owned, 'exactly the failed region\'s networks moved')
    assert.ok(moved / 100 <= 100 / 3 + 2, `${moved / 100}% moved`)
  })
  test('failover: the first healthy region in configured order wins, whoever asks, scope 0', () => {
    const f = service({ policy: 'failover', regions: ['ap-northeast', 'us-east', 'eu-west'] })
    assert.deepEqual(select(f, 4, client(LONDON), ctx()).regions, ['ap-northeast'])
    const s = select(f, 4, client(LONDON), ctx(REGIONS, down('127.0.3.1')))
    assert.deepEqual(s.regions, ['us-east'])
    assert.equal(s.scope, 0)
  })
  test('geo: nearest first by distance', () => {
    assert.deepEqual(select(service({ policy: 'geo' }), 4, client(OSAKA), ctx()).regions, ['ap-northeast'])
  })
  test('geo: regions equally near (placed by the same country) share by weight, with the longer of the GeoIP prefix and the bucket as scope', () => {
    const twins = [region('us-a', VIRGINIA, ['192.0.2.1']), region('us-b', VIRGINIA, ['192.0.2.2'], { weight: 300 }), region('eu', DUBLIN, ['192.0.2.3'])]
    const counts: Record<string, number> = {}
    for (const n of networks(4000)) {
      const s = select(service({ policy: 'geo', regions: ['us-a', 'us-b', 'eu'] }), 4, client(NEW_YORK, n), ctx(twins))
      counts[s.regions[0]!] = (counts[s.regions[0]!] ?? 0) + 1
      assert.equal(s.scope, 24)
      assert.equal(s.dependsOn, 'both')
    }
    // By weight, 100:300; never the farther region.
    assert.equal(counts.eu, undefined)
    assert.ok(Math.abs(counts['us-b']! / 4000 - 0.75) < 0.03, JSON.stringify(counts))
    // A client nearer one of them is not shared.
    const london = select(service({ policy: 'geo', regions: ['us-a', 'us-b', 'eu'] }), 4, client(LONDON), ctx(twins))
    assert.deepEqual([london.regions, london.dependsOn, london.scope], [['eu'], 'location', 20])
  })
  test('record order rotates across queries so clients spread over a region\'s VIPs', () => {
    const rand = prng(7)
    const first: Record<string, number> = {}
    for (let i = 0; i < 1000; i++) {
      const s = select(service(), 4, client(NEW_YORK), ctx(REGIONS, {}, rand))
      assert.equal(s.addresses.length, 2)
      first[s.addresses[0]!] = (first[s.addresses[0]!] ?? 0) + 1
    }
    assert.ok(first['127.0.1.1']! > 400 && first['127.0.1.2']! > 400, JSON.stringify(first))
  })
})

test('every selection has one hidden class, by any policy and any fallback', () => {
  // The full path (responder, answer cache) reads every selection; selections of several hidden
  // classes made those reads megamorphic (session 10).
  const sameMap = sameMapCheck()
  const allDown = down(...REGIONS.flatMap((r) => r.vips.map((v) => v.address)))
  const made = [
    ...(['geo-latency', 'geo', 'weighted', 'failover'] as const).map((policy) => select(service({ policy }), 4, client(LONDON), ctx())),
    select(service(), 6, client(null), ctx()),
    ...(['as-if-healthy', 'all', 'static', 'none'] as const).map((fallback) => select(service({ fallback, fallbackAddresses: ['192.0.2.1'] }), 4, client(TOKYO), ctx(REGIONS, allDown))),
  ]
  assert.deepEqual(made.map((s) => s.fallback), [null, null, null, null, null, 'as-if-healthy', 'all', 'static', 'none'])
  for (const s of made) assert.ok(sameMap(s, made[0]!), `a selection (fallback ${s.fallback}) with a hidden class of its own`)
})
