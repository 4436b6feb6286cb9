/**
 * The poller's scheduling and bookkeeping with the clock, the jitter, the timers and the checks
 * all in the test's hands: no sockets, no waiting.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createLogger } from '../../src/log.js'
import { MeridianError } from '../../src/errors.js'
import { HealthPoller, checkKey, type Check, type CheckResult, type CheckSpec, type ResolvedSpec, type StateChange } from '../../src/health/index.js'
import { ManualTimers, settle } from '../helpers/timers.js'


/** A check whose rounds the test ends by hand (or at once, from a script). */
class FakeCheck implements Check {
  calls = 0
  signals: AbortSignal[] = []
  private ends: ((r: CheckResult) => void)[] = []
  constructor(
    readonly spec: ResolvedSpec,
    private readonly script: CheckResult[] | null,
  ) {}
  run(signal: AbortSignal): Promise<CheckResult> {
    this.calls++
    this.signals.push(signal)
    if (this.script) return Promise.resolve(this.script.shift() ?? OK)
    return new Promise((resolve) => this.ends.push(resolve))
  }
  get inFlight(): number {
    return this.ends.length
  }
  finish(r: CheckResult): void {
    this.ends.shift()!(r)
  }
}

const OK: CheckResult = { ok: true, latencyMs: 5, status: 200 }
const FAIL: CheckResult = { ok: false, latencyMs: 1, error: 'ECONNREFUSED' }
const spec = (port: number, extra: Partial<CheckSpec> = {}): CheckSpec => ({ kind: 'http', address: '127.0.1.1', port, intervalMs: 1000, timeoutMs: 500, ...extra })

function setup(opts: { script?: CheckResult[]; rand?: number; logs?: string[]; onRemoved?: (keys: string[]) => void; clock?: number } = {}) {
  const timers = new ManualTimers()
  const checks: FakeCheck[] = []
  let clock = opts.clock ?? 1_000_000
  // The monotonic clock too (when a round is due, how long one took): a millisecond per read, not
  // performance.now(), whose milliseconds a loaded host stretches (a next round 827 ms away, not
  // 900-1000, once the host stalled this process 173 ms between a round's start and its end).
  let mono = 0
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      opts.logs?.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  })
  const poller = new HealthPoller({
    log: createLogger(opts.logs ? 'debug' : 'silent', sink),
    now: () => (clock += 10),
    monotonic: () => ++mono,
    rand: () => opts.rand ?? 0,
    timers,
    ...(opts.onRemoved ? { onRemoved: opts.onRemoved } : {}),
    createCheck: (s) => {
      const c = new FakeCheck(s, opts.script ? [...opts.script] : null)
      checks.push(c)
      return c
    },
  })
  return { poller, timers, checks }
}

test('onRemoved hears every key setTargets stops checking: removed, and replaced by an edited check; not when nothing goes', async () => {
  const removed: string[][] = []
  const { poller } = setup({ onRemoved: (keys) => removed.push(keys) })
  const [a, b] = poller.setTargets([spec(80), spec(81)])
  poller.setTargets([spec(80), spec(81)])
  assert.deepEqual(removed, [], 'nothing removed, nothing said')
  poller.setTargets([spec(80)])
  assert.deepEqual(removed, [[b]])
  // The same origin, another interval: a new key that replaces a's (its state carries over).
  const [edited] = poller.setTargets([spec(80, { intervalMs: 2000 })])
  assert.notEqual(edited, a)
  assert.deepEqual(removed, [[b], [a]])
  await poller.close()
})

test('a new target starts unknown, its first round at rand() x interval', async () => {
  const { poller, timers, checks } = setup({ rand: 0.25 })
  const [key] = poller.setTargets([spec(80)])
  assert.equal(poller.view().targets.get(key!)!.state, 'unknown')
  assert.deepEqual(timers.delays(), [250])
  assert.equal(checks[0]!.calls, 0)
  await poller.close()
})

