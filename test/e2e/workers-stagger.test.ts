/**
 * A new zone set reaches two DNS workers one after the other (src/cluster/primary.ts, sendZones):
 * the first half of the answering workers is sent it, the other half only once the first answers
 * from it, so that one worker always reads the shared UDP socket while the other reads the set off
 * its IPC channel. What the second half is sent meanwhile (health updates) follows the set, in
 * order; a first half that does not answer (SIGSTOP) holds the other half for STAGGER_MAX_MS at most.
 *
 * The order is read from the log (--log-level debug): the workers and the control process write
 * their lines synchronously to one shared stdout, a worker says it applied a set before it
 * acknowledges it, and the control process says it releases the second half before it writes
 * anything to it, so the order of the lines is the order of the events.
 */
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { STAGGER_MAX_MS } from '../../src/cluster/primary.js'
import type { SimPool } from '../../src/sim/index.js'
import { addressesOf, askMany, SPREAD_NETWORKS, twoRegionZone, writeZone } from '../helpers/gslb.js'
import { adminUrl, startServer, tempDir, TEST_GEODB, type LogLine, type RunningServer } from '../helpers/server.js'
import { buildQuery, TYPE } from '../helpers/wire.js'

const TOKEN = 'e2e-stagger-token-41f0'
const auth = { authorization: `Bearer ${TOKEN}` }

const SENT_FIRST = 'zone set sent to the first half of the DNS workers; the others get it once these answer from it'
const SENT_OTHERS = 'zone set sent to the other half of the DNS workers'
const APPLIED = 'dns worker: zone set applied'

/** The pid of the worker with cluster id `id`, from its ready line. */
function pidOf(server: RunningServer, id: number): number {
  const l = server.logs.find((x) => x.msg === 'dns worker ready' && x.worker === id)
  assert.ok(l, `worker ${id} is ready`)
  return Number(l.pid)
}

/** The index in `server.logs` of the first line from `from` on that matches (-1: none). */
const indexOf = (server: RunningServer, from: number, match: (l: LogLine) => boolean) => {
  const i = server.logs.slice(from).findIndex(match)
  return i < 0 ? -1 : from + i
}

