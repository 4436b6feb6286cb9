/**
 * Zone files -> ZoneSet. Parses YAML keeping positions, validates against the schema, checks the
 * zone's consistency, and builds the frozen lookup structures the DNS layer reads. Every problem of
 * every file is collected (like `named-checkconf`), each with file, line, column, key path and reason.
 */
import { createHash } from 'node:crypto'
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import path from 'node:path'
import YAML, { isMap, isPair, isScalar, LineCounter, type Document, type Node as YamlNode } from 'yaml'
import { ConfigError, type ConfigIssue, type ErrorCode } from '../errors.js'
import { addressText, canonicalAddress, parseAddress, urlHost } from '../model/address.js'
import { ancestorsWithin, canonical, isInZone, nameProblem, resolveName } from '../model/name.js'
import {
  RRTYPE,
  RRTYPE_NAME,
  STATIC_TYPES,
  type CaaData,
  type MxData,
  type RR,
  type RecordSet,
  type SrvData,
  type Zone,
  type ZoneDefinition,
  type ZoneNode,
  type ZoneSet,
} from '../model/types.js'
import { checkKey } from '../health/spec.js'
import type { CheckSpec, GeoPoint, Region, Service, Vip } from '../model/gslb.js'
import type { CheckDef, LocationDef, RegionDef, ServiceDef } from '../model/types.js'
import { validateZoneDocument } from './validate.js'
import { keyAsWritten } from './yaml-keys.js'

export const ZONE_FILE_RE = /^[^.].*\.ya?ml$/

/** The SOA serial to publish for a zone whose content hash is `hash` (see store/serials.ts). */
export type SerialSource = (origin: string, hash: string) => number

/** Resolves an ISO country code to its centroid (geo/countries), for `location: { country: GB }`. */
export type CountryPoint = (code: string) => GeoPoint | undefined

export interface BuildOptions {
  countryPoint?: CountryPoint
  /** Resolves an IATA-style metro code (`DUB`, `IAD`, `NRT`) to coordinates (geodb/places.json). */
  cityPoint?: CountryPoint
}

/** How zone files are read (readZoneSources). */
export interface ReadOptions {
  /** The largest zone file read, in bytes (`--max-zone-file-bytes`); default MAX_ZONE_FILE_BYTES. */
  maxFileBytes?: number
}

/** A zone file read from disk, before it is built. */
export interface ZoneSource {
  file: string
  text: string
}

class IssueList {
  readonly issues: ConfigIssue[] = []
  constructor(
    private readonly file: string,
    private readonly doc: Document | undefined,
    private readonly lc: LineCounter,
  ) {}

  /** Adds an issue, once: a region's check is built per VIP, and its problems are the same for each. */
  add(code: ErrorCode, keyPath: (string | number)[], message: string, key?: string): void {
    const issue = this.at(code, keyPath, message, key)
    if (this.issues.some((i) => i.code === code && i.path === issue.path && i.message === message)) return
    this.issues.push(issue)
  }

  /** The issue at keyPath (or `key` inside it), positioned, without adding it. */
  at(code: ErrorCode, keyPath: (string | number)[], message: string, key?: string): ConfigIssue {
    const path = [...keyPath, ...(key === undefined ? [] : [key])].join('.')
    const { line, col } = this.position(keyPath, key)
    return { code, file: this.file, line, col, path, message }
  }

  /** Line and column of the node at keyPath (or of `key` inside it), else of its nearest ancestor. */
  private position(keyPath: (string | number)[], key?: string): { line: number; col: number } {
    if (!this.doc) return { line: 1, col: 1 }
    let offset: number | undefined
    for (let n = keyPath.length; n >= 0 && offset === undefined; n--) {
      const node = this.doc.getIn(keyPath.slice(0, n), true) as YamlNode | undefined
      if (node && n === keyPath.length && key !== undefined && isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key)
        if (pair && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0]
      }
      if (offset === undefined && node && (node as { range?: [number, number, number] }).range) {
        offset = (node as { range: [number, number, number] }).range[0]
      }
    }
    const pos = this.lc.linePos(offset ?? 0)
    return { line: pos.line, col: pos.col }
  }
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])

/** A file's text without its byte order mark, which editors do not show: positions are counted after it. */
const withoutBom = (text: string): string => (text.startsWith('\ufeff') ? text.slice(1) : text)

/** A zone file's text parsed as buildZoneSet parses it (parseForBuild), to be built without parsing it again. */
export interface ParsedZoneText {
  text: string
  doc: Document
  lc: LineCounter
  /**
   * `doc.toJS()` with its mappings' keys as written (keyAsWritten), when the one who parsed took it
   * already (an edit's check of its rendering): the build takes it instead of its own.
   */
  js?: unknown
}

/**
 * `text` parsed as the build parses it. An edit checks its rendering with this parse, and the
 * build takes it (buildZoneSet's `parsed`; the build changes the document's keys (keyAsWritten) and
 * `js` (the schema's defaults), so it is taken once): the parse of a zone of 5,000 services is ~0.5 s.
 */
export function parseForBuild(text: string): ParsedZoneText {
  const lc = new LineCounter()
  // Keys twice in a mapping are found by the build, with a set: the parser's own check (uniqueKeys) compares
  // each key with every key before it, and a file of 600,000 records held the server for minutes.
  const doc = YAML.parseDocument(withoutBom(text), { lineCounter: lc, uniqueKeys: false, prettyErrors: false })
  return { text, doc, lc }
}

/**
 * A TXT value as RFC 1035 character-strings: the UTF-8 octets of a string, split every 255 octets;
 * a list is taken as the character-strings of one record. Buffers go to dns2's encoder as they are.
 */
export function txtStrings(v: string | string[]): Buffer[] {
  if (Array.isArray(v)) return v.map((s) => Buffer.from(s, 'utf8'))
  const bytes = Buffer.from(v, 'utf8')
  if (bytes.length <= 255) return [bytes]
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255))
  return out
}

/**
 * Every node without RRsets (a service's name, an empty non-terminal) is this one object, and
 * lists of equal content below are shared too (sharedList): fewer objects for a DNS worker to read
 * off the IPC channel at every change (the structured clone sends a shared object once) and to
 * collect afterwards. A 5,000-service set read in half the time.
 */
const EMPTY_NODE: ZoneNode = Object.freeze({ rrsets: new Map<number, readonly RR[]>() })

function freezeNode(rrsets: Map<number, RR[]>): ZoneNode {
  if (rrsets.size === 0) return EMPTY_NODE
  for (const list of rrsets.values()) Object.freeze(list)
  return Object.freeze({ rrsets })
}

/** One frozen list per content within a zone (`seen`: the zone's lists so far, by content). */
function sharedList(list: readonly string[], seen: Map<string, readonly string[]>): readonly string[] {
  const key = list.join('\n')
  let shared = seen.get(key)
  if (!shared) seen.set(key, (shared = Object.freeze([...list])))
  return shared
}

/** Parses and builds one zone file. Returns the zone, or the issues that stop it. */
export function buildZone(src: ZoneSource, serialOf: SerialSource, options: BuildOptions = {}): { zone?: Zone; issues: ConfigIssue[]; checks?: Map<string, CheckSpec> } {
  const { zone, issues, checks, dangling } = buildZoneUnsorted(src, serialOf, options)
  // Alone, a file's targets that name nothing in it are its errors (no other zone can hold them).
  const missing = (dangling ?? []).filter((d) => d.here.length === 0)
  if (missing.length > 0) return { issues: sortedIssues([...issues, ...missing.map((d) => d.issue)]) }
  return zone ? { zone, issues, checks } : { issues: sortedIssues(issues) }
}

/** A YAML reader's message as an operator reads it: its stack overflow on a value nested thousands deep said as such. */
const yamlMessage = (m: string): string => (/maximum call stack size exceeded/i.test(m) ? 'values nested too deeply to read (the YAML reader ran out of stack here); a zone file needs a few levels' : m)