test('rounds of one key never overlap: the next is scheduled only when the last has ended', async () => {
  const { poller, timers, checks } = setup()
  poller.setTargets([spec(80)])
  await timers.tick()
  const c = checks[0]!
  assert.equal(c.calls, 1)
  assert.equal(c.inFlight, 1)
  assert.equal(timers.pending.size, 0, 'no timer while a round is in flight')
  await timers.tick()
  assert.equal(c.calls, 1)
  c.finish(OK)
  await settle()
  assert.equal(timers.pending.size, 1)
  const [delay] = timers.delays()
  assert.ok(delay! > 900 && delay! <= 1000, `next round one interval after this one started, got ${delay}`)
  await timers.tick()
  assert.equal(c.calls, 2)
  await poller.close()
})

test('onChange fires only when a target changes state, with the reason', async () => {
  const { poller, timers } = setup({ script: [OK, OK, OK, OK, FAIL, FAIL, FAIL, FAIL] })
  const seen: StateChange[][] = []
  const gens: number[] = []
  poller.onChange((view, changes) => {
    seen.push([...changes])
    gens.push(view.generation)
  })
  const [key] = poller.setTargets([spec(80)])
  const g0 = poller.view().generation
  for (let i = 0; i < 8; i++) await timers.tick()
  assert.deepEqual(
    seen.map((cs) => cs.map((c) => `${c.from}>${c.to}`)),
    [['unknown>up'], ['up>down']],
  )
  assert.match(seen[1]![0]!.reason, /^3 consecutive failures, last: ECONNREFUSED$/)
  // +1 at the first success (a first EWMA value is significant), +1 at unknown>up, +1 at up>down;
  // the later successes at the same latency and the failures (which leave the EWMA alone) move nothing.
  assert.deepEqual(gens, [g0 + 2, g0 + 3], 'the generation moves with each change and only then')
  assert.equal(poller.view().generation, g0 + 3)
  const h = poller.view().targets.get(key!)!
  assert.equal(h.checks, 8)
  assert.equal(h.lastError, 'ECONNREFUSED')
  await poller.close()
})

test('identical specs run as one schedule', async () => {
  const { poller, timers, checks } = setup()
  const keys = poller.setTargets([spec(80), { ...spec(80), rise: 2, path: '/healthz' }, spec(81)])
  assert.equal(keys[0], keys[1])
  assert.notEqual(keys[0], keys[2])
  assert.equal(poller.size, 2)
  assert.equal(checks.length, 2)
  assert.equal(timers.pending.size, 2)
  await poller.close()
})

test('a removed target stops at once: timer cleared, round in flight aborted, its late result dropped', async () => {
  const { poller, timers, checks } = setup()
  let changes = 0
  poller.onChange(() => changes++)
  const [a, b] = poller.setTargets([spec(80, { rise: 1 }), spec(81, { rise: 1 })])
  await timers.tick()
  const [ca, cb] = checks
  assert.equal(ca!.inFlight + cb!.inFlight, 2)
  poller.setTargets([spec(81, { rise: 1 })])
  assert.equal(ca!.signals[0]!.aborted, true, 'the round in flight is aborted')
  assert.equal(cb!.signals[0]!.aborted, false)
  ca!.finish(OK)
  cb!.finish(OK)
  await settle()
  assert.deepEqual([...poller.view().targets.keys()], [b])
  assert.equal(poller.view().targets.has(a!), false)
  assert.equal(changes, 1, 'only the kept target went up')
  assert.equal(timers.pending.size, 1, 'only the kept target is scheduled')
  await timers.tick()
  assert.equal(ca!.calls, 1)
  assert.equal(cb!.calls, 2)
  await poller.close()
})

