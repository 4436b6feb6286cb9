/**
 * The health view's way from the control process's poller to the DNS workers. A view of 5,000
 * checks is a Map of 5,000 records: cloned whole for every state change it kept the control
 * process busy serializing (one view per change, 5,000 changes as the checks come up at start-up)
 * and starved its own poller. So the control process (HealthSender) sends a whole view only when
 * it must (to a worker that starts, and when the poller cannot list what moved: after a
 * membership change or a state load, or when it is further behind than the poller's list), and
 * otherwise a delta: every record that is not the one it sent last (a record is replaced, never
 * changed, so identity says it), which the worker writes into its copy (HealthReplica). So the
 * workers' records are as fresh as the one-process server's at every send, per-round numbers
 * included, and a send costs what changed since the last one.
 *
 * A delta also names the checks that moved (state or latency: HealthPoller.movedSince); the worker
 * keeps those names, so its answer cache compares only those checks when the generation moves
 * (the `movedSince` of GslbContext), as the one-process server does with the poller's own list.
 */
import type { HealthView } from '../health/poller.js'
import type { TargetHealth } from '../health/state.js'
import { MoveLog } from '../health/moves.js'
import type { HealthUpdate } from './protocol.js'

/** The records that changed after generation `from`, the checks that moved, and the generations they bring the view to. */
export interface HealthDelta {
  type: 'health-delta'
  from: number
  generation: number
  stateGeneration: number
  records: [string, TargetHealth][]
  /** The checks whose state or latencyGen changed after `from` (each once). */
  moved: string[]
}

/** What the control process reads of its poller. */
export interface HealthSource {
  view(): HealthView
  movedSince(generation: number, visit: (key: string, at: number) => void): boolean
}

/** A whole view as plain data (the poller's map is a class the structured clone would not keep). */
export const plainHealth = (view: HealthView): HealthView => ({ generation: view.generation, stateGeneration: view.stateGeneration, targets: new Map(view.targets) })

/** The control process's side: what the workers were sent, and what to send them next. */
export class HealthSender {
  /** The generation every started worker has at least (-1: none sent yet). */
  private sent = -1
  /** The records sent with it (what the worker that was sent the least has). */
  private records = new Map<string, TargetHealth>()

  constructor(private readonly source: HealthSource) {}

  /**
   * The whole current view, for a worker that starts. When it is the only worker (`others`
   * false: none started, or all of them died), later deltas count from it; else from what the
   * others were sent, which is older (a delta's records are current, so it applies to both).
   */
  initial(others: boolean): HealthView {
    const view = plainHealth(this.source.view())
    if (!others) {
      this.sent = view.generation
      this.records = new Map(view.targets)
    }
    return view
  }

  /** What brings every started worker to the poller's current view, or null when its generation has not moved. */
  update(): HealthUpdate | null {
    const view = this.source.view()
    if (view.generation === this.sent) return null
    const moved = new Set<string>()
    if (this.sent >= 0 && this.source.movedSince(this.sent, (k) => moved.add(k))) {
      const records: [string, TargetHealth][] = []
      for (const [k, h] of view.targets) {
        if (this.records.get(k) === h) continue
        records.push([k, h])
        this.records.set(k, h)
      }
      const delta: HealthDelta = { type: 'health-delta', from: this.sent, generation: view.generation, stateGeneration: view.stateGeneration, records, moved: [...moved] }
      this.sent = view.generation
      return delta
    }
    const health = plainHealth(view)
    this.sent = view.generation
    this.records = new Map(health.targets)
    return { type: 'health', health }
  }
}

/** Deltas a worker remembers for movedSince (older ones: its cache compares every check). */
const KEPT_DELTAS = 256

/** A worker's copy of the health view, kept up to date by whole views and deltas. */
export class HealthReplica {
  private current!: HealthView
  private targets!: Map<string, TargetHealth>
  /** The checks each delta applied named as moved. */
  private readonly moves = new MoveLog(KEPT_DELTAS)

  constructor(view: HealthView) {
    this.replace(view)
  }

  /** The current view: what `health` and `generations` read. */
  get view(): HealthView {
    return this.current
  }

  /** A whole view replaces everything: nothing before it is listed. */
  replace(view: HealthView): void {
    this.targets = new Map(view.targets)
    this.current = { generation: view.generation, stateGeneration: view.stateGeneration, targets: this.targets }
    this.moves.reset(view.generation)
  }

  /**
   * Applies a delta. Its records are the targets' current ones, so a delta from before this
   * view's generation (sent to every worker, one of which started later) applies as well; one from
   * after it would mean a lost message: false, and nothing changes.
   */
  apply(d: HealthDelta): boolean {
    if (d.from > this.current.generation) return false
    if (d.generation <= this.current.generation) return true
    for (const [k, h] of d.records) this.targets.set(k, h)
    this.current = { generation: d.generation, stateGeneration: d.stateGeneration, targets: this.targets }
    // Stamped on arrival: this worker's clock, a few ms after the control process made the moves.
    this.moves.add(d.generation, d.moved, performance.now())
    return true
  }

  /** As HealthPoller.movedSince, from the deltas received: false when `generation` is before what they cover. */
  movedSince(generation: number, visit: (key: string, at: number) => void): boolean {
    return this.moves.since(generation, this.current.generation, visit)
  }
}
