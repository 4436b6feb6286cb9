import type { Zone, ZoneSet } from '../model/types.js'

/** The zone that holds `qkey`: the longest origin that is a suffix of it, or undefined. */
export function findZone(set: ZoneSet, qkey: string): Zone | undefined {
  let name = qkey
  for (;;) {
    const z = set.zones.get(name)
    if (z) return z
    if (name === '') return undefined
    const dot = name.indexOf('.')
    name = dot < 0 ? '' : name.slice(dot + 1)
  }
}