test('setTargets keeps the schedule and state of unchanged targets', async () => {
  const { poller, timers, checks } = setup({ script: [OK, OK] })
  const [a] = poller.setTargets([spec(80)])
  await timers.tick()
  await timers.tick()
  assert.equal(poller.view().targets.get(a!)!.state, 'up')
  const g = poller.view().generation
  poller.setTargets([spec(80)])
  assert.equal(poller.view().generation, g, 'same set: nothing changes')
  poller.setTargets([spec(80), spec(82)])
  assert.equal(poller.view().generation, g + 1, 'a new target changes the view')
  assert.equal(poller.view().targets.get(a!)!.state, 'up')
  assert.equal(checks.length, 2, 'the kept target was not rebuilt')
  await poller.close()
})

test('view() is a snapshot: later results do not change a view already handed out', async () => {
  const { poller, timers } = setup({ script: [OK, OK] })
  const [a] = poller.setTargets([spec(80)])
  const v1 = poller.view()
  assert.equal(poller.view(), v1, 'the same object while nothing changed')
  await timers.tick()
  await timers.tick()
  assert.equal(v1.targets.get(a!)!.state, 'unknown')
  assert.equal(poller.view().targets.get(a!)!.state, 'up')
  assert.ok(Object.isFrozen(v1) && Object.isFrozen(v1.targets.get(a!)))
  await poller.close()
})

test('an invalid spec throws before anything changes', async () => {
  const { poller } = setup()
  poller.setTargets([spec(80)])
  assert.throws(() => poller.setTargets([spec(81), spec(82, { timeoutMs: 5000 })]), RangeError)
  assert.equal(poller.size, 1)
  await poller.close()
})

test('each state change is logged once with its reason under mod=health', async () => {
  const logs: string[] = []
  const { poller, timers } = setup({ script: [OK, OK, OK], logs })
  const [key] = poller.setTargets([spec(80)])
  for (let i = 0; i < 3; i++) await timers.tick()
  const changes = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.from !== undefined)
  assert.equal(changes.length, 1)
  assert.deepEqual(
    { mod: changes[0]!.mod, key: changes[0]!.key, from: changes[0]!.from, to: changes[0]!.to, msg: changes[0]!.msg },
    { mod: 'health', key, from: 'unknown', to: 'up', msg: `health: ${key} is up` },
  )
  assert.match(String(changes[0]!.reason), /^2 consecutive successes, last: status 200 in 5 ms$/)
  await poller.close()
})

test('a check whose settings change keeps the state of the one it replaces (the same origin) until fresh results decide', async () => {
  const { poller, timers } = setup({ script: [FAIL, FAIL, FAIL, OK, OK] })
  const [a] = poller.setTargets([spec(80)])
  for (let i = 0; i < 3; i++) await timers.tick()
  assert.equal(poller.view().targets.get(a!)!.state, 'down')
  // The operator edits the check (fall 3 -> 5): a new key, the same origin. Still down, not unknown.
  const [b] = poller.setTargets([spec(80, { fall: 5 })])
  assert.notEqual(b, a)
  const h = poller.view().targets.get(b!)!
  assert.deepEqual([h.state, h.restored, h.transitions.map((x) => x.to)], ['down', true, ['down']])
  // Fresh results decide from there: its script is FAIL x3 then OK x2 (rise 2).
  for (let i = 0; i < 5; i++) await timers.tick()
  assert.equal(poller.view().targets.get(b!)!.state, 'up')
  // Another origin (another port) is a new check: unknown. So are two new checks of one origin
  // replacing one: which one would inherit is not known.
  const [c] = poller.setTargets([spec(81)])
  assert.equal(poller.view().targets.get(c!)!.state, 'unknown')
  const [d, e] = poller.setTargets([spec(81, { path: '/a' }), spec(81, { path: '/b' })])
  assert.deepEqual([poller.view().targets.get(d!)!.state, poller.view().targets.get(e!)!.state], ['unknown', 'unknown'])
  await poller.close()
})

