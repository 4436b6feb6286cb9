/**
 * End-to-end robustness of the DNS listener, on the real process and raw packets: malformed
 * queries (FORMERR), other opcodes (NOTIMP), silent drops, EDNS version and options, ECS, UDP
 * truncation, TCP per RFC 7766 (pipelining, split writes, idle timeout, connection cap), and a
 * seeded fuzz over UDP and TCP after which the server must still be alive and answering.
 *
 * The fuzz seed is printed; replay a run with MERIDIAN_FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict'
import { cp, readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { prng } from '../../src/sim/index.js'
import { DEMO_ZONES, ROOT, startServer, tempDir, type RunningServer } from '../helpers/server.js'
import {
  buildQuery,
  ecsOption,
  ednsOption,
  encodeName,
  frame,
  optRecord,
  parseReply,
  questionWire,
  RCODE,
  soaData,
  TcpClient,
  tcpExchange,
  txtStrings,
  TYPE,
  udpExchange,
  UdpClient,
  within,
  type OptSpec,
  type QuerySpec,
  type Reply,
} from '../helpers/wire.js'

const APEX = 'gslb.example.test'
const BIG_NAME = 'txt.big.test'
const BIG_FIXTURE = path.join(ROOT, 'test', 'fixtures', 'big')
/** How long a test waits to conclude that no reply is coming. */
const NO_REPLY_MS = 300

let zones: { dir: string; cleanup: () => Promise<void> }
/** Demo zones + the big TXT zone, default options. */
let main: RunningServer
/** Same zones, only for the fuzz (so a crash there cannot fail the other tests). */
let fuzzed: RunningServer
/** --tcp-idle-timeout 300 */
let idle: RunningServer
/** --tcp-max-connections 2 */
let capped: RunningServer

before(async () => {
  zones = await tempDir('meridian-robustness-zones-')
  await cp(DEMO_ZONES, zones.dir, { recursive: true, filter: (src) => !path.basename(src).startsWith('.meridian') })
  await cp(BIG_FIXTURE, zones.dir, { recursive: true })
  const started = await Promise.allSettled([
    startServer({ zones: zones.dir, args: ['--no-watch'] }),
    startServer({ zones: zones.dir, args: ['--no-watch'] }),
    startServer({ zones: zones.dir, args: ['--no-watch', '--tcp-idle-timeout', '300'] }),
    startServer({ zones: zones.dir, args: ['--no-watch', '--tcp-max-connections', '2'] }),
  ])
  // Keep whatever started, so after() stops it even when another failed to start.
  ;[main, fuzzed, idle, capped] = started.map((r) => (r.status === 'fulfilled' ? r.value : undefined)) as RunningServer[]
  const failed = started.find((r) => r.status === 'rejected')
  if (failed) throw failed.reason
})

after(async () => {
  await Promise.all([main, fuzzed, idle, capped].map((s) => s?.stop()))
  await zones?.cleanup()
})

/** One query over UDP; the reply must come and must parse. */
async function udp(server: RunningServer, msg: Buffer): Promise<{ reply: Reply; raw: Buffer }> {
  const raw = await udpExchange(server.port, msg, 3000)
  assert.ok(raw, `no UDP reply to ${msg.toString('hex')}`)
  return { reply: parseReply(raw), raw }
}

async function tcp(server: RunningServer, msg: Buffer): Promise<{ reply: Reply; raw: Buffer }> {
  const raw = await tcpExchange(server.port, msg)
  return { reply: parseReply(raw), raw }
}

const soaQuery = (id: number, extra: QuerySpec = {}): Buffer => buildQuery({ id, name: APEX, type: TYPE.SOA, ...extra })

/** A correct answer to `gslb.example.test SOA`: NOERROR, AA, the one SOA record of the demo zone. */
function assertApexSoa(reply: Reply, raw: Buffer, id: number): void {
  assert.equal(reply.id, id)
  assert.equal(reply.qr, true, 'QR set')
  assert.equal(reply.rcode, RCODE.NOERROR)
  assert.equal(reply.aa, true, 'AA set')
  assert.equal(reply.tc, false)
  assert.equal(reply.qdcount, 1)
  assert.equal(reply.questions[0]!.name, APEX)
  assert.equal(reply.answers.length, 1)
  const soa = reply.answers[0]!
  assert.equal(soa.type, TYPE.SOA)
  assert.equal(soa.name, APEX)
  const data = soaData(raw, soa)
  assert.equal(data.mname, `ns1.${APEX}`)
  assert.equal(data.rname, 'hostmaster.example.test')
  assert.equal(data.minimum, 60)
}

// ---------------------------------------------------------------------------------------------

