/**
 * GET /openapi.json: the admin API as OpenAPI 3.1, its body schemas generated from the zone schema
 * (config/schema.ts zoneSchema, regionSchema and serviceSchema, the `x-message` keys stripped), so the document,
 * the zone files and the API's validation cannot disagree.
 */
import { REGION_NAME_PATTERN, regionSchema, serviceSchema, zoneSchema } from '../config/schema.js'

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** A deep copy of `schema` without the keyword `key` at any depth. */
function without(schema: unknown, key: string): Json {
  if (Array.isArray(schema)) return schema.map((s) => without(s, key))
  if (schema === null || typeof schema !== 'object') return schema as Json
  const out: Record<string, Json> = {}
  for (const [k, v] of Object.entries(schema)) if (k !== key) out[k] = without(v, key)
  return out
}

/** A zone schema node as JSON Schema: without the `x-message` keys (Meridian's messages). */
const stripExtensions = (schema: unknown): Json => without(schema, 'x-message')
const withoutDefaults = (s: Json): Json => without(s, 'default')

type ObjectSchema = { type: 'object'; properties: Record<string, Json>; required?: string[]; additionalProperties: false; description?: string }

/** The schemas of request and response bodies. */
function bodySchemas(): Record<string, Json> {
  const region = stripExtensions(regionSchema) as unknown as ObjectSchema
  const service = stripExtensions(serviceSchema) as unknown as ObjectSchema
  const regionName = { type: 'string', pattern: REGION_NAME_PATTERN, description: 'Region name: lowercase letters, digits and -, starting and ending with a letter or digit, at most 63 characters (a DNS label).' }
  const serviceName = { type: 'string', minLength: 1, description: 'Owner name as in the zone file: relative to the origin (www), @, or absolute with a final dot.' }
  const fqdn = { type: 'string', description: 'The full name (www.gslb.example.com). In a request body, optional: when given, the service\'s own (what GET returned).' }
  /** A merge patch (RFC 7396): every key optional, null removes an optional key (back to its default). */
  const patch = (s: ObjectSchema, names: Record<string, Json>): Json => ({
    type: 'object',
    additionalProperties: false,
    properties: {
      ...names,
      ...Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, (s.required ?? []).includes(k) ? withoutDefaults(v) : { anyOf: [withoutDefaults(v), { type: 'null' }] }])),
    },
  })
  const sameName = (n: Record<string, unknown>): Json => ({ ...n, description: 'Optional; when given, it names what the URL names (a GET answer can be sent back as it is).' })
  const zone = Object.fromEntries(Object.entries(stripExtensions(zoneSchema) as Record<string, Json>).filter(([k]) => k !== '$id' && k !== 'title'))
  return {
    Zone: { ...zone, description: 'A zone definition as in a zone file (docs/zones.md). GET shows it with every default filled in; POST takes it as a file writes it (defaults may be left out).' },
    ZoneDeleted: {
      type: 'object',
      additionalProperties: false,
      required: ['origin', 'deleted', 'file', 'movedTo', 'restore', 'message', 'zones'],
      properties: {
        origin: { type: 'string' },
        deleted: { const: true },
        file: { type: 'string', description: 'Where the zone file was.' },
        movedTo: { type: 'string', description: 'Where it is now: <zones>/.meridian/deleted/<name>.<UTC time>.yaml.' },
        restore: { type: 'string', description: 'The shell command that moves it back; the file watcher (or POST /v1/reload) then serves the zone again.' },
        message: { type: 'string' },
        zones: { type: 'array', items: { type: 'string' }, description: 'The zones served now.' },
      },
    },
    Region: { ...region, required: ['name', ...(region.required ?? [])], properties: { name: regionName, ...region.properties }, description: 'A region as in a zone file (docs/zones.md), with its name and the defaults that apply filled in.' } as unknown as Json,
    RegionCreate: { ...region, required: ['name', ...(region.required ?? [])], properties: { name: regionName, ...region.properties } } as unknown as Json,
    RegionReplace: { ...region, properties: { name: sameName(regionName), ...region.properties } } as unknown as Json,
    RegionPatch: patch(region, { name: sameName(regionName) }),
    Service: { ...service, required: ['name', 'fqdn'], properties: { name: serviceName, fqdn, ...service.properties }, description: 'A GSLB service as in a zone file (docs/zones.md), with its names and every default filled in.' } as unknown as Json,
    ServiceCreate: { ...service, required: ['name'], properties: { name: serviceName, fqdn, ...service.properties } } as unknown as Json,
    ServiceReplace: { ...service, properties: { name: sameName(serviceName), fqdn, ...service.properties } } as unknown as Json,
    ServicePatch: patch(service, { name: sameName(serviceName), fqdn }),
    Error: {
      type: 'object',
      required: ['error', 'message', 'details'],
      properties: {
        error: { type: 'string', description: 'A stable code from docs/errors.md (E_ZONE_SCHEMA, E_API_NOT_FOUND...).' },
        message: { type: 'string' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            required: ['path', 'message'],
            properties: { path: { type: 'string', description: 'Key path of the problem (check.timeout); empty for the whole body.' }, message: { type: 'string' }, file: { type: 'string' }, line: { type: 'integer' }, col: { type: 'integer' } },
          },
        },
      },
    },
  }
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } })
const err = (description: string) => json(ref('Error'), description)
const any = { type: 'object' }
const etagHeader = { ETag: { description: "The zone's ETag: a hash of the file's text the serving set was built from (what a GET returns). Send it back as If-Match.", schema: { type: 'string' } } }
const withEtag = (r: Record<string, unknown>) => ({ ...r, headers: etagHeader })

