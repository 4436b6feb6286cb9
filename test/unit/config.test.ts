import assert from 'node:assert/strict'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { buildZone, buildZoneSet, parseMaxZoneFileBytes, readZoneSources, txtStrings } from '../../src/config/load.js'
import { ConfigError, formatIssue } from '../../src/errors.js'
import { RRTYPE } from '../../src/model/types.js'

const serial = () => 7
const ZONE = `origin: Example.Test.
ttl: 300
soa: { mname: ns1, rname: hostmaster, minimum: 30 }
ns: [ns1, ns2.elsewhere.test.]
records:
  ns1: { A: 192.0.2.53, AAAA: "2001:db8::53" }
  www: { A: [192.0.2.1, 192.0.2.2], ttl: 60 }
  a.b.c: { TXT: hello }
  alias: { CNAME: www }
`

function issuesOf(text: string, file = 'zones/t.yaml'): string[] {
  return buildZone({ file, text }, serial).issues.map(formatIssue)
}

describe('zone files', () => {
  test('a valid zone builds with defaults applied and names made canonical', () => {
    const { zone, issues } = buildZone({ file: 'z.yaml', text: ZONE }, serial)
    assert.deepEqual(issues, [])
    assert.ok(zone)
    assert.equal(zone.origin, 'example.test')
    assert.equal(zone.soa.serial, 7)
    assert.equal(zone.soa.refresh, 3600, 'refresh defaults to 3600')
    assert.equal(zone.soa.primary, 'ns1.example.test')
    assert.equal(zone.negativeSoa.ttl, 30, 'negative TTL is min(SOA TTL 300, minimum 30)')
    const www = zone.nodes.get('www.example.test')!.rrsets.get(RRTYPE.A)!
    assert.deepEqual(www.map((r) => [r.address, r.ttl]), [['192.0.2.1', 60], ['192.0.2.2', 60]])
    assert.deepEqual([...zone.nodes.get('example.test')!.rrsets.get(RRTYPE.NS)!].map((r) => r.ns), ['ns1.example.test', 'ns2.elsewhere.test'])
  })

  test('every name between an owner and the apex exists as an empty non-terminal', () => {
    const { zone } = buildZone({ file: 'z.yaml', text: ZONE }, serial)
    assert.equal(zone!.nodes.get('b.c.example.test')!.rrsets.size, 0)
    assert.equal(zone!.nodes.get('c.example.test')!.rrsets.size, 0)
    assert.equal(zone!.nodes.get('x.example.test'), undefined)
  })

  test('a YAML syntax error names the file, and the line and column where the parser found it', () => {
    // An unclosed flow mapping on line 2 is found where the next key starts.
    assert.deepEqual(issuesOf('origin: a.test\nsoa: { mname: ns1\nns: [ns1]\n'), ['zones/t.yaml:3:1: Flow map in block collection must be sufficiently indented and end with a }'])
    // An unclosed flow sequence deep in the file is not reported at its top.
    const text = `${ZONE}  mail: [unclosed\n  other: { A: 192.0.2.9 }\n`
    const [first, ...rest] = issuesOf(text)
    assert.match(first!, /^zones\/t\.yaml:11:3: Flow sequence in block collection must be sufficiently indented and end with a \]$/)
    for (const i of rest) assert.doesNotMatch(i, /:1:1: /, 'no syntax error falls back to the top of the file')
  })

  // Each case: the zone text, and the error expected (file:line:col: path: reason).
  const cases: [string, string, RegExp][] = [
    ['a bad IPv4 address', ZONE.replace('192.0.2.2', '192.0.2.300'), /^zones\/t\.yaml:7:25: records\.www\.A\.1: must be an IPv4 address such as 192\.0\.2\.1, got "192\.0\.2\.300"$/],
    ['an unknown key', ZONE.replace('ttl: 300', 'ttl: 300\nweight: heavy'), /^zones\/t\.yaml:3:1: weight: unknown key "weight" \(allowed: origin, ttl, soa, ns, records, defaultLocation, regions, services\)$/],
    ['a missing SOA', ZONE.replace(/^soa:.*\n/m, ''), /^zones\/t\.yaml:1:1: missing required key "soa"$/],
    ['a TTL that is not a number', ZONE.replace('ttl: 60', 'ttl: soon'), /records\.www\.ttl: must be an integer number of seconds, 0\.\.2147483647, got "soon"$/],
    ['a bad serial', ZONE.replace('minimum: 30', 'minimum: 30, serial: today'), /soa\.serial: must be an integer 0\.\.4294967295 or "auto", got "today"$/],
    ['an unknown record type', ZONE.replace('TXT: hello', 'PTR: x'), /records\.a\.b\.c\.PTR: unknown key "PTR"/],
    ['an MX without exchange', ZONE.replace('TXT: hello', 'MX: [{ preference: 10 }]'), /records\.a\.b\.c\.MX\.0: missing required key "exchange"$/],
    ['a CNAME beside other data', ZONE.replace('CNAME: www', 'CNAME: www, TXT: x'), /records\.alias\.CNAME: a CNAME cannot share its name with other data \(TXT\)/],
    ['a CNAME at the apex', ZONE.replace('alias: {', '"@": {'), /records\.@\.CNAME: a CNAME cannot stand at the zone apex/],
    ['an in-zone NS without glue', ZONE.replace('ns1: { A: 192.0.2.53, AAAA: "2001:db8::53" }', 'ns9: { A: 192.0.2.53 }'), /ns\.0: name server ns1\.example\.test is inside the zone but has no A or AAAA record/],
    ['an owner outside the zone', ZONE.replace('alias:', 'other.test.:'), /records\.other\.test\.: owner name other\.test is outside the zone example\.test/],
    ['an owner written with a final dot (absolute: the top-level name)', ZONE.replace('alias:', 'alias.:'), /^zones\/t\.yaml:9:\d+: records\.alias\.: owner name alias is outside the zone example\.test \(a name ending in \. is absolute: write "alias" for alias\.example\.test\)$/],
    ['an rname written as a mail address', ZONE.replace('rname: hostmaster', 'rname: hostmaster@example.test'), /^zones\/t\.yaml:3:\d+: soa\.rname: rname: the mailbox's @ is written as a dot \(RFC 1035 §8\): "hostmaster\.example\.test\.", not "hostmaster@example\.test"$/],
    ['an out-of-zone name server written without its final dot', ZONE.replace('ns2.elsewhere.test.]', 'ns2.elsewhere.test]'), /^zones\/t\.yaml:4:\d+: ns\.1: name server ns2\.elsewhere\.test\.example\.test is inside the zone but has no A or AAAA record under records: \(glue is required\) \(written "ns2\.elsewhere\.test" without a final dot, so under the origin; a name server outside the zone is written "ns2\.elsewhere\.test\."\)$/],
    ['a CNAME target of another zone written without its final dot (it names nothing in this one)', ZONE.replace('CNAME: www', 'CNAME: www.example.org'), /^zones\/t\.yaml:9:\d+: records\.alias\.CNAME: CNAME target www\.example\.org\.example\.test names nothing in the zone \(written "www\.example\.org" without a final dot, so under the origin; a target outside the zone is written "www\.example\.org\."\)$/],
    ['an MX exchange that names nothing in the zone', ZONE.replace('TXT: hello', 'MX: { preference: 10, exchange: mail }'), /^zones\/t\.yaml:8:\d+: records\.a\.b\.c\.MX\.exchange: MX exchange mail\.example\.test names nothing in the zone: it must name a host with addresses \(RFC 5321 §5\.1\)$/],
    ['an MX exchange of another zone written without its final dot', ZONE.replace('TXT: hello', 'MX: [{ preference: 10, exchange: mx.example.net }]'), /records\.a\.b\.c\.MX\.0\.exchange: MX exchange mx\.example\.net\.example\.test names nothing in the zone: it must name a host with addresses \(RFC 5321 §5\.1\) \(written "mx\.example\.net" without a final dot, so under the origin; a host outside the zone is written "mx\.example\.net\."\)$/],
    ['an SRV target with records but no address', ZONE.replace('alias: { CNAME: www }', '_x._tcp: { SRV: { priority: 0, weight: 0, port: 443, target: a.b.c } }'), /^zones\/t\.yaml:9:\d+: records\._x\._tcp\.SRV\.target: SRV target a\.b\.c\.example\.test has no A or AAAA record and is no service: it must name a host with addresses \(RFC 2782\)$/],
    ['an SRV target that is an empty non-terminal', ZONE.replace('alias: { CNAME: www }', '_x._tcp: { SRV: { priority: 0, weight: 0, port: 443, target: b.c } }'), /records\._x\._tcp\.SRV\.target: SRV target b\.c\.example\.test has no A or AAAA record and is no service/],
    ['a label too long', ZONE.replace('alias:', `${'x'.repeat(64)}:`), /label "x{64}" is 64 characters long; at most 63 are allowed/],
    ['a duplicate record (said at the second one)', ZONE.replace('192.0.2.2', '192.0.2.1'), /^zones\/t\.yaml:7:25: records\.www\.A\.1: duplicate record in the A set of www\.example\.test$/],
    ['a duplicate record in a block list', ZONE.replace('alias: { CNAME: www }', 'mx:\n    TXT:\n      - one\n      - two\n      - one'), /^zones\/t\.yaml:13:9: records\.mx\.TXT\.2: duplicate record in the TXT set of mx\.example\.test$/],
    ['a duplicate key', ZONE.replace('ttl: 300', 'ttl: 300\nttl: 30'), /^zones\/t\.yaml:3:1: key "ttl" appears twice in the same mapping$/],
    ['a name server listed twice', ZONE.replace('ns: [ns1, ns2.elsewhere.test.]', 'ns: [ns1, ns1]'), /^zones\/t\.yaml:4:11: ns\.1: duplicate record in the NS set of example\.test$/],
    ['a wildcard owner', ZONE.replace('alias:', '"*":'), /^zones\/t\.yaml:9:\d+: records\.\*: owner name: label "\*": wildcards are not supported \(docs\/dns\.md\); name each owner$/],
    ['a wildcard label inside an owner', ZONE.replace('alias:', 'a.*.b:'), /records\.a\.\*\.b: owner name: label "\*": wildcards are not supported/],
    ['an MX exchange that is a CNAME', ZONE.replace('TXT: hello', 'MX: { preference: 10, exchange: alias }'), /^zones\/t\.yaml:8:\d+: records\.a\.b\.c\.MX\.exchange: MX exchange alias\.example\.test is a CNAME; it must name the host itself, not an alias \(RFC 2181 §10\.3\)$/],
    ['an SRV target that is a CNAME', ZONE.replace('TXT: hello', 'SRV: [{ priority: 1, weight: 1, port: 443, target: alias }]'), /records\.a\.b\.c\.SRV\.0\.target: SRV target alias\.example\.test is a CNAME/],
    ['an owner written twice in another case', ZONE.replace('alias:', 'WWW: { TXT: x }\n  alias:'), /^zones\/t\.yaml:9:3: records\.WWW: owner name www\.example\.test is also written as "www" \(names are case-insensitive, and a name ending in \. is the same as the relative one\); write each owner once$/],
    ['a CNAME hidden beside an A by writing its owner absolute', ZONE.replace('alias: { CNAME: www }', 'alias: { CNAME: www }\n  alias.example.test.: { A: 192.0.2.7 }'), /^zones\/t\.yaml:10:3: records\.alias\.example\.test\.: owner name alias\.example\.test is also written as "alias"/],
    ['an internationalized owner name not in its ASCII form (with the form to write)', ZONE.replace('alias:', 'bücher:'), /^zones\/t\.yaml:9:\d+: records\.bücher: owner name: label "bücher" may hold only letters, digits, '-' and '_' and may not start or end with '-'; an internationalized label is written in its ASCII form: "xn--bcher-kva"$/],
    ['a label with a character no name may hold (no ASCII form to suggest)', ZONE.replace('alias:', 'a+b:'), /records\.a\+b: owner name: label "a\+b" may hold only letters, digits, '-' and '_' and may not start or end with '-'$/],
    ['a label ending in -', ZONE.replace('alias:', 'www-:'), /records\.www-: owner name: label "www-" may hold only letters, digits, '-' and '_' and may not start or end with '-'$/],
    ['a label starting with - under _ (the old second pattern let it by)', ZONE.replace('alias:', '-x._tcp:'), /records\.-x\._tcp: owner name: label "-x" may hold only/],
    ['a name server that is a CNAME', ZONE.replace('ns: [ns1, ns2.elsewhere.test.]', 'ns: [ns1, alias]'), /^zones\/t\.yaml:4:\d+: ns\.1: name server alias\.example\.test is a CNAME/],
  ]
  for (const [what, text, expected] of cases) {
    test(`${what} is rejected with file, line, path and reason`, () => {
      const issues = issuesOf(text)
      assert.ok(issues.some((i) => expected.test(i)), `expected ${expected}, got:\n${issues.join('\n')}`)
    })
  }

  test('in-zone targets that name something load: a CNAME to an empty non-terminal, or to a name that does not exist written without dots; an MX to a name with an address', () => {
    // A CNAME to a missing name is allowed (RFC 1034 §3.6.2; answered NXDOMAIN with the CNAME, RFC 6604; named-checkzone is silent):
    // only one written with a dot but no final dot (another zone's name, taken as under the origin) is an error.
    const text = ZONE.replace('alias: { CNAME: www }', 'alias: { CNAME: www }\n  ent: { CNAME: b.c }\n  typo: { CNAME: wwww }\n  absent: { CNAME: nothere.example.test. }\n  out: { CNAME: www.example.org. }\n  "@": { MX: [{ preference: 10, exchange: www }, { preference: 20, exchange: mx.example.net. }] }\n  _s._tcp: { SRV: { priority: 0, weight: 0, port: 1, target: ns1 } }')
    assert.deepEqual(issuesOf(text), [])
  })

  test('an MX exchange or SRV target that is a service is a host (answered with its VIPs); in a set, a target under a nested zone is judged by that zone', () => {
    const parent = `origin: example.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  "@": { MX: { preference: 10, exchange: app } }
  _h._tcp: { SRV: { priority: 0, weight: 0, port: 443, target: app } }
  www: { CNAME: www.gslb }
regions:
  r1: { location: { lat: 0, lon: 0 }, vips: [192.0.2.1] }
services:
  app: { policy: geo }
`
    // Alone, www.gslb.example.test names nothing in example.test.
    assert.deepEqual(issuesOf(parent), [
      'zones/t.yaml:8:17: records.www.CNAME: CNAME target www.gslb.example.test names nothing in the zone (written "www.gslb" without a final dot, so under the origin; a target outside the zone is written "www.gslb.")',
    ])
    const child = (www: string) => ({ file: 'zones/gslb.yaml', text: `origin: gslb.example.test\nsoa: { mname: ns1, rname: hostmaster }\nns: [ns1]\nrecords:\n  ns1: { A: 192.0.2.53 }\n  ${www}: { A: 192.0.2.80 }\n` })
    const set = buildZoneSet([{ file: 'zones/t.yaml', text: parent }, child('www')], serial, 1)
    assert.deepEqual([...set.zones.keys()].sort(), ['example.test', 'gslb.example.test'])
    // The nested zone without that name: the parent's error stands, saying from the start which zone was searched.
    assert.throws(
      () => buildZoneSet([{ file: 'zones/t.yaml', text: parent }, child('web')], serial, 1),
      (err: ConfigError) =>
        err.issues.map(formatIssue).join('\n') ===
        'zones/t.yaml:8:17: records.www.CNAME: CNAME target www.gslb.example.test names nothing in zone gslb.example.test (zones/gslb.yaml), which answers for the name (written "www.gslb" without a final dot, so under the origin; a target outside the zone is written "www.gslb.")',
    )
  })

  test('every problem of a file is reported, not only the first', () => {
    const text = ZONE.replace('192.0.2.2', 'nope').replace('ttl: 60', 'ttl: -1').replace('TXT: hello', 'TXT: 5')
    assert.equal(issuesOf(text).length, 3)
  })

  test('aliases that expand to a huge document (a "billion laughs") are a YAML error at the file, not a crash', () => {
    const levels = Array.from({ length: 9 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array<string>(9).fill(`*a${i}`).join(', ')}]`)
    const bomb = `${ZONE}x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n${levels.join('\n')}\n`
    const issues = buildZone({ file: 'zones/t.yaml', text: bomb }, serial).issues
    assert.deepEqual(
      issues.map((i) => [i.code, formatIssue(i)]),
      [['E_ZONE_YAML', 'zones/t.yaml:11:10: aliases expand to too many nodes (a resource exhaustion attack?); write the values out instead']],
    )
    // A few aliases are fine.
    assert.deepEqual(issuesOf(ZONE.replace('www: { A', 'www2: &w { A: 192.0.2.9 }\n  www3: *w\n  www: { A')), [])
  })

  test('a file that is not UTF-8 (a Latin-1 TXT) is a YAML error at the first bad byte, not served as U+FFFD', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-utf8-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'z.yaml')
    await writeFile(file, Buffer.concat([Buffer.from(ZONE), Buffer.from('  cafe: { TXT: "caf'), Buffer.from([0xe9]), Buffer.from('" }\n')]))
    await assert.rejects(readZoneSources(dir), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(err.issues.map((i) => [i.code, formatIssue(i)]), [['E_ZONE_YAML', `${file}:10:20: the file is not UTF-8 (byte 0xe9); save it as UTF-8`]])
      return true
    })
    await writeFile(file, Buffer.concat([Buffer.from(ZONE), Buffer.from('  x: { TXT: "'), Buffer.from([0xef, 0x41]), Buffer.from('" }\n')]))
    await assert.rejects(readZoneSources(dir), (err: unknown) => err instanceof ConfigError && formatIssue(err.issues[0]!) === `${file}:10:14: the file is not UTF-8 (byte 0xef); save it as UTF-8`)
    // UTF-8 is read as it is, a byte order mark included (YAML allows one).
    await writeFile(file, '\ufeff' + ZONE.replace('TXT: hello', 'TXT: café'))
    const [src] = await readZoneSources(dir)
    assert.deepEqual(buildZone(src!, serial).issues, [])
  })

  test('a file with many owners is read in time proportional to its size, not to its square', () => {
    // The parser's own duplicate-key check compared each key with every one before it: 80,000
    // owners took over 200 s (a server held that long); read now with one set per mapping, well
    // under a second per 10,000 on an idle machine. The bound is far above either.
    let text = ZONE
    for (let i = 0; i < 50_000; i++) text += `  h${i}: { A: 192.0.2.1 }\n`
    const started = performance.now()
    const { zone, issues } = buildZone({ file: 'z.yaml', text }, serial)
    const ms = performance.now() - started
    assert.deepEqual(issues, [])
    assert.equal(zone!.nodes.size, 50_000 + 7)
    assert.ok(ms < 40_000, `took ${Math.round(ms)} ms`)
  })

  test('one key written as a number and as a string (1 and "1") is a key twice, not the second replacing the first', () => {
    assert.deepEqual(issuesOf(ZONE.replace('alias:', '1: { A: 192.0.2.7 }\n  "1": { TXT: x }\n  alias:')), ['zones/t.yaml:10:3: key "1" appears twice in the same mapping'])
  })

  test('a zone file over 4 MiB is not read: an error of the set naming the file and its size', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-big-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'z.yaml')
    await writeFile(file, ZONE + '#'.repeat(4 * 1024 * 1024 - ZONE.length))
    assert.equal((await readZoneSources(dir)).length, 1, 'exactly 4 MiB is read')
    await truncate(file, 50_000_000)
    await assert.rejects(readZoneSources(dir), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(err.issues.map((i) => [i.code, formatIssue(i)]), [['E_ZONE_SCHEMA', `${file}: the file is 47.7 MiB: a zone file may hold at most 4 MiB (it is not read; --max-zone-file-bytes sets the limit)`]])
      return true
    })
  })

  test('the cap is an option: a file over it is refused with the limit as set, one within it is read', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-big-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'z.yaml')
    await writeFile(file, ZONE + '#'.repeat(5 * 1024 * 1024 - ZONE.length))
    assert.equal((await readZoneSources(dir, { maxFileBytes: 8 * 1024 * 1024 })).length, 1)
    await assert.rejects(readZoneSources(dir, { maxFileBytes: 1000 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(err.issues.map(formatIssue), [`${file}: the file is 5.0 MiB: a zone file may hold at most 1000 bytes (it is not read; --max-zone-file-bytes sets the limit)`])
      return true
    })
  })

  test('--max-zone-file-bytes takes bytes, KiB or MiB, from 1 byte to 256 MiB', () => {
    const ok: [string, number][] = [['1', 1], ['4194304', 4 * 1024 * 1024], ['512KiB', 512 * 1024], ['16MiB', 16 * 1024 * 1024], ['16 mib', 16 * 1024 * 1024], ['256MiB', 256 * 1024 * 1024]]
    for (const [v, n] of ok) assert.equal(parseMaxZoneFileBytes(v), n, v)
    for (const v of ['0', '-1', '-4MiB', 'abc', '', '1.5', '1e6', '4 MB', '0x100', '257MiB', '268435457', '99999999999999999999']) {
      assert.throws(() => parseMaxZoneFileBytes(v), { message: 'must be a size from 1 byte to 256 MiB: a whole number of bytes, or of KiB or MiB with the unit after it (16MiB)' }, v)
    }
  })

  test('a byte order mark is not a column: positions on the first line are where an editor shows them', () => {
    assert.deepEqual(issuesOf('\ufefforigin: a..test\nsoa: { mname: ns1.b.test., rname: h.b.test. }\nns: [ns1.b.test.]\n'), ['zones/t.yaml:1:9: origin: name has an empty label (two dots in a row)'])
    assert.throws(
      () => buildZoneSet([{ file: 'a.yaml', text: ZONE }, { file: 'b.yaml', text: `\ufeff${ZONE}` }], serial, 1),
      (err: unknown) => err instanceof ConfigError && /b\.yaml:1:9: origin: zone example\.test is already defined in a\.yaml/.test(err.message),
    )
  })

  test('a set with two files for one origin is rejected as a whole, at the second file\'s origin line', () => {
    assert.throws(
      () => buildZoneSet([{ file: 'a.yaml', text: ZONE }, { file: 'b.yaml', text: `# the same zone again\n${ZONE}` }], serial, 1),
      (err: unknown) => err instanceof ConfigError && /b\.yaml:2:9: origin: zone example\.test is already defined in a\.yaml/.test(err.message),
    )
  })

  test('the content hash ignores the serial but sees any other change', () => {
    const a = buildZone({ file: 'z', text: ZONE }, serial).zone!
    const b = buildZone({ file: 'z', text: ZONE.replace('minimum: 30', 'minimum: 30, serial: 5') }, serial).zone!
    const c = buildZone({ file: 'z', text: ZONE.replace('192.0.2.2', '192.0.2.3') }, serial).zone!
    assert.equal(a.contentHash, b.contentHash)
    assert.notEqual(a.contentHash, c.contentHash)
  })

  test('a long TXT string is split into 255-octet character-strings', () => {
    const parts = txtStrings('x'.repeat(600))
    assert.deepEqual(parts.map((p) => p.length), [255, 255, 90])
    assert.deepEqual(txtStrings(['a', 'b']).map(String), ['a', 'b'])
    assert.deepEqual(txtStrings('é'.repeat(200)).map((b) => b.length), [255, 145], 'split by octets, not characters')
  })
})

