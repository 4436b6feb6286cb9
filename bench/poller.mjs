#!/usr/bin/env node
/**
 * `npm run bench:poller`: the health poller at scale. One HealthPoller (dist/src/health, so run
 * `npm run build` first) checks N distinct HTTP targets (default 5,000, every 5 s) served by real
 * HTTP servers on loopback (OS-chosen ports) in a child process, for a few intervals, and this
 * script measures how regular each target's rounds are: the gaps between consecutive check starts
 * of the same target, against the interval. The requirement it checks (the scale issue): 5,000
 * targets at a 5 s interval on one core with less than 10% drift of the interval.
 *
 * Pinning: the poller process re-runs itself under `taskset -c 0` (when taskset exists and the
 * machine has 2+ CPUs; `--no-pin` to skip), and the HTTP servers run under `taskset -c 1`, so the
 * CPU figure is the poller's alone. Without taskset, run `taskset -c 0 node bench/poller.mjs`.
 *
 * Reported: targets, interval, gaps, mean/p50/p99/max gap, max and p99 drift (|gap - interval| as
 * % of the interval), the poller process's CPU (process.cpuUsage() over the run / wall time), RSS,
 * event-loop delay, check results. A table on stdout and JSON in bench/results/poller-<time>.json.
 *
 *   node bench/poller.mjs [--targets 5000] [--interval 5] [--seconds 20] [--servers 4] [--reader-hz 1000] [--no-pin] [--no-save]
 */
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { gitInfo, has, machineInfo, ROOT, serverNodeArgs } from './common.mjs'
import { saveResult } from './report.mjs'

const SELF = fileURLToPath(import.meta.url)
const HOST = '127.0.0.1'
const PINNED_ENV = 'MERIDIAN_POLLER_BENCH_PINNED'
const LAG_RESOLUTION_MS = 10

const HELP = `usage: node bench/poller.mjs [options]      (npm run bench:poller -- [options])

  --targets N      distinct HTTP check targets (default 5000)
  --interval S     check interval in seconds (default 5); timeout is min(2 s, interval / 2)
  --seconds S      measured run length (default 4 intervals: 20 s at 5 s)
  --servers N      HTTP servers (origins) the targets are spread over, each on 127.0.0.1:<port 0>
                   (default 4); --servers N = --targets N gives every target its own origin
  --keepalive S    the servers' keep-alive timeout in seconds (default 65, as load balancers and
                   nginx keep idle connections; with 5 or less, which is Node's default, undici
                   drops each connection before the target's next round and every round connects)
  --reader-hz N    view() reads per second, as the DNS path makes them, each followed by a lookup
                   of one target (default 1000; 0 for none)
  --no-pin         do not pin (the poller to CPU 0, the servers to CPU 1)
  --no-save        print only; do not write bench/results/poller-<time>.json
  --help`

function parseArgs(argv) {
  const o = { targets: 5000, interval: 5, seconds: undefined, servers: 4, keepalive: 65, readerHz: 1000, pin: true, save: true }
  const nums = { '--targets': 'targets', '--interval': 'interval', '--seconds': 'seconds', '--servers': 'servers', '--keepalive': 'keepalive', '--reader-hz': 'readerHz' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--help' || a === '-h') {
      console.log(HELP)
      process.exit(0)
    } else if (a === '--no-pin') o.pin = false
    else if (a === '--no-save') o.save = false
    else if (nums[a]) {
      const v = Number(argv[++i])
      if (!Number.isFinite(v) || v < 0 || (a !== '--reader-hz' && v <= 0)) fail(`${a} needs a positive number`)
      o[nums[a]] = v
    } else fail(`unknown option ${a} (--help lists them)`)
  }
  o.targets = Math.floor(o.targets)
  o.servers = Math.max(1, Math.min(Math.floor(o.servers), o.targets))
  o.seconds ??= 4 * o.interval
  return o
}

function fail(msg) {
  console.error(`bench/poller.mjs: ${msg}`)
  process.exit(2)
}

// ---------------------------------------------------------------------------------------------
// The servers (child process): `node bench/poller.mjs --serve N` prints nothing, sends its ports.