const sortedIssues = (issues: ConfigIssue[]): ConfigIssue[] => issues.sort((a, b) => a.line - b.line || a.col - b.col)

/**
 * A file built: its zone when it has no issue; `origin`, the zone it declares when that could be
 * read; `dangling`, its targets that name nothing in it, and `belowCut`, its names under a zone nested
 * in it, judged against the whole set.
 */
type Built = { zone?: Zone; issues: ConfigIssue[]; checks?: Map<string, CheckSpec>; origin?: string; dangling?: DanglingTarget[]; belowCut?: BelowCut[] }

/**
 * The values of a document the schema refused (key paths), and what that leaves to check: a value
 * `whole` passed with everything in it; one `walkable` is there with the type the schema asks
 * (a mapping or a list), though something in it may have been refused.
 */
class Refused {
  constructor(private readonly paths: readonly (string | number)[][]) {}

  private static startsWith(p: readonly (string | number)[], prefix: readonly (string | number)[]): boolean {
    return prefix.length <= p.length && prefix.every((k, i) => k === p[i])
  }

  whole(p: readonly (string | number)[]): boolean {
    return !this.paths.some((r) => Refused.startsWith(p, r) || Refused.startsWith(r, p))
  }

  walkable(p: readonly (string | number)[]): boolean {
    return !this.paths.some((r) => Refused.startsWith(p, r))
  }
}

/**
 * One file built; `origins`: the origins the set's files declare (declaredOrigin), so that a target
 * this file holds is kept for judging only when a zone nested in this one may answer for it.
 */
