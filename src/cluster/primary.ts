/**
 * `meridian serve --workers N` (N >= 2): this process is the control process. It keeps the config
 * store, the health poller, the admin API and the health state file (cli.ts builds them as for one
 * process) and runs N DNS workers with node:cluster (src/cluster/worker.ts). The workers share the
 * UDP and TCP sockets of every --listen address (cluster's shared handles: the kernel hands each
 * datagram to whichever worker reads first; TCP connections too are accepted by the workers
 * themselves, SCHED_NONE, see start()). What crosses the IPC channel: the zone set (on start and on every store change, acknowledged
 * so an admin API change is answered only once every worker has it), the health view (whole on start,
 * then the records changed since the last update when its generation moves: health-sync.ts), and the workers' metrics (when /metrics is scraped, and every 2 s unasked). A worker that
 * dies is replaced, with a backoff when it keeps dying; the others keep answering meanwhile.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { InvalidArgumentError } from 'commander'
import type { HandlerOptions } from '../dns/handler.js'
import type { BoundAddress, ListenAddress, TcpOptions } from '../dns/server.js'
import { MeridianError } from '../errors.js'
import type { Logger } from '../log.js'
import { RemovedSeries, removedSeries, type Metrics, type Removal } from '../metrics/index.js'
import { servedOnly, type ServedZoneSet, type ZoneSet } from '../model/types.js'
import { NotDurableEditError, type EditableConfigStore } from '../store/file-store.js'
import { HealthSender, type HealthSource } from './health-sync.js'
import { foldRetired, lasting, mergeMetrics, SeriesRemovals, withoutSeries, type MetricsJson } from './metrics.js'
import { cloneProblem, type FromWorker, type GeoDbBytes, type ToWorker } from './protocol.js'

/**
 * V8 flags a process that answers DNS runs with unless the operator set them (in node's own
 * arguments or NODE_OPTIONS): every DNS worker gets them from the control process, and the
 * `meridian` executable's `#!` line (src/cli.ts) gives them to the process itself, so the
 * one-process server (`--workers 1`) and the control process run with them too (the control
 * process answers no DNS; for it they trade ~4 points of a core at 5,000 checks for ~30 MB,
 * docs/benchmarks.md); test/unit/cluster.test.ts checks that the two lists are the same.
 *
 * - `--max-semi-space-size=1`: a 1 MiB semi-space, V8's smallest (Node's default lets it grow to
 *   16 MiB). A DNS process's garbage is almost all per-query (datagrams, replies, send requests)
 *   and dies young, and a scavenge's pause grows with the young generation (the array buffers it
 *   sweeps: one per datagram). Measured with `npm run bench` (docs/benchmarks.md): 16 MiB, ~2 ms
 *   scavenges, p99 at half load 2.0-2.2 ms; 4 MiB, 0.4-0.8 ms every ~38 ms, p99 1.30-1.60 ms;
 *   1 MiB, ~0.2 ms every ~11 ms, p99 0.89-1.09 ms, throughput the same within the noise. It also
 *   keeps the young generation's own pages small: one process holding 100,000 answers, 202-208 MB
 *   RSS with Node's default against 152-164 MB. Session 7 tried 2 MiB: half the scavenges (0.60 ms
 *   every ~26 ms against 0.48 ms every ~14 ms under full load; 0.33 against 0.52 µs of GC per
 *   query) and 128-132 MB, but no throughput gain the bench could show (3-round medians 80.6-87.9%
 *   against 83.6%) and median p99s at half load higher in all 3 invocations (2.01, 1.74, 3.07 ms
 *   against 1.71): kept at 1 MiB, for the p99 target it met on a kernel without PTI.
 * - `--heap-growing-percent=50`: after a full collection the old generation may grow by half of
 *   what survived before the next one. Otherwise V8 picks a factor of up to 4 on a machine with
 *   this much memory (it scales the largest factor with the heap limit, HeapController::kMaxSize),
 *   and while the cache fills, 100,000 misses allocate: one process grew to 96 MB of committed heap
 *   around ~35 MB of live JS objects. With it: 125-130 MB filled and 134-138 MB after a replay
 *   (npm run bench:memory), under the 150 MB of the performance issue; the in-process hot path
 *   cost the same per query with and without it (bench/handler-profile.mjs, interleaved runs).
 *   Unlike `--max-old-space-size` it sets no limit, so no configuration size can make it crash a
 *   process.
 */
export const DNS_V8_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--heap-growing-percent=50']

/** The name of a node or V8 flag as written in `arg` (`--max_semi_space_size=1` -> `max-semi-space-size`). */
const flagName = (arg: string): string => arg.replace(/^--?/, '').split('=')[0]!.replace(/_/g, '-')

