/**
 * `meridian serve --workers 2` end to end: two DNS worker processes behind one control process,
 * beside a one-process server (`--workers 1`) on the same zone files. The workers must answer every
 * record type of the docs example (and GSLB answers) exactly as one process does, over UDP and TCP;
 * see an admin API drain as soon as its 2xx arrives; add up to one /metrics; survive a worker killed
 * with SIGKILL while queries keep coming (and replace it); stop on SIGTERM with exit 0; and not
 * outlive a control process killed with SIGKILL.
 *
 * The tests of the main describe share the servers and run in order (the kills come last).
 */
import { parseExposition } from '../helpers/metrics.js'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DNS_V8_FLAGS } from '../../src/cluster/primary.js'
import { dig, type DigResult } from '../helpers/dig.js'
import { docsYaml } from '../helpers/docs.js'
import { addressesOf, ask, askMany, ecsQuery, subnet } from '../helpers/gslb.js'
import { adminUrl, startServer, tempDir, TEST_GEODB, type LogLine, type RunningServer } from '../helpers/server.js'
import { buildQuery, parseReply, tcpExchange, TYPE, udpExchange } from '../helpers/wire.js'

const TOKEN = 'e2e-workers-token-7c1d'
const ORIGIN = 'workers-e2e.test'
/** Client networks of the test GeoIP database. */
const LONDON = '192.0.2.0/26'
const TOKYO = '198.51.100.128/27'
const VIP = { 'eu-west': '127.78.1.1', 'us-east': '127.78.2.1', 'ap-northeast': '127.78.3.1' } as const

const GSLB_ZONE = `origin: ${ORIGIN}
soa: { mname: ns1, rname: hostmaster.${ORIGIN}., serial: 2026010101 }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
regions:
  eu-west: { location: { lat: 53.35, lon: -6.26 }, vips: [${VIP['eu-west']}, "2001:db8:78:1::1"] }
  us-east: { location: { lat: 38.95, lon: -77.45 }, vips: [${VIP['us-east']}, "2001:db8:78:2::1"] }
  ap-northeast: { location: { lat: 35.68, lon: 139.69 }, vips: [${VIP['ap-northeast']}, "2001:db8:78:3::1"] }
services:
  www: { regions: all, policy: geo, answers: 1 }
  pair: { regions: [eu-west, us-east], policy: geo-latency, answers: 2 }
`

/** What a dig answer says, with the message ID left out and every section in a stable order. */
function normal(r: DigResult) {
  const rrs = (s: DigResult['answer']) => s.map((x) => `${x.name} ${x.ttl} ${x.class} ${x.type} ${x.data}`).sort()
  return { status: r.status, flags: [...r.flags].sort(), answer: rrs(r.answer), authority: rrs(r.authority), additional: rrs(r.additional), edns: r.edns, clientSubnet: r.clientSubnet }
}