function buildZoneUnsorted(src: ZoneSource, serialOf: SerialSource, options: BuildOptions, origins: ReadonlySet<string> = new Set(), parsed?: ParsedZoneText): Built {
  // Keys twice in a mapping are found below (parseForBuild).
  const taken = parsed !== undefined && parsed.text === src.text ? parsed : undefined
  const { doc, lc } = taken ?? parseForBuild(src.text)
  const issues = new IssueList(src.file, doc, lc)
  YAML.visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>()
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue
        keyAsWritten(pair)
        const k = String(pair.key.value)
        // Reported at the second key (the parser would say the mapping).
        if (seen.has(k) && pair.key.range) {
          const pos = lc.linePos(pair.key.range[0])
          issues.issues.push({ code: 'E_ZONE_YAML', file: src.file, line: pos.line, col: pos.col, path: '', message: `key "${k}" appears twice in the same mapping` })
        }
        seen.add(k)
      }
    },
  })
  if (doc.errors.length > 0 || issues.issues.length > 0) {
    for (const e of doc.errors) {
      // With prettyErrors off the parser leaves linePos unset: the position comes from its offset.
      const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0])
      issues.issues.push({ code: 'E_ZONE_YAML', file: src.file, line: pos.line, col: pos.col, path: '', message: yamlMessage(e.message.split('\n')[0] ?? e.message) })
    }
    return { issues: issues.issues }
  }
  let raw: unknown
  try {
    raw = taken !== undefined && 'js' in taken ? taken.js : doc.toJS()
  } catch (err) {
    // The parser refuses aliases that expand to a huge document (a "billion laughs"): said at the first alias.
    let at = 0
    YAML.visit(doc, {
      Alias(_key, node) {
        at = node.range?.[0] ?? 0
        return YAML.visit.BREAK
      },
    })
    const pos = lc.linePos(at)
    const excessive = /alias count/i.test((err as Error).message)
    const message = excessive ? 'aliases expand to too many nodes (a resource exhaustion attack?); write the values out instead' : yamlMessage((err as Error).message)
    issues.issues.push({ code: 'E_ZONE_YAML', file: src.file, line: pos.line, col: pos.col, path: '', message })
    return { issues: issues.issues }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    issues.add('E_ZONE_SCHEMA', [], 'a zone file must be a mapping with origin, soa, ns and records')
    return { issues: issues.issues }
  }
  // The check keys each region gives itself, before the schema fills in defaults (a tcp check's
  // `path` then is a default, not the operator's mistake).
  const givenCheckKeys = new Map<string, string[]>()
  const regionsRaw = (raw as { regions?: unknown }).regions
  if (regionsRaw && typeof regionsRaw === 'object') {
    for (const [name, r] of Object.entries(regionsRaw as Record<string, unknown>)) {
      const check = r && typeof r === 'object' ? (r as { check?: unknown }).check : undefined
      if (check && typeof check === 'object' && !Array.isArray(check)) givenCheckKeys.set(name, Object.keys(check))
    }
  }
  const problems = validateZoneDocument(raw)
  for (const p of problems) issues.add('E_ZONE_SCHEMA', p.path, p.message, p.key)
  // The checks below run beside the schema's errors on what the schema took (every problem of the
  // file in one go); what depends on a refused value is not judged: a name whose records were
  // refused exists, its content unknown; a region whose check was refused can still be named.
  const refused = new Refused(problems.map((p) => p.refused))

  const def = raw as ZoneDefinition
  // Without an origin no name can be placed: only the regions and the services' regions are checked.
  const origin = refused.whole(['origin']) ? canonical(def.origin) : undefined
  const originProblem = origin === undefined ? undefined : nameProblem(origin)
  if (originProblem) issues.add('E_ZONE_SEMANTIC', ['origin'], originProblem)

  const nodes = new Map<string, Map<number, RR[]>>()
  const where = new Map<RR, (string | number)[]>() // record -> key path of its value, for messages
  const put = (rr: RR, keyPath: (string | number)[]) => {
    where.set(rr, keyPath)
    let node = nodes.get(rr.name)
    if (!node) nodes.set(rr.name, (node = new Map()))
    const list = node.get(rr.type)
    if (list) list.push(rr)
    else node.set(rr.type, [rr])
  }
  // Owners whose records are not all known (part of them refused by the schema, or the owner
  // written twice): they exist, but what they hold is not judged (an NS naming one may have its glue).
  const unknownContent = new Set<string>()
  // Every owner and service name written, whatever its content: a target naming one names something.
  const ownerNames = new Set<string>()
  const serviceNames = new Set<string>()
  // `records:` or `services:` refused as a whole: any name may have been meant there.
  const recordsKnown = refused.walkable(['records'])
  const servicesKnown = refused.walkable(['services'])
  const regionsKnown = refused.walkable(['regions'])
  const contentKnown = (name: string) => recordsKnown && !unknownContent.has(name)
  // Names that RFC 2181 §10.3 says must not be aliases (NS, MX exchange, SRV target), checked once every CNAME is known.
  const hostTargets: { name: string; keyPath: (string | number)[]; what: string; written?: string }[] = []
  // CNAME targets, checked once every name of the zone is known (one naming nothing is an error).
  const aliasTargets: { name: string; keyPath: (string | number)[]; written: string }[] = []
  const checkName = (name: string, keyPath: (string | number)[], what: string): string | undefined => {
    const problem = nameProblem(name)
    if (problem) {
      issues.add('E_ZONE_SEMANTIC', keyPath, `${what}: ${problem}`)
      return undefined
    }
    return name
  }

  // Apex: SOA and NS.
  const soaTtl = def.soa?.ttl ?? def.ttl
  const soaField = (key: 'mname' | 'rname'): string => {
    if (origin === undefined || !refused.whole(['soa', key])) return ''
    const written = def.soa[key]
    const rnameAt = key === 'rname' ? rnameProblem(written, issues) : undefined
    return rnameAt ?? checkName(resolveName(written, origin), ['soa', key], key) ?? ''
  }
  const soaFields = {
    primary: soaField('mname'),
    admin: soaField('rname'),
    refresh: def.soa?.refresh,
    retry: def.soa?.retry,
    expiration: def.soa?.expire,
    minimum: def.soa?.minimum,
  }
  const nsKnown = origin !== undefined && refused.walkable(['ns'])
  // This zone's name servers, for the addresses this file may give below a nested zone's origin
  // (glue); undefined when one of them is unknown (refused).
  let ownNs: Set<string> | undefined = nsKnown ? new Set() : undefined
  if (nsKnown) {
    def.ns.forEach((n, i) => {
      if (!refused.whole(['ns', i])) {
        ownNs = undefined
        return
      }
      const ns = checkName(resolveName(n, origin), ['ns', i], 'name server')
      ownNs?.add(ns ?? '')
      if (ns) put({ name: origin, type: RRTYPE.NS, class: 1, ttl: def.ttl, ns }, ['ns', i])
      if (ns) hostTargets.push({ name: ns, keyPath: ['ns', i], what: 'name server' })
    })
  }

  // One name written as two keys (`www` and `WWW`, or `www` and `www.<origin>.`) would merge
  // unchecked (a CNAME beside an A) or, for services, the second would replace the first.
  const writtenAs = new Map<string, string>()
  const writtenOnce = (name: string, key: string, base: (string | number)[], what: string): boolean => {
    // The issue points at the second key itself (its section's path, and the key).
    const first = writtenAs.get(`${what}|${name}`)
    if (first === undefined) {
      writtenAs.set(`${what}|${name}`, key)
      return true
    }
    issues.add('E_ZONE_SEMANTIC', base.slice(0, -1), `${what} name ${name} is also written as "${first}" (names are case-insensitive, and a name ending in . is the same as the relative one); write each ${what === 'owner' ? 'owner' : 'service'} once`, key)
    return false
  }

  // `www.` is the top-level name www, not www.<origin>: the final dot, kept from a BIND habit or a
  // typo, is worth naming when the relative name is what was meant.
  const absoluteHint = (written: string): string => {
    const relative = written.trim().slice(0, -1)
    return written.trim().endsWith('.') && relative !== '' && !relative.includes('.') ? ` (a name ending in . is absolute: write "${relative}" for ${resolveName(relative, origin!)})` : ''
  }

  // Names at or below the origin of a zone nested in this one that the set declares too (a few; a
  // zone may have thousands of names): the nested zone answers for them (findZone), not this file.
  const nestedOrigins = origin === undefined ? [] : [...origins].filter((o) => o !== origin && isInZone(o, origin))
  const underNested = (name: string) => nestedOrigins.some((o) => isInZone(name, o))
  // Owners and services written there, judged once the set is known (buildZoneSet: judgeBelowCut).
  const belowCut: BelowCut[] = []
  const cutIssues = new IssueList(src.file, doc, lc)
  const cutAt = (section: string, key: string) => (message: string, type?: string) => cutIssues.at('E_ZONE_SEMANTIC', type === undefined ? [section] : [section, key], message, type ?? key)

  // Static records.
  for (const [owner, set] of origin !== undefined && recordsKnown ? (Object.entries(def.records) as [string, RecordSet][]) : []) {
    const base = ['records', owner]
    const name = resolveName(owner, origin!)
    ownerNames.add(name)
    if (!checkName(name, base, 'owner name')) continue
    if (!writtenOnce(name, owner, base, 'owner')) {
      unknownContent.add(name)
      continue
    }
    if (!isInZone(name, origin!)) {
      issues.add('E_ZONE_SEMANTIC', base, `owner name ${name} is outside the zone ${origin}${absoluteHint(owner)}`)
      continue
    }
    if (underNested(name)) {
      const walkable = refused.walkable(base)
      const addressesKnown = walkable && (['A', 'AAAA'] as const).every((k) => set[k] === undefined || refused.whole([...base, k]))
      belowCut.push({
        name,
        origin: origin!,
        service: false,
        ownNs: ownNs?.has(name),
        types: walkable ? Object.keys(set).filter((k) => k !== 'A' && k !== 'AAAA' && (STATIC_TYPES as readonly string[]).includes(k)) : undefined,
        addresses: addressesKnown ? addressSet([...asList(set.A), ...asList(set.AAAA)]) : undefined,
        at: cutAt('records', owner),
      })
    }
    // A record set that is not a mapping holds nothing to check; one with a type refused, only the others.
    if (!refused.whole(base)) unknownContent.add(name)
    if (!refused.walkable(base)) continue
    const ttl = set.ttl ?? def.ttl
    const rr = { name, class: 1 as const, ttl }
    // The key path of a type's i-th value: `A.1` in a list, `A` alone.
    const at = (type: keyof RecordSet, i: number) => [...base, type, ...(Array.isArray(set[type]) ? [i] : [])]
    const taken = (type: keyof RecordSet) => set[type] !== undefined && refused.whole([...base, type])
    if (taken('A')) asList(set.A).forEach((a, i) => put({ ...rr, type: RRTYPE.A, address: a }, at('A', i)))
    if (taken('AAAA')) asList(set.AAAA).forEach((a, i) => put({ ...rr, type: RRTYPE.AAAA, address: a }, at('AAAA', i)))
    if (taken('CNAME')) {
      const target = checkName(resolveName(set.CNAME!, origin!), [...base, 'CNAME'], 'CNAME target')
      if (target !== undefined) put({ ...rr, type: RRTYPE.CNAME, domain: target }, [...base, 'CNAME'])
      if (target !== undefined) aliasTargets.push({ name: target, keyPath: [...base, 'CNAME'], written: set.CNAME! })
      if (name === origin) issues.add('E_ZONE_SEMANTIC', [...base, 'CNAME'], 'a CNAME cannot stand at the zone apex, which holds the SOA and NS records (RFC 1034 §3.6.2)')
      const others = Object.keys(set).filter((k) => k !== 'CNAME' && (STATIC_TYPES as readonly string[]).includes(k))
      if (others.length > 0) issues.add('E_ZONE_SEMANTIC', [...base, 'CNAME'], `a CNAME cannot share its name with other data (${others.join(', ')}) (RFC 1034 §3.6.2)`)
    }
    if (taken('TXT')) {
      const values = typeof set.TXT === 'string' ? [set.TXT] : set.TXT!
      values.forEach((t, i) => put({ ...rr, type: RRTYPE.TXT, data: txtStrings(t) }, at('TXT', i)))
    }
    if (taken('MX')) {
      asList<MxData>(set.MX).forEach((m, i) => {
        const keyPath = [...at('MX', i), 'exchange']
        const exchange = checkName(resolveName(m.exchange, origin!), keyPath, 'MX exchange')
        if (exchange !== undefined) put({ ...rr, type: RRTYPE.MX, priority: m.preference, exchange }, at('MX', i))
        if (exchange !== undefined) hostTargets.push({ name: exchange, keyPath, what: 'MX exchange', written: m.exchange })
      })
    }
    if (taken('SRV')) {
      asList<SrvData>(set.SRV).forEach((s, i) => {
        const keyPath = [...at('SRV', i), 'target']
        const target = checkName(resolveName(s.target, origin!), keyPath, 'SRV target')
        if (target !== undefined) put({ ...rr, type: RRTYPE.SRV, priority: s.priority, weight: s.weight, port: s.port, target }, at('SRV', i))
        if (target !== undefined) hostTargets.push({ name: target, keyPath, what: 'SRV target', written: s.target })
      })
    }
    if (taken('CAA')) asList<CaaData>(set.CAA).forEach((c, i) => put({ ...rr, type: RRTYPE.CAA, flags: c.flags ?? 0, tag: c.tag, value: c.value }, at('CAA', i)))
  }

  // GSLB: regions and services.
  const locate = (loc: LocationDef, keyPath: (string | number)[]): GeoPoint | null => {
    if ('lat' in loc) return { lat: loc.lat, lon: loc.lon }
    const [kind, code, find] = 'country' in loc ? (['country', loc.country, options.countryPoint] as const) : (['city', loc.city, options.cityPoint] as const)
    const p = find?.(code.toUpperCase())
    if (!p) issues.add('E_ZONE_SEMANTIC', [...keyPath, kind], `unknown ${kind} code "${code}"`)
    return p ? { lat: p.lat, lon: p.lon } : null
  }
  const checks = new Map<string, CheckSpec>()
  const regions = new Map<string, Region>()
  for (const [name, r] of regionsKnown ? (Object.entries(def.regions) as [string, RegionDef][]) : []) {
    const base = ['regions', name]
    // A region the schema refused in part is still a region a service may name; its parts that
    // passed are checked.
    if (!refused.walkable(base)) continue
    const whole = (key: string) => refused.whole([...base, key])
    const check = r.check && whole('check') && checkHolds(r.check, givenCheckKeys.get(name) ?? [], [...base, 'check'], issues) ? r.check : undefined
    const location = whole('location') ? locate(r.location, [...base, 'location']) : null
    if (!whole('vips')) continue
    const seen = new Set<string>()
    const vips: Vip[] = r.vips.map((address, i) => {
      // RFC 5952 text: one text per address, for the twice-listed check here and for the selector,
      // which compares it to answer an address once when regions share it (check keys were already
      // in this form: the URL parser writes it).
      const parsed = parseAddress(address)!
      const canon = addressText(parsed.bytes)
      if (seen.has(canon)) issues.add('E_ZONE_SEMANTIC', [...base, 'vips', i], `VIP ${address} is listed twice`)
      const unusable = unusableVip(parsed.bytes)
      if (unusable) issues.add('E_ZONE_SEMANTIC', [...base, 'vips', i], `VIP ${address} is ${unusable}: no client can connect to it, so answering with it sends clients nowhere`)
      seen.add(canon)
      let key: string | null = null
      if (check) {
        const spec = checkSpecFor(check, address)
        try {
          key = checkKey(spec)
          checks.set(key, spec)
        } catch (err) {
          issues.add('E_ZONE_SCHEMA', [...base, 'check'], (err as Error).message.replace(/^invalid health check: /, ''))
        }
      }
      return { address: canon, family: parsed.family, checkKey: key }
    })
    if (whole('minHealthy') && r.minHealthy > vips.length) issues.add('E_ZONE_SEMANTIC', [...base, 'minHealthy'], `needs ${r.minHealthy} healthy VIPs but the region has only ${vips.length}`)
    if (location && refused.whole(base)) regions.set(name, Object.freeze({ name, location, vips: Object.freeze(vips), weight: r.weight, drained: r.drained, minHealthy: r.minHealthy }))
  }
  const services = new Map<string, Service>()
  // Services naming the same regions (or fallback addresses) share one list.
  const lists = new Map<string, readonly string[]>()
  for (const [owner, svc] of servicesKnown ? (Object.entries(def.services) as [string, ServiceDef][]) : []) {
    const base = ['services', owner]
    // Its name is placed in the zone when there is an origin; the regions it names are checked anyway.
    const name = origin === undefined ? undefined : resolveName(owner, origin)
    if (name !== undefined) {
      serviceNames.add(name)
      if (!checkName(name, base, 'service name')) continue
      if (!writtenOnce(name, owner, base, 'service')) continue
      if (!isInZone(name, origin!) || name === origin) {
        issues.add('E_ZONE_SEMANTIC', base, name === origin ? 'a service cannot stand at the zone apex, which holds the SOA and NS records' : `service name ${name} is outside the zone ${origin}${absoluteHint(owner)}`)
        continue
      }
      if (nodes.has(name) || ownerNames.has(name)) issues.add('E_ZONE_SEMANTIC', base, `${name} is both a static record set (under records:) and a service; a name is one or the other`)
      if (underNested(name)) belowCut.push({ name, origin: origin!, service: true, ownNs: false, types: undefined, addresses: undefined, at: cutAt('services', owner) })
    }
    if (!refused.walkable(base)) continue
    const whole = (key: string) => refused.whole([...base, key])
    // The regions it answers from, when the schema took them (a service is built only then).
    const regionsTaken = regionsKnown && whole('regions')
    const names = regionsTaken ? (svc.regions === 'all' ? Object.keys(def.regions) : svc.regions) : []
    if (regionsTaken) {
      if (names.length === 0) issues.add('E_ZONE_SEMANTIC', [...base, 'regions'], 'the zone defines no regions for this service to answer from')
      if (svc.regions !== 'all') {
        svc.regions.forEach((n, i) => {
          if (!Object.hasOwn(def.regions, n)) issues.add('E_ZONE_SEMANTIC', [...base, 'regions', i], `unknown region "${n}" (regions of this zone: ${Object.keys(def.regions).join(', ') || 'none'})`)
          else if (svc.regions.indexOf(n) !== i) issues.add('E_ZONE_SEMANTIC', [...base, 'regions', i], `region "${n}" is listed twice`)
        })
      }
    }
    if (whole('fallback') && whole('fallbackAddresses') && svc.fallback === 'static' && svc.fallbackAddresses.length === 0) issues.add('E_ZONE_SEMANTIC', [...base, 'fallbackAddresses'], 'fallback: static needs at least one address here')
    if (name === undefined || !refused.whole(base) || !regionsKnown) continue
    services.set(
      name,
      Object.freeze({
        name,
        regions: sharedList(names, lists),
        policy: svc.policy,
        answers: svc.answers,
        ttl: svc.ttl,
        fallback: svc.fallback,
        fallbackAddresses: sharedList(svc.fallbackAddresses, lists),
        fallbackIncludesDrained: svc.fallbackIncludesDrained,
        toleranceMs: svc.toleranceMs,
        fill: svc.fill,
        unknownAs: svc.unknown,
      }),
    )
  }
  const defaultLocation = def.defaultLocation && refused.whole(['defaultLocation']) ? locate(def.defaultLocation, ['defaultLocation']) : null
  // The rest places names in the zone: without an origin there is nothing more to check.
  if (origin === undefined) return { issues: issues.issues }
  const cut = belowCut.length > 0 ? belowCut : undefined

  // Targets judged once the whole set is known (buildZoneSet): one inside the zone that this file
  // does not hold as it must is an error unless a zone nested in this one that the set serves holds
  // it; and one under such a nested zone is judged there alone, since that zone answers for the name
  // (this file's data there is never served: RFC 1034 §4.2.1, data below a cut is not the zone's).
  const dangling = new IssueList(src.file, doc, lc)
  const targets: DanglingTarget[] = []
  const danglingAt = (target: string, needs: DanglingTarget['needs'], heldHere: string[] | boolean, keyPath: (string | number)[], message: string, verdict?: Verdict) => {
    const before = dangling.issues.length
    dangling.add('E_ZONE_SEMANTIC', keyPath, message)
    if (dangling.issues.length > before) targets.push({ issue: dangling.issues[before]!, origin, target, needs, here: heldHere === true ? HELD : heldHere === false ? [] : heldHere, verdict })
  }
  // Every in-zone name server needs an address to be reachable (RFC 1034 §4.2.2; the parent's glue
  // is a copy of it): in the zone that answers for its name.
  if (nsKnown) {
    def.ns.forEach((n, i) => {
      if (!refused.whole(['ns', i])) return
      const ns = resolveName(n, origin)
      if (!isInZone(ns, origin) || !contentKnown(ns)) return
      const node = nodes.get(ns)
      if (node?.has(RRTYPE.CNAME)) return // reported below: an alias
      const here = addressesOf(node)
      danglingAt(ns, 'glue', here, ['ns', i], `name server ${ns} is inside the zone but has no A or AAAA record under records: (glue is required)${finalDotHint(n, 'a name server outside the zone')}`)
    })
  }
  for (const t of hostTargets) {
    if (nodes.get(t.name)?.has(RRTYPE.CNAME)) issues.add('E_ZONE_SEMANTIC', t.keyPath, `${t.what} ${t.name} is a CNAME; it must name the host itself, not an alias (RFC 2181 §10.3)`)
  }
  // Duplicate addresses in one RRset are a typo, and RFC 2181 §5 forbids duplicate RRs.
  for (const [name, node] of nodes) {
    for (const [type, list] of node) {
      const keys = list.map((r) => JSON.stringify({ ...r, ttl: 0, address: r.address && (isIPv4(r.address) || isIPv6(r.address)) ? canonicalAddress(r.address) : r.address }))
      // Said at the second one written (`records.www.A.1`, `ns.1`).
      const dup = keys.findIndex((k, i) => keys.indexOf(k) !== i)
      if (dup >= 0) issues.add('E_ZONE_SEMANTIC', where.get(list[dup]!) ?? [], `duplicate record in the ${RRTYPE_NAME[type] ?? String(type)} set of ${name}`)
    }
  }

  // Service names are names of the zone (their answers come from the selector), and so are owners
  // whose records were refused.
  for (const name of [...serviceNames, ...unknownContent]) if (!nodes.has(name)) nodes.set(name, new Map())
  // Empty non-terminals: every name between an owner and the apex exists (RFC 8020 / 4592 §2.2.2).
  for (const name of [...nodes.keys()]) {
    if (!isInZone(name, origin)) continue
    for (const anc of ancestorsWithin(name, origin)) if (!nodes.has(anc)) nodes.set(anc, new Map())
  }
  // Targets inside the zone that name nothing in it. An MX exchange or SRV target must name a host
  // with address records (RFC 5321 §5.1, RFC 2782; named-checkzone warns): one without is an error,
  // a service being such a host. A CNAME may point at a name that does not exist (RFC 1034 §3.6.2,
  // RFC 6604: NXDOMAIN with the CNAME; named-checkzone says nothing), so only a target written with
  // a dot but no final one is an error: `www.example.org` is www.example.org.<origin>, never what
  // was meant. This file is the zone's only source, so such a target stays missing; one under
  // another zone the set serves is judged there (buildZoneSet). They are judged beside the file's
  // other errors, except where those leave it unknown what a name holds (records or services the
  // schema refused as a whole, an owner refused in part).
  // A target the file holds is judged again only under a nested zone (a few; a zone may have thousands).
  for (const t of recordsKnown && servicesKnown ? aliasTargets : []) {
    const hint = finalDotHint(t.written, 'a target outside the zone')
    if (hint === '' || !isInZone(t.name, origin) || (nodes.has(t.name) && !underNested(t.name))) continue
    const verdict: Verdict = { subject: `CNAME target ${t.name}`, rule: '', hint }
    danglingAt(t.name, 'name', nodes.has(t.name), t.keyPath, verdictText(verdict, false), verdict)
  }
  for (const t of recordsKnown && servicesKnown ? hostTargets : []) {
    if (t.written === undefined || !isInZone(t.name, origin) || !contentKnown(t.name)) continue
    const node = nodes.get(t.name)
    const held = isHost(node, serviceNames.has(t.name))
    if (held && !underNested(t.name)) continue
    const verdict: Verdict = { subject: `${t.what} ${t.name}`, rule: `: it must name a host with addresses (${t.what === 'SRV target' ? 'RFC 2782' : 'RFC 5321 §5.1'})`, hint: finalDotHint(t.written, 'a host outside the zone') }
    danglingAt(t.name, 'address', held, t.keyPath, verdictText(verdict, node !== undefined), verdict)
  }
  if (issues.issues.length > 0) return { issues: issues.issues, origin, dangling: targets, belowCut: cut }

  const contentHash = createHash('sha256')
    .update(JSON.stringify({ ...def, soa: { ...def.soa, serial: undefined } }))
    .digest('hex')
  const serial = def.soa.serial === 'auto' ? serialOf(origin, contentHash) : def.soa.serial
  const soa: RR = Object.freeze({ name: origin, type: RRTYPE.SOA, class: 1, ttl: soaTtl, serial, ...soaFields })
  const apex = nodes.get(origin) ?? new Map<number, RR[]>()
  apex.set(RRTYPE.SOA, [soa])
  nodes.set(origin, apex)

  const frozen = new Map<string, ZoneNode>()
  for (const [name, rrsets] of nodes) frozen.set(name, freezeNode(rrsets))
  const zone: Zone = Object.freeze({
    origin,
    file: src.file,
    ttl: def.ttl,
    soa,
    negativeSoa: Object.freeze({ ...soa, ttl: Math.min(soaTtl, def.soa.minimum) }),
    nodes: frozen,
    contentHash,
    definition: def,
    regions,
    services,
    defaultLocation,
  })
  return { zone, issues: [], checks, origin, dangling: targets, belowCut: cut }
}

