#!/usr/bin/env node
/**
 * `npm run bench`: Meridian under dnsperf, next to a raw `dgram` reference server, in one invocation.
 * Method and figures: bench/README.md and docs/benchmarks.md. Needs `npm run build` first (it runs
 * dist/src/cli.js and the simulated pools of dist/src/sim), Linux, taskset, and dnsperf (installed
 * from Debian with apt-get when missing). Every address it uses is on loopback.
 *
 *   node bench/run.mjs [--seconds 20] [--quick] [--workers 1] [options]     (--help lists them)
 */
import { spawn, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { closeSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { descendants, dnsperfLatencies, gitInfo, has, latencyStats, machineInfo, ROOT, serverNodeArgs } from './common.mjs'
import { isolate } from './isolate.mjs'
import { renderDocs, saveResults } from './report.mjs'
import { buildQuery, buildTraffic, clientNetworks, DEFAULT_GEODB } from './traffic.mjs'
import { ORIGIN, REGIONS, SERVICES, zoneYaml } from './zone.mjs'

const CLI = path.join(ROOT, 'dist', 'src', 'cli.js')
const HOST = '127.0.0.1'

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `usage: node bench/run.mjs [options]      (npm run bench -- [options])

  --seconds N        length of each measured dnsperf run (default 20)
  --quick            5 s runs and 1 s warm-ups, for trying the harness; results are not saved
                     unless --save is given
  --workers N        Meridian DNS workers (serve --workers N; default 1). Meridian (its control
                     process and workers) is pinned to CPUs 0..N-1 and dnsperf to the others; when
                     N takes every CPU, dnsperf shares the last one with the server (2 CPUs,
                     --workers 2: Meridian on 0-1, dnsperf on 1)
  --compare-workers  with --workers N > 1: measure N workers and then 1 worker in every round
                     (same traffic, pools and reference); the results hold both and the median
                     round's N/1 ratio
  --rounds N         max-throughput runs of each server, alternating (Meridian, reference, reference,
                     Meridian, ...); the ratio is the median of the rounds' ratios (default 3; --quick 1)
  --warmup N         seconds of unmeasured load before each server's first max run (default 3; --quick 1);
                     a Meridian's warm-up then goes on until the query file has gone through once per
                     worker (at most 60 s more; not with --quick)
  --generator G      the load generator of the warm-ups and max runs: dnsperf (default) or blast
                     (bench/blast.c, compiled with cc: batched sendmmsg/recvmmsg, ~3 µs of CPU per
                     query against dnsperf's ~8, for --workers runs where the generator shares a
                     core with the server); the latency runs always use dnsperf (-Q pacing, -v)
  --clients N        dnsperf -c: UDP sockets (default 8)
  --outstanding N    dnsperf -q: queries in flight (default 128)
  --timeout N        dnsperf -t: seconds before a query counts as lost (default 2)
  --queries N        messages in the dnsperf input file, replayed in a loop (default 200000)
  --networks N       distinct client /24s in the ECS options (default 10000)
  --seed N           seed of the traffic generator (default 1)
  --geodb PATH       GeoIP database for Meridian and the generator (default geodb/geo-whois-asn-country.mmdb)
  --save / --no-save write bench/results/*.json and docs/benchmarks.md (default: save, except --quick)
  --node-arg ARG     pass ARG to Meridian's node (repeatable), e.g. --node-arg --cpu-prof
                     --node-arg --cpu-prof-dir=/tmp/prof (a profile of the server under load)
  --keep             keep the temporary directory (zone, traffic, logs) and print its path
  --no-isolate       leave the kernel's movable threads (kdamond, ...) free to run on the server's
                     CPU; by default they are moved to dnsperf's CPU for the run when the server has
                     a CPU of its own, and put back after (bench/isolate.mjs)
  --help`

function parseArgs(argv) {
  const o = {
    seconds: 20,
    quick: false,
    workers: 1,
    warmup: undefined,
    rounds: undefined,
    clients: 8,
    outstanding: 128,
    timeout: 2,
    queries: 200000,
    networks: 10000,
    seed: 1,
    isolate: true,
    geodb: DEFAULT_GEODB,
    save: undefined,
    keep: false,
    compareWorkers: false,
    nodeArgs: [],
    generator: 'dnsperf',
  }
  const ints = { '--seconds': 'seconds', '--workers': 'workers', '--warmup': 'warmup', '--rounds': 'rounds', '--clients': 'clients', '--outstanding': 'outstanding', '--timeout': 'timeout', '--queries': 'queries', '--networks': 'networks', '--seed': 'seed' }
  let secondsGiven = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--help' || a === '-h') {
      console.log(HELP)
      process.exit(0)
    } else if (a === '--quick') o.quick = true
    else if (a === '--save') o.save = true
    else if (a === '--no-save') o.save = false
    else if (a === '--keep') o.keep = true
    else if (a === '--no-isolate') o.isolate = false
    else if (a === '--compare-workers') o.compareWorkers = true
    else if (a === '--geodb') o.geodb = path.resolve(argv[++i] ?? '')
    else if (a === '--node-arg') o.nodeArgs.push(argv[++i] ?? fail('--node-arg needs a value'))
    else if (a === '--generator') {
      o.generator = argv[++i] ?? ''
      if (o.generator !== 'dnsperf' && o.generator !== 'blast') fail('--generator is dnsperf or blast')
    }
    else if (ints[a]) {
      const v = Number(argv[++i])
      const min = a === '--warmup' ? 0 : 1
      if (!Number.isInteger(v) || v < min) fail(`${a} needs an integer >= ${min}`)
      o[ints[a]] = v
      if (a === '--seconds') secondsGiven = true
    } else fail(`unknown option ${a}\n\n${HELP}`)
  }
  if (o.quick && !secondsGiven) o.seconds = 5
  if (o.compareWorkers && o.workers < 2) fail('--compare-workers needs --workers N with N > 1 (it measures 1 worker, then N)')
  o.warmup ??= o.quick ? 1 : 3
  o.rounds ??= o.quick ? 1 : 3
  o.save ??= !o.quick
  return o
}

function fail(msg) {
  console.error(`bench: ${msg}`)
  process.exit(2)
}

const log = (msg) => console.log(`bench: ${msg}`)
/** Warnings are printed and kept in the results, so a disturbed run says so in the table too. */
const warnings = []
const warn = (msg) => {
  warnings.push(msg)
  log(`warning: ${msg}`)
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped on the way out, whatever happens.

const children = new Set()

function track(child, name) {
  const entry = { child, name, exited: false }
  children.add(entry)
  child.once('exit', () => {
    entry.exited = true
    children.delete(entry)
  })
  return entry
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
function stop(entry, graceMs = 5000) {
  if (!entry || entry.exited) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        entry.child.kill('SIGKILL')
      } catch {
        // gone already
      }
    }, graceMs)
    entry.child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    try {
      entry.child.kill('SIGTERM')
    } catch {
      clearTimeout(timer)
      resolve()
    }
  })
}

const stopAll = () => Promise.all([...children].map((e) => stop(e)))

/** The run's temporary directory, removed on the way out unless --keep. */
let tmpDir = null
let keepTmp = false
const removeTmp = () => {
  if (tmpDir && !keepTmp) rmSync(tmpDir, { recursive: true, force: true })
}

/** Puts the kernel threads isolate() moved back where they were (a no-op until then). */
let restoreIsolation = () => {}

