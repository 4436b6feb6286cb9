/**
 * The poller's generation rule for EWMA moves, its due-point cadence and its incrementally built
 * snapshots, with the clocks, the timers and the checks in the test's hands: no sockets, no waiting.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ewmaMovedSignificantly } from '../../src/health/state.js'
import { FAIL, manualPoller, ok, spec } from '../helpers/poller.js'
import { settle } from '../helpers/timers.js'

const setup = manualPoller

test('ewmaMovedSignificantly: more than max(2 ms, 25% of the published value)', () => {
  const rows: [number | null, number | null, boolean][] = [
    [null, null, false],
    [null, 10, true],
    [10, null, true],
    [10, 12.5, false], // 25% of 10 is 2.5: exactly on the line is not beyond it
    [10, 12.51, true],
    [10, 7.5, false],
    [10, 7.49, true],
    [2, 3.9, false], // 95% but under 2 ms
    [2, 4.01, true],
    [100, 124, false], // 24 ms but under 25%
    [100, 126, true],
    [0, 2, false],
    [0, 2.01, true],
  ]
  for (const [published, current, want] of rows) assert.equal(ewmaMovedSignificantly(published, current), want, `${published} -> ${current}`)
})

test('an insignificant EWMA move keeps the generation, however many rounds it takes', async () => {
  const { poller, round } = setup()
  const [key] = poller.setTargets([spec(80)])
  await round(80, ok(10)) // first value (significant), still unknown
  await round(80, ok(10)) // unknown > up
  const g = poller.view().generation
  assert.equal(poller.view().targets.get(key!)!.state, 'up')
  // 12 ms samples pull the EWMA from 10 toward 12 (10.6, 11.02, ...), never beyond 12.5.
  for (let i = 0; i < 10; i++) await round(80, ok(12))
  const h = poller.view().targets.get(key!)!
  assert.ok(h.ewmaMs! > 11.9 && h.ewmaMs! < 12.5, `ewma ${h.ewmaMs}`)
  assert.equal(poller.view().generation, g, 'no bump inside the band')
  assert.equal(h.checks, 12, 'the view still carries the fresh per-round numbers')
  // Under 2 ms is insignificant even where it is more than 25%.
  const small = setup()
  const [k2] = small.poller.setTargets([spec(81, { rise: 1 })])
  await small.round(81, ok(2)) // up, first value 2
  const g2 = small.poller.view().generation
  for (let i = 0; i < 8; i++) await small.round(81, ok(3.9))
  assert.ok(small.poller.view().targets.get(k2!)!.ewmaMs! > 3.5)
  assert.equal(small.poller.view().generation, g2)
  await poller.close()
  await small.poller.close()
})

test('a significant EWMA move bumps the generation once, and the new value becomes the reference', async () => {
  const { poller, round } = setup()
  const changes: number[] = []
  poller.onChange((v) => changes.push(v.generation))
  const [key] = poller.setTargets([spec(80)])
  await round(80, ok(10))
  await round(80, ok(10))
  const g = poller.view().generation
  const v0 = poller.view()
  // One slow round moves nothing: the EWMA takes the median of the last three rounds (10, 10, 20).
  await round(80, ok(20))
  assert.equal(poller.view().generation, g, 'one slow round: no bump')
  assert.equal(poller.view().targets.get(key!)!.ewmaMs, 10)
  await round(80, ok(20)) // it stays: median 20, ewma 0.3 x 20 + 0.7 x 10 = 13: 3 ms > max(2, 2.5)
  const v1 = poller.view()
  assert.equal(v1.generation, g + 1, 'bumped once')
  assert.notEqual(v1, v0, 'a new snapshot is published')
  assert.ok(Math.abs(v1.targets.get(key!)!.ewmaMs! - 13) < 1e-9)
  assert.equal(v1.targets.get(key!)!.latencyGen, g + 1, 'the move published the target')
  assert.ok(v0.targets.get(key!)!.latencyGen < g + 1)
  assert.equal(v0.targets.get(key!)!.ewmaMs, 10, 'the old snapshot is untouched')
  assert.equal(v0.targets.get(key!)!.publishedMs, 10)
  assert.ok(Math.abs(v1.targets.get(key!)!.publishedMs! - 13) < 1e-9, 'the move published the value the selector steers by')
  await round(80, ok(14)) // median 20: 15.1, 2.1 ms from the new reference (13), within max(2, 3.25); 5.1 from the old one
  await round(80, ok(14)) // median 14: 14.77
  assert.equal(poller.view().generation, g + 1, 'measured from the value published with the bump')
  assert.ok(poller.view().targets.get(key!)!.ewmaMs! > 14, 'the EWMA follows every round')
  assert.ok(Math.abs(poller.view().targets.get(key!)!.publishedMs! - 13) < 1e-9, 'what steers stays until the next published move')
  assert.deepEqual(changes, [g], 'listeners hear of state changes only (unknown > up)')
  // A slow creep bumps once it has gone far enough in all, not step by step.
  for (let i = 0; i < 30; i++) await round(80, ok(20))
  assert.equal(poller.view().generation, g + 2, 'one bump when the creep left the band around 13')
  assert.equal(poller.view().targets.get(key!)!.latencyGen, g + 2)
  assert.ok(poller.view().targets.get(key!)!.publishedMs! > 16.25, 'published once it left the band')
  await poller.close()
})

test('the reference is the target\'s own published value: another target\'s bump does not move it, and latencyGen says when it was published', async () => {
  const { poller, rounds } = setup()
  const [a, b] = poller.setTargets([spec(80, { rise: 1, fall: 1 }), spec(81, { rise: 1, fall: 1 })])
  const gen = (k: string) => poller.view().targets.get(k)!.latencyGen
  assert.equal(gen(a!), poller.view().generation, 'a new target is published by the membership bump')
  await rounds({ 80: ok(10), 81: ok(50) }) // both up
  const g = poller.view().generation
  const pubA = gen(a!)
  assert.ok(pubA <= g && gen(b!) <= g && pubA > 0)
  // 80: published at 10; 13 ms samples creep it to about 12.3, inside the band (12.5).
  for (let i = 0; i < 4; i++) await rounds({ 80: ok(13), 81: ok(50) })
  const creep = poller.view().targets.get(a!)!.ewmaMs!
  assert.ok(creep > 12.2 && creep < 12.5, `ewma ${creep}`)
  assert.equal(poller.view().generation, g)
  // 81 goes down: a new generation, which publishes 81's record but not 80's.
  await rounds({ 80: ok(creep), 81: FAIL })
  assert.equal(poller.view().generation, g + 1)
  assert.equal(gen(b!), g + 1, "81's state change published it")
  assert.equal(gen(a!), pubA, "80's published value is still the one of its own last move")
  // 80 moves past 12.5: within 0.6 ms of its value at generation g + 1, but more than 2.5 from the
  // 10 it last published: a move of its own, which publishes it (and only it).
  const sg = poller.view().stateGeneration
  await rounds({ 80: ok(14), 81: FAIL })
  assert.ok(poller.view().targets.get(a!)!.ewmaMs! > 12.5)
  assert.equal(poller.view().generation, g + 2)
  assert.equal(poller.view().stateGeneration, sg, 'a latency move: the state generation stays')
  assert.equal(gen(a!), g + 2)
  assert.equal(gen(b!), g + 1)
  // Without moves the published generations stay, round after round.
  await rounds({ 80: ok(12.6), 81: FAIL })
  assert.deepEqual([gen(a!), gen(b!), poller.view().generation], [g + 2, g + 1, g + 2])
  await poller.close()
})

test('movedSince lists the target of every move after a generation, until membership changes or the log is full', async () => {
  const { poller, rounds } = setup()
  const [a, b] = poller.setTargets([spec(80, { rise: 1, fall: 1 }), spec(81, { rise: 1, fall: 1 })])
  const since = (g: number): string[] | false => {
    const out: string[] = []
    return poller.movedSince(g, (k) => out.push(k)) && out
  }
  const g0 = poller.view().generation
  assert.deepEqual(since(g0), [], 'nothing after the current generation')
  assert.equal(since(g0 - 1), false, 'the membership change itself is not listed target by target')
  await rounds({ 80: ok(10), 81: ok(50) }) // both up: one generation each
  await rounds({ 80: ok(10), 81: FAIL }) // 81 down
  await rounds({ 80: ok(40), 81: FAIL }) // 80's latency moves (10 -> 19)
  await rounds({ 80: ok(19), 81: FAIL }) // nothing significant
  const v = poller.view()
  assert.equal(v.generation, g0 + 4)
  assert.deepEqual(since(g0), [a, b, b, a], 'both up, 81 down, 80 moved')
  assert.deepEqual(since(g0 + 2), [b, a])
  assert.deepEqual(since(g0 + 4), [])
  assert.equal(since(g0 + 5), false, 'a generation not made yet')
  // A membership change starts the log again.
  poller.setTargets([spec(80, { rise: 1, fall: 1 }), spec(81, { rise: 1, fall: 1 }), spec(82)])
  assert.equal(since(g0 + 4), false)
  assert.deepEqual(since(poller.view().generation), [])
  // More moves than the log holds (4,096): a reader from before them must compare every target.
  const start = poller.view().generation
  // 1 ms and 100 ms in turn: the EWMA swings by more than its band every round.
  for (let i = 0; i < 10_000 && poller.view().generation - start <= 4100; i++) await rounds({ 80: ok(i % 2 ? 1 : 100), 81: FAIL, 82: FAIL })
  const end = poller.view().generation
  assert.ok(end - start > 4100, `${end - start} moves`)
  assert.equal(since(start), false)
  assert.deepEqual(since(end - 10), Array(10).fill(a), 'recent moves (all 80\'s: 81 and 82 stay down) are still listed')
  assert.equal((since(end - 2048) as string[]).length, 2048, 'the last 2,048 at least')
  await poller.close()
})

test('a state change still bumps the generation, once even when the EWMA moves with it', async () => {
  const { poller, round } = setup()
  const seen: string[] = []
  poller.onChange((_v, cs) => seen.push(...cs.map((c) => `${c.from}>${c.to}`)))
  const [key] = poller.setTargets([spec(80, { rise: 1, fall: 2 })])
  await round(80, ok(10)) // unknown > up, with a first value: one bump for both
  const g = poller.view().generation
  assert.deepEqual(seen, ['unknown>up'])
  await round(80, FAIL)
  assert.equal(poller.view().generation, g, 'one failure changes nothing (fall 2); failures leave the EWMA alone')
  await round(80, FAIL) // up > down, EWMA unchanged
  assert.equal(poller.view().generation, g + 1)
  await round(80, ok(40)) // down > up, EWMA 10 -> 19: still one bump
  assert.equal(poller.view().generation, g + 2)
  assert.deepEqual(seen, ['unknown>up', 'up>down', 'down>up'])
  assert.equal(poller.view().targets.get(key!)!.state, 'up')
  await poller.close()
})

test('generations() is the view\'s generations after every kind of change, read before the view is built', async () => {
  const { poller, round } = setup()
  const seen: string[] = []
  /** generations() first (no view built since the change), then the view it must agree with. */
  const agree = (what: string) => {
    const g = poller.generations()
    const v = poller.view()
    assert.deepEqual({ ...g }, { generation: v.generation, stateGeneration: v.stateGeneration }, what)
    seen.push(`${g.generation}/${g.stateGeneration}`)
  }
  agree('no targets')
  poller.setTargets([spec(80, { rise: 1, fall: 1 })])
  agree('a target added')
  await round(80, ok(10))
  agree('unknown > up')
  await round(80, ok(40)) // ewma 10 -> 19
  agree('a significant latency move')
  await round(80, ok(20)) // 19 -> 19.3, inside max(2 ms, 25%)
  agree('an insignificant one')
  await round(80, FAIL)
  agree('up > down')
  poller.setTargets([])
  agree('the target removed')
  // Every step that bumped is seen, the latency move without the state generation.
  assert.deepEqual(seen, ['0/0', '1/1', '2/2', '3/2', '3/2', '4/3', '5/4'])
  await poller.close()
})