/**
 * A target inside a zone, judged once the set is known: a CNAME's (`needs: 'name'`: any name), an
 * MX exchange's or SRV target's (`'address'`: a host with addresses, a service being one), an
 * in-zone name server's (`'glue'`: A or AAAA records). Under a zone nested in the file's that the
 * set serves, it is judged in that zone alone, which answers for it; else in the file's own.
 */
interface DanglingTarget {
  /** The issue when the target is not held where it is judged (its position, for the other messages too). */
  issue: ConfigIssue
  /** The zone whose file names the target. */
  origin: string
  target: string
  needs: 'name' | 'address' | 'glue'
  /** What the file itself holds at the target: its addresses (sorted, RFC 5952) for 'glue'; [] none; HELD otherwise. */
  here: readonly string[]
  /** The parts of the message of a 'name' or 'address' target, said again of the zone it is judged in (verdictText). */
  verdict?: Verdict
}

/** A CNAME, MX or SRV target's message in parts: `CNAME target x.a.test`, the rule it breaks, the final-dot hint. */
interface Verdict {
  subject: string
  rule: string
  hint: string
}

/**
 * `MX exchange mail.a.test names nothing in the zone: it must ...`: the verdict on a target, where
 * the name exists (`named`: it does, without addresses) or not, in the file's own zone; or, with
 * `zone`, in that nested zone, which answers for the name and is said from the start.
 */
