/**
 * What a request's TSIG record, EDNS version and COOKIE option get, end to end on the real process
 * over UDP and TCP, and the order of those checks across opcodes (docs/dns.md, "Order of checks"):
 * a malformed message is FORMERR (a TSIG not last, two TSIGs, a TSIG cut short, a COOKIE of a bad
 * length), then EDNS version > 0 is BADVERS, then a TSIG is NOTAUTH with TSIG error BADKEY
 * (Meridian knows no key, RFC 8945 §5.2.1), then an opcode other than QUERY is NOTIMP. Each
 * query case is asked after the same question without the odd part, so that a cached answer would
 * show: the answer cache's hot path must pass these queries on to the full path.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { dig } from '../helpers/dig.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import {
  buildQuery,
  ednsOption,
  encodeName,
  optRecord,
  parseReply,
  RCODE,
  readName,
  tcpExchange,
  tsigRecord,
  TYPE,
  udpExchange,
  type QuerySpec,
  type Reply,
  type RR,
  type TsigSpec,
} from '../helpers/wire.js'

const APEX = 'gslb.example.test'
const COOKIE_OPTION = 10
const BADKEY = 17

let server: RunningServer

before(async () => {
  server = await startServer({ args: ['--no-watch'] })
})

after(async () => {
  await server?.stop()
})

type Transport = 'UDP' | 'TCP'
const TRANSPORTS: Transport[] = ['UDP', 'TCP']

async function exchange(transport: Transport, msg: Buffer): Promise<{ reply: Reply; raw: Buffer }> {
  const raw = transport === 'UDP' ? await udpExchange(server.port, msg, 3000) : await tcpExchange(server.port, msg)
  assert.ok(raw, `no ${transport} reply to ${msg.toString('hex')}`)
  return { reply: parseReply(raw), raw }
}

/** `gslb.example.test SOA` with `extra`, after the same query without `odd` (so the answer cache holds its answer). */
async function askAfterWarm(transport: Transport, id: number, warm: QuerySpec, odd: QuerySpec): Promise<{ reply: Reply; raw: Buffer }> {
  const plain = await exchange(transport, buildQuery({ id: id ^ 0x8000, name: APEX, type: TYPE.SOA, ...warm }))
  assert.equal(plain.reply.rcode, RCODE.NOERROR, 'the plain query is answered')
  assert.equal(plain.reply.answers.length, 1)
  return exchange(transport, buildQuery({ id, name: APEX, type: TYPE.SOA, ...warm, ...odd }))
}

/** The fields of a TSIG record read from `raw`. */
function tsigFields(raw: Buffer, rr: RR) {
  const alg = readName(raw, rr.rdataOffset)
  let off = alg.end
  const time = raw.readUInt16BE(off) * 0x100000000 + raw.readUInt32BE(off + 2)
  const fudge = raw.readUInt16BE(off + 6)
  const macSize = raw.readUInt16BE(off + 8)
  off += 10 + macSize
  const fields = { algorithm: alg.name, algorithmCompressed: alg.end - rr.rdataOffset !== encodeName(alg.name).length, time, fudge, macSize, originalId: raw.readUInt16BE(off), error: raw.readUInt16BE(off + 2), otherLen: raw.readUInt16BE(off + 4) }
  assert.equal(off + 6 + fields.otherLen, rr.rdataOffset + rr.rdata.length, 'the TSIG RDATA is exactly its fields')
  return fields
}