test('rounds are due one interval apart: a late timer delays one round, not the ones after it', async () => {
  const { poller, timers, checks, clock } = setup()
  poller.setTargets([spec(80, { intervalMs: 1000, timeoutMs: 500 })])
  const c = checks.get(80)!
  assert.deepEqual(timers.delays(), [0], 'rand 0: the first round is due at once')
  const roundAt = async (fireAt: number, endAt: number): Promise<void> => {
    clock.mono = fireAt
    timers.fire()
    await settle()
    clock.mono = endAt
    c.finish(ok(5))
    await settle()
  }
  await roundAt(30, 35) // the timer fired 30 ms late
  assert.deepEqual(timers.delays(), [965], 'the next is due at 1000, not at 30 + 1000')
  await roundAt(1000, 1002)
  assert.deepEqual(timers.delays(), [998])
  await roundAt(2400, 2410) // 400 ms late (a stall), the round ends before the next due point
  assert.deepEqual(timers.delays(), [590], 'still due at 3000')
  await roundAt(3000, 4200) // a round that ends after its next due point (4000): the next at once...
  assert.deepEqual(timers.delays(), [0])
  await roundAt(4200, 4201) // ...and the one after it one interval later, no burst of catch-ups
  assert.deepEqual(timers.delays(), [999])
  assert.equal(c.calls, 5)
  await poller.close()
})