/** The DNS_V8_FLAGS that neither node's own arguments (`execArgv`) nor NODE_OPTIONS set, to any value. */
export function unsetDnsV8Flags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map(flagName))
  return DNS_V8_FLAGS.filter((f) => !given.has(flagName(f)))
}

/** The worker's execArgv: the parent's, plus each DNS_V8_FLAGS flag the operator did not set. */
export function workerExecArgv(parent: readonly string[], nodeOptions: string | undefined): string[] {
  return [...parent, ...unsetDnsV8Flags(parent, nodeOptions)]
}

/** `--workers`: an integer 1..256, or `auto` (one per CPU the process may use). */
export function parseWorkers(v: string): number {
  if (v === 'auto') return availableParallelism()
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('must be an integer 1..256, or auto (one per CPU)')
  return n
}

export interface DnsWorkersOptions {
  count: number
  listen: ListenAddress[]
  tcp: TcpOptions
  handler: Partial<HandlerOptions>
  /** The GeoIP database answering now (sent whole to each worker that starts, and on a change). */
  geodb: () => GeoDbBytes
  logLevel: string
  log: Logger
  store: Pick<EditableConfigStore, 'current' | 'onChange'>
  poller: HealthSource & { onChange(listener: () => void): () => void }
  /** The control process's own metrics (health, reloads, regions, process). */
  metrics: Metrics
  /** How long an admin API change waits for every worker to have the new zone set (default 1000 ms). */
  syncTimeoutMs?: number
  /** How long a /metrics scrape waits for a worker (default 1000 ms); then its last figures are used. */
  scrapeTimeoutMs?: number
  /**
   * How long an answering worker may send nothing (it reports its metrics every 2 s unasked) before
   * it is taken as hung and killed, to be replaced (default WORKER_HANG_TIMEOUT_MS; 0: never).
   */
  hangTimeoutMs?: number
}

/**
 * How long a wait for the workers may last while a GeoIP database is on its way to them (a City
 * database is tens of MB for each worker): a reload's, and an admin change's made meanwhile.
 */
export const GEODB_SYNC_MS = 10_000

/** A worker that has sent nothing for this long (its event loop stuck) is killed and replaced. */
export const WORKER_HANG_TIMEOUT_MS = 20_000

/**
 * How long after a worker's clean exit (code 0, or SIGTERM) the control process decides whether it
 * was a death: by then a SIGTERM that reached the whole process group has been handled here too.
 */
const EXIT_SETTLE_MS = 100

/** Restart delays: 100 ms after a first death, doubling per death within the last minute, at most 30 s. */
export function restartDelay(deathsInLastMinute: number): number {
  return Math.min(30000, 100 * 2 ** Math.max(0, deathsInLastMinute - 1))
}

type Phase = 'forked' | 'starting' | 'ready'

/** A message for a worker, and what to do once it is written to the channel. */
interface Outgoing {
  msg: ToWorker
  written?: () => void
}

/**
 * A zone set on its way to the answering workers in two halves (sendZones): the first half was
 * sent it, the others are held until every worker of `waiting` answers from set `seq` (or is gone),
 * or until STAGGER_MAX_MS after the hold began.
 */
interface Stagger {
  /** The newest zone set the first half was sent. */
  seq: number
  /** The first half's workers that do not answer from `seq` yet. */
  waiting: Set<Slot>
  /** When the hold began (performance.now()). */
  since: number
  timer: NodeJS.Timeout
}

/**
 * The longest a staggered zone set's second half waits for the first half (from the hold's start,
 * whatever sets come meanwhile): a worker that is hung, or reads slowly, holds the others no longer.
 */
export const STAGGER_MAX_MS = 1000

interface Slot {
  readonly index: number
  worker: Worker | null
  phase: Phase
  pid: number
  /** The last zone set sequence number this worker has. */
  acked: number
  /** The zone set this worker answers from (an ack's `zones`: not held back by a GeoIP database still arriving). */
  applied: number
  /**
   * While this slot is held (the second half of a staggered zone set, see sendZones): everything
   * sent to it meanwhile, in order, the held set first; sent on release. Null: not held.
   */
  held: Outgoing[] | null
  /** The sequence number of the GeoIP database last sent to this slot (geodbChanged): a newer one stops an older one's pieces. */
  geodbSending: number
  lastMetrics: MetricsJson | null
  /** The zone set sequence number `lastMetrics` was collected under (or, before its first report, the init's). */
  reportSeq: number
  deaths: number[]
  restart: NodeJS.Timeout | undefined
  /** When this slot's worker last sent a message, or was forked (performance.now()): it must say hello within 3 hang timeouts. */
  heard: number
  /** Killed by the watchdog (hung): said in its death's log line. */
  hung: boolean
  /** When this slot's worker said hello (performance.now()): it must be ready within the hang timeout. */
  helloAt: number
  /** Settles the start of this slot's current worker (initial start only). */
  started?: { resolve: (b: BoundAddress[]) => void; reject: (e: Error) => void }
}

