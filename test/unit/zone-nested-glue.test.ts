/**
 * An in-zone name server (or MX exchange) whose name lies in a zone nested in its own that the set
 * also serves is judged in that nested zone, which answers for the name (RFC 1034 §4.2.1: data
 * below a cut is not the parent zone's); the parent file's records there are never served.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildZoneSet } from '../../src/config/load.js'
import { respond } from '../../src/dns/responder.js'
import { parseQuery, type Query } from '../../src/dns/wire.js'
import { RRTYPE } from '../../src/model/types.js'
import { setIssues } from '../helpers/zones.js'

const serial = () => 1

/** The issues of a.yaml (`a.test`) and sub.yaml (`sub.a.test`), or [] when the set builds. */
const issues = (a: string, sub: string): string[] => setIssues([['a.yaml', a], ['sub.yaml', sub]])

/** a.test, whose second name server is ns.sub.a.test; `records` added under its own ns1. */
const a = (records = '') => `origin: a.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1, ns.sub]\nrecords:\n  ns1: { A: 192.0.2.53 }\n${records}`
/** sub.a.test, served beside a.test; `records` its own. */
const sub = (records: string) => `origin: sub.a.test\nsoa: { mname: ns1.a.test., rname: hostmaster.a.test. }\nns: [ns1.a.test.]\nrecords:\n  www: { A: 192.0.2.9 }\n${records}`

test('a name server in a nested zone of the set needs its address there, not in the parent file', () => {
  assert.deepEqual(issues(a(), sub('  ns: { A: 192.0.2.88 }\n')), [], 'the zone that answers for the name holds it')
  assert.deepEqual(issues(a('  ns.sub: { A: 192.0.2.88 }\n'), sub('')), [
    'a.yaml:3:11: ns.1: name server ns.sub.a.test is in zone sub.a.test (sub.yaml), which answers for the name, and has no A or AAAA record there (glue is required)',
  ])
})

test('a name server\'s addresses in the parent file must be those of the nested zone: a copy that differs is never served and only misleads', () => {
  assert.deepEqual(issues(a('  ns.sub: { A: 192.0.2.77 }\n'), sub('  ns: { A: 192.0.2.88 }\n')), [
    'a.yaml:3:11: ns.1: name server ns.sub.a.test has addresses in this file (192.0.2.77) other than those of zone sub.a.test (sub.yaml), which answers for the name (192.0.2.88); these are never served (a query for the name, and the additional section of this zone\'s NS answers, give that zone\'s), so they only mislead: write the same ones here, or none',
  ])
  // The same ones, written otherwise (RFC 5952, in another order): a copy, no error.
  assert.deepEqual(issues(a('  ns.sub: { A: 192.0.2.88, AAAA: "2001:DB8:0::53" }\n'), sub('  ns: { AAAA: 2001:db8::53, A: 192.0.2.88 }\n')), [])
})

test('a name server under a nested zone whose file has errors is judged once that file is fixed', () => {
  assert.deepEqual(issues(a(), sub('  ns: { A: 192.0.2.888 }\n')), ['sub.yaml:6:12: records.ns.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.888"'])
})

test('an MX exchange held only in the parent file, under a nested zone, is judged in the nested zone', () => {
  const mx = '  "@": { MX: { preference: 10, exchange: mail.sub } }\n'
  // The verdict is the nested zone's, said from the start (it said "has no A or AAAA record", of the
  // parent's copy, then where it was looked for); the copy itself is an error (zone-nested-cut.test.ts).
  assert.deepEqual(issues(a(`${mx}  mail.sub: { A: 192.0.2.25 }\n`), sub('  ns: { A: 192.0.2.88 }\n')), [
    'a.yaml:6:42: records.@.MX.exchange: MX exchange mail.sub.a.test names nothing in zone sub.a.test (sub.yaml), which answers for the name: it must name a host with addresses (RFC 5321 §5.1) (written "mail.sub" without a final dot, so under the origin; a host outside the zone is written "mail.sub.")',
    'a.yaml:7:3: records.mail.sub: mail.sub.a.test lies in zone sub.a.test (sub.yaml), which answers for the name in this set of zones: it would never be answered from this file; move it there',
  ])
  assert.deepEqual(issues(a(mx), sub('  ns: { A: 192.0.2.88 }\n  mail: { A: 192.0.2.25 }\n')), [])
})

test('alone, without a nested zone, an in-zone name server still needs its address in its own file', () => {
  const own = 'origin: b.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1, ns.sub]\nrecords:\n  ns1: { A: 192.0.2.53 }\n'
  assert.deepEqual(issues(own, sub('')).filter((i) => i.startsWith('a.yaml')), [
    'a.yaml:3:11: ns.1: name server ns.sub.b.test is inside the zone but has no A or AAAA record under records: (glue is required) (written "ns.sub" without a final dot, so under the origin; a name server outside the zone is written "ns.sub.")',
  ])
  assert.deepEqual(issues(`${own}  ns.sub: { A: 192.0.2.77 }\n`, sub('')), [])
})

test('the NS answer of the parent carries the name server\'s address from the nested zone, which answers for it (none was given before)', () => {
  const set = buildZoneSet([{ file: 'a.yaml', text: a() }, { file: 'sub.yaml', text: sub('  ns: { A: 192.0.2.88 }\n') }], serial, 1)
  const wire = Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 4, 116, 101, 115, 116, 0, 0, RRTYPE.NS, 0, 1])])
  const parsed = parseQuery(wire)
  assert.equal(parsed.kind, 'query')
  const out = respond(set, (parsed as { query: Query }).query)
  assert.deepEqual(out.answer.map((r) => r.ns), ['ns1.a.test', 'ns.sub.a.test'])
  assert.deepEqual(out.additional.map((r) => `${r.name} ${r.address}`), ['ns1.a.test 192.0.2.53', 'ns.sub.a.test 192.0.2.88'])
})