test('snapshots built incrementally read like full copies and never change once handed out', async () => {
  const { poller, timers, checks, clock } = setup()
  const n = 300
  const keys = poller.setTargets(Array.from({ length: n }, (_, i) => spec(1000 + i, { rise: 1, fall: 1 })))
  const views = [poller.view()]
  const expected: Map<string, number>[] = [new Map(keys.map((k) => [k, 0]))]
  const current = new Map(keys.map((k) => [k, 0]))
  clock.mono = 1
  timers.fire()
  await settle()
  // End rounds one by one, in a scrambled order, taking a view after each: past the overlay limit
  // (2 x sqrt(300) = 36) several times.
  for (let i = 0; i < n; i++) {
    const port = 1000 + ((i * 7) % n)
    checks.get(port)!.finish(i % 5 === 0 ? FAIL : ok(5))
    await settle()
    const k = keys[port - 1000]!
    current.set(k, current.get(k)! + 1)
    views.push(poller.view())
    expected.push(new Map(current))
  }
  views.forEach((v, i) => {
    const want = expected[i]!
    assert.equal(v.targets.size, n)
    assert.deepEqual([...v.targets.keys()], keys, 'keys in insertion order')
    for (const [k, h] of v.targets) assert.equal(h.checks, want.get(k), `view ${i}, ${k}`)
    for (const k of keys) assert.equal(v.targets.get(k)!.checks, want.get(k))
    assert.equal([...v.targets.values()].length, n)
    let count = 0
    v.targets.forEach((h, k, m) => {
      assert.equal(m.get(k), h)
      count++
    })
    assert.equal(count, n)
  })
  assert.equal(poller.view(), views[views.length - 1], 'the same object while nothing changed')
  assert.equal(poller.view().targets.has('nope'), false)
  // Membership changes still show at once.
  poller.setTargets([spec(1000, { rise: 1, fall: 1 })])
  assert.deepEqual([...poller.view().targets.keys()], [keys[0]])
  assert.equal(views[1]!.targets.size, n)
  await poller.close()
})
