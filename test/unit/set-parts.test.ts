/**
 * A zone set in parts (set-parts.ts): read back, it is the set written (every zone, entry and value,
 * in order), whatever the parts' size; a small set is one part; the reader yields to the event loop
 * between parts; a part that names nothing of the set is an error, not a set half filled.
 */
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { test } from 'node:test'
import { buildZoneSet, readZoneSources, type ZoneSource } from '../../src/config/load.js'
import { PLACES } from '../../src/config/places.js'
import { PART_ENTRIES, readInParts, serializeInParts, SetReader } from '../../src/config/set-parts.js'
import type { ZoneSet } from '../../src/model/types.js'

/** A zone with `n` services, `n` records (one named `__proto__`) and `r` regions. */
function wideZone(n: number, r: number): ZoneSource {
  const lines = ['origin: wide.test', 'soa: { mname: ns1, rname: h, serial: 1 }', 'ns: [ns1]', 'records:', '  ns1: { A: 192.0.2.53 }', '  __proto__: { A: 192.0.2.54 }', '  "123": { TXT: "numeric name" }']
  for (let i = 0; i < n; i++) lines.push(`  host${i}: { A: 192.0.2.${i % 250}, TXT: "h${i}" }`)
  lines.push('regions:')
  for (let i = 0; i < r; i++) lines.push(`  r${i}: { location: { lat: ${i % 90}, lon: ${i % 180} }, vips: [198.51.${i % 250}.1], weight: ${i % 1000}, check: { url: "http://{vip}:80/healthz", expect: [200, 204] } }`)
  lines.push('services:')
  for (let s = 0; s < n; s++) lines.push(`  svc${s}: { policy: weighted, regions: [r${s % r}, r${(s + 1) % r}], answers: 2, ttl: 30 }`)
  return { file: 'wide.test.yaml', text: lines.join('\n') + '\n' }
}

async function sources(): Promise<ZoneSource[]> {
  return [...(await readZoneSources('zones')), ...(await readZoneSources('test/fixtures/rfc')), wideZone(1234, 30)]
}

function build(src: ZoneSource[]): ZoneSet {
  return buildZoneSet(src, () => 1, 3, PLACES)
}

function read(parts: Buffer[]): ZoneSet {
  const reader = new SetReader(parts[0]!)
  for (const p of parts.slice(1)) reader.add(p)
  return reader.done()
}

/** Every Map's and record's keys in order, as a list of paths: order is part of the set (the failover order, file order). */
function keyOrder(x: unknown, at = '', out: string[] = []): string[] {
  if (x === null || typeof x !== 'object' || Buffer.isBuffer(x)) return out
  const entries = x instanceof Map ? [...x] : Object.entries(x)
  for (const [k, v] of entries) {
    out.push(`${at}/${String(k)}`)
    keyOrder(v, `${at}/${String(k)}`, out)
  }
  return out
}

test('a set read back from its parts is the set written: every zone, entry and value, in order, whatever the parts hold', async () => {
  const set = build(await sources())
  const whole = v8.deserialize(v8.serialize(set)) as ZoneSet
  for (const n of [1, 7, 100, PART_ENTRIES, 5000]) {
    const parts = serializeInParts(set, n)
    const back = read(parts)
    assert.deepStrictEqual(back, whole, `parts of ${n}`)
    assert.deepStrictEqual(keyOrder(back), keyOrder(whole), `parts of ${n}: the same order`)
  }
  // Split where it is big: services, names and definition records of the wide zone.
  const parts = serializeInParts(set, 100)
  assert.ok(parts.length >= 1 + 13 * 4, `${parts.length} parts`)
  assert.ok(Math.max(...parts.map((p) => p.length)) < v8.serialize(set).length / 8, 'no part near the whole')
  const wide = read(parts).zones.get('wide.test')!
  assert.equal(Object.getPrototypeOf(wide.definition.records), Object.prototype, 'a record named __proto__ is an entry, not a prototype')
  assert.deepStrictEqual(Object.keys(wide.definition.records).slice(0, 3), ['123', 'ns1', '__proto__'])
})

test('a set with no collection over the limit is one part', async () => {
  const set = build(await readZoneSources('zones'))
  const parts = serializeInParts(set)
  assert.equal(parts.length, 1)
  assert.deepStrictEqual(read(parts), v8.deserialize(v8.serialize(set)))
})

