#!/usr/bin/env node
/**
 * How long DNS waits while the zones change: the real server (one process, `--workers 1`, as `auto`
 * is on one CPU; or `--workers N` DNS workers, which each take the new set on their own loop) on a zone of N geo-latency services over 5 regions with checks, a UDP query every
 * millisecond, and two changes during the run: two reloads of the file (a TTL edited on disk, which
 * the watcher takes), or with `--api` two admin API changes (a drain, then an undrain). Prints the
 * longest wait for an answer, how many answers came more than 20 ms after their query, and how long
 * each change took (the server's `ms`). Needs `npm run build`. The queries of the first second
 * (WARM_UP_MS, before the first change) are left out of those figures: a server's first answers
 * wait for what it builds on its first query (the answer cache's indexes of the set, 50-100 ms with
 * 5,000 services and two workers), which is no zone change's doing; `warmUpMs` is their longest wait.
 *
 *   node bench/reload-stall.mjs [--services 1000] [--api] [--runs 2] [--workers 1] [--node-arg ARG ...]
 *
 * --node-arg ARG (repeatable) runs the server as `node ARG... dist/src/cli.js` instead of the
 * executable: with the executable's V8 flags written out, a CPU profile or a GC trace of the server
 * through the changes (`--node-arg --max-semi-space-size=1 --node-arg --heap-growing-percent=50
 * --node-arg --cpu-prof --node-arg --cpu-prof-dir=/tmp/prof`; the profile is written when it stops).
 *
 * docs/zones.md and docs/benchmarks.md (session 21) quote its figures: with 1,000 services the
 * longest wait through a reload was 280-358 ms with the set built on the event loop, 15-21 ms with
 * the build thread; through an admin drain or undrain 641-666 ms, then 25-31 ms.
 */
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import path from 'node:path'
import { onJsonLines, option, ROOT } from './common.mjs'

const SERVICES = Number(option('--services', 1000))
const RUNS = Number(option('--runs', 2))
const API = process.argv.includes('--api')
const WORKERS = Number(option('--workers', 1))
const NODE_ARGS = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--node-arg' ? [a] : []))
const REGIONS = ['us-east', 'eu-west', 'ap-northeast', 'sa-east', 'ap-southeast']
/** Queries sent this long after the first are measured; the first change comes at 1500 ms. */
const WARM_UP_MS = 1000

function zone(n) {
  const lines = ['origin: stall.test', 'soa: { mname: ns1, rname: h }', 'ns: [ns1]', 'records:', '  ns1: { A: 127.0.0.1 }', 'regions:']
  REGIONS.forEach((r, i) => lines.push(`  ${r}: { location: { lat: ${i * 10}, lon: ${i * 20} }, vips: [127.91.${i + 1}.1, 127.91.${i + 1}.2, "2001:db8:91:${i + 1}::1"], check: { url: "http://{vip}:80/healthz" } }`))
  lines.push('services:')
  for (let s = 0; s < n; s++) lines.push(`  svc${s}:\n    policy: geo-latency\n    regions: [${REGIONS.join(', ')}]\n    answers: 2\n    ttl: 30`)
  return lines.join('\n') + '\n'
}

/** `svc1.stall.test A` with ID 0. */
const QUERY = Buffer.concat([Buffer.from('000001000001000000000000', 'hex'), ...['svc1', 'stall', 'test'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from('0000010001', 'hex')])

async function run() {
  const dir = mkdtempSync(path.join(tmpdir(), 'meridian-stall-'))
  const zones = path.join(dir, 'zones')
  const file = path.join(zones, 'stall.test.yaml')
  const token = path.join(dir, 'token')
  writeFileSync(token, 'stall-token\n')
  mkdirSync(zones)
  writeFileSync(file, zone(SERVICES))
  const server = spawn(NODE_ARGS.length > 0 ? process.execPath : path.join(ROOT, 'dist/src/cli.js'), [...(NODE_ARGS.length > 0 ? [...NODE_ARGS, path.join(ROOT, 'dist/src/cli.js')] : []), 'serve', '--zones', zones, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-token-file', token, '--workers', String(WORKERS), '--geodb', path.join(ROOT, 'geodb/geo-whois-asn-country.mmdb')], { stdio: ['ignore', 'pipe', 'inherit'] })
  let port
  let admin
  const changes = []
  onJsonLines(server.stdout, (l) => {
    if (l.msg === 'admin API listening') admin = l.url
    if (Array.isArray(l.listen) && String(l.msg).startsWith('meridian serving')) port = Number(/:(\d+)$/.exec(l.listen[0])[1])
    if (l.msg === 'zones loaded' && l.reason !== 'start-up') changes.push(Math.round(l.ms))
  })
  try {
    return await measure(server, file, () => ({ port, admin, changes }))
  } finally {
    // Stopped whatever happened, so that no server outlives the script.
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM')
      await new Promise((r) => server.once('exit', r))
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

async function measure(server, file, seen) {
  const deadline = Date.now() + 60_000
  while ((seen().port === undefined || seen().admin === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  const { port, admin, changes } = seen()
  if (port === undefined) throw new Error('the server did not start')
  const sock = dgram.createSocket('udp4')
  const sent = new Map()
  const t0 = performance.now()
  let id = 0
  let longest = 0
  let warmUp = 0
  let late = 0
  let answered = 0
  sock.on('message', (m) => {
    const t = sent.get(m.readUInt16BE(0))
    if (t === undefined) return
    sent.delete(m.readUInt16BE(0))
    const wait = performance.now() - t
    if (t - t0 < WARM_UP_MS) {
      warmUp = Math.max(warmUp, wait)
      return
    }
    answered++
    if (wait > 20) late++
    longest = Math.max(longest, wait)
  })
  const tick = setInterval(() => {
    id = (id + 1) & 0xffff
    QUERY.writeUInt16BE(id, 0)
    sent.set(id, performance.now())
    sock.send(QUERY, port, '127.0.0.1')
  }, 1)
  for (const [n, at] of [[1, 1500], [2, 3500]]) {
    await new Promise((r) => setTimeout(r, Math.max(0, at - (performance.now() - t0))))
    if (API) {
      const r = await globalThis.fetch(`${admin}/v1/zones/stall.test/regions/eu-west/${n === 1 ? 'drain' : 'undrain'}`, { method: 'POST', headers: { authorization: 'Bearer stall-token' } })
      if (r.status !== 200) throw new Error(`the admin change answered ${r.status}: ${await r.text()}`)
    } else writeFileSync(file, readFileSync(file, 'utf8').replace(/ttl: \d+/, `ttl: ${30 + n}`))
  }
  await new Promise((r) => setTimeout(r, 2000))
  clearInterval(tick)
  sock.close()
  return { longestMs: Math.round(longest), lateOver20ms: late, answered, changesMs: changes, warmUpMs: Math.round(warmUp) }
}

console.log(`reload stall: ${SERVICES} services x ${REGIONS.length} regions, ${WORKERS === 1 ? 'one process' : `${WORKERS} DNS workers`}, a query every ms, two ${API ? 'admin API changes (drain, undrain)' : 'file reloads'}`)
for (let i = 0; i < RUNS; i++) console.log(JSON.stringify(await run()))
