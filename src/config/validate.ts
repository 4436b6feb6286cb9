import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import * as ajvFormats from 'ajv-formats'
import { zoneSchema } from './schema.js'

// ajv-formats ships CommonJS with a default export; under NodeNext it arrives wrapped once or twice.
type AddFormats = (ajv: Ajv, formats: string[]) => Ajv
const addFormats: AddFormats = ((m: unknown): AddFormats => {
  while (typeof m !== 'function') m = (m as { default: unknown }).default
  return m as AddFormats
})(ajvFormats)

export interface SchemaProblem {
  /** Key path as segments (`['records', 'www', 'A', 0]`). */
  path: (string | number)[]
  /** For an unknown key: the key itself, so the position can point at it. */
  key?: string
  message: string
  /**
   * The value the schema refused, as a key path: `path` itself, or the key inside it that is
   * unknown, missing or a bad name (`['regions', 'EU']`). The semantic checks skip what depends on it.
   */
  refused: (string | number)[]
}

let compiled: ValidateFunction | undefined

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true })
    ajv.addKeyword({ keyword: 'x-message' })
    addFormats(ajv, ['ipv4', 'ipv6'])
    compiled = ajv.compile(zoneSchema)
  }
  return compiled
}

/**
 * An error's instance path as key path segments: an index into a list is a number, a key of a
 * mapping a string even when it is digits (a region `1`, an owner `123`), as the checks beyond the
 * schema (Object.entries) and the document write it; else a refused value there would pass for taken.
 */
function pathOf(instancePath: string, doc: unknown): (string | number)[] {
  if (!instancePath) return []
  let at: unknown = doc
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => {
      const seg = Array.isArray(at) && /^\d+$/.test(s) ? Number(s) : s
      at = at !== null && typeof at === 'object' ? (at as Record<string | number, unknown>)[seg] : undefined
      return seg
    })
}

/** A value as an error shows it: its JSON, but a number JSON has no text for (`1e400` reads as Infinity) as itself, not "null". */
const shown = (v: unknown): string => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v))

/** The message of an error; `key`, where the position points at a key; `inside`, the key of the value refused inside the path. */
function describe(e: ErrorObject): { message: string; key?: string; inside?: string } {
  const custom = (e.parentSchema as Record<string, unknown> | undefined)?.['x-message']
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty)
      const allowed = Object.keys(((e.parentSchema as { properties?: object })?.properties) ?? {})
      return { key, inside: key, message: `unknown key "${key}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}` }
    }
    case 'propertyNames': {
      const name = String((e.params as { propertyName: string }).propertyName)
      return { inside: name, message: `name "${name}" may hold only lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)` }
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty
      return { inside: missing, message: `missing required key "${missing}"` }
    }
    default:
      if (typeof custom === 'string') return { message: `${custom}, got ${shown(e.data)}` }
      return { message: `${e.message ?? 'is invalid'}, got ${shown(e.data)}` }
  }
}

/** Whether error `e` is about the value of error `a` or a value inside it. */
const within = (e: ErrorObject, a: ErrorObject): boolean => e.instancePath === a.instancePath || e.instancePath.startsWith(a.instancePath + '/')

/**
 * Validates (and fills defaults into) a parsed zone document. Returns every problem, with the
 * noise of anyOf branches folded into the anyOf's own message.
 */
export function validateZoneDocument(doc: unknown): SchemaProblem[] {
  const validate = validator()
  if (validate(doc)) return []
  const errors = validate.errors ?? []
  // A failed anyOf reports every branch. Keep the branch that has the data's JSON type (a list for
  // a list, an object for an object) so that the message points inside it; when no branch has that
  // type, keep only the anyOf's own message.
  const dropped = new Set<ErrorObject>()
  for (const a of errors) {
    if (a.keyword !== 'anyOf') continue
    const base = a.schemaPath + '/'
    const branches = a.schema as { type?: string }[]
    const kind = Array.isArray(a.data) ? 'array' : a.data === null ? 'null' : typeof a.data === 'number' ? (Number.isInteger(a.data) ? 'integer' : 'number') : typeof a.data
    // Its branches' errors: under its schema path AND at or under its value (one schema checks
    // every record set, so another owner's error has the same schema path).
    const inner = errors.filter((e) => e !== a && e.schemaPath.startsWith(base) && within(e, a))
    // Among branches of the data's type, the one with the fewest errors is the one meant.
    let keep = -1
    let fewest = Infinity
    branches.forEach((b, i) => {
      if (!(b.type === kind || (b.type === 'number' && kind === 'integer'))) return
      const n = inner.filter((e) => e.schemaPath.startsWith(`${base}${i}/`)).length
      if (n < fewest) {
        fewest = n
        keep = i
      } else if (n === fewest) {
        keep = -1 // a tie: no branch is clearly meant, the anyOf's own message says it best
      }
    })
    const kept = inner.filter((e) => keep >= 0 && e.schemaPath.startsWith(`${base}${keep}/`))
    for (const e of inner) if (!kept.includes(e)) dropped.add(e)
    if (kept.length > 0) dropped.add(a)
  }
  // A name refused by propertyNames is reported by it once, not again by its inner pattern.
  for (const a of errors) {
    if (a.keyword !== 'propertyNames') continue
    const name = (a.params as { propertyName: string }).propertyName
    for (const e of errors) if (e !== a && e.schemaPath.startsWith(a.schemaPath + '/') && within(e, a) && (e as ErrorObject & { propertyName?: string }).propertyName === name) dropped.add(e)
  }
  const out: SchemaProblem[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    if (dropped.has(e)) continue
    const { message, key, inside } = describe(e)
    const path = pathOf(e.instancePath, doc)
    const id = path.join('.') + '|' + message
    if (seen.has(id)) continue
    seen.add(id)
    const refused = inside === undefined ? path : [...path, inside]
    out.push(key === undefined ? { path, message, refused } : { path, key, message, refused })
  }
  return out
}
