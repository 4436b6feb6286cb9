/**
 * End-to-end RFC conformance of the authoritative DNS core: a real Meridian process serving
 * test/fixtures/rfc, queried with the real `dig` over UDP and TCP, on IPv4 and (the key rules) IPv6.
 *
 * Expected values come from the fixture files themselves (parsed here), so a fixture edit shows up
 * as a failing "fixture is shaped" test rather than as rules that silently stop being exercised.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { dig, type DigRecord, type DigResult } from '../helpers/dig.js'
import { absName as abs, ipv6Port, readFixtureZone as readZone, RFC_FIXTURES as FIXTURES, soaData } from '../helpers/rfc-fixture.js'
import { startServer, type RunningServer } from '../helpers/server.js'

const RFC = readZone('rfc.test.yaml')
const OTHER = readZone('other.test.yaml')
const ZONE_TTL = RFC.ttl
const SOA_TTL = RFC.soa.ttl ?? RFC.ttl
/** RFC 2308 §3: a negative answer's SOA carries min(SOA TTL, SOA MINIMUM). */
const NEG_TTL = Math.min(SOA_TTL, RFC.soa.minimum)
const OTHER_NEG_TTL = Math.min(OTHER.soa.ttl ?? OTHER.ttl, OTHER.soa.minimum)
const SOA_DATA = soaData(RFC)
const NS_NAMES = RFC.ns.map((n) => abs(n, RFC.origin))
const BIG = RFC.records.big!.TXT as string[]
const HUGE = RFC.records.huge!.TXT as string[]
const UTF8_TEXT = RFC.records.utf8!.TXT as string
const WWW_TTL = RFC.records.www!.ttl!
const ALIAS_TTL = RFC.records.alias!.ttl!

/** How dig prints one character-string: quoted, printable ASCII kept, every other octet as \DDD. */
function digText(s: string): string {
  let out = ''
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22 || b === 0x5c) out += '\\' + String.fromCharCode(b)
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b)
    else out += '\\' + String(b).padStart(3, '0')
  }
  return `"${out}"`
}

/** A record as one comparable line. Names are compared lowercased: dns2 compresses case-insensitively. */
function line(r: DigRecord): string {
  const data = r.type === 'TXT' ? r.data : r.data.toLowerCase()
  return `${r.name.toLowerCase()} ${r.ttl} ${r.type} ${data}`
}
const lines = (rs: DigRecord[]): string[] => rs.map(line)
/** The owner name of the question, exactly as dig printed it. */
const questionName = (r: DigResult): string | undefined => r.question[0]?.split(/\s+/)[0]
const questionType = (r: DigResult): string | undefined => r.question[0]?.trim().split(/\s+/).at(-1)

function assertAuthoritativeNoError(r: DigResult): void {
  assert.equal(r.status, 'NOERROR', r.raw)
  assert.ok(r.flags.includes('aa'), `AA expected in ${r.flags.join(' ')}`)
  assert.ok(!r.flags.includes('ra'), `RA must not be set: ${r.flags.join(' ')}`)
}

function assertNegativeSoa(r: DigResult, origin = `${RFC.origin}.`, ttl = NEG_TTL): void {
  assert.equal(r.authority.length, 1, `one SOA in authority:\n${r.raw}`)
  const soa = r.authority[0]!
  assert.equal(soa.type, 'SOA')
  assert.equal(soa.name.toLowerCase(), origin)
  assert.equal(soa.ttl, ttl, `negative TTL is min(SOA TTL, SOA minimum) = ${ttl}`)
}

type Transport = 'udp' | 'tcp'

interface Endpoint {
  label: string
  host: string
  port(): number
}

/** What a group of rules needs: the transport it runs over and a dig bound to it. */
interface Ctx {
  transport: Transport
  /** dig over this endpoint and transport; asserts that a reply came back over that transport. */
  ask(...args: string[]): Promise<DigResult>
  /** dig without the transport check (for the TC fallback, which ends on TCP). */
  askAny(...args: string[]): Promise<DigResult>
}

