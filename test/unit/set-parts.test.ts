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
