/**
 * A zone set as v8.serialize parts, read back one part per turn of the event loop.
 *
 * The build thread (build-thread.ts) hands a built set to the event loop as bytes. Read with one
 * `v8.deserialize`, a set of 5,000 services (2.3 MB) held the loop 26-80 ms, and the collections of
 * what it allocated as much again: in a one-process server (`--workers 1`, `auto` on one CPU) DNS
 * waited that long at every reload and admin change. Here the big collections of each zone (its
 * services, names, regions, and its definition's services, records and regions) go in parts of at
 * most PART_ENTRIES entries, after a first part holding the rest of the set, and the reader takes
 * one part per turn: DNS is answered between them.
 *
 * The set read is the one written (entries in order, every value as deserialize gives it) with
 * one difference: objects that two collections shared are no longer one object in the set read
 * (the SOA record a zone holds as `soa` and in its apex's records; a check's `expect` array in a
 * region's definition and in `checks`). Nothing compares them by identity.
 */
import { setImmediate } from 'node:timers/promises'
import v8 from 'node:v8'
import type { Zone, ZoneSet } from '../model/types.js'

/** Entries per part: a part of 500 services is ~100 KB and ~1-3 ms to read. */
export const PART_ENTRIES = 500

/** The collections of a zone that are split: Maps of the zone, records of its definition. */
const ZONE_MAPS = ['services', 'nodes', 'regions'] as const
const DEFINITION_RECORDS = ['services', 'records', 'regions'] as const
type ZoneMap = (typeof ZONE_MAPS)[number]
type DefinitionRecord = (typeof DEFINITION_RECORDS)[number]

/** A part after the first: entries of one collection of one zone (by its index in `set.zones`). */
interface Part {
  zone: number
  map?: ZoneMap
  record?: DefinitionRecord
  entries: [string, unknown][]
}

/** `set` as parts: the first with every split collection empty, then the entries, in order. */
export function serializeInParts(set: ZoneSet, partEntries = PART_ENTRIES): Buffer[] {
  const parts: Part[] = []
  const zones = new Map<string, Zone>()
  let z = 0
  for (const [origin, zone] of set.zones) {
    const shell: Record<string, unknown> = { ...zone }
    for (const key of ZONE_MAPS) {
      const map = zone[key] as ReadonlyMap<string, unknown>
      if (map.size <= partEntries) continue
      shell[key] = new Map()
      pushParts(parts, [...map], partEntries, (entries) => ({ zone: z, map: key, entries }))
    }
    const def = zone.definition
    if (def) {
      const defShell: Record<string, unknown> = { ...def }
      for (const key of DEFINITION_RECORDS) {
        const rec = def[key] as Record<string, unknown>
        const entries = Object.entries(rec)
        if (entries.length <= partEntries) continue
        defShell[key] = {}
        pushParts(parts, entries, partEntries, (e) => ({ zone: z, record: key, entries: e }))
      }
      shell.definition = defShell
    }
    zones.set(origin, shell as unknown as Zone)
    z++
  }
  return [v8.serialize({ ...set, zones }), ...parts.map((p) => v8.serialize(p))]
}

function pushParts(parts: Part[], entries: [string, unknown][], n: number, part: (entries: [string, unknown][]) => Part): void {
  for (let i = 0; i < entries.length; i += n) parts.push(part(entries.slice(i, i + n)))
}

/** Reads parts made by serializeInParts: the first at construction, the others with add(), in order. */
export class SetReader {
  private readonly set: ZoneSet
  private readonly zones: Zone[]

  constructor(first: Uint8Array) {
    this.set = v8.deserialize(first) as ZoneSet
    this.zones = [...this.set.zones.values()]
  }

  add(bytes: Uint8Array): void {
    const part = v8.deserialize(bytes) as Part
    const zone = this.zones[part.zone]
    if (!zone || !Array.isArray(part.entries)) throw new Error(`a zone set part names no zone of the set (zone ${String(part.zone)})`)
    if (part.map !== undefined && ZONE_MAPS.includes(part.map)) {
      const map = zone[part.map] as Map<string, unknown>
      for (const [k, v] of part.entries) map.set(k, v)
    } else if (part.record !== undefined && DEFINITION_RECORDS.includes(part.record) && zone.definition) {
      const rec = zone.definition[part.record] as Record<string, unknown>
      // Defined, not assigned: a name such as `__proto__` is an entry like any other.
      for (const [k, v] of part.entries) Object.defineProperty(rec, k, { value: v, writable: true, enumerable: true, configurable: true })
    } else {
      throw new Error(`a zone set part names no collection of zone ${zone.origin}`)
    }
  }

  /** The set, once every part was added. */
  done(): ZoneSet {
    return this.set
  }
}

/** Reads `parts` (serializeInParts's, in order) one per turn of the event loop, so DNS is answered between them. */
export async function readInParts(parts: readonly Uint8Array[]): Promise<ZoneSet> {
  const reader = new SetReader(parts[0]!)
  for (let i = 1; i < parts.length; i++) {
    // setImmediate, not a microtask: the loop polls for I/O (the DNS sockets) between two parts.
    await setImmediate()
    reader.add(parts[i]!)
  }
  return reader.done()
}