describe('malformed queries get FORMERR with the ID echoed and QR set', () => {
  const apexQ = encodeName(APEX)
  const typeClass = Buffer.from([0, TYPE.SOA, 0, 1])
  const ecsQuery = (id: number, family: number, source: number, address: number[], scope = 0) =>
    buildQuery({ id, name: APEX, type: TYPE.SOA, opt: { options: [ecsOption(family, source, scope, address)] } })

  // Each case: what is wrong, the query. A query that carries an OPT (root owner) gets an OPT back
  // (RFC 6891 §6.1.1), whatever the FORMERR is about; one without gets none.
  const cases: [string, (id: number) => Buffer][] = [
    ['QDCOUNT 0 (header only)', (id) => buildQuery({ id, noQuestion: true })],
    ['QDCOUNT 0 with a question present', (id) => buildQuery({ id, name: APEX, qdcount: 0 })],
    ['QDCOUNT 2 with two questions', (id) => Buffer.concat([buildQuery({ id, name: APEX, qdcount: 2 }), apexQ, typeClass])],
    [
      'QDCOUNT 2 with two questions and an OPT',
      (id) => {
        const one = buildQuery({ id, name: APEX, qdcount: 2, arcount: 1 })
        return Buffer.concat([one, apexQ, typeClass, optRecord({ udpSize: 1232 })])
      },
    ],
    ['a question cut short inside the name', (id) => buildQuery({ id, name: APEX }).subarray(0, 12 + 7)],
    ['a question cut short inside type and class', (id) => buildQuery({ id, name: APEX }).subarray(0, 12 + apexQ.length + 3)],
    [
      'a question name holding a compression pointer',
      (id) => buildQuery({ id, name: Buffer.concat([Buffer.from([4]), Buffer.from('mail'), Buffer.from([0xc0, 0x0c])]) }),
    ],
    ['trailing garbage after the question', (id) => buildQuery({ id, name: APEX, trailing: Buffer.from([0xde, 0xad, 0xbe]) })],
    ['trailing garbage after the OPT record', (id) => buildQuery({ id, name: APEX, opt: {}, trailing: Buffer.from([0]) })],
    ['two OPT records', (id) => buildQuery({ id, name: APEX, opt: [{}, {}] })],
    ['trailing garbage after an OPT record carrying a valid ECS (not echoed)', (id) => buildQuery({ id, name: APEX, type: TYPE.SOA, opt: { options: [ecsOption(1, 24, 0, [198, 51, 100])] }, trailing: Buffer.from([0]) })],
    ['two OPT records, the first carrying a valid ECS (not echoed)', (id) => buildQuery({ id, name: APEX, type: TYPE.SOA, opt: [{ options: [ecsOption(1, 24, 0, [198, 51, 100])] }, {}] })],
    ['an OPT record whose owner is not the root', (id) => buildQuery({ id, name: APEX, opt: { owner: encodeName('x') } })],
    ['an ECS option with source prefix /33 for IPv4', (id) => ecsQuery(id, 1, 33, [198, 51, 100, 0, 0])],
    ['an ECS option with source prefix /129 for IPv6', (id) => ecsQuery(id, 2, 129, [0x20, 0x01, 0x0d, 0xb8, ...Array<number>(13).fill(0)])],
    ['an ECS option 198.51.100.1/24 (host bits set, 4 octets)', (id) => ecsQuery(id, 1, 24, [198, 51, 100, 1])],
    ['an ECS option 198.51.100.1/25 (a bit set past the prefix)', (id) => ecsQuery(id, 1, 25, [198, 51, 100, 1])],
    ['an ECS option 198.51.101.0/23 (a bit set past the prefix)', (id) => ecsQuery(id, 1, 23, [198, 51, 101])],
    ['an ECS option /24 carrying 4 address octets', (id) => ecsQuery(id, 1, 24, [198, 51, 100, 0])],
    ['an ECS option /24 carrying 2 address octets', (id) => ecsQuery(id, 1, 24, [198, 51])],
    ['an ECS option 2001:db8::/32 carrying 16 address octets', (id) => ecsQuery(id, 2, 32, [0x20, 0x01, 0x0d, 0xb8, ...Array<number>(12).fill(0)])],
    ['an ECS option with family 3', (id) => ecsQuery(id, 3, 0, [])],
    // RFC 7871 §6: a query's scope prefix MUST be 0; §7.2.1: a wrongly formatted option is FORMERR (BIND's answer too).
    ['an ECS option 198.51.100.0/24 with scope prefix /16', (id) => ecsQuery(id, 1, 24, [198, 51, 100], 16)],
    ['an ECS option 2001:db8::/32 with scope prefix /56', (id) => ecsQuery(id, 2, 32, [0x20, 0x01, 0x0d, 0xb8], 56)],
    ['an ECS option /0 with scope prefix /24', (id) => ecsQuery(id, 1, 0, [], 24)],
    [
      'an ECS option whose length runs past the OPT record',
      (id) => {
        const q = ecsQuery(id, 1, 24, [198, 51, 100])
        q.writeUInt16BE(200, q.length - 9) // the option's length: 200 octets, where 7 follow
        return q
      },
    ],
  ]
  let id = 0x4100
  for (const [what, build] of cases) {
    const qid = id++
    test(`answers FORMERR to ${what}`, async () => {
      const { reply } = await udp(main, build(qid))
      assert.equal(reply.id, qid, 'ID echoed')
      assert.equal(reply.qr, true, 'QR set')
      assert.equal(reply.opcode, 0)
      assert.equal(reply.rcode, RCODE.FORMERR)
      assert.equal(reply.aa, false)
      assert.equal(reply.answers.length, 0)
      const hadOpt = /OPT|ECS/.test(what) && !/not the root/.test(what)
      assert.equal(reply.opt !== null, hadOpt, hadOpt ? 'an OPT, as the query had one' : 'no OPT: the query had none')
      if (reply.opt) assert.deepEqual([reply.opt.version, reply.opt.extRcode, reply.ecs], [0, 0, null], 'a version-0 OPT, no ECS echoed')
    })
  }
})

