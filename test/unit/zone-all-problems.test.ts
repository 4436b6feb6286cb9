/**
 * A zone file's problems are reported in one go: the checks beyond the schema run beside the
 * schema's errors on what the schema took, and a target naming nothing is judged beside the file's
 * other errors; what a refused value leaves unknown is not judged (no error that fixing another
 * would make false).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildZone } from '../../src/config/load.js'
import { formatIssue } from '../../src/errors.js'
import { BROKEN_ZONE, BROKEN_ZONE_PROBLEMS, setIssues as setIssuesOf } from '../helpers/zones.js'

const serial = () => 1
const countryPoint = (c: string) => (c === 'IE' ? { lat: 53.4, lon: -8.2 } : undefined)
const issuesOf = (text: string): string[] => buildZone({ file: 'z.yaml', text }, serial, { countryPoint }).issues.map((i) => `${i.code} ${formatIssue(i)}`)

/** The issues of a set of files (each `[file, text]`), or [] when it builds. */
const setIssues = (files: [string, string][]): string[] => setIssuesOf(files, { build: { countryPoint } })

const HEAD = 'origin: a.test\nsoa: { mname: ns1, rname: hostmaster }\n'

describe('every problem of a zone file in one go', () => {
  test('schema errors and the checks beyond the schema are reported together, each at its line, in the order of the file', () => {
    assert.deepEqual(issuesOf(BROKEN_ZONE), BROKEN_ZONE_PROBLEMS.map(([code, p]) => `${code} z.yaml:${p}`))
  })

  test('a target that names nothing is reported beside the file\'s other semantic errors', () => {
    const text = `${HEAD}ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  "@": { CNAME: www }
  www: { A: 192.0.2.1 }
  _x._tcp: { SRV: { priority: 0, weight: 0, port: 443, target: srv } }
`
    assert.deepEqual(issuesOf(text), [
      'E_ZONE_SEMANTIC z.yaml:6:17: records.@.CNAME: a CNAME cannot stand at the zone apex, which holds the SOA and NS records (RFC 1034 §3.6.2)',
      'E_ZONE_SEMANTIC z.yaml:8:64: records._x._tcp.SRV.target: SRV target srv.a.test names nothing in the zone: it must name a host with addresses (RFC 2782)',
    ])
  })

  test('without an origin, the regions and the regions services name are still checked', () => {
    const text = `soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
regions:
  r1: { location: { country: ZZ }, vips: [192.0.2.1, 192.0.2.1], minHealthy: 3 }
services:
  www: { regions: [r2] }
`
    assert.deepEqual(issuesOf(text), [
      'E_ZONE_SCHEMA z.yaml:1:1: missing required key "origin"',
      'E_ZONE_SEMANTIC z.yaml:4:30: regions.r1.location.country: unknown country code "ZZ"',
      'E_ZONE_SEMANTIC z.yaml:4:54: regions.r1.vips.1: VIP 192.0.2.1 is listed twice',
      'E_ZONE_SEMANTIC z.yaml:4:78: regions.r1.minHealthy: needs 3 healthy VIPs but the region has only 2',
      'E_ZONE_SEMANTIC z.yaml:6:20: services.www.regions.0: unknown region "r2" (regions of this zone: r1)',
    ])
  })

  // Each case: a file whose only errors are the schema's, though the refused value is one a check
  // beyond the schema would ask about. Nothing is said of what it leaves unknown.
  const unknown: [string, string, string[]][] = [
    ['a name server whose address the schema refused has no missing glue', `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.999 }\n`, ['z.yaml:5:13: records.ns1.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.999"']],
    [
      'an owner with a refused type is not judged as a target (it may be the host meant)',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1, PTR: x }\n  "@": { MX: { preference: 1, exchange: ns1 } }\n  _s._tcp: { SRV: { priority: 0, weight: 0, port: 1, target: ns1 } }\n`,
      ['z.yaml:5:24: records.ns1.PTR: unknown key "PTR" (allowed: ttl, A, AAAA, CNAME, TXT, MX, SRV, CAA)'],
    ],
    [
      'records: refused as a whole leaves every name unknown (the glue of an in-zone name server too)',
      `${HEAD}ns: [ns1]\nrecords: [ns1]\n`,
      ['z.yaml:4:10: records: must be a mapping of owner names to record sets (www: { A: 192.0.2.1 }); leave the key out when there are none, got ["ns1"]'],
    ],
    [
      'services: refused as a whole: an MX exchange may name one of them',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  "@": { MX: { preference: 1, exchange: www } }\nservices: www\n`,
      ['z.yaml:7:11: services: must be a mapping of service names to services (www: { policy: geo }); leave the key out when there are none, got "www"'],
    ],
    [
      'a service the schema refused in part is still a service an MX exchange may name',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  "@": { MX: { preference: 1, exchange: www } }\nregions:\n  r1: { location: { lat: 1, lon: 2 }, vips: [192.0.2.9] }\nservices:\n  www: { policy: bogus }\n`,
      ['z.yaml:10:18: services.www.policy: must be geo-latency, geo, weighted or failover, got "bogus"'],
    ],
    [
      'regions: refused as a whole: the regions a service names are not judged',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\nregions: [eu]\nservices:\n  www: { regions: [eu] }\n`,
      ['z.yaml:6:10: regions: must be a mapping of region names to regions (eu-west: { location, vips }); leave the key out when there are none, got ["eu"]'],
    ],
    [
      'a region whose name the schema refused is still the region a service names',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\nregions:\n  EU: { location: { country: IE }, vips: [192.0.2.2] }\nservices:\n  www: { regions: [EU] }\n`,
      ['z.yaml:7:3: regions: name "EU" may hold only lowercase letters, digits and \'-\', starting and ending with a letter or digit (at most 63 characters)'],
    ],
    [
      'a region without vips is not judged for minHealthy',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\nregions:\n  r1: { location: { country: IE }, minHealthy: 2 }\nservices:\n  www: { regions: [r1] }\n`,
      ['z.yaml:7:7: regions.r1: missing required key "vips"'],
    ],
    [
      'a refused CNAME is not judged for what stands beside it',
      `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  w: { CNAME: 5, A: 192.0.2.3 }\n`,
      ['z.yaml:6:15: records.w.CNAME: must be a domain name, got 5'],
    ],
  ]
  for (const [name, text, expected] of unknown) {
    test(name, () => {
      const issues = buildZone({ file: 'z.yaml', text }, serial, { countryPoint }).issues
      assert.deepEqual(issues.map(formatIssue), expected)
      assert.ok(issues.every((i) => i.code === 'E_ZONE_SCHEMA'))
    })
  }

  test('an owner whose records were refused exists: a CNAME to it or below it names something', () => {
    const text = `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  a.b: { A: bad }\n  c: { CNAME: a.b }\n  d: { CNAME: b.x }\n`
    assert.deepEqual(issuesOf(text), [
      'E_ZONE_SCHEMA z.yaml:6:13: records.a.b.A: must be an IPv4 address such as 192.0.2.1, got "bad"',
      // b.a.test exists (an empty non-terminal above a.b); b.x.a.test does not.
      'E_ZONE_SEMANTIC z.yaml:8:15: records.d.CNAME: CNAME target b.x.a.test names nothing in the zone (written "b.x" without a final dot, so under the origin; a target outside the zone is written "b.x.")',
    ])
  })
})

