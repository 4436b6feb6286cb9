/**
 * # admin/: the admin REST API (fastify)
 *
 * Owns the HTTP routes operators use to create and delete zones, manage their regions and services
 * live, read health, explain a DNS answer and reload the zones. Every change goes through the config
 * store's edit path
 * (store/file-store.ts): validated with the zone schema, the whole zone set rebuilt and validated,
 * the zone's YAML written atomically with its comments kept, the set swapped in (DNS answers change
 * at once), and only then answered. Imports no dns/ code: the explain route gets a Resolver built
 * in cli.ts.
 *
 * Routes (docs/api.md; OpenAPI at /openapi.json):
 *   GET|POST /v1/zones                   GET|DELETE /v1/zones/{zone}
 *   GET|POST /v1/zones/{zone}/regions    GET|PUT|PATCH|DELETE /v1/zones/{zone}/regions/{region}
 *   POST /v1/zones/{zone}/regions/{region}/drain | /undrain
 *   GET|POST /v1/zones/{zone}/services   GET|PUT|PATCH|DELETE /v1/zones/{zone}/services/{service}
 *   GET /v1/health   GET /v1/explain?name=&type=&client=&ecs=   POST /v1/reload
 *   GET /metrics     GET /healthz     GET /readyz     GET /openapi.json
 *
 * Auth: `Authorization: Bearer TOKEN` for every write, and for reads too when `readsNeedToken`
 * (a non-loopback admin address); /healthz and /readyz are open. Errors: JSON
 * `{ error: CODE, message, details: [{ path, message }] }` (admin/errors.ts), never a stack trace.
 * Every response about one zone carries its ETag; a write with a stale If-Match gets 412.
 *
 * Example:
 *   const app = buildAdminApp({ store, health: () => poller.view(), resolve, token, readsNeedToken: false,
 *                               logger, metrics: () => register.metrics(), ready: () => ({ ready: true, reasons: [] }) })
 *   await app.listen({ host: '127.0.0.1', port: 8053 })
 *
 * Metrics: none of its own (GET /metrics serves the injected registry).
 */
import { isIP } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { REGION_NAME_PATTERN } from '../config/schema.js'
import type { Logger } from '../log.js'
import type { VipHealth } from '../model/gslb.js'
import { canonical, isInZone, nameProblem, resolveName } from '../model/name.js'
import type { Zone } from '../model/types.js'
import { NotDurableEditError, PreconditionError, type EditableConfigStore, type EditResult } from '../store/file-store.js'
import { ifNoneMatchMatches, isPlainObject, renderNewZone } from '../store/zone-editor.js'
import { bearerMessage, bearerProblem } from './auth.js'
import { editZone, entryKey, listed, missing as missingIn, serviceTarget, type EditOp } from './edits.js'
import { ApiError, badRequest, invalid, notFound, toErrorBody } from './errors.js'
import { explain, parseExplainRequest, type Resolver } from './explain.js'
import { healthReport, type HealthSnapshot } from './health.js'
import { openApiDocument } from './openapi.js'
import { assertEntry, assertZone, objectBody, takeName, withoutUnwrittenDefaults, withoutZoneDefaults, type Section } from './validate.js'

export interface Readiness {
  ready: boolean
  /** What is still missing, for a person. */
  reasons: string[]
}

export interface AdminDeps {
  store: EditableConfigStore
  /** The health poller's current view. */
  health: () => HealthSnapshot
  /** Answers a question the way the DNS server does (explain). */
  resolve: Resolver
  /** The bearer token; without one every write is refused. */
  token: string | undefined
  /** Reads need the token too (the API listens on a non-loopback address). */
  readsNeedToken: boolean
  /** The root logger; requests are logged through `logger.child({ mod: 'admin' })`, the Authorization header redacted. */
  logger: Logger
  /** Prometheus text exposition of the metrics registry. */
  metrics: () => Promise<string>
  ready: () => Readiness
  /**
   * Takes the GeoIP database file again when it was replaced (POST /v1/reload); none: only the
   * zones reload. What it did, as geo/'s GeoReload (admin does not import geo/).
   */
  reloadGeo?: () => Promise<{ path: string; changed: boolean; buildEpoch: string; error?: string }>
  /** Largest accepted request body, bytes (default 64 KiB). */
  bodyLimit?: number
  version?: string
}

export const DEFAULT_BODY_LIMIT = 64 * 1024
const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const OPEN_ROUTES = new Set(['/healthz', '/readyz'])