describe('opcodes other than QUERY get NOTIMP', () => {
  for (const opcode of [1, 2, 4, 5, 15]) {
    test(`answers opcode ${opcode} with NOTIMP, only QR set and every other flag clear, even when the query set RD, AD and CD`, async () => {
      const id = 0x4200 + opcode
      const { reply, raw } = await udp(main, buildQuery({ id, opcode, name: APEX, type: TYPE.SOA, rd: true, ad: true, cd: true }))
      assert.equal(reply.id, id)
      assert.equal(reply.qr, true)
      assert.equal(reply.opcode, opcode, 'opcode copied into the response (RFC 1035 §4.1.1)')
      assert.deepEqual(
        { aa: reply.aa, tc: reply.tc, rd: reply.rd, ra: reply.ra, z: reply.z, ad: reply.ad, cd: reply.cd },
        { aa: false, tc: false, rd: false, ra: false, z: false, ad: false, cd: false },
      )
      assert.equal(reply.rcode, RCODE.NOTIMP)
      assert.equal(raw[2], 0x80 | (opcode << 3), 'first flags octet: QR and the opcode only')
      assert.equal(raw[3], 0x04, 'second flags octet: rcode 4 only')
      assert.equal(reply.qdcount + reply.ancount + reply.nscount + reply.arcount, 0, 'no sections')
    })
  }

  test('answers opcode 4 (NOTIFY) carrying an OPT with a NOTIMP whose only record is an OPT, flags still clear', async () => {
    const { reply, raw } = await udp(main, buildQuery({ id: 0x4210, opcode: 4, name: APEX, type: TYPE.SOA, rd: true, cd: true, opt: { udpSize: 4096 } }))
    assert.equal(reply.id, 0x4210)
    assert.equal(reply.qr, true)
    assert.equal(reply.opcode, 4)
    assert.equal(raw[2], 0x80 | (4 << 3), 'first flags octet: QR and the opcode only')
    assert.equal(raw[3], 0x04, 'second flags octet: rcode 4 only')
    assert.equal(reply.rcode, RCODE.NOTIMP)
    assert.equal(reply.qdcount + reply.ancount + reply.nscount + reply.additional.length, 0, 'no sections but the OPT')
    assert.ok(reply.opt, 'an OPT, as the request had one')
    assert.equal(reply.opt.extRcode, 0)
    assert.equal(reply.opt.version, 0)
  })
})

describe('messages that deserve no answer are dropped', () => {
  /**
   * Sends `bad` then a good query from one socket: the good one must be answered (the server is
   * alive and reading), and nothing else may arrive within a short wait.
   */
  async function assertDropped(bad: Buffer): Promise<void> {
    const c = await UdpClient.open(main.port)
    try {
      await c.send(bad)
      const sentinel = 0x4300
      await c.send(soaQuery(sentinel))
      assert.ok(await c.waitForId(sentinel, 3000), 'the query sent after it is answered')
      await new Promise((r) => setTimeout(r, NO_REPLY_MS))
      assert.deepEqual(
        c.received.map((m) => m.readUInt16BE(0)),
        [sentinel],
        'the only datagram back is the answer to the good query',
      )
    } finally {
      await c.close()
    }
  }

  test('drops a message shorter than a DNS header (11 octets)', async () => {
    await assertDropped(soaQuery(0x4301).subarray(0, 11))
  })

  test('drops a message with QR set: a response is never answered', async () => {
    await assertDropped(soaQuery(0x4302, { qr: true }))
  })
})

