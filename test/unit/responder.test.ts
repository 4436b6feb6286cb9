import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildZoneSet } from '../../src/config/load.js'
import { respond } from '../../src/dns/responder.js'
import { parseQuery, type Query } from '../../src/dns/wire.js'
import { RRTYPE, RRTYPE_NAME, type RR } from '../../src/model/types.js'

const set = buildZoneSet(
  [
    {
      file: 'z.yaml',
      text: `origin: z.test
soa: { mname: ns1, rname: h, minimum: 10 }
ns: [ns1, ns.other.test.]
records:
  ns1: { A: 192.0.2.53, AAAA: "2001:db8::53" }
  "@": { MX: { preference: 5, exchange: mx }, TXT: apex }
  mx: { A: 192.0.2.25 }
  www: { A: 192.0.2.1, AAAA: "2001:db8::1", TXT: t }
  alias: { CNAME: www }
  chain: { CNAME: alias }
  out: { CNAME: www.other.test. }
  dangling: { CNAME: nothere }
  loop1: { CNAME: loop2 }
  loop2: { CNAME: loop1 }
  deep.ent: { A: 192.0.2.9 }
`,
    },
    { file: 'sub.yaml', text: 'origin: sub.z.test\nsoa: { mname: ns.other.test., rname: h }\nns: [ns.other.test.]\nrecords: { a: { A: 192.0.2.77 } }\n' },
  ],
  () => 1,
  1,
)

function query(name: string, type: number, klass = 1): Query {
  const labels = name.split('.').filter(Boolean)
  const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, type >> 8, type & 255, klass >> 8, klass & 255])])
  const r = parseQuery(q)
  assert.equal(r.kind, 'query')
  return (r as { query: Query }).query
}

const show = (rrs: RR[]) => rrs.map((r) => `${r.name} ${RRTYPE_NAME[r.type]}`)

// CoreDNS-style table: { qname, qtype, rcode, answer, authority, additional } (rdata left out).
const cases: { qname: string; qtype: number; rcode: number; aa?: boolean; answer?: string[]; authority?: string[]; additional?: string[] }[] = [
  { qname: 'www.z.test', qtype: RRTYPE.A, rcode: 0, answer: ['www.z.test A'] },
  { qname: 'WWW.Z.TEST', qtype: RRTYPE.AAAA, rcode: 0, answer: ['www.z.test AAAA'] },
  { qname: 'www.z.test', qtype: RRTYPE.MX, rcode: 0, answer: [], authority: ['z.test SOA'] },
  { qname: 'nope.z.test', qtype: RRTYPE.A, rcode: 3, answer: [], authority: ['z.test SOA'] },
  { qname: 'ent.z.test', qtype: RRTYPE.A, rcode: 0, answer: [], authority: ['z.test SOA'] },
  { qname: 'z.test', qtype: RRTYPE.NS, rcode: 0, answer: ['z.test NS', 'z.test NS'], additional: ['ns1.z.test A', 'ns1.z.test AAAA'] },
  { qname: 'z.test', qtype: RRTYPE.MX, rcode: 0, answer: ['z.test MX'], additional: ['mx.z.test A'] },
  { qname: 'z.test', qtype: RRTYPE.SOA, rcode: 0, answer: ['z.test SOA'] },
  { qname: 'alias.z.test', qtype: RRTYPE.A, rcode: 0, answer: ['alias.z.test CNAME', 'www.z.test A'] },
  { qname: 'chain.z.test', qtype: RRTYPE.TXT, rcode: 0, answer: ['chain.z.test CNAME', 'alias.z.test CNAME', 'www.z.test TXT'] },
  { qname: 'alias.z.test', qtype: RRTYPE.CNAME, rcode: 0, answer: ['alias.z.test CNAME'] },
  { qname: 'alias.z.test', qtype: RRTYPE.MX, rcode: 0, answer: ['alias.z.test CNAME'], authority: ['z.test SOA'] },
  { qname: 'out.z.test', qtype: RRTYPE.A, rcode: 0, answer: ['out.z.test CNAME'] },
  { qname: 'dangling.z.test', qtype: RRTYPE.A, rcode: 3, answer: ['dangling.z.test CNAME'], authority: ['z.test SOA'] },
  { qname: 'loop1.z.test', qtype: RRTYPE.A, rcode: 0, answer: ['loop1.z.test CNAME', 'loop2.z.test CNAME'] },
  { qname: 'www.z.test', qtype: RRTYPE.ANY, rcode: 0, answer: ['www.z.test A'] },
  { qname: 'a.sub.z.test', qtype: RRTYPE.A, rcode: 0, answer: ['a.sub.z.test A'] },
  // DS at a cut is the parent's (RFC 4035 §3.1.4.1): NODATA under the parent's SOA, not the child's.
  { qname: 'sub.z.test', qtype: RRTYPE.DS, rcode: 0, answer: [], authority: ['z.test SOA'] },
  { qname: 'SUB.Z.test', qtype: RRTYPE.DS, rcode: 0, answer: [], authority: ['z.test SOA'] },
  { qname: 'a.sub.z.test', qtype: RRTYPE.DS, rcode: 0, answer: [], authority: ['sub.z.test SOA'] },
  { qname: 'z.test', qtype: RRTYPE.DS, rcode: 0, answer: [], authority: ['z.test SOA'] },
  { qname: 'sub.z.test', qtype: RRTYPE.NS, rcode: 0, answer: ['sub.z.test NS'] },
  { qname: 'example.com', qtype: RRTYPE.A, rcode: 5, aa: false, answer: [] },
  { qname: 'z.test', qtype: RRTYPE.AXFR, rcode: 5, aa: false },
  { qname: 'z.test', qtype: RRTYPE.OPT, rcode: 1, aa: false },
]

describe('responder', () => {
  for (const c of cases) {
    test(`${c.qname} ${RRTYPE_NAME[c.qtype]} -> rcode ${c.rcode} ${JSON.stringify(c.answer ?? [])}`, () => {
      const out = respond(set, query(c.qname, c.qtype))
      assert.equal(out.rcode, c.rcode)
      assert.equal(out.aa, c.aa ?? true)
      if (c.answer) assert.deepEqual(show(out.answer), c.answer)
      assert.deepEqual(show(out.authority), c.authority ?? [])
      if (c.additional) assert.deepEqual(show(out.additional), c.additional)
    })
  }

  test('negative answers carry the SOA with TTL min(SOA TTL, minimum)', () => {
    const out = respond(set, query('nope.z.test', RRTYPE.A))
    assert.equal(out.authority[0]!.ttl, 10)
  })

  test('a DS query at a cut is answered, and counted, under the parent zone', () => {
    assert.equal(respond(set, query('sub.z.test', RRTYPE.DS)).zone?.origin, 'z.test')
    assert.equal(respond(set, query('sub.z.test', RRTYPE.SOA)).zone?.origin, 'sub.z.test')
  })

  test('a query of class CHAOS for a served name is refused', () => {
    assert.equal(respond(set, query('z.test', RRTYPE.TXT, 3)).rcode, 5)
  })

  test('a name whose label holds a dot never matches the name with two labels', () => {
    const raw = Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7]), Buffer.from('www.zxx'), Buffer.from([4]), Buffer.from('test'), Buffer.from([0, 0, 1, 0, 1])])
    const r = parseQuery(raw)
    assert.equal(r.kind, 'query')
    const q = (r as { query: Query }).query
    assert.equal(q.oddName, true)
    assert.equal(respond(set, q).rcode, 5, '"www.zxx" label under .test is no zone of ours')
  })
})
