/**
 * parseUniqueKeys (store/zone-editor.ts) stands for YAML.parseDocument with the parser's own
 * uniqueKeys check, which is quadratic in a mapping's keys: the same document, the same errors, for
 * files with keys twice (block and flow mappings, nested, keys that YAML reads as one value or not).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import YAML from 'yaml'
import { parseUniqueKeys, parseZoneText } from '../../src/store/zone-editor.js'

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