describe('EDNS', () => {
  test('answers EDNS version 1 with BADVERS: header rcode 0, OPT extended rcode 1, OPT version 0', async () => {
    const { reply } = await udp(main, soaQuery(0x4400, { opt: { version: 1 } }))
    assert.equal(reply.id, 0x4400)
    assert.equal(reply.qr, true)
    assert.equal(reply.headerRcode, 0)
    assert.ok(reply.opt, 'the reply carries an OPT record')
    assert.equal(reply.opt.extRcode, 1)
    assert.equal(reply.rcode, RCODE.BADVERS)
    assert.equal(reply.opt.version, 0)
    assert.equal(reply.answers.length, 0)
  })

  test('answers EDNS version 1 with BADVERS even when its options would be malformed in version 0', async () => {
    // An option's format belongs to its EDNS version (RFC 6891 §6.1.3): BADVERS, not FORMERR.
    const { reply } = await udp(main, soaQuery(0x440a, { opt: { version: 1, options: [ecsOption(1, 24, 0, [198, 51, 100, 1])] } }))
    assert.equal(reply.id, 0x440a)
    assert.equal(reply.rcode, RCODE.BADVERS)
    assert.ok(reply.opt)
    assert.equal(reply.opt.version, 0)
  })

  test('ignores an unknown EDNS option and answers normally', async () => {
    const { reply, raw } = await udp(main, soaQuery(0x4401, { opt: { options: [ednsOption(65001, [1, 2, 3, 4])] } }))
    assertApexSoa(reply, raw, 0x4401)
    assert.ok(reply.opt, 'OPT in the reply')
    assert.equal(reply.opt.version, 0)
    assert.equal(reply.ecs, null)
  })

  test('echoes ECS when it comes with unknown options around it', async () => {
    const options = [ednsOption(65001, [9, 9]), ecsOption(1, 24, 0, [198, 51, 100]), ednsOption(65002, [])]
    const { reply, raw } = await udp(main, soaQuery(0x4402, { opt: { options } }))
    assertApexSoa(reply, raw, 0x4402)
    assert.ok(reply.ecs, 'ECS option in the reply')
    assert.equal(reply.ecs.family, 1)
    assert.equal(reply.ecs.sourcePrefix, 24)
    assert.deepEqual([...reply.ecs.address], [198, 51, 100])
  })

  test('echoes ECS 198.51.100.0/24 as family 1, source 24, scope 0 and the same 3 address octets', async () => {
    const { reply, raw } = await udp(main, soaQuery(0x4403, { opt: { options: [ecsOption(1, 24, 0, [198, 51, 100])] } }))
    assertApexSoa(reply, raw, 0x4403)
    assert.ok(reply.ecs, 'ECS option in the reply')
    assert.deepEqual(
      { family: reply.ecs.family, source: reply.ecs.sourcePrefix, scope: reply.ecs.scopePrefix, address: [...reply.ecs.address] },
      { family: 1, source: 24, scope: 0, address: [198, 51, 100] },
    )
  })

  test('an ECS option with a nonzero scope prefix gets FORMERR also once the same query with scope 0 has its answer cached', async () => {
    for (const [id, scope] of [[0x4405, 0], [0x4406, 0], [0x4407, 24]] as const) {
      const { reply, raw } = await udp(main, soaQuery(id, { opt: { options: [ecsOption(1, 24, scope, [203, 0, 113])] } }))
      if (scope === 0) {
        assertApexSoa(reply, raw, id)
        continue
      }
      assert.equal(reply.rcode, RCODE.FORMERR, 'FORMERR, not the cached answer')
      assert.equal(reply.answers.length, 0)
      assert.deepEqual([reply.opt?.version, reply.ecs], [0, null], 'a version-0 OPT, no ECS echoed')
    }
  })

  test('echoes ECS 2001:db8:ab00::/40 as family 2, source 40, scope 0 and the same 5 address octets', async () => {
    const addr = [0x20, 0x01, 0x0d, 0xb8, 0xab]
    const { reply, raw } = await udp(main, soaQuery(0x4404, { opt: { options: [ecsOption(2, 40, 0, addr)] } }))
    assertApexSoa(reply, raw, 0x4404)
    assert.ok(reply.ecs)
    assert.deepEqual(
      { family: reply.ecs.family, source: reply.ecs.sourcePrefix, scope: reply.ecs.scopePrefix, address: [...reply.ecs.address] },
      { family: 2, source: 40, scope: 0, address: addr },
    )
  })
})

describe('odd question names', () => {
  test('echoes a mixed-case question name octet for octet and still answers it', async () => {
    const msg = soaQuery(0x4500, { name: 'GsLb.ExAmPlE.tEsT' })
    const { reply, raw } = await udp(main, msg)
    assert.equal(reply.rcode, RCODE.NOERROR)
    assert.equal(reply.aa, true)
    assert.deepEqual(reply.questions[0]!.wire, msg.subarray(12), 'question echoed as sent')
    assert.equal(reply.answers[0]!.type, TYPE.SOA)
    assert.ok(soaData(raw, reply.answers[0]!))
  })

  test('does not take a name whose first label holds a dot ("a.gslb" under example.test) as inside gslb.example.test: REFUSED', async () => {
    // Wire labels: [a.gslb] [example] [test] -- the name is a child of example.test, which Meridian does not serve.
    const name = Buffer.concat([Buffer.from([6]), Buffer.from('a.gslb'), encodeName('example.test')])
    const msg = buildQuery({ id: 0x4501, name, type: TYPE.A })
    const { reply } = await udp(main, msg)
    assert.deepEqual(reply.questions[0]!.wire, msg.subarray(12), 'question echoed as sent')
    assert.equal(reply.aa, false, 'no authoritative answer for a name outside the served zones')
    assert.equal(reply.rcode, RCODE.REFUSED)
    assert.equal(reply.authority.length, 0)
  })
})

