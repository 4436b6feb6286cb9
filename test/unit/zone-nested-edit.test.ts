/**
 * An admin edit of a parent zone refused for a problem of the change: the store then asks whether
 * the file had errors on disk before it (a 409 naming them, instead of the change's 400). That file
 * is judged within the set, as a reload judges it: a target only a nested zone of the set holds is
 * no error of the parent's file (it was judged alone, so such a target turned every refused edit
 * into a 409 saying the file was broken on disk).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { ConfigError, formatIssue, MeridianError } from '../../src/errors.js'
import { createLogger } from '../../src/log.js'
import { FileConfigStore } from '../../src/store/file-store.js'
import { SerialBook } from '../../src/store/serials.js'
import { setAt } from '../../src/store/zone-editor.js'

/** a.test, whose MX exchange mail.sub.a.test only sub.a.test holds; region r with a check. */
const PARENT = `origin: a.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  "@": { MX: { preference: 10, exchange: mail.sub } }
regions:
  r: { location: { lat: 50, lon: 0 }, vips: [192.0.2.1], check: { interval: 2, timeout: 1 } }
services:
  www: { regions: [r] }
`
const CHILD = `origin: sub.a.test
soa: { mname: ns1.a.test., rname: hostmaster.a.test. }
ns: [ns1.a.test.]
records:
  mail: { A: 192.0.2.25 }
`

async function setup(t: TestContext, parent = PARENT) {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-nested-edit-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'a.test.yaml')
  await writeFile(file, parent)
  await writeFile(path.join(dir, 'sub.a.test.yaml'), CHILD)
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  const store = new FileConfigStore(dir, createLogger('error', sink), new SerialBook(path.join(dir, '.meridian', 'serials.json')))
  t.after(() => store.close())
  return { dir, file, store }
}

test('a refused edit of a parent whose MX exchange lies in a nested zone is the change\'s 400, not a 409 saying the file is broken on disk', async (t) => {
  const { file, store } = await setup(t)
  await store.reload('start-up')
  await assert.rejects(store.edit('a.test', (doc) => setAt(doc, ['regions', 'r', 'check', 'timeout'], 9)), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `${(err as Error).message}`)
    assert.deepEqual(err.issues.map(formatIssue), [`${file}:8:89: regions.r.check.timeout: timeout (9 s) must be below the interval (2 s)`])
    return true
  })
  assert.equal(await readFile(file, 'utf8'), PARENT, 'nothing written')
})

test('a parent broken on disk since its last load is still a 409 naming its problems as the set judges them, a record under the nested zone among them', async (t) => {
  const { dir, file, store } = await setup(t)
  await store.reload('start-up')
  const broken = PARENT.replace('  ns1: { A: 192.0.2.53 }\n', '  ns1: { A: 192.0.2.53 }\n  www.sub: { A: 192.0.2.1 }\n')
  await writeFile(file, broken)
  await assert.rejects(store.edit('a.test', (doc) => setAt(doc, ['regions', 'r', 'weight'], 3)), (err: unknown) => {
    assert.ok(err instanceof MeridianError)
    assert.deepEqual([err.code, err.status], ['E_API_CONFLICT', 409])
    assert.equal(err.message, `${file} has errors as it is on disk, before this change (${file}:6:3: records.www.sub: www.sub.a.test lies in zone sub.a.test (${path.join(dir, 'sub.a.test.yaml')}), which answers for the name in this set of zones: it would never be answered from this file; move it there); fix the file, then POST /v1/reload`)
    return true
  })
  assert.equal(await readFile(file, 'utf8'), broken, 'nothing written')
})
