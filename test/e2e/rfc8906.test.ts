/**
 * RFC 8906 ("A Common Operational Problem in DNS Servers: Failure to Communicate") §8, "Testing",
 * walked test by test: one test() per subsection, titled with the RFC's number and heading, each
 * running the RFC's own dig command (with `$zone` = rfc.test, `$server` = a real Meridian serving
 * test/fixtures/rfc) and asserting every expectation the RFC states for it, its `expect:` lines
 * and its prose (the flags that may or may not be set, OPT version, flags and options).
 *
 * Meridian is an authoritative server, so the expectations are those for one (AA set, RA clear;
 * §8's note on recursive servers does not apply). It does not implement DNSSEC: where the RFC's
 * expectation depends on it (§8.1.3.1, §8.1.3.2, §8.2.7 to §8.2.9), the test asserts what the RFC
 * asks of a server without DNSSEC, and says so.
 *
 * Each command is sent over IPv4 and IPv6 at once, twice in a row on each (the server was asked
 * the plain queries for the apex SOA before the first test): the first reply may be built by the
 * full path, the second comes from the answer cache when it can, so a cached answer is checked
 * against each query's version, flags and options too (RFC 8906 §6, "Whole Answer Caches").
 *
 * ISC's genreport (the tool §8's tests come from) is the cross-check outside the suite: see
 * docs/dns.md, "RFC 8906 and ISC's genreport".
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { dig, type DigResult } from '../helpers/dig.js'
import { ipv6Port, readFixtureZone, RFC_FIXTURES, soaData } from '../helpers/rfc-fixture.js'
import { startServer, type RunningServer } from '../helpers/server.js'

const RFC = readFixtureZone('rfc.test.yaml')
/** `$zone` of the RFC's commands. */
const ZONE = RFC.origin
const SOA_TTL = RFC.soa.ttl ?? RFC.ttl
/** The apex SOA as dig prints it (tabs collapsed). */
const SOA_LINE = `${ZONE}. ${SOA_TTL} IN SOA ${soaData(RFC)}`
/** More than 512 octets of TXT (test/fixtures/rfc: 4 x 200), and less than Meridian's 1232. */
const BIG = `big.${ZONE}`
const BIG_TXT = (RFC.records.big!.TXT as string[]).length
/** The server's `--nsid`, for §8.2.10. */
const NSID = 'rfc8906.meridian'

/**
 * What one `expect:` block of the RFC states of a reply, as this file asserts it. `flags` and
 * `ednsFlags` are the exact sets: an authoritative server sets AA and never RA, and a flag the RFC
 * says is not to be present is absent from the set.
 */
interface Expect {
  status: string
  /** Where the zone's SOA is: the answer section (and nothing else there), or no answer at all. */
  answer: 'soa' | 'empty'
  flags: string[]
  /** The OPT record: absent (null), or present with version 0 and exactly these EDNS flags. */
  ednsFlags: string[] | null
  /** The EDNS options of the reply, exactly (dig's names); none unless said. */
  options?: string[]
  transport?: 'UDP' | 'TCP'
}

function check(r: DigResult, e: Expect): void {
  const why = `\n${r.raw}`
  assert.equal(r.status, e.status, `status${why}`)
  assert.equal(r.opcode, 'QUERY', `opcode${why}`)
  // dig prints a header Z bit, or an EDNS flag it does not know, as "MBZ": neither may be echoed.
  assert.doesNotMatch(r.raw, /MBZ/, `MBZ to NOT be in the response${why}`)
  assert.deepEqual(r.flags, e.flags, `flags${why}`)
  assert.deepEqual(r.question.map((q) => q.trim().split(/\s+/).slice(0, 2)), [[`${ZONE}.`, 'IN']], `the question is echoed${why}`)
  if (e.answer === 'soa') {
    assert.deepEqual(r.answer.map((a) => `${a.name} ${a.ttl} ${a.class} ${a.type} ${a.data}`), [SOA_LINE], `the SOA record to be present in the answer section${why}`)
  } else {
    assert.deepEqual(r.answer, [], `the SOA record to NOT be present in the answer section${why}`)
  }
  if (e.ednsFlags === null) {
    assert.equal(r.edns, null, `the OPT record to NOT be present${why}`)
  } else {
    assert.ok(r.edns, `an OPT record to be present in the additional section${why}`)
    assert.equal(r.edns.version, 0, `EDNS Version 0 in response${why}`)
    assert.deepEqual(r.edns.flags, e.ednsFlags, `EDNS flags${why}`)
  }
  assert.deepEqual([...r.ednsOptions].sort(), [...(e.options ?? [])].sort(), `EDNS options${why}`)
  assert.equal(r.transport, e.transport ?? 'UDP', `transport${why}`)
}

