/**
 * The admin API's routes through fastify.inject(), over a real FileConfigStore on a temporary zone
 * directory: every 4xx case of issue 4 with its precise error body, and each time the proof that
 * the zone file on disk did not change; the successful changes with their ETags, the file they
 * leave (comments kept) and the set the DNS layer then reads.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import { Ajv } from 'ajv'
import * as ajvFormats from 'ajv-formats'
import YAML from 'yaml'
import { buildAdminApp, type AdminDeps, type Readiness } from '../../src/admin/app.js'
import { bearerMatches, isLoopback, loadAdminToken } from '../../src/admin/auth.js'
import { formatTrace, type ExplainTrace, type Resolver } from '../../src/admin/explain.js'
import type { HealthSnapshot } from '../../src/admin/health.js'
import { GeoDb } from '../../src/geo/index.js'
import { PLACES } from '../../src/config/places.js'
import { initialHealth, next, type TargetHealth } from '../../src/health/state.js'
import { locateClient } from '../../src/dns/client.js'
import { respond } from '../../src/dns/responder.js'
import type { Query } from '../../src/dns/wire.js'
import { findZone } from '../../src/dns/zone-index.js'
import { createLogger } from '../../src/log.js'
import type { VipHealth } from '../../src/model/gslb.js'
import type { ZoneSet } from '../../src/model/types.js'
import { directory } from '../../src/store/atomic.js'
import { FileConfigStore } from '../../src/store/file-store.js'
import { SerialBook } from '../../src/store/serials.js'
import { etagOf } from '../../src/store/zone-editor.js'
import { ROOT, TEST_GEODB } from '../helpers/server.js'

const TOKEN = 'test-token-0123456789'
const AUTH = { authorization: `Bearer ${TOKEN}` }
const JSON_HEADERS = { ...AUTH, 'content-type': 'application/json' }
const ORIGIN = 'admin.test'
const Z = `/v1/zones/${ORIGIN}`

const ZONE = `# Admin API test zone: comments must survive every edit
origin: admin.test
soa: { mname: ns1, rname: hostmaster.admin.test. }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  static: { A: 192.0.2.80 }        # a static name, not a service

regions:
  eu-west:
    location: { lat: 53.35, lon: -6.26 }       # Dublin
    vips: [192.0.2.1, "2001:db8:2::1"]
    check: { url: "http://{vip}:8080/healthz", interval: 2, timeout: 1 }
  us-east:
    location: { country: US }
    vips: [192.0.2.2]
    weight: 100                  # equal share
  ap-northeast:
    location: { lat: 35.68, lon: 139.69 }      # Tokyo
    vips: [192.0.2.3]

services:
  www: { regions: [eu-west, us-east], policy: geo }
  api:
    regions: all
    policy: weighted             # by weight
`


interface Harness {
  app: ReturnType<typeof buildAdminApp>
  store: FileConfigStore
  dir: string
  file: string
  logs: string[]
  text(): Promise<string>
  /** Asserts the zone file still holds exactly what it held at the start. */
  unchanged(what: string): Promise<void>
}

function fakeHealth(): HealthSnapshot {
  const t0 = Date.parse('2026-01-01T00:00:00Z')
  let up: TargetHealth = initialHealth({ rise: 2, fall: 2 }, t0)
  up = next(up, { ok: true, latencyMs: 12, status: 200 }, t0 + 1000)
  up = next(up, { ok: true, latencyMs: 14, status: 200 }, t0 + 2000)
  let down: TargetHealth = initialHealth({ rise: 2, fall: 2 }, t0)
  down = next(down, { ok: false, latencyMs: 1000, error: 'timeout after 1000 ms' }, t0 + 1000)
  down = next(down, { ok: false, latencyMs: 1000, error: 'timeout after 1000 ms' }, t0 + 2000)
  return {
    generation: 3,
    targets: new Map([
      ['http://192.0.2.1:8080/healthz#k1', up],
      ['http://[2001:db8:2::1]:8080/healthz#k2', down],
    ]),
  }
}

/** A resolver wired as cli.ts wires it: the responder and client locator of the DNS path. */
function resolverFor(set: () => ZoneSet, geo: GeoDb, health: (key: string) => VipHealth | undefined): Resolver {
  return (q) => {
    const ecs = q.ecs ? { family: q.ecs.family === 4 ? (1 as const) : (2 as const), sourcePrefix: q.ecs.prefix, scopePrefix: 0, address: q.ecs.address, bytes: Buffer.alloc(0) } : null
    const query: Query = { id: 0, rd: false, qname: q.name, qkey: q.name, oddName: false, questionWire: Buffer.alloc(0), qtype: q.qtype, qclass: 1, edns: ecs ? { udpSize: 1232, version: 0, dnssecOk: false, ecs } : null }
    const out = respond(set(), query, q.client, { geo: (a, p) => geo.locate(a, p), health, rand: () => 0 })
    const zone = out.zone ?? findZone(set(), q.name)
    return { rcode: out.rcode, zone: out.zone, answer: out.answer, ecsScope: out.ecsScope, selection: out.selection, client: zone ? locateClient(query, q.client, (a, p) => geo.locate(a, p), zone.defaultLocation) : null }
  }
}

let geo: GeoDb | undefined
async function testGeo(): Promise<GeoDb> {
  geo ??= await GeoDb.open(TEST_GEODB)
  return geo
}

async function harness(t: TestContext, opts: Partial<AdminDeps> & { zone?: string } = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-admin-unit-'))
  const file = path.join(dir, `${ORIGIN}.yaml`)
  const text = opts.zone ?? ZONE
  await writeFile(file, text)
  const logs: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  })
  const log = createLogger('debug', sink)
  const store = new FileConfigStore(dir, log.child({ mod: 'config' }), new SerialBook(path.join(dir, '.meridian', 'serials.json')), PLACES)
  await store.reload('start-up')
  const g = await testGeo()
  const health = opts.health ?? fakeHealth
  const vipHealth = (k: string): VipHealth | undefined => {
    const h = health().targets.get(k)
    return h ? { state: h.state, ewmaMs: h.ewmaMs ?? undefined } : undefined
  }
  const app = buildAdminApp({
    store,
    health,
    resolve: resolverFor(() => store.current(), g, vipHealth),
    token: 'token' in opts ? opts.token : TOKEN,
    readsNeedToken: opts.readsNeedToken ?? false,
    logger: log,
    metrics: opts.metrics ?? (async () => '# HELP meridian_test_total a test\n# TYPE meridian_test_total counter\nmeridian_test_total 1\n'),
    ready: opts.ready ?? ((): Readiness => ({ ready: true, reasons: [] })),
    version: '9.9.9',
    ...(opts.reloadGeo ? { reloadGeo: opts.reloadGeo } : {}),
  })
  await app.ready()
  t.after(async () => {
    await app.close()
    store.close()
    await rm(dir, { recursive: true, force: true })
  })
  return {
    app,
    store,
    dir,
    file,
    logs,
    text: () => readFile(file, 'utf8'),
    async unchanged(what: string) {
      assert.equal(await readFile(file, 'utf8'), text, `${what}: the zone file on disk is unchanged`)
    },
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
/** The keys of an OpenAPI path item that are operations. */
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']
const call = (h: Harness, method: Method, url: string, body?: unknown, headers: Record<string, string> = JSON_HEADERS) =>
  h.app.inject({ method, url, headers: body === undefined ? Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'content-type')) : headers, ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }) })

/**
 * One HTTP/1.1 request written as `lines` on a real socket to the harness's app (listening on an
 * OS-chosen port), for what fastify.inject() cannot send: a header given twice. The server closes
 * the connection after its answer (Connection: close).
 */
async function rawRequest(h: Harness, lines: string[], body = ''): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  if (!h.app.server.listening) await h.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = h.app.server.address() as AddressInfo
  const socket = connect(port, '127.0.0.1')
  // Written, not ended: a half-closed socket is closed by the server before a slow answer is sent.
  socket.write([...lines, 'Connection: close', ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []), '', body].join('\r\n'))
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'close')
  const [head = '', text = ''] = Buffer.concat(chunks).toString().split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers, body: text }
}

// ---------------------------------------------------------------------------------------------