process.on('exit', () => {
  restoreIsolation()
  // Last resort (an exception escaped, or process.exit was called): nothing we started survives us.
  for (const e of children) {
    try {
      e.child.kill('SIGKILL')
    } catch {
      // gone already
    }
  }
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`bench: ${sig}: stopping everything it started`)
    stopAll().finally(() => {
      removeTmp()
      process.exit(130)
    })
  })
}

/** setpriv --pdeathsig makes the kernel send SIGTERM to a child if this process dies without cleaning up (even SIGKILL). */
let PDEATHSIG = null

/** The command prefix that pins a child to `cpus` (and ties its life to ours when setpriv can). */
function pinned(cpus, argv) {
  const pin = cpus === null ? [] : ['taskset', '-c', cpus]
  const all = [...(PDEATHSIG ?? []), ...pin, ...argv]
  return { cmd: all[0], args: all.slice(1) }
}

function spawnPinned(name, cpus, argv, options = {}) {
  const { cmd, args } = pinned(cpus, argv)
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], ...options })
  return track(child, name)
}

/** Resolves with the first stdout line `match` accepts (its return value), or rejects on exit or timeout. */
function waitForLine(entry, match, timeoutMs, what, sink) {
  return new Promise((resolve, reject) => {
    const tail = []
    const rl = createInterface({ input: entry.child.stdout })
    const errRl = createInterface({ input: entry.child.stderr })
    let done = false
    const finish = (err, value) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(value)
    }
    const onLine = (line) => {
      sink?.write(line + '\n')
      tail.push(line)
      if (tail.length > 30) tail.shift()
      if (done) return
      try {
        const v = match(line)
        if (v !== undefined && v !== null) finish(null, v)
      } catch (err) {
        finish(err)
      }
    }
    rl.on('line', onLine)
    errRl.on('line', (line) => {
      sink?.write(line + '\n')
      tail.push(line)
      if (tail.length > 30) tail.shift()
    })
    const timer = setTimeout(() => finish(new Error(`${what}: not ready within ${timeoutMs / 1000} s; its last output:\n${tail.join('\n')}`)), timeoutMs)
    entry.child.once('exit', (code, signal) => finish(new Error(`${what} exited (${signal ?? `code ${code}`}) before it was ready; its last output:\n${tail.join('\n')}`)))
  })
}

// ---------------------------------------------------------------------------------------------
// Tools and machine

function ensureTools() {
  if (process.platform !== 'linux') fail('the bench needs Linux (taskset, /proc, loopback VIPs 127.90.x.1)')
  if (!has('dnsperf')) aptInstall('dnsperf', 'the load generator')
  if (!has('taskset')) fail('taskset is missing (Debian: apt-get install util-linux); the bench pins the server and dnsperf to cores with it')
  if (has('setpriv') && /--pdeathsig/.test(spawnSync('setpriv', ['--help'], { encoding: 'utf8' }).stdout ?? '')) PDEATHSIG = ['setpriv', '--pdeathsig', 'TERM', '--']
  if (!existsSync(CLI)) fail(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`)
}

/** Installs a Debian package for a command of the same name (`cc` for gcc), or stops the bench. */
function aptInstall(pkg, what) {
  log(`installing ${pkg}, ${what} (apt-get install ${pkg})`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const up = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  const inst = up.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'inherit', env }) : up
  if (inst.status !== 0) fail(`could not install ${pkg}; install it by hand (apt-get install ${pkg}) and run the bench again`)
}

function dnsperfVersion() {
  const out = spawnSync('dnsperf', ['-H'], { encoding: 'utf8' })
  const m = /Version\s+(\S+)/.exec(`${out.stdout}${out.stderr}`)
  return m ? m[1] : 'unknown'
}

/** Meridian's CPUs and dnsperf's, for N workers on this machine. */
function cpuPlan(workers, ncpu) {
  if (ncpu < 2) return { server: null, client: null, shared: true }
  const n = Math.min(workers, ncpu)
  const range = (a, b) => (a === b ? `${a}` : `${a}-${b}`)
  if (n < ncpu) return { server: range(0, n - 1), client: range(n, ncpu - 1), shared: false, clientCount: ncpu - n }
  // No CPU left for dnsperf: it runs (one thread) on the last CPU, beside the server's processes.
  return { server: range(0, ncpu - 1), client: `${ncpu - 1}`, shared: true, clientCount: 1 }
}

/** How a plan pins things, in words (printed, and kept in the results). */
function describePlan(plan, workers, generator) {
  const gen = generator === 'blast' ? 'blast (max runs) and dnsperf (latency runs)' : 'dnsperf'
  const server = workers > 1 ? `Meridian (control process + ${workers} DNS workers)` : 'Meridian (one process)'
  if (plan.server === null) return `${server} and ${gen} unpinned (one CPU)`
  return `${server} on CPU ${plan.server} (taskset -c ${plan.server}), ${gen} (${plan.clientCount ?? 1} thread(s)) on CPU ${plan.client} (taskset -c ${plan.client})` + (plan.shared ? `: the load generator shares CPU ${plan.client} with the server` : '')
}

// ---------------------------------------------------------------------------------------------
// /proc: RSS of a process and its descendants (the server's future workers included)

function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** VmRSS and VmHWM (peak) summed over the process tree, in MB, plus the node processes counted. */
function rssOf(pid) {
  // Meridian is exec'd by setpriv/taskset, so `pid` is the node process itself.
  const pids = descendants(pid)
  const kb = (f) => pids.reduce((s, p) => s + statusKb(p, f), 0)
  return { mb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024, processes: pids.length }
}

/** Per-CPU jiffies from /proc/stat: busy (everything but idle and iowait) and total. */
function cpuTimes() {
  const out = new Map()
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line)
    if (!m) continue
    const v = m[2].split(/\s+/).map(Number)
    const total = v.slice(0, 8).reduce((s, x) => s + x, 0)
    out.set(Number(m[1]), { busy: total - v[3] - v[4], total })
  }
  return out
}

/** Busy share of each CPU between two cpuTimes() samples: { "0": 0.99, "1": 0.97 }. */
function cpuBusy(a, b) {
  const out = {}
  for (const [cpu, x] of b) {
    const y = a.get(cpu)
    if (y && x.total > y.total) out[cpu] = Math.round((1000 * (x.busy - y.busy)) / (x.total - y.total)) / 1000
  }
  return out
}

/**
 * User and system CPU seconds of each process of the tree under `pid` (where a server's time goes:
 * its own code, or the kernel's): Map pid -> { user, sys }.
 */
function treeTimes(pid) {
  const out = new Map()
  for (const p of descendants(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(p, { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 }) // utime, stime in USER_HZ (100 on Linux)
    } catch {
      // exited meanwhile
    }
  }
  return out
}

/** A treeTimes() reading summed over the tree: { user, sys } seconds. */
function summed(tree) {
  let user = 0
  let sys = 0
  for (const t of tree.values()) {
    user += t.user
    sys += t.sys
  }
  return { user, sys }
}

/** µs of user and of system CPU per answered query between two treeTimes() readings (0.1 µs). */
function splitPerQuery(tree0, tree1, completed) {
  const a = summed(tree0)
  const b = summed(tree1)
  const us = (s) => (completed ? Math.round((s / completed) * 1e7) / 10 : null)
  return { user: us(b.user - a.user), sys: us(b.sys - a.sys) }
}

/** Server CPU µs per answered query of a max run (0.1 µs), or null without the CPU time. */
const usPerQuery = (run) => (run.serverCpuSeconds !== null && run.completed ? Math.round((run.serverCpuSeconds / run.completed) * 1e7) / 10 : null)

/** CPU seconds (user + system) of a treeTimes() reading (the server's workers included); null when none could be read. */
function treeCpuSeconds(tree) {
  if (tree.size === 0) return null
  const { user, sys } = summed(tree)
  return user + sys
}

// ---------------------------------------------------------------------------------------------
// DNS: one query over UDP, and a reader for what the sanity checks look at

function udpQuery(port, msg, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4')
    const timer = setTimeout(() => {
      sock.close()
      reject(new Error(`no answer from ${HOST}:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    sock.once('message', (m) => {
      clearTimeout(timer)
      sock.close()
      resolve(m)
    })
    sock.send(msg, port, HOST)
  })
}