/** Every dns worker of `server` that logged it was ready, by pid. */
const readyWorkers = (server: RunningServer) => server.logs.filter((l) => l.msg === 'dns worker ready').map((l) => Number(l.pid))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function metricsOf(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`)
  assert.equal(res.status, 200)
  return res.text()
}

/** The sum of a counter over its label sets in Prometheus text. */
function total(text: string, name: string): number {
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  return sum
}

/**
 * Asks continuously (one UDP query, resent after 1 s without an answer, at most 3 times, and one TCP
 * query on a fresh connection, retried once) until stopped; counts what it asked and what needed a retry.
 */
function keepAsking(port: number) {
  let stopped = false
  const stats = { udp: 0, udpRetries: 0, tcp: 0, tcpRetries: 0, failures: [] as string[] }
  const udpQuery = ecsQuery(`www.${ORIGIN}`, TYPE.A, subnet(LONDON))
  const tcpQuery = buildQuery({ id: 7, name: `www.${ORIGIN}`, type: TYPE.A, rd: false })
  const loop = (async () => {
    while (!stopped) {
      let reply: Buffer | null = null
      for (let attempt = 0; attempt < 3 && !reply; attempt++) {
        if (attempt > 0) stats.udpRetries++
        reply = await udpExchange(port, udpQuery, 1000)
      }
      if (!reply) stats.failures.push('udp: no answer after 3 tries')
      else if (addressesOf(parseReply(reply)).join() !== VIP['eu-west']) stats.failures.push(`udp answer ${addressesOf(parseReply(reply)).join()}`)
      else stats.udp++
      try {
        let reply: Buffer
        try {
          reply = await tcpExchange(port, tcpQuery, 2000)
        } catch {
          stats.tcpRetries++
          reply = await tcpExchange(port, tcpQuery, 2000)
        }
        if (parseReply(reply).rcode !== 0) stats.failures.push('tcp rcode')
        stats.tcp++
      } catch (err) {
        stats.failures.push(`tcp: ${(err as Error).message}`)
      }
    }
  })()
  return {
    stats,
    async stop() {
      stopped = true
      await loop
      return stats
    },
  }
}

describe('DNS workers (--workers 2)', () => {
  let single: RunningServer
  let multi: RunningServer
  let admin: string
  let dir: Awaited<ReturnType<typeof tempDir>>

  before(async () => {
    dir = await tempDir('meridian-workers-e2e-')
    const yaml = await docsYaml('zones.md', 'Complete example')
    // A fixed serial, so that two servers started a second apart agree on it.
    await writeFile(path.join(dir.dir, 'shop.example.com.yaml'), yaml.replace('serial: auto', 'serial: 2026010101'))
    await writeFile(path.join(dir.dir, `${ORIGIN}.yaml`), GSLB_ZONE)
    const tokenFile = path.join(dir.dir, '.admin-token')
    await writeFile(tokenFile, TOKEN + '\n')
    // Both kept even when the other did not start, so that after() stops it: each runs in a copy
    // of the zones, not under dir, and one left running kept this file from ever ending.
    const started = await Promise.allSettled([
      startServer({ zones: dir.dir, args: ['--geodb', TEST_GEODB] }),
      startServer({ zones: dir.dir, args: ['--geodb', TEST_GEODB, '--workers', '2', '--admin-token-file', tokenFile] }),
    ])
    ;[single, multi] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as [RunningServer, RunningServer]
    for (const s of started) if (s.status === 'rejected') throw s.reason
    admin = await adminUrl(multi)
  })

  after(async () => {
    await single?.stop()
    await multi?.stop()
    await dir?.cleanup()
  })

  test('the control process logs its start-up line once both workers are ready, on the port they share', () => {
    const started = multi.logs.findIndex((l) => typeof l.msg === 'string' && l.msg.startsWith('meridian serving'))
    const ready = multi.logs.filter((l, i) => l.msg === 'dns worker ready' && i < started)
    assert.equal(ready.length, 2, 'two workers ready before the start-up line')
    assert.deepEqual(new Set(ready.map((l) => l.worker)), new Set([1, 2]))
    for (const l of ready) assert.deepEqual(l.listen, multi.listen)
    assert.equal(multi.logs[started]!.workers, 2)
    assert.deepEqual(multi.listen, [`udp://127.0.0.1:${multi.port}`, `tcp://127.0.0.1:${multi.port}`])
  })

  test('each worker runs with the DNS V8 flags (a 1 MiB young generation, a bounded old-generation growth)', async () => {
    for (const pid of readyWorkers(multi)) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
      for (const flag of DNS_V8_FLAGS) assert.ok(argv.includes(flag), `worker ${pid} runs with ${flag}: ${argv.join(' ')}`)
    }
  })

  const QUESTIONS: string[][] = [
    ['shop.example.com', 'SOA'],
    ['shop.example.com', 'NS'],
    ['shop.example.com', 'MX'],
    ['shop.example.com', 'TXT'],
    ['shop.example.com', 'CAA'],
    ['shop.example.com', 'ANY'],
    ['shop.example.com', 'DNSKEY'],
    ['ns1.shop.example.com', 'A'],
    ['ns1.shop.example.com', 'AAAA'],
    ['static.shop.example.com', 'A'],
    ['static.shop.example.com', 'AAAA'],
    ['docs.shop.example.com', 'A'],
    ['docs.shop.example.com', 'CNAME'],
    ['_https._tcp.shop.example.com', 'SRV'],
    ['_dmarc.shop.example.com', 'TXT'],
    ['_tcp.shop.example.com', 'A'],
    ['nope.shop.example.com', 'A'],
    ['example.org', 'A'],
    [`www.${ORIGIN}`, 'A', `+subnet=${LONDON}`],
    [`www.${ORIGIN}`, 'A', `+subnet=${TOKYO}`],
    [`www.${ORIGIN}`, 'AAAA', `+subnet=${TOKYO}`],
    [`www.${ORIGIN}`, 'A'],
    [`pair.${ORIGIN}`, 'A', `+subnet=${LONDON}`],
    [`pair.${ORIGIN}`, 'TXT'],
    [ORIGIN, 'SOA', '+noedns'],
  ]
  for (const transport of ['udp', 'tcp']) {
    test(`every record type of the docs example, and GSLB answers, are answered as by one process (${transport})`, async () => {
      const extra = transport === 'tcp' ? ['+tcp'] : []
      for (const q of QUESTIONS) {
        const [a, b] = await Promise.all([dig('127.0.0.1', single.port, '+norec', ...extra, ...q), dig('127.0.0.1', multi.port, '+norec', ...extra, ...q)])
        assert.ok(a.status !== 'NONE', `one process answers ${q.join(' ')}`)
        assert.deepEqual(normal(b), normal(a), `${q.join(' ')} over ${transport}`)
        // (over UDP, a truncated answer ends on TCP: the same for both)
        assert.equal(b.transport, a.transport, `${q.join(' ')}: the same transport`)
        if (transport === 'tcp') assert.equal(b.transport, 'TCP')
      }
    })
  }

  test('an admin API drain is answered by both workers from its 2xx on; undrain likewise', async (t) => {
    const london = { name: `www.${ORIGIN}`, type: TYPE.A, client: subnet(LONDON) }
    const regions = async () => new Set((await askMany(multi.port, Array.from({ length: 50 }, () => london), 8)).map((r) => addressesOf(r).join()))
    assert.deepEqual(await regions(), new Set([VIP['eu-west']]))
    const call = (action: string) => fetch(`${admin}/v1/zones/${ORIGIN}/regions/eu-west/${action}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    const drained = await call('drain')
    const t0 = performance.now()
    assert.equal(drained.status, 200, await drained.text())
    // Every worker confirmed the new zone set before the 2xx: the very next 50 queries all see it.
    assert.deepEqual(await regions(), new Set([VIP['us-east']]))
    const r = await dig('127.0.0.1', multi.port, '+norec', `www.${ORIGIN}`, 'A', `+subnet=${LONDON}`)
    assert.deepEqual(r.answer.map((a) => a.data), [VIP['us-east']])
    t.diagnostic(`drain seen by dig ${(performance.now() - t0).toFixed(0)} ms after the 2xx`)
    assert.ok(performance.now() - t0 < 1000)
    const undrained = await call('undrain')
    assert.equal(undrained.status, 200, await undrained.text())
    assert.deepEqual(await regions(), new Set([VIP['eu-west']]))
  })

  test('/metrics sums the DNS query counters of both workers, and has the control process metrics once', async (t) => {
    const before = total(await metricsOf(admin), 'meridian_dns_queries_total')
    const K = 400
    // No resends within the run (resendMs 10 s): every query is answered exactly once.
    const replies = await askMany(multi.port, Array.from({ length: K }, (_, i) => ({ name: i % 2 ? `www.${ORIGIN}` : `nx${i}.${ORIGIN}`, type: TYPE.A, client: subnet(TOKYO) })), 32, 10000)
    assert.equal(replies.length, K)
    const text = await metricsOf(admin)
    assert.equal(total(text, 'meridian_dns_queries_total') - before, K)
    assert.ok(total(text, 'meridian_config_reloads_total') >= 1, 'the control process counts reloads')
    assert.equal(text.split('\n').filter((l) => l.startsWith('meridian_process_start_time_seconds ')).length, 1)
    for (const help of text.split('\n').filter((l) => l.startsWith('# HELP '))) assert.equal(text.split(`${help}\n`).length, 2, `once: ${help}`)
    // The merged exposition as a Prometheus server reads it: valid, no doubled prefix, no gauge named _total.
    const families = parseExposition(text)
    assert.ok(families.has('meridian_process_resident_memory_bytes') && families.has('meridian_nodejs_eventloop_lag_p99_seconds'))
    assert.deepEqual([...families.keys()].filter((n) => n.startsWith('meridian_process_process_') || n.startsWith('meridian_process_nodejs_')), [])
    t.diagnostic(`${K} queries; meridian_dns_queries_total rose by ${K}`)
  })

  test('a worker killed with SIGKILL is replaced; queries are answered throughout; counters do not go down', async (t) => {
    const original = readyWorkers(multi)
    assert.equal(original.length, 2)
    const before = await metricsOf(admin)
    const countsBefore = total(before, 'meridian_dns_queries_total')
    const deathsBefore = total(before, 'meridian_dns_worker_deaths_total')
    const asking = keepAsking(multi.port)
    // Scrapes back to back through the kills: the summed counter must never go down, also in the
    // moment between a worker's death and its counters' fold into the retired total.
    const scrapes: number[] = []
    let scraping = true
    const scraper = (async () => {
      while (scraping) scrapes.push(total(await metricsOf(admin), 'meridian_dns_queries_total'))
    })()
    const t0 = performance.now()
    const replaced = async (victim: number, known: number[]): Promise<LogLine> => {
      const died = multi.waitForLog((l) => l.pid === victim && l.signal === 'SIGKILL' && /died/.test(l.msg))
      const fresh = multi.waitForLog((l) => l.msg === 'dns worker ready' && !known.includes(Number(l.pid)))
      process.kill(victim, 'SIGKILL')
      const death = await died
      assert.equal(death.level, 50, 'a death is logged as an error')
      return fresh
    }
    // Kill the first; once its replacement is up, kill the second: only the replacement is left to answer.
    const first = await replaced(original[0]!, original)
    const second = await replaced(original[1]!, [...original, Number(first.pid)])
    // A few more rounds with both replacements up.
    const upTo = asking.stats.udp + 20
    while (asking.stats.udp < upTo && asking.stats.failures.length === 0) await ask(multi.port, `www.${ORIGIN}`, TYPE.A, subnet(LONDON))
    const stats = await asking.stop()
    scraping = false
    await scraper
    for (let i = 1; i < scrapes.length; i++) assert.ok(scrapes[i]! >= scrapes[i - 1]!, `scrape ${i} of ${scrapes.length}: the summed counter went down (${scrapes[i - 1]} -> ${scrapes[i]})`)
    t.diagnostic(`${scrapes.length} scrapes during the kills, each total at least the one before`)
    t.diagnostic(`during the kills (${(performance.now() - t0).toFixed(0)} ms): ${stats.udp} UDP and ${stats.tcp} TCP queries answered (${stats.udpRetries} UDP resent, ${stats.tcpRetries} TCP retried); replacements pid ${first.pid} and ${second.pid}`)
    assert.deepEqual(stats.failures, [])
    assert.ok(stats.udp > 20 && stats.tcp > 0)
    for (const pid of original) assert.equal(alive(pid), false)
    assert.deepEqual(second.listen, multi.listen, 'the replacement answers on the same sockets')
    const ready = await fetch(`${admin}/readyz`)
    assert.deepEqual([ready.status, await ready.json()], [200, { ready: true, reasons: [] }])
    const after = await metricsOf(admin)
    const countsAfter = total(after, 'meridian_dns_queries_total')
    assert.ok(countsAfter >= countsBefore, `the summed counter did not go down (${countsBefore} -> ${countsAfter})`)
    assert.equal(total(after, 'meridian_dns_worker_deaths_total') - deathsBefore, 2, 'both deaths counted')
    assert.equal(total(after, 'meridian_dns_workers_answering'), 2)
    // And the replacements got the zone set and answer like one process.
    const [a, b] = await Promise.all([dig('127.0.0.1', single.port, '+norec', 'shop.example.com', 'MX'), dig('127.0.0.1', multi.port, '+norec', 'shop.example.com', 'MX')])
    assert.deepEqual(normal(b), normal(a))
  })

  test('SIGTERM stops the workers and exits 0; nothing answers afterwards', async () => {
    const pids = readyWorkers(multi)
    const code = await multi.stop()
    assert.equal(code, 0, multi.stderr())
    for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} is gone`)
    const stopped = multi.logs.filter((l) => l.msg === 'dns worker stopped')
    assert.equal(stopped.length, 2, 'both live workers said they stopped')
    const r = await dig('127.0.0.1', multi.port, '+norec', 'shop.example.com', 'SOA')
    assert.equal(r.status, 'NONE')
  })
})

