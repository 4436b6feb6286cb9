/**
 * Zones created (POST /v1/zones) and deleted (DELETE /v1/zones/{zone}) through the admin API of a
 * real Meridian process: real zone files, real simulated pools, answers checked with dig and raw
 * ECS queries. A created zone is answered with aa from its 201 on, its service from its pools; a
 * refused request leaves the zones directory as it was; a deleted zone is REFUSED from its 200 on,
 * its file in <zones>/.meridian/deleted/ with the same bytes and its series gone from /metrics; the
 * file watcher sees both writes and changes nothing. The same with --workers 2, where the control
 * process owns the store; and the curl examples of docs/api.md, run as written.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import type { SimPool } from '../../src/sim/index.js'
import { dig } from '../helpers/dig.js'
import { addressesOf, askMany, pollAnswer, startPools, STEADY, subnet } from '../helpers/gslb.js'
import { parseExposition } from '../helpers/metrics.js'
import { adminUrl, ROOT, startServer, tempDir, TEST_GEODB, type RunningServer } from '../helpers/server.js'
import { RCODE, TYPE } from '../helpers/wire.js'

const sh = promisify(execFile)
const TOKEN = 'e2e-zone-lifecycle-token-7c1d'
const KEEP = 'keep.zl.test'
const NEW = 'new.zl.test'
const VIP = { 'eu-west': '127.82.1.1', 'us-east': '127.82.2.1' } as const
/** Client networks of the test GeoIP database. */
const LONDON = '192.0.2.0/26'
const ASHBURN = '198.51.100.0/26'

const keepYaml = `origin: ${KEEP}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
`

/** The new zone as an operator sends it: static records, and a service over the two pools. */
function newZone(pools: Map<string, SimPool>, origin = NEW): Record<string, unknown> {
  // STEADY: a 0.1 s timeout let a loaded host take a region down while the test asserted it up.
  const check = (region: 'eu-west' | 'us-east') => ({ url: `http://${VIP[region]}:${pools.get(region)!.port}/healthz`, ...STEADY })
  return {
    origin,
    soa: { mname: 'ns1', rname: `hostmaster.${origin}.` },
    ns: ['ns1', 'ns.provider.example.net.'],
    records: { ns1: { A: '127.0.0.1' }, static: { A: ['192.0.2.80', '192.0.2.81'] } },
    regions: {
      'eu-west': { location: { lat: 53.35, lon: -6.26 }, vips: [VIP['eu-west']], check: check('eu-west') },
      'us-east': { location: { lat: 38.95, lon: -77.45 }, vips: [VIP['us-east']], check: check('us-east') },
    },
    services: { www: { policy: 'geo', answers: 1, unknown: 'down' } },
  }
}

