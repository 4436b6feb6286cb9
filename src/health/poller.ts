/**
 * The poller: one schedule per check key, results fed through the pure state machine, an
 * immutable HealthView for readers, listeners told when a target changes state, and the states
 * saved to (and restored from) a file so that a restart does not forget what it knew.
 *
 * Cadence: each key's rounds are due at fixed points, `intervalMs` apart from its first (jittered)
 * start; a round ends (result or timeout) before the next is set, and the next is set for the next
 * due point, not for one interval after the result, so a timer that fires late delays one round
 * only and does not push every later round back. A round that ends after its next due point (only
 * if the event loop stalled) is followed by the next at once, never by a burst of catch-ups.
 *
 * Cost per result is O(1) (no pass over every target): the view is rebuilt lazily, on the next
 * view() call, from the previous one plus the targets that changed (see TargetMap).
 */
import { readFile } from 'node:fs/promises'
import { MeridianError } from '../errors.js'
import type { Logger } from '../log.js'
import { writeFileAtomic } from '../store/atomic.js'
import { createCheck as defaultCreateCheck, errorText, RoundClients, type Check } from './check.js'
import { keyOrigin, probedOrigin, resolvedKey, resolveSpec, type CheckSpec, type ResolvedSpec } from './spec.js'
import { MoveLog } from './moves.js'
import { ewmaMovedSignificantly, historyOnly, initialHealth, next, parseSaved, toSaved, type CheckResult, type HealthState, type SavedHealth, type TargetHealth } from './state.js'

/**
 * What readers see: a snapshot that never changes once handed out. `generation` goes up whenever
 * (a) some target changes state, (b) targets are added or removed, or saved states are loaded into
 * targets, or (c) some target's `ewmaMs` moves away from its published value by more than max(2 ms,
 * 25% of that value) (`ewmaMovedSignificantly` in state.ts; a first value where there was none
 * counts). A target's published value is its `ewmaMs` when it last did (a), (b) or (c) itself, and
 * its `latencyGen` is the generation that published it: another target's move does not publish it
 * again, so a target's EWMA can never creep away by one band per other target's move. A result
 * that does none of these leaves the generation as it is, so caches keyed on it stay correct for
 * state and membership, and no target's `ewmaMs` is ever more than max(2 ms, 25%) away from the
 * value published with its `latencyGen`: a reader that built something from a target's record
 * and keeps it while that target's `latencyGen` stays sees the target's `ewmaMs` within two bands
 * of the value it built with. The other per-round numbers (`lastLatencyMs`, `lastCheckAt`, `checks`,
 * the counters, and `ewmaMs` within that band) may be fresher than the generation: view() returns
 * a new snapshot after every result, with the same generation when the result was not significant.
 * Listeners (onChange) are told of state changes only; a cache should compare `generation`, or per
 * target `latencyGen` and `state`.
 */
export interface HealthGenerations {
  readonly generation: number
  /**
   * Moves with `generation` on state and membership changes, but not on latency moves: answers
   * that do not use measured latency (every policy but geo-latency) stay valid across those.
   */
  readonly stateGeneration: number
}

export interface HealthView extends HealthGenerations {
  readonly targets: ReadonlyMap<string, TargetHealth>
}

export interface StateChange {
  readonly key: string
  readonly from: HealthState
  readonly to: HealthState
  readonly at: number
  readonly reason: string
}

export type ChangeListener = (view: HealthView, changes: readonly StateChange[]) => void

/** A timer seam, so tests can drive the schedule by hand. */
export interface Timers {
  set(fn: () => void, ms: number): unknown
  clear(handle: unknown): void
}

export interface PollerOptions {
  /** The root (or any) logger; the poller logs through `log.child({ mod: 'health' })`. */
  log: Logger
  /** Wall clock for timestamps (since, transitions), epoch ms. Default Date.now. */
  now?: () => number
  /** Monotonic clock for the schedule (due points, round durations), ms. Default performance.now. */
  monotonic?: () => number
  /** Uniform [0, 1) for the start-up jitter. Default Math.random. */
  rand?: () => number
  timers?: Timers
  /** Builds the check for a spec; tests put fakes here. */
  createCheck?: (spec: ResolvedSpec, clients: RoundClients) => Check
  /** Told of every round's result (metrics count them); must not throw. */
  onResult?: (key: string, result: CheckResult) => void
  /** Called by setTargets with the keys it stopped checking (removed, or replaced by an edited check's new key). */
  onRemoved?: (keys: string[]) => void
}

