/**
 * What the bench scripts share: the repository root, reading a command-line option, whether a
 * tool is installed, a process and its descendants, the git state and the machine a result was
 * measured at, the server's node arguments, and reading dnsperf's per-query latencies.
 */
import { spawnSync } from 'node:child_process'
import { createReadStream, readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The value after `name` on the command line (`--seconds 10`), or `fallback` when there is none. */
export function option(name, fallback, argv = process.argv) {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}

/** Is `cmd` on the PATH? */
export const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0

/** `pid` and every process below it (children first, then theirs), read from /proc. */
export function descendants(pid) {
  const parent = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parent.set(Number(d), ppid)
    } catch {
      // exited meanwhile
    }
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i] && !out.includes(p)) out.push(p)
  return out
}

/** The commit checked out (short) and whether tracked files differ from it. */
export function gitInfo() {
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  const st = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' })
  return { commit: rev.status === 0 ? rev.stdout.trim() : 'unknown', dirty: st.status === 0 ? st.stdout.trim() !== '' : false }
}

/**
 * The machine a result was measured on. `meltdown` is the kernel's Meltdown mitigation
 * (`Mitigation: PTI` or `Not affected`): with page-table isolation every system call flushes the
 * TLB (without PCID), which costs a server that touches more memory per datagram more than the
 * reference; runs on kernels that differ here are not comparable (docs/benchmarks.md, session 6).
 */
export function machineInfo() {
  let meltdown = 'unknown'
  try {
    meltdown = readFileSync('/sys/devices/system/cpu/vulnerabilities/meltdown', 'utf8').trim()
  } catch {
    // not Linux, or no such file
  }
  return { cpuModel: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, kernel: os.release(), meltdown, node: process.versions.node }
}

/**
 * Node arguments of the server, as the `meridian` executable runs it: the V8 flags of its #! line
 * (src/cluster/primary.ts DNS_V8_FLAGS; test/unit/cluster.test.ts keeps the two the same) plus
 * `extra` (`--node-arg`), where a flag of `extra` replaces the same one. With workers, the control
 * process runs with them and hands them to its workers.
 */
export async function serverNodeArgs(extra) {
  const { workerExecArgv } = await import(path.join(ROOT, 'dist', 'src', 'cluster', 'primary.js'))
  return workerExecArgv(extra, process.env.NODE_OPTIONS)
}

/** The latencies (ms) of a dnsperf -v file's per-query lines (`> NOERROR binary input 0.000142`, seconds, µs resolution), in the order the answers came. */
export async function dnsperfLatencies(file) {
  const values = []
  for await (const line of createInterface({ input: createReadStream(file) })) {
    if (line.charCodeAt(0) !== 62 /* > */) continue
    const v = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (Number.isFinite(v)) values.push(v * 1000)
  }
  return values
}

/** Exact percentiles (ms, rounded to dnsperf's 1 µs) of latencies. */
export function latencyStats(values) {
  const a = Float64Array.from(values).sort()
  const us = (v) => (v === null ? null : Math.round(v * 1000) / 1000)
  const rank = (p) => (a.length === 0 ? null : us(a[Math.max(0, Math.ceil(p * a.length) - 1)]))
  const sum = a.reduce((s, v) => s + v, 0)
  return { samples: a.length, avgMs: a.length ? us(sum / a.length) : null, p50Ms: rank(0.5), p90Ms: rank(0.9), p99Ms: rank(0.99), p999Ms: rank(0.999), maxMs: a.length ? us(a[a.length - 1]) : null }
}

/** Calls `onLine` with each JSON line of `stream` (a server's log on its stdout); other lines are skipped. */
export function onJsonLines(stream, onLine) {
  createInterface({ input: stream }).on('line', (line) => {
    let l
    try {
      l = JSON.parse(line)
    } catch {
      return
    }
    onLine(l)
  })
}
