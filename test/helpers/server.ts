/**
 * Starts a real Meridian process (`dist/src/cli.js serve`, the executable, as an operator runs it:
 * its #! line gives node the DNS V8 flags) on OS-chosen ports and reads the
 * bound addresses from its start-up log line. Every test that needs a server uses this; `runCli`
 * runs any other command (`check`, `explain`, a `serve` expected to refuse) to its end.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js')
export const DEMO_ZONES = path.join(ROOT, 'zones')
/** The tiny deterministic GeoIP database of documentation networks (geodb/test/networks.csv). */
export const TEST_GEODB = path.join(ROOT, 'geodb', 'test', 'meridian-test.mmdb')

export interface LogLine {
  level: number
  msg: string
  [k: string]: unknown
}

export interface RunningServer {
  proc: ChildProcessWithoutNullStreams
  /** Port of the first listen address (UDP and TCP share it). */
  port: number
  /** Every bound address as `udp://127.0.0.1:PORT`... */
  listen: string[]
  zonesDir: string
  /** Every JSON log line so far. */
  logs: LogLine[]
  /**
   * Resolves with the first log line (already seen or still to come) that matches. After an action,
   * pass `from` (`logs.length` read before the action): only lines from that index on are matched,
   * so a like line logged before the action (a check that flapped, an earlier reload) cannot answer.
   */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>
  /** Stops the process (SIGTERM) and waits for it to exit; returns its exit code. */
  stop(): Promise<number | null>
  stderr(): string
}

export interface StartOptions {
  /** A directory of zone files; copied to a fresh temporary directory (default: the demo zones). */
  zones?: string
  /** Use this directory as is (no copy). */
  zonesDirInPlace?: string
  listen?: string[]
  args?: string[]
  /** Run `node NODE_ARGS... dist/src/cli.js` (this node, these arguments) instead of the executable. */
  nodeArgs?: string[]
  /** The server's working directory (default: this process's). */
  cwd?: string
  /** Start it as the leader of a process group of its own (its pid is the group's id), as a shell job or a service is. */
  detached?: boolean
}

/**
 * Servers spawned and not yet exited, with the directories they write into (`--zones`: its
 * `.meridian/` state; the working directory), so that a directory is never removed under one.
 */
const live = new Set<{ dirs: string[]; stop: () => Promise<unknown> }>()

/** Whether `inner` is `outer` or lies inside it. */
const within = (inner: string, outer: string): boolean => {
  const rel = path.relative(outer, inner)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

/**
 * A fresh temporary directory, removed by the returned cleanup. The cleanup first stops (SIGTERM,
 * and waits for the exit) every server still running in it: node:test runs a test's after hooks in
 * the order they were added, so a cleanup added before a server's stop would otherwise remove the
 * directory while the server runs, and the stopping server then wrote `.meridian/health.json` into
 * it again, re-creating it (hundreds of /tmp/meridian-test-* were left). Retries a removal that
 * races with anything else writing there instead of failing with ENOTEMPTY.
 */
export async function tempDir(prefix = 'meridian-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  return {
    dir,
    cleanup: async () => {
      await Promise.all([...live].filter((s) => s.dirs.some((d) => within(d, dir))).map((s) => s.stop()))
      await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 })
    },
  }
}

/** How long startServer waits for the start-up log line. */
const START_TIMEOUT_MS = 30_000