function skipName(buf, off) {
  for (;;) {
    const len = buf[off]
    if (len === undefined) throw new Error('name runs past the end')
    if (len === 0) return off + 1
    if ((len & 0xc0) === 0xc0) return off + 2
    off += 1 + len
  }
}

/** rcode, the A/AAAA answers, and the ECS scope of the reply's OPT (null without ECS). */
function readReply(buf) {
  const rcode = buf[3] & 0x0f
  const qd = buf.readUInt16BE(4)
  const an = buf.readUInt16BE(6)
  const ns = buf.readUInt16BE(8)
  const ar = buf.readUInt16BE(10)
  let off = 12
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4
  const answers = []
  let ecsScope = null
  for (let i = 0; i < an + ns + ar; i++) {
    off = skipName(buf, off)
    const type = buf.readUInt16BE(off)
    const rdlen = buf.readUInt16BE(off + 8)
    const rdata = buf.subarray(off + 10, off + 10 + rdlen)
    if (i < an && type === 1) answers.push([...rdata].join('.'))
    if (i < an && type === 28) answers.push(rdata.toString('hex').replace(/(.{4})(?!$)/g, '$1:'))
    if (type === 41) {
      for (let o = 0; o + 4 <= rdata.length; ) {
        const code = rdata.readUInt16BE(o)
        const len = rdata.readUInt16BE(o + 2)
        if (code === 8 && len >= 4) ecsScope = rdata[o + 7]
        o += 4 + len
      }
    }
    off += 10 + rdlen
  }
  return { rcode, answers, ecsScope }
}

// ---------------------------------------------------------------------------------------------
// dnsperf

function parseDnsperf(text) {
  const num = (re) => {
    const m = re.exec(text)
    return m ? Number(m[1]) : null
  }
  const rcodes = {}
  const rc = /Response codes:\s+(.*)/.exec(text)
  if (rc) for (const m of rc[1].matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]] = Number(m[2])
  const lat = /Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/.exec(text)
  const r = {
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    runSeconds: num(/Run time \(s\):\s+([\d.]+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: lat ? Number(lat[1]) * 1000 : null,
    minMs: lat ? Number(lat[2]) * 1000 : null,
    maxMs: lat ? Number(lat[3]) * 1000 : null,
    rcodes,
  }
  if (r.qps === null || r.sent === null) throw new Error(`cannot read dnsperf's statistics:\n${text.slice(-2000)}`)
  return r
}

/**
 * One dnsperf run against 127.0.0.1:port, pinned to `cpus`. `qps` limits the offered load (-Q);
 * `verboseFile` makes dnsperf print one line per answered query (-v) with its latency into that file.
 */
async function dnsperf({ port, file, seconds, cpus, threads, o, qps, verboseFile }) {
  const argv = ['dnsperf', '-s', HOST, '-p', String(port), '-B', '-d', file, '-l', String(seconds), '-c', String(o.clients), '-q', String(o.outstanding), '-t', String(o.timeout), '-T', String(threads)]
  if (qps) argv.push('-Q', String(qps))
  if (verboseFile) argv.push('-v')
  const outFd = verboseFile ? openSync(verboseFile, 'w') : 'pipe'
  let text = await runPinned('dnsperf', cpus, argv, outFd)
  if (verboseFile) {
    closeSync(outFd)
    text = readFileSync(verboseFile, 'utf8').slice(-4000) // the statistics are at the end
  }
  return { ...parseDnsperf(text), command: argv.join(' ') }
}

/**
 * Runs a load generator pinned to `cpus` to its end; returns its stdout (empty when `stdout` is a
 * file descriptor). A non-zero exit throws with what it printed.
 */
async function runPinned(name, cpus, argv, stdout = 'pipe') {
  const { cmd, args } = pinned(cpus, argv)
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', stdout, 'pipe'] })
  track(child, name)
  let text = ''
  let errText = ''
  child.stdout?.on('data', (d) => (text += d))
  child.stderr.on('data', (d) => (errText += d))
  const code = await new Promise((resolve) => child.once('exit', (c, sig) => resolve(sig ?? c)))
  if (code !== 0) throw new Error(`${name} failed (${code}): ${errText}${text.slice(-1500)}`)
  return text
}

/** Compiles bench/blast.c into `dir` (installing gcc from Debian when no C compiler is there); returns the binary's path. */
function buildBlast(dir) {
  if (!has('cc')) aptInstall('gcc', 'a C compiler for bench/blast.c')
  const bin = path.join(dir, 'blast')
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', bin, path.join(ROOT, 'bench', 'blast.c')], { encoding: 'utf8' })
  if (r.status !== 0) fail(`cannot compile bench/blast.c:\n${r.stderr}`)
  return bin
}

/**
 * One closed-loop max run of blast (bench/blast.c) against 127.0.0.1:port, pinned to `cpus`, in
 * dnsperf's result shape plus what blast adds: replies that did not match their query
 * (`mismatched`) and blast's own CPU. `idOnly`: match replies by ID alone (the reference replays one
 * answer whatever the question).
 */
async function blast({ port, file, seconds, cpus, o, idOnly = false }) {
  const argv = [o.blastBin, '-s', HOST, '-p', String(port), '-f', file, '-l', String(seconds), '-c', '4', '-q', '48', '-b', '64', '-w', '200', '-t', String(o.timeout * 1000)]
  if (idOnly) argv.push('-a')
  const r = JSON.parse(await runPinned('blast', cpus, argv))
  if (r.mismatched > 0 && !idOnly) warn(`blast: ${r.mismatched} replies did not match a query in flight (ID and question)`)
  const rcodes = Object.fromEntries(Object.entries(r.rcodes).filter(([, n]) => n > 0))
  return { sent: r.sent, completed: r.completed, lost: r.lost, mismatched: r.mismatched, runSeconds: r.runSeconds, qps: r.qps, avgMs: null, minMs: null, maxMs: null, p50Ms: r.p50Us / 1000, p99Ms: r.p99Us / 1000, rcodes, generatorCpuUsPerQuery: r.generatorCpuUsPerQuery, command: argv.join(' ') }
}

/** A warm-up or max run with the chosen generator (--generator); paced latency runs call dnsperf(). */
function maxLoad(args) {
  return args.o.generator === 'blast' ? blast(args) : dnsperf(args)
}

// ---------------------------------------------------------------------------------------------
// The answer-cache hit ratio over the max run, from the server's /metrics on its admin address
// ("n/a" when /metrics has no answer-cache counters).

function scrapeMetrics(admin) {
  return new Promise((resolve) => {
    if (!admin) return resolve(null)
    const req = http.get(`${admin}/metrics`, { timeout: 2000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(res.statusCode === 200 ? body : null))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(null))
  })
}

/** Sums a counter over its label sets; null when the metric is absent. */
function counter(text, name) {
  let sum = null
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue
    const v = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (Number.isFinite(v)) sum = (sum ?? 0) + v
  }
  return sum
}