describe('bad requests: a precise error body, and the zone file unchanged', () => {
  const S = 'E_ZONE_SCHEMA'
  // [what, method, url, body, status, error code, details]
  const cases: [string, Method, string, unknown, number, string, { path: string; message: string }[]][] = [
    ['a weight of the wrong type', 'PATCH', `${Z}/regions/eu-west`, { weight: 'heavy' }, 400, S, [{ path: 'weight', message: 'must be an integer 0..1000 (0 = standby), got "heavy"' }]],
    ['a weight out of range', 'PATCH', `${Z}/regions/eu-west`, { weight: 5000 }, 400, S, [{ path: 'weight', message: 'must be an integer 0..1000 (0 = standby), got 5000' }]],
    ['a weight JSON reads as Infinity (1e400), shown as itself, not "null"', 'PATCH', `${Z}/regions/eu-west`, '{"weight": 1e400}', 400, S, [{ path: 'weight', message: 'must be an integer 0..1000 (0 = standby), got Infinity' }]],
    ['drained as a string', 'PATCH', `${Z}/regions/us-east`, { drained: 'yes' }, 400, S, [{ path: 'drained', message: 'must be true or false, got "yes"' }]],
    ['a bad VIP', 'PATCH', `${Z}/regions/us-east`, { vips: ['192.0.2.300'] }, 400, S, [{ path: 'vips.0', message: 'must be an IPv4 or IPv6 address, got "192.0.2.300"' }]],
    ['an unknown key in a patch', 'PATCH', `${Z}/regions/us-east`, { wieght: 5 }, 400, S, [{ path: 'wieght', message: 'unknown key "wieght" (allowed: location, vips, weight, drained, minHealthy, check)' }]],
    ['an unknown key inside check', 'PATCH', `${Z}/regions/eu-west`, { check: { intervall: 3 } }, 400, S, [{ path: 'check.intervall', message: 'unknown key "intervall" (allowed: type, url, port, path, target, host, method, expect, body, tlsServername, tlsVerify, interval, timeout, rise, fall)' }]],
    ['a region with no VIP', 'POST', `${Z}/regions`, { name: 'sa-east', location: { country: 'BR' }, vips: [] }, 400, S, [{ path: 'vips', message: 'must be a non-empty list of VIP addresses, got []' }]],
    ['a region without vips', 'POST', `${Z}/regions`, { name: 'sa-east', location: { country: 'BR' } }, 400, S, [{ path: 'vips', message: 'missing required key "vips"' }]],
    ['removing the VIPs with a merge patch', 'PATCH', `${Z}/regions/us-east`, { vips: null }, 400, S, [{ path: 'vips', message: 'missing required key "vips"' }]],
    ['a bad region name', 'POST', `${Z}/regions`, { name: 'EU_West', location: { country: 'IE' }, vips: ['192.0.2.9'] }, 400, S, [{ path: 'name', message: `name "EU_West" may hold only lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)` }]],
    ['a region name ending in -', 'POST', `${Z}/regions`, { name: 'eu-', location: { country: 'IE' }, vips: ['192.0.2.9'] }, 400, S, [{ path: 'name', message: `name "eu-" may hold only lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)` }]],
    ['a create without a name', 'POST', `${Z}/regions`, { location: { country: 'IE' }, vips: ['192.0.2.9'] }, 400, S, [{ path: 'name', message: 'missing required key "name"' }]],
    ['a location that is not a mapping', 'PATCH', `${Z}/regions/us-east`, { location: 'Dublin' }, 400, S, [{ path: 'location', message: 'must be { lat, lon } (degrees), { country: XX } (ISO 3166 code) or { city: XXX } (IATA metro code), got "Dublin"' }]],
    ['a latitude out of range', 'PATCH', `${Z}/regions/us-east`, { location: { lat: 100, lon: 0 } }, 400, S, [{ path: 'location.lat', message: 'must be <= 90, got 100' }]],
    ['a check timeout above its interval (the whole-set rebuild)', 'PATCH', `${Z}/regions/eu-west`, { check: { timeout: 5 } }, 400, 'E_ZONE_SEMANTIC', [{ path: 'regions.eu-west.check.timeout', message: 'timeout (5 s) must be below the interval (2 s)' }]],
    ['an unknown country (the whole-set rebuild)', 'PATCH', `${Z}/regions/us-east`, { location: { country: 'XX' } }, 400, 'E_ZONE_SEMANTIC', [{ path: 'regions.us-east.location.country', message: 'unknown country code "XX"' }]],
    ['a service naming an unknown region', 'PATCH', `${Z}/services/www`, { regions: ['eu-west', 'mars'] }, 400, 'E_ZONE_SEMANTIC', [{ path: 'services.www.regions.1', message: 'unknown region "mars" (regions of this zone: eu-west, us-east, ap-northeast)' }]],
    ['a service policy that does not exist', 'PATCH', `${Z}/services/www`, { policy: 'nearest' }, 400, S, [{ path: 'policy', message: 'must be geo-latency, geo, weighted or failover, got "nearest"' }]],
    ['a service TTL of the wrong type', 'PUT', `${Z}/services/api`, { ttl: '30s' }, 400, S, [{ path: 'ttl', message: 'must be an integer number of seconds, 1..300, got "30s"' }]],
    ['a service fqdn that is not its own', 'PUT', `${Z}/services/api`, { regions: 'all', fqdn: 'other.admin.test' }, 400, 'E_API_BODY', [{ path: 'fqdn', message: 'is "other.admin.test" but the service is api.admin.test; fqdn follows from the name and cannot be set' }]],
    ['renaming through PUT', 'PUT', `${Z}/regions/us-east`, { name: 'us-west', location: { country: 'US' }, vips: ['192.0.2.2'] }, 400, 'E_API_BODY', [{ path: 'name', message: 'is "us-west" but the URL names "us-east"; renaming is not supported (create the new one, then delete the old)' }]],
    ['a body that is a list', 'PATCH', `${Z}/regions/us-east`, [1, 2], 400, 'E_API_BODY', [{ path: '', message: 'the body must be a JSON object, got an array' }]],
    ['a body that is not JSON', 'PATCH', `${Z}/regions/us-east`, '{"weight": 1', 400, 'E_API_BODY', []],
    ['a body with a __proto__ key', 'PATCH', `${Z}/regions/us-east`, '{"__proto__": {"weight": 1}}', 400, 'E_API_BODY', []],
    ['a body nested 2,000 levels deep (10 KB: under the size limit)', 'PATCH', `${Z}/regions/eu-west`, `{"check":${'{"a":'.repeat(2000)}1${'}'.repeat(2001)}`, 400, 'E_API_BODY', [{ path: '', message: 'the body is nested more than 32 levels deep; no region or service is' }]],
    ['a new region nested 2,000 levels deep', 'POST', `${Z}/regions`, `{"name":"deep","location":{"country":"US"},"vips":["192.0.2.9"],"check":${'{"a":'.repeat(2000)}1${'}'.repeat(2001)}`, 400, 'E_API_BODY', [{ path: '', message: 'the body is nested more than 32 levels deep; no region or service is' }]],
    ['an unknown zone', 'PATCH', '/v1/zones/nope.test/regions/us-east', { weight: 1 }, 404, 'E_API_NOT_FOUND', []],
    ['a change under a zone name that is not a name', 'PATCH', '/v1/zones/admin..test/regions/us-east', { weight: 1 }, 400, 'E_API_BODY', [{ path: 'zone', message: '"admin..test" is not a valid zone name: name has an empty label (two dots in a row)' }]],
    ['a zone name that is a space (%20), not "no zone  is served"', 'GET', '/v1/zones/%20', undefined, 400, 'E_API_BODY', [{ path: 'zone', message: '" " is not a valid zone name: it is blank' }]],
    ['a zone name that is a tab', 'GET', '/v1/zones/%09/regions', undefined, 400, 'E_API_BODY', [{ path: 'zone', message: '"\\t" is not a valid zone name: it is blank' }]],
    ['a zone name with a space before it', 'PATCH', '/v1/zones/%20admin.test/regions/us-east', { weight: 1 }, 400, 'E_API_BODY', [{ path: 'zone', message: '" admin.test" is not a valid zone name: it has whitespace around it' }]],
    ['a region name that is a space', 'GET', `${Z}/regions/%20`, undefined, 400, 'E_API_BODY', [{ path: 'region', message: '" " is not a valid region name: it is blank' }]],
    ['draining a region named by a space', 'POST', `${Z}/regions/%20/drain`, undefined, 400, 'E_API_BODY', [{ path: 'region', message: '" " is not a valid region name: it is blank' }]],
    ['a service name that is a space (not the apex)', 'DELETE', `${Z}/services/%20`, undefined, 400, 'E_API_BODY', [{ path: 'service', message: '" " is not a valid service name: it is blank' }]],
    ['a service name that is not a name', 'PUT', `${Z}/services/a..b`, { regions: 'all' }, 400, 'E_API_BODY', [{ path: 'service', message: '"a..b" is not a valid service name: name has an empty label (two dots in a row)' }]],
    ['a region name in the URL that no zone file can hold (uppercase, _)', 'PATCH', `${Z}/regions/EU_West`, { weight: 1 }, 400, 'E_API_BODY', [{ path: 'region', message: `"EU_West" is not a valid region name: ${"a region name holds only lowercase letters, digits and '-', starts and ends with a letter or digit and is at most 63 characters long"}` }]],
    ['reading a region by a name with uppercase', 'GET', `${Z}/regions/EU-West`, undefined, 400, 'E_API_BODY', [{ path: 'region', message: `"EU-West" is not a valid region name: ${"a region name holds only lowercase letters, digits and '-', starts and ends with a letter or digit and is at most 63 characters long"}` }]],
    ['draining a region by a name starting with -', 'POST', `${Z}/regions/-eu/drain`, undefined, 400, 'E_API_BODY', [{ path: 'region', message: `"-eu" is not a valid region name: ${"a region name holds only lowercase letters, digits and '-', starts and ends with a letter or digit and is at most 63 characters long"}` }]],
    ['draining a region by a name ending in -', 'POST', `${Z}/regions/eu-west-/drain`, undefined, 400, 'E_API_BODY', [{ path: 'region', message: `"eu-west-" is not a valid region name: ${"a region name holds only lowercase letters, digits and '-', starts and ends with a letter or digit and is at most 63 characters long"}` }]],
    ['deleting a region by a name of 64 characters', 'DELETE', `${Z}/regions/${'a'.repeat(64)}`, undefined, 400, 'E_API_BODY', [{ path: 'region', message: `"${'a'.repeat(64)}" is not a valid region name: ${"a region name holds only lowercase letters, digits and '-', starts and ends with a letter or digit and is at most 63 characters long"}` }]],
    ['an unknown region', 'PATCH', `${Z}/regions/mars`, { weight: 1 }, 404, 'E_API_NOT_FOUND', []],
    ['draining an unknown region', 'POST', `${Z}/regions/mars/drain`, undefined, 404, 'E_API_NOT_FOUND', []],
    ['deleting an unknown service', 'DELETE', `${Z}/services/nope`, undefined, 404, 'E_API_NOT_FOUND', []],
    ['an unknown path', 'GET', '/v1/nothing', undefined, 404, 'E_API_NOT_FOUND', []],
    ['a method the path does not take', 'GET', '/v1/reload', undefined, 405, 'E_API_METHOD', []],
    ['replacing a whole zone (not supported: create and delete it)', 'PUT', `${Z}`, { origin: ORIGIN }, 405, 'E_API_METHOD', []],
    ['creating a region that exists', 'POST', `${Z}/regions`, { name: 'us-east', location: { country: 'US' }, vips: ['192.0.2.2'] }, 409, 'E_API_CONFLICT', []],
    ['creating a service that exists (by its full name)', 'POST', `${Z}/services`, { name: 'www.admin.test.', regions: ['eu-west'] }, 409, 'E_API_CONFLICT', []],
    ['a service over a static record set', 'POST', `${Z}/services`, { name: 'static' }, 409, 'E_API_CONFLICT', []],
    ['deleting a region a service still names', 'DELETE', `${Z}/regions/eu-west`, undefined, 409, 'E_API_CONFLICT', [{ path: 'services.www.regions', message: 'names region eu-west' }]],
    ['a bad detach value', 'DELETE', `${Z}/regions/eu-west?detach=maybe`, undefined, 400, 'E_API_BODY', [{ path: 'detach', message: 'must be true or false, got "maybe"' }]],
  ]
  for (const [what, method, url, body, status, code, details] of cases) {
    test(`${what}: ${status} ${code}`, async (t) => {
      const h = await harness(t)
      const before = h.store.current().generation
      const res = await call(h, method, url, body)
      assert.equal(res.statusCode, status, res.body)
      assert.match(res.headers['content-type'] as string, /^application\/json/)
      const got = res.json() as { error: string; message: string; details: unknown[] }
      assert.equal(got.error, code, res.body)
      assert.deepEqual(Object.keys(got).sort(), ['details', 'error', 'message'])
      if (details.length > 0) assert.deepEqual(got.details, details)
      if (status === 400 && details.length > 0) assert.equal(got.message, details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('; '), 'the message says which field and why')
      assert.ok(!/\n\s+at /.test(res.body), 'no stack trace')
      await h.unchanged(what)
      assert.equal(h.store.current().generation, before, 'the set serving is the same')
    })
  }

  test('a body that is not JSON: the message says why and where, or that a __proto__ key is refused', async (t) => {
    const h = await harness(t)
    const message = async (text: string) => ((await call(h, 'PATCH', `${Z}/regions/us-east`, text)).json() as { message: string }).message
    assert.match(await message('{"weight": 1'), /^the body is not valid JSON: .*(end of JSON input|position 12)/)
    assert.match(await message('{"weight": 1,}'), /^the body is not valid JSON: .*position 13/)
    assert.equal(await message('{"__proto__": {"weight": 1}}'), 'the body is not valid JSON: a key named __proto__, or constructor holding prototype, is refused')
  })

  test('a method a path does not take: 405 with the Allow header listing the ones it does', async (t) => {
    const h = await harness(t)
    const reload = await call(h, 'GET', '/v1/reload', undefined)
    assert.equal(reload.headers.allow, 'POST')
    assert.equal((reload.json() as { message: string }).message, 'GET is not allowed on /v1/reload; it takes POST (see GET /openapi.json)')
    const region = await call(h, 'POST', `${Z}/regions/us-east`, { weight: 1 })
    assert.equal(region.statusCode, 405)
    assert.equal(region.headers.allow, 'GET, HEAD, PUT, PATCH, DELETE')
  })

  test('a check timeout above its interval says so once, not once per VIP', async (t) => {
    const h = await harness(t)
    const res = await call(h, 'PATCH', `${Z}/regions/eu-west`, { check: { timeout: 5 } })
    assert.equal((res.json() as { details: unknown[] }).details.length, 1)
  })

  test('a body over 64 KiB: 413, a body that is not JSON: 415', async (t) => {
    const h = await harness(t)
    const big = await call(h, 'PATCH', `${Z}/regions/us-east`, JSON.stringify({ weight: 1, pad: 'x'.repeat(70 * 1024) }))
    assert.equal(big.statusCode, 413)
    assert.deepEqual(big.json(), { error: 'E_API_TOO_LARGE', message: 'the request body is larger than the limit', details: [] })
    const text = await call(h, 'PATCH', `${Z}/regions/us-east`, 'weight=1', { ...AUTH, 'content-type': 'text/plain' })
    assert.equal(text.statusCode, 415)
    assert.deepEqual(text.json(), { error: 'E_API_MEDIA_TYPE', message: 'the body must be JSON (Content-Type: application/json or application/merge-patch+json)', details: [] })
    await h.unchanged('413 and 415')
  })

  test('If-Match that is not the current ETag: 412 with the current ETag, nothing written', async (t) => {
    const h = await harness(t)
    const etag = etagOf(ZONE)
    const res = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-match': '"0000"' })
    assert.equal(res.statusCode, 412)
    assert.equal(res.headers.etag, etag)
    assert.deepEqual(res.json(), { error: 'E_API_PRECONDITION', message: `If-Match "0000" is not the current ETag of zone admin.test (${etag}): it changed since it was read`, details: [] })
    const weak = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-match': `W/${etag}` })
    assert.equal(weak.statusCode, 412, 'a weak ETag never matches If-Match (strong comparison)')
    await h.unchanged('412')
  })

  test('If-None-Match on a change: * or the current ETag is a 412, another ETag goes through; a missing entry is a 404 whatever the preconditions (RFC 9110)', async (t) => {
    const h = await harness(t)
    const etag = etagOf(ZONE)
    for (const inm of ['*', etag, `W/${etag}`, `"0000", ${etag}`]) {
      const res = await call(h, 'PUT', `${Z}/regions/us-east`, { location: { country: 'US' }, vips: ['192.0.2.7'] }, { ...JSON_HEADERS, 'if-none-match': inm })
      assert.equal(res.statusCode, 412, `If-None-Match: ${inm}`)
      assert.equal((res.json() as { error: string }).error, 'E_API_PRECONDITION')
      assert.equal(res.headers.etag, etag)
    }
    await h.unchanged('If-None-Match matching')
    const other = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-none-match': '"0000"' })
    assert.equal(other.statusCode, 200, 'another ETag: the change is made')
    const created = await call(h, 'POST', `${Z}/regions`, { name: 'sa-east', location: { country: 'BR' }, vips: ['192.0.2.9'] }, { ...JSON_HEADERS, 'if-none-match': '*' })
    assert.equal(created.statusCode, 201, 'a create does not look at If-None-Match')
    for (const [method, url] of [['PATCH', `${Z}/regions/nowhere`], ['PUT', `${Z}/services/nothing`], ['DELETE', `${Z}/regions/nowhere`], ['POST', `${Z}/regions/nowhere/drain`], ['POST', `${Z}/regions/constructor/drain`]] as const) {
      const body = method === 'PATCH' || method === 'PUT' ? { weight: 1 } : undefined
      const res = await call(h, method, url, body, { ...(body ? JSON_HEADERS : AUTH), 'if-match': '"0000"' })
      assert.equal(res.statusCode, 404, `${method} ${url} with a stale If-Match`)
    }
  })

  test('after a hand edit not yet reloaded (--no-watch): the 412 carries the ETag a GET returns, and If-Match with that ETag is a 409 that says to reload, not a 412 loop', async (t) => {
    const h = await harness(t) // no watcher: as with --no-watch
    const served = etagOf(ZONE)
    const byHand = ZONE.replace('weight: 100                  # equal share', 'weight: 300                  # equal share')
    await writeFile(h.file, byHand)
    const get = await call(h, 'GET', `${Z}/regions/us-east`, undefined, {})
    assert.equal(get.headers.etag, served, 'a GET describes what it returns: the set serving')
    assert.equal((get.json() as { weight: number }).weight, 100)
    const stale = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-match': '"0000"' })
    assert.equal(stale.statusCode, 412)
    assert.equal(stale.headers.etag, served, 'the 412 carries the ETag a GET returns')
    const res = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-match': get.headers.etag as string })
    assert.equal(res.statusCode, 409, res.body)
    assert.deepEqual(res.json(), {
      error: 'E_API_CONFLICT',
      message: `${h.file} was changed on disk since it was loaded (its ETag there is ${etagOf(byHand)}, the one serving ${served}): POST /v1/reload to serve it as it is (the file watcher does so by itself), then read the zone again and retry`,
      details: [],
    })
    const onDisk = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-match': etagOf(byHand) })
    assert.equal(onDisk.statusCode, 412, 'the file\'s own ETag, which no GET returned, does not match either')
    assert.equal(await h.text(), byHand, 'the hand edit is untouched')
    assert.equal(h.store.current().generation, 1, 'the set serving is the same')
    // The way out the message names: reload, read, retry.
    assert.equal((await call(h, 'POST', '/v1/reload', undefined, AUTH)).statusCode, 200)
    const after = await call(h, 'GET', `${Z}/regions/us-east`, undefined, {})
    assert.equal(after.headers.etag, etagOf(byHand))
    const retry = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 }, { ...JSON_HEADERS, 'if-match': after.headers.etag as string })
    assert.equal(retry.statusCode, 200, retry.body)
    assert.equal(retry.headers.etag, etagOf(await h.text()))
  })

  test('of two writes sent with the same If-Match, the first wins and the second gets 412', async (t) => {
    const h = await harness(t)
    const etag = etagOf(ZONE)
    const [a, b] = await Promise.all([
      call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 10 }, { ...JSON_HEADERS, 'if-match': etag }),
      call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 20 }, { ...JSON_HEADERS, 'if-match': etag }),
    ])
    assert.deepEqual([a.statusCode, b.statusCode], [200, 412])
    assert.match(await h.text(), /\n {4}weight: 10 {19}# equal share\n/, 'the comment stays in its column')
  })

  test('a 404 for a region of a known zone still carries the zone ETag', async (t) => {
    const h = await harness(t)
    const res = await call(h, 'GET', `${Z}/regions/mars`)
    assert.equal(res.statusCode, 404)
    assert.equal(res.headers.etag, etagOf(ZONE))
    assert.deepEqual(res.json(), { error: 'E_API_NOT_FOUND', message: 'no region mars in zone admin.test (regions: eu-west, us-east, ap-northeast)', details: [] })
  })

  test('a 404 for a region or service lists those of the zone (as a URL names them), at most 20', async (t) => {
    const h = await harness(t)
    const notFound = async (method: Method, url: string, body?: unknown) => {
      const res = await call(h, method, url, body)
      assert.equal(res.statusCode, 404, res.body)
      return (res.json() as { message: string }).message
    }
    assert.equal(await notFound('PATCH', `${Z}/regions/eu-wst`, { weight: 1 }), 'no region eu-wst in zone admin.test (regions: eu-west, us-east, ap-northeast)')
    assert.equal(await notFound('POST', `${Z}/regions/eu-wst/drain`), 'no region eu-wst in zone admin.test (regions: eu-west, us-east, ap-northeast)')
    assert.equal(await notFound('GET', `${Z}/services/wwww`), 'no service wwww in zone admin.test (services: www, api)')
    // A service name may hold uppercase and _ (a name is case-insensitive; _ is a label's letter): a 404, not a 400.
    assert.equal(await notFound('DELETE', `${Z}/services/WWW_2`), 'no service WWW_2 in zone admin.test (services: www, api)')
    await h.unchanged('404s')

    const many = Array.from({ length: 25 }, (_, i) => `r${String(i).padStart(2, '0')}`)
    const big = await harness(t, {
      zone: `origin: ${ORIGIN}\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.53 }\nregions:\n${many.map((r, i) => `  ${r}: { location: { country: US }, vips: [192.0.2.${i + 1}] }`).join('\n')}\n`,
    })
    const res = await call(big, 'GET', `${Z}/regions/r99`)
    assert.equal(res.statusCode, 404)
    assert.equal((res.json() as { message: string }).message, `no region r99 in zone admin.test (regions: ${many.slice(0, 20).join(', ')} and 5 more)`)
    const none = await call(big, 'GET', `${Z}/services/www`)
    assert.equal((none.json() as { message: string }).message, 'no service www in zone admin.test (services: none)')
  })

  test('a 404 for a zone lists the zones served, at most 20', async (t) => {
    const h = await harness(t)
    const zones = Array.from({ length: 24 }, (_, i) => `z${String(i).padStart(2, '0')}.test`)
    for (const z of zones) await writeFile(path.join(h.dir, `${z}.yaml`), `origin: ${z}\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.53 }\n`)
    await h.store.reload('test')
    const served = [...h.store.current().zones.keys()]
    assert.equal(served.length, 25)
    const res = await call(h, 'GET', '/v1/zones/nope.test')
    assert.equal(res.statusCode, 404)
    assert.equal((res.json() as { message: string }).message, `no zone nope.test is served here (zones: ${served.slice(0, 20).join(', ')} and 5 more)`)
  })
})

