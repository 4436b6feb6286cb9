/**
 * The health state of one target as a pure state machine: `next(health, result, now)` returns the
 * new (frozen) record and never reads a clock, so every case is a row in a table test.
 *
 * Truth table (S = consecutive successes after this result, F = consecutive failures):
 *
 *   from     result   condition     to        note
 *   unknown  ok       S >= rise     up        a new target must prove itself `rise` times...
 *   unknown  fail     F >= fall     down      ...and is condemned only after `fall` failures (same
 *                                             thresholds as in the steady states, so a single
 *                                             blip at start-up decides nothing)
 *   unknown  any      otherwise     unknown
 *   up       fail     F >= fall     down
 *   up       any      otherwise     up        a success resets F to 0
 *   down     ok       S >= rise     up
 *   down     any      otherwise     down      a failure resets S to 0
 *
 * A success resets the failure count and a failure the success count, so only consecutive
 * results count. A record restored (from a saved file, or from the check an edit replaced) starts in its saved state with both counts
 * at 0: it keeps that state until `rise` or `fall` fresh results say otherwise.
 *
 * Response time: `lastLatencyMs` is the duration of the last round, whatever its outcome (a
 * timeout shows how long it took to give up). `ewmaMs` is an exponentially weighted moving
 * average over successful rounds only (failures would skew it toward the timeout):
 *   ewma = alpha * sample + (1 - alpha) * ewma, alpha = 0.3, while the target is up;
 * about 90% of its weight lies on the last 6 samples. `sample` is the median of the round's
 * latency and the two successes before it (while up, or of the rise that brought it up;
 * medianOfRecent): one slow round moves nothing, a latency that stays counts from its second
 * round. While it is not up, the successes that count toward its rise set it instead: the first
 * success of a rise to its latency, the next ones to the lowest latency so far. The first round to a target usually pays for connecting (TCP, TLS) and for
 * cold code, which later rounds do not: seeded by it, a 1 ms region started at ~15 ms here and
 * took 5-10 rounds to come down, steering geo-latency answers away from it and moving the health
 * generation on nearly every round. A rise after an outage starts afresh (the path may have changed).
 * A record restored `up` (a restart, an edited check) keeps its saved average through its first
 * `rise` rounds, which can only lower it, and averages from there: the first round of a restarted
 * process is cold in the same way (measured: 59-85 ms against a steady 7-25 ms), and blended into
 * the saved average it raised the published value 19 -> 31-39 ms for five rounds after a restart.
 *
 * Significance: `ewmaMovedSignificantly(published, current)` says whether an EWMA has moved far
 * enough from a value already handed to readers for them to need the new one:
 *   |current - published| > max(EWMA_SIGNIFICANT_MS, EWMA_SIGNIFICANT_RATIO * published),
 * i.e. more than 2 ms and more than 25% of the published value; gaining a value where there was
 * none counts as significant, staying without one does not. The poller bumps its generation on it.
 */

import type { HealthState } from '../model/gslb.js'

export type { HealthState }

/** The outcome of one round of a check. */
export interface CheckResult {
  ok: boolean
  /** Time the round took, measured with a monotonic clock. */
  latencyMs: number
  /** Why it failed, for a person: `timeout after 2000 ms`, `ECONNREFUSED`, `status 503, expected 200`. */
  error?: string
  /** HTTP status, when a response came back. */
  status?: number
}

export interface Transition {
  readonly from: HealthState
  readonly to: HealthState
  /** Epoch ms (the caller's clock). */
  readonly at: number
  readonly reason: string
}

export interface TargetHealth {
  readonly state: HealthState
  /** When the state last changed (or when the record was created). Epoch ms. */
  readonly since: number
  readonly rise: number
  readonly fall: number
  readonly successes: number
  readonly failures: number
  /** Rounds counted since the record was created or restored. */
  readonly checks: number
  readonly lastCheckAt: number | null
  readonly lastOk: boolean | null
  readonly lastStatus: number | null
  readonly lastLatencyMs: number | null
  readonly ewmaMs: number | null
  /**
   * The health generation at which the poller last published this target's `ewmaMs` (when the
   * record was made or loaded, when its state changed, or when its EWMA moved significantly), 0
   * outside a poller. Until it moves, `ewmaMs` stays within max(2 ms, 25%) of the value published
   * then, so a reader that compares it per target (the answer cache, per service) knows which
   * targets' latencies moved. `next()` carries it over; the poller sets it.
   */
  readonly latencyGen: number
  /**
   * The `ewmaMs` that generation `latencyGen` published: what the selector steers by. Moves only
   * with `latencyGen`, so an answer built from it stays right until that generation moves, whatever
   * `ewmaMs` does within its band (`next()` carries it over; the poller sets both).
   */
  readonly publishedMs: number | null
  /**
   * The latencies of the last two successful rounds (oldest first), while up and through the rise
   * that brought it up: with the new one, the three whose median the EWMA takes (a one-round spike
   * does not move it). Emptied when it leaves up, and at a failure during a rise.
   */
  readonly recentMs: readonly number[]
  /** The last failure's text; kept after recovery so a person can see what went wrong last. */
  readonly lastError: string | null
  readonly lastErrorAt: number | null
  /** The most recent transitions, oldest first, at most MAX_TRANSITIONS. */
  readonly transitions: readonly Transition[]
  /** True when this record came from a saved file and no fresh result has changed its state yet. */
  readonly restored: boolean
}