function verdictText(v: Verdict, named: boolean, zone?: Zone): string {
  const where = zone === undefined ? 'the zone' : `zone ${zone.origin} (${zone.file}), which answers for the name`
  const what = named ? `has no A or AAAA record and is no service${zone === undefined ? '' : ` in ${where}`}` : `names nothing in ${where}`
  return `${v.subject} ${what}${v.rule}${named ? '' : v.hint}`
}

/**
 * An owner (or a service) a file writes at or below the origin of another zone of the set nested
 * in its own: judged once the set is known (judgeBelowCut).
 */
interface BelowCut {
  name: string
  /** The zone of the file that writes it. */
  origin: string
  service: boolean
  /** Whether it is a name server of the file's own zone (undefined: the `ns` list was refused in part). */
  ownNs: boolean | undefined
  /** An owner's record types other than A and AAAA, as written (undefined: a service, or a record set refused as a whole). */
  types: string[] | undefined
  /** An owner's addresses, sorted RFC 5952 text (undefined: a service, or some refused). */
  addresses: string[] | undefined
  /** The issue at its key (with `type`: at that type's key), in the file that writes it. */
  at: (message: string, type?: string) => ConfigIssue
}

/**
 * The issues of `b`, a name written in a file at or below the origin of `cut`, the outermost zone
 * of the set nested in the file's, where `home`, the innermost (findZone's), answers for it.
 * Only the delegation's data has a place there (RFC 1034 §4.2.1, RFC 2181 §6): the addresses of a
 * name server of the nested zone, or of the file's own zone (glue), the same as those `home` gives
 * (the parent's NS set at the cut is not written in a zone file: the nested zone's `ns` is it).
 * Anything else there is never answered from the file (a query goes to the deepest zone served), so
 * it is an error naming the zone to move it to.
 */