describe('authentication', () => {
  test('a write without a token, with a wrong one, or with no token configured: 401, nothing written', async (t) => {
    const h = await harness(t)
    const none = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 1 }, { 'content-type': 'application/json' })
    assert.equal(none.statusCode, 401)
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="meridian"')
    assert.deepEqual(none.json(), { error: 'E_API_AUTH', message: 'a change needs Authorization: Bearer TOKEN', details: [] })
    const wrong = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 1 }, { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}x` })
    assert.equal(wrong.statusCode, 401)
    assert.deepEqual(wrong.json(), { error: 'E_API_AUTH', message: 'wrong bearer token', details: [] })
    const basic = await call(h, 'POST', `${Z}/regions/us-east/drain`, undefined, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` })
    assert.equal(basic.statusCode, 401, 'only the Bearer scheme')
    const reload = await call(h, 'POST', '/v1/reload', undefined, {})
    assert.equal(reload.statusCode, 401, 'reload is a write')
    // The check comes before the body is read: a huge body without a token is a 401, not a 413.
    const big = await call(h, 'PATCH', `${Z}/regions/us-east`, JSON.stringify({ pad: 'x'.repeat(70 * 1024) }), { 'content-type': 'application/json' })
    assert.equal(big.statusCode, 401)
    assert.equal((await call(h, 'GET', '/v1/zones', undefined, {})).statusCode, 200, 'reads are open on a loopback address')
    await h.unchanged('401')
  })

  test('an Authorization header that is not "Bearer TOKEN" is told what shape it must have, and nothing about the token', async (t) => {
    const h = await harness(t)
    const must = 'the Authorization header must be "Bearer TOKEN"'
    // [header, message]: the token sent bare (with the real token, and a wrong one) is a missing scheme, not a wrong token.
    const cases: [string, string][] = [
      [TOKEN, `${must}: the Bearer scheme is missing`],
      ['tok123abc', `${must}: the Bearer scheme is missing`],
      [`Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, `${must}: only the Bearer scheme is accepted`],
      [`Token ${TOKEN}`, `${must}: only the Bearer scheme is accepted`],
      ['Bearer', `${must}: the token after Bearer is missing`],
      [`Bearer ${TOKEN} ${TOKEN}`, `${must}: the token is one word, with nothing after it`],
      ['', 'the Authorization header is empty; it must be "Bearer TOKEN"'],
      [`Bearer ${TOKEN}x`, 'wrong bearer token'],
    ]
    for (const [authorization, message] of cases) {
      const res = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 1 }, { 'content-type': 'application/json', authorization })
      assert.equal(res.statusCode, 401, authorization)
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="meridian"')
      assert.deepEqual(res.json(), { error: 'E_API_AUTH', message, details: [] }, authorization)
      assert.ok(!res.body.includes('tok123abc') && !res.body.includes(TOKEN.slice(0, 8)), 'nothing of what was sent comes back')
    }
    await h.unchanged('malformed Authorization headers')
  })

  test('without a configured token the API is read-only', async (t) => {
    const h = await harness(t, { token: undefined })
    const res = await call(h, 'POST', `${Z}/regions/us-east/drain`, undefined, AUTH)
    assert.equal(res.statusCode, 401)
    assert.deepEqual(res.json(), {
      error: 'E_API_AUTH',
      message: 'no admin token is configured, so the API is read-only: start Meridian with MERIDIAN_ADMIN_TOKEN or --admin-token-file to allow changes',
      details: [],
    })
    assert.equal((await call(h, 'GET', `${Z}/regions`, undefined, {})).statusCode, 200)
    await h.unchanged('no token configured')
  })

  test('on a non-loopback address reads need the token too, but /healthz and /readyz do not', async (t) => {
    const h = await harness(t, { readsNeedToken: true })
    for (const url of ['/v1/zones', `${Z}/regions`, '/v1/health', '/metrics', '/openapi.json', '/v1/explain?name=www.admin.test&client=192.0.2.1']) {
      const res = await call(h, 'GET', url, undefined, {})
      assert.equal(res.statusCode, 401, url)
      assert.deepEqual(res.json(), { error: 'E_API_AUTH', message: 'this API (not on a loopback address) needs Authorization: Bearer TOKEN', details: [] })
      assert.equal((await call(h, 'GET', url, undefined, AUTH)).statusCode, 200, `${url} with the token`)
    }
    for (const url of ['/healthz', '/readyz']) assert.equal((await call(h, 'GET', url, undefined, {})).statusCode, 200, url)
  })

  test('on a loopback address a request for a host name other than localhost is a 403 (DNS rebinding), reads and writes alike; addresses and localhost pass', async (t) => {
    const h = await harness(t)
    for (const host of ['rebind.attacker.example', 'rebind.attacker.example:8053', 'localhost.attacker.example', 'meridian', '127.0.0.1.nip.io:8053']) {
      for (const [method, url, body] of [['GET', '/v1/zones'], ['GET', '/metrics'], ['PATCH', `${Z}/regions/eu-west`, { weight: 7 }]] as const) {
        const res = await call(h, method, url, body, { ...(body ? JSON_HEADERS : {}), ...AUTH, host })
        assert.equal(res.statusCode, 403, `${method} ${url} Host ${host}`)
        assert.equal(res.json().error, 'E_API_HOST')
        assert.match(res.json().message, /use http:\/\/127\.0\.0\.1:PORT/)
      }
    }
    await h.unchanged('refused Hosts')
    for (const host of ['127.0.0.1:8053', '127.0.0.1', 'localhost:8053', 'LOCALHOST', 'localhost.', '[::1]:8053', '[::ffff:127.0.0.1]:8053', '192.0.2.7:8053']) {
      assert.equal((await call(h, 'GET', '/v1/zones', undefined, { host })).statusCode, 200, `Host ${host}`)
    }
    for (const url of ['/healthz', '/readyz']) assert.equal((await call(h, 'GET', url, undefined, { host: 'rebind.attacker.example' })).statusCode, 200, url)
    // On a non-loopback address every request needs the token, which a rebinding page does not have: names pass.
    const open = await harness(t, { readsNeedToken: true })
    assert.equal((await call(open, 'GET', '/v1/zones', undefined, { ...AUTH, host: 'meridian-admin.internal:8053' })).statusCode, 200)
  })

  test('two Authorization or two Host headers are a 400 naming the header, whichever comes first: never a guess at which was meant; nothing written', async (t) => {
    const h = await harness(t)
    const drain = `POST ${Z}/regions/eu-west/drain HTTP/1.1`
    for (const [what, lines, name] of [
      ['the good token first', [drain, 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'Authorization: Bearer wrong'], 'Authorization'],
      ['the good token second', [drain, 'Host: 127.0.0.1', 'Authorization: Bearer wrong', `Authorization: Bearer ${TOKEN}`], 'Authorization'],
      ['the same token twice', [drain, 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, `authorization: Bearer ${TOKEN}`], 'Authorization'],
      ['a loopback Host first, a rebound name second', ['GET /v1/zones HTTP/1.1', 'Host: 127.0.0.1', 'Host: rebind.attacker.example'], 'Host'],
      ['a rebound name first, a loopback Host second', ['GET /v1/zones HTTP/1.1', 'Host: rebind.attacker.example', 'Host: 127.0.0.1'], 'Host'],
    ] as const) {
      const res = await rawRequest(h, [...lines])
      assert.equal(res.status, 400, `${what}: ${res.body}`)
      assert.match(res.headers['content-type']!, /^application\/json/)
      assert.deepEqual(JSON.parse(res.body), { error: 'E_API_BODY', message: `${name}: is given 2 times; a request may carry it once`, details: [{ path: name, message: 'is given 2 times; a request may carry it once' }] }, what)
    }
    await h.unchanged('two Authorization headers')
    // One of each still works, and two If-Match headers are one list (RFC 9110 §5.3): any of them may match.
    const etag = etagOf(ZONE)
    assert.equal((await rawRequest(h, [drain, 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'If-Match: "0000"', 'If-Match: "1111"'])).status, 412, 'neither If-Match is current')
    await h.unchanged('two stale If-Match headers')
    assert.equal((await rawRequest(h, [drain, 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'If-Match: "0000"', `If-Match: ${etag}`])).status, 200, 'the second If-Match is current')
  })

  test('the token is compared whole (hashes, constant time), and the Authorization header never reaches the log', async (t) => {
    assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true)
    assert.equal(bearerMatches(`bearer   ${TOKEN} `, TOKEN), true)
    assert.equal(bearerMatches(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN), false)
    assert.equal(bearerMatches(`Bearer ${TOKEN} extra`, TOKEN), false)
    assert.equal(bearerMatches(undefined, TOKEN), false)
    assert.equal(bearerMatches('Bearer ', TOKEN), false)
    const h = await harness(t)
    await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 3 })
    await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 3 }, { 'content-type': 'application/json', authorization: 'Bearer not-the-token-secret' })
    assert.ok(h.logs.some((l) => l.includes('"incoming request"')), 'requests are logged')
    assert.ok(!h.logs.some((l) => l.includes(TOKEN) || l.includes('not-the-token-secret')), 'no token in the log')
  })

  test('loopback addresses, and the token from a file or the environment', async (t) => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a)
    for (const a of ['0.0.0.0', '::', '192.0.2.1', '10.0.0.1', '2001:db8::1', 'localhost']) assert.equal(isLoopback(a), false, a)
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-token-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    await writeFile(path.join(dir, 'token'), 'from-file\n')
    await writeFile(path.join(dir, 'empty'), '\n')
    assert.equal(await loadAdminToken(path.join(dir, 'token'), { MERIDIAN_ADMIN_TOKEN: 'from-env' }), 'from-file')
    assert.equal(await loadAdminToken(undefined, { MERIDIAN_ADMIN_TOKEN: ' from-env ' }), 'from-env')
    assert.equal(await loadAdminToken(undefined, {}), undefined)
    await assert.rejects(loadAdminToken(path.join(dir, 'empty'), {}), { code: 'E_ADMIN_TOKEN', message: `--admin-token-file ${path.join(dir, 'empty')} is empty` })
    await assert.rejects(loadAdminToken(path.join(dir, 'missing'), {}), { code: 'E_ADMIN_TOKEN' })
  })
})

describe('reads', () => {
  test('zones, regions and services as JSON, each zone response with its ETag; If-None-Match gives 304', async (t) => {
    const h = await harness(t)
    const etag = etagOf(ZONE)
    const zones = await call(h, 'GET', '/v1/zones', undefined, {})
    assert.deepEqual(
      (zones.json() as { origin: string; etag: string; regions: string[]; services: string[] }[]).map((z) => [z.origin, z.etag, z.regions, z.services]),
      [['admin.test', etag, ['eu-west', 'us-east', 'ap-northeast'], ['www.admin.test', 'api.admin.test']]],
    )
    const zone = await call(h, 'GET', `${Z}.`, undefined, {})
    assert.equal(zone.statusCode, 200, 'a trailing dot names the same zone')
    assert.equal(zone.headers.etag, etag)
    const def = zone.json() as { origin: string; soa: { refresh: number }; regions: Record<string, { weight: number }> }
    assert.equal(def.origin, 'admin.test')
    assert.equal(def.soa.refresh, 3600, 'the definition with defaults filled in')
    assert.equal(def.regions['eu-west']!.weight, 100)

    const regions = await call(h, 'GET', `${Z}/regions`, undefined, {})
    assert.equal(regions.headers.etag, etag)
    assert.deepEqual((regions.json() as { name: string }[]).map((r) => r.name), ['eu-west', 'us-east', 'ap-northeast'])
    const eu = await call(h, 'GET', `${Z}/regions/eu-west`, undefined, {})
    assert.deepEqual(eu.json(), {
      name: 'eu-west',
      location: { lat: 53.35, lon: -6.26 },
      vips: ['192.0.2.1', '2001:db8:2::1'],
      // Defaults filled in, but not those that mean nothing to this check (path beside a url, tlsVerify for http).
      check: { url: 'http://{vip}:8080/healthz', interval: 2, timeout: 1, type: 'http', method: 'GET', expect: [200], rise: 2, fall: 3 },
      weight: 100,
      drained: false,
      minHealthy: 1,
    })
    const svc = await call(h, 'GET', `${Z}/services/www.admin.test`, undefined, {})
    assert.equal(svc.statusCode, 200, 'a service by its full name')
    assert.deepEqual((svc.json() as { name: string; fqdn: string; regions: string[] }).regions, ['eu-west', 'us-east'])
    assert.equal((svc.json() as { fqdn: string }).fqdn, 'www.admin.test')
    assert.equal((await call(h, 'GET', `${Z}/services/api`, undefined, {})).statusCode, 200, 'and by its name in the file')

    const cached = await call(h, 'GET', `${Z}/regions/eu-west`, undefined, { 'if-none-match': etag })
    assert.equal(cached.statusCode, 304)
    assert.equal(cached.body, '')
  })

  test('health: every target with state, since, latency, EWMA, last error and transitions; every region with its computed state', async (t) => {
    const h = await harness(t, { zone: ZONE.replace('"http://{vip}:8080/healthz"', '"http://{vip}:8080/healthz"') })
    // The fake view holds the keys of neither real check: point it at eu-west's two real keys.
    const keys = [...h.store.current().checks.keys()]
    assert.equal(keys.length, 2, 'eu-west checks each of its two VIPs')
    const fake = fakeHealth()
    const [up, down] = [...fake.targets.values()]
    const view: HealthSnapshot = { generation: 5, targets: new Map([[keys[0]!, up!], [keys[1]!, down!]]) }
    const app = buildAdminApp({ store: h.store, health: () => view, resolve: () => assert.fail(), token: TOKEN, readsNeedToken: false, logger: createLogger('silent'), metrics: async () => '', ready: () => ({ ready: true, reasons: [] }) })
    t.after(() => app.close())
    const res = await app.inject({ method: 'GET', url: '/v1/health' })
    assert.equal(res.statusCode, 200)
    const report = res.json() as { generation: number; targets: Record<string, unknown>[]; regions: Record<string, unknown>[] }
    assert.equal(report.generation, 5)
    assert.deepEqual(report.targets[0], {
      key: keys[0],
      state: 'up',
      since: '2026-01-01T00:00:02.000Z',
      lastCheckAt: '2026-01-01T00:00:02.000Z',
      lastOk: true,
      lastStatus: 200,
      lastLatencyMs: 14,
      ewmaMs: 12, // the lowest of the rise (12 ms, 14 ms)
      publishedMs: null, // a poller publishes; these records come from next() alone
      lastError: null,
      lastErrorAt: null,
      checks: 2,
      restored: false,
      transitions: [{ from: 'unknown', to: 'up', at: '2026-01-01T00:00:02.000Z', reason: '2 consecutive successes, last: status 200 in 14 ms' }],
      usedBy: [{ zone: 'admin.test', region: 'eu-west', vip: '192.0.2.1' }],
    })
    assert.equal(report.targets[1]!.state, 'down')
    assert.equal(report.targets[1]!.lastError, 'timeout after 1000 ms')
    assert.deepEqual(
      report.regions.map((r) => [r.region, r.state, r.healthyVips]),
      [
        ['eu-west', 'up', 1],
        ['us-east', 'up', 1],
        ['ap-northeast', 'up', 1],
      ],
      'eu-west needs 1 healthy VIP of 2; unchecked VIPs count as up',
    )
  })

  test('explain: client location and how it was found, each region with distance, weight, health and why, the answer, TTL and ECS scope', async (t) => {
    const h = await harness(t)
    const res = await call(h, 'GET', '/v1/explain?name=WWW.admin.test.&type=A&client=10.9.8.7&ecs=192.0.2.0/26', undefined, {})
    assert.equal(res.statusCode, 200, res.body)
    const tr = res.json() as ExplainTrace
    assert.deepEqual(tr.query, { name: 'www.admin.test', type: 'A', client: '10.9.8.7', ecs: '192.0.2.0/26' })
    assert.equal(tr.zone, 'admin.test')
    assert.equal(tr.rcode, 'NOERROR')
    assert.equal(tr.client?.source, 'ecs')
    assert.equal(tr.client?.country, 'GB')
    assert.equal(tr.client?.geoPrefix, 26)
    assert.match(tr.client!.how, /^GeoIP lookup of the ECS subnet 192\.0\.2\.0\/26: GB \(EU\)/)
    assert.equal(tr.service?.policy, 'geo')
    assert.deepEqual(
      tr.candidates.map((c) => [c.region, c.status, c.kept, c.chosen, c.weight]),
      [
        ['eu-west', 'usable', true, true, 100],
        ['us-east', 'usable', true, false, 100],
      ],
    )
    const eu = tr.candidates[0]!
    assert.ok(eu.distanceKm! > 400 && eu.distanceKm! < 500, `London-Dublin ${eu.distanceKm} km`)
    assert.deepEqual(eu.vips.map((v) => v.health), ['unknown', 'unknown'])
    assert.equal(tr.decision, 'geo: nearest usable region')
    assert.deepEqual(tr.answer, [{ name: 'www.admin.test.', type: 'A', ttl: 30, data: '192.0.2.1' }])
    assert.equal(tr.ttl, 30)
    assert.equal(tr.ecsScope, 26)
    const text = formatTrace(tr)
    assert.match(text, /^www\.admin\.test A from 10\.9\.8\.7 with ECS 192\.0\.2\.0\/26\n/)
    assert.match(text, /\n {2}\* eu-west +usable/)
    assert.match(text, /\nECS scope: \/26\n$/)

    // A drained region is dropped, and says why.
    await call(h, 'POST', `${Z}/regions/eu-west/drain`)
    const drained = (await call(h, 'GET', '/v1/explain?name=www.admin.test&client=192.0.2.1', undefined, {})).json() as ExplainTrace
    assert.deepEqual(drained.candidates.map((c) => [c.region, c.status, c.kept, c.why]), [
      ['eu-west', 'drained', false, 'drained by the operator'],
      ['us-east', 'usable', true, 'healthy'],
    ])
    assert.equal(drained.client?.source, 'resolver')

    for (const [q, path] of [
      ['client=192.0.2.1', 'name'],
      ['name=www.admin.test', 'client'],
      ['name=www.admin.test&client=nope', 'client'],
      ['name=www.admin.test&client=192.0.2.1&type=BOGUS', 'type'],
      ['name=www.admin.test&client=192.0.2.1&ecs=192.0.2.0/33', 'ecs'],
      ['name=www.admin.test&client=192.0.2.1&ecs=1.2.3.4/8', 'ecs'],
      ['name=www.admin.test&client=192.0.2.1&ecs=2001:db8::1/64', 'ecs'],
      ['name=a&name=b&client=192.0.2.1', 'name'],
    ]) {
      const bad = await call(h, 'GET', `/v1/explain?${q}`, undefined, {})
      assert.equal(bad.statusCode, 400, q)
      assert.equal((bad.json() as { error: string; details: { path: string }[] }).details[0]!.path, path, q)
    }
    // An ECS address with bits past its prefix: FORMERR on the wire, a 400 here that says what was meant.
    const past = (await call(h, 'GET', '/v1/explain?name=www.admin.test&client=192.0.2.1&ecs=1.2.3.4/8', undefined, {})).json() as { details: { message: string }[] }
    assert.match(past.details[0]!.message, /has bits set past its \/8 prefix, which a DNS query may not send \(RFC 7871 §6\): did you mean 1\.0\.0\.0\/8\?$/)
    const nx = (await call(h, 'GET', '/v1/explain?name=nope.admin.test&client=192.0.2.1', undefined, {})).json() as ExplainTrace
    assert.equal(nx.rcode, 'NXDOMAIN')
    const outside = (await call(h, 'GET', '/v1/explain?name=example.com&client=192.0.2.1', undefined, {})).json() as ExplainTrace
    assert.deepEqual([outside.zone, outside.rcode, outside.client], [null, 'REFUSED', null])
  })

  test('explain: a name no DNS query can carry (.., a..b, a label over 63) is a 400 that says why, not a trace of another name', async (t) => {
    const h = await harness(t)
    for (const [name, message] of [
      ['..', 'has an empty label (two dots in a row)'],
      ['www..admin.test', 'has an empty label (two dots in a row)'],
      [`${'a'.repeat(64)}.admin.test`, 'has a label of 64 characters; at most 63 fit in a DNS name'],
    ]) {
      const res = await call(h, 'GET', `/v1/explain?name=${name}&client=192.0.2.1`, undefined, {})
      assert.equal(res.statusCode, 400, `${name}: ${res.body}`)
      assert.deepEqual((res.json() as { details: unknown[] }).details, [{ path: 'name', message }])
    }
    const root = await call(h, 'GET', '/v1/explain?name=.&client=192.0.2.1', undefined, {})
    assert.deepEqual([root.statusCode, (root.json() as ExplainTrace).query.name], [200, ''], 'the root is a name: REFUSED, not ours')
  })

  test('metrics in the Prometheus text format; healthz; readyz 503 with the reasons until ready', async (t) => {
    let ready: Readiness = { ready: false, reasons: ['DNS sockets not bound yet'] }
    const h = await harness(t, { ready: () => ready })
    const m = await call(h, 'GET', '/metrics', undefined, {})
    assert.equal(m.statusCode, 200)
    assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
    assert.match(m.body, /^meridian_test_total 1$/m)
    assert.deepEqual((await call(h, 'GET', '/healthz', undefined, {})).json(), { status: 'ok' })
    const notYet = await call(h, 'GET', '/readyz', undefined, {})
    assert.equal(notYet.statusCode, 503)
    assert.deepEqual(notYet.json(), ready)
    ready = { ready: true, reasons: [] }
    assert.equal((await call(h, 'GET', '/readyz', undefined, {})).statusCode, 200)
  })

  test('the OpenAPI document covers every path, and its body schemas are the zone schema: unknown keys are refused', async (t) => {
    const h = await harness(t)
    const res = await call(h, 'GET', '/openapi.json', undefined, {})
    const doc = res.json() as { openapi: string; info: { version: string }; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, object> } }
    assert.equal(doc.openapi, '3.1.0')
    assert.equal(doc.info.version, '9.9.9')
    const ops = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).filter((k) => HTTP_METHODS.includes(k)).map((m) => `${m.toUpperCase()} ${p}`))
    for (const op of [
      'GET /v1/zones',
      'POST /v1/zones',
      'GET /v1/zones/{zone}',
      'DELETE /v1/zones/{zone}',
      'GET /v1/zones/{zone}/regions',
      'POST /v1/zones/{zone}/regions',
      'GET /v1/zones/{zone}/regions/{region}',
      'PUT /v1/zones/{zone}/regions/{region}',
      'PATCH /v1/zones/{zone}/regions/{region}',
      'DELETE /v1/zones/{zone}/regions/{region}',
      'POST /v1/zones/{zone}/regions/{region}/drain',
      'POST /v1/zones/{zone}/regions/{region}/undrain',
      'GET /v1/zones/{zone}/services',
      'POST /v1/zones/{zone}/services',
      'GET /v1/zones/{zone}/services/{service}',
      'PUT /v1/zones/{zone}/services/{service}',
      'PATCH /v1/zones/{zone}/services/{service}',
      'DELETE /v1/zones/{zone}/services/{service}',
      'GET /v1/health',
      'GET /v1/explain',
      'POST /v1/reload',
      'GET /metrics',
      'GET /healthz',
      'GET /readyz',
      'GET /openapi.json',
    ]) {
      assert.ok(ops.includes(op), `${op} is documented`)
    }
    assert.ok(!res.body.includes('x-message'), 'no x-message keys')
    const ajv = new Ajv({ strict: false })
    // ajv-formats is CommonJS: under NodeNext its function arrives wrapped once or twice.
    let addFormats: unknown = ajvFormats
    while (typeof addFormats !== 'function') addFormats = (addFormats as { default: unknown }).default
    ;(addFormats as (a: Ajv, f: string[]) => void)(ajv, ['ipv4', 'ipv6'])
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      if (name !== 'Error') assert.equal((schema as { additionalProperties?: boolean }).additionalProperties, false, `${name}: additionalProperties false`)
    }
    const region = ajv.compile(doc.components.schemas.RegionCreate!)
    assert.equal(region({ name: 'sa-east', location: { country: 'BR' }, vips: ['192.0.2.9'], check: { interval: 3, timeout: 1 } }), true, JSON.stringify(region.errors))
    assert.equal(region({ name: 'sa-east', location: { country: 'BR' }, vips: ['192.0.2.9'], colour: 'red' }), false, 'an unknown key')
    assert.equal(region({ name: 'sa-east', location: { country: 'BR' }, vips: [] }), false, 'no VIP')
    assert.equal(region({ name: 'sa-east', location: { country: 'BR' }, vips: ['192.0.2.300'] }), false, 'not an address')
    const patch = ajv.compile(doc.components.schemas.RegionPatch!)
    assert.equal(patch({ weight: 5, check: null }), true, JSON.stringify(patch.errors))
    assert.equal(patch({ weight: 'heavy' }), false)
  })

  test('the OpenAPI document lists the 500 of every operation and the 405 of every path, as the server answers them; every $ref resolves', async (t) => {
    const h = await harness(t)
    type Response = { description?: string; $ref?: string; headers?: Record<string, unknown> }
    const doc = (await call(h, 'GET', '/openapi.json', undefined, {})).json() as {
      paths: Record<string, Record<string, { responses?: Record<string, Response> } | string>>
      components: { responses: Record<string, Response>; schemas: Record<string, unknown> }
    }
    const text = JSON.stringify(doc)
    for (const [, name] of text.matchAll(/"\$ref":"#\/components\/(?:schemas|responses)\/([A-Za-z]+)"/g)) {
      assert.ok(name! in doc.components.schemas || name! in doc.components.responses, `$ref ${name} resolves`)
    }
    const notAllowed = doc.components.responses.MethodNotAllowed!
    assert.match(notAllowed.description!, /E_API_METHOD/)
    assert.ok(notAllowed.headers?.Allow, 'the 405 documents its Allow header')
    const concrete = (p: string) => p.replace('{zone}', ORIGIN).replace('{region}', 'eu-west').replace('{service}', 'www')
    for (const [p, item] of Object.entries(doc.paths)) {
      const ops = Object.keys(item).filter((k) => HTTP_METHODS.includes(k))
      for (const m of ops) {
        const responses = (item[m] as { responses: Record<string, Response> }).responses
        assert.ok(responses['500']?.description, `${m.toUpperCase()} ${p} lists its 500`)
        for (const [status, r] of Object.entries(responses)) assert.ok(r.description, `${m.toUpperCase()} ${p} ${status} has a description`)
        if (p !== '/healthz' && p !== '/readyz') for (const status of ['400', '401', '403']) assert.ok(responses[status], `${m.toUpperCase()} ${p} lists its ${status} (the request guard)`)
      }
      assert.match(item.description as string, /405 E_API_METHOD.*MethodNotAllowed/, `${p}: its 405 is said`)
      // What the server answers to the methods the document has no operation for: 405, Allow as documented.
      const allow = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => ops.includes(m.toLowerCase()) || (m === 'HEAD' && ops.includes('get')))
      for (const m of (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const).filter((x) => !ops.includes(x.toLowerCase()))) {
        const res = await call(h, m, concrete(p), undefined, AUTH)
        assert.equal(res.statusCode, 405, `${m} ${p}`)
        assert.equal(res.headers.allow, allow.join(', '), `${m} ${p}: Allow is the document's operations`)
      }
    }
    await h.unchanged('405s')
  })

  test('real responses match the OpenAPI document\'s schemas, and what GET returns is a valid request body of PUT and PATCH', async (t) => {
    const h = await harness(t, { zone: ZONE.replace('  us-east:\n    location: { country: US }\n', '  us-east:\n    location: { country: US }\n    check: { type: tcp, port: 8080 }\n') })
    const doc = (await call(h, 'GET', '/openapi.json', undefined, {})).json() as { components: { schemas: Record<string, object> } }
    const ajv = new Ajv({ strict: false })
    let addFormats: unknown = ajvFormats
    while (typeof addFormats !== 'function') addFormats = (addFormats as { default: unknown }).default
    ;(addFormats as (a: Ajv, f: string[]) => void)(ajv, ['ipv4', 'ipv6'])
    for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(schema, `#/components/schemas/${name}`)
    const valid = (schema: string, value: unknown, what: string) => {
      const v = ajv.getSchema(`#/components/schemas/${schema}`)!
      assert.equal(v(value), true, `${what} is a ${schema}: ${JSON.stringify(v.errors)} in ${JSON.stringify(value)}`)
    }
    const created = await call(h, 'POST', `${Z}/regions`, { name: 'sa-east', location: { city: 'GRU' }, vips: ['192.0.2.9'], check: { type: 'https', port: 8443 } })
    assert.equal(created.statusCode, 201, created.body)
    valid('Region', created.json(), 'POST 201')
    for (const r of (await call(h, 'GET', `${Z}/regions`, undefined, {})).json() as { name: string }[]) {
      valid('Region', r, `GET region ${r.name}`)
      valid('RegionReplace', r, `region ${r.name} sent back with PUT`)
      valid('RegionPatch', r, `region ${r.name} sent back with PATCH`)
    }
    for (const s of (await call(h, 'GET', `${Z}/services`, undefined, {})).json() as { name: string }[]) {
      valid('Service', s, `GET service ${s.name}`)
      valid('ServiceReplace', s, `service ${s.name} sent back with PUT`)
      valid('ServicePatch', s, `service ${s.name} sent back with PATCH`)
    }
    valid('Region', (await call(h, 'POST', `${Z}/regions/eu-west/drain`)).json(), 'drain 200')
    valid('Service', (await call(h, 'PATCH', `${Z}/services/api`, { ttl: 20 })).json(), 'PATCH 200')
    for (const [method, url, body] of [['GET', `${Z}/regions/nowhere`, undefined], ['PATCH', `${Z}/regions/eu-west`, { weight: 'x' }], ['GET', `${Z}/services/%zz`, undefined], ['GET', `${Z}/services/${'a'.repeat(1100)}`, undefined]] as const) {
      const r = await call(h, method, url, body, body === undefined ? {} : JSON_HEADERS)
      assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${method} ${url.slice(0, 60)}: ${r.statusCode}`)
      valid('Error', r.json(), `${method} ${url.slice(0, 60)}: ${r.statusCode}`)
    }
  })
})

describe('a GET answer sent back as it is', () => {
  test('PUT or PATCH of what GET returned changes nothing: the file, its ETag and the zone stay as they were; later edits behave as on an untouched entry', async (t) => {
    const h = await harness(t, { zone: ZONE.replace('  us-east:\n    location: { country: US }\n', '  us-east:\n    location: { country: US }\n    check: { type: tcp, port: 8080 }\n') })
    const before = await h.text()
    for (const path of [`${Z}/regions/eu-west`, `${Z}/regions/us-east`, `${Z}/regions/ap-northeast`, `${Z}/services/www`, `${Z}/services/api`]) {
      const got = await call(h, 'GET', path, undefined, {})
      for (const method of ['PUT', 'PATCH'] as const) {
        const res = await call(h, method, path, got.json())
        assert.equal(res.statusCode, 200, `${method} ${path}: ${res.body}`)
        assert.equal(res.headers.etag, got.headers.etag, `${method} ${path}: the ETag is unchanged`)
      }
    }
    assert.equal((await call(h, 'PATCH', `${Z}/regions/ap-northeast`, { weight: 100, drained: false })).statusCode, 200)
    assert.equal(await h.text(), before, 'the file is as it was: no default written')
    // The tcp check turned into an http one by a patch, as on an entry never sent back.
    const toHttp = await call(h, 'PATCH', `${Z}/regions/us-east`, { check: { type: 'http', port: null } })
    assert.equal(toHttp.statusCode, 200, toHttp.body)
    const toTcp = await call(h, 'PATCH', `${Z}/regions/us-east`, { check: { type: 'tcp', port: 9000 } })
    assert.equal(toTcp.statusCode, 200, toTcp.body)
  })

  test('a service is sent back under any of its names: relative, full, with a final dot, in capitals', async (t) => {
    const h = await harness(t)
    const got = (await call(h, 'GET', `${Z}/services/api`, undefined, {})).json() as Record<string, unknown>
    for (const p of ['api', 'api.admin.test', 'api.admin.test.', 'API']) {
      const res = await call(h, 'PUT', `${Z}/services/${encodeURIComponent(p)}`, got)
      assert.equal(res.statusCode, 200, `PUT /services/${p}: ${res.body}`)
    }
    const renamed = await call(h, 'PUT', `${Z}/services/api.admin.test`, { ...got, name: 'www', fqdn: undefined })
    assert.equal(renamed.statusCode, 400, 'another service\'s name is still a rename')
  })

  test('drain and undrain take an empty body with Content-Type: application/json, or {}; anything else is a 400', async (t) => {
    const h = await harness(t)
    assert.equal((await call(h, 'POST', `${Z}/regions/eu-west/drain`, '', JSON_HEADERS)).statusCode, 200)
    assert.equal((await call(h, 'POST', `${Z}/regions/eu-west/undrain`, {})).statusCode, 200)
    const odd = await call(h, 'POST', `${Z}/regions/eu-west/drain`, { foo: 1 })
    assert.equal(odd.statusCode, 400)
    assert.equal((odd.json() as { message: string }).message, 'drain takes no body (or {}), got {"foo":1}')
    const create = await call(h, 'POST', `${Z}/regions`, '', JSON_HEADERS)
    assert.equal(create.statusCode, 400)
    assert.equal((create.json() as { message: string }).message, 'a JSON object body is required (Content-Type: application/json)')
  })

  test('a service name of 253 octets is created and reached by its URL', async (t) => {
    const h = await harness(t)
    const label = 'a'.repeat(63)
    const name = `${label}.${label}.${label}.${'b'.repeat(61 - 'admin.test'.length - 1)}`
    const full = `${name}.admin.test`
    assert.equal(full.length, 253)
    const created = await call(h, 'POST', `${Z}/services`, { name, regions: 'all' })
    assert.equal(created.statusCode, 201, created.body)
    assert.equal((await call(h, 'GET', `${Z}/services/${full}`, undefined, {})).statusCode, 200)
    assert.equal((await call(h, 'DELETE', `${Z}/services/${full}`)).statusCode, 204)
  })
})

test('docs/api.md has a curl example for every operation of the OpenAPI document, and documents every error code it uses', async (t) => {
  const h = await harness(t)
  const doc = (await call(h, 'GET', '/openapi.json', undefined, {})).json() as { paths: Record<string, Record<string, unknown>> }
  const md = await readFile(path.join(ROOT, 'docs', 'api.md'), 'utf8')
  const curls = md.split('\n').filter((l) => /^curl /.test(l.trim()) || /^\$ meridian/.test(l))
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item).filter((k) => HTTP_METHODS.includes(k))) {
      const url = new RegExp(`\\$A${p.replace(/\{[a-z]+\}/g, '[^/\\s"?]+').replace(/\./g, '\\.')}(?=[\\s"?]|$)`)
      const found = curls.some((l) => url.test(l) && (method === 'get' ? !/ -X /.test(l) : l.includes(`-X ${method.toUpperCase()} `)))
      assert.ok(found, `docs/api.md: a curl example of ${method.toUpperCase()} ${p}`)
    }
  }
  const { ERROR_CODES } = await import('../../src/errors.js')
  for (const code of md.match(/\bE_[A-Z_]+\b/g) ?? []) assert.ok(code in ERROR_CODES, `${code} (docs/api.md) exists`)
})

test('the region JSON shown in docs/api.md is what GET answers for the demo zone', async (t) => {
  const h = await harness(t, { zone: await readFile(path.join(ROOT, 'zones', 'gslb.example.test.yaml'), 'utf8') })
  const md = await readFile(path.join(ROOT, 'docs', 'api.md'), 'utf8')
  const section = md.slice(md.indexOf('## Regions'), md.indexOf('Create (201'))
  // The `# ` lines after the GET of eu-west, joined: the answer as the docs print it.
  const shown = /regions\/eu-west\n((?:# .*\n)+)/.exec(section)?.[1]
  assert.ok(shown, 'docs/api.md shows the answer of GET .../regions/eu-west')
  const documented = JSON.parse(shown.replace(/^# /gm, '')) as unknown
  const res = await call(h, 'GET', '/v1/zones/gslb.example.test/regions/eu-west', undefined, {})
  assert.equal(res.statusCode, 200)
  assert.deepEqual(documented, res.json())
})

test('the POST /v1/reload answer shown in docs/api.md has the keys a server answers with', async (t) => {
  const geodb = { path: '/srv/geodb/GeoLite2-City.mmdb', changed: false, buildEpoch: '2026-12-01T00:00:00.000Z' }
  const h = await harness(t, { reloadGeo: async () => geodb })
  const md = await readFile(path.join(ROOT, 'docs', 'api.md'), 'utf8')
  const shown = /\$A\/v1\/reload\n# (\{.*\})\n/.exec(md)?.[1]
  assert.ok(shown, 'docs/api.md shows the answer of POST /v1/reload')
  const documented = JSON.parse(shown) as Record<string, unknown>
  const res = await call(h, 'POST', '/v1/reload', undefined, AUTH)
  assert.equal(res.statusCode, 200)
  const body = res.json() as Record<string, unknown>
  assert.deepEqual(Object.keys(documented).sort(), Object.keys(body).sort())
  assert.deepEqual(Object.keys(documented.geodb as object).sort(), Object.keys(geodb).sort())
})

describe('changes: written to the file (comments kept), swapped in, answered with the new ETag', () => {
  test('PATCH a weight: 200, the new ETag is the hash of the new file, one line changed, the set updated', async (t) => {
    const h = await harness(t)
    const gen = h.store.current().generation
    const res = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 250 })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal((res.json() as { weight: number }).weight, 250)
    const text = await h.text()
    assert.equal(res.headers.etag, etagOf(text))
    assert.equal(text, ZONE.replace('weight: 100                  # equal share', 'weight: 250                  # equal share'), 'only the value changed; its comment and alignment kept')
    assert.equal(h.store.current().generation, gen + 1)
    assert.equal(h.store.current().zones.get(ORIGIN)!.regions.get('us-east')!.weight, 250, 'the DNS layer reads the new set')
    const again = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 250 }, { ...JSON_HEADERS, 'if-match': res.headers.etag as string })
    assert.equal(again.statusCode, 200, 'the ETag just returned is accepted as If-Match')
    assert.equal(h.store.current().generation, gen + 1, 'a change that changes nothing is not a new set')
  })

  test('drain and undrain', async (t) => {
    const h = await harness(t)
    const d = await call(h, 'POST', `${Z}/regions/eu-west/drain`)
    assert.equal(d.statusCode, 200, d.body)
    assert.equal((d.json() as { drained: boolean }).drained, true)
    assert.equal(h.store.current().zones.get(ORIGIN)!.regions.get('eu-west')!.drained, true)
    assert.match(await h.text(), /check: \{ url: "http:\/\/\{vip\}:8080\/healthz", interval: 2, timeout: 1 \}\n {4}drained: true\n/)
    const u = await call(h, 'POST', `${Z}/regions/eu-west/undrain`)
    assert.equal((u.json() as { drained: boolean }).drained, false)
    assert.equal(h.store.current().zones.get(ORIGIN)!.regions.get('eu-west')!.drained, false)
    assert.equal(await h.text(), ZONE, 'a drain and an undrain leave the file byte-identical')
  })

  test('undrain removes the drained key: a drain/undrain round trip leaves any region\'s file byte-identical, and undraining a hand-written drain drops its line', async (t) => {
    const zone = ZONE.replace('  ap-northeast:\n    location: { lat: 35.68, lon: 139.69 }      # Tokyo\n    vips: [192.0.2.3]\n', '  ap-northeast: { location: { lat: 35.68, lon: 139.69 }, vips: [192.0.2.3] }                    # Tokyo, flow style\n  sa-east:\n    location: { country: BR }\n    vips: [192.0.2.4]\n    drained: true                # maintenance\n')
    const h = await harness(t, { zone })
    for (const region of ['eu-west', 'us-east', 'ap-northeast']) {
      assert.equal((await call(h, 'POST', `${Z}/regions/${region}/drain`)).statusCode, 200)
      assert.notEqual(await h.text(), zone, `${region} drained`)
      const u = await call(h, 'POST', `${Z}/regions/${region}/undrain`)
      assert.equal(u.statusCode, 200, u.body)
      assert.equal(await h.text(), zone, `${region}: drain then undrain leaves the file byte-identical`)
      assert.equal(u.headers.etag, etagOf(zone))
    }
    const u = await call(h, 'POST', `${Z}/regions/sa-east/undrain`)
    assert.equal((u.json() as { drained: boolean }).drained, false)
    assert.equal(await h.text(), zone.replace('    drained: true                # maintenance\n', ''), 'the drained line goes, its comment with it')
  })

  test('create, replace, patch (merge patch) and delete a region; comments elsewhere kept', async (t) => {
    const h = await harness(t)
    const created = await call(h, 'POST', `${Z}/regions`, { name: 'sa-east', location: { country: 'BR' }, vips: ['192.0.2.9', '2001:db8:9::1'], weight: 50 })
    assert.equal(created.statusCode, 201, created.body)
    assert.equal(created.headers.location, `/v1/zones/admin.test/regions/sa-east`)
    assert.equal(created.headers.etag, etagOf(await h.text()))
    assert.ok(h.store.current().zones.get(ORIGIN)!.regions.has('sa-east'))
    assert.match(await h.text(), /\n {2}sa-east:\n {4}location: \{ country: BR \}\n {4}vips: \[192\.0\.2\.9, "?2001:db8:9::1"?\]\n {4}weight: 50\n/)

    const patched = await call(h, 'PATCH', `${Z}/regions/eu-west`, { check: { interval: 3, timeout: null }, minHealthy: 2 }, { ...JSON_HEADERS, 'content-type': 'application/merge-patch+json' })
    assert.equal(patched.statusCode, 200, patched.body)
    const check = (patched.json() as { check: { interval: number; timeout: number } }).check
    assert.deepEqual([check.interval, check.timeout, (patched.json() as { minHealthy: number }).minHealthy], [3, 2, 2], 'timeout removed: back to its default')
    assert.match(await h.text(), /check: \{ url: "http:\/\/\{vip\}:8080\/healthz", interval: 3 \}/)

    const replaced = await call(h, 'PUT', `${Z}/regions/ap-northeast`, { name: 'ap-northeast', location: { lat: 35.68, lon: 139.69 }, vips: ['192.0.2.33'], weight: 10 })
    assert.equal(replaced.statusCode, 200, replaced.body)
    assert.deepEqual(h.store.current().zones.get(ORIGIN)!.regions.get('ap-northeast')!.vips.map((v) => v.address), ['192.0.2.33'])
    assert.match(await h.text(), /location: \{ lat: 35\.68, lon: 139\.69 \} {6}# Tokyo\n {4}vips: \[192\.0\.2\.33\]\n {4}weight: 10\n/, 'the replaced region keeps its comment')

    assert.equal((await call(h, 'DELETE', `${Z}/regions/sa-east`)).statusCode, 204)
    assert.ok(!h.store.current().zones.get(ORIGIN)!.regions.has('sa-east'))
    const text = await h.text()
    for (const c of ['# Admin API test zone: comments must survive every edit', '# Dublin', '# equal share', '# by weight', '# a static name, not a service']) assert.ok(text.includes(c), `comment "${c}" kept`)
  })

  test('a region or service as GET returns it, PUT back unchanged, is taken: for a check of each type, with and without a url', async (t) => {
    const checks = [
      '{ url: "http://{vip}:8080/healthz", interval: 2, timeout: 1 }',
      '{ type: https, url: "https://{vip}/ready", tlsServername: lb.admin.test }',
      '{ type: http, port: 8080, path: /status, host: lb.admin.test }',
      '{ type: https, port: 8443 }',
      '{ type: tcp, port: 8080 }',
    ]
    for (const check of checks) {
      const h = await harness(t, { zone: ZONE.replace('check: { url: "http://{vip}:8080/healthz", interval: 2, timeout: 1 }', `check: ${check}`) })
      const before = h.store.current().zones.get(ORIGIN)!
      for (const path of [`${Z}/regions/eu-west`, `${Z}/regions/us-east`, `${Z}/services/www`, `${Z}/services/api`]) {
        const got = await call(h, 'GET', path, undefined, {})
        assert.equal(got.statusCode, 200)
        const put = await call(h, 'PUT', path, got.json())
        assert.equal(put.statusCode, 200, `check ${check}: PUT ${path} of what GET returned: ${put.body}`)
        assert.deepEqual(put.json(), got.json(), `check ${check}: ${path} unchanged`)
      }
      const after = h.store.current().zones.get(ORIGIN)!
      assert.deepEqual([...after.regions.get('eu-west')!.vips.map((v) => v.checkKey)], [...before.regions.get('eu-west')!.vips.map((v) => v.checkKey)], `check ${check}: the same check`)
    }
  })

  test('DELETE ?detach=true removes the region from the services that name it; 409 when that would leave one empty', async (t) => {
    const h = await harness(t, { zone: ZONE.replace('  api:\n', '  solo: { regions: [us-east] }\n  api:\n') })
    const refused = await call(h, 'DELETE', `${Z}/regions/us-east?detach=true`)
    assert.equal(refused.statusCode, 409)
    assert.deepEqual(refused.json(), {
      error: 'E_API_CONFLICT',
      message: 'service solo answers only from region us-east; delete the service or give it another region first',
      details: [{ path: 'services.solo.regions', message: 'names only region us-east' }],
    })
    const ok = await call(h, 'DELETE', `${Z}/regions/eu-west?detach=true`)
    assert.equal(ok.statusCode, 204, ok.body)
    assert.deepEqual(h.store.current().zones.get(ORIGIN)!.services.get('www.admin.test')!.regions, ['us-east'])
    assert.match(await h.text(), /www: \{ regions: \[us-east\], policy: geo \}/)
  })

  test('DELETE of the last region while a service answers from every region (regions: all): 409 naming the service, as for a list, nothing written', async (t) => {
    const h = await harness(t, { zone: ZONE.replace('  www: { regions: [eu-west, us-east], policy: geo }\n', '') })
    for (const r of ['ap-northeast', 'eu-west']) assert.equal((await call(h, 'DELETE', `${Z}/regions/${r}`)).statusCode, 204, `${r}: api simply stops using it`)
    const before = await h.text()
    for (const url of [`${Z}/regions/us-east`, `${Z}/regions/us-east?detach=true`]) {
      const res = await call(h, 'DELETE', url)
      assert.equal(res.statusCode, 409, res.body)
      assert.deepEqual(res.json(), {
        error: 'E_API_CONFLICT',
        message: 'region us-east is the last of zone admin.test, and service(s) api answer from every region (regions: all); delete them or add another region first',
        details: [{ path: 'services.api.regions', message: 'all: would be left with no region' }],
      })
    }
    assert.equal(await h.text(), before, 'nothing written')
  })

  test('create, patch, replace and delete a service', async (t) => {
    const h = await harness(t)
    const c = await call(h, 'POST', `${Z}/services`, { name: 'shop.admin.test', regions: ['us-east', 'eu-west'], policy: 'failover', ttl: 10 })
    assert.equal(c.statusCode, 201, c.body)
    assert.deepEqual([(c.json() as { name: string }).name, c.headers.location], ['shop', '/v1/zones/admin.test/services/shop'], 'stored relative to the origin')
    assert.equal(h.store.current().zones.get(ORIGIN)!.services.get('shop.admin.test')!.policy, 'failover')
    const p = await call(h, 'PATCH', `${Z}/services/shop`, { answers: 1, fill: true })
    assert.equal(p.statusCode, 200, p.body)
    assert.equal(h.store.current().zones.get(ORIGIN)!.services.get('shop.admin.test')!.answers, 1)
    const r = await call(h, 'PUT', `${Z}/services/shop.admin.test`, { regions: 'all' })
    assert.equal(r.statusCode, 200, r.body)
    assert.equal((r.json() as { policy: string }).policy, 'geo-latency', 'replaced: the other keys back to their defaults')
    assert.equal((await call(h, 'DELETE', `${Z}/services/shop`)).statusCode, 204)
    assert.equal(h.store.current().zones.get(ORIGIN)!.services.has('shop.admin.test'), false)
    assert.equal((await call(h, 'DELETE', `${Z}/services/www`)).statusCode, 204)
    assert.equal(h.store.current().zones.get(ORIGIN)!.nodes.has('www.admin.test'), false, 'the name is gone: NXDOMAIN')
  })

  test('a read-only zone file (0444, even to root) is not replaced: every kind of change is a 409 E_ZONE_READ_ONLY, the file, its mode and the set unchanged', async (t) => {
    const h = await harness(t)
    await chmod(h.file, 0o444)
    const gen = h.store.current().generation
    for (const [method, url, body] of [
      ['PATCH', `${Z}/regions/us-east`, { weight: 7 }],
      ['PUT', `${Z}/regions/us-east`, { location: { country: 'US' }, vips: ['192.0.2.7'] }],
      ['POST', `${Z}/regions`, { name: 'sa-east', location: { country: 'BR' }, vips: ['192.0.2.9'] }],
      ['DELETE', `${Z}/regions/ap-northeast`, undefined],
      ['POST', `${Z}/regions/eu-west/drain`, undefined],
      ['POST', `${Z}/services`, { name: 'new', regions: 'all' }],
      ['PATCH', `${Z}/services/www`, { ttl: 20 }],
      ['PUT', `${Z}/services/api`, { regions: 'all', policy: 'geo' }],
      ['DELETE', `${Z}/services/api`, undefined],
    ] as const) {
      const res = await call(h, method, url, body, body === undefined ? AUTH : JSON_HEADERS)
      assert.equal(res.statusCode, 409, `${method} ${url}: ${res.body}`)
      assert.deepEqual(res.json(), {
        error: 'E_ZONE_READ_ONLY',
        message: `${h.file} is read-only (mode 0444): Meridian does not replace a zone file made read-only; make it writable (chmod u+w) to change it through the API. Nothing was changed`,
        details: [],
      }, `${method} ${url}`)
    }
    await h.unchanged('read-only file')
    assert.equal((await stat(h.file)).mode & 0o7777, 0o444)
    assert.equal(h.store.current().generation, gen, 'the set serving is the same')
    assert.equal((await call(h, 'POST', `${Z}/regions/eu-west/undrain`, undefined, AUTH)).statusCode, 200, 'a change that writes nothing is answered')
    await chmod(h.file, 0o644)
    assert.equal((await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 })).statusCode, 200, 'writable again: changed')
  })

  test('a directory fsync that fails after the rename: 500 E_ZONE_NOT_DURABLE saying the change is in place, and the set serving, its ETag and the file agree', async (t) => {
    const h = await harness(t)
    const gen = h.store.current().generation
    // The seam (store/atomic.ts): no real file system fails a directory fsync on demand.
    const sync = t.mock.method(directory, 'sync', async () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })
    })
    const res = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 7 })
    assert.ok(sync.mock.callCount() >= 1, 'the zone file write synced its directory (and the serial book, whose failure is only logged)')
    const text = await h.text()
    assert.match(text, /\n {4}weight: 7 {20}# equal share\n/, 'the file has the change')
    assert.equal(res.statusCode, 500, res.body)
    assert.equal(res.headers.etag, etagOf(text), 'the ETag of the file now in place')
    assert.deepEqual(res.json(), {
      error: 'E_ZONE_NOT_DURABLE',
      message: `the change is in ${h.file} and served (ETag ${etagOf(text)}), but the directory ${h.dir} could not be synced (EIO: i/o error, fsync): it may not survive a crash or power loss; check the disk, then run sync or repeat the change`,
      details: [],
    })
    assert.equal(h.store.current().generation, gen + 1, 'the set was swapped in')
    assert.equal(h.store.current().zones.get(ORIGIN)!.regions.get('us-east')!.weight, 7, 'DNS answers as the file says')
    const get = await call(h, 'GET', `${Z}/regions/us-east`, undefined, {})
    assert.equal(get.headers.etag, etagOf(text), 'a GET agrees with the file')
    assert.equal((get.json() as { weight: number }).weight, 7)
    assert.ok(h.logs.some((l) => l.includes('"admin request failed"') && l.includes('E_ZONE_NOT_DURABLE')), 'logged as a fault')
    sync.mock.restore()
    const next = await call(h, 'PATCH', `${Z}/regions/us-east`, { weight: 8 }, { ...JSON_HEADERS, 'if-match': get.headers.etag as string })
    assert.equal(next.statusCode, 200, next.body)
  })

  test('concurrent changes are applied one at a time: every one acknowledged is in the file', async (t) => {
    const h = await harness(t)
    const regions = ['eu-west', 'us-east', 'ap-northeast']
    const gen = h.store.current().generation
    const res = await Promise.all(Array.from({ length: 30 }, (_, i) => call(h, 'PATCH', `${Z}/regions/${regions[i % 3]}`, { weight: i + 1 })))
    assert.ok(res.every((r) => r.statusCode === 200))
    const etags = new Set(res.map((r) => r.headers.etag))
    assert.equal(etags.size, 30, 'each change made its own file version')
    assert.equal(h.store.current().generation, gen + 30)
    const doc = YAML.parse(await h.text()) as { regions: Record<string, { weight: number }> }
    assert.deepEqual(regions.map((r) => doc.regions[r]!.weight), [28, 29, 30], 'the last write of each region (applied in the order received)')
  })

  test('POST /v1/reload: unchanged files change nothing; an edit by hand is picked up; a broken file is a 400 with its position and the last good set keeps serving', async (t) => {
    const h = await harness(t)
    const gen = h.store.current().generation
    const same = await call(h, 'POST', '/v1/reload')
    assert.equal(same.statusCode, 200)
    assert.deepEqual([(same.json() as { changed: boolean }).changed, h.store.current().generation], [false, gen])
    await writeFile(h.file, ZONE.replace('policy: weighted', 'policy: failover'))
    const changed = await call(h, 'POST', '/v1/reload')
    assert.equal((changed.json() as { changed: boolean }).changed, true)
    assert.equal(h.store.current().zones.get(ORIGIN)!.services.get('api.admin.test')!.policy, 'failover')
    await writeFile(h.file, ZONE.replace('vips: [192.0.2.2]', 'vips: [192.0.2.256]'))
    const broken = await call(h, 'POST', '/v1/reload')
    assert.equal(broken.statusCode, 400)
    assert.deepEqual(broken.json(), {
      error: 'E_ZONE_SCHEMA',
      message: `${h.file}:16:12: regions.us-east.vips.0: must be an IPv4 or IPv6 address, got "192.0.2.256"`,
      details: [{ path: 'regions.us-east.vips.0', message: 'must be an IPv4 or IPv6 address, got "192.0.2.256"', file: h.file, line: 16, col: 12 }],
    })
    assert.equal(h.store.current().zones.get(ORIGIN)!.services.get('api.admin.test')!.policy, 'failover', 'the last good set keeps serving')
  })
})