test('saved states come back after a restart and hold until fresh results decide', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-health-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'health.json')

  const first = setup({ script: [OK, OK] })
  const [a] = first.poller.setTargets([spec(80)])
  await first.timers.tick()
  await first.timers.tick()
  const upSince = first.poller.view().targets.get(a!)!.since
  await first.poller.saveState(file)
  await first.poller.close()
  const onDisk = JSON.parse(await readFile(file, 'utf8')) as { version: number; targets: Record<string, { state: string }> }
  assert.equal(onDisk.version, 1)
  assert.equal(onDisk.targets[a!]!.state, 'up')

  const second = setup({ script: [FAIL, FAIL, FAIL] })
  assert.equal(await second.poller.loadState(file), 1)
  second.poller.setTargets([spec(80)])
  const h = second.poller.view().targets.get(a!)!
  assert.deepEqual({ state: h.state, since: h.since, restored: h.restored }, { state: 'up', since: upSince, restored: true })
  await second.timers.tick()
  await second.timers.tick()
  assert.equal(second.poller.view().targets.get(a!)!.state, 'up', 'fall - 1 fresh failures do not override it')
  await second.timers.tick()
  assert.equal(second.poller.view().targets.get(a!)!.state, 'down')
  // Saved states serve the set the server starts with, once: a check removed and added again (an
  // edit and its revert) starts unknown, not from the previous run's state.
  const [b] = second.poller.setTargets([spec(81)])
  second.poller.setTargets([spec(80), spec(81)])
  assert.equal(second.poller.view().targets.get(a!)!.state, 'unknown', 'not the saved up')
  assert.equal(second.poller.view().targets.get(a!)!.restored, false)
  assert.ok(b)
  await second.poller.close()

  // Loading after setTargets works too, for targets not yet checked.
  const third = setup()
  third.poller.setTargets([spec(80)])
  const before = third.poller.view().targets.get(a!)!
  const genBefore = third.poller.view().generation
  await third.poller.loadState(file)
  // Loaded records replace many at once: movedSince cannot list them, a reader compares every target.
  assert.equal(third.poller.movedSince(genBefore, () => assert.fail('nothing listed')), false)
  assert.equal(third.poller.movedSince(third.poller.view().generation, () => assert.fail('nothing listed')), true)
  const loaded = third.poller.view().targets.get(a!)!
  assert.equal(loaded.state, 'up')
  // The saved EWMA is a new published value: its latencyGen is the generation the load made.
  assert.equal(before.ewmaMs, null)
  assert.equal(typeof loaded.ewmaMs, 'number')
  assert.equal(loaded.ewmaMs, first.poller.view().targets.get(a!)!.ewmaMs)
  assert.ok(loaded.latencyGen > before.latencyGen)
  assert.equal(loaded.latencyGen, third.poller.view().generation)
  await third.poller.close()
})