function judgeBelowCut(b: BelowCut, cut: Zone, home: Zone): ConfigIssue[] {
  const there = `zone ${home.origin} (${home.file}), which answers for the name in this set of zones`
  if (b.service) return [b.at(`service ${b.name} lies in ${there}: it would never be answered from this file; move it there (with the regions it names)`)]
  const cutNs = cut.nodes.get(cut.origin)?.rrsets.get(RRTYPE.NS)?.some((r) => r.ns === b.name) === true
  // Addresses may be the glue of a name server of this zone when those are not all known.
  if (!cutNs && b.ownNs === undefined && b.addresses?.length !== 0) return []
  if (!cutNs && !b.ownNs) {
    if (b.name === home.origin) return [b.at(`${b.name} is the origin of ${there}: records here would never be answered from this file; move them there (under "@")`)]
    return [b.at(`${b.name} lies in ${there}: it would never be answered from this file; move it there`)]
  }
  const whose = b.ownNs ? 'this zone' : `zone ${cut.origin} (${cut.file})`
  const out = (b.types ?? []).map((type) => b.at(`${b.name} is a name server of ${whose}, so this file may give its addresses (glue), but not its ${type}: it lies in ${there}, and its ${type} would never be answered from this file; move it there`, type))
  // The addresses of this zone's own name server are judged with its `ns` entry (nestedIssue).
  const served = addressesOf(home.nodes.get(b.name)?.rrsets)
  if (!b.ownNs && b.addresses !== undefined && b.addresses.length > 0 && served.length > 0 && b.addresses.join() !== served.join()) {
    out.push(b.at(`${b.name} is a name server of ${whose}, so this file may give its addresses (glue), but these (${b.addresses.join(', ')}) are not those of zone ${home.origin} (${home.file}), which answers for the name (${served.join(', ')}): they are never served, so they only mislead; write the same ones here, or none`))
  }
  return out
}

/**
 * Why an address can be no VIP (a destination clients connect to), or null: the unspecified
 * address and "this network" (0.0.0.0/8, RFC 1122 §3.2.1.3; `::`), multicast (224.0.0.0/4,
 * ff00::/8), the reserved 240.0.0.0/4 and the limited broadcast 255.255.255.255. Loopback and
 * private ranges are usable (a pool on the same host, an internal service).
 */
function unusableVip(bytes: Uint8Array): string | null {
  if (bytes.length === 4) {
    if (bytes[0] === 0) return 'in 0.0.0.0/8 ("this network", RFC 1122), never a destination'
    if (bytes[0]! >= 224 && bytes[0]! <= 239) return 'a multicast address (224.0.0.0/4)'
    if (bytes.every((b) => b === 255)) return 'the limited broadcast address'
    if (bytes[0]! >= 240) return 'in the reserved 240.0.0.0/4'
    return null
  }
  if (bytes.every((b) => b === 0)) return 'the unspecified address (::)'
  if (bytes[0] === 0xff) return 'a multicast address (ff00::/8)'
  return null
}

/** A target the file holds as it needs (a 'name' or 'address' target; a name server's addresses are listed instead). */
const HELD: readonly string[] = Object.freeze(['(held)'])

/** Addresses as RFC 5952 text (`2001:db8::2`, however written), each once, sorted. */
const addressSet = (addresses: readonly string[]): string[] => [...new Set(addresses.map((a) => addressText(parseAddress(a)!.bytes)))].sort()

/** The A and AAAA addresses of a node, as RFC 5952 text, sorted. */
function addressesOf(node: ReadonlyMap<number, readonly RR[]> | undefined): string[] {
  return addressSet([...(node?.get(RRTYPE.A) ?? []), ...(node?.get(RRTYPE.AAAA) ?? [])].map((r) => r.address!))
}

/**
 * Whether a name is a host an MX exchange or SRV target may name: a service (answered with its
 * VIPs) or a node with A or AAAA records (or a CNAME, which is reported on its own).
 */
function isHost(rrsets: ReadonlyMap<number, unknown> | undefined, service: boolean): boolean {
  return service || rrsets?.has(RRTYPE.A) === true || rrsets?.has(RRTYPE.AAAA) === true || rrsets?.has(RRTYPE.CNAME) === true
}

/** Whether `zone` holds `target` as `needs` asks: any name, an address (isHost), or glue. */
function holds(zone: Zone, target: string, needs: DanglingTarget['needs']): boolean {
  const node = zone.nodes.get(target)
  if (!node) return false
  if (needs === 'glue') return addressesOf(node.rrsets).length > 0
  return needs === 'name' || isHost(node.rrsets, zone.services.has(target))
}

/**
 * The issue of target `d` in a set where `inner`, a zone nested in d's, answers for it; undefined
 * when it holds it (a name server: with the addresses d's file gives it, if it gives any).
 */
function nestedIssue(d: DanglingTarget, inner: Zone): ConfigIssue | undefined {
  if (d.needs !== 'glue') return holds(inner, d.target, d.needs) ? undefined : { ...d.issue, message: verdictText(d.verdict!, inner.nodes.has(d.target), inner) }
  const there = addressesOf(inner.nodes.get(d.target)?.rrsets)
  const where = `zone ${inner.origin} (${inner.file}), which answers for the name`
  if (there.length === 0) return { ...d.issue, message: `name server ${d.target} is in ${where}, and has no A or AAAA record there (glue is required)` }
  if (d.here.length > 0 && d.here.join() !== there.join()) {
    return { ...d.issue, message: `name server ${d.target} has addresses in this file (${d.here.join(', ')}) other than those of ${where} (${there.join(', ')}); these are never served (a query for the name, and the additional section of this zone's NS answers, give that zone's), so they only mislead: write the same ones here, or none` }
  }
  return undefined
}

/**
 * ` (written "ns1.example.net" without a final dot, ...)`: the hint for a name written with a dot
 * but no final one, which is taken as relative to the origin (`ns1.example.net.<origin>`), as zone
 * files have it; '' otherwise. `outside`: what a name outside the zone is, for the sentence.
 */
function finalDotHint(written: string, outside: string): string {
  const w = written.trim()
  return w.includes('.') && !w.endsWith('.') ? ` (written "${w}" without a final dot, so under the origin; ${outside} is written "${w}.")` : ''
}

/**
 * An SOA rname written as a mail address (`hostmaster@example.com`): reported with the form to write
 * (its @ a dot, absolute), and '' returned; undefined when it has no @.
 */
function rnameProblem(rname: string, issues: IssueList): string | undefined {
  if (!rname.includes('@')) return undefined
  const written = rname.trim().replace('@', '.')
  issues.add('E_ZONE_SEMANTIC', ['soa', 'rname'], `rname: the mailbox's @ is written as a dot (RFC 1035 §8): "${written.endsWith('.') ? written : `${written}.`}", not "${rname}"`)
  return ''
}

/** Keys that mean nothing to a check of each type: given, they are a mistake, not to be ignored. */
const HTTP_ONLY = ['url', 'path', 'host', 'method', 'expect', 'body', 'tlsServername', 'tlsVerify']
const HTTPS_ONLY = ['tlsServername', 'tlsVerify']

/** The keys that mean nothing to check `c`, each with why: given, they are a mistake; filled in as defaults, dropped. */
function inapplicableKeys(c: CheckDef): [key: string, why: string][] {
  if (c.type === 'tcp') return HTTP_ONLY.map((k) => [k, `a tcp check takes port (and target), not ${k}`])
  const out: [string, string][] = c.type === 'http' ? HTTPS_ONLY.map((k) => [k, `${k} applies to https checks only (this one is http)`]) : []
  // With a url, the URL says the port and the path: a port or path beside it would be ignored.
  if (c.url !== undefined) for (const k of ['port', 'path']) out.push([k, `a check with a url takes its ${k} from the url (${c.url}): put it there, or give port and path without url`])
  return out
}

