/**
 * Request bodies are checked by the zone schema itself (config/validate.ts, Ajv with the messages of
 * zone files): a region or service body is placed in a minimal zone document and validated there,
 * and each problem's key path is made relative to the body. One schema, one set of messages.
 */
import { isDeepStrictEqual } from 'node:util'
import { checkSchema, regionSchema, serviceSchema, zoneSchema } from '../config/schema.js'
import { validateZoneDocument } from '../config/validate.js'
import { isPlainObject } from '../store/zone-editor.js'
import { badRequest, invalid, type ErrorDetail } from './errors.js'

export type Section = 'regions' | 'services'

/** A zone document that is valid but for the entry under test. */
const frame = () => ({ origin: 'validate.invalid', soa: { mname: 'ns', rname: 'hostmaster' }, ns: ['ns'] })

/** Every problem of `value` as the definition of `section.name`, with paths relative to the body. */
function entryProblems(section: Section, name: string, value: unknown): ErrorDetail[] {
  const doc = { ...frame(), [section]: { [name]: structuredClone(value) } }
  const problems = validateZoneDocument(doc)
  // A bad region name fails both its pattern and the propertyNames rule: keep the latter's message.
  const named = problems.some((p) => (p.path[0] !== section || p.path[1] !== name) && p.message.startsWith('name "'))
  return problems.flatMap((p) => {
    if (p.path[0] !== section || p.path[1] !== name) return named && !p.message.startsWith('name "') ? [] : [{ path: 'name', message: p.message }]
    return [{ path: bodyPath(p, 2), message: p.message }]
  })
}

/** A schema problem's key path from depth `from` on, as the body writes it: a missing key is named too. */
function bodyPath(p: ReturnType<typeof validateZoneDocument>[number], from: number): string {
  const path = [...p.path.slice(from), ...(p.key === undefined ? [] : [p.key])]
  const missing = /^missing required key "(.+)"$/.exec(p.message)
  if (missing) path.push(missing[1]!)
  return path.join('.')
}

/** Throws a 400 (E_ZONE_SCHEMA) naming every problem of the entry. */
export function assertEntry(section: Section, name: string, value: unknown): void {
  const problems = entryProblems(section, name, value)
  if (problems.length > 0) throw invalid(problems)
}

/** The body as an object, or a 400 saying what it is instead. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) throw badRequest('a JSON object body is required (Content-Type: application/json)')
  if (!isPlainObject(body)) throw badRequest(`the body must be a JSON object, got ${Array.isArray(body) ? 'an array' : JSON.stringify(body)}`)
  return body
}

/**
 * Splits `name` off a body. `required`: it must be there (create); otherwise, when present it must
 * name what `expected` (the name in the URL) names, by `same` (default: equal): a GET answer can be
 * sent back as it is, whichever way the URL writes the name, but not renamed.
 */
export function takeName(body: Record<string, unknown>, opts: { required: true } | { expected: string; same?: (name: string) => boolean }): { name: string; rest: Record<string, unknown> } {
  const { name, ...rest } = body
  if ('required' in opts) {
    if (name === undefined) throw invalid([{ path: 'name', message: 'missing required key "name"' }])
    if (typeof name !== 'string' || name.length === 0) throw invalid([{ path: 'name', message: `must be a non-empty string, got ${JSON.stringify(name)}` }])
    return { name, rest }
  }
  if (name !== undefined && name !== opts.expected && !(typeof name === 'string' && opts.same?.(name))) {
    throw badRequest(`is ${JSON.stringify(name)} but the URL names ${JSON.stringify(opts.expected)}; renaming is not supported (create the new one, then delete the old)`, 'name')
  }
  return { name: opts.expected, rest }
}

type Props = { properties: Record<string, { default?: unknown }> }
const defaultsOf = (schema: Props): Map<string, unknown> => new Map(Object.entries(schema.properties).flatMap(([k, v]) => ('default' in v ? [[k, v.default]] : [])))
const DEFAULTS: Record<Section, Map<string, unknown>> = { regions: defaultsOf(regionSchema as Props), services: defaultsOf(serviceSchema as Props) }
const CHECK_DEFAULTS = defaultsOf(checkSchema as Props)

/**
 * `body` without the keys that hold their default and that `current` (the entry as the file writes
 * it; undefined for a new one) does not write, in a region's check too. What GET shows (defaults
 * filled in) sent back then writes nothing the file did not say: the file, its ETag and what later
 * edits do stay as they were. Keys the file writes are kept, default or not.
 */
export function withoutUnwrittenDefaults(section: Section, body: Record<string, unknown>, current: unknown): Record<string, unknown> {
  return strip(body, DEFAULTS[section], current, section === 'regions')
}

function strip(body: Record<string, unknown>, defaults: Map<string, unknown>, current: unknown, region: boolean): Record<string, unknown> {
  const written = isPlainObject(current) ? current : {}
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(body)) {
    if (!(k in written) && defaults.has(k) && isDeepStrictEqual(v, defaults.get(k))) continue
    out[k] = region && k === 'check' && isPlainObject(v) ? strip(v, CHECK_DEFAULTS, written.check, false) : v
  }
  return out
}

/** Throws a 400 (E_ZONE_SCHEMA) naming every problem of a whole zone definition (POST /v1/zones), by key path in the body. */
export function assertZone(body: Record<string, unknown>): void {
  const problems = validateZoneDocument(structuredClone(body)).map((p) => ({ path: bodyPath(p, 0), message: p.message }))
  if (problems.length > 0) throw invalid(problems)
}

const ZONE_DEFAULTS = defaultsOf(zoneSchema as unknown as Props)
const SOA_DEFAULTS = defaultsOf(zoneSchema.properties.soa as unknown as Props)

/**
 * A zone definition (the schema holds it) with its keys in the schema's order (origin, ttl, soa, ns,
 * records, ..., services) and without those that hold their default, in its SOA, regions (their
 * checks too) and services as well: what an operator would write, so a GET answer sent back as a new
 * zone makes a file as short as the one it came from could be.
 */
export function withoutZoneDefaults(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(zoneSchema.properties)) {
    if (!(key in body)) continue
    let v = body[key]
    if (key === 'soa' && isPlainObject(v)) v = strip(v, SOA_DEFAULTS, undefined, false)
    if ((key === 'regions' || key === 'services') && isPlainObject(v)) {
      v = Object.fromEntries(Object.entries(v).map(([name, entry]) => [name, isPlainObject(entry) ? withoutUnwrittenDefaults(key, entry, undefined) : entry]))
    }
    if (ZONE_DEFAULTS.has(key) && isDeepStrictEqual(v, ZONE_DEFAULTS.get(key))) continue
    out[key] = v
  }
  return out
}
