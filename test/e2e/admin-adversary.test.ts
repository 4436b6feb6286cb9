/**
 * The admin API against requests a careless client or an attacker sends: bodies that look like a
 * change but are not the one they seem (a key named like a member of Object.prototype, a key given
 * twice, a body in a content coding the server does not decode). Over real HTTP to a real server
 * on a zone directory of its own: each must be a 4xx that says why, and the file on disk must stay
 * byte for byte as it was.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { after, before, describe, test } from 'node:test'
import { adminUrl, startServer, tempDir, type RunningServer } from '../helpers/server.js'
import { zoneWithRegions } from '../helpers/zones.js'

const ORIGIN = 'adversary.test'
const ZONE = zoneWithRegions(
  ORIGIN,
  `  eu: { location: { lat: 53.35, lon: -6.26 }, vips: [192.0.2.20] }    # Dublin
  us: { location: { lat: 38.95, lon: -77.45 }, vips: [192.0.2.30] }
`,
  `  www: { policy: geo, regions: [eu, us], answers: 1 }
`,
)

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: { error?: string; message?: string; details?: { path: string; message: string }[] } & Record<string, unknown>
}

/** One request as node:http sends it (the body's bytes and headers exactly as given). */
function send(url: string, method: string, p: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = request({ host: u.hostname, port: u.port, path: p, method, headers: { authorization: 'Bearer t0ken', ...headers } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? (JSON.parse(text) as Reply['body']) : {} }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('admin API bodies that are not the change they look like', () => {
  let url: string
  let file: string
  const region = `/v1/zones/${ORIGIN}/regions/eu`
  const json = { 'content-type': 'application/json' }

  let server: RunningServer
  let dir: Awaited<ReturnType<typeof tempDir>>

  before(async () => {
    dir = await tempDir('meridian-adversary-')
    file = path.join(dir.dir, `${ORIGIN}.yaml`)
    await writeFile(file, ZONE)
    await writeFile(path.join(dir.dir, '.token'), 't0ken\n')
    server = await startServer({ zonesDirInPlace: dir.dir, args: ['--admin-token-file', path.join(dir.dir, '.token')] })
    url = await adminUrl(server)
  })

  after(async () => {
    await server?.stop()
    await dir?.cleanup()
  })

  /** `reply` is a 4xx with `code`, and the zone file is still ZONE. */
  const refused = async (reply: Reply, status: number, code: string) => {
    assert.equal(reply.status, status, JSON.stringify(reply.body))
    assert.equal(reply.body.error, code, JSON.stringify(reply.body))
    assert.equal(await readFile(file, 'utf8'), ZONE, 'the zone file is as it was')
  }

  test('a PATCH, PUT or POST key named like a member of Object.prototype (toString, constructor, valueOf) is an unknown key, a 400, not silently dropped', async () => {
    for (const key of ['toString', 'constructor', 'valueOf', 'hasOwnProperty']) {
      const r = await send(url, 'PATCH', region, json, JSON.stringify({ [key]: 1 }))
      await refused(r, 400, 'E_ZONE_SCHEMA')
      assert.deepEqual(r.body.details?.map((d) => d.path), [key])
      assert.match(r.body.message!, new RegExp(`unknown key "${key}"`))
    }
    const put = await send(url, 'PUT', region, json, JSON.stringify({ location: { country: 'IE' }, vips: ['192.0.2.20'], toString: 1 }))
    await refused(put, 400, 'E_ZONE_SCHEMA')
    const service = await send(url, 'PATCH', `/v1/zones/${ORIGIN}/services/www`, json, JSON.stringify({ valueOf: 2 }))
    await refused(service, 400, 'E_ZONE_SCHEMA')
    assert.match(service.body.message!, /unknown key "valueOf"/)
  })

  test('a body in a content coding (Content-Encoding: gzip) is a 415 that says to send it uncompressed, whether its bytes are gzip or plain JSON', async () => {
    const patch = JSON.stringify({ weight: 7 })
    for (const [coding, bytes] of [
      ['gzip', gzipSync(patch)],
      // Labelled gzip but sent plain: applying it would take bytes as what the client says they are not.
      ['gzip', Buffer.from(patch)],
      ['deflate, gzip', Buffer.from(patch)],
      ['br', Buffer.from(patch)],
    ] as const) {
      const r = await send(url, 'PATCH', region, { ...json, 'content-encoding': coding }, bytes)
      await refused(r, 415, 'E_API_MEDIA_TYPE')
      assert.match(r.body.message!, new RegExp(`Content-Encoding ${coding}`))
      assert.equal(r.headers['accept-encoding'], 'identity', 'RFC 9110 §15.5.16: the codings that would have been accepted')
    }
    // `identity` is no coding at all: taken (and the change undone after).
    const ok = await send(url, 'PATCH', region, { ...json, 'content-encoding': 'identity' }, patch)
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    assert.equal((await send(url, 'PATCH', region, json, JSON.stringify({ weight: null }))).status, 200)
    assert.equal(await readFile(file, 'utf8'), ZONE)
  })

  test('a JSON body labelled with a charset other than UTF-8 (latin1, quoted or not, any case) is a 415 naming it, not read as UTF-8; utf-8, utf8 and none are taken', async () => {
    // (Bytes that are the same in either charset, so that the old code took the change.)
    const latin1 = Buffer.from('{"weight": 7}', 'latin1')
    for (const [type, charset] of [
      ['application/json; charset=latin1', 'latin1'],
      ['application/json;charset="ISO-8859-1"', 'ISO-8859-1'],
      ['Application/JSON; Charset=Windows-1252', 'Windows-1252'],
      ['application/merge-patch+json; charset=utf-16', 'utf-16'],
      ['application/json; charset=utf-8; charset=latin1', 'latin1'],
    ] as const) {
      const r = await send(url, 'PATCH', region, { 'content-type': type }, type.includes('latin1') ? latin1 : Buffer.from(JSON.stringify({ weight: 7 })))
      await refused(r, 415, 'E_API_MEDIA_TYPE')
      assert.match(r.body.message!, new RegExp(`charset "${charset}"`), type)
      assert.match(r.body.message!, /UTF-8/)
    }
    for (const type of ['application/json; charset=utf-8', 'application/json; charset=UTF8', 'application/json; charset="utf-8"', 'application/merge-patch+json', 'application/json']) {
      const ok = await send(url, 'PATCH', region, { 'content-type': type }, JSON.stringify({ weight: 7 }))
      assert.equal(ok.status, 200, `${type}: ${JSON.stringify(ok.body)}`)
      assert.equal((await send(url, 'PATCH', region, json, JSON.stringify({ weight: null }))).status, 200)
    }
    assert.equal(await readFile(file, 'utf8'), ZONE)
  })

  test('a service name in the URL that names no service of the zone once decoded (www%2e, %2E, ., %2e%2e, the apex) is a 400 saying why, not a 404; the full name with its final dot still finds it', async () => {
    const svc = `/v1/zones/${ORIGIN}/services/`
    const outside = `outside the zone ${ORIGIN} (a name ending in . is absolute: write "www" for www.${ORIGIN})`
    for (const [name, method, why] of [
      ['www%2e', 'GET', `"www." is not a valid service name: it names www, ${outside}`],
      ['www%2E', 'PATCH', `"www." is not a valid service name: it names www, ${outside}`],
      ['www.', 'DELETE', `"www." is not a valid service name: it names www, ${outside}`],
      ['%2e', 'GET', `"." is not a valid service name: it names the root, outside the zone ${ORIGIN}`],
      ['.', 'PUT', `"." is not a valid service name: it names the root, outside the zone ${ORIGIN}`],
      ['%2e%2e', 'GET', '".." is not a valid service name: name has an empty label (two dots in a row)'],
      ['www.example.org.', 'PATCH', `"www.example.org." is not a valid service name: it names www.example.org, outside the zone ${ORIGIN}`],
      ['@', 'DELETE', '"@" is not a valid service name: a service cannot stand at the zone apex, which holds the SOA and NS records'],
      [`${ORIGIN}%2e`, 'GET', `"${ORIGIN}." is not a valid service name: a service cannot stand at the zone apex, which holds the SOA and NS records`],
    ] as const) {
      const r = await send(url, method, svc + name, method === 'PATCH' || method === 'PUT' ? json : {}, method === 'PATCH' || method === 'PUT' ? JSON.stringify({ answers: 2 }) : undefined)
      await refused(r, 400, 'E_API_BODY')
      assert.deepEqual(r.body.details, [{ path: 'service', message: why }], name)
    }
    for (const name of ['www', `www.${ORIGIN}.`, `www.${ORIGIN}%2e`, `WWW.${ORIGIN.toUpperCase()}%2E`]) {
      const r = await send(url, 'GET', svc + name, {})
      assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body)}`)
      assert.equal(r.body.fqdn, `www.${ORIGIN}`)
    }
    assert.equal((await send(url, 'GET', `${svc}nope`, {})).status, 404, 'a name the zone could hold but does not: 404')
  })

  test('a body with a key given twice in one object is a 400 naming the key and where, as a zone file with a key twice is refused, not the last one taken', async () => {
    for (const [text, where] of [
      ['{"weight": 5, "weight": 700}', 'weight'],
      // The same name however it is escaped: JSON compares names after unescaping.
      ['{"weight": 5, "w\\u0065ight": 700}', 'weight'],
      ['{"check": {"interval": 5, "timeout": 1, "interval": 1}}', 'check.interval'],
      ['{"vips": ["192.0.2.20"], "location": {"lat": 1, "lon": 2, "lat": 3}}', 'location.lat'],
    ] as const) {
      const r = await send(url, 'PATCH', region, json, text)
      await refused(r, 400, 'E_API_BODY')
      assert.deepEqual(r.body.details?.map((d) => d.path), [where], text)
      assert.match(r.body.message!, /twice/, text)
    }
    // The same key in two objects (each region's location and vips, each record's A) is no key twice.
    const zone = {
      origin: 'twice.test',
      soa: { mname: 'ns1', rname: 'hostmaster' },
      ns: ['ns1', 'ns2'],
      records: { ns1: { A: '192.0.2.53' }, ns2: { A: '192.0.2.54' } },
      regions: { a: { location: { lat: 1, lon: 2 }, vips: ['192.0.2.1'] }, b: { location: { lat: 3, lon: 4 }, vips: ['192.0.2.2'] } },
      services: { www: { regions: ['a', 'b'] } },
    }
    const ok = await send(url, 'POST', '/v1/zones', json, JSON.stringify(zone))
    assert.equal(ok.status, 201, JSON.stringify(ok.body))
    assert.equal((await send(url, 'DELETE', '/v1/zones/twice.test', {})).status, 200)
    assert.equal(await readFile(file, 'utf8'), ZONE)
  })

  test('a zone whose origin is as long as a file name allows is created, changed and deleted, not a 500 of its temporary file\'s name (ENAMETOOLONG)', async () => {
    // 247 characters: its file name, origin + .yaml, is 252 octets; the temporary file beside it
    // (.NAME.PID.MS.tmp) was 25-30 more, past the 255 a file name may have.
    const l63 = 'a'.repeat(63)
    const origin = `${l63}.${l63}.${l63}.${'b'.repeat(55)}`
    assert.equal(origin.length, 247)
    const zone = { origin, soa: { mname: 'ns1.example.net.', rname: 'hostmaster.example.net.' }, ns: ['ns1.example.net.'] }
    const created = await send(url, 'POST', '/v1/zones', json, JSON.stringify(zone))
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const zoneFile = path.join(path.dirname(file), `${origin}.yaml`)
    assert.match(await readFile(zoneFile, 'utf8'), new RegExp(`^origin: ${origin}$`, 'm'))
    const region = await send(url, 'POST', `/v1/zones/${origin}/regions`, json, JSON.stringify({ name: 'eu', location: { country: 'IE' }, vips: ['192.0.2.1'] }))
    assert.equal(region.status, 201, JSON.stringify(region.body))
    assert.match(await readFile(zoneFile, 'utf8'), /^regions:\n {2}eu:\n {4}location: \{ country: IE \}\n {4}vips: \[ 192\.0\.2\.1 \]\n$/m)
    const drained = await send(url, 'POST', `/v1/zones/${origin}/regions/eu/drain`, {})
    assert.equal(drained.status, 200, JSON.stringify(drained.body))
    const deleted = await send(url, 'DELETE', `/v1/zones/${origin}`, {})
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body))
    assert.deepEqual((await readdir(path.dirname(file))).filter((f) => !f.startsWith('.')), [`${ORIGIN}.yaml`], 'no temporary file left, the zone moved away')
  })
})