async function call(url: string, method: string, p: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<{ status: number; etag: string | null; location: string | null; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${p}`, { method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) })
  const text = await res.text()
  return { status: res.status, etag: res.headers.get('etag'), location: res.headers.get('location'), body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

/** The zone files and the deleted ones, with their bytes (not the state files the server rewrites as health moves). */
async function listing(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const n of await readdir(dir)) if (n.endsWith('.yaml')) out[n] = await readFile(path.join(dir, n), 'utf8')
  const deleted = path.join(dir, '.meridian', 'deleted')
  for (const n of await readdir(deleted).catch(() => [] as string[])) out[`.meridian/deleted/${n}`] = await readFile(path.join(deleted, n), 'utf8')
  return out
}

/** The series of /metrics labelled with `zone`. */
async function zoneSeries(url: string, zone: string): Promise<string[]> {
  const res = await fetch(`${url}/metrics`)
  assert.equal(res.status, 200)
  const out: string[] = []
  for (const f of parseExposition(await res.text()).values()) for (const s of f.samples) if (s.labels.zone === zone) out.push(`${s.name}${JSON.stringify(s.labels)}`)
  return out
}

const q = (server: RunningServer, ...args: string[]) => dig('127.0.0.1', server.port, '+norec', ...args)
/** Log lines at error level or above. */
const errors = (server: RunningServer) => server.logs.filter((l) => l.level >= 50)
/** Waits for the watcher to see `name` change and find nothing to reload (the store's own write), in a line logged from index `from` on. */
const watcherSaw = (server: RunningServer, name: string, from = 0) => server.waitForLog((l) => l.msg === 'zone files unchanged; nothing to reload' && l.reason === `file changed: ${name}`, undefined, from)

/** A server on a fresh directory (used in place) holding only zone KEEP, with the admin token TOKEN and the test GeoIP database. */
async function serveKeep(prefix: string, args: string[]): Promise<{ dir: Awaited<ReturnType<typeof tempDir>>; server: RunningServer; url: string }> {
  const dir = await tempDir(prefix)
  const tokenFile = path.join(dir.dir, '.admin-token')
  await writeFile(tokenFile, TOKEN)
  await writeFile(path.join(dir.dir, `${KEEP}.yaml`), keepYaml)
  // A server that does not start is stopped by startServer; its directory is removed here (no after() has it yet).
  const server = await startServer({ zonesDirInPlace: dir.dir, args: ['--geodb', TEST_GEODB, '--admin-token-file', tokenFile, ...args] }).catch(async (err: unknown) => {
    await dir.cleanup()
    throw err
  })
  return { dir, server, url: await adminUrl(server) }
}

describe('zones created and deleted through the admin API (one process)', () => {
  let server: RunningServer
  let url: string
  let pools: Map<string, SimPool>
  let dir: Awaited<ReturnType<typeof tempDir>>
  let etag: string
  let created: string

  before(async () => {
    pools = await startPools((['eu-west', 'us-east'] as const).map((region) => ({ region, vip: VIP[region] })))
    ;({ dir, server, url } = await serveKeep('meridian-zone-lifecycle-e2e-', ['--log-level', 'debug']))
  })

  after(async () => {
    const code = await server?.stop()
    await Promise.all([...(pools?.values() ?? [])].map((p) => p.close()))
    await dir?.cleanup()
    assert.equal(code, 0, `exit 0 on SIGTERM; stderr: ${server?.stderr()}`)
  })

  test('POST creates <origin>.yaml and DNS answers the zone with aa from the 201 on: SOA, NS with glue, static A; its service from its pools', async () => {
    const res = await call(url, 'POST', '/v1/zones', newZone(pools))
    assert.equal(res.status, 201, JSON.stringify(res.body))
    assert.equal(res.location, `/v1/zones/${NEW}`)
    created = await readFile(path.join(dir.dir, `${NEW}.yaml`), 'utf8')
    etag = res.etag!
    assert.equal((await call(url, 'GET', `/v1/zones/${NEW}`)).etag, etag)
    const soa = await q(server, NEW, 'SOA')
    assert.equal(soa.status, 'NOERROR')
    assert.ok(soa.flags.includes('aa'), soa.raw)
    assert.match(soa.answer[0]!.data, new RegExp(`^ns1\\.${NEW.replace(/\./g, '\\.')}\\. hostmaster\\.${NEW.replace(/\./g, '\\.')}\\. \\d+ 3600 600 1209600 60$`))
    const ns = await q(server, NEW, 'NS')
    assert.ok(ns.flags.includes('aa'))
    assert.deepEqual(ns.answer.map((a) => a.data).sort(), ['ns.provider.example.net.', `ns1.${NEW}.`])
    assert.deepEqual(ns.additional.map((a) => `${a.name} ${a.type} ${a.data}`), [`ns1.${NEW}. A 127.0.0.1`])
    const a = await q(server, `static.${NEW}`, 'A')
    assert.ok(a.flags.includes('aa'))
    assert.deepEqual(a.answer.map((r) => r.data).sort(), ['192.0.2.80', '192.0.2.81'])
    // unknown: down: the service answers from a region once its pool's checks are up. (While both
    // are unknown, so down, the fallback answers by geography too: the answers alone do not say the
    // checks came up, so their state is waited for first.)
    const states = async () => ((await call(url, 'GET', '/v1/health')).body as { regions: { zone: string; region: string; state: string }[] }).regions.filter((r) => r.zone === NEW).map((r) => `${r.region} ${r.state}`).sort()
    for (const deadline = performance.now() + 20_000; performance.now() < deadline && (await states()).join() !== 'eu-west up,us-east up'; ) await new Promise((r) => setTimeout(r, 50))
    assert.deepEqual(await states(), ['eu-west up', 'us-east up'])
    await pollAnswer(server.port, { name: `www.${NEW}`, type: TYPE.A, client: subnet(LONDON) }, (r) => addressesOf(r).join() === VIP['eu-west'], { timeoutMs: 20_000, what: 'London: eu-west' })
    await pollAnswer(server.port, { name: `www.${NEW}`, type: TYPE.A, client: subnet(ASHBURN) }, (r) => addressesOf(r).join() === VIP['us-east'], { timeoutMs: 20_000, what: 'Ashburn: us-east' })
    const pool = pools.get('eu-west')!
    await Promise.all([0, 1].map((i) => pool.stopBackend(i)))
    await pool.probeNow() // the pool sees its backends gone now, not at its next round (1 s)
    await pollAnswer(server.port, { name: `www.${NEW}`, type: TYPE.A, client: subnet(LONDON) }, (r) => addressesOf(r).join() === VIP['us-east'], { timeoutMs: 20_000, what: 'London: us-east once eu-west fails' })
    await Promise.all([0, 1].map((i) => pool.startBackend(i)))
    // The watcher saw the file the API wrote, found the set built from it, and changed nothing.
    await watcherSaw(server, `${NEW}.yaml`)
    assert.equal(server.logs.filter((l) => l.msg === 'zones loaded').length, 2, 'start-up and the create: no second load')
    assert.deepEqual(errors(server), [])
  })

  test('bad requests: 4xx with a JSON error, and the zones directory as it was', async () => {
    // A file named for an origin, holding another (served as that other).
    await writeFile(path.join(dir.dir, 'taken.zl.test.yaml'), keepYaml.replace(KEEP, 'other.zl.test'))
    await call(url, 'POST', '/v1/reload')
    const before = await listing(dir.dir)
    const body = newZone(pools, 'x.zl.test')
    const cases: [what: string, method: string, p: string, body: unknown, headers: Record<string, string> | undefined, status: number, code: string][] = [
      ['no soa', 'POST', '/v1/zones', { ...body, soa: undefined }, undefined, 400, 'E_ZONE_SCHEMA'],
      ['an origin that is not a name', 'POST', '/v1/zones', { ...body, origin: 'x..zl.test' }, undefined, 400, 'E_ZONE_SEMANTIC'],
      ['a service over an unknown region', 'POST', '/v1/zones', { ...body, services: { www: { regions: ['mars'] } } }, undefined, 400, 'E_ZONE_SEMANTIC'],
      ['an origin served already', 'POST', '/v1/zones', { ...body, origin: KEEP }, undefined, 409, 'E_API_CONFLICT'],
      ['<origin>.yaml exists already', 'POST', '/v1/zones', { ...body, origin: 'taken.zl.test' }, undefined, 409, 'E_API_CONFLICT'],
      ['not JSON', 'POST', '/v1/zones', '{"origin": ', undefined, 400, 'E_API_BODY'],
      ['no token', 'POST', '/v1/zones', body, {}, 401, 'E_API_AUTH'],
      ['a wrong token', 'DELETE', `/v1/zones/${NEW}`, undefined, { authorization: 'Bearer nope' }, 401, 'E_API_AUTH'],
      ['a delete with a stale If-Match', 'DELETE', `/v1/zones/${NEW}`, undefined, { authorization: `Bearer ${TOKEN}`, 'if-match': '"00000000000000000000000000000000"' }, 412, 'E_API_PRECONDITION'],
      ['a delete of a zone not served', 'DELETE', '/v1/zones/nope.zl.test', undefined, undefined, 404, 'E_API_NOT_FOUND'],
    ]
    for (const [what, method, p, b, headers, status, code] of cases) {
      const res = await call(url, method, p, b, headers)
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body.error, code, what)
      assert.equal(typeof res.body.message, 'string', what)
      assert.deepEqual(await listing(dir.dir), before, `${what}: nothing written`)
    }
    assert.equal((await q(server, NEW, 'SOA')).status, 'NOERROR', 'the zone is still served')
  })

  test('DELETE with If-Match: REFUSED from the 200 on, the file in .meridian/deleted/ with the same bytes, the zone\'s series out of /metrics', async () => {
    assert.equal((await q(server, `static.${NEW}`, 'A')).status, 'NOERROR')
    assert.ok((await zoneSeries(url, NEW)).length > 0, 'the zone has series before')
    const loads = server.logs.filter((l) => l.msg === 'zones loaded').length
    // Counted from here: the watcher's look at the create's file is not the delete's.
    const from = server.logs.length
    const res = await call(url, 'DELETE', `/v1/zones/${NEW}`, undefined, { authorization: `Bearer ${TOKEN}`, 'if-match': etag })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    for (const [name, type] of [[NEW, 'SOA'], [NEW, 'NS'], [`static.${NEW}`, 'A'], [`www.${NEW}`, 'A']] as const) {
      assert.equal((await q(server, name, type)).status, 'REFUSED', `${name} ${type}`)
    }
    const movedTo = res.body.movedTo as string
    assert.equal(path.dirname(movedTo), path.join(dir.dir, '.meridian', 'deleted'))
    assert.equal(await readFile(movedTo, 'utf8'), created, 'the same bytes')
    assert.ok(!(await readdir(dir.dir)).includes(`${NEW}.yaml`))
    assert.deepEqual(await zoneSeries(url, NEW), [])
    const health = (await call(url, 'GET', '/v1/health')).body as { regions: { zone: string }[] }
    assert.deepEqual(health.regions.filter((r) => r.zone === NEW), [], 'its regions are no longer checked')
    assert.equal((await q(server, KEEP, 'SOA')).status, 'NOERROR', 'the other zones stay')
    await watcherSaw(server, `${NEW}.yaml`, from)
    assert.equal(server.logs.filter((l) => l.msg === 'zones loaded').length, loads + 1, 'one load: the delete')
    assert.deepEqual(errors(server), [])
    // Moved back, it is served again: the delete is undone.
    await sh('sh', ['-c', res.body.restore as string])
    await server.waitForLog((l) => l.msg === 'zones loaded' && String(l.reason).startsWith('file changed') && (l.zones as { origin: string }[]).some((z) => z.origin === NEW))
    assert.equal((await q(server, NEW, 'SOA')).status, 'NOERROR')
  })
})

describe('zones created and deleted with --workers 2', () => {
  let server: RunningServer
  let url: string
  let dir: Awaited<ReturnType<typeof tempDir>>

  before(async () => {
    ;({ dir, server, url } = await serveKeep('meridian-zone-lifecycle-workers-', ['--workers', '2']))
  })

  after(async () => {
    const code = await server?.stop()
    await dir?.cleanup()
    assert.equal(code, 0, `exit 0 on SIGTERM; stderr: ${server?.stderr()}`)
  })

  test('every worker answers a created zone from the 201 on, and refuses a deleted one from the 200 on; its series leave /metrics', async () => {
    const soa = (origin: string) => Array.from({ length: 60 }, () => ({ name: origin, type: TYPE.SOA, client: null }))
    const body = { origin: NEW, soa: { mname: 'ns1', rname: 'hostmaster' }, ns: ['ns1'], records: { ns1: { A: '127.0.0.1' } } }
    const res = await call(url, 'POST', '/v1/zones', body)
    assert.equal(res.status, 201, JSON.stringify(res.body))
    // Straight after the 201 (no dig start-up in between), over many source ports: both workers.
    const answered = await askMany(server.port, soa(NEW), 16)
    assert.deepEqual([...new Set(answered.map((r) => `${r.rcode} aa=${r.aa} ${r.answers.length}`))], [`${RCODE.NOERROR} aa=true 1`])
    assert.ok((await zoneSeries(url, NEW)).length > 0, 'the workers counted the zone')
    const gone = await call(url, 'DELETE', `/v1/zones/${NEW}`)
    assert.equal(gone.status, 200, JSON.stringify(gone.body))
    const refused = await askMany(server.port, soa(NEW), 16)
    assert.deepEqual([...new Set(refused.map((r) => r.rcode))], [RCODE.REFUSED])
    assert.deepEqual(await zoneSeries(url, NEW), [], 'out of what every worker reports')
    assert.equal((await readdir(path.join(dir.dir, '.meridian', 'deleted'))).length, 1)
  })
})

describe('the zone create and delete examples of docs/api.md, run as written', () => {
  let server: RunningServer
  let url: string
  let dir: Awaited<ReturnType<typeof tempDir>>

  before(async () => {
    dir = await tempDir('meridian-zone-lifecycle-docs-')
    const tokenFile = path.join(dir.dir, 'token')
    await writeFile(tokenFile, TOKEN)
    // The demo zones and the default GeoIP database, as `npm start` serves them.
    server = await startServer({ args: ['--admin-token-file', tokenFile] })
    url = await adminUrl(server)
  })

  after(async () => {
    await server?.stop()
    await dir?.cleanup()
  })

  /** The ```sh block of docs/api.md under `### heading`. */
  async function block(heading: string): Promise<string> {
    const md = await readFile(path.join(ROOT, 'docs', 'api.md'), 'utf8')
    const code = /```sh\n([\s\S]*?)```/.exec(md.slice(md.indexOf(`### ${heading}`)))?.[1]
    assert.ok(code, `docs/api.md has a sh block under ### ${heading}`)
    return code
  }

  /** Runs the block's commands (its `# ...` lines and comments dropped) through sh; the dig lines against the server. */
  async function run(code: string): Promise<string[]> {
    const commands = code
      .replace(/\\\n/g, '')
      .split(/\n(?=curl |dig )/)
      .map((c) => c.replace(/\n#.*$/gm, '').trim())
      .filter(Boolean)
    const out: string[] = []
    for (const c of commands) {
      const env = { ...process.env, A: url, H: `Authorization: Bearer ${TOKEN}`, J: 'Content-Type: application/json' }
      const { stdout } = await sh('sh', ['-c', c.replace(/\s+# [^'\n]*$/, '').replace('-p 5300', `-p ${server.port}`)], { env })
      out.push(stdout)
    }
    return out
  }

  test('create: the zone is written and answered as the comments say; delete: REFUSED, the answer shaped as shown', async () => {
    const create = await block('Create a zone')
    const [posted, soa, www] = await run(create)
    assert.equal((JSON.parse(posted!) as { origin: string }).origin, 'lab.example.test', posted)
    assert.match(create, /SOA\s+# flags: qr aa\n/)
    assert.match(soa!, /;; flags: qr aa;/)
    const shown = /\+short\s+# (\S+)/.exec(create)?.[1]
    assert.equal(www!.trim(), shown)
    const remove = await block('Delete a zone')
    const [deleted, refused] = await run(remove)
    const body = JSON.parse(deleted!) as Record<string, unknown>
    const documented = JSON.parse(/^((?:# .*\n)+)/m.exec(remove.slice(remove.indexOf('\n') + 1))![1]!.replace(/^# /gm, '').replace('"message":"zone lab.example.test is no longer served (its names are REFUSED); ..."', `"message":${JSON.stringify(body.message)}`)) as Record<string, unknown>
    assert.deepEqual(Object.keys(body), Object.keys(documented), 'the keys the docs show')
    assert.match(remove, /SOA\s+# status: REFUSED\n/)
    assert.match(refused!, /status: REFUSED/)
  })
})