const STATE_FILE_VERSION = 1
/**
 * Saved health states older than this start from unknown (`--health-state-max-age`, seconds): a
 * restart or a reboot takes seconds to minutes; after a longer stop a region may have failed or come
 * back, and answering from what was true then would send clients to a dead pool until `fall` rounds.
 */
export const HEALTH_STATE_MAX_AGE_S = 600
/** How often the server saves the health states even when none changed, so their age is known after a crash. */
export const HEALTH_SAVE_EVERY_MS = 60_000
/** The moves movedSince() keeps (the last 2,048 to 4,096); a reader further behind compares every target (as after a membership change). */
const MOVED_LOG = 4096

interface SavedFile {
  version: number
  savedAt: number
  targets: Record<string, SavedHealth>
}

interface Entry {
  readonly key: string
  readonly spec: ResolvedSpec
  readonly check: Check
  health: TargetHealth
  timer: unknown
  inflight: AbortController | null
  stopped: boolean
  /** When the next round is due, on the monotonic clock (`monotonic`, default performance.now()). */
  due: number
}

/**
 * The immutable map a HealthView hands out, built so that a new view after one result costs
 * O(changes) rather than O(targets): a shared base map plus a small overlay of the records that
 * changed since the base was built. Neither map is written once a TargetMap holds it. When the
 * overlay would grow past about 2 x sqrt(size) entries it is folded into a new base (one O(n)
 * copy every ~sqrt(n) rebuilds). Keys and their order are the base's: membership changes build a
 * new base (TargetMap.of).
 */
class TargetMap implements ReadonlyMap<string, TargetHealth> {
  private constructor(
    private readonly base: ReadonlyMap<string, TargetHealth>,
    private readonly overlay: ReadonlyMap<string, TargetHealth>,
  ) {}

  static of(entries: Iterable<readonly [string, TargetHealth]>): TargetMap {
    return new TargetMap(new Map(entries), new Map())
  }

  /** This map with `changes` (keys already present) applied. */
  with(changes: Iterable<readonly [string, TargetHealth]>, count: number): TargetMap {
    const limit = Math.max(16, 2 * Math.ceil(Math.sqrt(this.base.size)))
    if (this.overlay.size + count > limit) {
      const base = new Map(this.base)
      for (const [k, v] of this.overlay) base.set(k, v)
      for (const [k, v] of changes) base.set(k, v)
      return new TargetMap(base, new Map())
    }
    const overlay = new Map(this.overlay)
    for (const [k, v] of changes) overlay.set(k, v)
    return new TargetMap(this.base, overlay)
  }

  get size(): number {
    return this.base.size
  }
  get(key: string): TargetHealth | undefined {
    return this.overlay.get(key) ?? this.base.get(key)
  }
  has(key: string): boolean {
    return this.base.has(key)
  }
  *entries(): MapIterator<[string, TargetHealth]> {
    for (const [k, v] of this.base) yield [k, this.overlay.get(k) ?? v]
  }
  keys(): MapIterator<string> {
    return this.base.keys()
  }
  *values(): MapIterator<TargetHealth> {
    for (const [k, v] of this.base) yield this.overlay.get(k) ?? v
  }
  [Symbol.iterator](): MapIterator<[string, TargetHealth]> {
    return this.entries()
  }
  forEach(fn: (value: TargetHealth, key: string, map: ReadonlyMap<string, TargetHealth>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this)
  }
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
}

export class HealthPoller {
  private readonly log: Logger
  private readonly now: () => number
  private readonly mono: () => number
  private readonly rand: () => number
  private readonly timers: Timers
  private readonly makeCheck: (spec: ResolvedSpec, clients: RoundClients) => Check
  private readonly onResult: ((key: string, result: CheckResult) => void) | undefined
  private readonly onRemoved: ((keys: string[]) => void) | undefined
  private readonly clients = new RoundClients()
  private readonly entries = new Map<string, Entry>()
  private readonly listeners = new Set<ChangeListener>()
  private saved = new Map<string, SavedHealth>()
  /** The generation and state generation, one object replaced on every bump(): what generations() hands out. */
  private gens: HealthGenerations = Object.freeze({ generation: 0, stateGeneration: 0 })
  /**
   * The last view handed out; null when membership changed (or records were replaced wholesale),
   * so the next view starts a new base. Every bump() comes with that or with a `dirty` entry.
   */
  private snapshot: { readonly generation: number; readonly stateGeneration: number; readonly targets: TargetMap } | null = null
  /** Targets whose record changed since the snapshot was built. */
  private readonly dirty = new Set<Entry>()
  /**
   * The target that made each generation (a state change or a significant move of its own).
   * Membership changes and loaded states touch many targets at once: they reset it.
   */
  private readonly moves = new MoveLog(MOVED_LOG)
  private closed = false
  /** The last saveState (settled or not), which the next one waits for. */
  private saving: Promise<void> = Promise.resolve()