async function cacheCounters(admin) {
  const text = await scrapeMetrics(admin)
  if (text === null) return null
  const hits = counter(text, 'meridian_dns_cache_hits_total')
  if (hits === null) return null
  return { hits, misses: counter(text, 'meridian_dns_cache_misses_total'), queries: counter(text, 'meridian_dns_queries_total') }
}

function cacheRatio(before, after) {
  const NONE = { hitRatio: null, note: 'n/a (no answer-cache counters on /metrics)' }
  if (!before || !after) return NONE
  const hits = after.hits - before.hits
  const denom = after.misses !== null && before.misses !== null ? hits + (after.misses - before.misses) : after.queries !== null && before.queries !== null ? after.queries - before.queries : null
  if (!denom) return { hitRatio: null, note: 'n/a (the cache counters did not move)' }
  return { hitRatio: hits / denom, note: 'meridian_dns_cache_hits_total over the max run', hits, lookups: denom }
}

// ---------------------------------------------------------------------------------------------
// The run

async function startPools(tmp, cpus) {
  const entry = spawnPinned('pools', cpus, [process.execPath, path.join(ROOT, 'bench', 'pools.mjs'), ...REGIONS.map((r) => `${r.name}=${r.vip}`)])
  const line = await waitForLine(entry, (l) => (l.startsWith('{"pools"') ? JSON.parse(l) : undefined), 20000, 'the simulated pools', createWriteStream(path.join(tmp, 'pools.log')))
  return { entry, ports: Object.fromEntries(line.pools.map((p) => [p.region, p.port])) }
}

