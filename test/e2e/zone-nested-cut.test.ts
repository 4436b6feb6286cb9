/**
 * A zone and a zone nested in it served by one real Meridian (example.test and sub.example.test),
 * queried with the real dig: a query goes to the deepest zone served, so the parent file's data at
 * or below the nested origin is never answered. A CNAME in the parent into the nested zone is
 * answered as a CNAME to another zone (the resolver follows it); the parent file's records there are
 * an error of the set, wherever the set is read: `meridian check`, the watcher's reload (log),
 * POST /v1/reload and POST /v1/zones adding the nested zone after the parent, each naming both files,
 * and the last good set serving meanwhile.
 */
import assert from 'node:assert/strict'
import { readdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { runCli, tempDir } from '../helpers/server.js'
import { serveInPlace } from '../helpers/zones.js'

const PARENT = 'example.test.yaml'
const CHILD = 'sub.example.test.yaml'
/** example.test; `records` appended to its own. */
const parent = (records = '') => `origin: example.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  alias: { CNAME: www.sub }
${records}`
/** sub.example.test, as a zone file and as the body of POST /v1/zones. */
const child = { origin: 'sub.example.test', soa: { mname: 'ns1.example.test.', rname: 'hostmaster.example.test.' }, ns: ['ns1.example.test.'], records: { www: { A: '192.0.2.99' } } }
const childYaml = `origin: sub.example.test
soa: { mname: ns1.example.test., rname: hostmaster.example.test. }
ns: [ns1.example.test.]
records:
  www: { A: 192.0.2.99 }
`
/** The parent's copy of www.sub (line 7 of its file), which the nested zone makes dead. */
const COPY = '  www.sub: { A: 192.0.2.1 }\n'

const TOKEN = { authorization: 'Bearer t0ken' }
async function post(url: string, p: string, body?: unknown): Promise<{ status: number; body: { error: string; message: string; details: { path: string; message: string; file?: string; line?: number }[] } }> {
  const res = await fetch(`${url}${p}`, { method: 'POST', headers: { ...TOKEN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  return { status: res.status, body: (await res.json()) as never }
}

/** A file written beside and renamed into place, as deployments do. */
async function put(dir: string, name: string, text: string): Promise<void> {
  await writeFile(path.join(dir, `.${name}.tmp`), text)
  await rename(path.join(dir, `.${name}.tmp`), path.join(dir, name))
}

test('a CNAME in the parent to a name of the nested zone is answered as the CNAME alone (the nested zone answers the name), not NXDOMAIN from the parent\'s records', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, PARENT), parent())
  await writeFile(path.join(dir, CHILD), childYaml)
  const { server } = await serveInPlace(t, dir)
  const alias = await dig('127.0.0.1', server.port, 'alias.example.test', 'A', '+norec')
  // Before: NXDOMAIN with example.test's SOA, the chase having gone on in the parent's records.
  assert.equal(alias.status, 'NOERROR')
  assert.ok(alias.flags.includes('aa'))
  assert.deepEqual(alias.answer.map((r) => `${r.name} ${r.type} ${r.data}`), ['alias.example.test. CNAME www.sub.example.test.'])
  assert.deepEqual(alias.authority, [])
  const www = await dig('127.0.0.1', server.port, 'www.sub.example.test', 'A', '+norec')
  assert.deepEqual([www.status, ...www.answer.map((r) => r.data)], ['NOERROR', '192.0.2.99'])
})

test('DS at the nested zone\'s apex is answered from the parent side of the cut (RFC 4035 §3.1.4.1): NODATA under example.test\'s SOA, from the cache too and over TCP; other types there are the nested zone\'s', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, PARENT), parent())
  await writeFile(path.join(dir, CHILD), childYaml)
  const { server } = await serveInPlace(t, dir)
  // Twice over UDP (the second from the answer cache), once over TCP.
  for (const extra of ['+norec', '+norec', '+tcp']) {
    const ds = await dig('127.0.0.1', server.port, 'sub.example.test', 'DS', extra)
    assert.equal(ds.status, 'NOERROR', extra)
    assert.ok(ds.flags.includes('aa'), extra)
    assert.deepEqual(ds.answer, [], extra)
    // Before: sub.example.test's SOA (the child answering for the parent's side).
    assert.deepEqual(ds.authority.map((r) => `${r.name} ${r.type}`), ['example.test. SOA'], extra)
  }
  const soa = await dig('127.0.0.1', server.port, 'sub.example.test', 'SOA', '+norec')
  assert.deepEqual(soa.answer.map((r) => `${r.name} ${r.type}`), ['sub.example.test. SOA'])
  const below = await dig('127.0.0.1', server.port, 'www.sub.example.test', 'DS', '+norec')
  assert.deepEqual([below.status, ...below.authority.map((r) => `${r.name} ${r.type}`)], ['NOERROR', 'sub.example.test. SOA'])
})