describe('a zone change with two DNS workers of a 5,000-service zone', () => {
  const ORIGIN = 'stagger-big.test'
  const REGIONS = ['r1', 'r2', 'r3', 'r4', 'r5']
  let server: RunningServer
  let admin: string
  let file: string
  let cleanup: () => Promise<void>

  before(async () => {
    const dir = await tempDir('meridian-stagger-big-')
    cleanup = dir.cleanup
    const lines = [`origin: ${ORIGIN}`, `soa: { mname: ns1, rname: hostmaster.${ORIGIN}. }`, 'ns: [ns1]', 'records:', '  ns1: { A: 127.0.0.1 }', 'regions:']
    REGIONS.forEach((r, i) => lines.push(`  ${r}: { location: { lat: ${i * 10}, lon: ${i * 20} }, vips: [127.92.${i + 1}.1, 127.92.${i + 1}.2] }`))
    lines.push('services:')
    for (let s = 0; s < 5000; s++) lines.push(`  svc${s}: { policy: weighted, regions: [${REGIONS.join(', ')}], answers: 2, ttl: 30 }`)
    file = await writeZone(dir.dir, `${ORIGIN}.yaml`, lines.join('\n') + '\n')
    await writeFile(path.join(dir.dir, '.admin-token'), TOKEN + '\n')
    server = await startServer({ zonesDirInPlace: dir.dir, args: ['--geodb', TEST_GEODB, '--no-watch', '--workers', '2', '--log-level', 'debug', '--admin-token-file', path.join(dir.dir, '.admin-token')] })
    admin = await adminUrl(server)
  })

  after(async () => {
    await server?.stop()
    await cleanup?.()
  })

  test('one worker applies the new set before the other is sent it, every query is answered throughout, and the reload answers once both have it', async (t) => {
    // A query every 2 ms through the reload, each answered by whichever worker reads the socket.
    const sock = dgram.createSocket('udp4')
    sock.bind(0, '127.0.0.1')
    await once(sock, 'listening')
    const sent = new Map<number, number>()
    let longest = 0
    sock.on('message', (m) => {
      const at = sent.get(m.readUInt16BE(0))
      if (at === undefined) return
      sent.delete(m.readUInt16BE(0))
      longest = Math.max(longest, performance.now() - at)
    })
    let id = 0
    const tick = setInterval(() => {
      id = (id + 1) & 0xffff
      sent.set(id, performance.now())
      sock.send(buildQuery({ id, name: `svc1.${ORIGIN}`, type: TYPE.A }), server.port, '127.0.0.1')
    }, 2)
    // Also when the test fails: no query is sent after the socket closes.
    t.after(() => {
      clearInterval(tick)
      sock.close()
    })
    const from = server.logs.length
    await writeFile(file, (await readFile(file, 'utf8')).replace('ttl: 30', 'ttl: 31'))
    const res = await fetch(`${admin}/v1/reload`, { method: 'POST', headers: auth })
    assert.equal(res.status, 200, await res.text())
    // The 200 comes once both halves answer from the new set: both have said so by now.
    const first = server.logs.slice(from).find((l) => l.msg === SENT_FIRST)
    assert.ok(first, 'the set went to a first half')
    const seq = first.seq
    assert.equal((first.first as number[]).length, 1)
    assert.equal((first.held as number[]).length, 1)
    const [one, other] = [(first.first as number[])[0], (first.held as number[])[0]]
    const appliedBy = (w: unknown) => indexOf(server, from, (l) => l.msg === APPLIED && l.worker === w && l.seq === seq)
    const released = indexOf(server, from, (l) => l.msg === SENT_OTHERS && l.seq === seq)
    assert.ok(appliedBy(one) > 0 && appliedBy(other) > 0, 'both workers applied the set before the 200')
    assert.ok(appliedBy(one) < released && released < appliedBy(other), `worker ${String(one)} applied it (line ${appliedBy(one)}) before worker ${String(other)} was sent it (line ${released}), which then applied it (line ${appliedBy(other)})`)
    assert.deepEqual(server.logs[released]!.workers, [other])
    // Some more queries after the change, then every one must have been answered.
    await new Promise((r) => setTimeout(r, 100))
    clearInterval(tick)
    const deadline = performance.now() + 3000
    while (sent.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.equal(sent.size, 0, `${sent.size} queries unanswered`)
    t.diagnostic(`the longest wait for an answer through the reload: ${longest.toFixed(0)} ms (timing is bench/reload-stall.mjs's to measure)`)
  })
})

describe('a held half of the DNS workers', () => {
  const ORIGIN = 'stagger.test'
  const NAME = `www.${ORIGIN}`
  const VIP = { a: '127.93.1.1', b: '127.93.2.1' }
  const NETWORKS = SPREAD_NETWORKS
  let pools: Map<string, SimPool>
  let server: RunningServer
  let admin: string
  let cleanup: () => Promise<void>

  before(async () => {
    const more = Array.from({ length: 300 }, (_, i) => `  s${i}: { regions: [a, b], policy: weighted, answers: 1 }\n`).join('')
    const zone = await twoRegionZone(ORIGIN, VIP, more)
    pools = zone.pools
    const dir = await tempDir('meridian-stagger-')
    cleanup = dir.cleanup
    await writeZone(dir.dir, `${ORIGIN}.yaml`, zone.text)
    await writeFile(path.join(dir.dir, '.admin-token'), TOKEN + '\n')
    server = await startServer({ zonesDirInPlace: dir.dir, args: ['--geodb', TEST_GEODB, '--no-watch', '--health-wait', '5', '--workers', '2', '--log-level', 'debug', '--admin-token-file', path.join(dir.dir, '.admin-token')] })
    admin = await adminUrl(server)
  })

  after(async () => {
    await server?.stop()
    await cleanup?.()
    await Promise.all([...(pools?.values() ?? [])].map((p) => p.close()))
  })

  /** The addresses answered to every network (whichever worker reads each query). */
  const answered = async () => new Set((await askMany(server.port, NETWORKS.map((client) => ({ name: NAME, type: TYPE.A, client })))).map((r) => addressesOf(r).join()))

  /**
   * Stops worker 1 (the first half: the lowest slot) with SIGSTOP, as a worker stuck in a loop,
   * until the returned function (also run after the test) lets it go on.
   */
  function stopFirst(t: { after(fn: () => unknown): void }) {
    const pid = pidOf(server, 1)
    process.kill(pid, 'SIGSTOP')
    let stopped = true
    const resume = () => {
      if (stopped) process.kill(pid, 'SIGCONT')
      stopped = false
    }
    t.after(resume)
    return resume
  }

  test('a first half that does not answer holds the others no longer than STAGGER_MAX_MS, and says so', async (t) => {
    assert.deepEqual([...(await answered())].sort(), [VIP.a, VIP.b])
    const resume = stopFirst(t)
    const from = server.logs.length
    const t0 = performance.now()
    const drain = fetch(`${admin}/v1/zones/${ORIGIN}/regions/b/drain`, { method: 'POST', headers: auth })
    const warned = await server.waitForLog((l) => /did not take zone set \d+ within/.test(l.msg), 10_000, from)
    assert.equal(warned.level, 40, 'a warning')
    assert.deepEqual(warned.workers, [1])
    const released = await server.waitForLog((l) => l.msg === SENT_OTHERS && l.seq === warned.seq, 5000, from)
    // (a timer fires on the loop's millisecond clock: up to a millisecond before the precise one says)
    assert.ok(Number(released.heldMs) >= STAGGER_MAX_MS - 1, `held ${String(released.heldMs)} ms`)
    assert.deepEqual(released.workers, [2])
    const applied = await server.waitForLog((l) => l.msg === APPLIED && l.worker === 2 && l.seq === warned.seq, 5000, from)
    assert.ok(server.logs.indexOf(applied) > server.logs.indexOf(released))
    // Only worker 2 reads the socket now: it answers from the new set, b drained.
    assert.deepEqual([...(await answered())], [VIP.a])
    // The change is answered once its sync gives up on the stopped worker (1 s after the hold).
    const res = await drain
    assert.equal(res.status, 200, await res.text())
    t.diagnostic(`worker 2 got the set ${String(released.heldMs)} ms after worker 1; the drain answered after ${(performance.now() - t0).toFixed(0)} ms`)
    resume()
    await server.waitForLog((l) => l.msg === APPLIED && l.worker === 1 && l.seq === warned.seq, 10_000, from)
    const undrain = await fetch(`${admin}/v1/zones/${ORIGIN}/regions/b/undrain`, { method: 'POST', headers: auth })
    assert.equal(undrain.status, 200, await undrain.text())
    assert.deepEqual([...(await answered())].sort(), [VIP.a, VIP.b])
  })

  test('health updates sent while a worker is held reach it after the held set, in order: its view after the release is the current one', async (t) => {
    assert.deepEqual([...(await answered())].sort(), [VIP.a, VIP.b])
    // The edit gives a's check a new key (a whole health view goes with the set: the checks
    // changed), and its pool is stopped: the new check fails at its first round, within 50 ms,
    // and that state change (a delta after the whole view) is sent while worker 2 is held.
    await pools.get('a')!.stop()
    const resume = stopFirst(t)
    const from = server.logs.length
    const patch = fetch(`${admin}/v1/zones/${ORIGIN}/regions/a`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ check: { interval: 0.05, timeout: 0.04, rise: 1, fall: 1 } }) })
    const first = await server.waitForLog((l) => l.msg === SENT_FIRST, 10_000, from)
    const down = await server.waitForLog((l) => l.msg.endsWith(' is down') && String(l.key).includes(VIP.a), 10_000, from)
    const released = await server.waitForLog((l) => l.msg === SENT_OTHERS && l.seq === first.seq, 5000, from)
    const at = (l: LogLine) => server.logs.indexOf(l)
    assert.ok(at(first) < at(down) && at(down) < at(released), `a went down (line ${at(down)}) while worker 2 was held (lines ${at(first)}-${at(released)})`)
    await server.waitForLog((l) => l.msg === APPLIED && l.worker === 2 && l.seq === first.seq, 5000, from)
    // Worker 2 alone answers (worker 1 is stopped): from the current view, a down. A delta applied
    // before the set's own whole view would have been out of order: the worker would have exited.
    const deadline = performance.now() + 5000
    let seen = await answered()
    while (seen.has(VIP.a) && performance.now() < deadline) seen = await answered()
    assert.deepEqual([...seen], [VIP.b])
    const res = await patch
    assert.equal(res.status, 200, await res.text())
    resume()
    await server.waitForLog((l) => l.msg === APPLIED && l.worker === 1 && l.seq === first.seq, 10_000, from)
    assert.deepEqual([...(await answered())], [VIP.b])
    const bad = server.logs.slice(from).filter((l) => /does not follow on|died|exited/.test(l.msg)).map((l) => l.msg)
    assert.deepEqual(bad, [], 'no worker left or died')
    await pools.get('a')!.start()
  })
})