// ---------------------------------------------------------------------------------------------

describe('UDP truncation', () => {
  let fullSet: string[]

  before(async () => {
    const text = await readFile(path.join(BIG_FIXTURE, 'big.test.yaml'), 'utf8')
    fullSet = [...text.matchAll(/^\s+- "(txt-\d\d-x+)"$/gm)].map((m) => m[1]!)
    assert.equal(fullSet.length, 30, 'the fixture holds 30 TXT strings')
  })

  test('without EDNS, a TXT set bigger than 512 octets comes with TC=1, the question kept, no answers and no OPT', async () => {
    const msg = buildQuery({ id: 0x4600, name: BIG_NAME, type: TYPE.TXT })
    const { reply } = await udp(main, msg)
    assert.equal(reply.id, 0x4600)
    assert.ok(reply.length <= 512, `reply is ${reply.length} octets`)
    assert.equal(reply.tc, true, 'TC set')
    assert.equal(reply.rcode, RCODE.NOERROR)
    assert.equal(reply.qdcount, 1)
    assert.deepEqual(reply.questions[0]!.wire, msg.subarray(12), 'same question')
    assert.equal(reply.ancount, 0, 'no answer records')
    assert.equal(reply.opt, null, 'no OPT for a query without one')
  })

  test('with EDNS bufsize 4096, the server caps at 1232: TC=1, the question kept, no answers, an OPT', async () => {
    const { reply } = await udp(main, buildQuery({ id: 0x4601, name: BIG_NAME, type: TYPE.TXT, opt: { udpSize: 4096 } }))
    assert.equal(reply.id, 0x4601)
    assert.ok(reply.length <= 1232, `reply is ${reply.length} octets`)
    assert.equal(reply.tc, true, 'TC set')
    assert.equal(reply.rcode, RCODE.NOERROR)
    assert.equal(reply.qdcount, 1)
    assert.deepEqual(reply.questions[0]!.wire, questionWire(BIG_NAME, TYPE.TXT), 'same question')
    assert.equal(reply.ancount, 0, 'no answer records')
    assert.ok(reply.opt, 'OPT present')
    assert.equal(reply.opt.udpSize, 1232, 'advertises 1232')
  })

  test('the same query over TCP returns all 30 TXT records', async () => {
    const { reply } = await tcp(main, buildQuery({ id: 0x4602, name: BIG_NAME, type: TYPE.TXT, opt: { udpSize: 4096 } }))
    assert.equal(reply.tc, false)
    assert.equal(reply.rcode, RCODE.NOERROR)
    assert.equal(reply.aa, true)
    assert.equal(reply.answers.length, 30)
    const got = reply.answers.map((rr) => {
      assert.equal(rr.type, TYPE.TXT)
      assert.equal(rr.name, BIG_NAME)
      return txtStrings(rr.rdata).join('')
    })
    assert.deepEqual(got.sort(), [...fullSet].sort())
  })
})

// ---------------------------------------------------------------------------------------------

