/**
 * The health view's way from the control process's poller to the DNS workers. A view of 5,000
 * checks is a Map of 5,000 records: cloned whole for every state change it kept the control
 * process busy serializing (one view per change, 5,000 changes as the checks come up at start-up)
 * and starved its own poller. So the control process sends a whole view only when it must (to a
 * new worker, after a membership change or a state load, or when it is further behind than the
 * poller's list of moves), and otherwise the records of the checks that moved since the last view
 * it sent (HealthPoller.movedSince), which the worker writes into its copy.
 *
 * The worker keeps the keys each delta named, so its answer cache compares only those checks when
 * the generation moves (the `movedSince` of GslbContext), as the one-process server does with the
 * poller's own list.
 */
import type { HealthView } from '../health/poller.js'
import type { TargetHealth } from '../health/state.js'

/** The records that changed after generation `from`, and the generations they bring the view to. */
export interface HealthDelta {
  type: 'health-delta'
  from: number
  generation: number
  stateGeneration: number
  records: [string, TargetHealth][]
}

/** What the control process reads of its poller. */
export interface HealthSource {
  view(): HealthView
  movedSince(generation: number, visit: (key: string) => void): boolean
}

/** A whole view as plain data (the poller's map is a class the structured clone would not keep). */
export const plainHealth = (view: HealthView): HealthView => ({ generation: view.generation, stateGeneration: view.stateGeneration, targets: new Map(view.targets) })

/**
 * The message that brings workers holding generation `sent` (-1: none yet) to the poller's current
 * view: a delta when the poller can list what moved since, else the whole view; null when there is
 * nothing new.
 */
export function healthUpdate(source: HealthSource, sent: number): HealthDelta | { type: 'health'; health: HealthView } | null {
  const view = source.view()
  if (view.generation === sent) return null
  const keys = new Set<string>()
  if (sent >= 0 && source.movedSince(sent, (k) => keys.add(k))) {
    const records: [string, TargetHealth][] = []
    for (const k of keys) {
      const h = view.targets.get(k)
      // A listed target that is gone would be a membership change, which the poller does not list.
      if (h === undefined) return { type: 'health', health: plainHealth(view) }
      records.push([k, h])
    }
    return { type: 'health-delta', from: sent, generation: view.generation, stateGeneration: view.stateGeneration, records }
  }
  return { type: 'health', health: plainHealth(view) }
}

/** Deltas a worker remembers for movedSince (older ones: its cache compares every check). */
const KEPT_DELTAS = 256

/** A worker's copy of the health view, kept up to date by whole views and deltas. */
export class HealthReplica {
  private current: HealthView
  private targets: Map<string, TargetHealth>
  /** The generation each remembered delta brought the view to, and the keys it named. */
  private readonly deltas: { generation: number; keys: string[] }[] = []
  /** movedSince lists moves after this generation only. */
  private listedFrom: number

  constructor(view: HealthView) {
    this.targets = new Map(view.targets)
    this.current = { generation: view.generation, stateGeneration: view.stateGeneration, targets: this.targets }
    this.listedFrom = view.generation
  }

  /** The current view: what `health` and `generations` read. */
  get view(): HealthView {
    return this.current
  }

  /** A whole view replaces everything: nothing before it is listed. */
  replace(view: HealthView): void {
    this.targets = new Map(view.targets)
    this.current = { generation: view.generation, stateGeneration: view.stateGeneration, targets: this.targets }
    this.deltas.length = 0
    this.listedFrom = view.generation
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
    if (this.deltas.length >= KEPT_DELTAS) this.listedFrom = this.deltas.splice(0, KEPT_DELTAS / 2).at(-1)!.generation
    this.deltas.push({ generation: d.generation, keys: d.records.map(([k]) => k) })
    return true
  }

  /** As HealthPoller.movedSince, from the deltas received: false when `generation` is before what they cover. */
  movedSince(generation: number, visit: (key: string) => void): boolean {
    if (generation < this.listedFrom || generation > this.current.generation) return false
    for (const d of this.deltas) if (d.generation > generation) for (const k of d.keys) visit(k)
    return true
  }
}