/** The size of the pieces a GeoIP database is sent to the workers in: ~13 ms of IPC each here. */
const GEODB_PART = 1 << 20

/** How often the health view's generation is compared with the one last sent to the workers. */
const HEALTH_POLL_MS = 250
/** State changes within this long of each other reach the workers in one message. */
const HEALTH_COALESCE_MS = 10

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url))

interface Scrape {
  pending: Set<Slot>
  done: () => void
}

/** `slot` answered `scrape` (or died): the scrape is done once no worker is pending. */
function answered(scrape: Scrape, slot: Slot): void {
  scrape.pending.delete(slot)
  if (scrape.pending.size === 0) scrape.done()
}

/**
 * What every worker must have bound alike: each transport's ports. Not the addresses: on a wildcard
 * listen a worker binds one UDP socket per address of the host, and the host's addresses may change
 * between two forks (a replacement then bound the same ports, and was reported as bound elsewhere).
 */
const key = (b: BoundAddress[]) => [...new Set(b.map((x) => `${x.transport}:${x.port}`))].sort().join(' ')

export class DnsWorkers {
  private readonly log: Logger
  private readonly slots: Slot[]
  private seq = 0
  /** What the workers were sent of the health view, and what to send them next. */
  private readonly health: HealthSender
  private bound: BoundAddress[] | null = null
  /**
   * The zone set the workers answer from: the last one that could be sent (a set the structured
   * clone would refuse stays in the store, not here). A worker that starts gets this one, as the
   * others have it; the store's would fail to send and leave it waiting for its init for ever.
   * Without the zones' definitions (servedOnly): the workers answer DNS and never read them.
   */
  private zones: ServedZoneSet | undefined
  private stopping = false
  private safetyNet: NodeJS.Timeout | undefined
  private watchdog: NodeJS.Timeout | undefined
  /** A health update due after a state change (HEALTH_COALESCE_MS). */
  private healthDue: NodeJS.Timeout | undefined
  private syncWaiters: { seq: number; resolve: () => void }[] = []
  /** The zone set whose second half is held, if any (sendZones). */
  private stagger: Stagger | null = null
  private scrapeId = 0
  private readonly scrapes = new Map<number, Scrape>()
  private retired: MetricsJson = []
  /** Dead workers' last counters not yet folded into `retired` (summed in the meantime: a total never goes down). */
  private retiring: { json: MetricsJson }[] = []
  /** Folds run one after another, each on the total the one before left. */
  private folding: Promise<void> = Promise.resolve()
  /** Zones, services and regions removed that a worker's report may still hold (made before it applied the removal). */
  private readonly removals = new SeriesRemovals()
  /** For the fold under way: what was removed since it started (stripped from its result). */
  private readonly removedWhileFolding = new Set<RemovedSeries>()

  constructor(private readonly o: DnsWorkersOptions) {
    this.log = o.log.child({ mod: 'workers' })
    this.health = new HealthSender(o.poller)
    o.metrics.workers(() => this.answering)
    this.slots = Array.from({ length: o.count }, (_, index) => ({ index, worker: null, phase: 'forked' as Phase, pid: 0, acked: 0, applied: 0, held: null, geodbSending: 0, lastMetrics: null, reportSeq: 0, deaths: [], restart: undefined, heard: 0, hung: false, helloAt: 0 }))
  }

