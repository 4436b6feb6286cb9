/**
 * `--latency-grace` end to end: two real servers on the same two simulated pools, one with no grace
 * and one with a minute of it. Both regions stand in London, so the geo-latency choice is made by
 * the measured check latency alone; the test moves it (a pool's responses delayed) and watches what
 * each server answers over DNS while its own admin API says the choice has changed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { waitFor, type SimPool } from '../../src/sim/index.js'
import { addressesOf, ask, checkFor, startPools, subnet, writeZone } from '../helpers/gslb.js'
import { adminUrl, startServer, tempDir, TEST_GEODB, type RunningServer } from '../helpers/server.js'
import { TYPE } from '../helpers/wire.js'

const ORIGIN = 'grace-e2e.test'
const NAME = `lat.${ORIGIN}`
const VIP = { a: '127.79.1.1', b: '127.79.2.1' }
const LONDON = subnet('192.0.2.0/26')
/**
 * b's extra latency before the move, a's after it. The pools answer from this test process: on a
 * loaded machine (3 busy loops on 2 cores) a 0 ms pool measured 80-90 ms (EWMA) and rounds timed
 * out at 190 ms, so a 40 ms gap was noise and the choice flipped between explain and the DNS query.
 * 250 ms stands well above that; rounds of 0.6 s with a 0.55 s timeout leave it room, and three
 * failures to go down keep a slow round from becoming a state change (which ends the grace by design).
 */
const SLOW_MS = 250
const CHECK = { interval: 0.6, timeout: 0.55, rise: 1, fall: 3 }
/** A few rounds: how long an answer takes to follow a choice the admin API already shows. */
const ROUNDS_MS = 5 * CHECK.interval * 1000

let pools: Map<string, SimPool>
const servers: { server: RunningServer; admin: string; cleanup: () => Promise<void> }[] = []

function zoneYaml(): string {
  const region = (name: string, vip: string) => `  ${name}:
    location: { lat: 51.51, lon: -0.13 }
    vips: [${vip}]
    check: ${checkFor(pools.get(name)!, CHECK)}`
  return `origin: ${ORIGIN}
soa: { mname: ns1, rname: hostmaster.${ORIGIN}., minimum: 60 }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
regions:
${region('a', VIP.a)}
${region('b', VIP.b)}
services:
  lat: { regions: [a, b], policy: geo-latency, toleranceMs: 20, answers: 1, ttl: 5 }
`
}

/**
 * The region a server's admin API says it alone would answer now (a fresh selection, no cache), by
 * latency: undefined while the two are within the tolerance of each other (then the client's network
 * hash picks one, and which says nothing about the move), and while either is not up and measured.
 * A region whose check is down (or not yet up) leaves the other as "the lowest latency estimate" by
 * health, not latency: on a loaded machine b's first rounds timed out, a was "chosen", cached, and
 * b coming up (a state change, which ends the grace by design) rebuilt the answer as b.
 */
async function explained(admin: string): Promise<string | undefined> {
  const res = await fetch(`${admin}/v1/explain?name=${NAME}&client=127.0.0.1&ecs=${LONDON.address}/${LONDON.prefix}`)
  const trace = (await res.json()) as {
    decision: string | null
    candidates: { region: string; chosen: boolean; status: string; measuredMs: number | null; vips: { health: string }[] }[]
  }
  if (!trace.decision?.includes('has the lowest latency estimate')) return undefined
  const both = trace.candidates.length === 2 && trace.candidates.every((c) => c.status === 'usable' && c.measuredMs !== null && c.vips.every((v) => v.health === 'up'))
  return both ? trace.candidates.find((c) => c.chosen)?.region : undefined
}

/** What a server's poller has seen of each check (state changes, published latency): for failure messages. */
async function healthOf(admin: string): Promise<string> {
  const h = (await (await fetch(`${admin}/v1/health`)).json()) as { targets: { key: string; state: string; publishedMs: number | null; ewmaMs: number | null; checks: number; lastError: string | null; transitions: { from: string; to: string; at: string; reason: string }[] }[] }
  return JSON.stringify(h.targets.map((x) => ({ key: x.key, state: x.state, publishedMs: x.publishedMs, ewmaMs: x.ewmaMs, checks: x.checks, lastError: x.lastError, transitions: x.transitions })))
}

