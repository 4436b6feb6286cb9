/**
 * A zone file with errors of the schema and errors beyond it: `meridian check` lists them all in
 * one go, each at its line, and a running server's reload log and `POST /v1/reload` list the same.
 */
import assert from 'node:assert/strict'
import { rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { BROKEN_ZONE, BROKEN_ZONE_PROBLEMS, checkZoneText, serveInPlace, smallZone } from '../helpers/zones.js'

/** The problems of BROKEN_ZONE in `file`, as `check` and the log print them. */
const expected = (file: string) => BROKEN_ZONE_PROBLEMS.map(([, p]) => `${file}:${p}`)

test('meridian check lists a file\'s schema errors and the errors beyond the schema together, each at its line; the reload log and POST /v1/reload list the same', async (t) => {
  const c = await checkZoneText(t, BROKEN_ZONE)
  const { dir, file } = c
  assert.equal(c.code, 1, c.stderr)
  assert.equal(c.stderr, [...expected(file), '5 error(s); nothing would be served from these files', ''].join('\n'))

  // A server on the good file; the broken one renamed over it.
  await writeFile(file, smallZone('a.test'))
  const { server, url } = await serveInPlace(t, dir)
  await writeFile(path.join(dir, '.a.test.yaml.new'), BROKEN_ZONE)
  await rename(path.join(dir, '.a.test.yaml.new'), file)
  const rejected = await server.waitForLog((l) => l.msg === 'zone reload rejected; the last good set keeps serving')
  assert.deepEqual(rejected.errors, expected(file))
  assert.equal(rejected.code, 'E_ZONE_SEMANTIC', "the log's code is the first error's")

  const r = await fetch(`${url}/v1/reload`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
  assert.equal(r.status, 400)
  const body = (await r.json()) as { error: string; details: { file: string; line: number; col: number; path: string; message: string }[] }
  assert.equal(body.error, 'E_ZONE_SEMANTIC')
  assert.deepEqual(body.details.map((d) => `${d.file}:${d.line}:${d.col}: ${d.path}: ${d.message}`), expected(file))
})
