/**
 * What a parent zone's file may hold at or below the origin of a zone nested in it that the set
 * also serves (`www.sub` in a.test's file beside sub.a.test): a query for such a name goes to the
 * nested zone (findZone), so only the delegation's data has a place there (RFC 1034 §4.2.1, RFC 2181
 * §6): the addresses of a name server of the nested zone or of the parent (glue), the same as those
 * the nested zone gives. Anything else is an error naming the file, the line and the zone to move it
 * to, reported with the file's other errors. These records loaded without a word before.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setIssues } from '../helpers/zones.js'

const countryPoint = () => ({ lat: 0, lon: 0 })

/** The issues of a set of files (`[file, text]`), or [] when it builds. */
const issues = (...files: [string, string][]): string[] => setIssues(files, { build: { countryPoint } })

/** a.test, whose second name server is ns.sub.a.test (under the nested zone); `rest` appended (its records, then more). */
const parent = (rest = '') => ['a.yaml', `origin: a.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1, ns.sub]\nrecords:\n  ns1: { A: 192.0.2.53 }\n${rest}`] as [string, string]
/** sub.a.test, served beside a.test: name servers ns1.a.test and its own ns2 (and a.test's ns.sub). */
const child = (rest = '') => ['sub.yaml', `origin: sub.a.test\nsoa: { mname: ns2, rname: hostmaster.a.test. }\nns: [ns1.a.test., ns2]\nrecords:\n  ns: { A: 192.0.2.88 }\n  ns2: { A: 192.0.2.2, AAAA: "2001:db8::2" }\n  www: { A: 192.0.2.99 }\n${rest}`] as [string, string]
const there = 'zone sub.a.test (sub.yaml), which answers for the name in this set of zones'

