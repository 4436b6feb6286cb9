/**
 * What crosses the IPC channel between the control process (primary) and its DNS workers. The
 * channel uses Node's `advanced` serialization (the structured clone algorithm), so Maps, Sets,
 * Buffers and plain objects arrive as they were sent; class instances would arrive as plain objects
 * (their prototype lost) and functions cannot be sent at all. `cloneProblem` checks a value first.
 */
import type { HandlerOptions } from '../dns/handler.js'
import type { BoundAddress, ListenAddress, TcpOptions } from '../dns/server.js'
import type { ServedZoneSet } from '../model/types.js'
import type { HealthView } from '../health/poller.js'
import type { Removal } from '../metrics/index.js'
import type { MetricsJson } from './metrics.js'
import type { HealthDelta } from './health-sync.js'

/** A GeoIP database as sent to workers: the file's octets, and its path for messages. */
export interface GeoDbBytes {
  path: string
  bytes: Buffer
}

/** Everything a worker needs to answer DNS, sent once when it starts. */
export interface WorkerInit {
  type: 'init'
  listen: ListenAddress[]
  tcp: TcpOptions
  handler: Partial<HandlerOptions>
  /** The GeoIP database the control process answers from: its octets, not its path (the file on disk may have been replaced by one it refused). */
  geodb: GeoDbBytes
  logLevel: string
  zones: ServedZoneSet
  /** Sequence number of what the init carries (zones and GeoIP database), acknowledged with an `ack`. */
  seq: number
  health: HealthView
}

export type ToWorker =
  | WorkerInit
  /**
   * A new zone set, with the health update that goes with it (the poller has just added or removed
   * the set's checks): in one message, so that a worker never answers from a set that names a check
   * its health view does not have yet (an edited check's new key: unknown, i.e. up by default, even
   * for a down region) or from a view that lost the checks its set still names. `removed`: the
   * series the set takes away from the one before (the worker's last, as every set reaches every
   * worker in order): found once here rather than by every worker on the loop that answers DNS.
   */
  | { type: 'zones'; seq: number; zones: ServedZoneSet; removed: Removal[]; health?: HealthUpdate }
  | HealthUpdate
  | { type: 'metrics'; id: number }
  /**
   * The control process took a new GeoIP database: `bytes` are its octets from `offset` on, of
   * `size` in all. Sent a piece at a time, each once the last is written to the channel, so that
   * health and zone messages are not queued behind a whole database (tens of MB: ~1 s for 70 MB).
   * Once the last piece is in, the worker answers from it and acknowledges `seq`; until then its
   * acknowledgements of later messages stop short of `seq`. A newer database's first piece
   * supersedes one still arriving.
   */
  | { type: 'geodb-part'; seq: number; path: string; size: number; offset: number; bytes: Buffer }
  | { type: 'stop' }

/** What brings a worker's health view to the control process's: a whole view, or a delta. */
export type HealthUpdate = { type: 'health'; health: HealthView } | HealthDelta

export type FromWorker =
  | { type: 'hello' }
  | { type: 'ready'; pid: number; bound: BoundAddress[] }
  | { type: 'fatal'; message: string }
  /**
   * Every message up to `seq` (zones, GeoIP database) is what this worker answers from; `zones`:
   * the zone set it answers from, even while a GeoIP database still arriving holds `seq` back (the
   * control process sends a staggered set's second half once the first half has it).
   */
  | { type: 'ack'; seq: number; zones: number }
  /** Its counters, collected while it answered from the zone set of sequence number `seq`. */
  | { type: 'metrics'; id: number; seq: number; metrics: MetricsJson }

/**
 * Where `value` holds something the structured clone would not carry faithfully (a function, a
 * symbol, a class instance other than Map, Set, Array, Date, RegExp or a typed array/Buffer), as
 * a property path like `zones.get("x").regions.get("eu").location`; null when it is all plain data.
 */
export function cloneProblem(value: unknown, path = '', seen = new Set<object>()): string | null {
  const t = typeof value
  if (value === null || t === 'string' || t === 'number' || t === 'boolean' || t === 'undefined' || t === 'bigint') return null
  if (t === 'function' || t === 'symbol') return `${path || '(root)'} is a ${t}`
  const o = value as object
  if (seen.has(o)) return null
  seen.add(o)
  if (ArrayBuffer.isView(o) || o instanceof Date || o instanceof RegExp) return null
  if (o instanceof Map) {
    for (const [k, v] of o) {
      const p = cloneProblem(k, `${path}.keys()`, seen) ?? cloneProblem(v, `${path}.get(${JSON.stringify(k)})`, seen)
      if (p) return p
    }
    return null
  }
  if (o instanceof Set) {
    for (const v of o) {
      const p = cloneProblem(v, `${path}.values()`, seen)
      if (p) return p
    }
    return null
  }
  const proto = Object.getPrototypeOf(o) as unknown
  if (!Array.isArray(o) && proto !== Object.prototype && proto !== null) {
    const name = (o as { constructor?: { name?: string } }).constructor?.name ?? 'unknown'
    return `${path || '(root)'} is an instance of ${name} (it would arrive as a plain object)`
  }
  for (const k of Object.keys(o)) {
    const p = cloneProblem((o as Record<string, unknown>)[k], Array.isArray(o) ? `${path}[${k}]` : `${path}.${k}`, seen)
    if (p) return p
  }
  return null
}
