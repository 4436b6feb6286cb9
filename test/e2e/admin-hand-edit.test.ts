/**
 * Admin API changes of a zone file that is also edited by hand in between (no file watcher, so
 * only the next change reads the file): the build thread keeps the parse of the text each change
 * wrote, and must never start the next change from it once the file says something else. Over real
 * HTTP to a real server, the answers read with dig, the hand edits the same size as the text they
 * replace, the file's modification time put back.
 */
import assert from 'node:assert/strict'
import { readFile, stat, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { tempDir } from '../helpers/server.js'
import { serveInPlace } from '../helpers/zones.js'

const ORIGIN = 'hand.test'
const ZONE = `origin: ${ORIGIN}
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 127.0.0.1 }
  www: { A: 192.0.2.10 }    # changed by hand below
regions:
  eu: { location: { lat: 53.35, lon: -6.26 }, vips: [192.0.2.20] }
  us: { location: { lat: 38.95, lon: -77.45 }, vips: [192.0.2.30] }
services:
  svc: { policy: geo, regions: [eu, us], answers: 1 }
`

test('a hand edit between two admin changes is what the second one writes and serves; one that breaks the file is its 409, the file left as it is', async (t) => {
  const { dir, cleanup } = await tempDir('meridian-hand-edit-')
  t.after(cleanup)
  const file = path.join(dir, `${ORIGIN}.yaml`)
  await writeFile(file, ZONE)
  const { server, url } = await serveInPlace(t, dir, ['--no-watch'])
  const post = (p: string) => fetch(`${url}/v1/zones/${ORIGIN}/regions/${p}`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
  const www = async () => (await dig('127.0.0.1', server.port, '+norec', `www.${ORIGIN}`, 'A')).answer.map((a) => a.data)
  /** Replaces `from` by `to` (as long) in the file, and puts its modification time back. */
  const byHand = async (from: string, to: string) => {
    assert.equal(from.length, to.length)
    const { mtime } = await stat(file)
    const text = await readFile(file, 'utf8')
    assert.ok(text.includes(from), from)
    await writeFile(file, text.replace(from, to))
    await utimes(file, mtime, mtime)
    return text.replace(from, to)
  }

  assert.equal((await post('eu/drain')).status, 200)
  assert.match(await readFile(file, 'utf8'), /drained: true/)
  await byHand('192.0.2.10', '192.0.2.11')
  assert.deepEqual(await www(), ['192.0.2.10'], 'not watched: the hand edit is not served yet')
  const undrain = await post('eu/undrain')
  assert.equal(undrain.status, 200, await undrain.text())
  const written = await readFile(file, 'utf8')
  assert.match(written, /www: \{ A: 192\.0\.2\.11 \} {4}# changed by hand below/, 'the hand edit written back')
  assert.doesNotMatch(written, /drained/)
  assert.deepEqual(await www(), ['192.0.2.11'], 'and served from the 200 on')

  // Broken by hand (a service naming a region the zone lacks): the next change is refused with a
  // 409 naming the file's line, and the file stays as the hand left it.
  const broken = await byHand('regions: [eu, us]', 'regions: [eu, xx]')
  const line = broken.split('\n').findIndex((l) => l.includes('[eu, xx]')) + 1
  const drain = await post('eu/drain')
  const body = (await drain.json()) as { error: { code: string; message: string } } | { error: string; message: string }
  assert.equal(drain.status, 409, JSON.stringify(body))
  assert.match(JSON.stringify(body), new RegExp(`${ORIGIN.replace('.', '\\.')}\\.yaml:${line}:\\d+: services\\.svc\\.regions\\.1: unknown region \\\\"xx\\\\"`))
  assert.equal(await readFile(file, 'utf8'), broken)
  assert.deepEqual(await www(), ['192.0.2.11'])
})