describe('a parent file\'s names under a nested zone the set serves', () => {
  // Each case: the parent's records (line 6 on), and the issues of the set.
  const cases: [string, string, string[]][] = [
    ['a record below the nested origin is never answered: an error naming the zone to move it to', '  www.sub: { A: 192.0.2.1 }\n', [`a.yaml:6:3: records.www.sub: www.sub.a.test lies in ${there}: it would never be answered from this file; move it there`]],
    ['so is one the nested zone does not have (it answers NXDOMAIN for it)', '  only.sub: { TXT: hello }\n', [`a.yaml:6:3: records.only.sub: only.sub.a.test lies in ${there}: it would never be answered from this file; move it there`]],
    ['written absolute, or deeper, the same', '  x.y.sub.a.test.: { A: 192.0.2.1 }\n', [`a.yaml:6:3: records.x.y.sub.a.test.: x.y.sub.a.test lies in ${there}: it would never be answered from this file; move it there`]],
    ['records at the nested origin itself: its apex answers', '  sub: { TXT: "v=spf1 -all" }\n', [`a.yaml:6:3: records.sub: sub.a.test is the origin of ${there}: records here would never be answered from this file; move them there (under "@")`]],
    [
      'a GSLB service there: the nested zone answers NXDOMAIN for it',
      '  www: { A: 192.0.2.80 }\nregions:\n  r1: { location: { country: IE }, vips: [192.0.2.10] }\nservices:\n  app.sub: { regions: [r1] }\n',
      [`a.yaml:10:3: services.app.sub: service app.sub.a.test lies in ${there}: it would never be answered from this file; move it there (with the regions it names)`],
    ],
    ['glue: the addresses of a name server of the nested zone, as it gives them (written otherwise: RFC 5952, another order)', '  ns2.sub: { AAAA: "2001:DB8:0::2", A: 192.0.2.2 }\n', []],
    ['glue: the addresses of the parent\'s own name server under the nested zone, as it gives them', '  ns.sub: { A: 192.0.2.88, ttl: 86400 }\n', []],
    [
      'glue other than the nested zone\'s addresses is never served and only misleads',
      '  ns2.sub: { A: 192.0.2.3 }\n',
      ['a.yaml:6:3: records.ns2.sub: ns2.sub.a.test is a name server of zone sub.a.test (sub.yaml), so this file may give its addresses (glue), but these (192.0.2.3) are not those of zone sub.a.test (sub.yaml), which answers for the name (192.0.2.2, 2001:db8::2): they are never served, so they only mislead; write the same ones here, or none'],
    ],
    [
      'a name server\'s name holds only its addresses here: any other type is an error at its key',
      '  ns2.sub: { A: 192.0.2.2, AAAA: "2001:db8::2", TXT: x }\n  ns.sub: { A: 192.0.2.88, MX: { preference: 1, exchange: ns1 } }\n',
      [
        `a.yaml:6:49: records.ns2.sub.TXT: ns2.sub.a.test is a name server of zone sub.a.test (sub.yaml), so this file may give its addresses (glue), but not its TXT: it lies in ${there}, and its TXT would never be answered from this file; move it there`,
        `a.yaml:7:28: records.ns.sub.MX: ns.sub.a.test is a name server of this zone, so this file may give its addresses (glue), but not its MX: it lies in ${there}, and its MX would never be answered from this file; move it there`,
      ],
    ],
    ['names above the nested origin, and pointers into it, are the parent\'s own', '  www: { CNAME: www.sub }\n  "@": { MX: { preference: 1, exchange: ns2.sub.a.test. } }\n  subway: { A: 192.0.2.4 }\n', []],
  ]
  for (const [name, records, expected] of cases) {
    test(name, () => {
      assert.deepEqual(issues(parent(records), child()), expected)
    })
  }

  test('alone, without the nested zone, the same names are the parent\'s own', () => {
    const own = parent('  www.sub: { A: 192.0.2.1 }\n  ns.sub: { A: 192.0.2.88, TXT: x }\n  sub: { TXT: y }\n')
    assert.deepEqual(issues(own), [])
  })

  test('reported with the file\'s other errors, in the order of its lines, in one go', () => {
    const text = '  www.sub: { A: 192.0.2.1 }\n  bad: { A: 192.0.2.300 }\n  "@": { MX: { preference: 1, exchange: nope } }\n'
    assert.deepEqual(issues(parent(text), child()), [
      `a.yaml:6:3: records.www.sub: www.sub.a.test lies in ${there}: it would never be answered from this file; move it there`,
      'a.yaml:7:13: records.bad.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.300"',
      'a.yaml:8:41: records.@.MX.exchange: MX exchange nope.a.test names nothing in the zone: it must name a host with addresses (RFC 5321 §5.1)',
    ])
  })

  test('the zone that answers is named: the deepest of several nested ones; glue is the outermost\'s (the cut below the parent)', () => {
    const deep = ['deep.yaml', 'origin: deep.sub.a.test\nsoa: { mname: ns1.a.test., rname: hostmaster.a.test. }\nns: [ns1.a.test.]\nrecords:\n  www: { A: 192.0.2.7 }\n  ns3: { A: 192.0.2.3 }\n'] as [string, string]
    assert.deepEqual(issues(parent('  www.deep.sub: { A: 192.0.2.1 }\n  ns3.deep.sub: { A: 192.0.2.3 }\n  ns2.sub: { A: 192.0.2.2, AAAA: 2001:db8::2 }\n'), child(), deep), [
      'a.yaml:6:3: records.www.deep.sub: www.deep.sub.a.test lies in zone deep.sub.a.test (deep.yaml), which answers for the name in this set of zones: it would never be answered from this file; move it there',
      // ns3 serves deep.sub.a.test, not sub.a.test: its glue is sub.a.test's business, not a.test's.
      'a.yaml:7:3: records.ns3.deep.sub: ns3.deep.sub.a.test lies in zone deep.sub.a.test (deep.yaml), which answers for the name in this set of zones: it would never be answered from this file; move it there',
    ])
  })

  test('under a nested zone whose file has errors, nothing is judged until it is fixed (what is glue there is unknown)', () => {
    const broken = ['sub.yaml', 'origin: sub.a.test\nsoa: { mname: ns1.a.test., rname: hostmaster.a.test. }\nns: [ns1.a.test., ns2]\nrecords:\n  ns2: { A: 192.0.2.999 }\n'] as [string, string]
    assert.deepEqual(issues(parent('  www.sub: { A: 192.0.2.1 }\n  ns2.sub: { A: 192.0.2.3 }\n'), broken), ['sub.yaml:5:13: records.ns2.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.999"'])
  })

  test('when the parent\'s own name servers are unknown (one refused), an address record there may be their glue: not judged', () => {
    const text = 'origin: a.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1, 42]\nrecords:\n  ns1: { A: 192.0.2.53 }\n  nsx.sub: { A: 192.0.2.1 }\n  www.sub: { TXT: x }\n'
    assert.deepEqual(issues(['a.yaml', text], child()), [
      'a.yaml:3:11: ns.1: must be a domain name, got 42',
      `a.yaml:7:3: records.www.sub: www.sub.a.test lies in ${there}: it would never be answered from this file; move it there`,
    ])
  })
})

describe('a second file of one origin (refused as a duplicate) is judged all the same', () => {
  // A zone moved to a new file in two steps (new file first): both are there until the old one goes.
  const moved = (extra: string) => `origin: a.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1, ns.sub]\nrecords:\n  ns1: { A: 192.0.2.53 }\n${extra}`

  test('its targets and its names under a nested zone are reported beside the duplicate, not once the other file goes', () => {
    const extra = '  "@": { MX: [{ preference: 1, exchange: nope }, { preference: 2, exchange: mail.sub }] }\n  www.sub: { A: 192.0.2.1 }\n'
    const b = ['b.yaml', moved(extra)] as [string, string]
    const expected = [
      'b.yaml:1:9: origin: zone a.test is already defined in a.yaml',
      'b.yaml:6:42: records.@.MX.0.exchange: MX exchange nope.a.test names nothing in the zone: it must name a host with addresses (RFC 5321 §5.1)',
      'b.yaml:6:77: records.@.MX.1.exchange: MX exchange mail.sub.a.test names nothing in zone sub.a.test (sub.yaml), which answers for the name: it must name a host with addresses (RFC 5321 §5.1) (written "mail.sub" without a final dot, so under the origin; a host outside the zone is written "mail.sub.")',
      `b.yaml:7:3: records.www.sub: www.sub.a.test lies in ${there}: it would never be answered from this file; move it there`,
    ]
    // Before, only the first line: the rest came once a.yaml was removed.
    assert.deepEqual(issues(['a.yaml', moved('')], b, child()), expected)
    assert.deepEqual(issues(b, child()), expected.slice(1))
  })
})