describe('TCP (RFC 7766)', () => {
  test('answers 20 pipelined queries written in one write, all on that connection', async () => {
    const names = [APEX, `mail.${APEX}`, `ns1.${APEX}`, `status.${APEX}`, `_imaps._tcp.${APEX}`, BIG_NAME, 'ns1.big.test', 'example.com']
    for (let i = names.length; i < 20; i++) names.push(`host-${i}.${APEX}`)
    const types = [TYPE.SOA, TYPE.A, TYPE.A, TYPE.A, TYPE.SRV, TYPE.TXT, TYPE.A, TYPE.A]
    const queries = names.map((name, i) => ({ id: 0x4700 + i * 7, name, type: types[i] ?? TYPE.AAAA }))
    const c = await TcpClient.open(main.port)
    try {
      await c.write(Buffer.concat(queries.map((q) => frame(buildQuery(q)))))
      const byId = new Map<number, Reply>()
      for (let i = 0; i < queries.length; i++) {
        const r = parseReply(await c.next(5000))
        assert.ok(!byId.has(r.id), `one answer per id (${r.id} twice)`)
        byId.set(r.id, r)
      }
      for (const q of queries) {
        const r = byId.get(q.id)
        assert.ok(r, `answer for id ${q.id} (${q.name})`)
        assert.equal(r.qr, true)
        assert.equal(r.questions[0]?.name, q.name)
        assert.equal(r.questions[0]?.type, q.type)
      }
      assert.equal(byId.get(0x4700 + 5 * 7)!.answers.length, 30, 'the big TXT set, whole over TCP')
      assert.equal(byId.get(0x4700 + 7 * 7)!.rcode, RCODE.REFUSED, 'example.com is not served')
      assert.equal(byId.get(0x4700 + 19 * 7)!.rcode, RCODE.NXDOMAIN)
    } finally {
      c.destroy()
    }
  })

  test('answers a query written one octet at a time', async () => {
    const c = await TcpClient.open(main.port)
    try {
      const framed = frame(soaQuery(0x4800, { opt: { options: [ecsOption(1, 24, 0, [198, 51, 100])] } }))
      for (const byte of framed) await c.write(Buffer.from([byte]))
      const raw = await c.next(5000)
      assertApexSoa(parseReply(raw), raw, 0x4800)
      assert.equal(c.messages.length, 1)
    } finally {
      c.destroy()
    }
  })

  test('closes an idle connection after --tcp-idle-timeout (300 ms)', async () => {
    const t0 = Date.now()
    const c = await TcpClient.open(idle.port)
    await within(c.closed, 5000, 'idle connection closed by the server')
    const elapsed = c.closedAt! - t0
    assert.ok(c.closedByPeer, 'the server closed it')
    assert.ok(elapsed >= 250 && elapsed < 5000, `closed after ${elapsed} ms`)
    assert.equal(c.messages.length, 0)
  })

  test('a connection that trickles a message in (a slowloris: the most a length prefix allows, one octet every 50 ms) is closed after --tcp-idle-timeout all the same', async () => {
    const c = await TcpClient.open(idle.port)
    const t0 = Date.now()
    await c.write(Buffer.from([0xff, 0xff]))
    // The attack's own pace, not a wait for the server: it ends when the server closes.
    const trickle = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(Buffer.alloc(1))
    }, 50)
    try {
      await within(c.closed, 5000, 'the trickling connection closed by the server')
    } finally {
      clearInterval(trickle)
    }
    const elapsed = c.closedAt! - t0
    assert.ok(c.closedByPeer, 'the server closed it')
    assert.ok(elapsed >= 250 && elapsed < 2000, `closed after ${elapsed} ms, though an octet came every 50 ms`)
  })

  test('closes a connection 300 ms after its last answer, not at once', async () => {
    const c = await TcpClient.open(idle.port)
    const raw = await c.exchange(soaQuery(0x4900))
    const t1 = Date.now()
    assertApexSoa(parseReply(raw), raw, 0x4900)
    await within(c.closed, 5000, 'idle connection closed by the server')
    const elapsed = c.closedAt! - t1
    assert.ok(c.closedByPeer, 'the server closed it')
    assert.ok(elapsed >= 250 && elapsed < 5000, `closed ${elapsed} ms after the answer`)
  })

  test('with --tcp-max-connections 2, a third concurrent connection is closed unanswered while the first two keep answering', async () => {
    const c1 = await TcpClient.open(capped.port)
    const c2 = await TcpClient.open(capped.port)
    try {
      // Both answered: the server has accepted both.
      let raw = await c1.exchange(soaQuery(0x4a01))
      assertApexSoa(parseReply(raw), raw, 0x4a01)
      raw = await c2.exchange(soaQuery(0x4a02))
      assertApexSoa(parseReply(raw), raw, 0x4a02)

      const c3 = new TcpClient(capped.port)
      await c3.send(soaQuery(0x4a03))
      await within(c3.closed, 5000, 'third connection closed by the server')
      assert.ok(c3.closedByPeer, 'the server closed it')
      assert.equal(c3.messages.length, 0, 'no answer on the third connection')

      raw = await c1.exchange(soaQuery(0x4a04))
      assertApexSoa(parseReply(raw), raw, 0x4a04)
      raw = await c2.exchange(soaQuery(0x4a05))
      assertApexSoa(parseReply(raw), raw, 0x4a05)
    } finally {
      c1.destroy()
      c2.destroy()
    }
  })
})

// ---------------------------------------------------------------------------------------------

