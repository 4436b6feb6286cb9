import type { ServedZone, ServedZoneSet } from '../model/types.js'

/** Index just past the first label of `name`, skipping dots escaped as `\.` (labels that hold a dot). */
function firstLabelEnd(name: string): number {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === 92 /* \ */) i++
    else if (c === 46 /* . */) return i
  }
  return -1
}

/** The zone that holds `qkey`: the longest origin that is a suffix of it, or undefined. */
export function findZone(set: ServedZoneSet, qkey: string): ServedZone | undefined {
  let name = qkey
  for (;;) {
    const z = set.zones.get(name)
    if (z) return z
    if (name === '') return undefined
    const dot = firstLabelEnd(name)
    name = dot < 0 ? '' : name.slice(dot + 1)
  }
}

/**
 * The zone of the set that `zone` is nested in (the parent side of its cut), or undefined when the
 * set serves none above it: the zone that holds the name just above `zone`'s origin.
 */
export function enclosingZone(set: ServedZoneSet, zone: ServedZone): ServedZone | undefined {
  if (zone.origin === '') return undefined
  const dot = firstLabelEnd(zone.origin)
  return findZone(set, dot < 0 ? '' : zone.origin.slice(dot + 1))
}