export const EWMA_ALPHA = 0.3
/** An EWMA move counts once it exceeds both this many milliseconds... */
const EWMA_SIGNIFICANT_MS = 2
/** ...and this fraction of the published value. */
const EWMA_SIGNIFICANT_RATIO = 0.25
export const MAX_TRANSITIONS = 20

/** What is saved to disk for one target. */
export interface SavedHealth {
  state: HealthState
  since: number
  lastLatencyMs: number | null
  ewmaMs: number | null
  lastError: string | null
  lastErrorAt: number | null
  transitions: Transition[]
}

/**
 * What a saved record too old to trust still tells: its transitions and last error (history), with
 * the state `unknown` since `now` and no latency, as a new target has.
 */
export function historyOnly(saved: SavedHealth, now: number): SavedHealth {
  return { ...saved, state: 'unknown', since: now, lastLatencyMs: null, ewmaMs: null }
}

const NONE: readonly number[] = Object.freeze([])

/**
 * What a successful round adds to the EWMA: the median of its latency and the two successes
 * before it (while up, or of the rise that brought it up), or its own latency while there are
 * fewer (a rise of 1). One slow round (a SYN retried, a collection or a stall of the checker, a
 * pool's hiccup) moves nothing; a latency that stays is taken at its second round. Without it, one 20 ms round of a 2 ms pool moved the EWMA past max(2 ms, 25%) and back in
 * the next rounds: two or three latency moves, each ending the geo-latency answers built on it
 * (docs/benchmarks.md, session 25).
 */
function medianOfRecent(recent: readonly number[], ms: number): number {
  if (recent.length < 2) return ms
  const [a, b] = recent as [number, number]
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), ms))
}

/** A fresh record: `unknown`, or the saved state when one is given. */
export function initialHealth(opts: { rise: number; fall: number }, now: number, saved?: SavedHealth, latencyGen = 0): TargetHealth {
  return Object.freeze({
    state: saved?.state ?? 'unknown',
    since: saved?.since ?? now,
    rise: opts.rise,
    fall: opts.fall,
    successes: 0,
    failures: 0,
    checks: 0,
    lastCheckAt: null,
    lastOk: null,
    lastStatus: null,
    lastLatencyMs: saved?.lastLatencyMs ?? null,
    ewmaMs: saved?.ewmaMs ?? null,
    latencyGen,
    publishedMs: saved?.ewmaMs ?? null,
    lastError: saved?.lastError ?? null,
    lastErrorAt: saved?.lastErrorAt ?? null,
    recentMs: NONE,
    transitions: Object.freeze((saved?.transitions ?? []).slice(-MAX_TRANSITIONS).map((t) => Object.freeze({ ...t }))),
    restored: saved !== undefined,
  })
}

function round1(x: number): number {
  return Math.round(x * 10) / 10
}

function describe(r: CheckResult): string {
  if (r.ok) return r.status !== undefined ? `status ${r.status} in ${round1(r.latencyMs)} ms` : `connected in ${round1(r.latencyMs)} ms`
  return r.error ?? (r.status !== undefined ? `status ${r.status}` : 'failed')
}

