// Memory of a large configuration and a full answer cache (issue 5): `npm run bench:memory`.
//
// Starts the real server (one process, --workers 1) on a zone of 1,000 weighted services over 5
// regions each, sends 100,000 distinct queries over UDP (1,000 services x 100 client /24s by ECS,
// each its own affinity bucket, so each its own cache key), then sends them all again to show they
// are held (hit ratio), and reads RSS (/proc) and the cache's own accounting (/metrics) at each step.
// Writes bench/results/memory-<time>.json. Options: --services N, --networks N, --settle S, --node-arg ARG, --no-save,
// --workers N: `serve --workers N` (control process + N DNS workers, each with its own cache); the
// queries are sent again until every worker's cache holds them all, and RSS is reported per process.
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { descendants, option, ROOT, serverNodeArgs } from './common.mjs'
import { saveResult } from './report.mjs'
import { buildQuery } from './traffic.mjs'
import { REGIONS } from './zone.mjs'

/** `--node-arg ARG` (repeatable): more node arguments for the server. */
const NODE_ARGS = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--node-arg' ? [a] : []))
const SERVICES = Number(option('--services', 1000))
const NETWORKS = Number(option('--networks', 100))
const save = !process.argv.includes('--no-save')
const SETTLE = Number(option('--settle', 15))
const WORKERS = Number(option('--workers', 1))
if (!Number.isInteger(WORKERS) || WORKERS < 1) throw new Error('--workers needs an integer >= 1')

/** The bench's 5 regions (bench/zone.mjs), on VIPs of their own. */
function zone() {
  const lines = ['origin: mem.test', 'soa: { mname: ns1, rname: h }', 'ns: [ns1]', 'records:', '  ns1: { A: 127.0.0.1 }', 'regions:']
  REGIONS.forEach(({ name, lat, lon }, i) => lines.push(`  ${name}: { location: { lat: ${lat}, lon: ${lon} }, vips: [127.91.${i + 1}.1, 127.91.${i + 1}.2, "2001:db8:91:${i + 1}::1"] }`))
  lines.push('services:')
  for (let s = 0; s < SERVICES; s++) lines.push(`  svc${s}: { policy: weighted, answers: 2 }`)
  return lines.join('\n') + '\n'
}

const rssOne = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024

/** RSS of the server: its one process, or with workers the control process and each worker. */
function rssMb(pid) {
  const [control, ...workers] = descendants(pid).map(rssOne)
  return { total: control + workers.reduce((a, b) => a + b, 0), control, workers }
}