describe('fuzz', () => {
  const seed = process.env.MERIDIAN_FUZZ_SEED ? Number(process.env.MERIDIAN_FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0

  /** Valid queries to mutate: names in and out of the zones, several types, with and without OPT/ECS. */
  function templates(): Buffer[] {
    const questions: [string, number][] = [
      [APEX, TYPE.SOA],
      [APEX, TYPE.NS],
      [APEX, TYPE.MX],
      [APEX, TYPE.TXT],
      [APEX, TYPE.ANY],
      [`mail.${APEX}`, TYPE.AAAA],
      [`status.${APEX}`, TYPE.A],
      [`_imaps._tcp.${APEX}`, TYPE.SRV],
      [`nope.${APEX}`, TYPE.A],
      [BIG_NAME, TYPE.TXT],
      ['example.com', TYPE.A],
    ]
    const opts: (OptSpec | undefined)[] = [
      undefined,
      {},
      { udpSize: 4096, dnssecOk: true },
      { udpSize: 100 },
      { options: [ecsOption(1, 24, 0, [198, 51, 100])] },
      { options: [ecsOption(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 2])] },
      { options: [ednsOption(10, [1, 2, 3, 4, 5, 6, 7, 8]), ecsOption(1, 0, 0, [])] },
    ]
    const out: Buffer[] = []
    for (const [name, type] of questions) for (const opt of opts) out.push(buildQuery({ id: 0, name, type, rd: true, ...(opt ? { opt } : {}) }))
    return out
  }

  function generator(rand: () => number): () => Buffer {
    const bases = templates()
    const int = (n: number) => Math.floor(rand() * n)
    const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)))
    const mutate = (base: Buffer): Buffer => {
      let b: Buffer = Buffer.from(base)
      for (let ops = 1 + int(3); ops > 0; ops--) {
        switch (int(5)) {
          case 0: // flip one bit
            if (b.length > 0) b[int(b.length)]! ^= 1 << int(8)
            break
          case 1: // truncate
            b = b.subarray(0, int(b.length + 1))
            break
          case 2: // change a count
            if (b.length >= 12) b.writeUInt16BE(rand() < 0.7 ? int(4) : int(65536), 4 + 2 * int(4))
            break
          case 3: // insert bytes
            {
              const at = int(b.length + 1)
              b = Buffer.concat([b.subarray(0, at), randomBytes(1 + int(8)), b.subarray(at)])
            }
            break
          case 4: // overwrite a byte
            if (b.length > 0) b[int(b.length)] = int(256)
            break
        }
      }
      return b
    }
    let n = 0
    return () => {
      if (n++ % 2 === 0) {
        const b = randomBytes(int(601))
        // Half of the random messages get a plausible header so they reach the reader's deeper paths.
        if (rand() < 0.5 && b.length >= 12) {
          b[2]! &= 0x07
          b.writeUInt16BE(1, 4)
          for (const at of [6, 8, 10]) b.writeUInt16BE(int(3), at)
        }
        return b
      }
      return mutate(bases[int(bases.length)]!)
    }
  }

  /** Replies per rcode, over both fuzz tests. */
  const rcodes = new Map<number, number>()

  /** Checks one reply against the query it claims to answer; returns a problem or null. */
  function checkReply(raw: Buffer, sent: Map<number, Buffer>, answered: Set<number>, maxSize: number): string | null {
    let r: Reply
    try {
      r = parseReply(raw)
    } catch (err) {
      return `unparseable reply (${(err as Error).message}): ${raw.toString('hex')}`
    }
    rcodes.set(r.rcode, (rcodes.get(r.rcode) ?? 0) + 1)
    const q = sent.get(r.id)
    if (!q) return `reply with id ${r.id} answers nothing we sent`
    const where = `id ${r.id}, query ${q.toString('hex')}, reply ${raw.toString('hex')}`
    if (answered.has(r.id)) return `two replies to ${where}`
    answered.add(r.id)
    if (!r.qr) return `QR clear in the reply to ${where}`
    if (q.length < 12) return `a reply to a message shorter than a header: ${where}`
    if (q[2]! & 0x80) return `a reply to a message with QR set: ${where}`
    const opcode = (q[2]! >> 3) & 0x0f
    if (r.opcode !== opcode) return `opcode ${r.opcode} in the reply to opcode ${opcode}: ${where}`
    // Another opcode: no sections, except an OPT when the request had one (RFC 6891 §6.1.1); NOTIMP,
    // or BADVERS (an OPT of version > 0, the OPT then required) or NOTAUTH (a TSIG: its BADKEY TSIG
    // the one record) before it (docs/dns.md, "Order of checks").
    if (opcode !== 0) {
      const records = r.qdcount + r.ancount + r.nscount + r.additional.length
      const bare =
        (r.rcode === RCODE.NOTIMP && records === 0) ||
        (r.rcode === RCODE.BADVERS && records === 0 && r.opt !== null) ||
        (r.rcode === RCODE.NOTAUTH && records === 1 && r.additional[0]?.type === TYPE.TSIG)
      if (!bare) return `not a bare NOTIMP, BADVERS or NOTAUTH: ${where}`
    }
    if (r.qdcount > 1) return `${r.qdcount} questions in ${where}`
    if (r.qdcount === 1 && !r.questions[0]!.wire.equals(q.subarray(12, 12 + r.questions[0]!.wire.length))) return `question not echoed as sent: ${where}`
    if (raw.length > maxSize) return `reply of ${raw.length} octets over the ${maxSize} limit: ${where}`
    if (maxSize < 65535 && r.opt === null && raw.length > 512) return `UDP reply without OPT longer than 512 octets: ${where}`
    return null
  }

  test('survives 10,000 random and mutated UDP packets, and every reply that came is a well-formed response to its query', async (t) => {
    t.diagnostic(`fuzz seed ${seed} (replay with MERIDIAN_FUZZ_SEED=${seed})`)
    const next = generator(prng(seed))
    const c = await UdpClient.open(fuzzed.port)
    const sent = new Map<number, Buffer>()
    let lostSentinels = 0
    const TOTAL = 10000
    const BATCH = 100
    try {
      for (let i = 0; i < TOTAL; ) {
        const sends: Promise<void>[] = []
        for (const end = Math.min(TOTAL, i + BATCH); i < end; i++) {
          const msg = next()
          // A unique id per packet (the id octets carry no parsing interest) to match replies to queries.
          if (msg.length >= 2) msg.writeUInt16BE(i, 0)
          sent.set(i, msg)
          sends.push(c.send(msg))
        }
        // A good query closes each batch; awaiting its answer paces the sender to the server.
        const sentinel = 50000 + i / BATCH
        const sq = soaQuery(sentinel)
        sent.set(sentinel, sq)
        sends.push(c.send(sq))
        await Promise.all(sends)
        if (!(await c.waitForId(sentinel, 1000))) lostSentinels++
        assert.equal(fuzzed.proc.exitCode, null, `server exited during the fuzz (seed ${seed}, after packet ${i}); stderr: ${fuzzed.stderr()}`)
      }
    } finally {
      await c.close()
    }
    const answered = new Set<number>()
    const problems: string[] = []
    for (const raw of c.received) {
      const p = checkReply(raw, sent, answered, 1232)
      if (p) problems.push(p)
    }
    t.diagnostic(`${c.received.length} replies to ${TOTAL} fuzz packets + ${TOTAL / BATCH} good queries (${lostSentinels} good queries unanswered within 1 s)`)
    assert.deepEqual(problems.slice(0, 10), [], `seed ${seed}: ${problems.length} bad replies`)
    assert.ok(c.received.length > TOTAL / BATCH, 'replies came back (more than the good queries alone)')
    assert.ok(lostSentinels < TOTAL / BATCH / 2, `${lostSentinels} of ${TOTAL / BATCH} good queries went unanswered during the fuzz`)

    assert.equal(fuzzed.proc.exitCode, null, `server still running (seed ${seed}); stderr: ${fuzzed.stderr()}`)
    assert.equal(fuzzed.proc.signalCode, null)
    const u = await udp(fuzzed, soaQuery(0x4b00))
    assertApexSoa(u.reply, u.raw, 0x4b00)
    const tc = await tcp(fuzzed, soaQuery(0x4b01))
    assertApexSoa(tc.reply, tc.raw, 0x4b01)
  })

  test('survives 500 random and mutated messages framed over 5 TCP connections, and still answers', async (t) => {
    const tcpSeed = (seed + 1) >>> 0
    t.diagnostic(`fuzz seed ${seed} (TCP stream from ${tcpSeed})`)
    const next = generator(prng(tcpSeed))
    const CONNS = 5
    const PER_CONN = 100
    const clients: { c: TcpClient; sent: Map<number, Buffer> }[] = []
    for (let k = 0; k < CONNS; k++) {
      const sent = new Map<number, Buffer>()
      for (let j = 0; j < PER_CONN; j++) {
        const msg = next()
        const id = 20000 + k * PER_CONN + j
        if (msg.length >= 2) msg.writeUInt16BE(id, 0)
        sent.set(id, msg)
      }
      clients.push({ c: await TcpClient.open(fuzzed.port), sent })
    }
    await Promise.all(
      clients.map(async ({ c, sent }) => {
        await c.write(Buffer.concat([...sent.values()].map(frame)))
        // Half-close: the server answers what it read and then closes its side.
        c.end()
        await within(c.closed, 10000, 'fuzzed TCP connection closed after our half-close')
      }),
    )
    const problems: string[] = []
    let replies = 0
    for (const { c, sent } of clients) {
      const answered = new Set<number>()
      for (const raw of c.messages) {
        replies++
        const p = checkReply(raw, sent, answered, 65535)
        if (p) problems.push(p)
      }
    }
    t.diagnostic(`${replies} replies to ${CONNS * PER_CONN} framed fuzz messages`)
    assert.deepEqual(problems.slice(0, 10), [], `seed ${tcpSeed}: ${problems.length} bad replies`)
    assert.ok(replies > 0, 'some fuzz messages were answered over TCP')

    assert.equal(fuzzed.proc.exitCode, null, `server still running (seed ${tcpSeed}); stderr: ${fuzzed.stderr()}`)
    t.diagnostic(`replies by rcode over both fuzz runs: ${JSON.stringify(Object.fromEntries([...rcodes].sort((a, b) => a[0] - b[0])))}`)
    const errors = fuzzed.logs.filter((l) => l.level >= 50)
    assert.deepEqual(errors, [], 'no malformed message drives the server into an error path (logged at level error or above)')
    const tc = await tcp(fuzzed, soaQuery(0x4c00))
    assertApexSoa(tc.reply, tc.raw, 0x4c00)
    const u = await udp(fuzzed, soaQuery(0x4c01))
    assertApexSoa(u.reply, u.raw, 0x4c01)
  })
})