interface Endpoint {
  host: string
  port(): number
}

describe('RFC 8906 §8 (Testing): each of its tests, against Meridian', () => {
  let server: RunningServer | undefined
  let v6 = 0
  const ENDPOINTS: Endpoint[] = [
    { host: '127.0.0.1', port: () => server!.port },
    { host: '::1', port: () => v6 },
  ]

  /** `dig @ep -p port ARGS` once; asserts that the reply came from that server. */
  const ask = async (ep: Endpoint, args: string[]): Promise<DigResult> => {
    const r = await dig(ep.host, ep.port(), ...args)
    assert.ok(r.raw.includes(`;; SERVER: ${ep.host}#${ep.port()}(`), `no reply from ${ep.host}#${ep.port()} to dig ${args.join(' ')}:\n${r.raw}`)
    return r
  }
  /** The RFC's command `args` over IPv4 and IPv6 at once, twice in a row on each (the second may be a cached answer): four replies. */
  const run = async (args: string[]): Promise<DigResult[]> =>
    (await Promise.all(ENDPOINTS.map(async (ep) => [await ask(ep, args), await ask(ep, args)]))).flat()
  const runAndCheck = async (args: string[], e: Expect): Promise<DigResult[]> => {
    const replies = await run(args)
    for (const r of replies) check(r, e)
    return replies
  }

  before(async () => {
    server = await startServer({ zones: RFC_FIXTURES, listen: ['127.0.0.1:0', '[::1]:0'], args: ['--nsid', NSID] })
    v6 = ipv6Port(server)
    // The plain queries first, so that every test's own query meets an answer cache that holds
    // the apex SOA for them: a variant served the plain query's cached reply would show.
    await Promise.all(ENDPOINTS.flatMap((ep) => [ask(ep, ['+noedns', '+norec', 'soa', ZONE]), ask(ep, ['+nocookie', '+edns=0', '+norec', 'soa', ZONE])]))
  })
  after(async () => {
    await server?.stop()
  })

  describe('§8.1 Testing - Basic DNS', () => {
    test('§8.1.1 Is the Server Configured for the Zone?', async () => {
      // expect: status: NOERROR; the SOA record to be present in the answer section;
      // flag: aa to be present; flag: rd to NOT be present; flag: ad to NOT be present;
      // the OPT record to NOT be present. (RA may be set: never by Meridian, authoritative only.)
      await runAndCheck(['+noedns', '+noad', '+norec', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: null })
    })

    test('§8.1.2 Testing Unknown Types', async () => {
      // expect: status: NOERROR; an empty answer section; flag: aa to be present; flag: rd and
      // ad to NOT be present; the OPT record to NOT be present. (TYPE1000: unassigned, not in the
      // private range; the name exists, so NOERROR, not NXDOMAIN.)
      const replies = await runAndCheck(['+noedns', '+noad', '+norec', 'type1000', ZONE], { status: 'NOERROR', answer: 'empty', flags: ['qr', 'aa'], ednsFlags: null })
      for (const r of replies) {
        assert.equal(r.question[0]?.trim().split(/\s+/).at(-1), 'TYPE1000', r.raw)
        // Beyond the RFC: a NODATA answer, so the SOA in the authority section (RFC 2308 §2.2).
        assert.deepEqual(r.authority.map((a) => `${a.name} ${a.type}`), [`${ZONE}. SOA`], r.raw)
      }
    })

    describe('§8.1.3 Testing Header Bits', () => {
      test('§8.1.3.1 Testing CD=1 Queries', async () => {
        // expect: status: NOERROR; the SOA record in the answer section; flag: aa to be present;
        // flag: rd and ad to NOT be present; the OPT record to NOT be present.
        // The text of the test in draft-ietf-dnsop-no-response-issue-08 (the published RFC's
        // wording of this sentence was not at hand): "If the server supports DNSSEC, CD should be
        // set in the response [RFC4035]; otherwise, CD should be clear [RFC1034]". gdnsd, an
        // authoritative GSLB without DNSSEC, clears it as well. Meridian does not implement
        // DNSSEC, so CD is not copied (before, it was).
        await runAndCheck(['+noedns', '+noad', '+norec', '+cd', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: null })
      })

      test('§8.1.3.1 (the same rule for every other kind of reply): CD is clear in NXDOMAIN, NODATA, REFUSED, FORMERR, NOTAUTH and TC replies', async () => {
        // Not the RFC's command: its CD rule, for the reply forms other than a positive answer,
        // each built by its own code (the answer cache's NXDOMAIN, truncation, the TSIG error).
        const cases: [string, string[]][] = [
          ['NXDOMAIN', ['+noedns', '+norec', '+cd', 'a', `nothere.${ZONE}`]],
          ['NXDOMAIN', ['+nocookie', '+norec', '+cd', '+subnet=192.0.2.0/24', 'a', `nothere.${ZONE}`]],
          ['NOERROR', ['+noedns', '+norec', '+cd', 'srv', ZONE]],
          ['REFUSED', ['+noedns', '+norec', '+cd', 'soa', 'example.com']],
          // A COOKIE option of 1 octet (RFC 7873 §5.2.2).
          ['FORMERR', ['+nocookie', '+norec', '+cd', '+ednsopt=10:00', 'soa', ZONE]],
          ['NOTAUTH', ['+noedns', '+norec', '+cd', '-y', 'hmac-sha256:rfc8906-key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'soa', ZONE]],
          ['NOERROR', ['+noedns', '+norec', '+cd', '+ignore', 'txt', BIG]],
        ]
        await Promise.all(
          cases.map(async ([status, args]) => {
            for (const r of await run(args)) {
              assert.equal(r.status, status, `dig ${args.join(' ')}\n${r.raw}`)
              assert.ok(!r.flags.includes('cd'), `CD is not copied: dig ${args.join(' ')}\n${r.raw}`)
            }
          }),
        )
      })

      test('§8.1.3.2 Testing AD=1 Queries', async () => {
        // expect: status: NOERROR; the SOA record in the answer section; flag: aa to be present;
        // flag: rd to NOT be present; the OPT record to NOT be present. The prose: "If the server
        // supports DNSSEC, AD may be set in the response [RFC6840]; otherwise, AD should be clear
        // [RFC1034]": Meridian has no DNSSEC, so AD is clear.
        await runAndCheck(['+noedns', '+norec', '+ad', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: null })
      })

      test('§8.1.3.3 Testing Reserved Bit', async () => {
        // expect: status: NOERROR; the SOA record in the answer section; MBZ to NOT be in the
        // response (the last reserved header bit, Z, is not copied: RFC 1035 §4.1.1 "Must be zero
        // in all queries and responses"); flag: aa to be present; flag: rd and ad to NOT be
        // present; the OPT record to NOT be present.
        await runAndCheck(['+noedns', '+noad', '+norec', '+zflag', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: null })
      })

      test('§8.1.3.4 Testing Recursive Queries', async () => {
        // expect: status: NOERROR; the SOA record in the answer section; flag: aa to be present;
        // flag: rd to be present (copied, RFC 1035 §4.1.1); flag: ad to NOT be present; the OPT
        // record to NOT be present. RA "may also be set": Meridian never recurses, so it is not.
        await runAndCheck(['+noedns', '+noad', '+rec', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa', 'rd'], ednsFlags: null })
      })
    })

    test('§8.1.4 Testing Unknown Opcodes', async () => {
      // A header only (no question), opcode 15, no flag set.
      // expect: status: NOTIMP; the SOA record to NOT be present; flag: aa, rd and ad to NOT be
      // present; the OPT record to NOT be present.
      for (const r of await run(['+noedns', '+noad', '+opcode=15', '+norec', '+header-only'])) {
        assert.equal(r.status, 'NOTIMP', r.raw)
        assert.equal(r.opcode, 'RESERVED15', `the opcode is kept:\n${r.raw}`)
        assert.deepEqual(r.flags, ['qr'], r.raw)
        assert.deepEqual(r.counts, { query: 0, answer: 0, authority: 0, additional: 0 }, `no section, no OPT:\n${r.raw}`)
        assert.equal(r.edns, null, r.raw)
        assert.doesNotMatch(r.raw, /MBZ/, r.raw)
        assert.equal(r.transport, 'UDP', r.raw)
      }
    })

    test('§8.1.5 Testing TCP', async () => {
      // expect: status: NOERROR; the SOA record in the answer section; flag: aa to be present;
      // flag: rd and ad to NOT be present; the OPT record to NOT be present (RFC 7766).
      await runAndCheck(['+noedns', '+noad', '+norec', '+tcp', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: null, transport: 'TCP' })
    })
  })

  describe('§8.2 Testing - Extended DNS', () => {
    test('§8.2.1 Testing Minimal EDNS', async () => {
      // expect: status: NOERROR; the SOA record in the answer section; an OPT record to be present
      // in the additional section; EDNS Version 0 in response; flag: aa to be present; flag: ad to
      // NOT be present. The prose: no EDNS flags and no EDNS options in the response.
      await runAndCheck(['+nocookie', '+edns=0', '+noad', '+norec', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: [] })
    })

    test('§8.2.2 Testing EDNS Version Negotiation', async () => {
      // expect: status: BADVERS; the SOA record to NOT be present in the answer section; an OPT
      // record to be present; EDNS Version 0 in response; flag: aa to NOT be present; flag: ad to
      // NOT be present. The prose: only QR (and maybe RA) set; no EDNS flags, no options.
      await runAndCheck(['+nocookie', '+edns=1', '+noednsneg', '+noad', '+norec', 'soa', ZONE], { status: 'BADVERS', answer: 'empty', flags: ['qr'], ednsFlags: [] })
    })

    test('§8.2.3 Testing Unknown EDNS Options', async () => {
      // expect: status: NOERROR; the SOA record in the answer section; an OPT record to be present;
      // OPT=100 to NOT be present (unknown options are ignored, RFC 6891 §6.1.2); EDNS Version 0;
      // flag: aa to be present; flag: ad to NOT be present.
      await runAndCheck(['+nocookie', '+edns=0', '+noad', '+norec', '+ednsopt=100', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: [] })
    })

    test('§8.2.4 Testing Unknown EDNS Flags', async () => {
      // expect: status: NOERROR; the SOA record in the answer section; an OPT record to be present;
      // MBZ not to be present (the unknown flag 0x40 is not copied, RFC 6891 §6.1.4); EDNS Version 0;
      // flag: aa to be present; flag: ad to NOT be present.
      await runAndCheck(['+nocookie', '+edns=0', '+noad', '+norec', '+ednsflags=0x40', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: [] })
    })

    test('§8.2.5 Testing EDNS Version Negotiation with Unknown EDNS Flags', async () => {
      // expect: status: BADVERS; the SOA record to NOT be present; an OPT record to be present;
      // MBZ not to be present; EDNS Version 0 in response; flag: aa and ad to NOT be present.
      await runAndCheck(['+nocookie', '+edns=1', '+noednsneg', '+noad', '+norec', '+ednsflags=0x40', 'soa', ZONE], { status: 'BADVERS', answer: 'empty', flags: ['qr'], ednsFlags: [] })
    })

    test('§8.2.6 Testing EDNS Version Negotiation with Unknown EDNS Options', async () => {
      // expect: status: BADVERS; the SOA record to NOT be present; an OPT record to be present;
      // OPT=100 to NOT be present; EDNS Version 0 in response; flag: ad to NOT be present. The
      // prose: only QR (and maybe RA) set in a BADVERS reply, so AA is clear.
      await runAndCheck(['+nocookie', '+edns=1', '+noednsneg', '+noad', '+norec', '+ednsopt=100', 'soa', ZONE], { status: 'BADVERS', answer: 'empty', flags: ['qr'], ednsFlags: [] })
    })

    test('§8.2.7 Testing Truncated Responses', async () => {
      // The RFC's command asks for the zone's DNSKEY set with DO and a 512-octet buffer, to get a
      // signed DNSKEY set too big for it. expect: NOERROR; an OPT record with version set to 0. The
      // prose: AA set; AD clear without DNSSEC; TC may be set; no EDNS flag but DO; no options.
      // Meridian has no DNSKEY (no DNSSEC): the answer is NODATA, which fits, so TC is clear, and
      // the RFC notes that then the OPT of a truncated reply is not checked. So this test also
      // asks, with the same options, for a TXT set larger than 512 octets.
      const dnskey = await runAndCheck(['+norec', '+dnssec', '+bufsize=512', '+ignore', 'dnskey', ZONE], { status: 'NOERROR', answer: 'empty', flags: ['qr', 'aa'], ednsFlags: ['do'] })
      for (const r of dnskey) assert.ok(r.size <= 512, `fits 512 octets: ${r.size}`)

      const truncated = await run(['+norec', '+dnssec', '+bufsize=512', '+ignore', 'txt', BIG])
      for (const r of truncated) {
        assert.equal(r.status, 'NOERROR', r.raw)
        assert.deepEqual(r.flags, ['qr', 'aa', 'tc'], r.raw)
        assert.ok(r.edns, `the truncated reply keeps its OPT:\n${r.raw}`)
        assert.equal(r.edns.version, 0, r.raw)
        assert.deepEqual(r.edns.flags, ['do'], r.raw)
        assert.deepEqual(r.ednsOptions, [], r.raw)
        assert.doesNotMatch(r.raw, /MBZ/, r.raw)
        assert.ok(r.size <= 512, `a truncated reply fits the client's 512 octets: ${r.size}`)
        assert.equal(r.transport, 'UDP', r.raw)
      }

      // Told TC, dig asks again over TCP and gets the whole set there, with its OPT.
      const retried = await run(['+norec', '+dnssec', '+bufsize=512', 'txt', BIG])
      for (const r of retried) {
        assert.equal(r.transport, 'TCP', `the retry over TCP:\n${r.raw}`)
        assert.equal(r.status, 'NOERROR', r.raw)
        assert.deepEqual(r.flags, ['qr', 'aa'], r.raw)
        assert.equal(r.answer.filter((a) => a.type === 'TXT' && a.name === `${BIG}.`).length, BIG_TXT, r.raw)
        assert.ok(r.edns && r.edns.version === 0, r.raw)
        assert.deepEqual(r.edns.flags, ['do'], r.raw)
      }
    })

    test('§8.2.8 Testing DO=1 Handling', async () => {
      // expect: status: NOERROR; the SOA record in the answer section; an OPT record to be present;
      // DO=1 to be present if an RRSIG is in the response; EDNS Version 0; flag: aa to be present.
      // Meridian signs nothing, so there is no RRSIG; it copies DO (RFC 3225 §3), which the RFC
      // allows ("no EDNS flags other than DO"), and §8.2.9 then expects DO in BADVERS too.
      const replies = await runAndCheck(['+nocookie', '+edns=0', '+noad', '+norec', '+dnssec', 'soa', ZONE], { status: 'NOERROR', answer: 'soa', flags: ['qr', 'aa'], ednsFlags: ['do'] })
      for (const r of replies) assert.ok(!r.answer.some((a) => a.type === 'RRSIG') && !r.additional.some((a) => a.type === 'RRSIG'), r.raw)
    })

    test('§8.2.9 Testing EDNS Version Negotiation with DO=1', async () => {
      // expect: status: BADVERS; the SOA record to NOT be present; an OPT record to be present;
      // DO=1 to be present if the EDNS version 0 DNSSEC query test (§8.2.8) returned DO=1; EDNS
      // Version 0 in response; flag: aa to NOT be present.
      const [v0] = await run(['+nocookie', '+edns=0', '+noad', '+norec', '+dnssec', 'soa', ZONE])
      assert.ok(v0?.edns, v0?.raw)
      const replies = await runAndCheck(['+nocookie', '+edns=1', '+noednsneg', '+noad', '+norec', '+dnssec', 'soa', ZONE], { status: 'BADVERS', answer: 'empty', flags: ['qr'], ednsFlags: v0.edns.flags })
      for (const r of replies) assert.equal(r.edns!.flags.includes('do'), v0.edns.flags.includes('do'), r.raw)
    })

    test('§8.2.10 Testing with Multiple Defined EDNS Options', async () => {
      // NSID (RFC 5001), COOKIE (RFC 7873), EXPIRE (RFC 7314) and ECS (RFC 7871) at once.
      // expect: status: NOERROR; the SOA record in the answer section; an OPT record to be present;
      // EDNS Version 0 in response; flag: aa to be present; flag: ad to NOT be present. The prose:
      // no EDNS flags; any of the options the server supports may be returned. Meridian supports
      // NSID (here started with --nsid) and ECS (scope 0 for a static record); it ignores a COOKIE
      // (no server cookies) and EXPIRE (it is no secondary), so neither comes back.
      const replies = await runAndCheck(['+edns=0', '+noad', '+norec', '+cookie', '+nsid', '+expire', '+subnet=0.0.0.0/0', 'soa', ZONE], {
        status: 'NOERROR',
        answer: 'soa',
        flags: ['qr', 'aa'],
        ednsFlags: [],
        options: ['CLIENT-SUBNET', 'NSID'],
      })
      for (const r of replies) {
        assert.equal(r.clientSubnet, '0.0.0.0/0/0', r.raw)
        assert.ok(r.raw.includes(`("${NSID}")`), `NSID ${NSID}:\n${r.raw}`)
      }
    })
  })

  test('§8.3 When EDNS Is Not Supported: Meridian supports EDNS, so every EDNS query gets an OPT, with no option or flag needed to trigger it', async () => {
    // The RFC: "Some servers only return an EDNS response when a particular EDNS option or flag
    // (e.g., DO=1) is present in the request. This behaviour is not compliant." Every reply form
    // to a plain EDNS query (no option, no flag) carries an OPT of version 0 without flags.
    const cases: [string, string[]][] = [
      ['NOERROR', ['soa', ZONE]],
      ['NOERROR', ['srv', ZONE]],
      ['NXDOMAIN', ['a', `nothere.${ZONE}`]],
      ['REFUSED', ['soa', 'example.com']],
      ['NOTIMP', ['+opcode=15', 'soa', ZONE]],
      ['BADVERS', ['+edns=1', '+noednsneg', 'soa', ZONE]],
    ]
    await Promise.all(
      cases.map(async ([status, args]) => {
        for (const r of await run(['+nocookie', '+noad', '+norec', ...args])) {
          assert.equal(r.status, status, r.raw)
          assert.ok(r.edns, `an OPT for a plain EDNS query (${args.join(' ')}):\n${r.raw}`)
          assert.equal(r.edns.version, 0, r.raw)
          assert.deepEqual(r.edns.flags, [], r.raw)
        }
      }),
    )
  })
})