function context(ep: Endpoint, transport: Transport): Ctx {
  // +notcp: dig 9.18 sends ANY over TCP unless told otherwise.
  const run = (args: string[]) => dig(ep.host, ep.port(), transport === 'tcp' ? '+tcp' : '+notcp', ...args)
  return {
    transport,
    async ask(...args) {
      const r = await run(args)
      assert.notEqual(r.status, 'NONE', `no reply to dig ${args.join(' ')}:\n${r.raw}`)
      assert.equal(r.transport, transport.toUpperCase(), `reply came over ${r.transport}:\n${r.raw}`)
      assert.ok(r.raw.includes(`;; SERVER: ${ep.host}#${ep.port()}(`), `reply came from ${ep.host} port ${ep.port()}:\n${r.raw}`)
      return r
    },
    async askAny(...args) {
      const r = await run(args)
      assert.notEqual(r.status, 'NONE', `no reply to dig ${args.join(' ')}:\n${r.raw}`)
      return r
    },
  }
}

interface RuleGroup {
  title: string
  /** Also run against the IPv6 listener. */
  v6: boolean
  register(c: Ctx): void
}

const GROUPS: RuleGroup[] = [
  {
    title: 'authority and recursion (RFC 1035 §4.1.1)',
    v6: true,
    register(c) {
      test('an answer from a served zone carries AA, echoes RD and never sets RA', async () => {
        const r = await c.ask('multi.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.ok(r.flags.includes('qr'))
        assert.ok(r.flags.includes('rd'), 'RD is copied from the query (dig sets it by default)')
        assert.deepEqual(lines(r.answer), ['multi.rfc.test. 300 A 192.0.2.10'])
      })
      test('a query without RD (+norec) gets AA, no RD and no RA', async () => {
        const r = await c.ask('+norec', 'multi.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.ok(!r.flags.includes('rd'), `RD not copied when not asked: ${r.flags.join(' ')}`)
        assert.deepEqual(lines(r.answer), ['multi.rfc.test. 300 A 192.0.2.10'])
      })
    },
  },
  {
    title: 'names outside every served zone',
    v6: true,
    register(c) {
      for (const [name, type] of [
        ['www.example.com', 'A'],
        ['test', 'SOA'],
        ['.', 'NS'],
      ] as const) {
        test(`${name} (not in any served zone) is REFUSED without AA and without records, even with RD set`, async () => {
          const r = await c.ask(name, type)
          assert.equal(r.status, 'REFUSED', r.raw)
          assert.ok(!r.flags.includes('aa'), `no AA on REFUSED: ${r.flags.join(' ')}`)
          assert.ok(!r.flags.includes('ra'), `no RA: ${r.flags.join(' ')}`)
          assert.deepEqual(r.answer, [], 'no recursion: nothing is looked up elsewhere')
          assert.deepEqual(r.authority, [])
        })
      }
    },
  },
  {
    title: 'negative answers (RFC 2308, RFC 8020)',
    v6: true,
    register(c) {
      test('an existing name without the asked type is NODATA: NOERROR, AA, empty answer, SOA with the negative TTL', async () => {
        const r = await c.ask('multi.rfc.test', 'SRV')
        assertAuthoritativeNoError(r)
        assert.deepEqual(r.answer, [])
        assertNegativeSoa(r)
        assert.equal(r.authority[0]!.data, SOA_DATA)
      })
      test('a name that does not exist gets NXDOMAIN with AA and the SOA (negative TTL) in authority', async () => {
        const r = await c.ask('nothere.rfc.test', 'A')
        assert.equal(r.status, 'NXDOMAIN', r.raw)
        assert.ok(r.flags.includes('aa'))
        assert.deepEqual(r.answer, [])
        assertNegativeSoa(r)
      })
      for (const name of ['b.c.rfc.test', 'c.rfc.test']) {
        test(`the empty non-terminal ${name} (above a.b.c) is NODATA, not NXDOMAIN`, async () => {
          const r = await c.ask(name, 'A')
          assertAuthoritativeNoError(r)
          assert.deepEqual(r.answer, [])
          assertNegativeSoa(r)
        })
      }
      test('a missing name below an empty non-terminal or below a leaf is NXDOMAIN', async () => {
        for (const name of ['x.b.c.rfc.test', 'x.www.rfc.test']) {
          const r = await c.ask(name, 'A')
          assert.equal(r.status, 'NXDOMAIN', r.raw)
          assertNegativeSoa(r)
        }
      })
      test('a negative answer in the second zone carries that zone’s own SOA and negative TTL', async () => {
        const r = await c.ask('nothere.other.test', 'A')
        assert.equal(r.status, 'NXDOMAIN', r.raw)
        assert.ok(r.flags.includes('aa'))
        assertNegativeSoa(r, `${OTHER.origin}.`, OTHER_NEG_TTL)
      })
    },
  },
  {
    title: 'apex SOA and NS, additional-section addresses',
    v6: false,
    register(c) {
      test('the apex SOA is answered with the zone’s SOA fields and the SOA TTL', async () => {
        const r = await c.ask('rfc.test', 'SOA')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), [`rfc.test. ${SOA_TTL} SOA ${SOA_DATA}`])
      })
      test('the apex NS set lists every name server, with A and AAAA glue for the in-zone ones in additional', async () => {
        const r = await c.ask('rfc.test', 'NS')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer).sort(), NS_NAMES.map((n) => `rfc.test. ${ZONE_TTL} NS ${n}`).sort())
        assert.deepEqual(
          lines(r.additional).sort(),
          [
            'ns1.rfc.test. 300 A 192.0.2.53',
            'ns1.rfc.test. 300 AAAA 2001:db8::53',
            'ns2.rfc.test. 300 A 192.0.2.54',
            'ns2.rfc.test. 300 AAAA 2001:db8::54',
          ].sort(),
        )
      })
      test('an MX answer carries the in-zone exchange’s A and AAAA in additional', async () => {
        const r = await c.ask('rfc.test', 'MX')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), ['rfc.test. 300 MX 10 mail.rfc.test.'])
        assert.deepEqual(lines(r.additional).sort(), ['mail.rfc.test. 300 A 192.0.2.25', 'mail.rfc.test. 300 AAAA 2001:db8::25'])
      })
      test('an SRV answer carries the in-zone target’s A and AAAA in additional', async () => {
        const r = await c.ask('_sip._tcp.rfc.test', 'SRV')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), ['_sip._tcp.rfc.test. 300 SRV 0 5 5060 mail.rfc.test.'])
        assert.deepEqual(lines(r.additional).sort(), ['mail.rfc.test. 300 A 192.0.2.25', 'mail.rfc.test. 300 AAAA 2001:db8::25'])
      })
    },
  },
  {
    title: 'CNAME (RFC 1034 §4.3.2, RFC 6604)',
    v6: true,
    register(c) {
      const chain = [`alias.rfc.test. ${ALIAS_TTL} CNAME hop.rfc.test.`, 'hop.rfc.test. 300 CNAME multi.rfc.test.']
      const target: Record<string, string[]> = {
        A: ['multi.rfc.test. 300 A 192.0.2.10'],
        AAAA: ['multi.rfc.test. 300 AAAA 2001:db8::10'],
        TXT: ['multi.rfc.test. 300 TXT "multi text"'],
        MX: ['multi.rfc.test. 300 MX 20 mail.rfc.test.'],
      }
      for (const [type, rrset] of Object.entries(target)) {
        test(`a ${type} query at an alias gets the CNAME chain followed inside the zone, then the target’s ${type} set`, async () => {
          const r = await c.ask('alias.rfc.test', type)
          assertAuthoritativeNoError(r)
          assert.deepEqual(lines(r.answer), [...chain, ...rrset])
        })
      }
      test('a chain ending at a name without the asked type is NODATA with the chain in the answer', async () => {
        const r = await c.ask('alias.rfc.test', 'SRV')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), chain)
        assertNegativeSoa(r)
      })
      test('a CNAME to an out-of-zone name returns just the CNAME', async () => {
        const r = await c.ask('outside.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), ['outside.rfc.test. 300 CNAME www.example.com.'])
      })
      test('a CNAME to a missing in-zone name gives NXDOMAIN with the CNAME in the answer and the SOA in authority', async () => {
        const r = await c.ask('dangling.rfc.test', 'A')
        assert.equal(r.status, 'NXDOMAIN', r.raw)
        assert.ok(r.flags.includes('aa'))
        assert.deepEqual(lines(r.answer), ['dangling.rfc.test. 300 CNAME missing.rfc.test.'])
        assertNegativeSoa(r)
      })
      test('asking for type CNAME returns the CNAME itself, not followed', async () => {
        const r = await c.ask('alias.rfc.test', 'CNAME')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), [chain[0]])
      })
      test('asking for type CNAME at a name without one is NODATA', async () => {
        const r = await c.ask('www.rfc.test', 'CNAME')
        assertAuthoritativeNoError(r)
        assert.deepEqual(r.answer, [])
        assertNegativeSoa(r)
      })
    },
  },
  {
    title: 'case (RFC 1035 §2.3.3, RFC 4343)',
    v6: true,
    register(c) {
      test('a mixed-case name matches case-insensitively and the question is echoed in the client’s exact case', async () => {
        const r = await c.ask('WwW.RfC.TeSt', 'A')
        assertAuthoritativeNoError(r)
        assert.equal(questionName(r), 'WwW.RfC.TeSt.')
        assert.deepEqual(lines(r.answer), [`www.rfc.test. ${WWW_TTL} A 192.0.2.80`])
      })
      test('a mixed-case alias is followed, and the question keeps its case', async () => {
        const r = await c.ask('aLiAs.RFC.test', 'A')
        assertAuthoritativeNoError(r)
        assert.equal(questionName(r), 'aLiAs.RFC.test.')
        assert.equal(r.answer.at(-1)?.data, '192.0.2.10')
      })
      test('a mixed-case missing name is NXDOMAIN with the question in its case', async () => {
        const r = await c.ask('NoThErE.rFc.TeSt', 'A')
        assert.equal(r.status, 'NXDOMAIN', r.raw)
        assert.equal(questionName(r), 'NoThErE.rFc.TeSt.')
      })
      test('a mixed-case out-of-zone name is REFUSED with the question in its case', async () => {
        const r = await c.ask('WwW.ExAmPlE.CoM', 'A')
        assert.equal(r.status, 'REFUSED', r.raw)
        assert.equal(questionName(r), 'WwW.ExAmPlE.CoM.')
      })
    },
  },
  {
    title: 'ANY (RFC 8482)',
    v6: false,
    register(c) {
      const oneRRset = (r: DigResult) => {
        assert.ok(r.answer.length > 0, `ANY gets one RRset, not an empty answer:\n${r.raw}`)
        const sets = new Set(r.answer.map((a) => `${a.name.toLowerCase()} ${a.type}`))
        assert.equal(sets.size, 1, `ANY must be answered with one RRset; got ${[...sets].join(', ')}`)
      }
      test('ANY at a name with A, AAAA, TXT and MX returns exactly one of those RRsets', async () => {
        const r = await c.ask('multi.rfc.test', 'ANY')
        assertAuthoritativeNoError(r)
        oneRRset(r)
        assert.equal(r.answer[0]!.name.toLowerCase(), 'multi.rfc.test.')
        assert.ok(['A', 'AAAA', 'TXT', 'MX'].includes(r.answer[0]!.type), r.answer[0]!.type)
      })
      test('ANY at the apex returns exactly one RRset', async () => {
        const r = await c.ask('rfc.test', 'ANY')
        assertAuthoritativeNoError(r)
        oneRRset(r)
        assert.equal(r.answer[0]!.name.toLowerCase(), 'rfc.test.')
      })
      test('ANY at an alias returns its CNAME alone (ANY matches the CNAME, so nothing is followed)', async () => {
        const r = await c.ask('alias.rfc.test', 'ANY')
        assertAuthoritativeNoError(r)
        oneRRset(r)
        assert.deepEqual(lines(r.answer), [`alias.rfc.test. ${ALIAS_TTL} CNAME hop.rfc.test.`])
      })
    },
  },
  {
    title: 'opcodes other than QUERY (RFC 1035 §4.1.1, RFC 8906 §3.1.4)',
    v6: false,
    register(c) {
      for (const [opcode, name] of [
        [2, 'STATUS'],
        [5, 'UPDATE'],
      ] as const) {
        test(`opcode ${opcode} (${name}) gets NOTIMP with only QR set: no AA, and no RD although the query set it`, async () => {
          const r = await c.ask(`+opcode=${opcode}`, 'rfc.test', 'SOA')
          assert.equal(r.status, 'NOTIMP', r.raw)
          assert.equal(r.opcode, name, 'the opcode is kept in the reply')
          assert.deepEqual(r.flags, ['qr'])
          assert.deepEqual(r.answer, [])
        })
      }
      test('a NOTIMP reply to an UPDATE that carried EDNS carries an OPT record too (RFC 6891 §6.1.1)', async () => {
        const r = await c.ask('+opcode=5', 'rfc.test', 'SOA')
        assert.equal(r.status, 'NOTIMP', r.raw)
        assert.ok(r.edns, `an OPT record in the query requires one in the response:\n${r.raw}`)
        assert.equal(r.edns.version, 0)
      })
    },
  },
  {
    title: 'EDNS(0) (RFC 6891, RFC 3225)',
    v6: true,
    register(c) {
      test('the reply carries an OPT record advertising 1232 octets, EDNS version 0', async () => {
        const r = await c.ask('www.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.ok(r.edns, r.raw)
        assert.equal(r.edns.udp, 1232)
        assert.equal(r.edns.version, 0)
      })
      test('an EDNS version 1 query gets BADVERS, an OPT of version 0, no answer and no AA', async () => {
        const r = await c.ask('+edns=1', '+noednsnegotiation', 'rfc.test', 'SOA')
        assert.equal(r.status, 'BADVERS', r.raw)
        assert.ok(r.edns, r.raw)
        assert.equal(r.edns.version, 0)
        assert.deepEqual(r.answer, [])
        assert.ok(!r.flags.includes('aa'), r.flags.join(' '))
      })
      test('an unknown EDNS option is ignored: the query is answered normally and the option is not echoed', async () => {
        const r = await c.ask('+ednsopt=65001:abcd', 'www.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), [`www.rfc.test. ${WWW_TTL} A 192.0.2.80`])
        assert.ok(r.edns, r.raw)
        assert.doesNotMatch(r.raw, /OPT=65001/)
      })
      test('a query without EDNS (+noedns) gets a reply without OPT', async () => {
        const r = await c.ask('+noedns', 'www.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.equal(r.edns, null)
        assert.doesNotMatch(r.raw, /OPT PSEUDOSECTION/)
        assert.deepEqual(lines(r.answer), [`www.rfc.test. ${WWW_TTL} A 192.0.2.80`])
      })
      test('the DO bit is copied to the reply, and unknown EDNS flag bits are not', async () => {
        const r = await c.ask('+dnssec', '+ednsflags=0x40', 'www.rfc.test', 'A')
        assertAuthoritativeNoError(r)
        assert.ok(r.edns, r.raw)
        assert.deepEqual(r.edns.flags, ['do'])
        assert.doesNotMatch(r.raw, /MBZ/)
      })
    },
  },
  {
    title: 'message size and truncation (RFC 1035 §4.2.1, RFC 2181 §9, RFC 6891 §7)',
    v6: true,
    register(c) {
      const bigSet = BIG.map(digText).sort()
      const hugeSet = HUGE.map(digText).sort()
      const txtOf = (r: DigResult, owner: string) => {
        assert.ok(
          r.answer.every((a) => a.type === 'TXT' && a.name.toLowerCase() === owner),
          `only ${owner} TXT expected:\n${r.raw}`,
        )
        return r.answer.map((a) => a.data).sort()
      }
      const assertTruncated = (r: DigResult, owner: string, limit: number) => {
        assert.equal(r.status, 'NOERROR', r.raw)
        assert.ok(r.flags.includes('tc'), `TC expected: ${r.flags.join(' ')}`)
        assert.equal(questionName(r)?.toLowerCase(), owner, 'the question is kept')
        assert.equal(questionType(r), 'TXT')
        assert.ok(r.size <= limit, `a truncated UDP reply fits in ${limit} octets; got ${r.size}`)
      }
      if (c.transport === 'udp') {
        test('a TXT set larger than 512 octets asked without EDNS is truncated: TC, question kept, within 512 octets', async () => {
          const r = await c.ask('+noedns', '+ignore', 'big.rfc.test', 'TXT')
          assertTruncated(r, 'big.rfc.test.', 512)
          assert.equal(r.edns, null)
        })
        test('a TXT set larger than 512 octets asked with an EDNS buffer of 512 is truncated, OPT kept', async () => {
          const r = await c.ask('+bufsize=512', '+ignore', 'big.rfc.test', 'TXT')
          assertTruncated(r, 'big.rfc.test.', 512)
          assert.ok(r.edns, r.raw)
        })
        test('an EDNS buffer below 512 (100) is taken as 512 (RFC 6891 §6.2.5): an answer of 193 octets comes whole, one above 512 truncated', async () => {
          const ns = await c.ask('+bufsize=100', 'rfc.test', 'NS')
          assertAuthoritativeNoError(ns)
          assert.ok(!ns.flags.includes('tc'), ns.flags.join(' '))
          assert.deepEqual([ns.answer.length, ns.additional.length], [3, 4], ns.raw)
          assert.ok(ns.size > 100 && ns.size <= 512, `size ${ns.size}`)
          assertTruncated(await c.ask('+bufsize=100', '+ignore', 'big.rfc.test', 'TXT'), 'big.rfc.test.', 512)
        })
        test('dig, told TC, retries over TCP and gets the whole TXT set', async () => {
          const r = await c.askAny('+noedns', 'big.rfc.test', 'TXT')
          assert.equal(r.transport, 'TCP', r.raw)
          assert.ok(!r.flags.includes('tc'))
          assert.deepEqual(txtOf(r, 'big.rfc.test.'), bigSet)
        })
        test('a TXT set between 512 and 1232 octets comes whole over UDP when EDNS allows it', async () => {
          const r = await c.ask('+bufsize=4096', 'big.rfc.test', 'TXT')
          assertAuthoritativeNoError(r)
          assert.ok(!r.flags.includes('tc'), r.flags.join(' '))
          assert.deepEqual(txtOf(r, 'big.rfc.test.'), bigSet)
          assert.ok(r.size > 512 && r.size <= 1232, `size ${r.size}`)
        })
        test('a TXT set larger than 1232 octets is truncated even with an EDNS buffer of 4096 (the server caps UDP at 1232)', async () => {
          const r = await c.ask('+bufsize=4096', '+ignore', 'huge.rfc.test', 'TXT')
          assertTruncated(r, 'huge.rfc.test.', 1232)
          assert.ok(r.edns, r.raw)
          assert.equal(r.edns.udp, 1232)
        })
      } else {
        test('over TCP a TXT set larger than 512 octets comes whole without EDNS, as in the fixture', async () => {
          const r = await c.ask('+noedns', 'big.rfc.test', 'TXT')
          assertAuthoritativeNoError(r)
          assert.ok(!r.flags.includes('tc'))
          assert.equal(r.answer.length, BIG.length)
          assert.deepEqual(txtOf(r, 'big.rfc.test.'), bigSet)
        })
        test('over TCP a TXT set larger than 512 octets comes whole even with an EDNS buffer of 512', async () => {
          const r = await c.ask('+bufsize=512', 'big.rfc.test', 'TXT')
          assertAuthoritativeNoError(r)
          assert.ok(!r.flags.includes('tc'))
          assert.deepEqual(txtOf(r, 'big.rfc.test.'), bigSet)
        })
        test('over TCP a TXT set larger than 1232 octets comes whole, as in the fixture', async () => {
          const r = await c.ask('+bufsize=4096', 'huge.rfc.test', 'TXT')
          assertAuthoritativeNoError(r)
          assert.ok(!r.flags.includes('tc'))
          assert.equal(r.answer.length, HUGE.length)
          assert.deepEqual(txtOf(r, 'huge.rfc.test.'), hugeSet)
          assert.ok(r.size > 1232, `size ${r.size}`)
        })
      }
    },
  },
  {
    title: 'EDNS Client Subnet (RFC 7871)',
    v6: true,
    register(c) {
      for (const [subnet, echoed] of [
        ['198.51.100.0/24', '198.51.100.0/24/0'],
        ['2001:db8:1::/48', '2001:db8:1::/48/0'],
        ['0.0.0.0/0', '0.0.0.0/0/0'],
      ] as const) {
        test(`client subnet ${subnet} is echoed with scope 0 for a static record (${echoed})`, async () => {
          const r = await c.ask(`+subnet=${subnet}`, 'www.rfc.test', 'A')
          assertAuthoritativeNoError(r)
          assert.equal(r.clientSubnet, echoed, r.raw)
          assert.deepEqual(lines(r.answer), [`www.rfc.test. ${WWW_TTL} A 192.0.2.80`])
        })
      }
    },
  },
  {
    title: 'TTLs and record data',
    v6: false,
    register(c) {
      test('a record without an owner ttl carries the zone ttl', async () => {
        const r = await c.ask('mail.rfc.test', 'AAAA')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), [`mail.rfc.test. ${ZONE_TTL} AAAA 2001:db8::25`])
      })
      test('an owner ttl overrides the zone ttl, record by record within one answer', async () => {
        const www = await c.ask('www.rfc.test', 'A')
        assert.equal(www.answer[0]?.ttl, WWW_TTL)
        const alias = await c.ask('alias.rfc.test', 'A')
        assert.deepEqual(
          alias.answer.map((a) => a.ttl),
          [ALIAS_TTL, ZONE_TTL, ZONE_TTL],
        )
      })
      test('the second zone’s records carry that zone’s ttl', async () => {
        const r = await c.ask('host.other.test', 'A')
        assertAuthoritativeNoError(r)
        assert.deepEqual(lines(r.answer), [`host.other.test. ${OTHER.ttl} A 198.51.100.7`])
      })
      test('TXT text is served octet for octet: UTF-8 in the zone file is the same UTF-8 on the wire', async () => {
        const r = await c.ask('utf8.rfc.test', 'TXT')
        assertAuthoritativeNoError(r)
        assert.deepEqual(r.answer.map((a) => a.data), [digText(UTF8_TEXT)])
      })
    },
  },
]