describe('a set of files', () => {
  const a = `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  "@": { MX: { preference: 1, exchange: mail.sub } }\n`
  const sub = (mail: string) => `origin: sub.a.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  mail: ${mail}\n`

  test('a target under a nested zone whose file has errors is not judged until that file is fixed', () => {
    assert.deepEqual(setIssues([['a.yaml', a], ['sub.yaml', sub('{ A: 192.0.2.999 }')]]), ['sub.yaml:6:14: records.mail.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.999"'])
    // Not even YAML: its origin is read from its text.
    assert.deepEqual(setIssues([['a.yaml', a], ['sub.yaml', 'origin: sub.a.test\nsoa: { mname: ns1\nns: [ns1]\n']]), ['sub.yaml:3:1: Flow map in block collection must be sufficiently indented and end with a }'])
    // Fixed, it holds the host: the set builds. Fixed without one: the target is an error of a.yaml.
    assert.deepEqual(setIssues([['a.yaml', a], ['sub.yaml', sub('{ A: 192.0.2.25 }')]]), [])
    assert.match(setIssues([['a.yaml', a], ['sub.yaml', sub('{ TXT: x }')]]).join('\n'), /^a\.yaml:6:41: records\.@\.MX\.exchange: MX exchange mail\.sub\.a\.test /)
  })

  test('a file\'s targets that name nothing are listed with its other errors, in its order, before the next file\'s', () => {
    const broken = `${HEAD}ns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.1 }\n  "@": { MX: { preference: 1, exchange: mail } }\n  x: { A: 300.1.1.1 }\n`
    assert.deepEqual(setIssues([['a.yaml', broken], ['b.yaml', 'origin: b.test\nsoa: { mname: ns1, rname: h }\nns: [ns1]\n']]), [
      'a.yaml:6:41: records.@.MX.exchange: MX exchange mail.a.test names nothing in the zone: it must name a host with addresses (RFC 5321 §5.1)',
      'a.yaml:7:11: records.x.A: must be an IPv4 address such as 192.0.2.1, got "300.1.1.1"',
      'b.yaml:3:6: ns.0: name server ns1.b.test is inside the zone but has no A or AAAA record under records: (glue is required)',
    ])
  })
})
