import assert from 'node:assert/strict'
import { test } from 'node:test'
import { locateClient, type GeoAnswer } from '../../src/dns/client.js'
import { maskAddress, parseAddress } from '../../src/model/address.js'
import { select } from '../../src/select/select.js'
import { parseQuery, type Query } from '../../src/dns/wire.js'

function query(ecs?: { family: 1 | 2; prefix: number; bytes: number[] }): Query {
  const q = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, ecs ? 1 : 0, 1, 0x61, 1, 0x74, 0, 0, 1, 0, 1]
  if (ecs) {
    const opt = [0, 8, ...[0, 4 + ecs.bytes.length], 0, ecs.family, ecs.prefix, 0, ...ecs.bytes]
    q.push(0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, opt.length, ...opt)
  }
  const r = parseQuery(Buffer.from(q))
  assert.equal(r.kind, 'query')
  return (r as { query: Query }).query
}
const gb: GeoAnswer = { country: 'GB', continent: 'EU', lat: 51.5, lon: -0.1, source: 'city', networkPrefix: 20 }
const none: GeoAnswer = { country: undefined, continent: undefined, lat: undefined, lon: undefined, source: 'none', networkPrefix: 8 }

test('addresses are masked to a prefix in both families', () => {
  assert.equal(maskAddress('81.2.69.142', 24), '81.2.69.0')
  assert.equal(maskAddress('81.2.69.142', 20), '81.2.64.0')
  assert.equal(maskAddress('2001:db8:abcd:12ff::1', 56), '2001:db8:abcd:1200:0:0:0:0')
  assert.equal(maskAddress('::ffff:1.2.3.4', 128), '0:0:0:0:0:ffff:102:304')
})

test('the ECS address locates the client, with its /24 as the affinity bucket and the GeoIP prefix capped by the source', () => {
  const seen: [string, number | undefined][] = []
  const c = locateClient(query({ family: 1, prefix: 24, bytes: [81, 2, 69] }), '127.0.0.1', (a, p) => (seen.push([a, p]), gb), null)
  assert.deepEqual(seen, [['81.2.69.0', 24]])
  assert.equal(c.source, 'ecs')
  assert.deepEqual(c.point, { lat: 51.5, lon: -0.1 })
  assert.equal(c.bucket, '81.2.69.0/24')
  assert.equal(c.geoPrefix, 20)
  const narrow = locateClient(query({ family: 1, prefix: 16, bytes: [81, 2] }), '127.0.0.1', () => gb, null)
  assert.equal(narrow.bucketPrefix, 16, 'the bucket is never longer than the source prefix')
  assert.equal(narrow.geoPrefix, 16)
})

test('without ECS the resolver address is used; a /56 bucket for IPv6', () => {
  const c = locateClient(query(), '2001:db8:1:2ff::53', () => gb, null)
  assert.equal(c.source, 'resolver')
  assert.equal(c.bucket, '2001:db8:1:200:0:0:0:0/56')
  assert.equal(locateClient(query(), '::ffff:81.2.69.142', () => gb, null).bucket, '81.2.69.0/24')
})

test('a private or unknown address takes the zone default location, or none', () => {
  const d = locateClient(query(), '10.1.2.3', () => none, { lat: 1, lon: 2 })
  assert.equal(d.source, 'default')
  assert.deepEqual(d.point, { lat: 1, lon: 2 })
  assert.equal(d.geoPrefix, 8)
  const n = locateClient(query(), '10.1.2.3', () => none, null)
  assert.equal(n.source, 'none')
  assert.equal(n.point, null)
})

test('ECS source prefix 0 means no location from the address', () => {
  let called = false
  const c = locateClient(query({ family: 1, prefix: 0, bytes: [] }), '127.0.0.1', () => ((called = true), gb), null)
  assert.equal(called, false)
  assert.equal(c.source, 'none')
  assert.equal(c.bucketPrefix, 0)
})