/**
 * Whether a region's check holds, each problem reported once (not once per VIP); `given`: the keys
 * the zone file wrote. The defaults the schema filled in that mean nothing to it (a tcp check's
 * `path`, an http check's `tlsVerify`, a url check's `path`) are taken out of the definition: the
 * API shows it, and what it shows must be taken back.
 */
function checkHolds(c: CheckDef, given: readonly string[], keyPath: (string | number)[], issues: IssueList): boolean {
  let holds = true
  for (const [k, why] of inapplicableKeys(c)) {
    if (!given.includes(k)) delete (c as unknown as Record<string, unknown>)[k]
    else {
      issues.add('E_ZONE_SEMANTIC', [...keyPath, k], why)
      holds = false
    }
  }
  if (!holds) return false
  if (c.timeout >= c.interval) {
    issues.add('E_ZONE_SEMANTIC', [...keyPath, 'timeout'], `timeout (${c.timeout} s) must be below the interval (${c.interval} s)`)
    return false
  }
  if (c.type !== 'tcp' && c.method === 'HEAD' && c.body !== undefined) {
    issues.add('E_ZONE_SEMANTIC', [...keyPath, 'body'], 'a HEAD check gets no body to look in: use method GET, or drop body')
    return false
  }
  if (c.type === 'tcp' && c.port === undefined) {
    issues.add('E_ZONE_SEMANTIC', keyPath, 'a tcp check needs a port')
    return false
  }
  if (c.url !== undefined && !c.url.startsWith(`${c.type}://`)) {
    issues.add('E_ZONE_SEMANTIC', [...keyPath, 'url'], `the url must start with ${c.type}:// to match type: ${c.type}`)
    return false
  }
  // `{ip}` or `{VIP}` would stay in the URL as a host name that never resolves: every round fails.
  const placeholder = c.url?.match(/\{[^{}/]*\}/g)?.find((p) => p !== '{vip}')
  if (placeholder !== undefined) {
    issues.add('E_ZONE_SEMANTIC', [...keyPath, 'url'], `unknown placeholder ${placeholder} in the url: the only one is {vip}, in lowercase (each VIP's address)`)
    return false
  }
  return true
}

/** The poller's spec for one VIP's check (checkHolds said it holds): `{vip}` (or `target`) expanded, seconds made ms. */
function checkSpecFor(c: CheckDef, vip: string): CheckSpec {
  const target = c.target ?? vip
  const spec: CheckSpec = {
    kind: c.type,
    address: target,
    port: c.port ?? (c.type === 'https' ? 443 : 80),
    intervalMs: Math.round(c.interval * 1000),
    timeoutMs: Math.round(c.timeout * 1000),
    rise: c.rise,
    fall: c.fall,
  }
  if (c.type === 'tcp') return spec
  const host = urlHost(target)
  if (c.url !== undefined) {
    spec.url = c.url.replaceAll('{vip}', host)
  } else {
    spec.url = `${c.type}://${host}:${spec.port}${c.path}`
  }
  spec.method = c.method
  spec.expect = c.expect
  if (c.host !== undefined) spec.host = c.host
  if (c.body !== undefined) spec.body = c.body
  if (c.type === 'https') {
    spec.verify = c.tlsVerify
    if (c.tlsServername !== undefined) spec.servername = c.tlsServername
  }
  return spec
}

/**
 * The origin a file declares: read from its document when it parses (any style: block, flow, quoted,
 * tagged), else from its text (`origin: a.test` on a line of its own at the top level), enough to
 * know which zone a file that cannot be parsed is meant to be. Undefined when none, or not a name.
 */
