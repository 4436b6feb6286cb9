/**
 * Which targets moved (changed state, or published a new latency) in which health generation, for
 * readers that keep per-target state and want to compare only what moved (the answer cache).
 * HealthPoller keeps one (a key per generation it makes); a DNS worker's HealthReplica another (the
 * names in each delta it applies). Bounded: past `max` entries the older half goes, and a reader
 * asking from before what is kept, or from before a reset, gets false: it must compare every target.
 */
export class MoveLog {
  /** In generation order; `at`: when the move was made, on the reader's monotonic clock (NaN: not known). */
  private readonly entries: { generation: number; keys: readonly string[]; at: number }[] = []
  /** Moves after this generation are listed (all of them, up to the current one). */
  private from: number

  constructor(
    private readonly max: number,
    generation = 0,
  ) {
    this.from = generation
  }

  /** Nothing up to `generation` is known target by target any more (a whole view, a membership change). */
  reset(generation: number): void {
    this.entries.length = 0
    this.from = generation
  }

  /** `keys` moved in `generation` (later than every generation added before), at time `at` (performance.now(), NaN: not known). */
  add(generation: number, keys: readonly string[], at = NaN): void {
    if (this.entries.length >= this.max) this.from = this.entries.splice(0, this.max / 2).at(-1)!.generation
    this.entries.push({ generation, keys, at })
  }

  /**
   * Calls `visit` with every key that moved after `generation` and when (a key may come more than
   * once, earliest first) and returns true; false without calling it when that is not known (`generation` before what is
   * kept, or after `current`, the generation the reader's source is at).
   */
  since(generation: number, current: number, visit: (key: string, at: number) => void): boolean {
    if (generation < this.from || generation > current) return false
    // The first entry after `generation`: a binary search, as a reader asks at every move.
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.entries[mid]!.generation <= generation) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < this.entries.length; i++) {
      const e = this.entries[i]!
      for (const k of e.keys) visit(k, e.at)
    }
    return true
  }
}
