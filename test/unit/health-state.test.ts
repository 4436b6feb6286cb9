/**
 * The pure rise/fall state machine: tables of result sequences and the state they lead to.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EWMA_ALPHA, MAX_TRANSITIONS, initialHealth, next, parseSaved, toSaved, type CheckResult, type SavedHealth, type TargetHealth } from '../../src/health/state.js'

const OK: CheckResult = { ok: true, latencyMs: 10, status: 200 }
const FAIL: CheckResult = { ok: false, latencyMs: 80, error: 'timeout after 80 ms' }

/** Feeds `seq` ('s' success, 'f' failure) one result a second, starting at t = 1000. */
function run(h: TargetHealth, seq: string): TargetHealth {
  let t = 1000
  for (const c of seq) h = next(h, c === 's' ? OK : FAIL, (t += 1000))
  return h
}

const saved = (state: SavedHealth['state']): SavedHealth => ({ state, since: 42, lastLatencyMs: 5, ewmaMs: 5, lastError: null, lastErrorAt: null, transitions: [] })

const cases: { name: string; rise: number; fall: number; from?: SavedHealth; seq: string; state: string; path: string[] }[] = [
  { name: 'a new target is unknown before any result', rise: 2, fall: 3, seq: '', state: 'unknown', path: [] },
  { name: 'one success is not enough to go up', rise: 2, fall: 3, seq: 's', state: 'unknown', path: [] },
  { name: 'rise successes take unknown up', rise: 2, fall: 3, seq: 'ss', state: 'up', path: ['unknown>up'] },
  { name: 'fall - 1 failures leave unknown unknown', rise: 2, fall: 3, seq: 'ff', state: 'unknown', path: [] },
  { name: 'fall failures take unknown down', rise: 2, fall: 3, seq: 'fff', state: 'down', path: ['unknown>down'] },
  { name: 'non-consecutive successes do not count', rise: 2, fall: 3, seq: 'sfs', state: 'unknown', path: [] },
  { name: 'non-consecutive failures do not count', rise: 2, fall: 3, seq: 'ffsff', state: 'unknown', path: [] },
  { name: 'up survives fall - 1 failures', rise: 2, fall: 3, seq: 'ssff', state: 'up', path: ['unknown>up'] },
  { name: 'fall failures take up down', rise: 2, fall: 3, seq: 'ssfff', state: 'down', path: ['unknown>up', 'up>down'] },
  { name: 'a success in between resets the failure count', rise: 2, fall: 3, seq: 'ssffsff', state: 'up', path: ['unknown>up'] },
  { name: 'down needs rise successes to come back', rise: 2, fall: 3, seq: 'fffs', state: 'down', path: ['unknown>down'] },
  { name: 'rise successes take down up', rise: 2, fall: 3, seq: 'fffss', state: 'up', path: ['unknown>down', 'down>up'] },
  { name: 'flapping results never move an up target', rise: 2, fall: 3, seq: 'ssfsfsfsfs', state: 'up', path: ['unknown>up'] },
  { name: 'rise 1 / fall 1 follows every result', rise: 1, fall: 1, seq: 'sfs', state: 'up', path: ['unknown>up', 'up>down', 'down>up'] },
  { name: 'rise 3 needs three successes', rise: 3, fall: 1, seq: 'ss', state: 'unknown', path: [] },
  { name: 'a restored up target stays up until fall fresh failures', rise: 2, fall: 3, from: saved('up'), seq: 'ff', state: 'up', path: [] },
  { name: 'a restored up target goes down after fall fresh failures', rise: 2, fall: 3, from: saved('up'), seq: 'fff', state: 'down', path: ['up>down'] },
  { name: 'a restored down target stays down after one success', rise: 2, fall: 3, from: saved('down'), seq: 's', state: 'down', path: [] },
  { name: 'a restored down target goes up after rise successes', rise: 2, fall: 3, from: saved('down'), seq: 'ss', state: 'up', path: ['down>up'] },
]

for (const c of cases) {
  test(`state machine: ${c.name}`, () => {
    const h = run(initialHealth({ rise: c.rise, fall: c.fall }, 1000, c.from), c.seq)
    assert.equal(h.state, c.state)
    assert.deepEqual(
      h.transitions.map((t) => `${t.from}>${t.to}`),
      c.path,
    )
    assert.equal(h.checks, c.seq.length)
  })
}