export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  let zonesDir = opts.zonesDirInPlace
  let cleanup: (() => Promise<void>) | undefined
  if (!zonesDir) {
    const t = await tempDir()
    await cp(opts.zones ?? DEMO_ZONES, t.dir, { recursive: true, filter: (src) => !path.basename(src).startsWith('.meridian') })
    zonesDir = t.dir
    cleanup = t.cleanup
  }
  const listen = opts.listen ?? ['127.0.0.1:0']
  // The admin API on an OS-chosen port too, unless the test picks one: no test binds a fixed port.
  const admin = opts.args?.includes('--admin') ? [] : ['--admin', '127.0.0.1:0']
  // One process unless the test asks for workers (`--workers` defaults to one per CPU).
  const workers = opts.args?.includes('--workers') ? [] : ['--workers', '1']
  const args = ['serve', '--zones', zonesDir, ...listen.flatMap((l) => ['--listen', l]), ...admin, ...workers, ...(opts.args ?? [])]
  const { proc, logs, waitForLog, exited, stderr } = spawnServer(args, opts)
  let started: LogLine
  try {
    // Up to 30 s: workers forked on a loaded 2-CPU machine have taken over 10 s to start.
    started = await waitForLog((l) => Array.isArray(l.listen) && typeof l.msg === 'string' && l.msg.startsWith('meridian serving'), START_TIMEOUT_MS)
  } catch (err) {
    // A server that did not start is stopped here: the test that asked for it gets no handle to
    // stop it with, and a process left running kept its whole test file from ever ending.
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(kill)
    }
    await cleanup?.()
    throw err
  }
  const listenAddrs = started.listen as string[]
  const port = Number(/:(\d+)$/.exec(listenAddrs[0]!)![1])
  return {
    proc,
    port,
    listen: listenAddrs,
    zonesDir,
    logs,
    waitForLog,
    stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const [code] = await exited
      await cleanup?.()
      return code
    },
  }
}

/** A spawned `meridian` (the executable, or `node NODE_ARGS... cli.js`) with `args`: its JSON log lines as they come, and its exit. */
export interface SpawnedServer {
  proc: ChildProcessWithoutNullStreams
  logs: LogLine[]
  /** Resolves with the first log line (already seen or still to come, at index `from` or later) that matches; rejects at the timeout or the exit. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>
  /** Exit code and signal. */
  exited: Promise<[number | null, NodeJS.Signals | null]>
  stderr(): string
}

/** Spawns the CLI with `args` (no waiting: startServer waits for the start-up line). */
export function spawnServer(args: string[], opts: { nodeArgs?: string[]; cwd?: string; detached?: boolean; wrap?: string[] } = {}): SpawnedServer {
  const how = { stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'], cwd: opts.cwd, detached: opts.detached ?? false }
  // `wrap`: a command that execs the executable (e.g. setpriv switching to another user).
  const proc = opts.nodeArgs ? spawn(process.execPath, [...opts.nodeArgs, CLI, ...args], how) : opts.wrap ? spawn(opts.wrap[0]!, [...opts.wrap.slice(1), CLI, ...args], how) : spawn(CLI, args, how)
  const logs: LogLine[] = []
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = []
  let stderr = ''
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let parsed: LogLine
    try {
      parsed = JSON.parse(line) as LogLine
    } catch {
      return
    }
    logs.push(parsed)
    for (const w of [...waiters]) {
      if (w.match(parsed)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(parsed)
      }
    }
  })
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.once('exit', (code, signal) => resolve([code, signal])))
  // Known to tempDir's cleanup until it exits: stopped by it, as by its own test, if still running.
  const zones = args.indexOf('--zones')
  const entry = {
    dirs: [...(zones >= 0 && args[zones + 1] ? [path.resolve(args[zones + 1]!)] : []), ...(opts.cwd ? [path.resolve(opts.cwd)] : [])],
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(kill)
    },
  }
  live.add(entry)
  void exited.then(() => live.delete(entry))
  const waitForLog = (match: (l: LogLine) => boolean, timeoutMs = 10000, from = 0): Promise<LogLine> => {
    const seen = logs.slice(from).find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}; logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs)
      const w = {
        match,
        resolve: (l: LogLine) => {
          clearTimeout(timer)
          resolve(l)
        },
      }
      waiters.push(w)
      void exited.then(([code]) => {
        if (waiters.includes(w)) {
          clearTimeout(timer)
          reject(new Error(`server exited (${code}) before the expected log line; stderr: ${stderr}`))
        }
      })
    })
  }
  return { proc, logs, waitForLog, exited, stderr: () => stderr }
}

/** The admin API's base URL (`http://127.0.0.1:PORT`), from the server's `admin API listening` log line. */
export async function adminUrl(server: RunningServer): Promise<string> {
  return String((await server.waitForLog((l) => l.msg === 'admin API listening')).url)
}

/** `node dist/src/cli.js ARGS...` to its end: exit code (1 when it has none), stdout and stderr. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
}