async function answered(port: number): Promise<string[]> {
  return addressesOf(await ask(port, NAME, TYPE.A, LONDON))
}

before(async () => {
  pools = await startPools([
    { region: 'a', vip: VIP.a },
    { region: 'b', vip: VIP.b },
  ])
  // b starts slow: a is the answer, for London and everyone.
  pools.get('b')!.setLatency(SLOW_MS)
  // No grace, a minute of it, and no grace in two DNS workers (the health view, latencyGen
  // included, reaches them over IPC from the control process's poller).
  for (const args of [['--latency-grace', '0'], ['--latency-grace', '60000'], ['--latency-grace', '0', '--workers', '2']]) {
    const { dir, cleanup } = await tempDir()
    await writeZone(dir, `${ORIGIN}.yaml`, zoneYaml())
    const server = await startServer({ zonesDirInPlace: dir, args: ['--geodb', TEST_GEODB, '--no-watch', '--health-wait', '5', ...args] })
    servers.push({ server, admin: await adminUrl(server), cleanup })
  }
})

after(async () => {
  for (const s of servers) {
    await s.server.stop()
    await s.cleanup()
  }
  await Promise.all([...pools.values()].map((p) => p.close()))
})

test('a latency move: with --latency-grace 0 the answer follows at once (in one process and in workers), with a minute of grace the cached answer stays, and /metrics counts it', async (t) => {
  const [none, minute, workers] = servers
  // Both servers answer a (b is slow), and cache that answer.
  for (const s of servers) {
    await waitFor(async () => (await explained(s.admin)) === 'a', { timeoutMs: 5000 + ROUNDS_MS, what: 'a to be the choice at first' })
    assert.deepEqual(await answered(s.server.port), [VIP.a], await healthOf(s.admin))
  }
  // The move: a slows down, b speeds up. Each server's poller sees it in a few rounds.
  pools.get('a')!.setLatency(SLOW_MS)
  pools.get('b')!.setLatency(0)
  const t0 = performance.now()
  for (const s of servers) await waitFor(async () => (await explained(s.admin)) === 'b', { timeoutMs: 10_000, what: 'the admin API to choose b alone' })
  t.diagnostic(`both pollers chose b ${(performance.now() - t0).toFixed(0)} ms after the move`)

  // No grace: the DNS answer follows as soon as the generation moves past the entry (the EWMAs
  // keep converging, so it does within a few rounds of the admin API's choice).
  const follow = performance.now()
  await waitFor(async () => (await answered(none!.server.port))[0] === VIP.b, { timeoutMs: ROUNDS_MS, what: 'no grace: the DNS answer to follow the latency' })
  t.diagnostic(`no grace: DNS answered b ${(performance.now() - follow).toFixed(0)} ms after the admin API chose it`)
  // Two workers, each with a cache of its own: b in ten answers in a row, from whichever worker
  // the kernel hands each query to (the latencyGen of the view they got over IPC moved them).
  await waitFor(async () => {
    for (let i = 0; i < 10; i++) if ((await answered(workers!.server.port))[0] !== VIP.b) return false
    return true
  }, { timeoutMs: ROUNDS_MS, what: 'no grace, two workers: the DNS answer to follow the latency' })
  // A minute of grace: the answer cached before the move is still served (its share of the grace
  // is tens of seconds), and counted as served in the grace.
  assert.deepEqual(await answered(minute!.server.port), [VIP.a], `in the grace: the answer from before the move; ${await healthOf(minute!.admin)}`)
  const metrics = await (await fetch(`${minute!.admin}/metrics`)).text()
  const graced = Number(/^meridian_dns_cache_latency_grace_total (\d+)/m.exec(metrics)?.[1])
  assert.ok(graced >= 1, `meridian_dns_cache_latency_grace_total is ${graced}`)

  // A state change is not a latency move: a going down ends the grace at the next query.
  await pools.get('a')!.stop()
  await waitFor(async () => (await answered(minute!.server.port))[0] === VIP.b, { timeoutMs: CHECK.fall * CHECK.interval * 1000 + 3000, what: 'a down to end the grace' })
})