describe('Meridian answers as an RFC-conforming authoritative server', () => {
  let server: RunningServer | undefined
  let v6Port = 0
  const V4: Endpoint = { label: 'IPv4 127.0.0.1', host: '127.0.0.1', port: () => server!.port }
  const V6: Endpoint = { label: 'IPv6 ::1', host: '::1', port: () => v6Port }

  before(async () => {
    server = await startServer({ zones: FIXTURES, listen: ['127.0.0.1:0', '[::1]:0'] })
    v6Port = ipv6Port(server)
  })
  after(async () => {
    await server?.stop()
  })

  test('the fixture is shaped so that each rule is visible', () => {
    assert.ok(NEG_TTL < ZONE_TTL, 'SOA minimum below the SOA TTL, so the negative TTL is visible')
    assert.notEqual(NEG_TTL, SOA_TTL)
    assert.notEqual(WWW_TTL, ZONE_TTL)
    assert.notEqual(ALIAS_TTL, ZONE_TTL)
    assert.notEqual(OTHER.ttl, ZONE_TTL)
    const octets = (set: string[]) => set.reduce((n, s) => n + 1 + Buffer.byteLength(s), 0)
    assert.ok(octets(BIG) > 512 && octets(BIG) < 1232 - 200, `big TXT: ${octets(BIG)} octets`)
    assert.ok(octets(HUGE) > 1232, `huge TXT: ${octets(HUGE)} octets`)
    assert.ok([...UTF8_TEXT].some((ch) => ch.charCodeAt(0) > 0x7f), 'utf8 TXT holds non-ASCII text')
  })

  for (const ep of [V4, V6]) {
    for (const transport of ['udp', 'tcp'] as const) {
      describe(`${ep.label} over ${transport.toUpperCase()}`, () => {
        const c = context(ep, transport)
        for (const g of GROUPS) {
          if (ep === V6 && !g.v6) continue
          describe(g.title, () => g.register(c))
        }
      })
    }
  }
})
