/**
 * FileConfigStore.onPrepare: a set the build thread makes is handed to the preparers (in one process,
 * DnsHandler.prepareNext) before it is swapped in, so the answer cache's indexes of the new set are
 * built in a turn of the event loop of their own, not in the swap's or the first query's. Real files,
 * the real build thread.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ZoneSetBuilder } from '../../src/config/build-thread.js'
import { PLACES } from '../../src/config/places.js'
import { createLogger } from '../../src/log.js'
import type { ZoneSet } from '../../src/model/types.js'
import { FileConfigStore } from '../../src/store/file-store.js'
import { SerialBook } from '../../src/store/serials.js'

const ZONE = `origin: p.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
regions:
  eu: { location: { lat: 3, lon: 4 }, vips: [192.0.2.20] }
  us: { location: { lat: 5, lon: 6 }, vips: [192.0.2.30] }
services:
  www: { policy: geo-latency, regions: [eu, us], ttl: 30 }
`

test('a set built in the thread goes to onPrepare first, then is swapped in: for a reload and for an admin change', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-prepare-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'p.test.yaml')
  await writeFile(file, ZONE)
  const store = new FileConfigStore(dir, createLogger('silent'), SerialBook.forZonesDir(dir), PLACES, {}, new ZoneSetBuilder())
  t.after(() => store.close())
  const events: string[] = []
  let prepared: ZoneSet | undefined
  const off = store.onPrepare((set) => {
    prepared = set
    events.push(`prepare ${set.generation}`)
  })
  store.onChange((set) => events.push(set === prepared ? `swap ${set.generation} (the prepared set)` : `swap ${set.generation} (a set not prepared)`))
  // The first load is built on the event loop (no set to serve meanwhile): nothing to prepare ahead.
  await store.reload('start-up')
  assert.deepEqual(events, ['swap 1 (a set not prepared)'])

  await writeFile(file, ZONE.replace('ttl: 30', 'ttl: 31'))
  await store.reload('test')
  assert.deepEqual(events.slice(1), ['prepare 2', 'swap 2 (the prepared set)'])

  await store.edit('p.test', { op: 'drain', region: 'eu' })
  assert.deepEqual(events.slice(3), ['prepare 3', 'swap 3 (the prepared set)'])
  assert.equal(store.current().zones.get('p.test')?.regions.get('eu')?.drained, true)

  // A preparer that throws is logged; the set is swapped in all the same.
  off()
  store.onPrepare(() => {
    throw new Error('preparer bug')
  })
  await store.edit('p.test', { op: 'undrain', region: 'eu' })
  assert.equal(store.current().generation, 4)
  assert.equal(store.current().zones.get('p.test')?.regions.get('eu')?.drained, false)
})