test('a saved state older than maxAgeMs is history: its targets start unknown with no latency, their transitions and last error kept', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-health-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'health.json')
  const first = setup({ script: [FAIL, OK, OK] })
  const [a] = first.poller.setTargets([spec(80)])
  for (let i = 0; i < 3; i++) await first.timers.tick()
  const was = first.poller.view().targets.get(a!)!
  assert.equal(was.state, 'up')
  await first.poller.saveState(file)
  await first.poller.close()
  const savedAt = (JSON.parse(await readFile(file, 'utf8')) as { savedAt: number }).savedAt
  const maxAgeMs = 600_000

  const restart = async (clock: number, logs: string[] = [], at = file) => {
    const r = setup({ clock, logs })
    t.after(() => r.poller.close())
    assert.equal(await r.poller.loadState(at, { maxAgeMs }), 1)
    r.poller.setTargets([spec(80)])
    return r.poller.view().targets.get(a!)!
  }
  // Within the age: the saved state, as without a limit.
  const fresh = await restart(savedAt + maxAgeMs - 1_000)
  assert.deepEqual([fresh.state, fresh.ewmaMs], ['up', was.ewmaMs])
  // Older: unknown since the load, no latency; the history stays.
  const logs: string[] = []
  const old = await restart(savedAt + maxAgeMs + 1_000, logs)
  assert.equal(old.state, 'unknown')
  assert.ok(old.since > savedAt + maxAgeMs, 'unknown since the load, not since the saved up')
  assert.deepEqual([old.ewmaMs, old.lastLatencyMs, old.publishedMs], [null, null, null])
  assert.deepEqual(old.transitions, was.transitions)
  assert.equal(old.lastError, was.lastError)
  assert.ok(old.lastError, 'the first round failed: a last error to keep')
  const warn = logs.map((l) => JSON.parse(l) as { level: number; msg: string; ageS: number; maxAgeS: number }).find((l) => l.msg.includes('too old'))
  assert.deepEqual([warn?.level, warn?.ageS, warn?.maxAgeS], [40, 601, 600])
  // A clock that moved back by more than the age is as untrustworthy as one that moved on.
  assert.equal((await restart(savedAt - maxAgeMs - 1_000)).state, 'unknown')
  // --health-state-max-age 0 trusts no saved state, even one saved this very millisecond.
  const never = setup({ clock: savedAt - 10 })
  t.after(() => never.poller.close())
  await never.poller.loadState(file, { maxAgeMs: 0 })
  never.poller.setTargets([spec(80)])
  assert.equal(never.poller.view().targets.get(a!)!.state, 'unknown')
  // A file that says no time cannot be aged: history only.
  const timeless = path.join(dir, 'timeless.json')
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { savedAt?: number }
  delete parsed.savedAt
  await writeFile(timeless, JSON.stringify(parsed))
  assert.equal((await restart(savedAt, [], timeless)).state, 'unknown')
})

test('loadState: a missing file is no state; a malformed one is E_STATE_IO', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-health-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const { poller } = setup()
  t.after(() => poller.close())
  assert.equal(await poller.loadState(path.join(dir, 'absent.json')), 0)
  for (const [name, text] of [
    ['not-json.json', '{'],
    ['wrong-version.json', '{"version":9,"targets":{}}'],
  ] as const) {
    await writeFile(path.join(dir, name), text)
    await assert.rejects(poller.loadState(path.join(dir, name)), (err: MeridianError) => err instanceof MeridianError && err.code === 'E_STATE_IO' && err.message.includes(name))
  }
  await assert.rejects(poller.saveState(path.join(dir, 'no', 'such', 'dir.json')), (err: MeridianError) => err.code === 'E_STATE_IO')
})

test('saves asked at once are made one after the other: each resolves, and the file is the last one asked, whole', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-health-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'health.json')
  const { poller } = setup()
  t.after(() => poller.close())
  // As at a SIGTERM while a change's save is under way: two saves in the same turn, with a change
  // of the targets between them (a file of another length). Twenty times: two at once collided in
  // most tries (the same temporary file: ENOENT at the second rename, or the two writes mixed).
  for (let i = 0; i < 20; i++) {
    const first = poller.saveState(file)
    const keys = poller.setTargets(i % 2 ? [spec(80)] : [spec(80), spec(81, { path: `/round-${i}` })])
    await Promise.all([first, poller.saveState(file)])
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as { targets: Record<string, unknown> }
    assert.deepEqual(Object.keys(onDisk.targets).sort(), [...keys].sort(), `round ${i}`)
  }
})

test('close() clears every timer and aborts rounds in flight', async () => {
  const { poller, timers, checks } = setup()
  poller.setTargets([spec(80), spec(81)])
  await timers.tick()
  poller.setTargets([spec(80), spec(81), spec(82)])
  await poller.close()
  assert.equal(timers.pending.size, 0)
  assert.ok(checks.slice(0, 2).every((c) => c.signals[0]!.aborted))
  assert.throws(() => poller.setTargets([spec(80)]), /after close/)
  assert.equal(checkKey(spec(80)), [...poller.view().targets.keys()][0])
})
