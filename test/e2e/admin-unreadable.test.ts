/**
 * The admin API and reloads on a zones directory holding things named like zone files that are not
 * readable zone files: a directory named `x.yaml` (no zone file: skipped, with a warning at each
 * reload), and a symbolic link that dangles or loops (a zone file the operator meant to have, which
 * cannot be read: the set is rejected, and every change says so as it says a YAML error in another
 * file: a 400 naming the file; the zone's own file so replaced, a 409). Over real HTTP to a real
 * server, DNS read with dig; after each refusal the zone file is byte for byte as it was.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, rename, symlink, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { tempDir } from '../helpers/server.js'
import { serveInPlace, smallZone, zoneWithRegions } from '../helpers/zones.js'

const ORIGIN = 'unreadable.test'
const ZONE = zoneWithRegions(
  ORIGIN,
  `  eu: { location: { lat: 53.35, lon: -6.26 }, vips: [192.0.2.20] }
`,
  `  www: { policy: geo, regions: [eu], answers: 1 }
`,
)

interface ErrorReply {
  status: number
  body: { error?: string; message?: string; details?: { path: string; message: string; file?: string }[] }
}

const call = async (url: string, method: string, p: string, body?: unknown): Promise<ErrorReply> => {
  const r = await fetch(`${url}${p}`, {
    method,
    headers: { authorization: 'Bearer t0ken', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: r.status, body: (await r.json()) as ErrorReply['body'] }
}

test('a directory named like a zone file is no zone file: the server starts, reloads and takes changes, warning once per reload with its name', async (t) => {
  const { dir, cleanup } = await tempDir('meridian-dir-yaml-')
  t.after(cleanup)
  await writeFile(path.join(dir, `${ORIGIN}.yaml`), ZONE)
  const directory = path.join(dir, 'archive.yaml')
  await mkdir(directory)
  await writeFile(path.join(directory, 'old.yaml'), 'not read\n')
  // Before: the server refused to start ("cannot read the zone file: it is a directory").
  const { server, url } = await serveInPlace(t, dir, ['--no-watch'])
  const warned = (reason: string) => (l: { msg: string; reason?: unknown }) => l.msg.startsWith('directories named like zone files') && l.reason === reason
  const start = server.logs.filter(warned('start-up'))
  assert.equal(start.length, 1)
  assert.deepEqual(start[0]!.directories, [directory])
  assert.equal((await dig('127.0.0.1', server.port, '+norec', `www.${ORIGIN}`, 'A')).answer[0]?.data, '192.0.2.20')

  const drained = await call(url, 'POST', `/v1/zones/${ORIGIN}/regions/eu/drain`)
  assert.equal(drained.status, 200, JSON.stringify(drained.body))
  const from = server.logs.length
  const reload = await call(url, 'POST', '/v1/reload')
  assert.equal(reload.status, 200, JSON.stringify(reload.body))
  assert.equal(server.logs.slice(from).filter(warned('admin API')).length, 1, 'one warning for the reload')
  assert.equal(server.logs.filter((l) => l.msg.startsWith('directories named like zone files')).length, 2, 'none for the change or a query')
  assert.equal((await call(url, 'POST', `/v1/zones/${ORIGIN}/regions/eu/undrain`)).status, 200)
})

test('a zone file that is a dangling or looping link: each change is a 400 naming it, as a YAML error in another file is, and so is POST /v1/reload; its own file so replaced, a 409; nothing changed', async (t) => {
  const { dir, cleanup } = await tempDir('meridian-link-yaml-')
  t.after(cleanup)
  const file = path.join(dir, `${ORIGIN}.yaml`)
  await writeFile(file, ZONE)
  await writeFile(path.join(dir, 'other.test.yaml'), smallZone('other.test'))
  const { server, url } = await serveInPlace(t, dir, ['--no-watch'])
  const drain = `/v1/zones/${ORIGIN}/regions/eu/drain`
  const unchanged = async () => {
    assert.equal(await readFile(file, 'utf8'), ZONE, 'the zone file is as it was')
    assert.equal((await dig('127.0.0.1', server.port, '+norec', `www.${ORIGIN}`, 'A')).answer[0]?.data, '192.0.2.20', 'the last good set keeps serving')
    const ready = await fetch(`${url}/readyz`)
    assert.equal(ready.status, 200, 'ready: the last good set serves')
  }

  // The model: another zone file with a YAML error, written by hand.
  const other = path.join(dir, 'other.test.yaml')
  await writeFile(other, 'origin: other.test\n  soa: [\n')
  const yaml = await call(url, 'POST', drain)
  assert.equal(yaml.status, 400, JSON.stringify(yaml.body))
  assert.equal(yaml.body.details?.[0]?.file, other)
  await writeFile(other, smallZone('other.test'))

  const target = path.join(dir, 'checkout', 'b.test.yaml')
  for (const [name, to, why] of [
    ['dangling.test.yaml', target, `it is a symbolic link to ${target}, which does not exist`],
    ['loop.test.yaml', 'loop.test.yaml', `it is a symbolic link to ${path.join(dir, 'loop.test.yaml')}, which loops`],
  ] as const) {
    const link = path.join(dir, name)
    await symlink(to, link)
    const said = `${link}: cannot read the zone file: ${why}`
    for (const [method, p] of [
      ['POST', drain],
      ['PATCH', `/v1/zones/${ORIGIN}/services/www`],
      ['POST', '/v1/reload'],
    ] as const) {
      const r = await call(url, method, p, method === 'PATCH' ? { answers: 2 } : undefined)
      // Before: a 500, as for a disk that fails.
      assert.equal(r.status, 400, `${method} ${p}: ${JSON.stringify(r.body)}`)
      assert.equal(r.body.error, 'E_ZONE_IO')
      assert.equal(r.body.message, said)
      assert.deepEqual(r.body.details, [{ path: '', message: `cannot read the zone file: ${why}`, file: link, line: 0, col: 0 }])
      await unchanged()
    }
    // Creating a zone rebuilds the set from every file too: refused the same way, nothing written.
    const created = await call(url, 'POST', '/v1/zones', { origin: 'new.test', soa: { mname: 'ns1.example.net.', rname: 'hostmaster.example.net.' }, ns: ['ns1.example.net.'] })
    assert.equal(created.status, 400, JSON.stringify(created.body))
    assert.equal(created.body.message, said)
    await assert.rejects(readFile(path.join(dir, 'new.test.yaml')), { code: 'ENOENT' })
    await unlink(link)
  }
  assert.equal((await call(url, 'POST', drain)).status, 200, 'the link gone, changes are taken again')
  assert.equal((await call(url, 'POST', `/v1/zones/${ORIGIN}/regions/eu/undrain`)).status, 200)
  assert.equal(await readFile(file, 'utf8'), ZONE)

  // The zone's own file replaced by a link that loops (not reloaded: --no-watch): a 409 naming it, as its own file broken by hand is.
  await rename(file, path.join(dir, 'saved'))
  await symlink(`${ORIGIN}.yaml`, file)
  for (const [method, p] of [
    ['POST', drain],
    ['DELETE', `/v1/zones/${ORIGIN}`],
  ] as const) {
    const r = await call(url, method, p)
    assert.equal(r.status, 409, `${method} ${p}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error, 'E_API_CONFLICT')
    assert.ok(r.body.message?.startsWith(`${file}: cannot read the zone file: it is a symbolic link to ${file}, which loops: `), r.body.message)
  }
  await unlink(file)
  await rename(path.join(dir, 'saved'), file)
  await unchanged()
  assert.equal(server.logs.filter((l) => l.msg === 'admin request failed').length, 0, 'no request was a fault')
})