async function metric(admin, name) {
  const text = await (await globalThis.fetch(`${admin}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN)
}

/** Sends every message (at most `window` in flight); resolves with the replies counted (UDP may lose a few). */
function exchange(port, messages, window = 64) {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4')
    let sent = 0
    let got = 0
    let lostTotal = 0
    let timer
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(() => {
        // Lost on the way: count them as answered for the window's sake and go on.
        const lost = sent - got
        got = sent
        lostTotal += lost
        if (sent === messages.length) {
          sock.close()
          resolve(got - lostTotal)
        } else {
          arm()
          pump()
        }
      }, 500)
    }
    const pump = () => {
      while (sent < messages.length && sent - got < window) sock.send(messages[sent++], port, '127.0.0.1')
    }
    sock.on('message', () => {
      got++
      arm()
      if (got === messages.length) {
        clearTimeout(timer)
        sock.close()
        resolve(got - lostTotal)
      } else pump()
    })
    sock.on('error', reject)
    arm()
    pump()
  })
}

async function main() {
  const tmp = mkdtempSync(path.join(tmpdir(), 'meridian-mem-'))
  writeFileSync(path.join(tmp, 'mem.test.yaml'), zone())
  const args = [path.join(ROOT, 'dist', 'src', 'cli.js'), 'serve', '--zones', tmp, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--workers', String(WORKERS), '--no-watch']
  // The node flags of the meridian executable (its #! line), as an operator runs it.
  const nodeArgs = await serverNodeArgs(NODE_ARGS)
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  const stop = () => child.kill('SIGTERM')
  process.on('exit', stop)
  let port
  let admin
  for await (const line of createInterface({ input: child.stdout })) {
    let l
    try {
      l = JSON.parse(line)
    } catch {
      continue
    }
    if (l.msg === 'admin API listening') admin = l.url
    if (Array.isArray(l.listen) && String(l.msg).startsWith('meridian serving')) {
      port = Number(/:(\d+)$/.exec(l.listen[0])[1])
      break
    }
  }
  child.stdout.resume()
  if (!port || !admin) throw new Error('the server did not start')
  const messages = []
  for (let s = 0; s < SERVICES; s++) {
    for (let n = 0; n < NETWORKS; n++) messages.push(buildQuery(messages.length & 0xffff, `svc${s}.mem.test`, 1, [11 + Math.floor(n / 250), n % 250, 7]))
  }
  const idle = rssMb(child.pid)
  const t0 = performance.now()
  await exchange(port, messages)
  // Workers share the socket, so one pass spreads the queries over them: send again until each holds them all.
  for (let pass = 1; pass < 12 && (await metric(admin, 'meridian_dns_cache_entries')) < 0.995 * WORKERS * messages.length; pass++) await exchange(port, messages)
  const fillSeconds = (performance.now() - t0) / 1000
  const filled = { rss: rssMb(child.pid), entries: await metric(admin, 'meridian_dns_cache_entries'), bytes: await metric(admin, 'meridian_dns_cache_bytes') }
  const heapUsedMb = (await metric(admin, 'meridian_nodejs_heap_size_used_bytes')) / 1048576
  const heapTotalMb = (await metric(admin, 'meridian_nodejs_heap_size_total_bytes')) / 1048576
  const externalMb = (await metric(admin, 'meridian_nodejs_external_memory_bytes')) / 1048576
  const hits0 = await metric(admin, 'meridian_dns_cache_hits_total')
  await exchange(port, messages)
  const hits = (await metric(admin, 'meridian_dns_cache_hits_total')) - hits0
  const end = { rss: rssMb(child.pid), entries: await metric(admin, 'meridian_dns_cache_entries') }
  // Then idle for a while: V8's memory reducer collects and gives pages back when allocation stops.
  const samples = []
  for (let i = 0; i < SETTLE; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    samples.push(rssMb(child.pid))
  }
  const settled = samples.length ? samples.reduce((a, b) => (b.total < a.total ? b : a)) : end.rss
  const exited = new Promise((resolve) => child.once('exit', resolve))
  stop()
  await exited
  rmSync(tmp, { recursive: true, force: true })
  const r = {
    at: new Date().toISOString(),
    services: SERVICES,
    regionsPerService: REGIONS.length,
    queries: messages.length,
    workers: WORKERS,
    rssIdleMb: +idle.total.toFixed(1),
    rssFilledMb: +filled.rss.total.toFixed(1),
    rssEndMb: +end.rss.total.toFixed(1),
    rssSettledMb: +settled.total.toFixed(1),
    ...(WORKERS > 1
      ? {
          perProcessMb: {
            idle: { control: +idle.control.toFixed(1), workers: idle.workers.map((x) => +x.toFixed(1)) },
            filled: { control: +filled.rss.control.toFixed(1), workers: filled.rss.workers.map((x) => +x.toFixed(1)) },
            end: { control: +end.rss.control.toFixed(1), workers: end.rss.workers.map((x) => +x.toFixed(1)) },
            settled: { control: +settled.control.toFixed(1), workers: settled.workers.map((x) => +x.toFixed(1)) },
          },
        }
      : {}),
    settleSeconds: SETTLE,
    heapUsedFilledMb: +heapUsedMb.toFixed(1),
    heapTotalFilledMb: +heapTotalMb.toFixed(1),
    externalFilledMb: +externalMb.toFixed(1),
    nodeOptions: process.env.NODE_OPTIONS ?? '',
    nodeArgs,
    cacheEntries: filled.entries,
    cacheBytesAccounted: filled.bytes,
    bytesPerEntryRss: Math.round(((filled.rss.total - idle.total) * 1024 * 1024) / filled.entries),
    bytesPerEntryAccounted: Math.round(filled.bytes / filled.entries),
    replayHitRatio: +(hits / messages.length).toFixed(4),
    fillSeconds: +fillSeconds.toFixed(1),
  }
  const who = WORKERS === 1 ? 'one process' : `control process + ${WORKERS} DNS workers, each caching all ${messages.length} answers`
  console.log(`Meridian memory: ${SERVICES} services x ${REGIONS.length} regions, ${messages.length} distinct queries (${who}, node ${r.nodeArgs.join(' ')}${r.nodeOptions ? `, NODE_OPTIONS=${r.nodeOptions}` : ''})`)
  const each = (x) => (WORKERS > 1 ? `  [control ${x.control.toFixed(1)} MB, workers ${x.workers.map((w) => w.toFixed(1)).join(' / ')} MB]` : '')
  console.log(`  RSS idle (zone loaded)         ${r.rssIdleMb} MB${each(idle)}`)
  console.log(`  RSS with the cache filled      ${r.rssFilledMb} MB  (${r.cacheEntries} entries; the cache accounts ${(r.cacheBytesAccounted / 1048576).toFixed(1)} MB)${each(filled.rss)}`)
  console.log(`  V8 heap used when filled       ${r.heapUsedFilledMb} MB of ${r.heapTotalFilledMb} MB committed (live data and garbage not yet collected); external ${r.externalFilledMb} MB${WORKERS > 1 ? ' (control process: workers report DNS counters only)' : ''}`)
  console.log(`  RSS after replaying them all   ${r.rssEndMb} MB  (replay hit ratio ${(r.replayHitRatio * 100).toFixed(1)}%)${each(end.rss)}`)
  console.log(`  RSS after ${SETTLE} s idle           ${r.rssSettledMb} MB  (the lowest sample; entries still cached: ${end.entries})${each(settled)}`)
  console.log(`  per entry                      ${r.bytesPerEntryRss} B of RSS, ${r.bytesPerEntryAccounted} B accounted`)
  if (save) console.log(`  saved ${path.relative(ROOT, saveResult('memory-', r.at, r))}`)
}

main().catch((err) => {
  console.error(`bench/memory: ${err.message}`)
  process.exit(1)
})
