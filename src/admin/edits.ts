/**
 * The admin API's changes to a zone file as data (an EditOp) and the one function that makes them
 * on the file's YAML document (applyEdit). Data, not closures, so that a change can be made where
 * the zone set is built (the build thread, src/config/build-thread.ts): parsing a zone file of
 * 1,000 services, rendering it back and checking the rendering took ~0.3 s, on the event loop
 * that answers DNS in a one-process server.
 */
import type { Document } from 'yaml'
import { canonical, isInZone, resolveName } from '../model/name.js'
import type { Zone } from '../model/types.js'
import { deleteAt, isPlainObject, keysAt, mergePatch, mergePatchAt, setAt, valueAt } from '../store/zone-editor.js'
import { conflict, notFound } from './errors.js'
import { assertEntry, withoutUnwrittenDefaults, type Section } from './validate.js'

/** Keys a PATCH replaces whole instead of merging (RFC 7396 would merge `{ country }` into `{ lat, lon }`). */
const WHOLE: Record<Section, string[]> = { regions: ['location'], services: [] }

/** At most this many names are listed in a 404 (the zones served, a zone's regions or services). */
const LISTED_NAMES = 20

/** `names` for a 404's message: `a, b, c`, the first LISTED_NAMES and how many more, or `none`. */
export function listed(names: readonly string[]): string {
  if (names.length === 0) return 'none'
  const shown = names.slice(0, LISTED_NAMES).join(', ')
  return names.length > LISTED_NAMES ? `${shown} and ${names.length - LISTED_NAMES} more` : shown
}

/** The name a URL gives a service: a full name inside the zone, or a name relative to the origin. */
export function serviceTarget(param: string, origin: string): string {
  const c = canonical(param)
  return param.trim().endsWith('.') || isInZone(c, origin) ? c : resolveName(param, origin)
}

/** The key of `keys` (owner names as a zone file writes them) that names `target` (canonical). */
export const ownerKey = (keys: readonly string[], origin: string, target: string): string | undefined => keys.find((k) => resolveName(k, origin) === target)

/** The key among `keys` (a zone's regions or services) of the entry a URL names. */
export const entryKey = (section: Section, keys: readonly string[], origin: string, param: string): string | undefined =>
  section === 'regions' ? (keys.includes(param) ? param : undefined) : ownerKey(keys, origin, serviceTarget(param, origin))

/** What a 404 of an edit says of the zone served: its origin, and the names of its regions and services. */
export interface EditZone {
  origin: string
  regions: string[]
  services: string[]
}

/** The EditZone of a served zone. */
export const editZone = (zone: Zone): EditZone => ({ origin: zone.origin, regions: Object.keys(zone.definition.regions), services: Object.keys(zone.definition.services) })

export const missing = (kind: 'region' | 'service', name: string, zone: EditZone) =>
  notFound(`no ${kind} ${name} in zone ${zone.origin} (${kind === 'region' ? 'regions' : 'services'}: ${listed(kind === 'region' ? zone.regions : zone.services)})`)

/** A change of one zone file: the admin API's routes, as data. */
export type EditOp =
  /** POST to a list: `key` new, `rest` its definition (a service's key as the file will write it). */
  | { op: 'create'; section: Section; name: string; key: string; rest: Record<string, unknown> }
  /** PUT: the entry the URL names (`p`) replaced by `body`. */
  | { op: 'replace'; section: Section; p: string; body: Record<string, unknown> }
  /** PATCH: `body` merged into it (RFC 7396), WHOLE keys replaced. */
  | { op: 'patch'; section: Section; p: string; body: Record<string, unknown> }
  /** DELETE; a region named by services only with `detach` (taken out of their lists). */
  | { op: 'delete'; section: Section; p: string; detach: boolean }
  | { op: 'drain' | 'undrain'; region: string }

const kindOf = (section: Section) => (section === 'regions' ? 'region' : 'service')