describe('a control process killed with SIGKILL', () => {
  test('takes its workers with it', async () => {
    const server = await startServer({ args: ['--geodb', TEST_GEODB, '--workers', '2'] })
    const pids = readyWorkers(server)
    assert.equal(pids.length, 2)
    server.proc.kill('SIGKILL')
    await server.stop()
    // Not our children: nothing to wait on but their disappearance.
    const deadline = performance.now() + 5000
    while (pids.some(alive) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 25))
    assert.deepEqual(pids.filter(alive), [], 'no worker outlives the control process')
    // Each says why it stopped, on the stdout it shared with the control process: read to its end.
    if (!server.proc.stdout.readableEnded) await once(server.proc.stdout, 'end')
    const said = server.logs.filter((l) => l.msg === 'dns worker stopped').map((l) => [l.pid, l.why])
    assert.deepEqual(said.sort(), pids.map((pid) => [pid, 'the control process disconnected']).sort())
  })
})

/** The pids of `pid`'s child processes (Linux: /proc/PID/task/PID/children). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text.split(' ').filter(Boolean).map(Number)
}

describe('a SIGTERM while a replacement DNS worker is starting', () => {
  test('stops the replacement as well, without waiting for the 5 s kill, and exits 0', async () => {
    const server = await startServer({ args: ['--geodb', TEST_GEODB, '--workers', '2'] })
    const pids = readyWorkers(server)
    assert.equal(pids.length, 2)
    process.kill(pids[0]!, 'SIGKILL')
    await server.waitForLog((l) => l.pid === pids[0] && /died/.test(l.msg))
    // The replacement is forked 100 ms after the death: SIGTERM as soon as its process exists,
    // while it is still loading its modules (a message sent to it then finds no listener).
    let fresh: number | undefined
    while (fresh === undefined) {
      fresh = (await childrenOf(server.proc.pid!)).find((pid) => !pids.includes(pid))
      if (fresh === undefined) await new Promise((r) => setTimeout(r, 2))
    }
    const t0 = performance.now()
    const code = await server.stop()
    const ms = performance.now() - t0
    assert.equal(code, 0, server.stderr())
    assert.ok(ms < 2500, `stopped in ${ms.toFixed(0)} ms (the control process kills a worker that does not stop after 5 s)`)
    assert.equal(alive(fresh), false, `the replacement ${fresh} is gone`)
    assert.equal(server.logs.filter((l) => l.msg === 'dns worker ready' && l.pid === fresh).length, 0, 'the replacement never started answering')
  })
})

describe('a DNS worker that stops responding (--worker-hang-timeout)', () => {
  test('is killed once silent past the timeout and replaced; the other answers throughout', async (t) => {
    const server = await startServer({ args: ['--geodb', TEST_GEODB, '--workers', '2', '--worker-hang-timeout', '5000'] })
    const pids = readyWorkers(server)
    assert.equal(pids.length, 2)
    // SIGSTOP: the process lives on but runs nothing, as a worker stuck in a loop would.
    const victim = pids[0]!
    t.after(async () => {
      if (alive(victim)) process.kill(victim, 'SIGCONT')
      await server.stop()
    })
    const stopped = performance.now()
    process.kill(victim, 'SIGSTOP')
    const killed = server.waitForLog((l) => l.pid === victim && /has sent nothing for \d+ s; killing it/.test(String(l.msg)), 20_000)
    const replaced = server.waitForLog((l) => l.msg === 'dns worker ready' && !pids.includes(Number(l.pid)), 25_000)
    const said = await killed
    const after = performance.now() - stopped
    // Silent 5 s at least (its last report may have been up to 2 s before the stop), found within the watchdog's 1.25 s round.
    assert.ok(Number(said.silentMs) >= 5000 && after < 5000 + 1250 + 1000, `killed after ${after.toFixed(0)} ms, silent ${String(said.silentMs)} ms`)
    const fresh = await replaced
    const death = await server.waitForLog((l) => l.pid === victim && l.hung === true && /was killed: it had stopped responding/.test(String(l.msg)))
    assert.equal(death.signal, 'SIGKILL')
    assert.equal(alive(victim), false, 'the stopped worker is gone')
    // Every query is answered: the live worker, then both, read the shared socket.
    for (let i = 0; i < 50; i++) {
      const raw = await udpExchange(server.port, buildQuery({ id: i, name: 'www.gslb.example.test', type: TYPE.A }))
      assert.ok(raw && parseReply(raw).id === i, `query ${i} answered`)
    }
    t.diagnostic(`killed ${after.toFixed(0)} ms after SIGSTOP; replacement pid ${String(fresh.pid)}`)
  })
})

/** Whether `pid` has exited and waits to be reaped by its parent (Linux: state Z in /proc/PID/stat). */
async function zombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
}