  constructor(opts: PollerOptions) {
    this.log = opts.log.child({ mod: 'health' })
    this.now = opts.now ?? Date.now
    this.mono = opts.monotonic ?? (() => performance.now())
    this.rand = opts.rand ?? Math.random
    this.timers = opts.timers ?? realTimers
    this.makeCheck = opts.createCheck ?? defaultCreateCheck
    this.onResult = opts.onResult
    this.onRemoved = opts.onRemoved
  }

  /** Number of schedules running (one per distinct key). */
  get size(): number {
    return this.entries.size
  }

  /**
   * Makes the set of checks exactly `specs`: new keys start at once (first round at a random
   * point inside their first interval, so many targets do not fire together), removed keys stop
   * at once (timer cleared, a round in flight aborted and its result dropped), unchanged keys keep
   * their schedule and state. Identical specs collapse to one key. Returns the keys, in order.
   * Throws RangeError on an invalid spec, before changing anything.
   */
  setTargets(specs: readonly CheckSpec[]): string[] {
    if (this.closed) throw new Error('HealthPoller.setTargets after close()')
    const wanted = new Map<string, ResolvedSpec>()
    const keys = specs.map((s) => {
      const r = resolveSpec(s)
      const k = resolvedKey(r)
      wanted.set(k, r)
      return k
    })
    let membership = false
    // A check whose settings changed (interval, rise, path...) gets a new key: the one it replaces
    // probed the same origin. Its state carries over (until rise/fall fresh results decide), so an
    // edit of a down region's check does not put its VIPs back as `unknown` meanwhile.
    const removed = new Map<string, Entry[]>()
    const added = new Map<string, number>()
    for (const [key, spec] of wanted) {
      if (this.entries.has(key)) continue
      const origin = probedOrigin(spec)
      added.set(origin, (added.get(origin) ?? 0) + 1)
    }
    const gone: string[] = []
    for (const [key, e] of this.entries) {
      if (wanted.has(key)) continue
      this.stopEntry(e)
      this.entries.delete(key)
      gone.push(key)
      membership = true
      const origin = probedOrigin(e.spec)
      if (added.has(origin)) removed.set(origin, [...(removed.get(origin) ?? []), e])
      else this.log.debug({ key }, 'health check removed')
    }
    // The same for a check edited while the server was stopped: the saved state of the one it
    // replaces (a saved key of the same origin that no wanted check has) carries over.
    const savedElsewhere = new Map<string, string[]>()
    for (const k of this.saved.keys()) {
      if (wanted.has(k)) continue
      const origin = keyOrigin(k)
      if (added.has(origin)) savedElsewhere.set(origin, [...(savedElsewhere.get(origin) ?? []), k])
    }
    for (const [key, spec] of wanted) {
      if (this.entries.has(key)) continue
      const origin = probedOrigin(spec)
      const only = added.get(origin) === 1
      const replaced = only && removed.get(origin)?.length === 1 ? removed.get(origin)![0]! : undefined
      const savedWas = !replaced && !this.saved.has(key) && only && savedElsewhere.get(origin)?.length === 1 ? savedElsewhere.get(origin)![0]! : undefined
      if (replaced) this.log.info({ key, was: replaced.key, state: replaced.health.state }, 'health check changed; its state carries over until fresh results decide')
      if (savedWas) this.log.info({ key, was: savedWas, state: this.saved.get(savedWas)!.state }, 'health check changed since its state was saved; the saved state carries over until fresh results decide')
      const e: Entry = {
        key,
        spec,
        check: this.makeCheck(spec, this.clients),
        // Published by the membership bump below.
        health: initialHealth(spec, this.now(), replaced ? toSaved(replaced.health) : this.saved.get(savedWas ?? key), this.gens.generation + 1),
        timer: null,
        inflight: null,
        stopped: false,
        due: 0,
      }
      this.entries.set(key, e)
      membership = true
      this.log.debug({ key, state: e.health.state, restored: e.health.restored }, 'health check added')
      const delay = Math.floor(this.rand() * spec.intervalMs)
      e.due = this.mono() + delay
      this.schedule(e, delay)
    }
    // Saved states are for the set the server starts with: a check added later (or again, after an
    // edit and its revert) starts from `unknown`, not from a state of the previous run.
    this.saved = new Map()
    if (membership) {
      this.snapshot = null
      this.bump()
      this.moves.reset(this.gens.generation)
    }
    if (gone.length > 0) this.onRemoved?.(gone)
    return keys
  }

