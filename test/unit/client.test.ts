import assert from 'node:assert/strict'
import { test } from 'node:test'
import { locateClient, type GeoAnswer } from '../../src/dns/client.js'
import { maskAddress } from '../../src/model/address.js'
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
