/** Timers in a test's hands (the poller's `timers` seam): nothing fires until the test says so. */
import type { Timers } from '../../src/health/index.js'

/** Lets promise callbacks and I/O callbacks queued now run. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

export class ManualTimers implements Timers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>()
  private id = 0
  set(fn: () => void, ms: number): number {
    this.pending.set(++this.id, { fn, ms })
    return this.id
  }
  clear(h: unknown): void {
    this.pending.delete(h as number)
  }
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.ms)
  }
  /** Fires every timer pending now (the rounds they start are left to the test). */
  fire(): void {
    const due = [...this.pending.values()]
    this.pending.clear()
    for (const t of due) t.fn()
  }
  /** Fires every timer pending now, then lets the rounds they start settle. */
  async tick(): Promise<void> {
    this.fire()
    await settle()
  }
}
