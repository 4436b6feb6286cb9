/**
 * A real HealthPoller whose clocks, timers and checks the test drives by hand: no sockets, no
 * waiting. Each round the test fires the timers and ends every check with the result it gives.
 */
import assert from 'node:assert/strict'
import { createLogger } from '../../src/log.js'
import { HealthPoller, type Check, type CheckResult, type CheckSpec, type ResolvedSpec } from '../../src/health/index.js'
import { ManualTimers, settle } from './timers.js'

/** A check whose rounds the test ends by hand. */
export class FakeCheck implements Check {
  calls = 0
  private ends: ((r: CheckResult) => void)[] = []
  constructor(readonly spec: ResolvedSpec) {}
  run(): Promise<CheckResult> {
    this.calls++
    return new Promise((resolve) => this.ends.push(resolve))
  }
  finish(r: CheckResult): void {
    this.ends.shift()!(r)
  }
}

export const ok = (latencyMs: number): CheckResult => ({ ok: true, latencyMs, status: 200 })
export const FAIL: CheckResult = { ok: false, latencyMs: 1, error: 'ECONNREFUSED' }
export const spec = (port: number, extra: Partial<CheckSpec> = {}): CheckSpec => ({ kind: 'http', address: '127.0.1.1', port, intervalMs: 1000, timeoutMs: 500, ...extra })

export function manualPoller() {
  const timers = new ManualTimers()
  const checks = new Map<number, FakeCheck>()
  const clock = { mono: 0 }
  const poller = new HealthPoller({
    log: createLogger('silent'),
    now: () => 1_000_000 + clock.mono,
    monotonic: () => clock.mono,
    rand: () => 0,
    timers,
    createCheck: (s) => {
      const c = new FakeCheck(s)
      checks.set(s.port, c)
      return c
    },
  })
  /** One round of every target: the timers fire, each check ends with the result given for its port, in that order. */
  const rounds = async (results: Record<number, CheckResult>): Promise<void> => {
    assert.ok(timers.pending.size > 0, 'rounds are scheduled')
    timers.fire()
    await settle()
    for (const [port, r] of Object.entries(results)) checks.get(Number(port))!.finish(r)
    await settle()
  }
  /** One round of the only target, on `port`. */
  const round = (port: number, r: CheckResult): Promise<void> => rounds({ [port]: r })
  return { poller, timers, checks, clock, round, rounds }
}