/** Makes `op` on `doc` (the zone file's document); throws the API's 404s and 409s, changing nothing then. */
export function applyEdit(doc: Document, op: EditOp, zone: EditZone): void {
  switch (op.op) {
    case 'create': {
      const { section, name, key, rest } = op
      if (entryKey(section, keysAt(doc, [section]), zone.origin, key) !== undefined) {
        throw conflict(`${kindOf(section)} ${name} exists already in zone ${zone.origin}; change it with PUT or PATCH`)
      }
      if (section === 'services') {
        const target = resolveName(key, zone.origin)
        const record = ownerKey(keysAt(doc, ['records']), zone.origin, target)
        if (record !== undefined) throw conflict(`${target} holds static records (records.${record}); a name is either a record set or a service`)
      }
      setAt(doc, [section, key], rest)
      return
    }
    case 'replace': {
      const key = keyIn(doc, zone, op.section, op.p)
      const rest = withoutUnwrittenDefaults(op.section, op.body, valueAt(doc, [op.section, key]))
      assertEntry(op.section, key, rest)
      setAt(doc, [op.section, key], rest)
      return
    }
    case 'patch': {
      const { section, body } = op
      // A location is one of three shapes: a patch replaces it whole rather than merging two of them.
      const whole = Object.fromEntries(Object.entries(body).filter(([k, v]) => WHOLE[section].includes(k) && v !== null))
      const key = keyIn(doc, zone, section, op.p)
      const current = valueAt(doc, [section, key])
      // Object.hasOwn, not `in`: `in` finds Object.prototype's members, and a patch's `toString` or
      // `constructor` was dropped here unchecked (200, nothing changed) instead of being an unknown key.
      const patch = withoutUnwrittenDefaults(section, Object.fromEntries(Object.entries(body).filter(([k]) => !Object.hasOwn(whole, k))), current)
      assertEntry(section, key, { ...(mergePatch(isPlainObject(current) ? current : {}, patch) as object), ...whole })
      mergePatchAt(doc, [section, key], patch)
      for (const [k, v] of Object.entries(whole)) setAt(doc, [section, key, k], v)
      return
    }
    case 'delete': {
      const { section, detach } = op
      const key = keyIn(doc, zone, section, op.p)
      if (section === 'regions') {
        // Each service's `regions:` as written (a list, `all`, or absent: all).
        const listedIn = keysAt(doc, ['services']).map((s) => [s, valueAt(doc, ['services', s, 'regions'])] as const)
        const users = listedIn.filter(([, list]) => Array.isArray(list) && list.includes(key)).map(([s]) => s)
        if (users.length > 0 && !detach) {
          throw conflict(
            `region ${key} is still named by service(s) ${users.join(', ')}; remove it from them first, or DELETE with ?detach=true`,
            users.map((s) => ({ path: `services.${s}.regions`, message: `names region ${key}` })),
          )
        }
        // The last region: a service answering from every region (regions: all, the default) would
        // be left with none, as a list would with ?detach (below): the same 409, not a 400 of the rebuild.
        if (keysAt(doc, ['regions']).length === 1) {
          const everyRegion = listedIn.filter(([, list]) => list === undefined || list === 'all').map(([s]) => s)
          if (everyRegion.length > 0) {
            throw conflict(
              `region ${key} is the last of zone ${zone.origin}, and service(s) ${everyRegion.join(', ')} answer from every region (regions: all); delete them or add another region first`,
              everyRegion.map((s) => ({ path: `services.${s}.regions`, message: 'all: would be left with no region' })),
            )
          }
        }
        for (const s of users) {
          const list = valueAt(doc, ['services', s, 'regions']) as unknown[]
          if (list.length === 1) throw conflict(`service ${s} answers only from region ${key}; delete the service or give it another region first`, [{ path: `services.${s}.regions`, message: `names only region ${key}` }])
          deleteAt(doc, ['services', s, 'regions', list.indexOf(key)])
        }
      }
      deleteAt(doc, [section, key])
      return
    }
    case 'drain':
    case 'undrain':
      if (!keysAt(doc, ['regions']).includes(op.region)) throw missing('region', op.region, zone)
      // Undrain removes the key (false is its default), so that a drain and an undrain leave the
      // file as it was: drain added `drained: true` to a region that did not write it.
      if (op.op === 'drain') setAt(doc, ['regions', op.region, 'drained'], true)
      else deleteAt(doc, ['regions', op.region, 'drained'])
      return
  }
}

/** The key of the entry `p` names in the document; a 404 when there is none. */
function keyIn(doc: Document, zone: EditZone, section: Section, p: string): string {
  const key = entryKey(section, keysAt(doc, [section]), zone.origin, p)
  if (key === undefined) throw missing(kindOf(section), p, zone)
  return key
}