test('the parent file\'s records under a nested zone added later: check, the watcher, POST /v1/reload and POST /v1/zones refuse the set naming both files; the last good set serves', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, PARENT), parent(COPY))
  const parentFile = path.join(dir, PARENT)
  const childFile = path.join(dir, CHILD)
  const expected = `${parentFile}:7:3: records.www.sub: www.sub.example.test lies in zone sub.example.test (${childFile}), which answers for the name in this set of zones: it would never be answered from this file; move it there`
  // Alone, the parent's www.sub is its own, and answered.
  const { server, url } = await serveInPlace(t, dir)
  const answered = async () => (await dig('127.0.0.1', server.port, 'www.sub.example.test', 'A', '+norec')).answer.map((r) => r.data)
  assert.deepEqual(await answered(), ['192.0.2.1'])

  // POST /v1/zones adding the nested zone: refused, nothing written, the old set serving.
  const created = await post(url, '/v1/zones', child)
  assert.equal(created.status, 400)
  assert.equal(created.body.error, 'E_ZONE_SEMANTIC')
  assert.deepEqual(created.body.details, [{ path: 'records.www.sub', message: expected.replace(/^.*?: records\.www\.sub: /, ''), file: parentFile, line: 7, col: 3 }])
  assert.equal(created.body.message, expected)
  assert.deepEqual((await readdir(dir)).filter((n) => !n.startsWith('.')), [PARENT])
  assert.deepEqual(await answered(), ['192.0.2.1'])

  // The nested zone's file put in place by hand: the watcher's reload is rejected and logged.
  const from = server.logs.length
  await put(dir, CHILD, childYaml)
  const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving', 20_000, from)
  assert.deepEqual(rejected.errors, [expected])
  assert.deepEqual(await answered(), ['192.0.2.1'])
  const reload = await post(url, '/v1/reload')
  assert.equal(reload.status, 400)
  assert.equal(reload.body.message, expected)
  assert.deepEqual(await answered(), ['192.0.2.1'])

  // meridian check says the same, exit 1.
  const checked = await runCli(['check', '--zones', dir])
  assert.equal(checked.code, 1)
  assert.ok(checked.stdout.split('\n').includes(expected) || checked.stderr.split('\n').includes(expected), checked.stdout + checked.stderr)

  // The record moved to the nested zone (here: dropped from the parent, which already has it): served.
  const fixed = server.logs.length
  await put(dir, PARENT, parent())
  await server.waitForLog((l) => l.msg === 'zones loaded', 20_000, fixed)
  assert.deepEqual(await answered(), ['192.0.2.99'])
})

test('POST /v1/zones of a parent whose records lie under a nested zone served already: 400 naming that zone as the one that answers, nothing written', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, CHILD), childYaml)
  const { server, url } = await serveInPlace(t, dir)
  const childFile = path.join(dir, CHILD)
  const body = { origin: 'example.test', soa: { mname: 'ns1', rname: 'hostmaster' }, ns: ['ns1'], records: { ns1: { A: '192.0.2.53' }, 'www.sub': { A: '192.0.2.1' } } }
  const created = await post(url, '/v1/zones', body)
  assert.equal(created.status, 400)
  assert.equal(created.body.error, 'E_ZONE_SEMANTIC')
  const message = `www.sub.example.test lies in zone sub.example.test (${childFile}), which answers for the name in this set of zones: it would never be answered from this file; move it there`
  // The new zone's own problems are said at their key in the body (no file: none is written).
  assert.deepEqual(created.body.details, [{ path: 'records.www.sub', message }])
  assert.equal(created.body.message, `records.www.sub: ${message}`)
  assert.deepEqual((await readdir(dir)).filter((n) => !n.startsWith('.')), [CHILD])
  const www = await dig('127.0.0.1', server.port, 'www.sub.example.test', 'A', '+norec')
  assert.deepEqual(www.answer.map((r) => r.data), ['192.0.2.99'])
})
