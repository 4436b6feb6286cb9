/**
 * Zones created and deleted through the admin API (POST /v1/zones, DELETE /v1/zones/{zone}), in
 * process: the routes through fastify.inject() over a real FileConfigStore on a temporary
 * directory (real files, real renames), and the pieces under them (atomic.ts createFileAtomic and
 * moveFileDurably, zone-editor.ts renderNewZone, validate.ts withoutZoneDefaults). Every refused
 * request is checked to leave the directory as it was, byte for byte.
 */
import assert from 'node:assert/strict'
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import { Ajv } from 'ajv'
import * as ajvFormats from 'ajv-formats'
import YAML from 'yaml'
import { buildAdminApp } from '../../src/admin/app.js'
import { withoutZoneDefaults } from '../../src/admin/validate.js'
import { DnsWorkers } from '../../src/cluster/primary.js'
import { PLACES } from '../../src/config/places.js'
import { createLogger } from '../../src/log.js'
import { createFileAtomic, directory, moveFileDurably } from '../../src/store/atomic.js'
import { FileConfigStore } from '../../src/store/file-store.js'
import { SerialBook } from '../../src/store/serials.js'
import { etagOf, renderNewZone } from '../../src/store/zone-editor.js'

const TOKEN = 'zone-lifecycle-token'
const AUTH = { authorization: `Bearer ${TOKEN}` }

const EXISTING = `# a zone served from the start
origin: admin.test
soa: { mname: ns1, rname: hostmaster.admin.test. }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
`

/** A zone body as an operator writes it. */
const NEW_ZONE = {
  origin: 'new.test',
  soa: { mname: 'ns1', rname: 'hostmaster.new.test.' },
  ns: ['ns1', 'ns.provider.example.net.'],
  records: { ns1: { A: '192.0.2.54' }, '@': { TXT: 'v=spf1 -all' }, www: { A: ['192.0.2.80', '192.0.2.81'], AAAA: '2001:db8::80' } },
  regions: { 'eu-west': { location: { lat: 53.35, lon: -6.26 }, vips: ['192.0.2.1'] }, 'us-east': { location: { country: 'US' }, vips: ['192.0.2.2'], weight: 50 } },
  services: { app: { regions: ['eu-west', 'us-east'], policy: 'geo' } },
}

interface Harness {
  app: ReturnType<typeof buildAdminApp>
  store: FileConfigStore
  dir: string
  logs: () => { level: number; msg: string; reason?: string }[]
  /** Every file under the directory (the state directory too) with its bytes. */
  listing(): Promise<Record<string, string>>
}

async function listing(dir: string, base = dir): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) Object.assign(out, await listing(p, base))
    else out[path.relative(base, p)] = e.isSymbolicLink() ? `-> ${(await lstat(p)).size}` : await readFile(p, 'utf8')
  }
  return out
}

async function harness(t: TestContext, files: Record<string, string> = { 'admin.test.yaml': EXISTING }): Promise<Harness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-zone-lifecycle-'))
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text)
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  })
  const log = createLogger('debug', sink)
  const store = new FileConfigStore(dir, log.child({ mod: 'config' }), new SerialBook(path.join(dir, '.meridian', 'serials.json')), PLACES)
  await store.reload('start-up')
  const app = buildAdminApp({
    store,
    health: () => ({ generation: 0, targets: new Map() }),
    resolve: () => ({ rcode: 5, zone: undefined, answer: [], ecsScope: 0, selection: undefined, client: null }) as never,
    token: TOKEN,
    readsNeedToken: false,
    logger: log,
    metrics: async () => '',
    ready: () => ({ ready: true, reasons: [] }),
  })
  await app.ready()
  t.after(async () => {
    await app.close()
    store.close()
    await rm(dir, { recursive: true, force: true })
  })
  return { app, store, dir, logs: () => lines.map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string }), listing: () => listing(dir) }
}

