/**
 * Health state changes reach the DNS workers (`--workers 2`): the control process's poller sends
 * each worker the records of the checks that moved (src/cluster/health-sync.ts), and the workers'
 * answers follow a region going down and coming back, as a one-process server's do. Two real
 * simulated pools under a weighted service: the client network's hash chooses between them unless
 * one is down; the test asks from many networks so that both regions are answered.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { SimPool } from '../../src/sim/index.js'
import { addressesOf, ask, askMany, checkFor, SPREAD_NETWORKS, startPools, twoRegionZone, writeZone } from '../helpers/gslb.js'
import { adminUrl, startServer, tempDir, TEST_GEODB, type RunningServer } from '../helpers/server.js'
import { TYPE } from '../helpers/wire.js'
import { waitFor } from '../../src/sim/index.js'

const ORIGIN = 'health-workers-e2e.test'
const NAME = `www.${ORIGIN}`
const VIP = { a: '127.77.1.1', b: '127.77.2.1' }
const NETWORKS = SPREAD_NETWORKS

let pools: Map<string, SimPool>
let server: RunningServer
let cleanup: () => Promise<void>

before(async () => {
  const zone = await twoRegionZone(ORIGIN, VIP)
  pools = zone.pools
  const dir = await tempDir()
  cleanup = dir.cleanup
  await writeZone(dir.dir, `${ORIGIN}.yaml`, zone.text)
  server = await startServer({ zonesDirInPlace: dir.dir, args: ['--geodb', TEST_GEODB, '--no-watch', '--health-wait', '5', '--workers', '2'] })
})

after(async () => {
  await server?.stop()
  await cleanup?.()
  await Promise.all([...(pools?.values() ?? [])].map((p) => p.close()))
})

/** The addresses answered to every network, each asked three times (whichever worker gets each query). */
async function answered(): Promise<Set<string>> {
  const seen = new Set<string>()
  for (const n of NETWORKS) for (let i = 0; i < 3; i++) for (const a of addressesOf(await ask(server.port, NAME, TYPE.A, n))) seen.add(a)
  return seen
}

test('two DNS workers follow a region going down and coming back, from the records the control process sends them', async () => {
  assert.deepEqual([...(await answered())].sort(), [VIP.a, VIP.b], 'both regions answered while both are up')
  await pools.get('a')!.stop()
  await waitFor(async () => {
    const s = await answered()
    return s.size === 1 && s.has(VIP.b)
  }, { timeoutMs: 20_000, what: 'every worker to answer b alone once a is down' })
  await pools.get('a')!.start()
  await waitFor(async () => (await answered()).has(VIP.a), { timeoutMs: 20_000, what: 'a answered again once it is back' })
  assert.deepEqual([...(await answered())].sort(), [VIP.a, VIP.b])
  // Both workers answered some of these queries (the kernel hands each to one of them): each says
  // how many when it stops, so neither could have kept a stale view unnoticed by never answering.
  assert.equal(await server.stop(), 0)
  const counts = server.logs.filter((l) => l.msg === 'dns worker stopped').map((l) => Number(l.queries))
  assert.equal(counts.length, 2)
  assert.ok(counts.every((n) => n > 0), `queries answered by each worker: ${counts.join(', ')}`)
})

test('a check edited through the admin API keeps its down region out of every worker\'s answers: the new check never counts as unknown (up)', async (t) => {
  // The edit gives the check a new key, whose record carries the down state over (docs/zones.md).
  // A worker must get the zone set naming the new key and the health record under it together.
  const vips = { a: '127.77.3.1', b: '127.77.4.1' }
  const own = await startPools([
    { region: 'a', vip: vips.a },
    { region: 'b', vip: vips.b },
  ])
  t.after(() => Promise.all([...own.values()].map((p) => p.close())))
  await own.get('a')!.stop()
  const dir = await tempDir()
  t.after(dir.cleanup)
  // a: down at its first failure; b: up at its first success, and not down for one slow round on a busy machine.
  const timing = { a: { interval: 0.5, timeout: 0.25, rise: 2, fall: 1 }, b: { interval: 1, timeout: 0.9, rise: 1, fall: 3 } }
  const region = (name: 'a' | 'b') => `  ${name}:\n    location: { lat: 51.51, lon: -0.13 }\n    vips: [${vips[name]}]\n    check: ${checkFor(own.get(name)!, timing[name])}`
  // A zone set of a few hundred services: a message of some size, as in production.
  const more = Array.from({ length: 300 }, (_, i) => `  s${i}: { regions: [a, b], policy: weighted, answers: 1 }\n`).join('')
  await writeZone(dir.dir, `${ORIGIN}.yaml`, `origin: ${ORIGIN}\nsoa: { mname: ns1, rname: hostmaster.${ORIGIN}., minimum: 60 }\nns: [ns1]\nrecords:\n  ns1: { A: 127.0.0.1 }\nregions:\n${region('a')}\n${region('b')}\nservices:\n  www: { regions: [a, b], policy: weighted, answers: 1, ttl: 5 }\n${more}`)
  const tokenFile = path.join(dir.dir, '.admin-token')
  await writeFile(tokenFile, 'health-workers-token\n')
  const edited = await startServer({ zonesDirInPlace: dir.dir, args: ['--geodb', TEST_GEODB, '--no-watch', '--health-wait', '5', '--workers', '2', '--admin-token-file', tokenFile] })
  t.after(() => edited.stop())
  const admin = await adminUrl(edited)
  await edited.waitForLog((l) => l.msg.endsWith(' is down') && String(l.key).includes(vips.a))
  const everyNetwork = Array.from({ length: 256 }, (_, i) => ({ name: NAME, type: TYPE.A, client: NETWORKS[i % NETWORKS.length]! }))
  assert.deepEqual(new Set((await askMany(edited.port, everyNetwork)).map((r) => addressesOf(r).join())), new Set([vips.b]))
  let asking = true
  let answers = 0
  let fromA = 0
  /** Called at the end of each round of queries (one from every network). */
  let roundDone = () => {}
  const roundEnd = () => new Promise<void>((resolve) => (roundDone = resolve))
  const asker = (async () => {
    while (asking) {
      const replies = await askMany(edited.port, everyNetwork)
      answers += replies.length
      fromA += replies.filter((r) => addressesOf(r).includes(vips.a)).length
      roundDone()
    }
  })()
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${admin}/v1/zones/${ORIGIN}/regions/a`, { method: 'PATCH', headers: { authorization: 'Bearer health-workers-token', 'content-type': 'application/json' }, body: JSON.stringify({ check: { interval: i % 2 ? 0.5 : 0.6 } }) })
    assert.equal(res.status, 200, await res.text())
    // The round under way, and a whole one after the 200.
    await roundEnd()
    await roundEnd()
  }
  asking = false
  await asker
  t.diagnostic(`${answers} answers during 10 edits of the down region's check`)
  assert.ok(answers > 1000)
  assert.equal(fromA, 0, `${fromA} of ${answers} answers were the down region's`)
})