/** A NOTAUTH whose last record is the unsigned TSIG of a BADKEY error for `key` (RFC 8945 §5.3.2). */
function assertBadKey(reply: Reply, raw: Buffer, id: number, key: { name: string; algorithm: string; originalId: number }, t0: number): void {
  assert.equal(reply.id, id)
  assert.equal(reply.qr, true)
  assert.equal(reply.rcode, RCODE.NOTAUTH)
  assert.equal(reply.aa, false)
  assert.equal(reply.answers.length + reply.authority.length, 0, 'no answer')
  const last = reply.additional.at(-1)
  assert.ok(last && last.type === TYPE.TSIG, 'a TSIG record, the last of the additional section')
  assert.equal(reply.additional.length, 1, 'the TSIG is the only record besides an OPT')
  assert.equal(last.name, key.name)
  assert.equal(last.class, 255, 'class ANY')
  assert.equal(last.ttl, 0)
  const f = tsigFields(raw, last)
  assert.equal(f.algorithm, key.algorithm)
  assert.equal(f.algorithmCompressed, false)
  assert.equal(f.macSize, 0, 'unsigned: no MAC')
  assert.equal(f.error, BADKEY)
  assert.equal(f.originalId, key.originalId)
  assert.equal(f.otherLen, 0)
  assert.equal(f.fudge, 300)
  assert.ok(f.time >= Math.floor(t0 / 1000) && f.time <= Math.ceil(Date.now() / 1000), `time signed ${f.time} is the server's now`)
}