const post = (h: Harness, body: unknown, headers: Record<string, string> = AUTH) =>
  h.app.inject({ method: 'POST', url: '/v1/zones', headers: { ...headers, 'content-type': 'application/json' }, payload: typeof body === 'string' ? body : JSON.stringify(body) })
const del = (h: Harness, zone: string, headers: Record<string, string> = AUTH) => h.app.inject({ method: 'DELETE', url: `/v1/zones/${zone}`, headers })
const get = (h: Harness, url: string) => h.app.inject({ method: 'GET', url })

/** Polls `cond` every 10 ms until it holds, or fails after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('atomic.ts: a new file never made over another, a file moved durably', () => {
  test('createFileAtomic writes the file whole, 0644 less the umask, and leaves no temporary file', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-create-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'a.yaml')
    const sync = t.mock.method(directory, 'sync')
    await createFileAtomic(file, 'origin: a.test\n')
    assert.equal(await readFile(file, 'utf8'), 'origin: a.test\n')
    assert.equal((await stat(file)).mode & 0o777, 0o644 & ~process.umask())
    assert.deepEqual(await readdir(dir), ['a.yaml'])
    assert.deepEqual(sync.mock.calls.map((c) => c.arguments[0]), [dir], 'the directory was synced')
  })

  test('createFileAtomic refuses (EEXIST) a name held by a file or by a dangling link, which stay as they were', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-create-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    await writeFile(path.join(dir, 'file.yaml'), 'broken: [\n')
    await symlink(path.join(dir, 'nowhere.yaml'), path.join(dir, 'link.yaml'))
    for (const name of ['file.yaml', 'link.yaml']) {
      await assert.rejects(createFileAtomic(path.join(dir, name), 'origin: a.test\n'), (err: NodeJS.ErrnoException) => err.code === 'EEXIST')
    }
    assert.equal(await readFile(path.join(dir, 'file.yaml'), 'utf8'), 'broken: [\n')
    assert.ok((await lstat(path.join(dir, 'link.yaml'))).isSymbolicLink())
    await assert.rejects(lstat(path.join(dir, 'nowhere.yaml')), 'nothing was written through the link')
    assert.deepEqual((await readdir(dir)).sort(), ['file.yaml', 'link.yaml'], 'no temporary file left')
  })

  test('moveFileDurably renames, syncs the directory left and the one entered (and its parent), and refuses to replace a file', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-move-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const into = path.join(dir, '.meridian', 'deleted')
    await mkdir(into, { recursive: true })
    await writeFile(path.join(dir, 'a.yaml'), 'A')
    await writeFile(path.join(dir, 'b.yaml'), 'B')
    await writeFile(path.join(into, 'b.yaml'), 'old B')
    const sync = t.mock.method(directory, 'sync')
    await moveFileDurably(path.join(dir, 'a.yaml'), path.join(into, 'a.yaml'))
    assert.equal(await readFile(path.join(into, 'a.yaml'), 'utf8'), 'A')
    assert.deepEqual(sync.mock.calls.map((c) => c.arguments[0]).sort(), [dir, path.join(dir, '.meridian'), into].sort())
    await assert.rejects(moveFileDurably(path.join(dir, 'b.yaml'), path.join(into, 'b.yaml')), (err: NodeJS.ErrnoException) => err.code === 'EEXIST')
    assert.equal(await readFile(path.join(into, 'b.yaml'), 'utf8'), 'old B')
    assert.equal(await readFile(path.join(dir, 'b.yaml'), 'utf8'), 'B')
  })
})

describe('the text of a new zone file', () => {
  test('keys in the schema order, defaults left out (in the SOA, regions, their checks and services too), small collections in flow style; it parses back to the body', () => {
    const body = {
      services: { www: { policy: 'geo-latency', regions: 'all', ttl: 30, answers: 1 } },
      regions: { eu: { vips: ['192.0.2.1'], location: { country: 'GB' }, weight: 100, drained: false, check: { type: 'http', path: '/healthz', interval: 3 } } },
      ns: ['ns1'],
      records: {},
      soa: { mname: 'ns1', rname: 'hostmaster', serial: 'auto', refresh: 3600, minimum: 30 },
      ttl: 300,
      origin: 'x.test',
    }
    const stripped = withoutZoneDefaults(body)
    assert.deepEqual(Object.keys(stripped), ['origin', 'soa', 'ns', 'regions', 'services'])
    const text = renderNewZone(stripped)
    assert.equal(
      text,
      [
        'origin: x.test',
        'soa: { mname: ns1, rname: hostmaster, minimum: 30 }',
        'ns: [ ns1 ]',
        'regions:',
        '  eu:',
        '    vips: [ 192.0.2.1 ]',
        '    location: { country: GB }',
        '    check: { interval: 3 }',
        'services:',
        '  www: { answers: 1 }',
        '',
      ].join('\n'),
    )
    assert.deepEqual(YAML.parse(text), stripped)
  })

  test('names YAML would read as something else (@, an IPv6 address, yes, a number) come back as the strings they were', () => {
    const body = { origin: 'x.test', soa: { mname: 'ns1', rname: 'h' }, ns: ['ns1'], records: { '@': { TXT: ['yes', '007', 'a: b', '# not a comment'] }, ns1: { AAAA: '2001:db8::1', A: '192.0.2.1' } } }
    const text = renderNewZone(body)
    assert.deepEqual(YAML.parse(text), body)
  })
})

describe('POST /v1/zones', () => {
  test('creates <origin>.yaml: 201 with Location, the ETag of the file and the zone as GET shows it; the set serves it at once', async (t) => {
    const h = await harness(t)
    const before = h.store.current().generation
    const res = await post(h, { ...NEW_ZONE, origin: 'New.Test.' })
    assert.equal(res.statusCode, 201, res.body)
    assert.equal(res.headers.location, '/v1/zones/new.test')
    const file = path.join(h.dir, 'new.test.yaml')
    const text = await readFile(file, 'utf8')
    assert.equal(res.headers.etag, etagOf(text))
    const shown = await get(h, '/v1/zones/new.test')
    assert.equal(shown.statusCode, 200)
    assert.equal(shown.headers.etag, res.headers.etag)
    assert.deepEqual(res.json(), shown.json())
    const set = h.store.current()
    assert.equal(set.generation, before + 1)
    assert.deepEqual([...set.zones.keys()].sort(), ['admin.test', 'new.test'])
    const zone = set.zones.get('new.test')!
    assert.equal(zone.file, file)
    assert.ok(zone.soa.serial! >= Math.floor(Date.now() / 1000) - 5, 'serial: auto is the clock for a zone never served')
    assert.deepEqual([...zone.services.keys()], ['app.new.test'])
    assert.deepEqual(YAML.parse(text), { ...NEW_ZONE, origin: 'New.Test.' }, 'the file holds the body (no default added)')
    assert.equal((await readdir(h.dir)).filter((n) => n.endsWith('.tmp')).length, 0)
    const serials = JSON.parse(await readFile(path.join(h.dir, '.meridian', 'serials.json'), 'utf8')) as Record<string, { serial: number }>
    assert.equal(serials['new.test']?.serial, zone.soa.serial, 'the serial book has the new zone')
  })

  test('a GET answer sent back under another origin makes a file without the defaults GET filled in', async (t) => {
    const h = await harness(t)
    await post(h, NEW_ZONE)
    const got = (await get(h, '/v1/zones/new.test')).json() as Record<string, unknown>
    assert.equal((got.soa as { serial: unknown }).serial, 'auto', 'GET shows the defaults')
    const res = await post(h, { ...got, origin: 'clone.test', soa: { ...(got.soa as object), rname: 'hostmaster.clone.test.' } })
    assert.equal(res.statusCode, 201, res.body)
    const text = await readFile(path.join(h.dir, 'clone.test.yaml'), 'utf8')
    assert.deepEqual(YAML.parse(text), { ...NEW_ZONE, origin: 'clone.test', soa: { mname: 'ns1', rname: 'hostmaster.clone.test.' } })
  })

  const bad: [what: string, body: unknown, status: number, code: string, details?: { path: string; message: string }[]][] = [
    ['no soa', { origin: 'x.test', ns: ['ns.example.net.'] }, 400, 'E_ZONE_SCHEMA', [{ path: 'soa', message: 'missing required key "soa"' }]],
    ['an unknown key', { origin: 'x.test', soa: { mname: 'ns1', rname: 'h' }, ns: ['ns.example.net.'], colour: 'red' }, 400, 'E_ZONE_SCHEMA'],
    ['a bad weight, said where in the body', { ...NEW_ZONE, origin: 'x.test', regions: { eu: { location: { country: 'GB' }, vips: ['192.0.2.1'], weight: 'heavy' } } }, 400, 'E_ZONE_SCHEMA', [{ path: 'regions.eu.weight', message: 'must be an integer 0..1000 (0 = standby), got "heavy"' }]],
    ['an origin that is not a name', { ...NEW_ZONE, origin: 'a..b' }, 400, 'E_ZONE_SEMANTIC', [{ path: 'origin', message: 'name has an empty label (two dots in a row)' }]],
    ['an origin that would leave the directory', { ...NEW_ZONE, origin: '../../etc/x' }, 400, 'E_ZONE_SEMANTIC'],
    ['the root', { ...NEW_ZONE, origin: '.' }, 400, 'E_API_BODY'],
    ['an origin too long for a file name', { ...NEW_ZONE, origin: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}` }, 400, 'E_API_BODY'],
    ['in-zone name server without glue', { origin: 'x.test', soa: { mname: 'ns1', rname: 'h' }, ns: ['ns1'] }, 400, 'E_ZONE_SEMANTIC', [{ path: 'ns.0', message: 'name server ns1.x.test is inside the zone but has no A or AAAA record under records: (glue is required)' }]],
    ['an origin served already (other case, final dot)', { ...NEW_ZONE, origin: 'ADMIN.test.' }, 409, 'E_API_CONFLICT'],
    ['not an object', '[1]', 400, 'E_API_BODY'],
    ['no body', '', 400, 'E_API_BODY'],
  ]
  for (const [what, body, status, code, details] of bad) {
    test(`${what}: ${status} ${code}, nothing written`, async (t) => {
      const h = await harness(t)
      const before = await h.listing()
      const generation = h.store.current().generation
      const res = await post(h, body)
      assert.equal(res.statusCode, status, res.body)
      const got = res.json() as { error: string; message: string; details: unknown[] }
      assert.equal(got.error, code, res.body)
      if (details) assert.deepEqual(got.details, details)
      assert.deepEqual(await h.listing(), before)
      assert.equal(h.store.current().generation, generation)
    })
  }

  test('without the token: 401, nothing written', async (t) => {
    const h = await harness(t)
    const before = await h.listing()
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
      const res = await post(h, NEW_ZONE, headers)
      assert.equal(res.statusCode, 401)
      assert.equal((res.json() as { error: string }).error, 'E_API_AUTH')
    }
    assert.deepEqual(await h.listing(), before)
  })

  test('<origin>.yaml existing already (a broken file the last reload refused, a dangling link) is a 409; the file stays as it was', async (t) => {
    const h = await harness(t)
    await writeFile(path.join(h.dir, 'new.test.yaml'), 'origin: new.test\nsoa: [\n')
    const before = await h.listing()
    const res = await post(h, NEW_ZONE)
    assert.equal(res.statusCode, 409, res.body)
    assert.match((res.json() as { message: string }).message, /new\.test\.yaml exists already \(a file\) though zone new\.test is not served from it: Meridian does not replace it/)
    assert.deepEqual(await h.listing(), before)
    await rm(path.join(h.dir, 'new.test.yaml'))
    await symlink(path.join(h.dir, 'elsewhere.yaml'), path.join(h.dir, 'new.test.yaml'))
    const link = await post(h, NEW_ZONE)
    assert.equal(link.statusCode, 409, link.body)
    assert.match((link.json() as { message: string }).message, /exists already \(a symbolic link \(to .*elsewhere\.yaml\)\)/)
    await assert.rejects(lstat(path.join(h.dir, 'elsewhere.yaml')), 'nothing written through the link')
  })

  test('another file declaring the origin, not served yet (no reload since it was added), is a 409 naming it', async (t) => {
    const h = await harness(t)
    await writeFile(path.join(h.dir, 'zz-by-hand.yaml'), EXISTING.replaceAll('admin.test', 'new.test').replace('192.0.2.53', '192.0.2.54'))
    const before = await h.listing()
    const res = await post(h, NEW_ZONE)
    assert.equal(res.statusCode, 409, res.body)
    assert.match((res.json() as { message: string }).message, /^zone new\.test is declared already by .*zz-by-hand\.yaml, which is in .* though not served yet: POST \/v1\/reload to serve it, or move it away, then retry/)
    assert.deepEqual(await h.listing(), before)
  })

  test('another zone file broken on disk: 400 naming that file and line, nothing written (as for any change)', async (t) => {
    const h = await harness(t)
    await writeFile(path.join(h.dir, 'admin.test.yaml'), EXISTING.replace('ns: [ns1]', 'ns: [ns1'))
    const before = await h.listing()
    const res = await post(h, NEW_ZONE)
    assert.equal(res.statusCode, 400, res.body)
    const body = res.json() as { error: string; details: { file?: string; line?: number }[] }
    assert.equal(body.error, 'E_ZONE_YAML')
    assert.equal(body.details[0]?.file, path.join(h.dir, 'admin.test.yaml'))
    assert.deepEqual(await h.listing(), before)
  })

  test('a zone inside a served one is accepted, as the loader accepts it', async (t) => {
    const h = await harness(t)
    const res = await post(h, { ...NEW_ZONE, origin: 'eu.admin.test' })
    assert.equal(res.statusCode, 201, res.body)
  })
})

describe('DELETE /v1/zones/{zone}', () => {
  test('moves the file into .meridian/deleted/ with the same bytes, stops serving the zone, and says how to undo it; moved back, the zone is served with its serial', async (t) => {
    const h = await harness(t)
    assert.equal((await post(h, NEW_ZONE)).statusCode, 201)
    const file = path.join(h.dir, 'new.test.yaml')
    const bytes = await readFile(file, 'utf8')
    const serial = h.store.current().zones.get('new.test')!.soa.serial
    const res = await del(h, 'new.test')
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.headers.etag, undefined, 'no ETag: the zone is gone')
    const body = res.json() as { origin: string; deleted: boolean; file: string; movedTo: string; restore: string; message: string; zones: string[] }
    assert.equal(body.origin, 'new.test')
    assert.equal(body.deleted, true)
    assert.equal(body.file, file)
    assert.match(body.movedTo, new RegExp(`^${h.dir.replace(/[.]/g, '\\.')}/\\.meridian/deleted/new\\.test\\.\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.\\d{3}Z\\.yaml$`))
    assert.equal(body.restore, `mv -n ${body.movedTo} ${file}`)
    assert.deepEqual(body.zones, ['admin.test'])
    assert.equal(await readFile(body.movedTo, 'utf8'), bytes, 'the same bytes')
    await assert.rejects(lstat(file))
    assert.equal((await get(h, '/v1/zones/new.test')).statusCode, 404)
    assert.deepEqual([...h.store.current().zones.keys()], ['admin.test'])
    await rename(body.movedTo, file)
    await h.store.reload('test: moved back')
    assert.equal(h.store.current().zones.get('new.test')?.soa.serial, serial, 'the same serial: the same content')
  })

  test('If-Match not the zone\'s ETag: 412 with the current one, nothing moved; If-Match equal to it: deleted', async (t) => {
    const h = await harness(t)
    const etag = (await post(h, NEW_ZONE)).headers.etag as string
    const before = await h.listing()
    const stale = await del(h, 'new.test', { ...AUTH, 'if-match': '"0123"' })
    assert.equal(stale.statusCode, 412, stale.body)
    assert.equal(stale.headers.etag, etag)
    const none = await del(h, 'new.test', { ...AUTH, 'if-none-match': etag })
    assert.equal(none.statusCode, 412, none.body)
    assert.deepEqual(await h.listing(), before)
    assert.ok(h.store.current().zones.has('new.test'))
    assert.equal((await del(h, 'new.test', { ...AUTH, 'if-match': etag })).statusCode, 200)
  })

  test('with If-Match, a file edited by hand since it was loaded is a 409; without, it is moved as it is on disk (nothing lost)', async (t) => {
    const h = await harness(t)
    const etag = (await post(h, NEW_ZONE)).headers.etag as string
    const file = path.join(h.dir, 'new.test.yaml')
    await writeFile(file, (await readFile(file, 'utf8')) + '# a hand edit\n')
    const res = await del(h, 'new.test', { ...AUTH, 'if-match': etag })
    assert.equal(res.statusCode, 409, res.body)
    assert.match(await readFile(file, 'utf8'), /# a hand edit/)
    const plain = await del(h, 'new.test')
    assert.equal(plain.statusCode, 200, plain.body)
    assert.match(await readFile((plain.json() as { movedTo: string }).movedTo, 'utf8'), /# a hand edit\n$/)
  })

  test('unknown zone 404, no token 401; a read-only file (E_ZONE_READ_ONLY) or a symbolic link: 409, nothing moved', async (t) => {
    const h = await harness(t)
    const target = path.join(h.dir, 'linked-target')
    await mkdir(target)
    await writeFile(path.join(target, 'l.yaml'), EXISTING.replaceAll('admin.test', 'linked.test'))
    await symlink(path.join(target, 'l.yaml'), path.join(h.dir, 'linked.test.yaml'))
    await h.store.reload('test')
    const before = await h.listing()
    assert.equal((await del(h, 'nope.test')).statusCode, 404)
    assert.equal((await del(h, 'admin.test', {})).statusCode, 401)
    const link = await del(h, 'linked.test')
    assert.equal(link.statusCode, 409, link.body)
    assert.match((link.json() as { message: string }).message, /linked\.test\.yaml is a symbolic link \(to .*l\.yaml\): Meridian does not delete a zone whose file is managed elsewhere/)
    await chmod(path.join(h.dir, 'admin.test.yaml'), 0o444)
    const ro = await del(h, 'admin.test')
    assert.equal(ro.statusCode, 409, ro.body)
    assert.equal((ro.json() as { error: string }).error, 'E_ZONE_READ_ONLY')
    assert.deepEqual(await h.listing(), before)
    assert.deepEqual([...h.store.current().zones.keys()].sort(), ['admin.test', 'linked.test'])
  })

  test('the directory fsync failing after the move: 500 E_ZONE_NOT_DURABLE without an ETag; the zone is not served, its file moved', async (t) => {
    const h = await harness(t)
    assert.equal((await post(h, NEW_ZONE)).statusCode, 201)
    t.mock.method(directory, 'sync', async () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })
    })
    const res = await del(h, 'new.test')
    assert.equal(res.statusCode, 500, res.body)
    assert.equal((res.json() as { error: string }).error, 'E_ZONE_NOT_DURABLE')
    assert.equal(res.headers.etag, undefined)
    assert.ok(!h.store.current().zones.has('new.test'))
    assert.equal((await readdir(path.join(h.dir, '.meridian', 'deleted'))).length, 1)
  })

  test('the last zone may be deleted: nothing is served, as on an empty directory; a zone created then is served', async (t) => {
    const h = await harness(t)
    const res = await del(h, 'admin.test')
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual((res.json() as { zones: string[] }).zones, [])
    assert.equal(h.store.current().zones.size, 0)
    assert.ok(h.logs().some((l) => l.level === 40 && /every query will be refused until some are added/.test(l.msg)), 'said at warn level')
    assert.equal((await post(h, NEW_ZONE)).statusCode, 201)
    assert.deepEqual([...h.store.current().zones.keys()], ['new.test'])
  })
})

test('the file watcher sees the created file and the moved one, and changes nothing: one set per change, no error', async (t) => {
  const h = await harness(t)
  h.store.watch(20)
  let sets = 0
  h.store.onChange(() => sets++)
  const unchanged = (name: string) => h.logs().filter((l) => l.msg === 'zone files unchanged; nothing to reload' && l.reason === `file changed: ${name}`).length
  assert.equal((await post(h, NEW_ZONE)).statusCode, 201)
  await until(() => unchanged('new.test.yaml') > 0, 5000, 'the watcher saw new.test.yaml')
  // Counted from here: a second look at the created file (its rename seen twice) is not the delete's.
  const before = unchanged('new.test.yaml')
  assert.equal((await del(h, 'new.test')).statusCode, 200)
  await until(() => unchanged('new.test.yaml') > before, 5000, 'the watcher saw new.test.yaml leave')
  assert.equal(sets, 2, 'one new set for the create, one for the delete')
  assert.deepEqual(h.logs().filter((l) => l.level >= 50), [], 'nothing logged as an error')
  assert.equal(h.logs().filter((l) => l.msg === 'zones loaded').length, 3, 'start-up, create, delete')
})

test('with DNS workers, a zone created or deleted is answered only once every worker serves the new set (the synced store waits, as for an edit)', async (t) => {
  const h = await harness(t)
  // DnsWorkers.syncedStore over the real store, its synced() held until the test lets it go.
  let release: () => void = () => undefined
  let asked = 0
  const workers = {
    synced: () => {
      asked++
      return new Promise<void>((r) => (release = r))
    },
  }
  const synced = DnsWorkers.prototype.syncedStore.call(workers as unknown as DnsWorkers, h.store)
  const text = renderNewZone(NEW_ZONE)
  for (const op of [() => synced.createZone('new.test', text), () => synced.deleteZone('new.test')]) {
    let done = false
    const p = op().then(() => (done = true))
    await until(() => asked > 0, 5000, 'synced() asked for')
    assert.equal(done, false, 'not answered while a worker may still serve the old set')
    release()
    await p
    asked = 0
  }
  assert.ok(!h.store.current().zones.has('new.test'))
})

test('the OpenAPI document: a GET of a zone is a Zone, and so is the body that created it; a delete\'s answer is a ZoneDeleted', async (t) => {
  const h = await harness(t)
  const doc = (await get(h, '/openapi.json')).json() as { components: { schemas: Record<string, object> } }
  const ajv = new Ajv({ strict: false })
  let addFormats: unknown = ajvFormats
  while (typeof addFormats !== 'function') addFormats = (addFormats as { default: unknown }).default
  ;(addFormats as (a: Ajv, f: string[]) => void)(ajv, ['ipv4', 'ipv6'])
  const zone = ajv.compile(doc.components.schemas.Zone!)
  const deleted = ajv.compile(doc.components.schemas.ZoneDeleted!)
  assert.equal(zone(NEW_ZONE), true, JSON.stringify(zone.errors))
  assert.equal(zone({ ...NEW_ZONE, colour: 'red' }), false, 'an unknown key')
  assert.equal((await post(h, NEW_ZONE)).statusCode, 201)
  const shown = (await get(h, '/v1/zones/new.test')).json() as unknown
  assert.equal(zone(shown), true, JSON.stringify(zone.errors))
  const res = await del(h, 'new.test')
  assert.equal(deleted(res.json()), true, JSON.stringify(deleted.errors))
})