  /**
   * Forks the workers and resolves with the addresses they answer on once every one of them has
   * bound: the first alone (so that port 0 is chosen once: node:cluster then hands the same sockets
   * to the others), then the rest. Rejects when a worker cannot start.
   */
  async start(): Promise<BoundAddress[]> {
    const served = servedOnly(this.o.store.current())
    const problem = cloneProblem(served)
    if (problem) throw new Error(`the zone set cannot be sent to DNS workers: ${problem}`)
    this.zones = served
    // TCP: the workers accept on the shared listening socket themselves (not round robin through this
    // process), so DNS over TCP does not go through the control process's event loop, and a worker
    // killed with a connection just handed to it cannot leave that connection hanging here.
    cluster.schedulingPolicy = cluster.SCHED_NONE
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS), serialization: 'advanced' })
    cluster.on('exit', (w, code, signal) => this.exited(w, code, signal))
    // New checks were just added to (or removed from) the poller (cli.ts's listener runs first),
    // which bumps its generation quietly: the set goes with that health update.
    this.o.store.onChange((set) => this.sendZones(set))
    this.o.poller.onChange(() => {
      if (this.stopping) return
      this.healthDue ??= setTimeout(() => {
        this.healthDue = undefined
        this.sendHealth()
      }, HEALTH_COALESCE_MS)
    })
    // The poller tells its listeners of state changes only; its generation also moves quietly (a
    // latency estimate that moved significantly, targets added or restored): polled here.
    this.safetyNet = setInterval(() => this.sendHealth(), HEALTH_POLL_MS)
    this.safetyNet.unref()
    const hangMs = this.o.hangTimeoutMs ?? WORKER_HANG_TIMEOUT_MS
    if (hangMs > 0) this.watchdog = setInterval(() => this.killHung(hangMs), Math.min(5000, hangMs / 4)).unref()
    let first: BoundAddress[]
    try {
      first = await this.fork(this.slots[0]!, true)
      this.bound = first
      const rest = await Promise.all(this.slots.slice(1).map((s) => this.fork(s, true)))
      for (const [i, b] of rest.entries()) {
        if (key(b) !== key(first)) throw new MeridianError('E_LISTEN', `DNS worker ${i + 2} bound ${key(b)}, not ${key(first)} as the first did`)
      }
    } catch (err) {
      await this.stop(1000)
      throw err
    }
    this.log.info({ workers: this.slots.map((s) => ({ id: s.worker?.id, pid: s.pid })) }, `${this.slots.length} DNS workers answering`)
    return first
  }

  /** How many workers are answering now (bound, not dead). */
  get answering(): number {
    return this.slots.filter((s) => s.phase === 'ready').length
  }

  /** Resolves once every answering worker has the current zone set and GeoIP database (or after the sync timeout, or `timeoutMs`). */
  synced(timeoutMs = this.o.syncTimeoutMs ?? 1000): Promise<void> {
    const seq = this.seq
    if (this.slots.every((s) => s.phase !== 'ready' || s.acked >= seq)) return Promise.resolve()
    // A change made while a database is still reaching a worker is acknowledged only with it (the
    // worker's acks stop short of it): the wait is then the database's. On a loaded machine a 16 MB
    // database took over the 1 s, and a 200 came while 28 of 200 answers were still the old one's.
    if (this.slots.some((s) => s.phase === 'ready' && s.acked < s.geodbSending)) timeoutMs = Math.max(timeoutMs, GEODB_SYNC_MS)
    // The second half of a staggered set is sent it only once the first half has it: it gets its
    // own sync timeout after the hold (itself at most STAGGER_MAX_MS).
    else if (this.stagger) timeoutMs += STAGGER_MAX_MS
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter)
        const behind = this.slots.filter((s) => s.phase === 'ready' && s.acked < seq).map((s) => s.worker?.id)
        this.log.warn({ seq, behind, timeoutMs }, 'DNS workers did not confirm the new zone set or GeoIP database in time')
        resolve()
      }, timeoutMs)
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      this.syncWaiters.push(waiter)
    })
  }

  /**
   * The store, for the admin API: its edits, zone creations and deletions and reloads resolve only once every worker answers from
   * the new set, so a 2xx still means "DNS already answers this way", as with one process.
   */
  syncedStore<T extends EditableConfigStore>(store: T): T {
    return new Proxy(store, {
      get: (target, prop) => {
        const v = Reflect.get(target, prop) as unknown
        if ((prop === 'edit' || prop === 'reload' || prop === 'createZone' || prop === 'deleteZone') && typeof v === 'function') {
          return async (...args: unknown[]) => {
            let r: unknown
            try {
              r = (await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args)) as unknown
            } catch (err) {
              // Made and served, though not durable: its 500 too comes once the workers answer from it.
              if (err instanceof NotDurableEditError) await this.synced()
              throw err
            }
            await this.synced()
            return r
          }
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  }

  /** Prometheus text: this process's registry and every worker's, summed (see cluster/metrics.ts). */
  async renderMetrics(): Promise<string> {
    const id = ++this.scrapeId
    const asked = new Set(this.slots.filter((s) => s.phase === 'ready' && s.worker?.isConnected()))
    const own = this.o.metrics.registry.getMetricsAsJSON()
    if (asked.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.o.scrapeTimeoutMs ?? 1000)
        function done() {
          clearTimeout(timer)
          resolve()
        }
        this.scrapes.set(id, { pending: new Set(asked), done })
        for (const s of asked) this.send(s, { type: 'metrics', id })
      })
      this.scrapes.delete(id)
    }
    const ownJson = await own
    // Taken after the last await: a worker that died meanwhile is counted once, in retiring or retired.
    const workers = this.slots.map((s) => s.lastMetrics).filter((m): m is MetricsJson => m !== null)
    return mergeMetrics(ownJson, [...workers, this.retired, ...this.retiring.map((r) => r.json)])
  }

  /** Stops every worker (asks, then SIGKILL after `graceMs`); no restarts from here on. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true
    clearInterval(this.safetyNet)
    clearInterval(this.watchdog)
    clearTimeout(this.healthDue)
    for (const s of this.slots) clearTimeout(s.restart)
    // What a held worker was sent goes out first, in order, then 'stop': it answers its last
    // queries (those its sockets still hold) from the newest set, as the others do, for the cost of
    // reading one set (~0.1 s with 5,000 services) of its 5 s grace.
    this.release()
    const live = this.slots.filter((s) => s.worker && !s.worker.isDead())
    await Promise.all(
      live.map(
        (s) =>
          new Promise<void>((resolve) => {
            const w = s.worker!
            const kill = setTimeout(() => w.process.kill('SIGKILL'), graceMs)
            w.once('exit', () => {
              clearTimeout(kill)
              resolve()
            })
            if (w.isConnected()) this.send(s, { type: 'stop' })
            else w.process.kill('SIGTERM')
          }),
      ),
    )
  }

  private fork(slot: Slot, initial: boolean): Promise<BoundAddress[]> {
    const w = cluster.fork()
    slot.worker = w
    slot.phase = 'forked'
    slot.pid = w.process.pid ?? 0
    slot.acked = 0
    slot.applied = 0
    slot.held = null
    slot.lastMetrics = null
    slot.heard = performance.now()
    slot.hung = false
    w.on('error', (err: Error) => this.log.debug({ worker: w.id, err: err.message }, 'IPC error'))
    w.on('message', (msg: FromWorker) => this.message(slot, w, msg))
    return new Promise((resolve, reject) => {
      if (initial) slot.started = { resolve, reject }
      else {
        slot.started = {
          resolve,
          reject: (e) => {
            // A replacement that cannot start is handled like any death (exit event, backoff).
            this.log.error({ worker: w.id, err: e.message }, 'a replacement DNS worker cannot start')
            resolve([])
          },
        }
      }
    })
  }

  private message(slot: Slot, w: Worker, msg: FromWorker): void {
    if (slot.worker !== w) return
    slot.heard = performance.now()
    switch (msg.type) {
      case 'hello': {
        // A 'stop' sent while this worker was still loading found no listener and was lost: stopping
        // now, it is told again instead of being started (else it would bind, answer, and be killed
        // only at the end of the grace period).
        if (this.stopping) {
          this.send(slot, { type: 'stop' })
          break
        }
        slot.phase = 'starting'
        slot.helloAt = performance.now()
        const o = this.o
        const init = { type: 'init', listen: o.listen, tcp: o.tcp, handler: o.handler, geodb: o.geodb(), logLevel: o.logLevel, zones: this.zones!, seq: this.seq, health: this.health.initial(this.slots.some((s) => s !== slot && s.phase !== 'forked')) } as const
        // Without its init a worker would wait for ever: killed at once, counted and replaced like any death.
        if (!this.send(slot, init)) w.process.kill('SIGKILL')
        slot.acked = slot.applied = this.seq
        slot.reportSeq = this.seq
        break
      }
      case 'ready': {
        slot.phase = 'ready'
        slot.pid = msg.pid
        if (this.bound && key(msg.bound) !== key(this.bound)) {
          this.log.error({ worker: w.id, bound: key(msg.bound), expected: key(this.bound) }, 'a replacement DNS worker bound other sockets than the first workers (with port 0 in --listen, every worker had died)')
        }
        this.settleSync()
        slot.started?.resolve(msg.bound)
        slot.started = undefined
        break
      }
      case 'fatal':
        slot.started?.reject(new MeridianError('E_LISTEN', `DNS worker ${w.id} cannot start: ${msg.message}`))
        slot.started = undefined
        break
      case 'ack':
        slot.acked = Math.max(slot.acked, msg.seq)
        slot.applied = Math.max(slot.applied, msg.zones)
        this.settleSync()
        if (this.stagger?.waiting.has(slot) && slot.applied >= this.stagger.seq) this.firstHalfDone(slot)
        break
      case 'metrics': {
        // A report collected before the last one taken (under an older set) is not newer: left out.
        if (msg.seq >= slot.reportSeq) {
          slot.reportSeq = msg.seq
          slot.lastMetrics = withoutSeries(msg.metrics, this.removals.staleIn(msg.seq))
          if (this.removals.size > 0) this.removals.prune(this.oldestReport())
        }
        const scrape = this.scrapes.get(msg.id)
        if (scrape) answered(scrape, slot)
        break
      }
    }
  }

  private exited(w: Worker, code: number | null, signal: string | null): void {
    const slot = this.slots.find((s) => s.worker === w)
    if (!slot) return
    const lastMetrics = slot.lastMetrics
    slot.worker = null
    slot.phase = 'forked'
    // What it was held from goes with it: a replacement gets the current set and view in its init.
    slot.held = null
    if (this.stagger?.waiting.has(slot)) this.firstHalfDone(slot)
    for (const scrape of this.scrapes.values()) answered(scrape, slot)
    this.settleSync()
    if (lastMetrics) {
      slot.lastMetrics = null
      // Its counters only: its gauges (cache entries, bytes) died with it.
      const kept = { json: lasting(lastMetrics) }
      this.retiring.push(kept)
      this.folding = this.folding.then(async () => {
        // A series removed while the fold awaits is stripped from `retired` and `kept` at once
        // (forgetSeries), but not from what this fold sums: stripped from its result.
        const removed = new RemovedSeries()
        this.removedWhileFolding.add(removed)
        try {
          this.retired = withoutSeries(await foldRetired(this.retired, kept.json), removed)
          this.retiring = this.retiring.filter((m) => m !== kept)
        } catch (err) {
          // Kept in `retiring`, summed apart from then on.
          this.log.error({ err: (err as Error).message }, 'cannot fold the counters of a dead worker into the total')
        } finally {
          this.removedWhileFolding.delete(removed)
        }
      })
    }
    // A worker exits 0 (or by SIGTERM while still loading) when it stopped on a SIGTERM of its own.
    // One sent to the whole process group (systemd's KillMode=control-group, a Ctrl-C'd `kill`)
    // reaches this process too, but its handler may run after the workers' exits are seen (a busy
    // or descheduled control process: then both wait, in no set order). Judged a moment later, when
    // this process's own SIGTERM has been handled: a shutdown, not a death to replace.
    if (!this.stopping && (code === 0 || signal === 'SIGTERM')) {
      setTimeout(() => this.died(slot, w, code, signal), EXIT_SETTLE_MS)
      return
    }
    this.died(slot, w, code, signal)
  }

  /** A worker exited without being asked: fails a start waiting for it, or is counted, logged and replaced. */
  private died(slot: Slot, w: Worker, code: number | null, signal: string | null): void {
    const started = slot.started
    slot.started = undefined
    // A replacement stopped with the rest is no failure to start.
    if (started && this.stopping && this.bound) started.resolve([])
    else if (started) {
      started.reject(new MeridianError('E_LISTEN', `DNS worker ${w.id} exited (${signal ?? `code ${code}`}) before it was ready`))
      if (!this.bound) return // the initial start failed: the caller exits
    }
    if (this.stopping) return
    this.o.metrics.workerDeath()
    const now = Date.now()
    slot.deaths = [...slot.deaths.filter((t) => now - t < 60000), now]
    const delay = restartDelay(slot.deaths.length)
    const how = slot.hung ? 'was killed: it had stopped responding' : `died (${signal ?? `code ${code}`})`
    this.log.error({ worker: w.id, pid: w.process.pid, code, signal, hung: slot.hung, restartInMs: delay, deathsInLastMinute: slot.deaths.length }, `DNS worker ${w.id} ${how}; replacing it in ${delay} ms`)
    slot.restart = setTimeout(() => {
      slot.restart = undefined
      if (!this.stopping) void this.fork(slot, false)
    }, delay)
  }

  /**
   * Kills each answering worker that has sent nothing for `hangMs` (not even its metrics, every 2 s):
   * its event loop is stuck (a bug, a stopped process), so it reads none of the datagrams the others
   * leave it, holds its TCP connections unanswered, and every admin change waits out its sync timeout
   * for it. And each one still not ready `hangMs` after it said hello (its sockets are bound well
   * within a second of its init), or silent `3 * hangMs` after it was forked: left alone, a worker
   * stuck starting would never answer nor be replaced. The exit then replaces it like any death.
   */
  private killHung(hangMs: number): void {
    const now = performance.now()
    for (const s of this.slots) {
      const w = s.worker
      if (!w || s.hung) continue
      if (s.phase === 'ready' && now - s.heard >= hangMs) {
        this.log.error({ worker: w.id, pid: s.pid, silentMs: Math.round(now - s.heard) }, `DNS worker ${w.id} has sent nothing for ${Math.round((now - s.heard) / 1000)} s; killing it to be replaced`)
      } else if (s.phase === 'forked' && now - s.heard >= 3 * hangMs) {
        // Nothing heard since the fork (its first message, hello, ends this phase).
        // Node and the modules load before a hello: slow on a loaded machine (10 s and more seen), so 3 times the timeout.
        this.log.error({ worker: w.id, pid: w.process.pid, forkedMs: Math.round(now - s.heard) }, `DNS worker ${w.id} has not said hello ${Math.round((now - s.heard) / 1000)} s after it was forked; killing it to be replaced`)
      } else if (s.phase === 'starting' && now - s.helloAt >= hangMs) {
        // Its init was lost, or it cannot bind its sockets nor say why: not answering, never replaced.
        this.log.error({ worker: w.id, pid: s.pid, startingMs: Math.round(now - s.helloAt) }, `DNS worker ${w.id} is not ready ${Math.round((now - s.helloAt) / 1000)} s after it started; killing it to be replaced`)
      } else continue
      s.hung = true
      w.process.kill('SIGKILL')
    }
  }

  /**
   * Brings every started worker to the poller's current view, when its generation moved since the
   * last time: the records changed since the last update and the names of the checks that moved, or
   * the whole view when the poller cannot list them (HealthSender, health-sync.ts). With no worker started, nothing is built: a worker gets the whole
   * view when it starts.
   */
  private sendHealth(): void {
    if (!this.slots.some((s) => s.phase !== 'forked')) return
    const msg = this.health.update()
    if (msg !== null) for (const s of this.slots) if (s.phase !== 'forked') this.send(s, msg)
  }

  /**
   * Sends every started worker the GeoIP database answering now (the control process took a new
   * one); `synced()` then says when they all answer from it.
   */
  geodbChanged(): void {
    const seq = ++this.seq
    const db = this.o.geodb()
    for (const s of this.slots) {
      if (s.phase === 'forked' || !s.worker) continue
      s.geodbSending = seq
      this.sendGeodbPart(s, s.worker, seq, db, 0)
    }
  }

  /**
   * Sends the piece of `db` at `offset`, and the next one once this one is written to the channel,
   * until all are sent or a newer database (or a new worker in the slot) supersedes it.
   */
  private sendGeodbPart(slot: Slot, w: Worker, seq: number, db: GeoDbBytes, offset: number): void {
    if (slot.worker !== w || slot.geodbSending !== seq) return
    const end = Math.min(offset + GEODB_PART, db.bytes.length)
    const next = end < db.bytes.length ? () => this.sendGeodbPart(slot, w, seq, db, end) : undefined
    this.send(slot, { type: 'geodb-part', seq, path: db.path, size: db.bytes.length, offset, bytes: db.bytes.subarray(offset, end) }, next)
  }

  private sendZones(full: ZoneSet): void {
    const set = servedOnly(full)
    const problem = cloneProblem(set)
    if (problem) {
      this.log.error({ problem }, 'the new zone set cannot be sent to the DNS workers; they keep answering from the previous one')
      this.sendHealth()
      return
    }
    const removed = removedSeries(this.zones!, set)
    this.zones = set
    const seq = ++this.seq
    if (removed.length > 0) this.forgetSeries(removed, seq)
    // In the same message as the set: a worker that applied one without the other would answer,
    // in between, from a set naming checks its view does not have (an edited check's new key:
    // unknown, so up by default, even for a region that is down).
    const started = this.slots.filter((s) => s.phase !== 'forked')
    const health = started.length > 0 ? (this.health.update() ?? undefined) : undefined
    const msg: ToWorker = { type: 'zones', seq, zones: set, removed, health }
    // A worker reads a set on the loop that answers DNS (~120 ms with 5,000 services): sent to all
    // at once, no worker would read the shared socket meanwhile. Staggered instead: half of the
    // answering workers get it now, the others (held: everything sent to them queues behind it, in
    // order) once the first half answers from it; workers still starting answer nothing yet and get
    // it at once. A set that comes while a half is held goes to the first half at once and behind
    // the held one to the others, whose release then waits for the first half to have the newest.
    const ready = started.filter((s) => s.phase === 'ready')
    if (this.stagger) {
      this.stagger.seq = seq
      this.stagger.waiting = new Set(ready.filter((s) => !s.held))
    } else if (ready.length >= 2) {
      const first = ready.slice(0, Math.floor(ready.length / 2))
      for (const s of ready.slice(first.length)) s.held = []
      this.stagger = { seq, waiting: new Set(first), since: performance.now(), timer: setTimeout(() => this.staggerTimedOut(), STAGGER_MAX_MS) }
    }
    if (this.stagger) {
      const ids = (f: (s: Slot) => boolean) => this.slots.filter((s) => s.worker && f(s)).map((s) => s.worker!.id)
      this.log.debug({ seq, first: ids((s) => this.stagger!.waiting.has(s)), held: ids((s) => s.held !== null) }, 'zone set sent to the first half of the DNS workers; the others get it once these answer from it')
    }
    for (const s of started) this.send(s, msg)
    if (this.stagger?.waiting.size === 0) this.release()
  }

  /** `slot` of the first half answers from the staggered set, or is gone: the others get it once no such worker is left. */
  private firstHalfDone(slot: Slot): void {
    this.stagger!.waiting.delete(slot)
    if (this.stagger!.waiting.size === 0) this.release()
  }

  private staggerTimedOut(): void {
    const st = this.stagger
    if (!st) return
    const late = [...st.waiting].map((s) => s.worker?.id)
    this.log.warn({ seq: st.seq, workers: late, waitedMs: Math.round(performance.now() - st.since) }, `DNS worker${late.length > 1 ? 's' : ''} ${late.join(', ')} did not take zone set ${st.seq} within ${STAGGER_MAX_MS} ms; the other DNS workers get it now`)
    this.release()
  }

  /** Ends a hold: every held worker is sent, in order, what was queued for it. */
  private release(): void {
    const st = this.stagger
    if (!st) return
    clearTimeout(st.timer)
    this.stagger = null
    const held = this.slots.filter((s) => s.held !== null)
    // Said before anything is written to them: no line of theirs about the set can come before it.
    const workers = held.flatMap((s) => (s.worker ? [s.worker.id] : []))
    if (workers.length > 0) this.log.debug({ seq: st.seq, workers, heldMs: Math.round(performance.now() - st.since) }, 'zone set sent to the other half of the DNS workers')
    for (const s of held) {
      const queue = s.held!
      s.held = null
      for (const o of queue) this.write(s, o.msg, o.written)
    }
  }

  /**
   * Takes the series of the zones, services and regions removed by zone set `seq` out of the
   * totals: every worker's last report, what dead workers left (and a fold under way), and reports
   * still to come from a worker that has not applied `seq` yet (SeriesRemovals). Each worker drops
   * its own when it applies it (the list goes with the set: the 'zones' message's `removed`).
   */
  private forgetSeries(removals: Removal[], seq: number): void {
    this.removals.removed(removals, seq)
    const gone = new RemovedSeries(removals)
    for (const s of this.slots) if (s.lastMetrics) s.lastMetrics = withoutSeries(s.lastMetrics, gone)
    this.retired = withoutSeries(this.retired, gone)
    for (const r of this.retiring) r.json = withoutSeries(r.json, gone)
    for (const w of this.removedWhileFolding) for (const r of removals) w.add(r)
  }

  /** The oldest zone set a report of a started worker may still be made under. */
  private oldestReport(): number {
    let oldest = this.seq
    for (const s of this.slots) if (s.phase !== 'forked') oldest = Math.min(oldest, s.reportSeq)
    return oldest
  }

  private settleSync(): void {
    const min = Math.min(...this.slots.filter((s) => s.phase === 'ready').map((s) => s.acked))
    const keep = []
    for (const w of this.syncWaiters) {
      if (min >= w.seq) w.resolve()
      else keep.push(w)
    }
    this.syncWaiters = keep
  }

  /**
   * Sends `msg` to the slot's worker, or queues it while the slot is held (sendZones): a held worker
   * gets everything in the order it was sent. `written`, once it is written to the channel (not on
   * an error). False when it could not be sent (logged).
   */
  private send(slot: Slot, msg: ToWorker, written?: () => void): boolean {
    if (slot.held) {
      if (!slot.worker?.isConnected()) return false
      slot.held.push({ msg, written })
      return true
    }
    return this.write(slot, msg, written)
  }

  /** Writes `msg` to the slot's worker's channel at once. */
  private write(slot: Slot, msg: ToWorker, written?: () => void): boolean {
    const w = slot.worker
    if (!w || !w.isConnected()) return false
    try {
      if (!written) w.send(msg)
      else
        w.send(msg, (err: Error | null) => {
          if (err) this.log.debug({ worker: w.id, type: msg.type, err: err.message }, 'cannot send to a DNS worker')
          else written()
        })
    } catch (err) {
      this.log.error({ worker: w.id, type: msg.type, err: (err as Error).message }, 'cannot send to a DNS worker')
      return false
    }
    return true
  }
}
