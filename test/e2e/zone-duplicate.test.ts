/**
 * A second file of a served origin that has errors of its own: `meridian check`, the watcher's
 * reload and POST /v1/reload say it is a duplicate at once, beside those errors (it was said only
 * once they were fixed, a fix in vain); and POST /v1/zones of an origin that a file with errors
 * declares is the conflict it is (it was that file's errors, as if the new zone had caused them).
 */
import assert from 'node:assert/strict'
import { readdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { runCli, tempDir } from '../helpers/server.js'
import { serveInPlace, smallZone } from '../helpers/zones.js'

const TOKEN = { authorization: 'Bearer t0ken' }

/** A file written beside and renamed into place, as deployments do. */
async function put(dir: string, name: string, text: string): Promise<void> {
  await writeFile(path.join(dir, `.${name}.tmp`), text)
  await rename(path.join(dir, `.${name}.tmp`), path.join(dir, name))
}

/** smallZone with its www at an address the schema refuses (line 6, column 13). */
const withBadAddress = (origin: string) => smallZone(origin, '192.0.2.300')

test('a second file of a served origin, with an error of its own: check, the watcher and POST /v1/reload give the duplicate beside it; the first file serves', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  const first = path.join(dir, 'a.test.yaml')
  const second = path.join(dir, 'b.yaml')
  await writeFile(first, smallZone('a.test'))
  const { server, url } = await serveInPlace(t, dir)
  const expected = [
    `${second}:1:9: origin: zone a.test is already defined in ${first}`,
    `${second}:6:13: records.www.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.300"`,
  ]

  const from = server.logs.length
  await put(dir, 'b.yaml', withBadAddress('a.test'))
  const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving', 20_000, from)
  // Before: only the address; the duplicate came once it was fixed.
  assert.deepEqual(rejected.errors, expected)
  assert.equal(rejected.code, 'E_ZONE_DUPLICATE', "the log's code is the first error's")

  const reload = await fetch(`${url}/v1/reload`, { method: 'POST', headers: TOKEN })
  assert.equal(reload.status, 400)
  const body = (await reload.json()) as { error: string; details: { file: string; line: number; col: number; path: string; message: string }[] }
  assert.equal(body.error, 'E_ZONE_DUPLICATE')
  assert.deepEqual(body.details.map((d) => `${d.file}:${d.line}:${d.col}: ${d.path}: ${d.message}`), expected)

  const checked = await runCli(['check', '--zones', dir])
  assert.equal(checked.code, 1)
  assert.equal(checked.stderr, [...expected, '2 error(s); nothing would be served from these files', ''].join('\n'))

  const www = await dig('127.0.0.1', server.port, 'www.a.test', 'A', '+norec')
  assert.deepEqual(www.answer.map((r) => r.data), ['192.0.2.10'])
})

test('POST /v1/zones of an origin a file with errors declares: 409, naming that file; nothing written', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir()
  t.after(cleanup)
  await writeFile(path.join(dir, 'a.test.yaml'), smallZone('a.test'))
  const { server, url } = await serveInPlace(t, dir)
  const from = server.logs.length
  await put(dir, 'z.yaml', withBadAddress('c.test'))
  await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving', 20_000, from)

  const body = { origin: 'c.test', soa: { mname: 'ns1', rname: 'hostmaster' }, ns: ['ns1'], records: { ns1: { A: '192.0.2.53' } } }
  const res = await fetch(`${url}/v1/zones`, { method: 'POST', headers: { ...TOKEN, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = (await res.json()) as { error: string; message: string }
  // Before: 400 with z.yaml's address error, as if the new zone were what is wrong.
  assert.deepEqual([res.status, answer.error], [409, 'E_API_CONFLICT'])
  assert.equal(answer.message, `zone c.test is declared already by ${path.join(dir, 'z.yaml')}, which is in ${dir} though not served yet: it has 1 error of its own (meridian check lists them): fix it and POST /v1/reload to serve it, or move it away, then retry. Nothing was changed`)
  assert.deepEqual((await readdir(dir)).filter((n) => !n.startsWith('.')).sort(), ['a.test.yaml', 'z.yaml'])
})