function declaredOrigin(p: ParsedZoneText): string | undefined {
  let written: unknown
  if (p.doc.errors.length === 0) {
    const node: unknown = isMap(p.doc.contents) ? p.doc.contents.get('origin', true) : undefined
    written = isScalar(node) ? node.value : undefined
  } else {
    written = /^origin[ \t]*:[ \t]*(["']?)([A-Za-z0-9_.-]+)\1[ \t]*(?:#.*)?$/m.exec(withoutBom(p.text))?.[2]
  }
  if (typeof written !== 'string') return undefined
  const origin = canonical(written)
  return nameProblem(origin) ? undefined : origin
}

/**
 * Builds a whole set from sources; rejects the set if any file has a problem. `parsed`: files
 * parsed already (parseForBuild, by file name), each taken when its text is the source's.
 */
export function buildZoneSet(sources: ZoneSource[], serialOf: SerialSource, generation: number, options: BuildOptions = {}, parsed?: ReadonlyMap<string, ParsedZoneText>): ZoneSet {
  const zones = new Map<string, Zone>()
  const checks = new Map<string, CheckSpec>()
  // Each file's issues, in the files' order; its dangling targets join them once judged.
  const perFile: ConfigIssue[][] = []
  const dangling: { d: DanglingTarget; into: ConfigIssue[] }[] = []
  const belowCut: { b: BelowCut; into: ConfigIssue[] }[] = []
  // Origins declared by a file that has errors (its zone unknown): targets under them are not judged.
  const broken = new Set<string>()
  // Each file parsed once, here (or taken parsed), for the origins the whole set declares, which a
  // file's build asks (a zone nested in its own); its document is then built and let go.
  const files: { src: ZoneSource; parsed: ParsedZoneText | undefined; declared: string | undefined }[] = sources.map((src) => {
    const given = parsed?.get(src.file)
    const p = given !== undefined && given.text === src.text ? given : parseForBuild(src.text)
    return { src, parsed: p, declared: declaredOrigin(p) }
  })
  const origins = new Set(files.map((f) => f.declared).filter((o) => o !== undefined))
  // The first file (in the set's order) of each origin, whether it has errors or not (its document read).
  const firstOf = new Map<string, string>()
  for (const f of files) {
    const { src } = f
    const p = f.parsed!
    f.parsed = undefined
    const r = buildZoneUnsorted(src, serialOf, options, origins, p)
    const issues = [...r.issues]
    perFile.push(issues)
    // Judged once the set is known, whatever else the file holds: a file with errors, and a second
    // file of one origin (refused, its names its own zone's all the same, so that the file kept when
    // a zone moves to a new file and the old one is then removed shows no new error once it goes).
    for (const d of r.dangling ?? []) dangling.push({ d, into: issues })
    for (const b of r.belowCut ?? []) belowCut.push({ b, into: issues })
    // A second file of an origin is said at once, beside its other errors (and whatever the first
    // one's state): fixing those would not make it served.
    const first = r.origin === undefined ? undefined : firstOf.get(r.origin)
    if (first !== undefined) {
      issues.push(new IssueList(src.file, p.doc, p.lc).at('E_ZONE_DUPLICATE', ['origin'], `zone ${r.origin} is already defined in ${first}`))
      continue
    }
    if (r.origin !== undefined) firstOf.set(r.origin, src.file)
    if (!r.zone) {
      const origin = r.origin ?? f.declared
      if (origin !== undefined) broken.add(origin)
      continue
    }
    zones.set(r.zone.origin, r.zone)
    for (const [k, v] of r.checks ?? []) checks.set(k, v)
  }
  // The origins of the set's zones nested in `origin` (served, or declared by a file with errors)
  // that hold `name`, innermost first.
  const nestedHolding = (name: string, origin: string) => [name, ...ancestorsWithin(name, origin)].filter((n) => n !== origin && (zones.has(n) || broken.has(n)))
  // A target under a zone of the set nested in the file's (gslb.example.com served beside
  // example.com) is answered from that zone: it decides, whatever the file holds there (never
  // served). When that zone's file has errors of its own, what it will hold is unknown: the target
  // is judged once it is fixed.
  for (const { d, into } of dangling) {
    const inner = nestedHolding(d.target, d.origin)[0]
    const issue = inner === undefined ? (d.here.length === 0 ? d.issue : undefined) : zones.has(inner) ? nestedIssue(d, zones.get(inner)!) : undefined
    if (issue) into.push(issue)
  }
  // A name a file writes under a zone of the set nested in its own (www.sub beside sub.example.test)
  // is answered from that zone; only the delegation's glue has a place there. Under a zone whose
  // file has errors, what is glue is unknown: judged once it is fixed.
  for (const { b, into } of belowCut) {
    const nested = nestedHolding(b.name, b.origin)
    if (nested.length === 0 || nested.some((n) => !zones.has(n))) continue
    into.push(...judgeBelowCut(b, zones.get(nested[nested.length - 1]!)!, zones.get(nested[0]!)!))
  }
  const issues = perFile.flatMap(sortedIssues)
  if (issues.length > 0) throw new ConfigError(issues)
  return Object.freeze({ zones, generation, checks })
}

const MIB = 1024 * 1024
/**
 * The largest zone file read: a guard against a file written by mistake (a log, a dump), not a
 * zone's size (1,000 services take about 45-130 KB). Reloads parse in a worker thread
 * (build-thread.ts), the first load on the main thread: 3.3 MiB of 128,000 records took 22 s and
 * 680 MB on a loaded 2-CPU machine, so 50 MB would take minutes and gigabytes.
 */
export const MAX_ZONE_FILE_BYTES = 4 * MIB
/**
 * The highest `--max-zone-file-bytes`: a file is read into one string, and V8's strings hold at
 * most 2^29 - 24 characters (512 MiB); long before that a parse takes the better part of an hour.
 */
export const MAX_ZONE_FILE_BYTES_LIMIT = 256 * MIB

/** `4 MiB`, `512 KiB`, `1000 bytes`: a size limit as set, exact. */
export function formatBytes(n: number): string {
  if (n % MIB === 0) return `${n / MIB} MiB`
  if (n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} byte${n === 1 ? '' : 's'}`
}

/**
 * `--max-zone-file-bytes`: bytes as an integer, or with a `KiB` or `MiB` suffix (`16MiB`),
 * 1 byte .. MAX_ZONE_FILE_BYTES_LIMIT. Throws an Error saying what is accepted.
 */
export function parseMaxZoneFileBytes(v: string): number {
  const m = /^\s*(\d+)\s*(KiB|MiB)?\s*$/i.exec(v)
  const n = m ? Number(m[1]) * (m[2] === undefined ? 1 : m[2].toLowerCase() === 'kib' ? 1024 : MIB) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_ZONE_FILE_BYTES_LIMIT) {
    throw new Error(`must be a size from 1 byte to ${formatBytes(MAX_ZONE_FILE_BYTES_LIMIT)}: a whole number of bytes, or of KiB or MiB with the unit after it (16MiB)`)
  }
  return n
}

/** A file's bytes, or undefined when it holds more than `max` (then not read). */
async function readBounded(file: string, max: number): Promise<Buffer | undefined> {
  const fh = await open(file, 'r')
  try {
    if ((await fh.stat()).size > max) return undefined
    const bytes = await fh.readFile()
    // Grown since (a copy still being written): the watcher reads it again when it is done.
    return bytes.length > max ? undefined : bytes
  } finally {
    await fh.close()
  }
}

/**
 * The zone files (`*.yaml`, `*.yml`, not hidden) of a directory, as paths sorted by name, and the
 * directories named like one (`x.yaml/`), which are no zone files: skipped, as hidden files are (the
 * store warns about them at each reload). A symbolic link is a zone file whatever it names: the
 * operator made it to be read. E_ZONE_IO when the directory cannot be listed.
 */
export async function listZoneDir(dir: string): Promise<{ files: string[]; directories: string[] }> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    throw new ConfigError([{ code: 'E_ZONE_IO', file: dir, line: 0, col: 0, path: '', message: `cannot read the zones directory: ${(err as Error).message}` }])
  }
  const named = entries.filter((e) => ZONE_FILE_RE.test(e.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return {
    files: named.filter((e) => !e.isDirectory()).map((e) => path.join(dir, e.name)),
    directories: named.filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name)),
  }
}

/** The zone files of a directory (listZoneDir: not hidden, no directory), as paths sorted by name; E_ZONE_IO when it cannot be listed. */
export async function zoneFiles(dir: string): Promise<string[]> {
  return (await listZoneDir(dir)).files
}

/** Reads every zone file (zoneFiles) of a directory, sorted by name; one over `maxFileBytes` is an issue, not read. */
export async function readZoneSources(dir: string, options: ReadOptions = {}): Promise<ZoneSource[]> {
  const max = options.maxFileBytes ?? MAX_ZONE_FILE_BYTES
  const files = await zoneFiles(dir)
  const out: ZoneSource[] = []
  const issues: ConfigIssue[] = []
  for (const file of files) {
    try {
      const bytes = await readBounded(file, max)
      if (bytes === undefined) {
        const size = await stat(file).then((st) => (st.size < MIB ? `${st.size} bytes` : `${(st.size / MIB).toFixed(1)} MiB`), () => 'larger than that')
        issues.push({ code: 'E_ZONE_SCHEMA', file, line: 0, col: 0, path: '', message: `the file is ${size}: a zone file may hold at most ${formatBytes(max)} (it is not read; --max-zone-file-bytes sets the limit)` })
        continue
      }
      const text = bytes.toString('utf8')
      const bad = notUtf8(bytes, text)
      if (bad === undefined) out.push({ file, text })
      else issues.push({ code: 'E_ZONE_YAML', file, line: bad.line, col: bad.col, path: '', message: `the file is not UTF-8 (byte 0x${bytes[bad.offset]!.toString(16).padStart(2, '0')}); save it as UTF-8` })
    } catch (err) {
      const why = await unreadable(file, err as NodeJS.ErrnoException)
      // Removed since the directory was listed (an editor's save, a rename): not part of the set.
      if (why !== undefined) issues.push({ code: 'E_ZONE_IO', file, line: 0, col: 0, path: '', message: `cannot read the zone file: ${why.message}`, ...(why.content ? { content: true } : {}) })
    }
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return out
}

/**
 * Where the first byte that is not UTF-8 is (decoding replaced it with U+FFFD, so the text encodes
 * back to other bytes from there), or undefined when the file is UTF-8.
 */
function notUtf8(bytes: Buffer, text: string): { offset: number; line: number; col: number } | undefined {
  const back = Buffer.from(text, 'utf8')
  if (back.equals(bytes)) return undefined
  let offset = 0
  while (offset < bytes.length && bytes[offset] === back[offset]) offset++
  // A bad byte that happens to open the replacement character's own bytes (0xef): back to its start.
  while (offset > 0 && (back[offset]! & 0xc0) === 0x80) offset--
  const before = withoutBom(bytes.subarray(0, offset).toString('utf8'))
  const lineStart = before.lastIndexOf('\n') + 1
  return { offset, line: before.split('\n').length, col: before.length - lineStart + 1 }
}

/**
 * Why a listed zone file cannot be read, or undefined when it is gone (removed since it was listed).
 * `content`: for what it is on disk (a symbolic link that dangles, loops or names a directory, or a
 * directory made at its name since it was listed), the operator's to fix as a YAML error is; else
 * a failure to read it (EACCES, EIO).
 */
async function unreadable(file: string, err: NodeJS.ErrnoException): Promise<{ message: string; content: boolean } | undefined> {
  const target = await readlink(file).catch(() => undefined)
  const resolved = target === undefined ? undefined : path.resolve(path.dirname(file), target)
  if (err.code === 'EISDIR') return { message: resolved === undefined ? 'it is a directory' : `it is a symbolic link to ${resolved}, which is a directory`, content: true }
  if (err.code === 'ENOENT' || err.code === 'ELOOP') {
    if (resolved === undefined) return (await lstat(file).then(() => true, () => false)) ? { message: err.message, content: false } : undefined
    return { message: err.code === 'ELOOP' ? `it is a symbolic link to ${resolved}, which loops` : `it is a symbolic link to ${resolved}, which does not exist`, content: true }
  }
  return { message: err.message, content: false }
}