  /**
   * The generations of the current view (always equal to view()'s), without building it: the answer
   * cache reads them on every query, and this touches one small object where view() reads the
   * snapshot and the dirty set (measurably more with a flushed TLB, docs/benchmarks.md).
   */
  generations(): HealthGenerations {
    return this.gens
  }

  /**
   * Calls `visit` with the key of every target that made a generation after `generation` (state
   * changes and significant moves; a key may come more than once), and returns true; or returns
   * false without calling it when that is not known (a membership change or a state load since,
   * or more moves than the log keeps), so the caller must look at every target. Lets a reader that
   * keeps per-target state (the answer cache) compare only the targets that moved.
   */
  movedSince(generation: number, visit: (key: string, at: number) => void): boolean {
    return this.moves.since(generation, this.gens.generation, visit)
  }

  /** The current snapshot (the same object until something changes). */
  view(): HealthView {
    const s = this.snapshot
    if (s && this.dirty.size === 0) return s
    const targets = s ? s.targets.with(this.healthOf(this.dirty), this.dirty.size) : TargetMap.of(this.healthOf(this.entries.values()))
    this.dirty.clear()
    this.snapshot = Object.freeze({ ...this.gens, targets })
    return this.snapshot
  }

  private *healthOf(entries: Iterable<Entry>): Generator<[string, TargetHealth], undefined> {
    for (const e of entries) yield [e.key, e.health]
  }

  /** Called after one or more targets change state (never for a result that changes nothing). Returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Writes every target's state to `file` atomically (temp file, fsync, rename), one save at a
   * time: a save asked while another runs (the stop's, while the one a state change asked for is
   * under way) starts when it ends, and writes the states of then. Two at once could rename in
   * either order, the older states last; and they shared a temporary file before writeFileAtomic
   * gave each write its own (a rename failed: "cannot save the health state" at a SIGTERM).
   */
  saveState(file: string): Promise<void> {
    const save = this.saving.then(() => this.writeState(file))
    this.saving = save.catch(() => undefined)
    return save
  }

  private async writeState(file: string): Promise<void> {
    const data: SavedFile = { version: STATE_FILE_VERSION, savedAt: this.now(), targets: {} }
    for (const [k, e] of this.entries) data.targets[k] = toSaved(e.health)
    try {
      await writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n')
    } catch (err) {
      throw new MeridianError('E_STATE_IO', `cannot write health state ${file}: ${errorText(err)}`, 500, { cause: err })
    }
  }

