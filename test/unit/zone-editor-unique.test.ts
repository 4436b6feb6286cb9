/**
 * parseUniqueKeys (store/zone-editor.ts) stands for YAML.parseDocument with the parser's own
 * uniqueKeys check, which is quadratic in a mapping's keys: the same document, the same errors, for
 * files with keys twice (block and flow mappings, nested, keys that YAML reads as one value or not).
 * And an edit's check of its rendering parses the new text as the build does and hands that parse
 * and its toJS to the build (build-worker.ts), which then does not parse the file again nor take its
 * toJS, also when the file is written in the stringifier's own style. An edit given such a parse
 * (the build thread keeps the last one) starts from it only when it is the parse of its very text.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import YAML from 'yaml'
import { applyEdit, type EditZone } from '../../src/admin/edits.js'
import { buildZoneSet, parseForBuild } from '../../src/config/load.js'
import { SerialBook } from '../../src/store/serials.js'
import { editText, editTextParsed, parseUniqueKeys, parseZoneText, renderNewZone } from '../../src/store/zone-editor.js'

const TEXTS = [
  'origin: a.test\nregions:\n  eu: { vips: [192.0.2.1] }\n  us: { vips: [192.0.2.2] }\n',
  'origin: a.test\nregions:\n  eu: { vips: [192.0.2.1] }\n  eu: { vips: [192.0.2.2] }\n',
  'a: 1\nb: { x: 1, x: 2 }\n',
  'a:\n  b:\n    c: 1\n    d: 2\n    c: 3\n',
  '1: one\n"1": string one\n',
  '1: one\n0x1: hex one\n',
  '.nan: a\n.nan: b\n',
  '~: a\nnull: b\n',
  'a: 1\na: 2\n: [unclosed\n',
  '? [a]\n: 1\n? [a]\n: 2\n',
  'x: &k k\n*k : 2\nk: 3\n',
  'a: [1, 2\nb: 1\nb: 2\n',
]

const same = (text: string): void => {
  const want = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: false })
  const got = parseUniqueKeys(text, { prettyErrors: false })
  assert.deepEqual(got.errors.map((e) => [e.code, e.message, e.pos]), want.errors.map((e) => [e.code, e.message, e.pos]), text)
  assert.deepEqual(got.warnings.map((e) => [e.code, e.pos]), want.warnings.map((e) => [e.code, e.pos]), text)
  assert.deepEqual(got.contents?.toJSON(), want.contents?.toJSON(), text)
  if (want.errors.length === 0) assert.equal(got.toString(), want.toString(), text)
}

test('parseUniqueKeys gives the document and errors of the parser with uniqueKeys', () => {
  for (const text of TEXTS) same(text)
})

test('a zone file with a key twice is still refused by parseZoneText, at the second key', () => {
  const doc = parseZoneText('origin: a.test\nregions:\n  eu: {}\n  eu: {}\n')
  assert.equal(doc.errors.length, 1)
  assert.equal(doc.errors[0]!.code, 'DUPLICATE_KEY')
  assert.deepEqual(doc.errors[0]!.pos, [35, 36])
})

const ZONE = `origin: p.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 } # the name server
regions:
  eu: { location: { lat: 3, lon: 4 }, vips: [192.0.2.20] }
  us: { location: { lat: 5, lon: 6 }, vips: [192.0.2.30] }
services:
  www: { policy: geo-latency, regions: [eu, us], ttl: 30 }
`

test('an edit hands on its check parse, and the set built from it is the one built from the text', () => {
  const file = '/zones/p.test.yaml'
  const zone: EditZone = { origin: 'p.test', regions: ['eu', 'us'], services: ['www'] }
  const edited = editTextParsed(ZONE, (doc) => applyEdit(doc, { op: 'drain', region: 'eu' }, zone))
  assert.match(edited.text, /eu: \{ location: \{ lat: 3, lon: 4 \}, vips: \[192\.0\.2\.20\], drained: true \}/)
  assert.ok(edited.parsed, 'the rendering was checked with the build parse, and handed on')
  assert.equal(edited.parsed.text, edited.text)
  const serials = () => SerialBook.of([], () => 1_700_000_000).plan().serialOf
  const fresh = buildZoneSet([{ file, text: edited.text }], serials(), 2)
  const handed = buildZoneSet([{ file, text: edited.text }], serials(), 2, {}, new Map([[file, edited.parsed]]))
  assert.deepEqual(handed, fresh)
  assert.equal(handed.zones.get('p.test')!.definition.regions.eu!.drained, true)
})

test('a parse handed on for another text is not taken: the source is parsed', () => {
  const file = '/zones/p.test.yaml'
  const serials = () => SerialBook.of([], () => 1_700_000_000).plan().serialOf
  const stale = parseForBuild(ZONE.replace('ttl: 30', 'ttl: 31'))
  const set = buildZoneSet([{ file, text: ZONE }], serials(), 2, {}, new Map([[file, stale]]))
  assert.equal(set.zones.get('p.test')!.definition.services.www!.ttl, 30)
})

test('an edit starts from a parse handed to it only when that parse is of its very text', () => {
  const zone: EditZone = { origin: 'p.test', regions: ['eu', 'us'], services: ['www'] }
  const drain = (doc: Parameters<typeof applyEdit>[0]) => applyEdit(doc, { op: 'drain', region: 'eu' }, zone)
  const undrain = (doc: Parameters<typeof applyEdit>[0]) => applyEdit(doc, { op: 'undrain', region: 'eu' }, zone)
  const drained = editTextParsed(ZONE, drain)
  assert.ok(drained.parsed)
  // Of another text (one character changed): parsed anew, the change made to what that text says.
  const byHand = drained.text.replace('ttl: 30', 'ttl: 31')
  const other = editTextParsed(byHand, undrain, drained.parsed)
  assert.equal(other.text, editText(byHand, undrain))
  assert.match(other.text, /ttl: 31/)
  // Of this text: taken, and the same text as a parse gives.
  const taken = editTextParsed(drained.text, undrain, editTextParsed(ZONE, drain).parsed)
  assert.equal(taken.text, editText(drained.text, undrain))
})

test("a file in the stringifier's own style (as the API writes a new zone) hands its edit's parse and toJS on too, and the set built from them is the one built from the text", () => {
  const file = '/zones/n.test.yaml'
  const text = renderNewZone({
    origin: 'n.test',
    soa: { mname: 'ns1', rname: 'hostmaster' },
    ns: ['ns1'],
    records: { ns1: { A: '192.0.2.53' } },
    regions: { eu: { location: { lat: 3, lon: 4 }, vips: ['192.0.2.20'] }, us: { location: { lat: 5, lon: 6 }, vips: ['192.0.2.30'] } },
    services: { www: { policy: 'geo', regions: ['eu', 'us'] } },
  })
  const zone: EditZone = { origin: 'n.test', regions: ['eu', 'us'], services: ['www'] }
  const edited = editTextParsed(text, (doc) => applyEdit(doc, { op: 'drain', region: 'eu' }, zone))
  assert.equal(edited.text, editText(text, (doc) => applyEdit(doc, { op: 'drain', region: 'eu' }, zone)))
  assert.ok(edited.parsed, 'handed on')
  assert.equal(edited.parsed.text, edited.text)
  assert.ok('js' in edited.parsed)
  const serials = () => SerialBook.of([], () => 1_700_000_000).plan().serialOf
  const handed = buildZoneSet([{ file, text: edited.text }], serials(), 2, {}, new Map([[file, edited.parsed]]))
  assert.deepEqual(handed, buildZoneSet([{ file, text: edited.text }], serials(), 2))
  assert.equal(handed.zones.get('n.test')!.definition.regions.eu!.drained, true)
})