async function startMeridian({ tmp, zonesDir, geodb, workers, cpus, nodeArgs = [], logName = 'meridian.log' }) {
  const argv = [process.execPath, ...nodeArgs, CLI, 'serve', '--zones', zonesDir, '--listen', `${HOST}:0`, '--geodb', geodb, '--admin', `${HOST}:0`, '--no-watch', '--health-wait', '20', '--log-level', 'info', '--workers', String(workers)]
  const entry = spawnPinned('meridian', cpus, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  // What each DNS worker says when it stops (its pid and the queries it answered), and when the output ends.
  const workerStops = []
  createInterface({ input: entry.child.stdout }).on('line', (line) => {
    if (!line.includes('"dns worker stopped"')) return
    try {
      const j = JSON.parse(line)
      workerStops.push({ worker: j.worker, pid: j.pid, queries: j.queries })
    } catch {
      // not JSON
    }
  })
  const outputClosed = new Promise((resolve) => entry.child.stdout.once('close', resolve))
  let healthUp = 0
  let admin = null
  const ready = await waitForLine(
    entry,
    (line) => {
      if (!line.startsWith('{')) return undefined
      let j
      try {
        j = JSON.parse(line)
      } catch {
        return undefined
      }
      if (typeof j.msg === 'string' && /^health: .* is up$/.test(j.msg)) healthUp++
      if (j.msg === 'admin API listening') admin = j.url
      if (typeof j.msg === 'string' && j.msg.startsWith('meridian serving')) {
        const udp = (j.listen ?? []).find((l) => l.startsWith('udp://'))
        const m = udp && /:(\d+)$/.exec(udp)
        if (!m) throw new Error(`meridian's start-up line names no UDP address: ${line}`)
        return { port: Number(m[1]), pid: j.pid }
      }
      return undefined
    },
    60000,
    'meridian',
    createWriteStream(path.join(tmp, logName)),
  )
  // keep draining its output (into the log) so a chatty server never blocks on a full pipe
  return { entry, port: ready.port, pid: entry.child.pid, logPid: ready.pid, healthUp, admin, workerStops, outputClosed }
}

async function startReference(tmp, cpus, answerFile) {
  const entry = spawnPinned('reference', cpus, [process.execPath, path.join(ROOT, 'bench', 'reference-server.mjs'), '--listen', `${HOST}:0`, '--answer', answerFile])
  const port = await waitForLine(entry, (l) => {
    const m = /^reference serving udp:\/\/[\d.]+:(\d+)/.exec(l)
    return m ? Number(m[1]) : undefined
  }, 20000, 'the reference server', createWriteStream(path.join(tmp, 'reference.log')))
  return { entry, port }
}

/** Checks the server answers the mix as meant before anything is measured; returns a real GSLB answer for the reference. */
async function sanityCheck(port, networks, sample) {
  const a = await udpQuery(port, sample.a)
  const ra = readReply(a)
  if (ra.rcode !== 0 || ra.answers.length === 0 || !ra.answers.every((x) => x.startsWith('127.90.'))) throw new Error(`a GSLB A query was answered rcode ${ra.rcode} with [${ra.answers}]; expected VIPs in 127.90.0.0/16`)
  const r6 = readReply(await udpQuery(port, sample.aaaa))
  if (r6.rcode !== 0 || r6.answers.length === 0) throw new Error(`a GSLB AAAA query was answered rcode ${r6.rcode} with [${r6.answers}]`)
  const rnx = readReply(await udpQuery(port, sample.nxdomain))
  if (rnx.rcode !== 3) throw new Error(`a query for a missing name was answered rcode ${rnx.rcode}, not NXDOMAIN`)
  // Do the ECS networks geolocate? A geo-latency service answers with the GeoIP network's prefix as
  // the ECS scope when a location decided, and scope 0 when the network had no location.
  const probe = networks.slice(0, 200)
  let located = 0
  const regions = new Set()
  for (let i = 0; i < probe.length; i++) {
    const r = readReply(await udpQuery(port, buildQuery(i, `${SERVICES[0]}.${ORIGIN}`, 1, probe[i])))
    if (r.ecsScope !== null && r.ecsScope > 0) located++
    if (r.answers[0]) regions.add(r.answers[0].split('.').slice(0, 3).join('.'))
  }
  return { answer: a, located: located / probe.length, regionsAnswered: regions.size, probes: probe.length }
}

/** Meridian instances started so far: each logs to its own file (meridian-1.log, ...). */
let instances = 0

/** Meridian with `workers` DNS workers pinned as `plan` says, started, sanity-checked and warmed up. */
async function startMeasured({ o, tmp, zonesDir, trafficFile, nets, traffic, nodeArgs }, workers, plan) {
  const tag = workers === 1 ? '' : `-${workers}w`
  const name = `meridian (${workers} worker${workers === 1 ? '' : 's'})`
  // Every run starts cold: no health state or serials saved by an earlier run of this invocation.
  rmSync(path.join(zonesDir, '.meridian'), { recursive: true, force: true })
  log(`${name}: ${describePlan(plan, workers, o.generator)}`)
  const mer = await startMeridian({ tmp, zonesDir, geodb: o.geodb, workers, cpus: plan.server, nodeArgs, logName: `meridian${tag}-${++instances}.log` })
  log(`${name}: udp://${HOST}:${mer.port}, pid ${mer.pid}, CPU ${plan.server ?? 'any'}, --workers ${workers}; ${mer.healthUp} of ${REGIONS.length} regions up at start`)
  if (mer.logPid !== mer.pid) warn(`the server logs pid ${mer.logPid} but the bench started pid ${mer.pid}; RSS is read from the tree under ${mer.pid}`)
  if (mer.healthUp < REGIONS.length) warn(`only ${mer.healthUp} of ${REGIONS.length} health checks were up when it started answering`)
  const sanity = await sanityCheck(mer.port, nets.networks, traffic.sample)
  log(`sanity: A, AAAA and NXDOMAIN answered as expected; ${(sanity.located * 100).toFixed(0)}% of ${sanity.probes} ECS networks geolocated (answered from ${sanity.regionsAnswered} regions)`)
  if (sanity.located < 0.9) warn('fewer than 90% of the client networks geolocate with this --geodb: the GSLB answers are not mostly geographic')
  const threads = plan.clientCount ?? 1
  if (o.warmup > 0) {
    log(`${name}: ${o.warmup} s warm-up`)
    const w = await maxLoad({ port: mer.port, file: trafficFile, seconds: o.warmup, cpus: plan.client, threads, o })
    // Then until the query file has gone through once per worker (each worker has its own cache, and
    // the shared socket spreads the queries over them), so the max run measures the steady state of a
    // server that has been answering a while, not its first sight of the 200,000 queries: at 60,000
    // queries/s (a kernel with page-table isolation) 3 s was less than one pass, and the cold misses
    // of the rest fell in the measured run. Capped at 60 s.
    const want = o.queries * workers
    if (!o.quick && w.completed < want && w.qps > 0) {
      const more = Math.min(60, Math.ceil((want - w.completed) / w.qps) + 1)
      log(`${name}: ${w.completed.toLocaleString('en-US')} queries in the warm-up, fewer than the ${want.toLocaleString('en-US')} of ${workers === 1 ? 'one pass' : `${workers} passes`} over the query file: ${more} s more`)
      await maxLoad({ port: mer.port, file: trafficFile, seconds: more, cpus: plan.client, threads, o })
    }
  }
  return { name, tag, mer, sanity, plan, threads, workers }
}

/** One max-throughput run of a started Meridian: dnsperf figures, CPU per process of its tree, RSS, cache counters. */
async function meridianMax({ o, trafficFile }, m) {
  const { mer, plan, threads, workers, name } = m
  const cacheBefore = await cacheCounters(mer.admin)
  log(`${name}: max throughput, ${o.seconds} s`)
  let peak = { mb: 0, peakMb: 0 }
  const poll = setInterval(() => {
    const r = rssOf(mer.pid)
    if (r.mb > peak.mb) peak = r
  }, 500)
  let max
  const cpu0 = cpuTimes()
  const tree0 = treeTimes(mer.pid)
  try {
    max = await maxLoad({ port: mer.port, file: trafficFile, seconds: o.seconds, cpus: plan.client, threads, o })
  } finally {
    clearInterval(poll)
  }
  max.cpuBusy = cpuBusy(cpu0, cpuTimes())
  const tree1 = treeTimes(mer.pid)
  max.serverCpuSplit = splitPerQuery(tree0, tree1, max.completed)
  const round = (x) => Math.round(x * 100) / 100
  // Each process of the server during the run: the control process and every worker.
  const seconds = (t) => (t === undefined ? 0 : t.user + t.sys)
  max.processes = [...tree1].map(([pid, t]) => ({ pid, role: pid === mer.pid ? (workers > 1 ? 'control' : 'server') : 'worker', cpuSeconds: round(seconds(t) - seconds(tree0.get(pid))) }))
  max.serverCpuSeconds = tree0.size > 0 && tree1.size > 0 ? round(max.processes.reduce((sum, p) => sum + p.cpuSeconds, 0)) : null
  // Server CPU per answered query: compares runs whose throughput the load generator capped.
  max.serverCpuUsPerQuery = usPerQuery(max)
  interference('meridian', max, plan.server)
  const rss = rssOf(mer.pid)
  const cache = cacheRatio(cacheBefore, await cacheCounters(mer.admin))
  const perProcess = max.processes.map((p) => `${p.role} ${p.pid} ${((100 * p.cpuSeconds) / max.runSeconds).toFixed(0)}%`).join(', ')
  log(`${name}: ${Math.round(max.qps)} q/s, ${max.lost} lost; ${max.serverCpuUsPerQuery ?? 'n/a'} µs server CPU per query (user ${max.serverCpuSplit.user}, system ${max.serverCpuSplit.sys}); RSS ${rss.mb.toFixed(1)} MB; CPU per process: ${perProcess}`)
  return { max, rss, peak, cache }
}

/** Latency at 50% of `maxQps`, then stop (the workers then log the queries each answered). */
async function meridianHalfAndStop(ctx, m, maxQps, round = 0) {
  const { mer, plan, threads, workers, name, tag } = m
  const half = await halfLoad(ctx, name, mer.port, plan.client, threads, maxQps, `latency-50${tag}-${round + 1}.txt`)
  await stopMeridian(m)
  // Queries per worker over its whole life (sanity checks, warm-up, the run), as each logged it when stopping.
  const perWorker = mer.workerStops.sort((a, b) => a.worker - b.worker)
  if (workers > 1) {
    const all = perWorker.reduce((sum, w) => sum + (w.queries ?? 0), 0)
    log(`${name}: queries answered per worker: ${perWorker.map((w) => `worker ${w.worker} ${w.queries.toLocaleString('en-US')} (${((100 * w.queries) / all).toFixed(1)}%)`).join(', ')}`)
  }
  return { half, perWorker }
}

async function stopMeridian({ mer }) {
  await stop(mer.entry)
  await Promise.race([mer.outputClosed, new Promise((r) => setTimeout(r, 2000))])
}

/** Meridian start to stop, one max run (the 1-worker baseline of --compare-workers). */
async function measureMeridian(ctx, workers, plan) {
  const m = await startMeasured(ctx, workers, plan)
  const max = await meridianMax(ctx, m)
  const after = await meridianHalfAndStop(ctx, m, max.max.qps)
  return { ...m, ...max, ...after }
}

/** The reference's max run: dnsperf figures and its CPU seconds. */
async function referenceMax({ o, trafficFile }, ref, plan) {
  log(`reference: max throughput, ${o.seconds} s`)
  const rcpu0 = cpuTimes()
  const rtree0 = treeTimes(ref.entry.child.pid)
  const refMax = await maxLoad({ port: ref.port, file: trafficFile, seconds: o.seconds, cpus: plan.client, threads: plan.clientCount ?? 1, o, idOnly: true })
  refMax.cpuBusy = cpuBusy(rcpu0, cpuTimes())
  const rtree1 = treeTimes(ref.entry.child.pid)
  refMax.serverCpuSplit = splitPerQuery(rtree0, rtree1, refMax.completed)
  const rproc0 = treeCpuSeconds(rtree0)
  const rproc1 = treeCpuSeconds(rtree1)
  refMax.serverCpuSeconds = rproc0 !== null && rproc1 !== null ? Math.round((rproc1 - rproc0) * 100) / 100 : null
  refMax.serverCpuUsPerQuery = usPerQuery(refMax)
  interference('reference', refMax, plan.server)
  log(`reference: ${Math.round(refMax.qps)} q/s, ${refMax.lost} lost; ${refMax.serverCpuUsPerQuery ?? 'n/a'} µs server CPU per query (user ${refMax.serverCpuSplit.user}, system ${refMax.serverCpuSplit.sys})`)
  return refMax
}

/** The figures of one Meridian run, as the results JSON keeps them. */
/** The reference's latency at 50% of `maxQps` (dnsperf -Q, -v): the floor of what the method can measure. */
/**
 * A server's latency at 50% of `maxQps` (dnsperf -Q, -v into `fileName` under the run's directory):
 * the offered load, dnsperf's counts, and the exact percentiles of every answered query.
 */
async function halfLoad({ o, tmp, trafficFile }, name, port, cpus, threads, maxQps, fileName) {
  const offered = Math.max(1, Math.round(maxQps / 2))
  log(`${name}: latency at 50% of its max (${offered} q/s offered), ${o.seconds} s`)
  const vfile = path.join(tmp, fileName)
  const half = await dnsperf({ port, file: trafficFile, seconds: o.seconds, cpus, threads, o, qps: offered, verboseFile: vfile })
  return { offeredQps: offered, qps: half.qps, sent: half.sent, completed: half.completed, lost: half.lost, rcodes: half.rcodes, ...latencyStats(await dnsperfLatencies(vfile)), command: half.command }
}

function meridianFigures(r) {
  return {
    max: r.max,
    half: r.half,
    rss: { mb: r.rss.mb, peakMb: Math.max(r.rss.peakMb, r.peak.peakMb ?? 0), processes: r.rss.processes, when: 'end of the max run' },
    cache: r.cache,
    ...(r.workers > 1 ? { queriesPerWorker: r.perWorker } : {}),
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  ensureTools()
  const ncpu = os.cpus().length
  const plan = cpuPlan(o.workers, ncpu)
  // the reference is one Node process: always one core, dnsperf on the next (as for one worker)
  const refPlan = cpuPlan(1, ncpu)
  if (ncpu < 2) warn('one CPU only: the server and dnsperf share it, so the figures understate both')
  if (plan.shared && ncpu >= 2) log(`note: ${o.workers} worker(s) on ${ncpu} CPUs leaves none for the load generator: it shares CPU ${plan.client} with the server`)
  log(`pinning: ${describePlan(plan, o.workers, o.generator)}${o.compareWorkers ? `; first ${describePlan(cpuPlan(1, ncpu), 1, o.generator)}` : ''}; the reference on CPU ${refPlan.server ?? 'any'}`)
  // Keep this harness (idle during the runs, but it parses and polls) with dnsperf, off the server's other cores.
  if (plan.client !== null) spawnSync('taskset', ['-a', '-p', '-c', plan.client, String(process.pid)], { stdio: 'ignore' })
  // And the kernel's movable threads too, while the server has a CPU of its own (bench/isolate.mjs).
  let isolation = null
  if (!o.isolate) isolation = { off: '--no-isolate' }
  else if (plan.shared || plan.client === null) isolation = { off: 'the server has no CPU of its own' }
  else {
    const moved = isolate(plan.client, `0-${ncpu - 1}`)
    restoreIsolation = moved.restore
    isolation = { kernelThreadsTo: plan.client, kernelThreads: moved.kernelThreads }
    const names = [...new Set(moved.kernelThreads.map((n) => n.replace(/[/:].*$/, '')))]
    log(`isolation: ${moved.kernelThreads.length} kernel threads that may run anywhere moved to CPU ${plan.client} for the run (${names.join(', ')}); back afterwards`)
  }

  // Is anything else busy? Other work on these CPUs makes every figure below lower and noisier.
  const idle0 = cpuTimes()
  await new Promise((r) => setTimeout(r, 1000))
  const background = cpuBusy(idle0, cpuTimes())
  const busyCpus = Object.entries(background).filter(([, v]) => v > 0.05)
  if (busyCpus.length > 0) warn(`the machine is not idle before the run (${busyCpus.map(([c, v]) => `cpu${c} ${(v * 100).toFixed(0)}% busy`).join(', ')}): the figures will be lower and noisier than on a quiet machine`)

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'meridian-bench-'))
  tmpDir = tmp
  keepTmp = o.keep
  const zonesDir = path.join(tmp, 'zones')
  if (o.generator === 'blast') o.blastBin = buildBlast(tmp)
  let ok = false
  try {
    // 1. traffic
    const t0 = Date.now()
    const nets = clientNetworks({ count: o.networks, seed: o.seed, geodb: o.geodb })
    const traffic = buildTraffic({ origin: ORIGIN, services: SERVICES, networks: nets.networks, count: o.queries, seed: o.seed })
    const trafficFile = path.join(tmp, 'queries.bin')
    writeFileSync(trafficFile, traffic.data)
    log(
      `traffic: ${o.queries.toLocaleString('en-US')} queries (A ${traffic.counts.a}, AAAA ${traffic.counts.aaaa}, NXDOMAIN ${traffic.counts.nxdomain}) ` +
        `with ECS from ${nets.networks.length.toLocaleString('en-US')} /24s in ${nets.countries} countries (${nets.top.map(([c, n]) => `${c} ${n}`).join(', ')}...), built in ${Date.now() - t0} ms`,
    )

    // 2. pools and zone
    const pools = await startPools(tmp, plan.client)
    mkdirSync(zonesDir)
    writeFileSync(path.join(zonesDir, `${ORIGIN}.yaml`), zoneYaml(pools.ports))
    log(`zone ${ORIGIN}: ${SERVICES.length} services over ${REGIONS.length} regions, each a live simulated pool (${REGIONS.map((r) => `${r.name} ${r.vip}:${pools.ports[r.name]}`).join(', ')}), checked every 1 s`)

    // 3. Meridian (with --compare-workers, N workers; a 1-worker Meridian is measured in every round below)
    // The node arguments of every Meridian: the executable's #! flags, replaced by any --node-arg of the same name.
    const ctx = { o, tmp, zonesDir, trafficFile, nets, traffic, nodeArgs: await serverNodeArgs(o.nodeArgs) }
    let m = await startMeasured(ctx, o.workers, plan)
    const { mer, sanity, threads } = m
    const answerFile = path.join(tmp, 'answer.bin')
    writeFileSync(answerFile, sanity.answer)

    // 4. the reference (same load settings, one core), then rounds in alternating order (M R, R M,
    // M R, ...), so that drift of the machine over the invocation hits both. Only the server
    // measured runs on its CPU: each Meridian is stopped after its max and latency runs and the
    // next round starts a new one (cold, so sanity checks and warm-up again); the reference is idle
    // (a blocked socket read) while Meridian runs.
    const ref = await startReference(tmp, refPlan.server, answerFile)
    log(`reference: raw dgram server replaying a ${sanity.answer.length}-octet Meridian answer on udp://${HOST}:${ref.port}, CPU ${refPlan.server ?? 'any'}`)
    if (o.warmup > 0) await maxLoad({ port: ref.port, file: trafficFile, seconds: o.warmup, cpus: refPlan.client, threads: refPlan.clientCount ?? 1, o, idOnly: true })
    const rounds = []
    // The median element of `list` by `key` (the lower middle one of an even count).
    const median = (list, key) => [...list].sort((a, b) => key(a) - key(b))[Math.floor((list.length - 1) / 2)]
    // One round: each server's max run, then its latency at 50% of that max (dnsperf -Q, -v).
    const referenceRound = async (i) => {
      const max = await referenceMax(ctx, ref, refPlan)
      return { max, half: await halfLoad(ctx, 'reference', ref.port, refPlan.client, refPlan.clientCount ?? 1, max.qps, `reference-latency-50-${i + 1}.txt`) }
    }
    for (let i = 0; i < o.rounds; i++) {
      log(`round ${i + 1} of ${o.rounds}`)
      const meridianFirst = i % 2 === 0
      const rr0 = meridianFirst ? null : await referenceRound(i)
      m ??= await startMeasured(ctx, o.workers, plan)
      const mr = await meridianMax(ctx, m)
      const run = { ...m, ...mr, ...(await meridianHalfAndStop(ctx, m, mr.max.qps, i)) }
      m = null
      // --compare-workers: one worker, right after the N, so that the machine's drift hits both alike
      // (on a shared VM a single baseline run can land in a slow minute and make the ratio anything).
      const one = o.compareWorkers ? await measureMeridian(ctx, 1, cpuPlan(1, ncpu)) : null
      const rr = rr0 ?? (await referenceRound(i))
      const scaling = one ? mr.max.qps / one.max.qps : null
      rounds.push({ meridian: run, one, scaling, scalingPerCpu: one ? perCpuScaling(mr.max, one.max, o.workers) : null, reference: rr.max, referenceHalf: rr.half, ratio: mr.max.qps / rr.max.qps, order: meridianFirst ? 'meridian first' : 'reference first' })
      log(
        `round ${i + 1}: Meridian / reference = ${((100 * mr.max.qps) / rr.max.qps).toFixed(1)}%; p99 at 50% load: Meridian ${run.half.p99Ms} ms, reference ${rr.half.p99Ms} ms` +
          (one ? `; ${o.workers} workers / 1 worker = x${scaling.toFixed(2)}` : ''),
      )
    }
    // --compare-workers: the round with the median N/1 ratio gives the baseline figures.
    const scaleRound = o.compareWorkers ? median(rounds, (r) => r.scaling) : null
    const baseline = scaleRound?.one ?? null
    await stop(pools.entry)
    await stop(ref.entry)
    // The median round (the lower middle one of an even count) by ratio gives the max figures, the
    // median round by Meridian's p99 the latency figures, and the median of the reference's p99s the
    // method's floor: one noisy round moves none of them.
    const mid = median(rounds, (r) => r.ratio)
    // The ratio itself is the median value: the middle one, or the mean of the middle two.
    const ratios = rounds.map((r) => r.ratio).sort((a, b) => a - b)
    const ratio = (ratios[(ratios.length - 1) >> 1] + ratios[ratios.length >> 1]) / 2
    const latRound = median(rounds, (r) => r.meridian.half.p99Ms)
    const refLatRound = median(rounds, (r) => r.referenceHalf.p99Ms)
    const run = { ...mid.meridian, half: latRound.meridian.half }
    const refMax = mid.reference
    const refHalf = refLatRound.referenceHalf

    const result = {
      version: 1,
      timestamp: new Date().toISOString(),
      quick: o.quick,
      seconds: o.seconds,
      warmupSeconds: o.warmup,
      // Each Meridian's warm-up went on until the query file had gone through once per worker.
      warmupUntilPass: !o.quick && o.warmup > 0,
      roundsRun: o.rounds,
      machine: { ...machineInfo(), dnsperf: dnsperfVersion(), memoryGb: Math.round(os.totalmem() / 2 ** 30) },
      git: gitInfo(),
      setup: {
        workers: o.workers,
        serverCpus: plan.server ?? 'any',
        clientCpus: plan.client ?? 'any',
        sharedCpus: plan.shared,
        pinning: describePlan(plan, o.workers, o.generator),
        udpSharing: o.workers > 1 ? 'node:cluster shared UDP handle: every worker reads the same socket (no SO_REUSEPORT in Node 20); TCP: SCHED_NONE, the workers accept on the shared listening socket' : null,
        serverNodeArgs: ctx.nodeArgs,
        referenceCpus: refPlan.server ?? 'any',
        // Since 2026-12-04 the reference sends as Meridian does, without a dns.lookup per send; runs
        // without this field measured a reference that paid one (docs/benchmarks.md, session 8).
        referenceLookup: 'literal',
        backgroundCpuBusy: background,
        isolation,
        geodb: path.relative(ROOT, o.geodb),
        zone: { origin: ORIGIN, services: SERVICES.length, regions: REGIONS.length, checkIntervalSeconds: 1, healthUpAtStart: mer.healthUp },
        meridianInstances: `one per round (started cold, sanity-checked, warmed up, one max run, one latency run at 50% of that max, stopped); the reference runs throughout, idle while Meridian is measured`,
        traffic: { queries: o.queries, networks: nets.networks.length, countries: nets.countries, seed: o.seed, mix: traffic.counts, ecsLocated: sanity.located },
        generator: o.generator,
        dnsperf: { clients: o.clients, outstanding: o.outstanding, timeoutSeconds: o.timeout, threads },
      },
      meridian: meridianFigures(run),
      ...(baseline
        ? {
            baseline: { workers: 1, serverCpus: baseline.plan.server ?? 'any', clientCpus: baseline.plan.client ?? 'any', pinning: describePlan(baseline.plan, 1, o.generator), ...meridianFigures(baseline) },
            // The median round's (by N/1), with the N-worker run of that same round.
            baselineRound: rounds.indexOf(scaleRound),
            scaling: scaleRound.scaling,
            scalingPerCpu: scaleRound.scalingPerCpu,
          }
        : {}),
      reference: {
        max: refMax,
        half: refHalf,
        answerOctets: sanity.answer.length,
      },
      ratio,
      rounds: rounds.map((r) => ({
        order: r.order,
        meridianQps: Math.round(r.meridian.max.qps),
        referenceQps: Math.round(r.reference.qps),
        ratio: r.ratio,
        meridianCpuUsPerQuery: r.meridian.max.serverCpuUsPerQuery,
        referenceCpuUsPerQuery: r.reference.serverCpuUsPerQuery,
        cacheHitRatio: r.meridian.cache.hitRatio,
        meridianP99Ms: r.meridian.half.p99Ms,
        referenceP99Ms: r.referenceHalf.p99Ms,
        ...(r.one ? { oneWorkerQps: Math.round(r.one.max.qps), oneWorkerCpuUsPerQuery: r.one.max.serverCpuUsPerQuery, scaling: r.scaling, scalingPerCpu: r.scalingPerCpu } : {}),
      })),
      warnings,
    }
    printSummary(result)
    if (o.save) {
      const file = saveResults(result)
      renderDocs()
      log(`wrote ${path.relative(ROOT, file)}, bench/results/latest.json and docs/benchmarks.md`)
    } else {
      log('not saved (--quick without --save, or --no-save)')
    }
    ok = true
  } finally {
    restoreIsolation()
    await stopAll()
    if (!ok) keepTmp = true
    if (keepTmp) log(`${ok ? 'kept' : 'left for a look'}: ${tmp} (zone, traffic, logs)`)
    removeTmp()
  }
}