/**
 * Deepest body accepted: a region nests 3 levels (`{ check: { expect: [200] } }`). Validation and
 * merge patching recurse, so a deeper body (2,000 levels fit in 10 KB) would overflow the stack: a 500.
 */
const MAX_BODY_DEPTH = 32

/** Headers whose duplicates Node drops (keeping the first), where the one kept decides who may do what. */
const SINGLE_HEADERS = ['Authorization', 'Host']

/** The first of `names` that `rawHeaders` (name, value, name, value...) holds more than once, and how often. */
function headerGivenTwice(rawHeaders: readonly string[], names: readonly string[]): { name: string; count: number } | undefined {
  for (const name of names) {
    let count = 0
    for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name.toLowerCase()) count++
    if (count > 1) return { name, count }
  }
  return undefined
}

/** Whether a Host header names this machine by address or as localhost (or is absent: HTTP/1.0; browsers always send it). */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true
  const name = (host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '')).toLowerCase().replace(/\.$/, '')
  return isIP(name) !== 0 || name === 'localhost'
}

/** Why a name in the URL is none: blank, or with whitespace around it that a lookup would trim away; null if neither. */
function urlNameProblem(param: string): string | null {
  if (param.trim() === '') return 'it is blank'
  if (param !== param.trim()) return 'it has whitespace around it'
  return null
}


const REGION_NAME = new RegExp(REGION_NAME_PATTERN)

/** The media types whose bodies the API reads (as JSON). */
const JSON_TYPES = new Set(['application/json', 'application/merge-patch+json'])

/**
 * The first `charset` parameter of a JSON Content-Type that is not UTF-8 (`latin1`, `"ISO-8859-1"`:
 * its value as sent, unquoted), or undefined: none, `utf-8` or `utf8` in any case, or not a JSON type
 * (refused anyway, as not JSON). Parameters as RFC 9110 §8.3.1 writes them: `; name=token` or
 * `; name="quoted string"`, the name in any case.
 */
export function notUtf8Charset(contentType: string): string | undefined {
  const semi = contentType.indexOf(';')
  if (!JSON_TYPES.has((semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase())) return undefined
  for (const m of contentType.slice(semi < 0 ? contentType.length : semi).matchAll(/;\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g)) {
    if (m[1]!.toLowerCase() !== 'charset') continue
    const raw = m[2]!
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw.trim()
    if (!/^utf-?8$/i.test(value)) return value
  }
  return undefined
}

/** Whether `value` nests objects or arrays more than `max` levels deep (found without recursion). */
function nestedDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (depth > max) return true
    for (const child of Object.values(v)) stack.push([child, depth + 1])
  }
  return false
}

/**
 * The first key `text` (valid JSON) gives twice in one object, with the path of that object's key
 * (`check.interval`); undefined when none. JSON.parse keeps the last of two, so `{"weight": 5,
 * "weight": 700}` would be taken as 700: which the client meant is a guess (RFC 8259 §4 calls the
 * result unpredictable), and a zone file with a key twice is refused too. Names are compared as
 * JSON.parse reads them (`"w\u0065ight"` is `weight`). One pass, no recursion.
 */
export function keyGivenTwice(text: string): { key: string; path: string } | undefined {
  /** Per open object, its keys so far (a list: null) and the key or index now being read. */
  const stack: { keys: Set<string> | null; at: string | number; expectKey: boolean }[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    const top = stack[stack.length - 1]
    if (c === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string
        if (top.keys.has(key)) return { key, path: [...stack.slice(0, -1).map((f) => f.at), key].join('.') }
        top.keys.add(key)
        top.at = key
        top.expectKey = false
      }
      i = j
    } else if (c === '{') stack.push({ keys: new Set(), at: '', expectKey: true })
    else if (c === '[') stack.push({ keys: null, at: 0, expectKey: false })
    else if (c === '}' || c === ']') stack.pop()
    else if (c === ',' && top) {
      if (top.keys) top.expectKey = true
      else top.at = (top.at as number) + 1
    }
  }
  return undefined
}

/**
 * Why a service name in the URL (decoded) names no service `origin` can hold, or null: not a domain
 * name (`a..b`), outside the zone (`www.`, `www%2e`: a final dot makes it absolute, the top-level
 * `www`; `.`, the root), or the apex, as a zone file's service key is refused for each.
 */