async function serve(count, keepaliveS) {
  const servers = []
  for (let i = 0; i < count; i++) {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' })
      res.end('ok\n')
    })
    server.keepAliveTimeout = keepaliveS * 1000
    server.headersTimeout = keepaliveS * 1000 + 1000
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, HOST, resolve)
    })
    servers.push(server)
  }
  process.send({ ports: servers.map((s) => s.address().port) })
  process.on('disconnect', () => process.exit(0))
}

// ---------------------------------------------------------------------------------------------

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/** Busy time of one CPU so far, ms (Linux /proc/stat; null elsewhere). */
function cpuBusyMs(cpu) {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${cpu} `))
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const busy = f.reduce((a, b) => a + b, 0) - f[3] - (f[4] ?? 0) // all but idle and iowait
    return (busy * 1000) / 100 // USER_HZ is 100 on Linux
  } catch {
    return null
  }
}

function startServers(count, keepaliveS, pinCpu) {
  const cmd = pinCpu === null ? [process.execPath] : ['taskset', '-c', String(pinCpu), process.execPath]
  const child = spawn(cmd[0], [...cmd.slice(1), SELF, '--serve', String(count), String(keepaliveS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before listening`)))
    child.once('message', (m) => resolve({ child, ports: m.ports }))
  })
}

