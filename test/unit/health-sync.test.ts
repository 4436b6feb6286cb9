/**
 * The health view's way to the DNS workers (src/cluster/health-sync.ts): what the control process
 * sends for a poller's state, and what a worker's copy makes of it. A real HealthPoller, its
 * checks ended by hand (no sockets), as in poller-generation.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CheckResult } from '../../src/health/index.js'
import { HealthReplica, HealthSender, type HealthDelta } from '../../src/cluster/health-sync.js'
import type { HealthView } from '../../src/health/poller.js'
import { FAIL, manualPoller, ok, spec as pollerSpec } from '../helpers/poller.js'

const spec = (port: number) => pollerSpec(port, { rise: 1, fall: 1 })
const setup = manualPoller

/** A worker's copy is the poller's view: the generations and every record (the same objects, as a structured clone would copy them). */
function same(copy: HealthView, view: HealthView): void {
  assert.deepEqual([copy.generation, copy.stateGeneration], [view.generation, view.stateGeneration])
  assert.deepEqual(new Map(copy.targets), new Map(view.targets))
}

/** The keys a replica lists after generation `g`, or false. */
function listed(replica: HealthReplica, g: number): string[] | false {
  const keys: string[] = []
  return replica.movedSince(g, (k) => keys.push(k)) && keys
}

test('HealthSender: the whole view to a worker that starts, then deltas of the records that changed and the checks that moved; nothing when the generation stayed', async () => {
  const { poller, rounds } = setup()
  const [a, b, c] = poller.setTargets([spec(80), spec(81), spec(82)])
  const sender = new HealthSender(poller)
  const init = sender.initial(false)
  same(init, poller.view())
  assert.equal(sender.update(), null, 'nothing moved')
  const g0 = init.generation
  await rounds({ 80: ok(10), 81: ok(10), 82: FAIL }) // three state changes
  await rounds({ 80: ok(40), 81: ok(10), 82: FAIL }) // 80's latency moves
  const d = sender.update() as HealthDelta
  assert.equal(d.type, 'health-delta')
  assert.deepEqual({ from: d.from, generation: d.generation, stateGeneration: d.stateGeneration }, { from: g0, ...poller.generations() })
  assert.deepEqual(d.moved, [a, b, c], 'each check that moved, once')
  assert.deepEqual(new Map(d.records), new Map(poller.view().targets), 'every record changed')
  // A round that moves nothing: the generation stays, nothing is sent (its per-round numbers go
  // with the next move).
  await rounds({ 80: ok(19), 81: ok(10), 82: FAIL }) // 80's EWMA stays at 19
  assert.equal(sender.update(), null)
  // 81 goes down: every record changed since the last send goes, and 81 alone moved.
  await rounds({ 80: ok(19), 81: FAIL, 82: FAIL })
  const d2 = sender.update() as HealthDelta
  assert.deepEqual(d2.moved, [b])
  assert.deepEqual(new Map(d2.records), new Map(poller.view().targets))
  // Nothing changed at all since: an empty delta would not even be asked for (the generation stayed).
  assert.equal(sender.update(), null)
  // A membership change: the poller cannot list it, so the whole view goes.
  poller.setTargets([spec(80), spec(81)])
  const whole = sender.update()
  assert.equal(whole?.type, 'health')
  await poller.close()
})

test('HealthReplica: a worker\'s copy follows the sender\'s messages, one started later too; movedSince lists the moved checks; a gap is refused', async () => {
  const { poller, rounds } = setup()
  const [a, b, c] = poller.setTargets([spec(80), spec(81), spec(82)])
  const sender = new HealthSender(poller)
  const first = new HealthReplica(sender.initial(false))
  let late: HealthReplica | undefined
  const g0 = first.view.generation
  assert.deepEqual(listed(first, g0), [])
  const script: Record<number, CheckResult>[] = [
    { 80: ok(10), 81: ok(10), 82: FAIL },
    { 80: ok(40), 81: ok(10), 82: FAIL },
    { 80: ok(40), 81: FAIL, 82: ok(5) },
    { 80: ok(40), 81: FAIL, 82: ok(5) },
  ]
  for (const [i, step] of script.entries()) {
    await rounds(step)
    // After the first step a second worker starts: the whole view, fresher than what the first was sent.
    if (i === 1) late = new HealthReplica(sender.initial(true))
    const msg = sender.update()
    if (msg === null) continue
    assert.equal(msg.type, 'health-delta')
    for (const r of [first, late]) if (r) assert.ok(r.apply(msg as HealthDelta))
    same(first.view, poller.view())
    if (late) same(late.view, poller.view())
  }
  assert.deepEqual(new Set(listed(first, g0) as string[]), new Set([a, b, c]))
  const now = first.view.generation
  assert.deepEqual(listed(first, now), [])
  assert.equal(listed(first, now + 1), false, 'a generation it does not have')
  assert.equal(listed(late!, g0), false, 'from before its whole view')
  // A delta that does not follow on (from after this view) is refused and changes nothing.
  const before = first.view
  assert.equal(first.apply({ type: 'health-delta', from: now + 5, generation: now + 6, stateGeneration: 0, records: [], moved: [] }), false)
  assert.equal(first.view, before)
  // A whole view starts the list again.
  first.replace(poller.view())
  assert.equal(listed(first, g0), false)
  assert.deepEqual(listed(first, poller.view().generation), [])
  await poller.close()
})

test('HealthReplica: past the deltas it keeps, the oldest half is forgotten and listing from before it fails', () => {
  const view: HealthView = { generation: 0, stateGeneration: 0, targets: new Map() }
  const replica = new HealthReplica(view)
  for (let g = 1; g <= 300; g++) assert.ok(replica.apply({ type: 'health-delta', from: g - 1, generation: g, stateGeneration: 0, records: [[`k${g}`, {} as never]], moved: [`k${g}`] }))
  assert.equal(listed(replica, 0), false)
  assert.deepEqual(listed(replica, 290), ['k291', 'k292', 'k293', 'k294', 'k295', 'k296', 'k297', 'k298', 'k299', 'k300'])
  assert.equal((listed(replica, 300 - 128) as string[]).length, 128, 'at least the last 128 deltas')
  assert.equal(replica.view.targets.size, 300)
})