function serviceNameProblem(p: string, origin: string): string | null {
  const target = serviceTarget(p, origin)
  const problem = nameProblem(target)
  if (problem) return problem
  if (target === origin) return 'a service cannot stand at the zone apex, which holds the SOA and NS records'
  if (isInZone(target, origin)) return null
  const relative = p.trim().slice(0, -1)
  const hint = p.trim().endsWith('.') && relative !== '' && !relative.includes('.') ? ` (a name ending in . is absolute: write "${relative}" for ${resolveName(relative, origin)})` : ''
  return `it names ${target === '' ? 'the root' : target}, outside the zone ${origin}${hint}`
}

type Params = { zone: string; region?: string; service?: string }
type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, string | string[] | undefined> }>


/** The key a new service is stored under: relative to the origin when inside it (`api`, `@`), as zone files write them. */
function serviceKeyFor(name: string, origin: string): string {
  const target = serviceTarget(name, origin)
  if (target === origin) return '@'
  if (target.endsWith(`.${origin}`)) return target.slice(0, -(origin.length + 1))
  return `${target}.`
}

/** `s` quoted for a POSIX shell when it holds anything but safe characters. */
const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`)

/**
 * A POST /v1/zones body (a zone definition, as GET /v1/zones/{zone} shows one or a zone file
 * writes it) checked with the zone schema, and the text of its new file: keys in the schema's
 * order, and without the keys that hold their default (a GET answer sent back writes only what the
 * operator would). A 400 for a body the schema refuses, and for an origin that is no name a file
 * can be named after.
 */
function newZoneText(body: Record<string, unknown>): { origin: string; text: string } {
  assertZone(body)
  const origin = canonical(body.origin as string)
  const problem = nameProblem(origin)
  if (problem) throw invalid([{ path: 'origin', message: problem }], 'E_ZONE_SEMANTIC')
  if (origin === '') throw badRequest('the root zone cannot be created through the API (its file would have no name); write its file by hand', 'origin')
  if (Buffer.byteLength(`${origin}.yaml`) > 255) throw badRequest(`${origin} is too long to name its file ${origin}.yaml (at most 255 octets)`, 'origin')
  return { origin, text: renderNewZone(withoutZoneDefaults(body)) }
}

const regionJson = (zone: Zone, name: string) => ({ name, ...zone.definition.regions[name] })

/**
 * A service body without the `fqdn` GET shows: taken when it is the service's own (a GET's body sent
 * back as it was), a 400 otherwise (it follows from the name, and renaming is not supported).
 */
function withoutFqdn(section: Section, body: Record<string, unknown>, name: string, origin: string): Record<string, unknown> {
  if (section !== 'services' || !('fqdn' in body)) return body
  const { fqdn, ...rest } = body
  const own = serviceTarget(name, origin)
  if (typeof fqdn !== 'string' || canonical(fqdn) !== own) throw badRequest(`is ${JSON.stringify(fqdn)} but the service is ${own}; fqdn follows from the name and cannot be set`, 'fqdn')
  return rest
}
const serviceJson = (zone: Zone, key: string) => ({ name: key, fqdn: resolveName(key, zone.origin), ...zone.definition.services[key] })

export function buildAdminApp(deps: AdminDeps): FastifyInstance {
  const log = deps.logger.child({ mod: 'admin' }, { redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization'], censor: '[redacted]' } })
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    forceCloseConnections: true,
    return503OnClosing: true,
    // A service's full name may be 253 octets, percent-encoded up to three times that.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    // A bad URL (percent-encoding) or an over-long name: the same error body as every other 4xx.
    frameworkErrors: (err, _req, reply) => {
      const { status, body } = toErrorBody(err)
      void (reply as FastifyReply).code(status).type('application/json; charset=utf-8').send(body)
    },
  })
  const { store } = deps
  /** The file a request edits, so that its rebuild issues are reported without file positions. */
  const editedFile = new WeakMap<FastifyRequest, string>()

  // Only JSON bodies (merge-patch too); anything else is a 415 before a handler runs.
  app.removeAllContentTypeParsers()
  // An empty body is no body (clients that always send Content-Type: application/json, to drain);
  // a route that needs one says so (objectBody).
  // Fastify's parser says only "not valid JSON": the reason (and where) comes from JSON.parse.
  const json = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser(['application/json', 'application/merge-patch+json'], { parseAs: 'string' }, (req, raw, done) => {
    const text = String(raw)
    if (text === '') return done(null, undefined)
    json(req, text, (err, value) => {
      if (!err) {
        if (nestedDeeper(value, MAX_BODY_DEPTH)) return done(badRequest(`the body is nested more than ${MAX_BODY_DEPTH} levels deep; no region or service is`), undefined)
        const twice = keyGivenTwice(text)
        if (twice) return done(badRequest(`the body gives the key ${JSON.stringify(twice.key)} twice in one object; which one is meant is a guess, so neither is taken (as a zone file with a key twice is refused)`, twice.path), undefined)
        return done(null, value)
      }
      let why: string
      try {
        JSON.parse(text)
        why = 'a key named __proto__, or constructor holding prototype, is refused'
      } catch (e) {
        why = (e as Error).message
      }
      done(new ApiError('E_API_BODY', 400, `the body is not valid JSON: ${why}`), undefined)
    })
  })

  app.addHook('onRequest', async (req, reply) => {
    if (OPEN_ROUTES.has(req.routeOptions.url ?? '')) return
    // Node keeps the first of two Authorization or Host headers: which one the client meant is a
    // guess, and a guessed credential or origin must not be acted on (RFC 9112 §3.2 for Host).
    const twice = headerGivenTwice(req.raw.rawHeaders, SINGLE_HEADERS)
    if (twice) throw badRequest(`is given ${twice.count} times; a request may carry it once`, twice.name)
    // On loopback reads are open, so a web page whose name was rebound to 127.0.0.1 could read them
    // from the operator's browser (DNS rebinding); its requests carry its own name as Host.
    if (!deps.readsNeedToken && !loopbackHost(req.headers.host)) {
      throw new ApiError('E_API_HOST', 403, `Host ${JSON.stringify(req.headers.host)} is refused: on a loopback address the API answers requests for an IP address or localhost only (a page whose name points here could read it); use http://127.0.0.1:PORT, or a non-loopback --admin address with a token`)
    }
    const write = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS'
    if (!write && !deps.readsNeedToken) return
    reply.header('www-authenticate', 'Bearer realm="meridian"')
    if (deps.token === undefined) {
      throw new ApiError('E_API_AUTH', 401, 'no admin token is configured, so the API is read-only: start Meridian with MERIDIAN_ADMIN_TOKEN or --admin-token-file to allow changes')
    }
    const problem = bearerProblem(req.headers.authorization, deps.token)
    if (problem) throw new ApiError('E_API_AUTH', 401, bearerMessage(problem, write ? 'a change' : 'this API (not on a loopback address)'))
    reply.removeHeader('www-authenticate')
  })

  // A body in a content coding (Content-Encoding: gzip) is not decoded: its bytes would be taken as
  // JSON they are not (a 400 quoting binary), or, sent plain though labelled gzip, applied as what the
  // client says they are not. A 415 naming the coding, with the codings taken (RFC 9110 §15.5.16).
  // After the token check (onRequest), before the body is read.
  // A JSON body labelled with another charset than UTF-8 (`charset=latin1`) would be read as UTF-8
  // all the same: its é taken as something else than was sent. JSON exchanged between systems is
  // UTF-8 (RFC 8259 §8.1): a 415 naming the charset, as for a content coding.
  app.addHook('preParsing', async (req, reply) => {
    // No body (a GET, an empty drain): there is nothing to decode.
    if (req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length'] ?? 0) === 0) return
    const coding = req.headers['content-encoding']?.trim()
    if (coding !== undefined && coding !== '' && coding.toLowerCase() !== 'identity') {
      void reply.header('accept-encoding', 'identity')
      throw new ApiError('E_API_MEDIA_TYPE', 415, `the body is sent with Content-Encoding ${coding}, which the API does not decode: send it uncompressed (no Content-Encoding)`)
    }
    const type = req.headers['content-type']
    const charset = type === undefined ? undefined : notUtf8Charset(type)
    if (charset !== undefined) {
      throw new ApiError('E_API_MEDIA_TYPE', 415, `the body is sent as charset ${JSON.stringify(charset)} (Content-Type: ${type}): JSON is UTF-8 (RFC 8259 §8.1) and the API reads it as nothing else; send it as UTF-8, with charset=utf-8 or no charset`)
    }
  })

  app.setErrorHandler((err, req, reply) => {
    const { status, body, unexpected, retryAfter } = toErrorBody(err, editedFile.get(req))
    if (unexpected) req.log.error({ err }, 'admin request failed')
    if (retryAfter !== undefined) {
      req.log.warn({ code: body.error, err: body.message }, 'admin request refused for now; it may be retried')
      reply.header('retry-after', String(retryAfter))
    }
    // A 412 carries the current ETag, and so does a change made but not durable (what a GET returns now).
    if (err instanceof PreconditionError || err instanceof NotDurableEditError) {
      // (a zone deleted but not durably has no ETag any more: the one of the zone it was goes too)
      if (err.etag !== undefined) reply.header('etag', err.etag)
      else reply.removeHeader('etag')
    }
    void reply.code(status).type('application/json; charset=utf-8').send(body)
  })
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0]!
    // A path that exists for other methods: 405 with Allow (RFC 9110 §15.5.6), not "no such path".
    const allowed = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((method) => app.findRoute({ method, url: path }) !== null)
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '))
      throw new ApiError('E_API_METHOD', 405, `${req.method} is not allowed on ${path}; it takes ${allowed.join(', ')} (see GET /openapi.json)`)
    }
    throw notFound(`no route ${req.method} ${path} (see GET /openapi.json)`)
  })

  /** The zone a URL names (404 if none); its ETag goes on the response, whatever happens next. */
  const zoneFor = (req: Req, reply: FastifyReply): Zone => {
    const origin = canonical(req.params.zone)
    // `..` would otherwise be looked up as `.` (its final dot dropped) and answered "no zone .";
    // ` ` (%20) as the root, answered "no zone  is served".
    const problem = urlNameProblem(req.params.zone) ?? nameProblem(origin)
    if (problem) throw badRequest(`${JSON.stringify(req.params.zone)} is not a valid zone name: ${problem}`, 'zone')
    const set = store.current()
    const zone = set.zones.get(origin)
    if (!zone) throw notFound(`no zone ${origin} is served here (zones: ${listed([...set.zones.keys()])})`)
    const etag = store.etag(origin)
    if (etag) void reply.header('etag', etag)
    editedFile.set(req, zone.file)
    return zone
  }

  /** GET with If-None-Match equal to the current ETag: 304, no body. */
  const notModified = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const inm = req.headers['if-none-match']
    const etag = reply.getHeader('etag')
    if (typeof inm !== 'string' || typeof etag !== 'string' || !ifNoneMatchMatches(inm, etag)) return false
    void reply.code(304).send()
    return true
  }

  const edit = async (req: Req, reply: FastifyReply, zone: Zone, mutate: EditOp): Promise<EditResult> => {
    // If-None-Match on a change of an existing entry (RFC 9110 §13.1.2): `*`, or the current ETag,
    // says "only if it is not what I know": refused (by the store, in turn with other edits). A
    // create (POST to a list) does not look.
    const inm = req.headers['if-none-match']
    const list = /\/(regions|services)$/.test(req.routeOptions.url ?? '')
    const ifMatch = req.headers['if-match']
    const res = await store.edit(zone.origin, mutate, {
      ifMatch: typeof ifMatch === 'string' ? ifMatch : undefined,
      ifNoneMatch: !list && typeof inm === 'string' ? inm : undefined,
      reason: `admin: ${req.method} ${req.url}`,
    })
    void reply.header('etag', res.etag)
    return res
  }

  const vipHealth = (key: string): VipHealth | undefined => deps.health().targets.get(key)

  // ---- zones ------------------------------------------------------------------------------------

  app.get('/v1/zones', async () => {
    const set = store.current()
    return [...set.zones.values()].map((z) => ({
      origin: z.origin,
      file: z.file,
      serial: z.soa.serial,
      etag: store.etag(z.origin) ?? null,
      regions: Object.keys(z.definition.regions),
      services: Object.keys(z.definition.services).map((k) => resolveName(k, z.origin)),
      names: z.nodes.size,
    }))
  })

  app.get('/v1/zones/:zone', async (req: Req, reply) => {
    const zone = zoneFor(req, reply)
    if (notModified(req, reply)) return reply
    return zone.definition
  })

  app.post('/v1/zones', async (req: Req, reply) => {
    const { origin, text } = newZoneText(objectBody(req.body))
    // Problems of the new zone are the body's: reported by key path, without positions in a file
    // that was never written. Problems of other files carry their file and line.
    editedFile.set(req, store.newZoneFile(origin))
    const res = await store.createZone(origin, text, { reason: `admin: ${req.method} ${req.url} ${origin}` })
    return reply.code(201).header('location', `/v1/zones/${encodeURIComponent(origin)}`).header('etag', res.etag).send(res.zone.definition)
  })

  app.delete('/v1/zones/:zone', async (req: Req, reply) => {
    const zone = zoneFor(req, reply)
    const inm = req.headers['if-none-match']
    const ifMatch = req.headers['if-match']
    const res = await store.deleteZone(zone.origin, {
      ifMatch: typeof ifMatch === 'string' ? ifMatch : undefined,
      ifNoneMatch: typeof inm === 'string' ? inm : undefined,
      reason: `admin: ${req.method} ${req.url}`,
    })
    // The zone is gone: no ETag describes it any more.
    void reply.removeHeader('etag')
    return {
      origin: zone.origin,
      deleted: true,
      file: res.file,
      movedTo: res.movedTo,
      // -n: a file made at the zone's name since (the zone created anew) is not replaced by the restore.
      restore: `mv -n ${shellQuote(res.movedTo)} ${shellQuote(res.file)}`,
      message: `zone ${zone.origin} is no longer served (its names are REFUSED); its file was moved to ${res.movedTo}: move it back (restore) and the zone is served again`,
      zones: [...res.set.zones.keys()],
    }
  })

  // ---- regions and services -----------------------------------------------------------------------

  /** The 404 of an entry, with the zone's entries of its kind (as its file writes their names: what a URL takes). */
  const missing = (kind: 'region' | 'service', name: string, zone: Zone) => missingIn(kind, name, editZone(zone))

  /**
   * The entry's name in the URL; a 400 when it is no name (blank, whitespace around it; for a region,
   * not what a zone file may name one; for a service, not a domain name): no zone holds it, whatever
   * its spelling, so a 404 would only say it is not there.
   */
  const entryParam = (section: Section, req: Req) => {
    const kind = section === 'regions' ? 'region' : 'service'
    const p = section === 'regions' ? req.params.region! : req.params.service!
    const problem =
      urlNameProblem(p) ??
      (section === 'services'
        ? serviceNameProblem(p, canonical(req.params.zone))
        : REGION_NAME.test(p)
          ? null
          : "a region name holds only lowercase letters, digits and '-', starts and ends with a letter or digit and is at most 63 characters long")
    if (problem) throw badRequest(`${JSON.stringify(p)} is not a valid ${kind} name: ${problem}`, kind)
    return p
  }
  /**
   * The zone and the entry's name in the URL: a 404 if it is not there, whatever the preconditions
   * say (RFC 9110 §13.2.2).
   */
  const existingEntry = (section: Section, req: Req, reply: FastifyReply) => {
    const zone = zoneFor(req, reply)
    const p = entryParam(section, req)
    if (entryKey(section, Object.keys(zone.definition[section]), zone.origin, p) === undefined) throw missing(section === 'regions' ? 'region' : 'service', p, zone)
    return { zone, p }
  }

  for (const section of ['regions', 'services'] as const) {
    const kind = section === 'regions' ? 'region' : 'service'
    const param = (req: Req) => entryParam(section, req)
    const one = (zone: Zone, key: string) => (section === 'regions' ? regionJson(zone, key) : serviceJson(zone, key))
    /** The key of the entry `p` names in the zone as served. */
    const keyOf = (zone: Zone, p: string) => entryKey(section, Object.keys(zone.definition[section]), zone.origin, p)
    /** The key of the entry `p` names in the document being edited. */
    /** Whether a body's `name` names the entry the URL's `p` names (a service by any of its spellings). */
    const sameName = (zone: Zone, p: string) => (name: string) => section === 'services' && serviceTarget(name, zone.origin) === serviceTarget(p, zone.origin)
    const existing = (req: Req, reply: FastifyReply) => existingEntry(section, req, reply)
    const changeBody = (req: Req, zone: Zone, p: string) => withoutFqdn(section, takeName(objectBody(req.body), { expected: p, same: sameName(zone, p) }).rest, p, zone.origin)
    const base = `/v1/zones/:zone/${section}`
    const item = `${base}/:${kind}`

    app.get(base, async (req: Req, reply) => {
      const zone = zoneFor(req, reply)
      if (notModified(req, reply)) return reply
      return Object.keys(zone.definition[section]).map((k) => one(zone, k))
    })

    app.get(item, async (req: Req, reply) => {
      const zone = zoneFor(req, reply)
      const key = keyOf(zone, param(req))
      if (key === undefined) throw missing(kind, param(req), zone)
      if (notModified(req, reply)) return reply
      return one(zone, key)
    })

    app.post(base, async (req: Req, reply) => {
      const zone = zoneFor(req, reply)
      const { name, rest: body } = takeName(objectBody(req.body), { required: true })
      const rest = withoutUnwrittenDefaults(section, withoutFqdn(section, body, name, zone.origin), undefined)
      const key = section === 'regions' ? name : serviceKeyFor(name, zone.origin)
      assertEntry(section, key, rest)
      const res = await edit(req, reply, zone, { op: 'create', section, name, key, rest })
      return reply.code(201).header('location', `/v1/zones/${zone.origin}/${section}/${encodeURIComponent(key)}`).send(one(res.zone, key))
    })

    app.put(item, async (req: Req, reply) => {
      const { zone, p } = existing(req, reply)
      const body = changeBody(req, zone, p)
      const res = await edit(req, reply, zone, { op: 'replace', section, p, body })
      return one(res.zone, keyOf(res.zone, p)!)
    })

    app.patch(item, async (req: Req, reply) => {
      const { zone, p } = existing(req, reply)
      const body = changeBody(req, zone, p)
      const res = await edit(req, reply, zone, { op: 'patch', section, p, body })
      return one(res.zone, keyOf(res.zone, p)!)
    })

    app.delete(item, async (req: Req, reply) => {
      const { zone, p } = existing(req, reply)
      const d = req.query.detach
      if (d !== undefined && !(d === 'true' || d === 'false' || d === '1' || d === '0' || d === '')) throw badRequest(`must be true or false, got ${JSON.stringify(d)}`, 'detach')
      if (d !== undefined && section === 'services') throw badRequest('applies to regions only', 'detach')
      const detach = d === 'true' || d === '1' || d === ''
      await edit(req, reply, zone, { op: 'delete', section, p, detach })
      return reply.code(204).send()
    })
  }

  for (const action of ['drain', 'undrain'] as const) {
    app.post(`/v1/zones/:zone/regions/:region/${action}`, async (req: Req, reply) => {
      const { zone, p: name } = existingEntry('regions', req, reply)
      const b = req.body
      if (b !== undefined && !(isPlainObject(b) && Object.keys(b).length === 0)) throw badRequest(`${action} takes no body (or {}), got ${JSON.stringify(b).slice(0, 80)}`)
      const res = await edit(req, reply, zone, { op: action, region: name })
      return regionJson(res.zone, name)
    })
  }

  // ---- health, explain, reload ---------------------------------------------------------------------

  app.get('/v1/health', async () => healthReport(store.current(), deps.health()))

  app.get('/v1/explain', async (req: Req) => {
    const q = req.query
    const str = (v: string | string[] | undefined) => (Array.isArray(v) ? undefined : v)
    for (const k of ['name', 'type', 'client', 'ecs']) if (Array.isArray(q[k])) throw badRequest('is given more than once', k)
    const question = parseExplainRequest({ name: str(q.name) as string, type: str(q.type), client: str(q.client) as string, ecs: str(q.ecs) })
    return explain(question, deps.resolve, vipHealth)
  })

  app.post('/v1/reload', async () => {
    const before = store.current().generation
    const set = await store.reload('admin API')
    const body = {
      generation: set.generation,
      changed: set.generation !== before,
      zones: [...set.zones.values()].map((z) => ({ origin: z.origin, serial: z.soa.serial, etag: store.etag(z.origin) ?? null })),
    }
    if (!deps.reloadGeo) return body
    const g = await deps.reloadGeo()
    if (g.error) throw new ApiError('E_GEODB', 409, `the zone files were reloaded (generation ${set.generation}), the GeoIP database was not: ${g.error}; the last good database (built ${g.buildEpoch}) keeps answering`)
    return { ...body, geodb: { path: g.path, changed: g.changed, buildEpoch: g.buildEpoch } }
  })

  // ---- operations -----------------------------------------------------------------------------------

  app.get('/metrics', async (_req, reply) => reply.type(METRICS_TYPE).send(await deps.metrics()))
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    const r = deps.ready()
    return reply.code(r.ready ? 200 : 503).send(r)
  })
  const openapi = openApiDocument(deps.version ?? '0.0.0')
  app.get('/openapi.json', async () => openapi)

  return app
}
