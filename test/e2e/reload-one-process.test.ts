/**
 * A one-process server (`--workers 1`) reads a reloaded set back from the build thread in parts,
 * over turns of the event loop, and makes its answer cache's indexes of it (the checks its services
 * read, its NXDOMAIN name index) ahead in steps (set-parts.ts, AnswerCache.prepareNext). Queried
 * with the real dig through and right after a reload of a zone of thousands of names, it answers
 * from the old set or the new one, never from neither: a name in both is never NXDOMAIN, and once
 * the new set is loaded, a name just added (NXDOMAIN, cached, before) is answered, a name just
 * removed is NXDOMAIN, a service moved to another region answers that region's address.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { digBatch, type DigResult } from '../helpers/dig.js'
import { tempDir, type LogLine } from '../helpers/server.js'
import { serveInPlace } from '../helpers/zones.js'

const ORIGIN = 'big.test'
const REGIONS = 10

interface Shape {
  /** Record names (h<i>, n<i>) with their address. */
  records: Map<string, string>
  /** Service names (s<i>, t<i>) with their region's index. */
  services: Map<string, number>
}

const vip = (r: number) => `198.51.100.${r + 1}`

function text(shape: Shape): string {
  const lines = [`origin: ${ORIGIN}`, 'soa: { mname: ns1, rname: h, serial: auto, minimum: 60 }', 'ns: [ns1]', 'records:', '  ns1: { A: 192.0.2.53 }']
  for (const [name, address] of shape.records) lines.push(`  ${name}: { A: ${address} }`)
  lines.push('regions:')
  for (let r = 0; r < REGIONS; r++) lines.push(`  r${r}: { location: { lat: ${r}, lon: ${r} }, vips: [${vip(r)}] }`)
  lines.push('services:')
  for (const [name, r] of shape.services) lines.push(`  ${name}: { policy: weighted, regions: [r${r}], answers: 1, ttl: 30 }`)
  return lines.join('\n') + '\n'
}

/** 4,000 records and 1,500 services: parts of every split collection, several steps of each index. */
function before(): Shape {
  const records = new Map<string, string>()
  for (let i = 0; i < 4000; i++) records.set(`h${i}`, `192.0.2.${i % 250}`)
  const services = new Map<string, number>()
  for (let i = 0; i < 1500; i++) services.set(`s${i}`, i % REGIONS)
  return { records, services }
}

/** h0-h99 and s0-s49 removed, n0-n99 and t0-t49 added, s100-s149 moved to the next region. */
function after(): Shape {
  const { records, services } = before()
  for (let i = 0; i < 100; i++) records.delete(`h${i}`)
  for (let i = 0; i < 100; i++) records.set(`n${i}`, `203.0.113.${i}`)
  for (let i = 0; i < 50; i++) services.delete(`s${i}`)
  for (let i = 0; i < 50; i++) services.set(`t${i}`, (i + 3) % REGIONS)
  for (let i = 100; i < 150; i++) services.set(`s${i}`, (i + 1) % REGIONS)
  return { records, services }
}

/** What `name` (relative) should answer under `shape`: its address, or NXDOMAIN. */
function expected(shape: Shape, name: string): string {
  const a = shape.records.get(name)
  if (a !== undefined) return a
  const r = shape.services.get(name)
  return r === undefined ? 'NXDOMAIN' : vip(r)
}

const seen = (r: DigResult): string => (r.status === 'NOERROR' ? (r.answer.find((a) => a.type === 'A')?.data ?? 'NODATA') : r.status)

test('one process, a reload of thousands of names: queries through it get the old set or the new one, and right after it the new one (names added, removed, services moved)', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  const file = path.join(dir, `${ORIGIN}.yaml`)
  const old = before()
  const next = after()
  await writeFile(file, text(old))
  const { server } = await serveInPlace(t, dir, ['--workers', '1'])
  const ask = async (names: string[]) => (await digBatch('127.0.0.1', server.port, names.map((n) => [`${n}.${ORIGIN}`, 'A']))).map(seen)
  const range = (p: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${p}${from + i}`)

  // Changed names, each asked (and so cached, NXDOMAIN included) under the old set first.
  const changed = [...range('h', 0, 20), ...range('n', 0, 20), ...range('s', 0, 10), ...range('t', 0, 10), ...range('s', 100, 110)]
  // Names the same in both sets, and names in neither (below a name that exists, too).
  const stable = [...range('h', 500, 520), ...range('s', 500, 510), 'zz0', 'zz1', 'x.h600', 'x.s600']
  assert.deepEqual(await ask(changed), changed.map((n) => expected(old, n)), 'the old set')
  assert.deepEqual(await ask(stable), stable.map((n) => expected(old, n)))

  // Stable names asked over and over while the reload runs: never anything but their answer.
  const from = server.logs.length
  let reloading = true
  let rounds = 0
  const wrong: string[] = []
  const asking = (async () => {
    while (reloading) {
      const got = await ask(stable)
      rounds++
      got.forEach((g, i) => {
        if (g !== expected(old, stable[i]!)) wrong.push(`${stable[i]}: ${g}`)
      })
    }
  })()
  await writeFile(file, text(next))
  const loaded = await server.waitForLog((l: LogLine) => l.msg === 'zones loaded', 30_000, from)
  const right = await ask(changed)
  reloading = false
  await asking
  assert.ok(Number(loaded.generation) >= 2)
  assert.deepEqual(right, changed.map((n) => expected(next, n)), 'right after the reload: the new set')
  assert.deepEqual(wrong, [], `a name of both sets answered otherwise during the reload (${rounds} rounds)`)
  assert.ok(rounds >= 1)
  // Every changed name once more, and all of the stable ones: the new set, from the cache too.
  assert.deepEqual(await ask([...changed, ...stable]), [...changed, ...stable].map((n) => expected(next, n)))
  assert.equal(server.logs.filter((l) => l.msg === 'zones loaded' && Number(l.generation) > 2).length, 0, 'one reload')
  // Built in the thread and read back in parts, not on the event loop.
  assert.deepEqual(server.logs.filter((l) => l.msg.includes('building on the event loop instead') || l.level >= 50).map((l) => l.msg), [])
})
