/**
 * Health-check rounds on a worker thread of their own (check-worker.ts), for a process whose event
 * loop also answers DNS (`--workers 1`).
 *
 * A round's latency is timed from its start to its response on the loop that runs it. On the DNS
 * loop of a busy server the response waits behind the queries read before it: under full load the
 * bench's loopback pools (1-3 ms) measured 7-15 ms and more, their EWMAs moved by more than
 * max(2 ms, 25%) again and again, and each move ended every geo-latency answer built on it
 * (docs/benchmarks.md, sessions 8 and 25). geo-latency steered by the server's own load, not by the
 * regions'. On a thread whose loop runs only checks, a round is timed as the pool answered it
 * (the thread still shares the CPU: its wake-up is the scheduler's, not the queue's).
 *
 * The poller keeps its schedule, states and EWMAs on the main thread; only `Check.run` crosses
 * (a message out, a message back). A cancelled round is cancelled in the thread (its connection
 * closed there). If the thread dies, its rounds in flight are run again on the event loop and a new
 * thread takes the next ones; a second death within a minute leaves every round on the event loop
 * for good (logged), as a process without the thread would run them.
 */
import { Worker } from 'node:worker_threads'
import type { Logger } from '../log.js'
import { createCheck, RoundClients, type Check } from './check.js'
import type { ResolvedSpec } from './spec.js'
import type { CheckResult } from './state.js'

export type CheckRequest = { t: 'run'; id: number; spec: ResolvedSpec } | { t: 'cancel'; id: number } | { t: 'exit'; code: number }
export interface CheckReply {
  id: number
  result: CheckResult
}

interface Pending {
  readonly worker: Worker
  readonly spec: ResolvedSpec
  readonly signal: AbortSignal
  readonly clients: RoundClients
  readonly onAbort: () => void
  readonly resolve: (r: CheckResult) => void
}

/** A second death of the thread within this long leaves the rounds on the event loop. */
const DEATH_WINDOW_MS = 60_000

export class CheckThread {
  private worker: Worker | undefined
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private lastDeath = -Infinity
  /** Given up on the thread (it died twice within DEATH_WINDOW_MS): rounds run on the event loop. */
  private onLoop = false
  private closed = false

  constructor(private readonly log: Logger) {}

  /** The poller's `createCheck`: the spec's check, each round run on the thread. */
  readonly createCheck = (spec: ResolvedSpec, clients: RoundClients): Check => ({ spec, run: (signal) => this.run(spec, signal, clients) })

  /** Whether rounds still go to the thread (false once it was given up, or closed): tests. */
  get threaded(): boolean {
    return !this.onLoop && !this.closed
  }

  /** Rounds in flight on the thread (tests). */
  get inFlight(): number {
    return this.pending.size
  }

  /** Ends the thread; rounds still in flight on it end as cancelled. Rounds asked for after it run on the event loop. */
  async close(): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.worker = undefined
    if (worker) await worker.terminate()
  }

  /** For tests: makes the thread exit as a crash would (exit code `code`). */
  crashForTest(code = 1): void {
    this.worker?.postMessage({ t: 'exit', code } satisfies CheckRequest)
  }

  private run(spec: ResolvedSpec, signal: AbortSignal, clients: RoundClients): Promise<CheckResult> {
    if (this.onLoop || this.closed || signal.aborted) return createCheck(spec, clients).run(signal)
    const worker = this.thread()
    const id = this.nextId++
    return new Promise((resolve) => {
      const onAbort = (): void => worker.postMessage({ t: 'cancel', id } satisfies CheckRequest)
      signal.addEventListener('abort', onAbort, { once: true })
      this.pending.set(id, { worker, spec, signal, clients, onAbort, resolve })
      worker.ref()
      worker.postMessage({ t: 'run', id, spec } satisfies CheckRequest)
    })
  }

  private thread(): Worker {
    if (this.worker) return this.worker
    // No node options of this process's (`--cpu-prof`...): V8's flags hold for every thread anyway.
    const worker = new Worker(new URL('./check-worker.js', import.meta.url), { execArgv: [] })
    this.worker = worker
    worker.on('message', (r: CheckReply) => {
      const p = this.pending.get(r.id)
      if (!p) return
      this.pending.delete(r.id)
      p.signal.removeEventListener('abort', p.onAbort)
      p.resolve(r.result)
      this.settled(worker)
    })
    let gone = false
    const died = (why: string): void => {
      if (gone) return
      gone = true
      if (this.worker === worker) this.worker = undefined
      const mine = [...this.pending].filter(([, p]) => p.worker === worker)
      for (const [id] of mine) this.pending.delete(id)
      if (this.closed) {
        for (const [, p] of mine) p.resolve({ ok: false, latencyMs: 0, error: 'cancelled' })
        return
      }
      const now = performance.now()
      if (now - this.lastDeath < DEATH_WINDOW_MS) {
        this.onLoop = true
        this.log.error({ why, rounds: mine.length }, 'the health-check thread stopped again within a minute: checks now run on the event loop (their latency includes its wait behind DNS)')
      } else {
        this.log.error({ why, rounds: mine.length }, 'the health-check thread stopped: its rounds in flight run again on the event loop, and a new thread takes the next ones')
      }
      this.lastDeath = now
      // Run again from the start on the loop: the thread's connection went with it, and a result
      // must come (the poller schedules the next round only after this one).
      for (const [, p] of mine) {
        p.signal.removeEventListener('abort', p.onAbort)
        void createCheck(p.spec, p.clients).run(p.signal).then(p.resolve)
      }
    }
    worker.on('error', (err) => died(err.message))
    worker.on('exit', (code) => died(`exit code ${code}`))
    worker.unref()
    return worker
  }

  /** With no round in flight on it, the thread does not hold the process open. */
  private settled(worker: Worker): void {
    for (const p of this.pending.values()) if (p.worker === worker) return
    worker.unref()
  }
}