/**
 * When the server has one CPU to itself, that CPU's busy time beyond the server's own CPU time is
 * someone else's work (other processes, or kernel work on their behalf): flag it.
 */
function interference(name, run, cpus) {
  if (cpus === null || !/^\d+$/.test(cpus) || run.serverCpuSeconds === null) return
  const busy = run.cpuBusy[cpus]
  const own = run.serverCpuSeconds / run.runSeconds
  run.otherCpuOnServerCore = Math.max(0, Math.round((busy - own) * 1000) / 1000)
  if (busy - own > 0.05) warn(`during the ${name} max run CPU ${cpus} was ${(busy * 100).toFixed(0)}% busy but the server used only ${(own * 100).toFixed(0)}% of it: other work shared its core`)
}

/**
 * Scaling by server CPU, for machines where the load generator must share the workers' cores: how
 * many queries each second of server CPU answered with N workers, against one worker
 * (`efficiency`), and what N workers would answer on N cores of their own at that efficiency
 * (`projected`, as a multiple of one worker). Counts every server process, the control process too.
 */
function perCpuScaling(n, one, workers) {
  if (!n.serverCpuSeconds || !one.serverCpuSeconds) return null
  const efficiency = n.completed / n.serverCpuSeconds / (one.completed / one.serverCpuSeconds)
  return { efficiency: Math.round(efficiency * 1000) / 1000, projected: Math.round(workers * efficiency * 100) / 100 }
}