test('an IPv4-mapped address in an IPv6 ECS option keeps its GeoIP prefix in IPv6 terms, so the scope never covers other IPv6 clients', async () => {
  const { GeoDb } = await import('../../src/geo/index.js')
  const db = await GeoDb.open(new URL('../../../geodb/test/meridian-test.mmdb', import.meta.url).pathname)
  try {
    // ::ffff:192.0.2.0/120 is in the test database's London /26 (192.0.2.0/26 = ::ffff:192.0.2.0/122).
    const mapped = locateClient(query({ family: 2, prefix: 120, bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2] }), '127.0.0.1', db.locate.bind(db), null)
    assert.equal(mapped.country, 'GB')
    assert.equal(mapped.geoPrefix, 120, 'capped by the source prefix /120, not the IPv4 /26 read as an IPv6 /26')
    // ::ffff:0:0/96 reveals no IPv4 address: nothing located, and the scope is the /96 the client gave, not ::/0.
    const all = locateClient(query({ family: 2, prefix: 96, bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] }), '127.0.0.1', db.locate.bind(db), null)
    assert.equal(all.source, 'none')
    assert.equal(all.geoPrefix, 96)
    // 10.0.0.0/8 as ::ffff:10.0.0.0/104: the private block, in IPv6 terms.
    const priv = locateClient(query({ family: 2, prefix: 128, bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3] }), '127.0.0.1', db.locate.bind(db), null)
    assert.equal(priv.geoPrefix, 104)
  } finally {
    db.close()
  }
})

/** An IPv6 ECS option for `address`/`prefix` (the option's octets: only the prefix's, as resolvers send). */
function ecs6(address: string, prefix: number): Query {
  const bytes = [...parseAddress(address)!.bytes].slice(0, Math.ceil(prefix / 8))
  return query({ family: 2, prefix, bytes })
}

test('IPv4-mapped ECS networks are bucketed, hashed and scoped as the IPv4 /24 they are, not as one IPv6 /56', () => {
  const buckets = new Set<string>()
  let sameRegion = 0
  const weighted = selectWeighted()
  for (let i = 0; i < 512; i++) {
    const v4 = `10.${i >> 8}.${i & 255}.0`
    const mapped = locateClient(ecs6(`::ffff:${v4}`, 120), '127.0.0.1', () => none, null)
    const plain = locateClient(query({ family: 1, prefix: 24, bytes: v4.split('.').slice(0, 3).map(Number) }), '127.0.0.1', () => none, null)
    assert.equal(mapped.bucket, `${v4}/24`)
    assert.equal(mapped.bucket, plain.bucket, 'the same bucket as the IPv4 /24')
    assert.equal(mapped.bucketPrefix, 120, 'in IPv6 terms: ::ffff:0:0/96 plus the /24')
    assert.equal(mapped.family, 6)
    buckets.add(mapped.bucket)
    if (weighted(mapped) === weighted(plain)) sameRegion++
  }
  assert.equal(buckets.size, 512, 'one bucket per /24 (it was one ::/56 for all of them)')
  assert.equal(sameRegion, 512, 'a mapped network draws the region its IPv4 /24 draws')
  // A mapped network shorter than /120: the IPv4 prefix it reveals, never longer than the source.
  const wide = locateClient(ecs6('::ffff:10.1.0.0', 112), '127.0.0.1', () => none, null)
  assert.equal(wide.bucket, '10.1.0.0/16')
  assert.equal(wide.bucketPrefix, 112)
})