async function main(o) {
  const { HealthPoller } = await import(path.join(ROOT, 'dist/src/health/poller.js'))
  const { createCheck } = await import(path.join(ROOT, 'dist/src/health/check.js'))
  const { createLogger } = await import(path.join(ROOT, 'dist/src/log.js'))

  const ncpu = os.cpus().length
  const pinned = process.env[PINNED_ENV] === '1'
  const { child, ports } = await startServers(o.servers, o.keepalive, pinned && ncpu >= 2 ? 1 : null)

  const intervalMs = Math.round(o.interval * 1000)
  const timeoutMs = Math.min(2000, Math.floor(intervalMs / 2))
  // Distinct URLs: target i is /t/<i> on server i mod servers, so each is its own check key.
  const specs = Array.from({ length: o.targets }, (_, i) => ({ kind: 'http', url: `http://${HOST}:${ports[i % ports.length]}/t/${i}`, intervalMs, timeoutMs }))

  const starts = new Map() // url -> check start times (performance.now())
  const results = { ok: 0, failed: 0, errors: new Map(), latencies: [] }
  const poller = new HealthPoller({
    log: createLogger('warn'),
    createCheck: (spec, agents) => {
      const check = createCheck(spec, agents)
      const times = []
      starts.set(spec.url, times)
      return {
        spec,
        run(signal) {
          times.push(performance.now())
          return check.run(signal)
        },
      }
    },
    onResult: (_key, r) => {
      if (r.ok) results.ok++
      else {
        results.failed++
        results.errors.set(r.error, (results.errors.get(r.error) ?? 0) + 1)
      }
      results.latencies.push(r.latencyMs)
    },
  })

  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS })
  const cpu0 = process.cpuUsage()
  const core0 = pinned ? cpuBusyMs(0) : null
  const t0 = performance.now()
  lag.enable()
  const keys = poller.setTargets(specs)
  const setupMs = performance.now() - t0

  let reads = 0
  const snapshots = new Set()
  let lastView = null
  let reader = null
  if (o.readerHz > 0) {
    // setInterval fires at most every ~1 ms; make up the rate with several reads per tick.
    const perTick = Math.max(1, Math.round(o.readerHz / 1000))
    const every = Math.max(1, Math.round((1000 * perTick) / o.readerHz))
    reader = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        const v = poller.view()
        v.targets.get(keys[reads++ % keys.length])
        if (v !== lastView) {
          lastView = v
          snapshots.add(v.generation)
        }
      }
    }, every)
  }
  let stateChanges = 0
  poller.onChange((_v, changes) => (stateChanges += changes.length))
  const generation0 = poller.view().generation
  // The second half of the run, once every target has its state, shows the steady rate of bumps.
  await new Promise((r) => setTimeout(r, (o.seconds * 1000) / 2))
  const half = { generation: poller.view().generation, stateChanges, at: performance.now(), cpu: process.cpuUsage() }
  await new Promise((r) => setTimeout(r, (o.seconds * 1000) / 2))
  if (reader) clearInterval(reader)
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const core1 = pinned ? cpuBusyMs(0) : null
  const cpuHalf = process.cpuUsage(half.cpu)
  const halfMs = t0 + wallMs - half.at
  lag.disable()
  const view = poller.view()
  const mem = process.memoryUsage()
  const maxRssKb = process.resourceUsage().maxRSS
  await poller.close()
  child.disconnect()
  child.kill()

  const gaps = []
  for (const times of starts.values()) for (let i = 1; i < times.length; i++) gaps.push(times[i] - times[i - 1])
  gaps.sort((a, b) => a - b)
  const drifts = gaps.map((g) => (Math.abs(g - intervalMs) / intervalMs) * 100).sort((a, b) => a - b)
  const lat = results.latencies.sort((a, b) => a - b)
  const states = { up: 0, down: 0, unknown: 0 }
  for (const h of view.targets.values()) states[h.state]++
  const round2 = (x) => Math.round(x * 100) / 100
  const lagMs = (ns) => round2(Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS))

  const out = {
    kind: 'poller-bench',
    timestamp: new Date().toISOString(),
    git: gitInfo(),
    machine: machineInfo(),
    options: { targets: o.targets, intervalMs, timeoutMs, seconds: o.seconds, servers: o.servers, serverKeepAliveS: o.keepalive, readerHz: o.readerHz, pinned: pinned ? 'poller CPU 0, servers CPU 1' : 'no' },
    setupMs: round2(setupMs),
    checks: { started: [...starts.values()].reduce((n, t) => n + t.length, 0), ok: results.ok, failed: results.failed, errors: Object.fromEntries(results.errors), latencyMs: { p50: round2(quantile(lat, 0.5)), p99: round2(quantile(lat, 0.99)), max: round2(lat[lat.length - 1] ?? NaN) } },
    gaps: {
      count: gaps.length,
      meanMs: round2(gaps.reduce((a, b) => a + b, 0) / gaps.length),
      minMs: round2(gaps[0]),
      p50Ms: round2(quantile(gaps, 0.5)),
      p99Ms: round2(quantile(gaps, 0.99)),
      maxMs: round2(gaps[gaps.length - 1]),
      p99DriftPct: round2(quantile(drifts, 0.99)),
      maxDriftPct: round2(drifts[drifts.length - 1]),
    },
    cpu: {
      userMs: Math.round(cpu.user / 1000),
      systemMs: Math.round(cpu.system / 1000),
      wallMs: Math.round(wallMs),
      pctOfOneCore: round2(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
      // Once every target is up (no more start-up transitions): the steady cost.
      secondHalfPctOfOneCore: round2(((cpuHalf.user + cpuHalf.system) / 1000 / halfMs) * 100),
    },
    memory: { rssMb: round2(mem.rss / 2 ** 20), maxRssMb: round2(maxRssKb / 1024), heapUsedMb: round2(mem.heapUsed / 2 ** 20) },
    // The histogram holds whole sampling periods (10 ms); the delay is what lies beyond one.
    eventLoopDelayMs: { p50: lagMs(lag.percentile(50)), p99: lagMs(lag.percentile(99)), max: lagMs(lag.max) },
    view: {
      generationStart: generation0,
      generationEnd: view.generation,
      secondHalf: { seconds: round2(halfMs / 1000), bumps: view.generation - half.generation, stateChanges: stateChanges - half.stateChanges },
      states,
      reads,
      generationsSeenByReader: snapshots.size,
    },
  }
  out.pass = out.gaps.maxDriftPct < 10 && out.gaps.count > 0
  out.warnings = []
  if (core0 !== null && core1 !== null) {
    // CPU 0 busy beyond this process: something else ran on the poller's core.
    const othersPct = round2(((core1 - core0 - out.cpu.userMs - out.cpu.systemMs) / wallMs) * 100)
    out.cpu.othersOnCpu0Pct = othersPct
    if (othersPct > 10) out.warnings.push(`other processes used ${othersPct}% of CPU 0 during the run: the figures are not the poller's alone`)
  }

  const row = (k, v) => console.log(`  ${k.padEnd(26)} ${v}`)
  console.log(`\nHealth poller at scale (${out.options.pinned === 'no' ? 'not pinned' : out.options.pinned})`)
  row('targets / servers', `${o.targets} / ${o.servers} (keep-alive ${o.keepalive} s)`)
  row('interval / timeout', `${intervalMs} ms / ${timeoutMs} ms`)
  row('run', `${Math.round(wallMs / 100) / 10} s, setTargets ${out.setupMs} ms`)
  row('checks', `${out.checks.started} started, ${out.checks.ok} ok, ${out.checks.failed} failed; latency p50 ${out.checks.latencyMs.p50} ms, p99 ${out.checks.latencyMs.p99} ms`)
  row('gaps', `${out.gaps.count}`)
  row('gap mean / p50', `${out.gaps.meanMs} / ${out.gaps.p50Ms} ms`)
  row('gap min / p99 / max', `${out.gaps.minMs} / ${out.gaps.p99Ms} / ${out.gaps.maxMs} ms`)
  row('drift p99 / max', `${out.gaps.p99DriftPct}% / ${out.gaps.maxDriftPct}% of the interval (limit 10%)`)
  row('CPU, whole run', `${out.cpu.pctOfOneCore}% of one core (user ${out.cpu.userMs} ms, sys ${out.cpu.systemMs} ms)`)
  row('CPU, second half', `${out.cpu.secondHalfPctOfOneCore}% of one core`)
  if (out.cpu.othersOnCpu0Pct !== undefined) row('CPU 0 used by others', `${out.cpu.othersOnCpu0Pct}%`)
  row('RSS end / max', `${out.memory.rssMb} / ${out.memory.maxRssMb} MB`)
  row('event-loop delay', `p50 ${out.eventLoopDelayMs.p50} ms, p99 ${out.eventLoopDelayMs.p99} ms, max ${out.eventLoopDelayMs.max} ms`)
  row('view', `generation ${generation0} -> ${view.generation}; ${reads} reads; states ${JSON.stringify(states)}`)
  const sh = out.view.secondHalf
  row('bumps, second half', `${sh.bumps} in ${sh.seconds} s (${round2(sh.bumps / sh.seconds)}/s), of which state changes ${sh.stateChanges}`)
  if (results.errors.size > 0) row('errors', JSON.stringify(out.checks.errors))
  for (const w of out.warnings) console.log(`  WARNING: ${w}`)
  console.log(`  ${out.pass ? 'PASS' : 'FAIL'}: max drift ${out.gaps.maxDriftPct}% ${out.pass ? '<' : '>='} 10%`)

  if (o.save) console.log(`  saved ${path.relative(ROOT, saveResult('poller-', out.timestamp, out))}`)
  return out.pass ? 0 : 1
}

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2)
if (argv[0] === '--serve') {
  await serve(Number(argv[1]), Number(argv[2]))
} else {
  const o = parseArgs(argv)
  if (o.pin && process.env[PINNED_ENV] !== '1' && process.platform === 'linux' && os.cpus().length >= 2 && has('taskset')) {
    // Re-run this script on CPU 0 only; the servers it starts go to CPU 1. With the node flags the
    // meridian executable runs with (its #! line), as the control process that runs the poller has them.
    const r = spawnSync('taskset', ['-c', '0', process.execPath, ...(await serverNodeArgs(process.execArgv)), SELF, ...argv], { stdio: 'inherit', env: { ...process.env, [PINNED_ENV]: '1' } })
    process.exit(r.status ?? 1)
  }
  if (o.pin && process.env[PINNED_ENV] !== '1') console.error('bench/poller.mjs: not pinned (needs Linux, taskset and 2+ CPUs); figures include whatever else runs')
  process.exitCode = await main(o)
}