/** The record after one more result. Pure: same inputs, same output. */
export function next(h: TargetHealth, r: CheckResult, now: number): TargetHealth {
  const successes = r.ok ? h.successes + 1 : 0
  const failures = r.ok ? 0 : h.failures + 1
  let to: HealthState = h.state
  if (r.ok && h.state !== 'up' && successes >= h.rise) to = 'up'
  else if (!r.ok && h.state !== 'down' && failures >= h.fall) to = 'down'

  const changed = to !== h.state
  let transitions = h.transitions
  if (changed) {
    const n = r.ok ? successes : failures
    const reason = `${n} consecutive ${r.ok ? (n === 1 ? 'success' : 'successes') : n === 1 ? 'failure' : 'failures'}, last: ${describe(r)}`
    transitions = Object.freeze([...h.transitions, Object.freeze({ from: h.state, to, at: now, reason })].slice(-MAX_TRANSITIONS))
  }
  let ewmaMs = h.ewmaMs
  // The last two successes, kept while up and through a rise (a failure restarts a rise, and so its
  // rounds); they are the rounds the rise counted when the target comes up.
  const recentMs = r.ok ? Object.freeze([...(h.state === 'up' || successes > 1 ? h.recentMs.slice(-1) : NONE), r.latencyMs]) : to === 'up' ? h.recentMs : NONE
  if (r.ok) {
    if (h.state !== 'up') ewmaMs = successes === 1 || ewmaMs === null ? r.latencyMs : Math.min(ewmaMs, r.latencyMs)
    else if (h.restored && h.checks < h.rise && ewmaMs !== null) ewmaMs = Math.min(ewmaMs, r.latencyMs)
    else ewmaMs = ewmaMs === null ? r.latencyMs : EWMA_ALPHA * medianOfRecent(h.recentMs, r.latencyMs) + (1 - EWMA_ALPHA) * ewmaMs
  }
  return Object.freeze({
    state: to,
    since: changed ? now : h.since,
    rise: h.rise,
    fall: h.fall,
    successes,
    failures,
    checks: h.checks + 1,
    lastCheckAt: now,
    lastOk: r.ok,
    lastStatus: r.status ?? null,
    lastLatencyMs: r.latencyMs,
    ewmaMs,
    latencyGen: h.latencyGen,
    publishedMs: h.publishedMs,
    lastError: r.ok ? h.lastError : describe(r),
    lastErrorAt: r.ok ? h.lastErrorAt : now,
    recentMs,
    transitions,
    restored: h.restored && !changed,
  })
}

/**
 * True when `current` is far enough from `published` (the EWMA readers last saw) to matter:
 * |current - published| > max(2 ms, 25% of published); null to a number is significant, a number
 * to null (which `next` never produces) too, null to null is not.
 */
export function ewmaMovedSignificantly(published: number | null, current: number | null): boolean {
  if (published === null || current === null) return published !== current
  return Math.abs(current - published) > Math.max(EWMA_SIGNIFICANT_MS, EWMA_SIGNIFICANT_RATIO * published)
}

/** The part of a record worth keeping across a restart. */
export function toSaved(h: TargetHealth): SavedHealth {
  return {
    state: h.state,
    since: h.since,
    lastLatencyMs: h.lastLatencyMs,
    ewmaMs: h.ewmaMs,
    lastError: h.lastError,
    lastErrorAt: h.lastErrorAt,
    transitions: h.transitions.map((t) => ({ ...t })),
  }
}

const STATES: readonly string[] = ['unknown', 'up', 'down']
const numOrNull = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v))
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string'

/** Checks a value read from a state file; returns it typed, or null when it does not have the shape. */
export function parseSaved(v: unknown): SavedHealth | null {
  if (!v || typeof v !== 'object') return null
  const o = v as Record<string, unknown>
  if (typeof o.state !== 'string' || !STATES.includes(o.state)) return null
  if (typeof o.since !== 'number' || !Number.isFinite(o.since)) return null
  if (!numOrNull(o.lastLatencyMs) || !numOrNull(o.ewmaMs) || !strOrNull(o.lastError) || !numOrNull(o.lastErrorAt)) return null
  if (!Array.isArray(o.transitions)) return null
  const transitions: Transition[] = []
  for (const t of o.transitions as unknown[]) {
    if (!t || typeof t !== 'object') return null
    const x = t as Record<string, unknown>
    if (typeof x.from !== 'string' || !STATES.includes(x.from) || typeof x.to !== 'string' || !STATES.includes(x.to)) return null
    if (typeof x.at !== 'number' || typeof x.reason !== 'string') return null
    transitions.push({ from: x.from as HealthState, to: x.to as HealthState, at: x.at, reason: x.reason })
  }
  return {
    state: o.state as HealthState,
    since: o.since,
    lastLatencyMs: o.lastLatencyMs,
    ewmaMs: o.ewmaMs,
    lastError: o.lastError,
    lastErrorAt: o.lastErrorAt,
    transitions,
  }
}