const zoneParam = { name: 'zone', in: 'path', required: true, schema: { type: 'string' }, description: 'Zone origin, e.g. gslb.example.com' }
const regionParam = { name: 'region', in: 'path', required: true, schema: { type: 'string' } }
const serviceParam = { name: 'service', in: 'path', required: true, schema: { type: 'string' }, description: 'Owner name as in the file (www) or the full name (www.gslb.example.com).' }
const ifMatch = { name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: "Refuse the change (412) unless this is the zone's current ETag." }
const ifNoneMatch = { name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' }, description: "Refuse the change (412) when this is * or names the zone's current ETag (on a GET: 304)." }
const detach = { name: 'detach', in: 'query', required: false, schema: { type: 'boolean' }, description: 'Also remove the region from the services that name it (else 409 while one does).' }

const twice = 'an Authorization or Host header given twice'
/** What every operation but /healthz and /readyz may answer: the request guard (admin/app.ts onRequest) and an unexpected failure. */
const guarded = {
  '400': err(`A malformed request: ${twice}.`),
  '401': err('Missing or wrong bearer token (reads: only on a non-loopback admin address).'),
  '403': err('Host is a name other than localhost on a loopback admin address (DNS rebinding guard).'),
  '500': err('E_API_INTERNAL: an unexpected failure (details in the server log).'),
}
/** A zone file still open for writing by another process after the 2 s a reload or a change waits for it. */
const busy = {
  ...err('E_ZONE_BUSY: a zone file has been open for writing by another process (named in the message) for the 2 s the request waited; nothing was changed. Retry after Retry-After seconds.'),
  headers: { 'Retry-After': { description: 'Seconds after which the request may be sent again.', schema: { type: 'integer' } } },
}
const writeErrors = {
  ...guarded,
  '400': err(`The body is wrong (which field and why in details), the zone set it would make is inconsistent, a name in the URL is not a name, or ${twice}.`),
  '401': err('Missing or wrong bearer token, or none configured (the API is read-only).'),
  '404': err('Unknown zone, region or service.'),
  '409': err('E_API_CONFLICT: exists already, still referenced, the file broken on disk or (with If-Match) edited by hand since it was loaded; E_ZONE_READ_ONLY: the zone file is read-only. Nothing was changed.'),
  '412': err('If-Match is not the current ETag, or If-None-Match is * or names it.'),
  '413': err('Body larger than 64 KiB.'),
  '414': err('A name in the URL longer than any name can be.'),
  '415': err('Body not JSON, labelled with a charset other than UTF-8 (charset=latin1), or sent in a content coding (Content-Encoding: gzip), which the API does not decode.'),
  '503': busy,
  '500': {
    ...err('E_ZONE_WRITE: the zone file could not be written, nothing was changed; E_ZONE_NOT_DURABLE: the change is in the file and served, but the directory fsync failed, so it may not survive a crash (ETag: the new one); E_API_INTERNAL: an unexpected failure.'),
    headers: etagHeader,
  },
}
/** A create of a zone names none in its URL (no 404) and takes no precondition (no 412). */
const createErrors = Object.fromEntries(Object.entries(writeErrors).filter(([status]) => status !== '404' && status !== '412'))
const readErrors = {
  ...guarded,
  '304': { description: 'If-None-Match names the current ETag: not modified, no body.', headers: etagHeader },
  '400': err(`A name in the URL is not a valid name, or ${twice}.`),
  '404': err('Unknown zone, region or service.'),
  '414': err('A name in the URL longer than any name can be.'),
}
/**
 * A path answers the methods it has no operation for with 405 (admin/app.ts setNotFoundHandler):
 * said on every path item, since OpenAPI lists responses only under operations.
 */
const methodNotAllowed = {
  description: 'E_API_METHOD: the path does not take this method (a method this path item has no operation for). The token is checked first, so without it this is a 401.',
  headers: { Allow: { description: 'The methods the path takes (HEAD with GET).', schema: { type: 'string' } } },
  content: { 'application/json': { schema: ref('Error') } },
}
const OTHER_METHODS = 'Methods without an operation here are answered 405 E_API_METHOD with an Allow header (#/components/responses/MethodNotAllowed).'
const body = (schema: string, types = ['application/json']) => ({ required: true, content: Object.fromEntries(types.map((t) => [t, { schema: ref(schema) }])) })

export function openApiDocument(version: string): Record<string, unknown> {
  const entity = (kind: 'region' | 'service') => {
    const Kind = kind === 'region' ? 'Region' : 'Service'
    const param = kind === 'region' ? regionParam : serviceParam
    const plural = `${kind}s`
    return {
      [`/v1/zones/{zone}/${plural}`]: {
        parameters: [zoneParam],
        get: { operationId: `list${Kind}s`, summary: `List the ${plural} of a zone.`, responses: { '200': withEtag(json({ type: 'array', items: ref(Kind) }, `The ${plural}.`)), ...readErrors } },
        post: {
          operationId: `create${Kind}`,
          summary: `Create a ${kind} (the body names it); written to the zone file, then answered.`,
          parameters: [ifMatch],
          requestBody: body(`${Kind}Create`),
          responses: { '201': { ...json(ref(Kind), `The new ${kind}.`), headers: { ...etagHeader, Location: { description: `The new ${kind}'s URL.`, schema: { type: 'string' } } } }, ...writeErrors },
        },
      },
      [`/v1/zones/{zone}/${plural}/{${kind}}`]: {
        parameters: [zoneParam, param],
        get: { operationId: `get${Kind}`, summary: `One ${kind}.`, responses: { '200': withEtag(json(ref(Kind), `The ${kind}.`)), ...readErrors } },
        put: { operationId: `replace${Kind}`, summary: `Replace a ${kind}'s definition.`, parameters: [ifMatch, ifNoneMatch], requestBody: body(`${Kind}Replace`), responses: { '200': withEtag(json(ref(Kind), `The ${kind}.`)), ...writeErrors } },
        patch: {
          operationId: `patch${Kind}`,
          summary: `Change some keys of a ${kind} (JSON merge patch, RFC 7396: null removes a key).`,
          parameters: [ifMatch, ifNoneMatch],
          requestBody: body(`${Kind}Patch`, ['application/json', 'application/merge-patch+json']),
          responses: { '200': withEtag(json(ref(Kind), `The ${kind}.`)), ...writeErrors },
        },
        delete: {
          operationId: `delete${Kind}`,
          summary: `Delete a ${kind}.`,
          parameters: kind === 'region' ? [ifMatch, ifNoneMatch, detach] : [ifMatch, ifNoneMatch],
          responses: { '204': { description: 'Deleted.', headers: etagHeader }, ...writeErrors },
        },
      },
    }
  }
  const action = (what: 'drain' | 'undrain') => ({
    parameters: [zoneParam, regionParam],
    post: {
      operationId: `${what}Region`,
      summary: what === 'drain' ? 'Drain a region: it gets no answers (drained: true in the file).' : 'Undrain a region (the drained key is removed from the file: false is its default).',
      parameters: [ifMatch, ifNoneMatch],
      responses: { '200': withEtag(json(ref('Region'), 'The region.')), ...writeErrors },
    },
  })
  return {
    openapi: '3.1.0',
    info: { title: 'Meridian admin API', version, description: 'Manage the regions and services of the zones Meridian serves. Every change is validated with the zone schema, written to the zone file atomically, and answered by DNS at once. See docs/api.md.' },
    components: {
      schemas: bodySchemas(),
      responses: { MethodNotAllowed: methodNotAllowed },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'MERIDIAN_ADMIN_TOKEN or --admin-token-file. Required for writes; for reads too on a non-loopback address.' } },
    },
    security: [{ bearer: [] }],
    paths: withOtherMethods({
      '/v1/zones': {
        get: { operationId: 'listZones', summary: 'Every zone served, with its serial and ETag.', responses: { '200': json({ type: 'array', items: any }, 'The zones.'), ...guarded } },
        post: {
          operationId: 'createZone',
          summary: 'Create a zone: its definition written to <zones>/<origin>.yaml, validated with the whole set, served at once.',
          requestBody: body('Zone'),
          responses: {
            '201': { ...json(ref('Zone'), 'The new zone, as GET shows it.'), headers: { ...etagHeader, Location: { description: "The new zone's URL.", schema: { type: 'string' } } } },
            ...createErrors,
            '409': err('E_API_CONFLICT: the zone is served already, another file declares its origin, or <origin>.yaml exists already (even a broken file or a dangling link). Nothing was written.'),
          },
        },
      },
      '/v1/zones/{zone}': {
        parameters: [zoneParam],
        get: { operationId: 'getZone', summary: "A zone's full definition (as in its file, defaults filled in).", responses: { '200': withEtag(json(ref('Zone'), 'The zone definition.')), ...readErrors } },
        delete: {
          operationId: 'deleteZone',
          summary: 'Stop serving a zone (its names are REFUSED at once) and move its file to <zones>/.meridian/deleted/, from where moving it back restores it.',
          parameters: [ifMatch, ifNoneMatch],
          responses: {
            '200': json(ref('ZoneDeleted'), 'Deleted: where the file went, and how to restore it.'),
            ...writeErrors,
            '409': err('E_API_CONFLICT: the zone file is a symbolic link (managed elsewhere), is no longer in the zones directory, or (with If-Match) was edited by hand since it was loaded; E_ZONE_READ_ONLY: the zone file is read-only. Nothing was changed.'),
          },
        },
      },
      ...entity('region'),
      '/v1/zones/{zone}/regions/{region}/drain': action('drain'),
      '/v1/zones/{zone}/regions/{region}/undrain': action('undrain'),
      ...entity('service'),
      '/v1/health': { get: { operationId: 'health', summary: 'Every check target and region: state, since, response times, last error, transitions.', responses: { '200': json(any, 'The health view.'), ...guarded } } },
      '/v1/explain': {
        get: {
          operationId: 'explain',
          summary: "The selector's decision trace for one question.",
          parameters: [
            { name: 'name', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'type', in: 'query', required: false, schema: { type: 'string', default: 'A' } },
            { name: 'client', in: 'query', required: true, schema: { type: 'string' }, description: 'The address the query comes from.' },
            { name: 'ecs', in: 'query', required: false, schema: { type: 'string' }, description: 'EDNS Client Subnet, ADDR/PREFIX.' },
          ],
          responses: { '200': json(any, 'The trace.'), ...guarded, '400': err(`A bad parameter, or ${twice}.`) },
        },
      },
      '/v1/reload': { post: { operationId: 'reload', summary: 'Re-read the zone files (as the file watcher does), and the GeoIP database file when it was replaced.', responses: { '200': json(any, 'The set now serving, and what was done with the GeoIP database (`geodb`).'), ...guarded, '400': err(`The files have errors, or a zone file is a symbolic link that dangles or loops (E_ZONE_IO); the last good set keeps serving. Or ${twice}.`), '401': writeErrors['401'], '409': err('The zones were reloaded, but the replaced GeoIP database file cannot be opened (E_GEODB); the last good database keeps answering.'), '500': err('E_ZONE_IO: the zones directory or a zone file cannot be read, no permission or an I/O error (the last good set keeps serving); E_API_INTERNAL: an unexpected failure.'), '503': busy } } },
      '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics.', responses: { '200': { description: 'Prometheus text format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } }, ...guarded } } },
      '/healthz': { get: { operationId: 'healthz', summary: 'The process is alive.', security: [], responses: { '200': json(any, 'Alive.'), '500': guarded['500'] } } },
      '/readyz': { get: { operationId: 'readyz', summary: 'Zones loaded and DNS sockets bound.', security: [], responses: { '200': json(any, 'Ready.'), '500': guarded['500'], '503': json(any, 'Not ready, and why.') } } },
      '/openapi.json': { get: { operationId: 'openapi', summary: 'This document.', responses: { '200': json(any, 'OpenAPI 3.1.'), ...guarded } } },
    }),
  }
}

/** Every path item with the description of its 405 (OTHER_METHODS). */
function withOtherMethods(paths: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.entries(paths).map(([p, item]) => [p, { description: OTHER_METHODS, ...item }]))
}
