/**
 * The health view's way to the DNS workers (src/cluster/health-sync.ts): what the control process
 * sends for a poller's state, and what a worker's copy makes of it. A real HealthPoller, its
 * checks ended by hand (no sockets), as in poller-generation.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CheckResult } from '../../src/health/index.js'
import { HealthReplica, healthUpdate, type HealthDelta } from '../../src/cluster/health-sync.js'
import type { HealthView } from '../../src/health/poller.js'
import { ewmaMovedSignificantly } from '../../src/health/state.js'
import { FAIL, manualPoller, ok, spec as pollerSpec } from '../helpers/poller.js'

const spec = (port: number) => pollerSpec(port, { rise: 1, fall: 1 })
const setup = manualPoller

/**
 * A worker's copy agrees with the poller's view in what answers read: the generations, every
 * target's state and latencyGen, and its EWMA within the band of the value published with it
 * (the per-round numbers, like `checks`, are as of the target's last move).
 */
function same(copy: HealthView, view: HealthView): void {
  assert.deepEqual([copy.generation, copy.stateGeneration], [view.generation, view.stateGeneration])
  assert.deepEqual([...copy.targets.keys()].sort(), [...view.targets.keys()].sort())
  for (const [k, h] of view.targets) {
    const c = copy.targets.get(k)!
    assert.deepEqual([c.state, c.latencyGen], [h.state, h.latencyGen], k)
    assert.equal(ewmaMovedSignificantly(c.ewmaMs, h.ewmaMs), false, `${k}: ${c.ewmaMs} and ${h.ewmaMs}`)
  }
}

test('healthUpdate: a whole view at first and after a membership change, the moved records in between, nothing when nothing moved', async () => {
  const { poller, rounds } = setup()
  const [a, b, c] = poller.setTargets([spec(80), spec(81), spec(82)])
  const first = healthUpdate(poller, -1)
  assert.equal(first?.type, 'health', 'nothing sent yet: the whole view')
  const g0 = poller.view().generation
  assert.equal(healthUpdate(poller, g0), null, 'nothing moved')
  await rounds({ 80: ok(10), 81: ok(10), 82: FAIL }) // three state changes
  await rounds({ 80: ok(40), 81: ok(10), 82: FAIL }) // 80's latency moves
  const d = healthUpdate(poller, g0) as HealthDelta
  assert.equal(d.type, 'health-delta')
  assert.deepEqual({ from: d.from, generation: d.generation, stateGeneration: d.stateGeneration }, { from: g0, ...poller.generations() })
  assert.deepEqual(d.records.map(([k]) => k), [a, b, c], 'each moved target once, with its current record')
  assert.equal(d.records[0]![1], poller.view().targets.get(a!))
  const g1 = poller.view().generation
  await rounds({ 80: ok(40), 81: FAIL, 82: FAIL })
  // 80: EWMA 19 -> 25.3, more than max(2 ms, 25%) from the 19 it published; 81 goes down.
  assert.deepEqual((healthUpdate(poller, g1) as HealthDelta).records.map(([k]) => k), [a, b])
  // A membership change: the poller cannot list it, so the whole view goes.
  poller.setTargets([spec(80), spec(81)])
  assert.equal(healthUpdate(poller, g1)?.type, 'health')
  await poller.close()
})

test('HealthReplica: deltas applied in order give the poller\'s view; movedSince lists their keys; a gap is refused', async () => {
  const { poller, rounds } = setup()
  const [a, b, c] = poller.setTargets([spec(80), spec(81), spec(82)])
  const init = healthUpdate(poller, -1)
  assert.ok(init?.type === 'health')
  const replica = new HealthReplica(init.health)
  let sent = init.health.generation
  const listed = (g: number) => {
    const keys: string[] = []
    return replica.movedSince(g, (k) => keys.push(k)) && keys
  }
  assert.deepEqual(listed(sent), [])
  const script: Record<number, CheckResult>[] = [
    { 80: ok(10), 81: ok(10), 82: FAIL },
    { 80: ok(40), 81: ok(10), 82: FAIL },
    { 80: ok(40), 81: FAIL, 82: ok(5) },
    { 80: ok(40), 81: FAIL, 82: ok(5) },
  ]
  const gens = [sent]
  for (const step of script) {
    await rounds(step)
    const msg = healthUpdate(poller, sent)
    if (msg === null) continue
    assert.equal(msg.type, 'health-delta')
    assert.ok(replica.apply(msg as HealthDelta))
    sent = (msg as HealthDelta).generation
    gens.push(sent)
    same(replica.view, poller.view())
  }
  assert.ok(gens.length >= 4)
  assert.deepEqual(new Set(listed(gens[0]!) as string[]), new Set([a, b, c]))
  assert.deepEqual(listed(sent), [])
  assert.equal(listed(sent + 1), false, 'a generation it does not have')
  // A delta that does not follow on (from after this view) is refused and changes nothing.
  const before = replica.view
  assert.equal(replica.apply({ type: 'health-delta', from: sent + 5, generation: sent + 6, stateGeneration: 0, records: [] }), false)
  assert.equal(replica.view, before)
  // One from before it (sent to every worker; this one started later) applies: its records are current.
  assert.ok(replica.apply({ type: 'health-delta', from: gens[0]!, generation: sent + 1, stateGeneration: replica.view.stateGeneration, records: [[a!, poller.view().targets.get(a!)!]] }))
  assert.equal(replica.view.generation, sent + 1)
  // A whole view starts the list again.
  replica.replace(poller.view())
  assert.equal(listed(gens[0]!), false)
  assert.deepEqual(listed(poller.view().generation), [])
  await poller.close()
})

test('HealthReplica: past the deltas it keeps, the oldest half is forgotten and listing from before it fails', () => {
  const view: HealthView = { generation: 0, stateGeneration: 0, targets: new Map() }
  const replica = new HealthReplica(view)
  for (let g = 1; g <= 300; g++) assert.ok(replica.apply({ type: 'health-delta', from: g - 1, generation: g, stateGeneration: 0, records: [[`k${g}`, {} as never]] }))
  const listed = (g: number) => {
    const keys: string[] = []
    return replica.movedSince(g, (k) => keys.push(k)) && keys
  }
  assert.equal(listed(0), false)
  assert.deepEqual(listed(290), ['k291', 'k292', 'k293', 'k294', 'k295', 'k296', 'k297', 'k298', 'k299', 'k300'])
  assert.equal((listed(300 - 128) as string[]).length, 128, 'at least the last 128 deltas')
  assert.equal(replica.view.targets.size, 300)
})