test('a restored record carries its saved state and since, with fresh counters', () => {
  const h = initialHealth({ rise: 2, fall: 3 }, 5000, saved('up'))
  assert.equal(h.state, 'up')
  assert.equal(h.since, 42)
  assert.equal(h.restored, true)
  assert.equal(h.successes, 0)
  assert.equal(h.failures, 0)
  assert.equal(run(h, 'ss').restored, true, 'results that confirm the state keep the flag')
  assert.equal(run(h, 'fff').restored, false, 'a fresh change clears it')
})

test('a change records since, the reason with the count and the last result', () => {
  let h = initialHealth({ rise: 2, fall: 3 }, 0)
  h = next(h, OK, 100)
  h = next(h, { ok: true, latencyMs: 12.34, status: 204 }, 200)
  assert.equal(h.since, 200)
  assert.deepEqual(h.transitions, [{ from: 'unknown', to: 'up', at: 200, reason: '2 consecutive successes, last: status 204 in 12.3 ms' }])
  h = next(h, FAIL, 300)
  h = next(h, { ok: false, latencyMs: 1, error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.1.1:80' }, 400)
  assert.equal(h.since, 200, 'no change, since stays')
  h = next(h, FAIL, 500)
  assert.equal(h.state, 'down')
  assert.equal(h.since, 500)
  assert.equal(h.transitions[1]!.reason, '3 consecutive failures, last: timeout after 80 ms')
  const tcp = next(next(initialHealth({ rise: 1, fall: 1 }, 0), FAIL, 1), { ok: true, latencyMs: 0.26 }, 2)
  assert.equal(tcp.transitions[1]!.reason, '1 consecutive success, last: connected in 0.3 ms')
})

test('the last error is kept after recovery, with its time; lastLatencyMs is the last round whatever its outcome', () => {
  let h = initialHealth({ rise: 1, fall: 1 }, 0)
  h = next(h, FAIL, 10)
  assert.equal(h.lastError, 'timeout after 80 ms')
  assert.equal(h.lastLatencyMs, 80)
  h = next(h, OK, 20)
  assert.equal(h.state, 'up')
  assert.equal(h.lastError, 'timeout after 80 ms')
  assert.equal(h.lastErrorAt, 10)
  assert.equal(h.lastLatencyMs, 10)
  assert.equal(h.lastStatus, 200)
  assert.equal(next(h, { ok: false, latencyMs: 3, status: 503, error: 'status 503, expected 200' }, 30).lastStatus, 503)
})

const ok = (latencyMs: number): CheckResult => ({ ok: true, latencyMs })
// rise 2, fall 3: the second consecutive success brings the target up.
const ewmaCases: { name: string; results: CheckResult[]; ewma: number | null }[] = [
  { name: 'no success yet: no average', results: [FAIL], ewma: null },
  { name: 'the first success seeds it', results: [ok(10)], ewma: 10 },
  { name: 'a rise takes its lowest latency (the first round pays for connecting)', results: [ok(15), ok(1)], ewma: 1 },
  { name: 'a rise never takes a higher one', results: [ok(10), ok(20)], ewma: 10 },
  { name: 'once up, alpha 0.3 toward each sample', results: [ok(10), ok(10), ok(20), ok(20)], ewma: 13 },
  { name: 'failures do not move it', results: [ok(10), ok(10), { ok: false, latencyMs: 500 }, ok(20), ok(20)], ewma: 13 },
  { name: 'three samples once up', results: [ok(100), ok(100), ok(0), ok(0), ok(0)], ewma: 49 },
  // up (2 ok), down (3 failures), then a new rise: it starts afresh from its own successes.
  { name: 'a rise after an outage starts afresh', results: [ok(5), ok(5), FAIL, FAIL, FAIL, ok(40), ok(30)], ewma: 30 },
  { name: 'a failure in a rise restarts it: its next success seeds again', results: [ok(5), FAIL, ok(8)], ewma: 8 },
  // Up after two; from the third round while up the median of the last three goes in.
  { name: 'one slow round while up moves nothing (the median of three)', results: [ok(2), ok(2), ok(2), ok(2), ok(20), ok(2)], ewma: 2 },
  { name: 'a latency that stays counts from its second round', results: [ok(10), ok(10), ok(10), ok(10), ok(30), ok(30)], ewma: 16 },
  { name: 'a failure between does not break the three', results: [ok(2), ok(2), ok(2), ok(2), FAIL, ok(20), ok(2)], ewma: 2 },
  { name: 'the rounds of the rise count among the three', results: [ok(10), ok(10), ok(20)], ewma: 10 },
  { name: 'a failure in a rise restarts the three with it', results: [ok(2), FAIL, ok(10), ok(10), ok(20)], ewma: 10 },
  { name: 'after an outage the three start afresh', results: [ok(2), ok(2), ok(2), ok(2), FAIL, FAIL, FAIL, ok(30), ok(30), ok(2)], ewma: 30 },
]

test('ewma: a record restored up keeps its saved average through its first rise rounds, which only lower it, then averages', () => {
  // A restart's first round is cold (connecting, code not yet compiled): blended into the saved
  // average, 46 ms against a saved 8 published 19.4 ms and steered geo-latency away for rounds.
  const restored = initialHealth({ rise: 2, fall: 3 }, 0, { ...saved('up'), ewmaMs: 8 })
  const after = (latencies: number[]): number | null => latencies.reduce((h, l, i) => next(h, ok(l), i), restored).ewmaMs
  assert.equal(after([46]), 8, 'a cold first round does not raise it')
  assert.equal(after([46, 9]), 8)
  assert.equal(after([46, 6]), 6, 'a lower one lowers it')
  assert.ok(Math.abs(after([46, 9, 18])! - (0.3 * 18 + 0.7 * 8)) < 1e-9, 'then the average goes on')
  // Not for a record that rose here: its rise set the average already.
  const rose = [ok(10), ok(10), ok(20), ok(20)].reduce((h, r, i) => next(h, r, i), initialHealth({ rise: 2, fall: 3 }, 0))
  assert.ok(Math.abs(rose.ewmaMs! - 13) < 1e-9)
})

for (const c of ewmaCases) {
  test(`ewma: ${c.name}`, () => {
    let h = initialHealth({ rise: 2, fall: 3 }, 0)
    c.results.forEach((r, i) => (h = next(h, r, i)))
    if (c.ewma === null) assert.equal(h.ewmaMs, null)
    else assert.ok(Math.abs(h.ewmaMs! - c.ewma) < 1e-9, `${h.ewmaMs} != ${c.ewma}`)
  })
}

test('EWMA alpha is 0.3', () => assert.equal(EWMA_ALPHA, 0.3))

test('the transition list is bounded and keeps the most recent', () => {
  let h = initialHealth({ rise: 1, fall: 1 }, 0)
  for (let i = 1; i <= 50; i++) h = next(h, i % 2 ? OK : FAIL, i)
  assert.equal(h.transitions.length, MAX_TRANSITIONS)
  assert.equal(h.transitions.at(-1)!.at, 50)
  assert.equal(h.transitions.at(-1)!.to, 'down')
})

test('next is pure: frozen input untouched, same inputs give equal outputs', () => {
  const h0 = run(initialHealth({ rise: 2, fall: 3 }, 0), 'ssf')
  const copy = JSON.parse(JSON.stringify(h0)) as unknown
  const a = next(h0, FAIL, 99)
  const b = next(h0, FAIL, 99)
  assert.deepEqual(a, b)
  assert.notEqual(a, b)
  assert.deepEqual(JSON.parse(JSON.stringify(h0)), copy)
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.transitions))
})

test('toSaved and parseSaved round-trip', () => {
  const h = run(initialHealth({ rise: 2, fall: 3 }, 0), 'ssfff')
  const s = toSaved(h)
  assert.deepEqual(parseSaved(JSON.parse(JSON.stringify(s))), s)
  const r = initialHealth({ rise: 2, fall: 3 }, 9999, s)
  assert.equal(r.state, 'down')
  assert.equal(r.since, h.since)
  assert.deepEqual(r.transitions, h.transitions)
})

const badSaved: { name: string; value: unknown }[] = [
  { name: 'not an object', value: 'up' },
  { name: 'unknown state', value: { ...saved('up'), state: 'sideways' } },
  { name: 'missing since', value: { ...saved('up'), since: undefined } },
  { name: 'latency not a number', value: { ...saved('up'), ewmaMs: 'fast' } },
  { name: 'transitions not a list', value: { ...saved('up'), transitions: {} } },
  { name: 'a transition with a bad state', value: { ...saved('up'), transitions: [{ from: 'up', to: 'gone', at: 1, reason: 'x' }] } },
]

for (const c of badSaved) {
  test(`parseSaved rejects ${c.name}`, () => assert.equal(parseSaved(c.value), null))
}