describe('a signal sent to the whole process group (systemd KillMode=control-group, Ctrl-C in a terminal)', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal}: the workers' exits are not deaths, even when the control process sees them before its own ${signal}; exit 0, nothing logged as a warning or an error`, async (t) => {
      // In which order a stopped control process then sees its signal and the exits is not set:
      // the old code logged deaths in 2 of 3 rounds. Three rounds of SIGTERM.
      for (let round = 0; round < (signal === 'SIGTERM' ? 3 : 1); round++) await groupSignal(t, signal)
    })
  }
})

async function groupSignal(t: { diagnostic(s: string): void }, signal: NodeJS.Signals): Promise<void> {
  const server = await startServer({ args: ['--geodb', TEST_GEODB, '--workers', '2'], detached: true })
  const pid = server.proc.pid!
  const pids = readyWorkers(server)
  assert.equal(pids.length, 2)
  // A control process busy (or not scheduled) when the signal comes: stopped, so that the
  // workers that stop on their own have exited before it runs its handler.
  process.kill(pid, 'SIGSTOP')
  try {
    process.kill(-pid, signal)
    if (signal === 'SIGTERM') {
      const deadline = performance.now() + 10_000
      for (const w of pids) while (!(await zombie(w)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      for (const w of pids) assert.ok(await zombie(w), `worker ${w} has exited`)
    }
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  // Its exit, on the signal to the group alone (stop() would send a SIGTERM of its own).
  const [code] = server.proc.exitCode !== null ? [server.proc.exitCode] : ((await once(server.proc, 'exit')) as [number | null])
  await server.stop()
  assert.equal(code, 0, server.stderr())
  // The demo zone's checks find no pool here: on a loaded machine a round can end (a region down,
  // logged as a warning) before the signal. Those are not what this test is about.
  const loud = server.logs.filter((l) => l.level >= 40 && !/^health: .* is down$/.test(l.msg)).map((l) => l.msg)
  assert.deepEqual(loud, [], 'no warning or error')
  assert.equal(server.logs.filter((l) => l.msg === 'dns worker stopped').length, 2)
  assert.equal(server.logs.filter((l) => /dns worker ready/.test(l.msg) && !pids.includes(Number(l.pid))).length, 0, 'no replacement started')
  t.diagnostic(`${signal} to the process group of ${pid}: exit 0, workers ${pids.join(', ')} stopped, nothing logged above info`)
}