describe('TSIG-signed requests get NOTAUTH with TSIG error BADKEY (RFC 8945 §5.2.1)', () => {
  for (const transport of TRANSPORTS) {
    test(`a signed query with EDNS: question echoed, an OPT, then the unsigned BADKEY TSIG, though the same unsigned query is cached (${transport})`, async () => {
      const t0 = Date.now()
      const { reply, raw } = await askAfterWarm(transport, 0x5101, { opt: {}, rd: true }, { arcount: 2, trailing: tsigRecord({ keyName: 'Key.Example', originalId: 0x5101 }) })
      assertBadKey(reply, raw, 0x5101, { name: 'Key.Example', algorithm: 'hmac-sha256', originalId: 0x5101 }, t0)
      assert.equal(reply.rd, true, 'RD copied')
      assert.equal(reply.questions[0]!.name, APEX)
      assert.ok(reply.opt, 'an OPT, as the query had one')
      assert.equal(reply.opt.version, 0)
      assert.equal(reply.opt.extRcode, 0)
      assert.ok(raw.indexOf(Buffer.from([0, 0, TYPE.OPT])) < raw.lastIndexOf(encodeName('Key.Example')), 'the OPT comes before the TSIG')
    })

    test(`a signed query without EDNS, its key name a pointer to the question name: the TSIG is the only additional record, its owner written out (${transport})`, async () => {
      const t0 = Date.now()
      const { reply, raw } = await askAfterWarm(transport, 0x5102, {}, { arcount: 1, trailing: tsigRecord({ keyName: Buffer.from([0xc0, 12]), algorithm: 'hmac-sha512', originalId: 0x0042 }) })
      assertBadKey(reply, raw, 0x5102, { name: APEX, algorithm: 'hmac-sha512', originalId: 0x0042 }, t0)
      assert.equal(reply.opt, null)
      assert.equal(reply.arcount, 1)
    })

    test(`a TSIG whose TTL is not 0 (RFC 8945 §4.2 says 0; BIND and Knot do not check it) gets the same BADKEY, its TSIG of TTL 0 (${transport})`, async () => {
      const t0 = Date.now()
      const { reply, raw } = await askAfterWarm(transport, 0x5104, {}, { arcount: 1, trailing: tsigRecord({ ttl: 3600, originalId: 0x5104 }) })
      assertBadKey(reply, raw, 0x5104, { name: 'tkey.example', algorithm: 'hmac-sha256', originalId: 0x5104 }, t0)
    })

    test(`NOTIFY (opcode 4) signed: NOTAUTH, opcode kept, no question, the BADKEY TSIG (${transport})`, async () => {
      const t0 = Date.now()
      const { reply, raw } = await exchange(transport, buildQuery({ id: 0x5103, opcode: 4, name: APEX, type: TYPE.SOA, arcount: 1, trailing: tsigRecord({ originalId: 0x5103 }) }))
      assertBadKey(reply, raw, 0x5103, { name: 'tkey.example', algorithm: 'hmac-sha256', originalId: 0x5103 }, t0)
      assert.equal(reply.opcode, 4)
      assert.equal(reply.qdcount, 0)
    })
  }

  // Key and algorithm names of 254 octets each: the BADKEY TSIG alone is 534 octets, more than a
  // UDP reply without EDNS may be (512). The query is smaller: the key name may be sent as a pointer.
  const LONG_KEY = `${'k'.repeat(63)}.${'e'.repeat(63)}.${'y'.repeat(63)}.${'s'.repeat(60)}`
  const LONG_ALG = `${'h'.repeat(63)}.${'m'.repeat(63)}.${'a'.repeat(63)}.${'c'.repeat(60)}`
  for (const [what, opcode] of [['a query', 0], ['NOTIFY', 4]] as const) {
    test(`${what} signed with names too long for a BADKEY reply of 512 octets: over UDP without EDNS, TC and no TSIG; over TCP and with EDNS, the whole BADKEY`, async () => {
      const t0 = Date.now()
      const signed = (opt: QuerySpec['opt'] | undefined) =>
        buildQuery({ id: 0x5104, opcode, name: APEX, type: TYPE.SOA, ...(opt ? { opt } : {}), arcount: opt ? 2 : 1, trailing: tsigRecord({ keyName: LONG_KEY, algorithm: LONG_ALG, originalId: 0x5104 }) })
      const udp = await exchange('UDP', signed(undefined))
      assert.ok(udp.raw.length <= 512, `a UDP reply without EDNS is at most 512 octets, got ${udp.raw.length}`)
      assert.equal(udp.reply.tc, true, 'truncated: ask again over TCP')
      assert.equal(udp.reply.rcode, RCODE.NOTAUTH)
      assert.equal(udp.reply.opcode, opcode)
      assert.equal(udp.reply.arcount, 0, 'no partial TSIG')
      const key = { name: LONG_KEY, algorithm: LONG_ALG, originalId: 0x5104 }
      const tcp = await exchange('TCP', signed(undefined))
      assertBadKey(tcp.reply, tcp.raw, 0x5104, key, t0)
      assert.equal(tcp.reply.tc, false)
      const edns = await exchange('UDP', signed({ udpSize: 1232 }))
      assertBadKey(edns.reply, edns.raw, 0x5104, key, t0)
      assert.equal(edns.reply.tc, false)
    })
  }

  test('dig -y reports the BADKEY error, not a parse failure', async () => {
    const r = await dig('127.0.0.1', server.port, APEX, 'SOA', '-y', `hmac-sha256:tkey.example:${Buffer.from('0123456789abcdef').toString('base64')}`)
    assert.equal(r.status, 'NOTAUTH')
    assert.match(r.raw, /;; TSIG PSEUDOSECTION:\ntkey\.example\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY 0/)
    assert.match(r.raw, /tsig indicates error/)
  })

  const kdig = (() => {
    try {
      execFileSync('kdig', ['-V'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })()
  test('kdig -y reports status BADKEY', { skip: kdig ? false : 'kdig (knot-dnsutils) is not installed' }, async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('kdig', [`@127.0.0.1`, '-p', String(server.port), '+retry=0', '+time=3', APEX, 'SOA', '-y', `hmac-sha256:tkey.example:${Buffer.from('0123456789abcdef').toString('base64')}`], { timeout: 15000 }, (err, stdout) =>
        stdout ? resolve(stdout) : reject(err ?? new Error('kdig printed nothing')),
      ),
    )
    assert.match(out, /status: BADKEY/)
    assert.match(out, /TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY 0/)
  })
})

describe('a TSIG out of place or cut short is FORMERR (RFC 8945 §5.1), with no TSIG in the reply', () => {
  const tsig = tsigRecord({ originalId: 0x5200 })
  const cases: [string, QuerySpec][] = [
    ['a TSIG before the OPT', { arcount: 2, trailing: Buffer.concat([tsig, optRecord()]) }],
    ['two TSIGs', { arcount: 2, trailing: Buffer.concat([tsig, tsig]) }],
    ['a TSIG in the answer section', { ancount: 1, trailing: tsig }],
    ['a TSIG in the authority section', { nscount: 1, trailing: tsig }],
    ['a TSIG of class IN', { arcount: 1, trailing: tsigRecord({ class: 1 }) }],
    ['a TSIG whose algorithm name is compressed', { arcount: 1, trailing: compressedAlgorithm() }],
    ['a TSIG whose RDATA holds an octet past its fields', { arcount: 1, trailing: cutTsig({}, 0, Buffer.from([0])) }],
  ]
  // Every shorter RDATA (its RDLENGTH saying so): each field cut short, or missing.
  const full = tsigRecord({ mac: Buffer.alloc(4, 1), other: Buffer.alloc(2, 2) })
  const rdlen = full.readUInt16BE(encodeName('tkey.example').length + 8)
  for (let cut = 1; cut <= rdlen; cut++) cases.push([`a TSIG whose RDATA lacks its last ${cut} of ${rdlen} octets`, { arcount: 1, trailing: cutTsig({ mac: Buffer.alloc(4, 1), other: Buffer.alloc(2, 2) }, cut) }])

  for (const transport of TRANSPORTS) {
    test(`answers FORMERR, question echoed, no TSIG, to each of ${cases.length} malformed TSIG queries, and still answers after (${transport})`, async () => {
      for (const [i, [what, spec]] of cases.entries()) {
        const id = 0x5200 + i
        const { reply } = await exchange(transport, buildQuery({ id, name: APEX, type: TYPE.SOA, ...spec }))
        assert.equal(reply.id, id, what)
        assert.equal(reply.rcode, RCODE.FORMERR, what)
        assert.ok(!reply.additional.some((r) => r.type === TYPE.TSIG), `${what}: no TSIG in the reply`)
        if (what.includes('OPT')) assert.ok(reply.opt, `${what}: the OPT echoed`)
      }
      const { reply } = await exchange(transport, buildQuery({ id: 0x52ff, name: APEX, type: TYPE.SOA }))
      assert.equal(reply.rcode, RCODE.NOERROR)
    })
  }
})

/** A TSIG record with its last `cut` RDATA octets removed, then `append` added to its RDATA (RDLENGTH to match). */
function cutTsig(spec: TsigSpec, cut: number, append = Buffer.alloc(0)): Buffer {
  const rr = tsigRecord({ keyName: 'tkey.example', ...spec })
  const ownerLen = encodeName('tkey.example').length
  return withRdata(rr.subarray(0, ownerLen + 10), Buffer.concat([rr.subarray(ownerLen + 10, rr.length - cut), append]))
}

/** A TSIG record whose algorithm name is a pointer to the question name (RDATA names of a TSIG are never compressed). */
function compressedAlgorithm(): Buffer {
  const rr = tsigRecord({ keyName: 'tkey.example', algorithm: 'x' })
  const ownerLen = encodeName('tkey.example').length
  return withRdata(rr.subarray(0, ownerLen + 10), Buffer.concat([Buffer.from([0xc0, 12]), rr.subarray(ownerLen + 10 + encodeName('x').length)]))
}

/** Owner and fixed fields `head` (RDLENGTH last) with `rdata`, RDLENGTH set to its length. */
function withRdata(head: Buffer, rdata: Buffer): Buffer {
  const h = Buffer.from(head)
  h.writeUInt16BE(rdata.length, h.length - 2)
  return Buffer.concat([h, rdata])
}

describe('order of checks: BADVERS before BADKEY before NOTIMP, for every opcode', () => {
  for (const transport of TRANSPORTS) {
    for (const opcode of [1, 2, 4, 5, 15]) {
      test(`opcode ${opcode} with EDNS version 1 gets BADVERS, not NOTIMP: opcode kept, flags clear, an OPT of version 0 and extended rcode 1 only (${transport})`, async () => {
        const id = 0x5300 + opcode
        const { reply, raw } = await exchange(transport, buildQuery({ id, opcode, name: APEX, type: TYPE.SOA, rd: true, cd: true, opt: { version: 1 } }))
        assert.equal(reply.id, id)
        assert.equal(reply.opcode, opcode)
        assert.equal(raw[2], 0x80 | (opcode << 3), 'first flags octet: QR and the opcode only')
        assert.equal(reply.headerRcode, 0)
        assert.ok(reply.opt)
        assert.equal(reply.opt.extRcode, 1)
        assert.equal(reply.opt.version, 0)
        assert.equal(reply.rcode, RCODE.BADVERS)
        assert.equal(reply.qdcount + reply.ancount + reply.nscount + reply.additional.length, 0, 'no sections but the OPT')
      })
    }

    for (const opcode of [0, 5]) {
      test(`opcode ${opcode} with EDNS version 1 and a TSIG gets BADVERS, unsigned: no TSIG in the reply (${transport})`, async () => {
        const id = 0x5310 + opcode
        const { reply } = await exchange(transport, buildQuery({ id, opcode, name: APEX, type: TYPE.SOA, opt: { version: 1 }, arcount: 2, trailing: tsigRecord() }))
        assert.equal(reply.rcode, RCODE.BADVERS)
        assert.equal(reply.opcode, opcode)
        assert.ok(reply.opt)
        assert.equal(reply.opt.version, 0)
        assert.equal(reply.additional.length, 0, 'no TSIG')
      })
    }

    test(`a QUERY with EDNS version 1 gets BADVERS with the question and an OPT of version 0, also once the version-0 answer is cached (${transport})`, async () => {
      const { reply } = await askAfterWarm(transport, 0x5320, { opt: {} }, { opt: { version: 1 } })
      assert.equal(reply.rcode, RCODE.BADVERS)
      assert.equal(reply.questions[0]!.name, APEX)
      assert.ok(reply.opt)
      assert.equal(reply.opt.version, 0)
      assert.equal(reply.answers.length, 0)
    })

    test(`opcode 5 with EDNS version 0 and no TSIG still gets NOTIMP with an OPT (${transport})`, async () => {
      const { reply } = await exchange(transport, buildQuery({ id: 0x5330, opcode: 5, name: APEX, type: TYPE.SOA, opt: {} }))
      assert.equal(reply.rcode, RCODE.NOTIMP)
      assert.ok(reply.opt)
    })
  }
})

describe('DNS COOKIE (RFC 7873): a bad length is FORMERR, a good one is ignored', () => {
  const cookie = (len: number) => ({ opt: { options: [ednsOption(COOKIE_OPTION, Buffer.alloc(len, 0x5a))] } })
  for (const transport of TRANSPORTS) {
    for (const len of [0, 1, 7, 9, 12, 15, 41, 64]) {
      test(`a COOKIE of ${len} octets gets FORMERR with the question and a version-0 OPT without options, though the query without it is cached (${transport})`, async () => {
        const id = 0x5400 + len
        const { reply } = await askAfterWarm(transport, id, { opt: {} }, cookie(len))
        assert.equal(reply.id, id)
        assert.equal(reply.rcode, RCODE.FORMERR)
        assert.equal(reply.questions[0]!.name, APEX)
        assert.equal(reply.answers.length, 0)
        assert.ok(reply.opt, 'the OPT echoed (RFC 7873 §5.2.2)')
        assert.equal(reply.opt.version, 0)
        assert.deepEqual(reply.opt.options, [])
      })
    }

    for (const len of [8, 16, 24, 40]) {
      test(`a COOKIE of ${len} octets is ignored: the answer, and no COOKIE in the reply (${transport})`, async () => {
        const id = 0x5480 + len
        const { reply } = await askAfterWarm(transport, id, { opt: {} }, cookie(len))
        assert.equal(reply.rcode, RCODE.NOERROR)
        assert.equal(reply.answers.length, 1)
        assert.ok(reply.opt)
        assert.deepEqual(reply.opt.options, [])
      })
    }

    test(`a COOKIE of a bad length in an OPT of version 1 gets BADVERS: its options are not read (${transport})`, async () => {
      const { reply } = await exchange(transport, buildQuery({ id: 0x54f0, name: APEX, type: TYPE.SOA, opt: { version: 1, options: [ednsOption(COOKIE_OPTION, Buffer.alloc(3))] } }))
      assert.equal(reply.rcode, RCODE.BADVERS)
    })
  }
})
