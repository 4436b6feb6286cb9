/**
 * A key is a name as written (config/load.ts takes `1:` as the region "1", `1e3:` as the owner
 * "1e3"), and the admin API's edits find it the same way: YAML alone reads such plain keys as
 * numbers, so an edit of region "1" found nothing in the file the server served it from.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { applyEdit, type EditZone } from '../../src/admin/edits.js'
import { buildZone } from '../../src/config/load.js'
import { editText } from '../../src/store/zone-editor.js'

const TEXT = `origin: k.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  1e3: { A: 192.0.2.7 } # an owner named 1e3
regions:
  1: { location: { lat: 1, lon: 2 }, vips: [192.0.2.10] } # region one
  eu: { location: { lat: 3, lon: 4 }, vips: [192.0.2.20] }
services:
  www: { regions: ["1", eu] }
`
const zone: EditZone = { origin: 'k.test', regions: ['1', 'eu'], services: ['www'] }

test('the file builds with region "1" and owner "1e3" as written', () => {
  const built = buildZone({ file: 'k.test.yaml', text: TEXT }, () => 1)
  assert.deepEqual(built.issues, [])
  assert.deepEqual([...built.zone!.regions.keys()], ['1', 'eu'])
  assert.ok(built.zone!.nodes.has('1e3.k.test'))
})

test('a drain of region "1" changes that region, its comment kept, and the file still builds with the same names (such keys come back quoted: YAML would read them otherwise)', () => {
  const out = editText(TEXT, (doc) => applyEdit(doc, { op: 'drain', region: '1' }, zone))
  assert.match(out, /^ {2}"1": \{ location: \{ lat: 1, lon: 2 \}, vips: \[192\.0\.2\.10\], drained: true \} # region one$/m)
  assert.match(out, /^ {2}"1e3": \{ A: 192\.0\.2\.7 \} # an owner named 1e3$/m)
  assert.equal(out.match(/^ {2}"?1"?:/gm)?.length, 1, 'one key for region 1')
  const built = buildZone({ file: 'k.test.yaml', text: out }, () => 1)
  assert.deepEqual(built.issues, [])
  assert.equal(built.zone!.regions.get('1')!.drained, true)
  assert.ok(built.zone!.nodes.has('1e3.k.test'))
})

test('a patch of region "1" finds it (no second key beside it)', () => {
  const patched = editText(TEXT, (doc) => applyEdit(doc, { op: 'patch', section: 'regions', p: '1', body: { weight: 7 } }, zone))
  const built = buildZone({ file: 'k.test.yaml', text: patched }, () => 1)
  assert.deepEqual(built.issues, [])
  assert.equal(built.zone!.regions.get('1')!.weight, 7)
  assert.equal(built.zone!.regions.size, 2)
})
