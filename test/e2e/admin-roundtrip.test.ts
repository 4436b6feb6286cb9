/**
 * A drain and an undrain through the real admin API leave each zone file byte for byte as it was
 * (operators keep zone files in git: no diff), for the shapes operators write: a one-line flow
 * region with a trailing comment (whose comment the undrain used to push right), comments in a
 * column, CRLF line ends, no final newline, runs of blank lines, a comment on a region's key line,
 * an indentation of 4. Real files, a real server over HTTP, the answers read with dig.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { tempDir } from '../helpers/server.js'
import { serveInPlace, zoneWithRegions } from '../helpers/zones.js'

/** A zone `origin` whose regions eu-west (192.0.2.1) and us-east (192.0.2.2) are written as `regions` says; www fails over from eu-west to us-east. */
const zone = (origin: string, regions: string) => zoneWithRegions(origin, regions, '  www: { policy: failover, regions: [eu-west, us-east] }\n')

const FILES: Record<string, string> = {
  'flow.test': zone('flow.test', '  eu-west: { location: { country: GB }, vips: [192.0.2.1] }   # London pool\n  us-east: { location: { country: US }, vips: [192.0.2.2] }  # Virginia\n'),
  'column.test': zone('column.test', '  eu-west: { location: { country: GB }, vips: [192.0.2.1] }              # London\n  us-east: { location: { country: US }, vips: [192.0.2.2], weight: 100 } # Virginia\n'),
  'crlf.test': zone('crlf.test', '  eu-west: { location: { country: GB }, vips: [192.0.2.1] }   # London pool\n  us-east: { location: { country: US }, vips: [192.0.2.2] }\n').replaceAll('\n', '\r\n'),
  'nonewline.test': zone('nonewline.test', '  us-east: { location: { country: US }, vips: [192.0.2.2] }\n  eu-west:\n    location: { country: GB }   # London\n    vips: [192.0.2.1]\n').replace(/\n$/, ''),
  'blanks.test': zone('blanks.test', '  eu-west:   # London\n    location: { country: GB }\n    vips: [192.0.2.1]\n\n\n  us-east:\n    location: { country: US }\n    vips: [192.0.2.2]\n\n'),
  'indent4.test': zone('indent4.test', '    eu-west:\n        location: { country: GB }   # London\n        vips:\n            - 192.0.2.1\n    us-east:\n        location: { country: US }\n        vips: [192.0.2.2]\n')
    .replace('  ns1: {', '    ns1: {')
    .replace('  www: {', '    www: {'),
}

test('a drain and an undrain through the admin API leave each zone file byte for byte as it was', async (t) => {
  const { dir, cleanup } = await tempDir('meridian-roundtrip-')
  t.after(cleanup)
  for (const [origin, text] of Object.entries(FILES)) await writeFile(path.join(dir, `${origin}.yaml`), text)
  const { server, url } = await serveInPlace(t, dir)
  const post = (origin: string, what: 'drain' | 'undrain') => fetch(`${url}/v1/zones/${origin}/regions/eu-west/${what}`, { method: 'POST', headers: { authorization: 'Bearer t0ken' } })
  const www = async (origin: string) => (await dig('127.0.0.1', server.port, '+norec', `www.${origin}`, 'A')).answer.map((a) => a.data)

  for (const [origin, text] of Object.entries(FILES)) {
    const file = path.join(dir, `${origin}.yaml`)
    assert.deepEqual(await www(origin), ['192.0.2.1'], origin)
    const drain = await post(origin, 'drain')
    assert.equal(drain.status, 200, `${origin}: ${await drain.text()}`)
    assert.notEqual(await readFile(file, 'utf8'), text, `${origin}: the drain is written`)
    assert.deepEqual(await www(origin), ['192.0.2.2'], `${origin}: eu-west drained, us-east answers`)
    const undrain = await post(origin, 'undrain')
    assert.equal(undrain.status, 200, `${origin}: ${await undrain.text()}`)
    assert.equal(await readFile(file, 'utf8'), text, `${origin}: the file as it was`)
    assert.deepEqual(await www(origin), ['192.0.2.1'], `${origin}: eu-west back`)
  }
})