test('the parts are read one per turn of the event loop: callbacks queued meanwhile run between them', async () => {
  const parts = serializeInParts(build([wideZone(1000, 5)]), 100)
  assert.ok(parts.length > 20)
  let turns = 0
  let reading = true
  const tick = (): void => {
    turns++
    if (reading) setImmediate(tick)
  }
  setImmediate(tick)
  const set = await readInParts(parts)
  reading = false
  assert.equal(set.zones.get('wide.test')!.services.size, 1000)
  assert.ok(turns >= parts.length - 1, `${turns} turns for ${parts.length} parts`)
})

test('a part naming no zone or no collection of the set is an error', async () => {
  const parts = serializeInParts(build([wideZone(300, 5)]), 100)
  assert.throws(() => new SetReader(parts[0]!).add(v8.serialize({ zone: 9, map: 'services', entries: [] })), /names no zone of the set \(zone 9\)/)
  assert.throws(() => new SetReader(parts[0]!).add(v8.serialize({ zone: 0, map: 'definition', entries: [] })), /names no collection of zone wide\.test/)
  await assert.rejects(readInParts([parts[0]!, v8.serialize({ zone: 0, entries: 'x' })]), /names no zone/)
})

/** A zone of `records` records and `services` services whose names, and its regions', are the awkward ones (`__proto__`, `constructor`, integer-like). */
function oddZone(origin: string, records: number, services: number): ZoneSource {
  const lines = [`origin: ${origin}`, 'soa: { mname: ns1, rname: h, serial: 1 }', 'ns: [ns1]', 'records:', '  ns1: { A: 192.0.2.53 }', '  toString: { TXT: ["a", "b\\\\000c"] }', '  "0": { A: 192.0.2.9 }']
  for (let i = 0; i < records; i++) lines.push(`  h${i}: { A: 192.0.2.${i % 250}, TXT: "h${i}" }`)
  lines.push('regions:')
  for (const r of ['123', 'constructor', 'r0']) lines.push(`  "${r}": { location: { lat: 1, lon: 2 }, vips: [198.51.100.${r.length}], check: { url: "http://{vip}:80/healthz", expect: [200, 204] } }`)
  if (services > 0) lines.push('services:', '  __proto__: { regions: all }', '  constructor: { regions: ["123"] }', '  "123": { regions: [constructor, r0], policy: failover }', '  valueOf: { regions: [r0] }')
  for (let s = 0; s < services; s++) lines.push(`  s${s}: { policy: weighted, regions: [r0], answers: 1 }`)
  return { file: `${origin}.yaml`, text: lines.join('\n') + '\n' }
}

test('every shape a set can have reads back from parts as from one deserialize: no zones, 50,000 records and no service, service and region names __proto__, constructor and 123, TXT octets, nested zones', () => {
  const shapes: [string, ZoneSource[]][] = [
    ['no zones', []],
    ['50,000 records, no service', [oddZone('big.test', 50_000, 0)]],
    ['odd names', [oddZone('odd.test', 10, 700)]],
    ['nested', [oddZone('a.test', 1200, 600), oddZone('sub.a.test', 900, 10)]],
  ]
  for (const [what, src] of shapes) {
    const set = build(src)
    const whole = v8.deserialize(v8.serialize(set)) as ZoneSet
    for (const n of what.startsWith('50,000') ? [PART_ENTRIES] : [1, PART_ENTRIES]) {
      const back = read(serializeInParts(set, n))
      assert.deepStrictEqual(back, whole, `${what}, parts of ${n}`)
      assert.deepStrictEqual(keyOrder(back), keyOrder(whole), `${what}, parts of ${n}: the same order`)
      for (const zone of back.zones.values()) {
        for (const key of ['services', 'records', 'regions'] as const) assert.equal(Object.getPrototypeOf(zone.definition[key]), Object.prototype, `${what}: ${zone.origin} definition.${key}`)
        // The SOA held twice is the same record, if no longer the same object.
        assert.deepStrictEqual(zone.nodes.get(zone.origin)!.rrsets.get(6)![0], zone.soa)
        const txt = zone.nodes.get(`tostring.${zone.origin}`)?.rrsets.get(16)?.[0]?.data
        assert.ok(txt !== undefined && txt.every((b) => Buffer.isBuffer(b)), `${what}: TXT data are Buffers`)
      }
    }
  }
  const odd = read(serializeInParts(build([oddZone('odd.test', 10, 700)]), 100)).zones.get('odd.test')!
  assert.deepStrictEqual(Object.keys(odd.definition.services).slice(0, 5), ['123', '__proto__', 'constructor', 'valueOf', 's0'])
  assert.deepStrictEqual(odd.services.get('__proto__.odd.test')!.regions, ['123', 'constructor', 'r0'])
  assert.deepStrictEqual([...odd.regions.keys()], ['123', 'constructor', 'r0'])
})