function printSummary(r) {
  const m = r.meridian
  const n = (x) => Math.round(x).toLocaleString('en-US')
  const f = (x) => (x === null ? 'n/a' : `${x.toFixed(3)} ms`)
  const share = (x) => (x.serverCpuSeconds === null ? 'n/a' : `${((100 * x.serverCpuSeconds) / x.runSeconds).toFixed(0)}%`)
  // The split says whose time it is: user (the server's code, Node's included) or system (the kernel's sockets).
  const perQuery = (x) => (x.serverCpuUsPerQuery === undefined || x.serverCpuUsPerQuery === null ? 'n/a' : `${x.serverCpuUsPerQuery} µs` + (x.serverCpuSplit ? ` (${x.serverCpuSplit.user} + ${x.serverCpuSplit.sys})` : ''))
  const busy = (x) => Object.entries(x.cpuBusy).map(([c, v]) => `cpu${c} ${(v * 100).toFixed(0)}%`).join(' ')
  const rows = [
    ['', 'Meridian', 'raw dgram reference'],
    ['max queries/s', n(m.max.qps), n(r.reference.max.qps)],
    ['lost (max run)', `${n(m.max.lost)} of ${n(m.max.sent)}`, `${n(r.reference.max.lost)} of ${n(r.reference.max.sent)}`],
    r.setup.generator === 'blast'
      ? ['blast p50 / p99 latency (max run)', `${f(m.max.p50Ms)} / ${f(m.max.p99Ms)}`, `${f(r.reference.max.p50Ms)} / ${f(r.reference.max.p99Ms)}`]
      : ['dnsperf avg latency (max run)', f(m.max.avgMs), f(r.reference.max.avgMs)],
    ['server CPU s / run s (max run)', share(m.max), share(r.reference.max)],
    ['server CPU µs per query: user + system (max run)', perQuery(m.max), perQuery(r.reference.max)],
    ['CPU busy (max run)', busy(m.max), busy(r.reference.max)],
  ]
  const w0 = Math.max(...rows.map((x) => x[0].length)) + 2
  const w1 = Math.max(...rows.map((x) => x[1].length)) + 3
  console.log('')
  console.log(`Meridian bench, ${r.seconds} s runs, ${r.setup.workers} worker(s): server on CPU ${r.setup.serverCpus}, ${r.setup.generator === 'blast' ? 'blast (max runs; dnsperf for latency)' : 'dnsperf'} on CPU ${r.setup.clientCpus} (dnsperf -c ${r.setup.dnsperf.clients} -q ${r.setup.dnsperf.outstanding})`)
  console.log(`  pinning: ${r.setup.pinning}`)
  for (const row of rows) console.log(`  ${row[0].padEnd(w0)}${row[1].padEnd(w1)}${row[2]}`)
  const each = r.rounds.map((x) => `${(x.ratio * 100).toFixed(1)}%`).join(', ')
  console.log(`  ${'Meridian / reference'.padEnd(w0)}${(r.ratio * 100).toFixed(1)}%${r.rounds.length > 1 ? ` (median of ${r.rounds.length} rounds: ${each}; the columns above are the median round)` : ''}`)
  if (m.max.processes && r.setup.workers > 1) console.log(`  ${'CPU per process (max run)'.padEnd(w0)}${m.max.processes.map((p) => `${p.role} ${((100 * p.cpuSeconds) / m.max.runSeconds).toFixed(0)}%`).join(', ')}`)
  if (m.queriesPerWorker) {
    const all = m.queriesPerWorker.reduce((s, w) => s + w.queries, 0)
    console.log(`  ${'queries per worker'.padEnd(w0)}${m.queriesPerWorker.map((w) => `worker ${w.worker} ${((100 * w.queries) / all).toFixed(1)}%`).join(', ')} (of ${n(all)}, whole run)`)
  }
  if (r.baseline) {
    const b = r.baseline
    console.log(`  ${'1 worker, same round'.padEnd(w0)}${n(b.max.qps)} q/s max, ${b.max.serverCpuUsPerQuery ?? 'n/a'} µs server CPU per query (${b.pinning}); at 50%: avg ${f(b.half.avgMs)}, p99 ${f(b.half.p99Ms)}`)
    const each = r.rounds.length > 1 ? ` (median of ${r.rounds.length} rounds: ${r.rounds.map((x) => `x${x.scaling.toFixed(2)}`).join(', ')})` : ''
    console.log(`  ${`${r.setup.workers} workers / 1 worker`.padEnd(w0)}${(r.scaling * 100).toFixed(0)}%${each} (measured: the load generator shares CPU ${r.setup.clientCpus} with the workers)`)
    const c = r.scalingPerCpu
    if (c) console.log(`  ${'per server CPU second'.padEnd(w0)}${(c.efficiency * 100).toFixed(0)}% of one worker's queries, so ${r.setup.workers} workers on ${r.setup.workers} cores of their own: x${c.projected.toFixed(2)} (projected, from the median round; each round: ${r.rounds.map((x) => (x.scalingPerCpu ? `${(x.scalingPerCpu.efficiency * 100).toFixed(0)}%` : 'n/a')).join(', ')})`)
  }
  console.log(`  ${'at 50% load'.padEnd(w0)}${n(m.half.offeredQps)} q/s offered, ${n(m.half.qps)} answered: avg ${f(m.half.avgMs)}, p50 ${f(m.half.p50Ms)}, p99 ${f(m.half.p99Ms)}, max ${f(m.half.maxMs)} (${n(m.half.samples)} samples); lost ${n(m.half.lost)}`)
  const rh = r.reference.half
  console.log(`  ${'reference at 50% load'.padEnd(w0)}${n(rh.offeredQps)} q/s offered: avg ${f(rh.avgMs)}, p99 ${f(rh.p99Ms)} (the method's floor)`)
  if (r.rounds.length > 1) {
    const p99s = (key) => r.rounds.map((x) => f(x[key])).join(', ')
    console.log(`  ${'p99 at 50% load, each round'.padEnd(w0)}Meridian ${p99s('meridianP99Ms')}; reference ${p99s('referenceP99Ms')} (the lines above are the median rounds)`)
  }
  console.log(`  ${'Meridian RSS'.padEnd(w0)}${m.rss.mb.toFixed(1)} MB at the end of the max run (peak ${m.rss.peakMb.toFixed(1)} MB)`)
  console.log(`  ${'answer-cache hit ratio'.padEnd(w0)}${m.cache.hitRatio === null ? m.cache.note : `${(m.cache.hitRatio * 100).toFixed(1)}%`}`)
  console.log(`  ${'rcodes (max run)'.padEnd(w0)}${Object.entries(m.max.rcodes).map(([k, v]) => `${k} ${n(v)}`).join(', ')}`)
  console.log('')
}

main().catch(async (err) => {
  console.error(`bench: failed: ${err.stack ?? err.message}`)
  await stopAll()
  process.exit(1)
})