  /**
   * Reads states saved by saveState. Targets of the next setTargets (or present but not yet
   * checked) start in their saved state instead of `unknown`, and keep it until `rise`/`fall` fresh
   * results say otherwise; targets added by a later setTargets do not. In that next setTargets a
   * check edited since the save (a new key) takes the saved state of the one it replaces, by the
   * rule an edit while running follows: the only new check of its origin, and the only saved key
   * of that origin no wanted check has. A missing file is not an error (returns 0); an unreadable or malformed one is
   * (E_STATE_IO). Returns the number of states read.
   *
   * A file saved more than `maxAgeMs` ago (or that says no time, or a time that far ahead: a clock
   * moved) is history, not a state: what it says of each target (up, down, latency) was true when
   * the server stopped, and a region may have failed or come back since. Its targets start
   * `unknown` with no latency, as new ones do, and keep only their transitions and last error.
   */
  async loadState(file: string, opts: { maxAgeMs?: number } = {}): Promise<number> {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
      throw new MeridianError('E_STATE_IO', `cannot read health state ${file}: ${errorText(err)}`, 500, { cause: err })
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new MeridianError('E_STATE_IO', `health state ${file} is not JSON: ${errorText(err)}`, 500, { cause: err })
    }
    const f = parsed as Partial<SavedFile> | null
    if (!f || f.version !== STATE_FILE_VERSION || !f.targets || typeof f.targets !== 'object') {
      throw new MeridianError('E_STATE_IO', `health state ${file} is not a version ${STATE_FILE_VERSION} state file`, 500)
    }
    const now = this.now()
    const maxAgeMs = opts.maxAgeMs ?? Infinity
    const ageMs = typeof f.savedAt === 'number' && Number.isFinite(f.savedAt) ? now - f.savedAt : NaN
    const stale = maxAgeMs !== Infinity && (maxAgeMs <= 0 || !(Math.abs(ageMs) <= maxAgeMs))
    if (stale) {
      this.log.warn(
        { file, savedAt: Number.isNaN(ageMs) ? null : new Date(f.savedAt!).toISOString(), ageS: Number.isNaN(ageMs) ? null : Math.round(ageMs / 1000), maxAgeS: maxAgeMs / 1000 },
        'saved health state is too old to trust: every check starts from unknown (its history is kept)',
      )
    }
    const saved = new Map<string, SavedHealth>()
    for (const [k, v] of Object.entries(f.targets)) {
      const s = parseSaved(v)
      if (s) saved.set(k, stale ? historyOnly(s, now) : s)
      else this.log.warn({ key: k, file }, 'ignoring a malformed saved health state')
    }
    this.saved = saved
    let applied = false
    for (const e of this.entries.values()) {
      const s = saved.get(e.key)
      if (s && e.health.checks === 0 && !e.health.restored) {
        e.health = initialHealth(e.spec, this.now(), s, this.gens.generation + 1)
        applied = true
      }
    }
    if (applied) {
      this.snapshot = null
      this.bump()
      this.moves.reset(this.gens.generation)
    }
    this.log.info({ file, targets: saved.size, stale }, 'health state loaded')
    return saved.size
  }

  /** Stops every schedule, aborts rounds in flight and closes the HTTP clients. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const e of this.entries.values()) this.stopEntry(e)
    this.listeners.clear()
    await this.clients.close()
  }

  private stopEntry(e: Entry): void {
    e.stopped = true
    if (e.timer !== null) this.timers.clear(e.timer)
    e.timer = null
    e.inflight?.abort()
    e.inflight = null
  }

  private schedule(e: Entry, delayMs: number): void {
    e.timer = this.timers.set(() => {
      e.timer = null
      void this.round(e)
    }, delayMs)
  }

  /**
   * One round; the next is scheduled only when this one is over, so rounds of a key never overlap,
   * and for the next due point (one interval after this round was due), so lateness does not add up.
   */
  private async round(e: Entry): Promise<void> {
    if (e.stopped) return
    const ac = new AbortController()
    e.inflight = ac
    const started = this.mono()
    let result: CheckResult
    try {
      result = await e.check.run(ac.signal)
    } catch (err) {
      result = { ok: false, latencyMs: this.mono() - started, error: errorText(err) }
    }
    if (e.stopped) return
    e.inflight = null
    this.onResult?.(e.key, result)
    this.apply(e, result)
    const now = this.mono()
    e.due = Math.max(e.due + e.spec.intervalMs, now)
    this.schedule(e, Math.round(e.due - now))
  }

  private apply(e: Entry, result: CheckResult): void {
    const before = e.health
    const after = next(before, result, this.now())
    this.dirty.add(e)
    const changed = after.state !== before.state
    if (!changed && !ewmaMovedSignificantly(after.publishedMs, after.ewmaMs)) {
      e.health = after
      return
    }
    if (!changed) this.log.debug({ key: e.key, publishedMs: after.publishedMs, ewmaMs: after.ewmaMs, generation: this.gens.generation + 1 }, 'health: EWMA moved significantly')
    this.bump(!changed)
    this.moves.add(this.gens.generation, [e.key], this.mono())
    // Published with this generation: the value the selector steers by, and this target's next moves are measured from.
    e.health = Object.freeze({ ...after, latencyGen: this.gens.generation, publishedMs: after.ewmaMs })
    if (changed) this.announce(e, e.health, result)
  }

  /** Logs a state change and tells the listeners. */
  private announce(e: Entry, after: TargetHealth, result: CheckResult): void {
    const t = after.transitions[after.transitions.length - 1]!
    const change: StateChange = Object.freeze({ key: e.key, ...t })
    const fields = { key: e.key, from: change.from, to: change.to, reason: change.reason, latencyMs: Math.round(result.latencyMs * 10) / 10 }
    if (change.to === 'down') this.log.warn(fields, `health: ${e.key} is down`)
    else this.log.info(fields, `health: ${e.key} is ${change.to}`)
    const view = this.view()
    for (const l of this.listeners) {
      try {
        l(view, [change])
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'a health change listener threw')
      }
    }
  }

  /**
   * A new generation; `latencyOnly` when only a latency moved (the state generation stays). The
   * caller has reset `snapshot` or added to `dirty`, so view() builds a snapshot with it.
   */
  private bump(latencyOnly = false): void {
    const { generation, stateGeneration } = this.gens
    this.gens = Object.freeze({ generation: generation + 1, stateGeneration: latencyOnly ? stateGeneration : stateGeneration + 1 })
  }
}

