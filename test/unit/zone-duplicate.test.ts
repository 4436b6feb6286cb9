/**
 * Two files of one origin: the second (in the set's order) is refused as a duplicate at once,
 * beside its other errors and whatever the first one's state. It was said only once the file had
 * no other error, and not at all while the first had errors: an operator fixed a file that could
 * never be served, and learnt it last.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setIssues } from '../helpers/zones.js'

/** The issues of a set of files (`[file, text]`), each `code file:line:col: ...`, or [] when it builds. */
const issues = (...files: [string, string][]): string[] => setIssues(files, { withCode: true })

/** a.test; `ns1` its name server's address. */
const zone = (ns1 = '192.0.2.53') => `origin: a.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1]\nrecords:\n  ns1: { A: ${ns1} }\n`
const DUP = 'E_ZONE_DUPLICATE b.yaml:1:9: origin: zone a.test is already defined in a.yaml'
const BAD_ADDRESS = (file: string) => `E_ZONE_SCHEMA ${file}:5:13: records.ns1.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.530"`

test('the second file, with errors of its own: the duplicate is said with them, in the order of its lines', () => {
  assert.deepEqual(issues(['a.yaml', zone()], ['b.yaml', zone('192.0.2.530')]), [DUP, BAD_ADDRESS('b.yaml')])
})

test('the first file with errors: the second, without, is a duplicate all the same', () => {
  assert.deepEqual(issues(['a.yaml', zone('192.0.2.530')], ['b.yaml', zone()]), [BAD_ADDRESS('a.yaml'), DUP])
})

test('both with errors: each file\'s own, and the duplicate', () => {
  assert.deepEqual(issues(['a.yaml', zone('192.0.2.530')], ['b.yaml', zone('192.0.2.530')]), [BAD_ADDRESS('a.yaml'), DUP, BAD_ADDRESS('b.yaml')])
})

test('said at the origin\'s value wherever it is written (a file in flow style)', () => {
  const flow = '{ origin: a.test, soa: { mname: ns1, rname: hostmaster }, ns: [ns1], records: { ns1: { A: 192.0.2.53 } } }\n'
  assert.deepEqual(issues(['a.yaml', zone()], ['b.yaml', flow]), ['E_ZONE_DUPLICATE b.yaml:1:11: origin: zone a.test is already defined in a.yaml'])
})

test('a file that is not valid YAML gets only its YAML errors: which origin it holds is not known', () => {
  const broken = `${zone()}\twww: { A: 192.0.2.1 }\n`
  const found = issues(['a.yaml', zone()], ['b.yaml', broken])
  assert.ok(found.length > 0 && found.every((i) => i.startsWith('E_ZONE_YAML b.yaml:')), found.join('\n'))
})