describe('regions and services in zone files', () => {
  const GSLB = `${ZONE}regions:
  eu-west:
    location: { country: IE }
    vips: [127.0.2.1, "2001:db8:2::1"]
    check: { url: "http://{vip}:8080/healthz", interval: 1, timeout: 0.5 }
  us-east:
    location: { lat: 38.9, lon: -77.4 }
    vips: [127.0.1.1]
    weight: 0
    check: { type: tcp, port: 8080 }
services:
  app:
    regions: [eu-west, us-east]
    policy: failover
`
  const countryPoint = (c: string) => (c === 'IE' ? { lat: 53, lon: -8 } : undefined)
  const build = (text: string) => buildZone({ file: 'zones/t.yaml', text }, serial, { countryPoint })

  test('a service written twice (in another case) is an error, not the second one replacing the first', () => {
    const r = build(GSLB.replace('  app:\n', '  APP:\n    policy: geo\n  app:\n'))
    assert.deepEqual(r.issues.map(formatIssue), ['zones/t.yaml:23:3: services.app: service name app.example.test is also written as "APP" (names are case-insensitive, and a name ending in . is the same as the relative one); write each service once'])
  })

  test('regions and services build with defaults, and identical checks share one key', () => {
    const r = build(GSLB)
    assert.deepEqual(r.issues.map(formatIssue), [])
    const eu = r.zone!.regions.get('eu-west')!
    assert.deepEqual(eu.location, { lat: 53, lon: -8 })
    assert.equal(eu.weight, 100)
    assert.deepEqual(eu.vips.map((v) => [v.address, v.family]), [['127.0.2.1', 4], ['2001:db8:2::1', 6]])
    assert.match(eu.vips[1]!.checkKey!, /^http:\/\/\[2001:db8:2::1\]:8080\/healthz#/)
    const app = r.zone!.services.get('app.example.test')!
    assert.equal(app.policy, 'failover')
    assert.equal(app.ttl, 30)
    assert.equal(app.answers, 2)
    assert.equal(app.fallback, 'as-if-healthy')
    assert.equal(r.checks!.size, 3)
    assert.equal(r.zone!.nodes.get('app.example.test')!.rrsets.size, 0, 'a service name is a name of the zone')
  })

  test('a VIP is kept in its RFC 5952 form, so one address written two ways in two regions is one address', () => {
    const r = build(GSLB.replace('vips: [127.0.2.1, "2001:db8:2::1"]', 'vips: [127.0.2.1, "2001:DB8:0:0::9"]').replace('vips: [127.0.1.1]', 'vips: [127.0.1.1, "2001:db8::9"]'))
    assert.deepEqual(r.issues.map(formatIssue), [])
    const [eu, us] = ['eu-west', 'us-east'].map((n) => r.zone!.regions.get(n)!.vips[1]!)
    // The selector answers an address once across regions (fill, fallback all) by comparing these.
    assert.deepEqual([eu!.address, us!.address], ['2001:db8::9', '2001:db8::9'])
    assert.match(eu!.checkKey!, /^http:\/\/\[2001:db8::9\]:8080\/healthz#/)
  })

  const cases: [string, string, RegExp][] = [
    ['a tcp check given a path (it would be ignored)', GSLB.replace('check: { type: tcp, port: 8080 }', 'check: { type: tcp, port: 8080, path: /status }'), /regions\.us-east\.check\.path: a tcp check takes port \(and target\), not path$/],
    ['a check with a url given a port (the url\'s own is used)', GSLB.replace('check: { url: "http://{vip}:8080/healthz", interval: 1, timeout: 0.5 }', 'check: { url: "http://{vip}:8080/healthz", port: 9090, interval: 1, timeout: 0.5 }'), /regions\.eu-west\.check\.port: a check with a url takes its port from the url \(http:\/\/\{vip\}:8080\/healthz\): put it there, or give port and path without url$/],
    ['a check with a url given a path', GSLB.replace('check: { url: "http://{vip}:8080/healthz", interval: 1, timeout: 0.5 }', 'check: { url: "http://{vip}:8080/healthz", path: /status, interval: 1, timeout: 0.5 }'), /regions\.eu-west\.check\.path: a check with a url takes its path from the url/],
    ['a HEAD check given a body substring', GSLB.replace('check: { url: "http://{vip}:8080/healthz", interval: 1, timeout: 0.5 }', 'check: { url: "http://{vip}:8080/healthz", method: HEAD, body: ok, interval: 1, timeout: 0.5 }'), /regions\.eu-west\.check\.body: a HEAD check gets no body to look in: use method GET, or drop body$/],
    ['an http check given a TLS server name', GSLB.replace('interval: 1, timeout: 0.5 }', 'interval: 1, timeout: 0.5, tlsServername: svc.test }'), /regions\.eu-west\.check\.tlsServername: tlsServername applies to https checks only \(this one is http\)$/],
    ['a timeout longer than its interval', GSLB.replace('interval: 1, timeout: 0.5', 'interval: 1, timeout: 2'), /regions\.eu-west\.check\.timeout: timeout \(2 s\) must be below the interval \(1 s\)$/],
    ['an unknown region in a service', GSLB.replace('[eu-west, us-east]', '[eu-west, mars]'), /services\.app\.regions\.1: unknown region "mars" \(regions of this zone: eu-west, us-east\)$/],
    ['a VIP that is not an address', GSLB.replace('vips: [127.0.1.1]', 'vips: [lb.example.com]'), /regions\.us-east\.vips\.0: must be an IPv4 or IPv6 address, got "lb\.example\.com"$/],
    ['a weight out of range', GSLB.replace('weight: 0', 'weight: 1001'), /regions\.us-east\.weight: must be an integer 0\.\.1000 \(0 = standby\), got 1001$/],
    ['a region with no VIP', GSLB.replace('vips: [127.0.1.1]', 'vips: []'), /regions\.us-east\.vips: must be a non-empty list of VIP addresses, got \[\]$/],
    ['an unknown country', GSLB.replace('country: IE', 'country: XX'), /regions\.eu-west\.location\.country: unknown country code "XX"$/],
    ['a country code of three letters', GSLB.replace('country: IE', 'country: IRL'), /regions\.eu-west\.location\.country: must be a two-letter ISO 3166 country code such as IE or US, got "IRL"$/],
    ['a city written out', GSLB.replace('country: IE', 'city: DUBLIN'), /regions\.eu-west\.location\.city: must be a three-letter IATA metro code such as DUB or IAD \(geodb\/places\.json\), got "DUBLIN"$/],
    ['a check path without its /', GSLB.replace('{ type: tcp, port: 8080 }', '{ path: healthz }'), /regions\.us-east\.check\.path: must be a URL path starting with \/, such as \/healthz, got "healthz"$/],
    ['a check url for tcp', GSLB.replace('{ type: tcp, port: 8080 }', '{ url: "tcp://{vip}:8080" }'), /regions\.us-east\.check\.url: must be an http:\/\/ or https:\/\/ URL such as http:\/\/\{vip\}:8080\/healthz \(a tcp check takes port, not url\), got "tcp:\/\/\{vip\}:8080"$/],
    ['a check port in quotes', GSLB.replace('port: 8080', 'port: "8080"'), /regions\.us-east\.check\.port: must be a port number 1\.\.65535, got "8080"$/],
    ['a range of status codes', GSLB.replace('{ type: tcp, port: 8080 }', '{ expect: [200-299] }'), /regions\.us-east\.check\.expect\.0: must be an HTTP status code 100\.\.599 \(each code listed: no ranges\), got "200-299"$/],
    ['a status code not in a list', GSLB.replace('{ type: tcp, port: 8080 }', '{ expect: 200 }'), /regions\.us-east\.check\.expect: must be a non-empty list of HTTP status codes, such as \[200\] or \[200, 204\], got 200$/],
    ['drained: yes (a string in YAML 1.2)', GSLB.replace('weight: 0', 'drained: yes'), /regions\.us-east\.drained: must be true or false, got "yes"$/],
    ['a services key left empty (its entries not indented under it)', GSLB.replace('services:\n  app:\n', 'services:\napp:\n'), /^zones\/t\.yaml:20:10: services: must be a mapping of service names to services \(www: \{ policy: geo \}\); leave the key out when there are none, got null$/],
    ['a TTL above 300', GSLB.replace('policy: failover', 'policy: failover\n    ttl: 600'), /services\.app\.ttl: must be an integer number of seconds, 1\.\.300, got 600$/],
    ['an unknown policy', GSLB.replace('policy: failover', 'policy: random'), /services\.app\.policy: must be geo-latency, geo, weighted or failover, got "random"$/],
    ['a url placeholder other than {vip} (its host would never resolve)', GSLB.replace('http://{vip}:8080/healthz', 'http://{ip}:8080/healthz'), /^zones\/t\.yaml:14:\d+: regions\.eu-west\.check\.url: unknown placeholder \{ip\} in the url: the only one is \{vip\}, in lowercase \(each VIP's address\)$/],
    ['a url placeholder in capitals', GSLB.replace('http://{vip}:8080/healthz', 'http://{VIP}:8080/healthz'), /regions\.eu-west\.check\.url: unknown placeholder \{VIP\} in the url/],
    ['a service written with a final dot (absolute: the top-level name)', GSLB.replace('  app:\n', '  app.:\n'), /^zones\/t\.yaml:22:\d+: services\.app\.: service name app is outside the zone example\.test \(a name ending in \. is absolute: write "app" for app\.example\.test\)$/],
    ['a service of another zone (no hint: not a stray dot)', GSLB.replace('  app:\n', '  app.example.org.:\n'), /services\.app\.example\.org\.: service name app\.example\.org is outside the zone example\.test$/],
    ['a tcp check without port', GSLB.replace('{ type: tcp, port: 8080 }', '{ type: tcp }'), /regions\.us-east\.check: a tcp check needs a port$/],
    ['a service on a name with records', GSLB.replace('  app:\n', '  www:\n'), /services\.www: www\.example\.test is both a static record set/],
    ['static fallback without addresses', GSLB.replace('policy: failover', 'policy: failover\n    fallback: static'), /services\.app\.fallbackAddresses: fallback: static needs at least one address here$/],
    ['a region name with capitals', GSLB.replace('  eu-west:\n    location', '  EU:\n    location'), /regions: name "EU" may hold only lowercase letters/],
  ]
  for (const [what, text, expected] of cases) {
    test(`${what} is a clear error`, () => {
      const issues = build(text).issues.map(formatIssue)
      assert.ok(issues.some((i) => expected.test(i)), `expected ${expected}, got:\n${issues.join('\n')}`)
    })
  }

  test('an https check takes a TLS server name; a tcp check with only its own keys is fine', () => {
    const text = GSLB.replace('check: { url: "http://{vip}:8080/healthz", interval: 1, timeout: 0.5 }', 'check: { type: https, tlsServername: svc.test, tlsVerify: false, interval: 1, timeout: 0.5 }')
    assert.deepEqual(build(text).issues.map(formatIssue), [])
  })

  test('a region name is a DNS label (LDH, as a service name): one ending or starting in -, or over 63 characters, is rejected at its line; a-b, a, 0 and 63 characters load', () => {
    const named = (name: string) => build(GSLB.replace('  eu-west:\n    location', `  ${name}:\n    location`).replace('[eu-west, us-east]', `["${name}", us-east]`)).issues.map(formatIssue)
    const rule = "may hold only lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)"
    for (const bad of ['eu-', '-eu', 'eu-west-', '-', 'a'.repeat(64)]) {
      assert.deepEqual(named(bad).filter((i) => i.includes('regions:')), [`zones/t.yaml:11:3: regions: name "${bad}" ${rule}`], bad)
    }
    for (const good of ['eu-west', 'a', '0', 'a--b', 'a'.repeat(63)]) assert.deepEqual(named(good), [], good)
  })

  test('a region name with capitals is reported once (not again as the pattern behind the rule)', () => {
    const issues = build(GSLB.replace('  eu-west:\n    location', '  EU:\n    location')).issues.map(formatIssue)
    assert.deepEqual(
      issues.filter((i) => i.includes('"EU"')),
      [`zones/t.yaml:11:3: regions: name "EU" may hold only lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)`],
    )
  })

  test('a VIP no client can connect to (unspecified, "this network", multicast, broadcast, reserved) is an error naming it; loopback and private VIPs load', () => {
    const cases: [string, RegExp][] = [
      ['0.0.0.0', /VIP 0\.0\.0\.0 is in 0\.0\.0\.0\/8 \("this network", RFC 1122\), never a destination: no client can connect to it/],
      ['0.1.2.3', /VIP 0\.1\.2\.3 is in 0\.0\.0\.0\/8/],
      ['224.0.0.1', /VIP 224\.0\.0\.1 is a multicast address \(224\.0\.0\.0\/4\)/],
      ['239.255.255.250', /VIP 239\.255\.255\.250 is a multicast address/],
      ['255.255.255.255', /VIP 255\.255\.255\.255 is the limited broadcast address/],
      ['240.0.0.1', /VIP 240\.0\.0\.1 is in the reserved 240\.0\.0\.0\/4/],
      ['"::"', /VIP :: is the unspecified address \(::\)/],
      ['"0:0::0"', /VIP 0:0::0 is the unspecified address/],
      ['"ff02::1"', /VIP ff02::1 is a multicast address \(ff00::\/8\)/],
    ]
    for (const [vip, expected] of cases) {
      const issues = build(GSLB.replace('vips: [127.0.1.1]', `vips: [127.0.1.1, ${vip}]`)).issues.map(formatIssue)
      assert.equal(issues.length, 1, `${vip}: ${issues.join('; ')}`)
      assert.match(issues[0]!, /^zones\/t\.yaml:17:\d+: regions\.us-east\.vips\.1: /, vip)
      assert.match(issues[0]!, expected, vip)
    }
    for (const vip of ['10.0.0.1', '192.168.1.1', '100.64.0.1', '"::1"', '"fd00::1"', '"fe80::1"', '223.255.255.255', '1.0.0.0']) {
      assert.deepEqual(build(GSLB.replace('vips: [127.0.1.1]', `vips: [127.0.1.1, ${vip}]`)).issues.map(formatIssue), [], vip)
    }
  })

  test('a problem of a region\'s check is reported once, not once per VIP', () => {
    const issues = build(GSLB.replace('interval: 1, timeout: 0.5', 'interval: 1, timeout: 2')).issues.map(formatIssue)
    assert.deepEqual(issues, ['zones/t.yaml:14:70: regions.eu-west.check.timeout: timeout (2 s) must be below the interval (1 s)'])
  })
})