test('6to4, Teredo and NAT64 addresses are located as the IPv4 client they carry, with the scope in IPv6 terms', async () => {
  const { GeoDb } = await import('../../src/geo/index.js')
  const db = await GeoDb.open(new URL('../../../geodb/test/meridian-test.mmdb', import.meta.url).pathname)
  const geo = db.locate.bind(db)
  try {
    const cases: [string, number, string, number, string, number, string][] = [
      // ECS address, source prefix, country, geoPrefix (scope when location decides), bucket, bucketPrefix, why
      ['2002:c000:200::', 48, 'GB', 16 + 26, '192.0.2.0/24', 16 + 24, '6to4 of 192.0.2.0/32: London /26 at bits 16..47'],
      ['2002:c000:200::', 56, 'GB', 16 + 26, '192.0.2.0/24', 16 + 24, '6to4 /56 (as Google sends): the IPv4 /32 is all there'],
      ['2002:c000:2c0::', 40, 'GB', 40, '192.0.2.0/24', 40, '6to4 /40 = 192.0.2.0/24: London /26 looked up, the scope capped by the source'],
      ['2001:0:4136:e378:8000:63bf:3fff:fdfe', 128, 'GB', 96 + 26, '192.0.2.0/24', 96 + 24, 'Teredo client 192.0.2.1 (inverted in the last 32 bits)'],
      ['2001:0:4136:e378:8000:63bf:3fff:fd00', 120, 'GB', 120, '192.0.2.0/24', 120, 'Teredo /120: capped by the source'],
      ['64:ff9b::c633:6480', 128, 'JP', 96 + 27, '198.51.100.0/24', 96 + 24, 'NAT64 well-known prefix, 198.51.100.128 (Tokyo /27)'],
      ['::ffff:198.51.100.1', 128, 'US', 96 + 26, '198.51.100.0/24', 96 + 24, 'IPv4-mapped'],
    ]
    for (const [address, prefix, country, geoPrefix, bucket, bucketPrefix, why] of cases) {
      const c = locateClient(ecs6(address, prefix), '127.0.0.1', geo, null)
      assert.equal(c.country, country, why)
      assert.equal(c.geoPrefix, geoPrefix, `${why}: geoPrefix`)
      assert.equal(c.bucket, bucket, `${why}: bucket`)
      assert.equal(c.bucketPrefix, bucketPrefix, `${why}: bucketPrefix`)
    }
    // A Teredo /56 says which Teredo server, not which client: an IPv6 lookup as before.
    const server = locateClient(ecs6('2001:0:4136:e300::', 56), '127.0.0.1', geo, null)
    assert.equal(server.source, 'none')
    assert.equal(server.bucket, '2001:0:4136:e300:0:0:0:0/56')
    // A resolver at a 6to4 address is the IPv4 client it carries.
    const peer = locateClient(query(), '2002:c000:201::53', geo, null)
    assert.equal(peer.family, 4)
    assert.equal(peer.address, '192.0.2.1')
    assert.equal(peer.country, 'GB')
    assert.equal(peer.bucket, '192.0.2.0/24')
    // GeoDb itself reads the same forms (for `meridian explain --client` and the API).
    assert.equal(db.locate('2002:c000:201::1').country, 'GB')
    assert.equal(db.locate('2001:0:4136:e378:8000:63bf:3fff:fdfe').country, 'GB')
  } finally {
    db.close()
  }
})

test('an unlocated plain IPv6 network never has a scope that covers the 6to4, Teredo, NAT64 or IPv4-mapped spaces', async () => {
  const { GeoDb } = await import('../../src/geo/index.js')
  const db = await GeoDb.open(new URL('../../../geodb/test/meridian-test.mmdb', import.meta.url).pathname)
  try {
    // The test database has nothing around 2003::: 2003:1:2:300::/56 falls in its empty 2002::/15,
    // which covers 2002::/16, whose clients are located as IPv4.
    const c = locateClient(ecs6('2003:1:2:300::', 56), '127.0.0.1', db.locate.bind(db), null)
    assert.equal(c.source, 'none')
    assert.equal(c.geoPrefix, 16, '2003::/16 and no shorter (2002::/16 differs at bit 15)')
    assert.equal(db.locate('2003:1:2:300::', 56).networkPrefix, 15, 'the database alone says 2002::/15')
  } finally {
    db.close()
  }
})

function selectWeighted(): (c: ReturnType<typeof locateClient>) => string {
  const regions = ['a', 'b', 'c'].map((name, i) => ({ name, location: { lat: 0, lon: 0 }, vips: [{ address: `127.0.0.${i + 1}`, family: 4 as const, checkKey: null }], weight: [500, 300, 200][i]!, drained: false, minHealthy: 1 }))
  const service = { name: 'w.z.test', regions: ['a', 'b', 'c'], policy: 'weighted' as const, answers: 1, ttl: 30, fallback: 'none' as const, fallbackAddresses: [], fallbackIncludesDrained: false, toleranceMs: 20, fill: false, unknownAs: 'up' as const }
  const ctx = { regions: new Map(regions.map((r) => [r.name, r])), health: () => undefined, rand: () => 0 }
  return (c) => select(service, 4, c, ctx).regions[0]!
}
